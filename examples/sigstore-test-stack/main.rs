//! A Sigstore of our own on loopback (see `stack.rs`), for the real-engine tests and for
//! checking by hand:
//!
//!     cargo run --release --example sigstore-test-stack -- --out DIR [--claims FILE]
//!
//! listens until stopped and writes `DIR/env` (NAME=VALUE lines that point a run at it),
//! `DIR/trust-config.json` (for sigstore-python's `--trust-config`) and `DIR/requests.log`
//! (one line per request answered: service, method, path). `--claims FILE` (JSON) sets the
//! token's claims, else those of a push to `acme/app`'s default branch.

mod stack;

use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let Some(out) = arg("--out") else {
        eprintln!("usage: sigstore-test-stack --out DIR [--claims FILE]");
        std::process::exit(2);
    };
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out).expect("the --out directory");
    let claims = match arg("--claims") {
        Some(file) => serde_json::from_slice(&std::fs::read(&file).expect("the --claims file")).expect("JSON claims"),
        None => stack::default_claims(),
    };
    let stack = Arc::new(stack::Stack::new(claims, Some(out.join("requests.log"))));
    std::fs::write(out.join("requests.log"), "").unwrap();
    let url = stack::start(stack.clone());
    let config = stack::trust_config(&stack, &url);
    std::fs::write(out.join("trust-config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let env: String = stack::env(&url).iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(out.join("env"), env).unwrap();
    eprintln!("sigstore-test-stack listening on {url}; {} written", out.display());
    loop {
        std::thread::park();
    }
}
