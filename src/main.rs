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
        /// The event name (default: GITHUB_EVENT_NAME).
        #[arg(long)]
        event_name: Option<String>,
        /// The event payload file (default: GITHUB_EVENT_PATH).
        #[arg(long)]
        event_path: Option<String>,
        /// owner/repo (default: GITHUB_REPOSITORY, then the payload's repository).
        #[arg(long)]
        repository: Option<String>,
        /// The git ref (default: GITHUB_REF, then the payload's ref).
        #[arg(long = "ref")]
        git_ref: Option<String>,
        /// The commit (default: GITHUB_SHA, then the payload's head commit).
        #[arg(long)]
        sha: Option<String>,
        /// An action input, as NAME=VALUE (repeatable; wins over INPUT_<NAME>).
        #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_input)]
        inputs: Vec<(String, String)>,
    },
}

fn parse_input(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' has no '=': write NAME=VALUE"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan {
            json,
            event_name,
            event_path,
            repository,
            git_ref,
            sha,
            inputs,
        } => {
            let flags = Overrides {
                event_name,
                event_path,
                repository,
                git_ref,
                sha,
                inputs,
            };
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
