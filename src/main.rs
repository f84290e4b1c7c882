//! The binary. Without a subcommand it is the action, as the runner starts it:
//! context → trust → plan → buildx → report. `plan` prints what a run would do and touches
//! no Docker.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sdi::buildx::{self, Annotation, Level, Outcome, Signals};
use sdi::context::{Context, Overrides, ProcessEnv};
use sdi::plan::BuildPlan;
use sdi::report;

#[derive(Parser)]
#[command(
    name = "secure-docker-images",
    version,
    about = "Builds OCI images with Docker Buildx, trusting only what it can prove."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    match Cli::parse().command {
        Some(Command::Plan { json, flags }) => plan(json, &flags),
        None => action(),
    }
}

fn plan(json: bool, flags: &Overrides) -> ExitCode {
    match Context::load(&ProcessEnv::from_process(), flags).and_then(|ctx| sdi::decide(&ctx)) {
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

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Writes outputs and summary; a failure to write them fails the run.
fn publish(plan: &BuildPlan, exec: Option<&buildx::Execution>) -> bool {
    let mut ok = true;
    if let Some(path) = env_path("GITHUB_OUTPUT") {
        let delimiter = format!("ghadelimiter_{}", buildx::random_token());
        if let Err(e) = report::write_outputs(&path, &report::outputs(plan, exec), &delimiter) {
            println!(
                "::error title=Outputs::cannot write GITHUB_OUTPUT: {}",
                report::escape_data(&e.to_string())
            );
            ok = false;
        }
    }
    if let Some(path) = env_path("GITHUB_STEP_SUMMARY")
        && let Err(e) = report::write_summary(&path, &report::summary(plan, exec))
    {
        println!(
            "::warning::cannot write the job summary: {}",
            report::escape_data(&e.to_string())
        );
    }
    ok
}

fn action() -> ExitCode {
    let ctx = match Context::load(&ProcessEnv::from_process(), &Overrides::default()) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("{}", report::error_line(&e));
            return ExitCode::FAILURE;
        }
    };
    for line in report::mask_lines(ctx.masks.iter().map(|m| m.expose())) {
        println!("{line}");
    }
    let plan = match sdi::decide(&ctx) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{}", report::error_line(&e));
            return ExitCode::FAILURE;
        }
    };
    println!("::group::Plan");
    print!("{}", report::render_plan(&plan));
    println!("::endgroup::");
    for w in &plan.warnings {
        println!("{}", report::warning_line(w));
    }
    if ctx.inputs.dry_run {
        println!("dry-run: no docker command was run.");
        return if publish(&plan, None) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }

    let temp_root = ctx
        .runner_temp
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    // Private to this run (0700) and removed when it ends, whatever the outcome.
    let dir = match tempfile::Builder::new()
        .prefix("sdi-")
        .tempdir_in(&temp_root)
    {
        Ok(d) => d,
        Err(e) => {
            println!(
                "::error title=RUNNER_TEMP::cannot create a private directory under {}: {}",
                temp_root.display(),
                report::escape_data(&e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let exec = runtime.block_on(async {
        let mut signals = Signals::install().expect("signal handlers install");
        buildx::execute(&ctx, &plan, dir.path(), &mut signals).await
    });
    drop(dir);

    for a in &exec.annotations {
        println!("{}", report::annotation_line(a));
    }
    let published = publish(&plan, Some(&exec));
    let code = match &exec.outcome {
        Outcome::Succeeded => {
            println!(
                "Built {} in {:.1} s ({} docker calls).",
                plan.image,
                exec.duration.as_secs_f64(),
                exec.docker_calls
            );
            return if published {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Outcome::SetupFailed(message) => {
            println!(
                "{}",
                report::annotation_line(&Annotation {
                    level: Level::Error,
                    message: message.clone(),
                    location: None
                })
            );
            1
        }
        Outcome::Failed { code, error } => {
            let (message, location) = match error {
                Some(e) => (format!("Build failed: {}", e.message), e.location.clone()),
                None => (
                    format!("Build failed: docker buildx build exited with code {code}"),
                    None,
                ),
            };
            println!(
                "{}",
                report::annotation_line(&Annotation {
                    level: Level::Error,
                    message,
                    location
                })
            );
            1
        }
        Outcome::Cancelled { signal } => {
            println!(
                "{}",
                report::annotation_line(&Annotation {
                    level: Level::Error,
                    message: "Build cancelled.".into(),
                    location: None
                })
            );
            128 + signal
        }
    };
    ExitCode::from(code as u8)
}
