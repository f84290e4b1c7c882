//! The binary. Without a subcommand it is the action, as the runner starts it:
//! context → (GitHub API) → trust → plan → buildx → report. `plan` prints what a run would do
//! and touches no Docker; `prune-cache` tidies the cache package.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sdi::buildx;
use sdi::context::{Context, Event, Overrides, ProcessEnv};
use sdi::engine::{Signals, random_token};
use sdi::github::{self, ApiConfig};
use sdi::plan::BuildPlan;
use sdi::report;
use sdi::step::{Annotation, Level, Outcome};
use sdi::trust::ApiFacts;

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
    /// Delete untagged versions of the cache package older than prune-keep-days, and the
    /// per-PR cache tags of pull requests closed before then (GHCR only; cache-image must name
    /// a package of its own).
    #[command(name = "prune-cache", args_override_self = true)]
    PruneCache {
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        flags: Overrides,
    },
}

fn main() -> ExitCode {
    // A job re-run with debug logging gets RUNNER_DEBUG=1: then, and only then, `::debug::`.
    report::debug::install(std::env::var_os("RUNNER_DEBUG").is_some_and(|v| v == "1"));
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Plan { json, flags }) => plan(json, &flags),
        Some(Command::PruneCache { dry_run, flags }) => prune(dry_run, &flags),
        None => action(),
    };
    // Input errors and failed builds are reported where they happen; what reaches here is
    // unexpected (the runtime, signals, the filesystem), with the context of what was tried.
    result.unwrap_or_else(|e| {
        println!("::error title=Unexpected error::{}", report::escape_data(&format!("{e:#}")));
        ExitCode::FAILURE
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the tokio runtime")
}

fn gather(rt: &tokio::runtime::Runtime, ctx: &Context) -> ApiFacts {
    let _phase = tracing::debug_span!("github").entered();
    rt.block_on(github::gather(ctx, &ApiConfig::for_run(&ctx.api_url)))
}

fn plan(json: bool, flags: &Overrides) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let decided = load(flags).and_then(|ctx| {
        let api = gather(&rt, &ctx);
        sdi::decide(&ctx, &api)
    });
    Ok(match decided {
        Ok(plan) if json => {
            println!("{}", serde_json::to_string_pretty(&plan).expect("a plan always serializes"));
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
    })
}

fn prune(dry_run: bool, flags: &Overrides) -> anyhow::Result<ExitCode> {
    let env = ProcessEnv::from_process();
    // Housekeeping needs no event: without one it runs as a manual run would.
    let has_event = flags.event_path.is_some() || std::env::var_os("GITHUB_EVENT_PATH").is_some_and(|p| !p.is_empty());
    let loaded = if has_event {
        Context::load(&env, flags)
    } else {
        let flags =
            Overrides { event_name: flags.event_name.clone().or(Some("workflow_dispatch".into())), ..flags.clone() };
        Context::with_event(&env, &flags, Event::default())
    };
    let Some(ctx) = masked(loaded) else { return Ok(ExitCode::FAILURE) };
    Ok(match run_prune(&runtime()?, &ctx, dry_run, Level::Error) {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// Prunes and reports; false when it refused (a misconfiguration), never for a 403. A refusal
/// is reported at `refusal` level: an error on its own, a warning after a good build.
fn run_prune(rt: &tokio::runtime::Runtime, ctx: &Context, dry_run: bool, refusal: Level) -> bool {
    let keep = ctx.inputs.prune_keep_days;
    let config = ApiConfig::for_run(&ctx.api_url);
    match rt.block_on(github::prune_cache(ctx, &config, keep, dry_run, SystemTime::now())) {
        Ok(r) => {
            let verb = if dry_run { "would delete" } else { "deleted" };
            for (id, digest) in &r.deleted {
                println!("{verb} version {id} ({digest}) of {}", ctx.inputs.cache_image);
            }
            println!(
                "prune-cache: {verb} {} version(s) older than {keep} day(s), untagged or cache tags of closed pull requests; kept {}.",
                r.deleted.len(),
                r.kept
            );
            for w in &r.warnings {
                println!("{}", report::warning_line(w));
            }
            true
        }
        Err(message) => {
            println!("{}", report::annotation_line(&Annotation { level: refusal, message, location: None }));
            false
        }
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Writes outputs and summary; a failure to write them fails the run.
fn publish(plan: &BuildPlan, exec: Option<&buildx::Execution>) -> bool {
    let mut ok = true;
    if let Some(path) = env_path("GITHUB_OUTPUT") {
        let delimiter = format!("ghadelimiter_{}", random_token());
        if let Err(e) = report::write_outputs(&path, &report::outputs(plan, exec), &delimiter) {
            println!("::error title=Outputs::cannot write GITHUB_OUTPUT: {}", report::escape_data(&e.to_string()));
            ok = false;
        }
    }
    if let Some(path) = env_path("GITHUB_STEP_SUMMARY")
        && let Err(e) = report::write_summary(&path, &report::summary(plan, exec))
    {
        println!("::warning::cannot write the job summary: {}", report::escape_data(&e.to_string()));
    }
    ok
}

/// Runner variables, inputs and the event, read and validated: nothing has run yet.
fn load(flags: &Overrides) -> Result<Context, sdi::context::InputError> {
    Context::load(&ProcessEnv::from_process(), flags)
}

/// The loaded context with every secret value masked before anything else is printed; bad
/// input ends here with its one error line.
fn masked(loaded: Result<Context, sdi::context::InputError>) -> Option<Context> {
    match loaded {
        Ok(ctx) => {
            for line in report::mask_lines(ctx.masks.iter().map(|m| m.expose())) {
                println!("{line}");
            }
            tracing::debug!(
                "event {} on {}, ref {:?}, sha {:?}, workspace HEAD {:?}, {} value(s) masked",
                ctx.event_name,
                ctx.repository.full(),
                ctx.git_ref,
                ctx.sha,
                ctx.workspace_head,
                ctx.masks.len()
            );
            Some(ctx)
        }
        Err(e) => {
            eprintln!("{}", report::error_line(&e));
            None
        }
    }
}

/// A private directory for the run: under RUNNER_TEMP when the container sees it, else where
/// the runner maps it for container actions, else the temporary directory. (Older runners
/// pass the host's RUNNER_TEMP to container actions without mounting it.)
fn private_dir(runner_temp: Option<&str>) -> Result<tempfile::TempDir, String> {
    let candidates: Vec<PathBuf> = runner_temp
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/github/runner_temp"), std::env::temp_dir()])
        .collect();
    for root in &candidates {
        if let Ok(dir) = tempfile::Builder::new().prefix("sdi-").tempdir_in(root) {
            return Ok(dir);
        }
    }
    Err(candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", "))
}

fn action() -> anyhow::Result<ExitCode> {
    // The context span closes after the masks are printed: no line comes before them.
    let context = tracing::debug_span!("context").entered();
    let Some(ctx) = masked(load(&Overrides::default())) else {
        return Ok(ExitCode::FAILURE);
    };
    drop(context);
    let rt = runtime()?;
    let api = gather(&rt, &ctx);
    let plan = match sdi::decide(&ctx, &api) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{}", report::error_line(&e));
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("::group::Plan");
    print!("{}", report::render_plan(&plan));
    println!("::endgroup::");
    for w in &plan.warnings {
        println!("{}", report::warning_line(w));
    }
    for n in &plan.notices {
        println!("::notice::{}", report::escape_data(n));
    }
    if ctx.inputs.dry_run {
        println!("dry-run: no docker command was run.");
        let _phase = tracing::debug_span!("report").entered();
        return Ok(if publish(&plan, None) { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    if let Some(cleanup) = &plan.cleanup {
        return Ok(clean_up(&rt, &ctx, &plan, cleanup));
    }

    // Private to this run (0700) and removed when it ends, whatever the outcome.
    let dir = match private_dir(ctx.runner_temp.as_deref()) {
        Ok(d) => d,
        Err(tried) => {
            println!(
                "::error title=RUNNER_TEMP::cannot create a private directory in any of {}",
                report::escape_data(&tried)
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut signals = {
        let _guard = rt.enter();
        Signals::install().context("cannot watch SIGINT and SIGTERM")?
    };
    let exec = rt.block_on(buildx::execute(&ctx, &plan, dir.path(), &mut signals));
    drop(dir);

    let phase = tracing::debug_span!("report").entered();
    for a in &exec.annotations {
        println!("{}", report::annotation_line(a));
    }
    let published = publish(&plan, Some(&exec));
    drop(phase);
    if exec.outcome == Outcome::Succeeded {
        println!("Built {} in {:.1} s ({} docker calls).", plan.image, exec.duration.as_secs_f64(), exec.docker_calls);
        // Housekeeping after a good trusted build; it never fails the build.
        if ctx.inputs.prune_cache && plan.trust.trusted {
            let _phase = tracing::debug_span!("prune-cache").entered();
            run_prune(&rt, &ctx, false, Level::Warning);
        }
        return Ok(if published { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let (message, location, code) = failure(&exec.outcome);
    println!("{}", report::annotation_line(&Annotation { level: Level::Error, message, location }));
    Ok(ExitCode::from(code as u8))
}

/// A closed pull request: its cache scope deleted (or why nothing is), then the report. It
/// never fails the job: a refusal is a warning.
fn clean_up(rt: &tokio::runtime::Runtime, ctx: &Context, plan: &BuildPlan, cleanup: &sdi::plan::Cleanup) -> ExitCode {
    let started = std::time::Instant::now();
    let span = tracing::debug_span!("pr-cache cleanup");
    let report = rt.block_on(tracing::Instrument::instrument(
        sdi::cleanup::run(ctx, cleanup, &ApiConfig::for_run(&ctx.api_url)),
        span,
    ));
    let mut annotations = Vec::new();
    let notice = |message: String| Annotation { level: Level::Notice, message, location: None };
    match cleanup {
        sdi::plan::Cleanup::Nothing { why } => annotations.push(notice(format!("Nothing to clean up: {why}"))),
        sdi::plan::Cleanup::Delete { repository, pr, .. } => {
            if !report.deleted.is_empty() {
                annotations.push(notice(format!("Deleted from {repository}: {}.", report.deleted.join(", "))));
            } else if report.warnings.is_empty() && report.kept.is_empty() {
                annotations.push(notice(format!("{repository} holds no cache tag of pull request #{pr}.")));
            }
            annotations.extend(report.kept.iter().map(|k| notice(format!("Kept in {repository}: {k}."))));
        }
    }
    annotations.extend(report.warnings.iter().map(|w| Annotation {
        level: Level::Warning,
        message: w.clone(),
        location: None,
    }));
    let exec = buildx::Execution {
        cleanup: Some(report),
        ..buildx::Execution::without_docker(Outcome::Succeeded, annotations, started.elapsed())
    };
    let _phase = tracing::debug_span!("report").entered();
    for a in &exec.annotations {
        println!("{}", report::annotation_line(a));
    }
    if publish(plan, Some(&exec)) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The one error line a failed run ends with, and its exit code.
fn failure(outcome: &Outcome) -> (String, Option<(String, u32)>, i32) {
    match outcome {
        Outcome::Succeeded => (String::new(), None, 0),
        Outcome::SetupFailed(message) | Outcome::SignFailed(message) => (message.clone(), None, 1),
        Outcome::Failed { error: Some(e), .. } => (format!("Build failed: {}", e.message), e.location.clone(), 1),
        Outcome::Failed { code, error: None } => {
            (format!("Build failed: docker buildx build exited with code {code}"), None, 1)
        }
        Outcome::SecretsLeaked { hits } => (
            format!(
                "{hits} secret value(s) are in the image (see the errors above): no tag was created. Mount secrets with RUN --mount=type=secret and never copy them into a file, ENV or label."
            ),
            None,
            1,
        ),
        Outcome::Cancelled { signal } => ("Build cancelled.".into(), None, 128 + signal),
    }
}
