//! The binary: `plan` prints what a run would do; it touches no Docker.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sdi::context::{Context, Overrides, ProcessEnv};
use sdi::report;

#[derive(Parser)]
#[command(
    name = "secure-docker-images",
    version,
    about = "Builds OCI images with Docker Buildx, trusting only what it can prove."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the trust decision, cache lane and exact buildx command, without running Docker.
    #[command(args_override_self = true)]
    Plan {
        /// Print one JSON object instead of the explanation.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: Overrides,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan { json, flags } => {
            let plan = Context::load(&ProcessEnv::from_process(), &flags)
                .and_then(|ctx| sdi::decide(&ctx));
            match plan {
                Ok(plan) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&plan).expect("a plan always serializes")
                    );
                    ExitCode::SUCCESS
                }
                Ok(plan) => {
                    print!("{}", report::render_plan(&plan));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}", report::error_line(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
