const ms = require("ms");
console.log(`built and started in ${ms(Math.round(process.uptime() * 1000))}`);
