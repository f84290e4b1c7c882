//! `docker buildx build` itself: the plan's argv plus what only this run knows, secrets in the
//! child's environment only, the rawjson progress stream rendered between stop-commands
//! markers, and what its metadata and progress say afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::builder::Builder;
use crate::context::Context;
use crate::engine::docker::{Docker, GRACE, Signals, random_token};
use crate::log::progress::{self, CacheHits, Progress};
use crate::plan::{BuildPlan, Verify};
use crate::step::{Annotation, Level, Outcome};

/// How a build ended when it did not end the run.
pub(super) enum BuildEnd {
    /// Its metadata (when it succeeded), cache hits, and the cache-mount stores of the RUN
    /// steps that ran, with how long those steps took (ms).
    Finished(Option<Value>, Option<CacheHits>, Vec<(String, u64)>),
    /// Stopped as a step began to use stores to restore first: the stores of every step the
    /// stop left unfinished (those among them).
    Stopped(Vec<String>),
}

/// `Err` is the outcome that ends the run, with the hits known so far.
pub(super) type Built = Result<BuildEnd, (Outcome, Option<CacheHits>)>;

/// The stores whose first real use stops the build (empty: never stopped).
pub(super) type StopFor<'a> = &'a [String];

/// The argv to run: the plan's, on this run's builder, with its metadata file and progress.
fn argv(plan: &BuildPlan, builder: &Builder, dir: &Path, metadata_file: &Path) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    let mut rest = plan.argv[1..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            // The plan names the builder the user gave; the run may have attached it anew.
            "--builder" => {
                rest.next();
            }
            // The docker driver without the containerd store cannot export a cache.
            "--cache-to" if !builder.cache_export => {
                rest.next();
            }
            _ => argv.push(a.clone()),
        }
    }
    let context = argv.pop().unwrap_or_else(|| ".".into());
    argv.splice(2..2, ["--builder".to_string(), builder.name.clone()]);
    argv.extend(["--metadata-file".into(), metadata_file.display().to_string(), "--progress".into(), "rawjson".into()]);
    if plan.verify == Some(Verify::Layout) {
        // Not pushed, yet to be checked: exported where this run (and only it) can read it.
        argv.extend(["--output".into(), format!("type=oci,dest={},tar=false", dir.join("oci").display())]);
    }
    argv.push(context);
    argv
}

/// Secret values for a trusted build, by the environment name buildx reads.
fn secret_env(ctx: &Context, plan: &BuildPlan) -> Vec<(String, String)> {
    if !plan.trust.trusted {
        return Vec::new();
    }
    ctx.secret_values
        .0
        .iter()
        .filter(|(name, _)| plan.secret_sources.iter().any(|s| s.env.as_deref() == Some(name)))
        .map(|(name, value)| (name.clone(), value.expose().to_string()))
        .collect()
}

pub(super) async fn build(
    ctx: &Context,
    plan: &BuildPlan,
    (builder, stop): (&Builder, StopFor<'_>),
    docker: &mut Docker,
    signals: &mut Signals,
    dir: &Path,
    annotations: &mut Vec<Annotation>,
) -> Built {
    if !builder.cache_export && !plan.cache_to.is_empty() {
        annotations.push(Annotation::notice(format!(
            "Builder '{}' uses the docker driver without the containerd image store, which cannot export a cache: {} is not written. Leave `builder` empty for a docker-container builder that can.",
            builder.name,
            plan.cache_to.join(", ")
        )));
    }
    let metadata_file = dir.join("metadata.json");
    let argv = argv(plan, builder, dir, &metadata_file);
    let mut retried = false;
    // The stores the steps used, over every attempt: a retry runs them from cache.
    let mut ran: Vec<(String, u64)> = Vec::new();
    let (progress, metadata) = loop {
        let (progress, status, ended) = run_once(ctx, plan, docker, signals, (&argv, stop)).await?;
        let hits = Some(progress.cache_hits());
        emulation_notices(plan, builder, &progress, annotations);
        let new: Vec<(String, u64)> =
            progress.store_step_ms().into_iter().filter(|(id, _)| !ran.iter().any(|(r, _)| r == id)).collect();
        ran.extend(new);
        let code = status.and_then(|s| s.code()).unwrap_or(1);
        match ended {
            Interrupt::Cancelled(sig) => return Err((Outcome::Cancelled { signal: sig }, hits)),
            // A step that finished before the stop reached it: the build is done, no restore.
            Interrupt::Stopped(ids) if code != 0 => return Ok(BuildEnd::Stopped(ids)),
            _ => {}
        }
        let metadata: Option<Value> =
            std::fs::read_to_string(&metadata_file).ok().and_then(|t| serde_json::from_str(&t).ok());
        let _ = std::fs::remove_file(&metadata_file);
        if code == 0 {
            break (progress, metadata);
        }
        let error = progress::build_error(&progress.plain).map(|mut e| {
            e.location = e.location.map(|(_, line)| (plan.dockerfile.clone(), line));
            e
        });
        if !retried && is_push_race(&progress.plain) {
            retried = true;
            annotations.push(Annotation::notice(format!(
                "The registry refused a push while BuildKit was still uploading a blob ({}); the build ran once more, from its cache.",
                error.as_ref().map_or("", |e| e.message.as_str())
            )));
            continue;
        }
        warnings(plan, metadata.as_ref(), &progress, annotations);
        return Err((Outcome::Failed { code, error }, hits));
    };
    let hits = Some(progress.cache_hits());
    warnings(plan, metadata.as_ref(), &progress, annotations);
    if builder.cache_export {
        cache_reports(plan, metadata.as_ref(), &progress, annotations);
    }
    Ok(BuildEnd::Finished(metadata, hits, ran))
}

/// Emulated steps are the slow part of a multi-arch build: say how slow, and the way out (once,
/// even when the build ran twice).
fn emulation_notices(plan: &BuildPlan, builder: &Builder, progress: &Progress, annotations: &mut Vec<Annotation>) {
    let Some(native) = &builder.native else { return };
    for (platform, secs) in progress.emulated_run_seconds(&plan.platforms, native) {
        let notice = Annotation::notice(format!(
            "RUN steps for {platform} ran under emulation on this {native} builder for {secs:.1} s: build each platform on a native runner and merge the digests (README: \"Multi-arch on native runners\")."
        ));
        if !annotations.iter().any(|a| a.message.starts_with(&format!("RUN steps for {platform} ran under emulation")))
        {
            annotations.push(notice);
        }
    }
}

/// BuildKit pushes the image and its cache at once; a registry may refuse a manifest whose blob
/// the other push is still uploading ("blob unknown to registry", "provided digest did not
/// match uploaded content"). Pushed again, it goes through: every step is in the builder's
/// cache by then.
fn is_push_race(plain: &[String]) -> bool {
    let failed_push = plain.iter().any(|l| l.starts_with("ERROR: ") && l.contains("failed to push"));
    failed_push
        && plain.iter().any(|l| {
            l.contains("blob unknown to registry") || l.contains("provided digest did not match uploaded content")
        })
}

/// Why a build's stream ended early.
enum Interrupt {
    None,
    /// The job was cancelled: the signal was forwarded.
    Cancelled(i32),
    /// A step began to use these stores: SIGINT sent, to restore them first.
    Stopped(Vec<String>),
}

type Streamed = (Progress, Option<std::process::ExitStatus>, Interrupt);

/// One `docker buildx build`: spawned with the secrets in its environment, its progress
/// streamed. `Err` when docker cannot be run at all.
async fn run_once(
    ctx: &Context,
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    (argv, stop): (&[String], StopFor<'_>),
) -> Result<Streamed, (Outcome, Option<CacheHits>)> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut cmd = docker.command(&args);
    cmd.env("BUILDX_METADATA_WARNINGS", "true").envs(secret_env(ctx, plan));
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Err((Outcome::SetupFailed(format!("cannot run docker: {e}")), None)),
    };
    let started = Instant::now();
    let (progress, status, ended) = stream(child, signals, stop).await;
    let (secs, hits) = (started.elapsed().as_secs_f64(), progress.cache_hits());
    match status.and_then(|s| s.code()) {
        Some(code) => tracing::debug!(
            "docker buildx build: exit {code} in {secs:.2} s, {} of {} steps cached",
            hits.cached,
            hits.total
        ),
        None => tracing::debug!("docker buildx build: no exit code after {secs:.2} s"),
    }
    Ok((progress, status, ended))
}

/// Sends `sig` to the child (not yet reaped).
fn signal(child: &tokio::process::Child, sig: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }
}

/// Build output is untrusted text: it is streamed between stop-commands markers so that
/// nothing a Dockerfile prints can act as a workflow command. A signal is forwarded, and the
/// child killed after `GRACE`; a step that begins to use a store of `stop` gets SIGINT too.
async fn stream(mut child: tokio::process::Child, signals: &mut Signals, stop: StopFor<'_>) -> Streamed {
    let stop_token = random_token();
    println!("::group::docker buildx build");
    println!("::stop-commands::{stop_token}");
    let mut progress = Progress::default();
    let mut out_lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut out_open, mut err_open) = (true, true);
    let (mut ended, mut since) = (Interrupt::None, None);
    while out_open || err_open {
        tokio::select! {
            line = out_lines.next_line(), if out_open => match line {
                Ok(Some(l)) => println!("{l}"),
                _ => out_open = false,
            },
            line = err_lines.next_line(), if err_open => match line {
                Ok(Some(l)) => {
                    for shown in progress.feed(&l) {
                        println!("{shown}");
                    }
                    let starting = if since.is_none() { progress.stores_starting(stop) } else { Vec::new() };
                    if !starting.is_empty() {
                        println!("Stopping the build: a step begins to use the cache-mount store(s) {}; they are restored first.", starting.join(", "));
                        signal(&child, libc::SIGINT);
                        (ended, since) = (Interrupt::Stopped(starting), Some(Instant::now()));
                    }
                }
                _ => err_open = false,
            },
            sig = signals.recv(), if !matches!(ended, Interrupt::Cancelled(_)) => {
                println!("Cancelling the build ({}).", if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" });
                signal(&child, sig);
                (ended, since) = (Interrupt::Cancelled(sig), Some(Instant::now()));
            },
            _ = tokio::time::sleep(Duration::from_millis(200)), if since.is_some() => {
                if since.is_some_and(|at| at.elapsed() > GRACE) {
                    let _ = child.start_kill();
                    break;
                }
            },
        }
    }
    for shown in progress.finish() {
        println!("{shown}");
    }
    let status = match since {
        Some(_) => tokio::time::timeout(Duration::from_secs(2), child.wait()).await.ok().and_then(Result::ok),
        None => child.wait().await.ok(),
    };
    add_interrupted(&mut ended, &progress);
    println!("::{stop_token}::");
    println!("::endgroup::");
    (progress, status, ended)
}

/// Not only the stores a stop was for: every store a step left unfinished may hold its partial
/// files (another store of that step, a step running beside it).
fn add_interrupted(ended: &mut Interrupt, progress: &Progress) {
    if let Interrupt::Stopped(ids) = ended {
        for id in progress.stores_interrupted() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
}

/// Dockerfile warnings: from the metadata file when buildx wrote one, else from the stream.
fn warnings(plan: &BuildPlan, metadata: Option<&Value>, progress: &Progress, annotations: &mut Vec<Annotation>) {
    let warnings: Vec<crate::log::status::VertexWarning> = metadata
        .and_then(|m| m.get("buildx.build.warnings"))
        .and_then(|w| serde_json::from_value(w.clone()).ok())
        .unwrap_or_else(|| progress.warnings.clone());
    for w in &warnings {
        let location = w.location().map(|(_, line)| (plan.dockerfile.clone(), line));
        let a = Annotation { level: Level::Warning, message: w.message(), location };
        if !annotations.contains(&a) {
            annotations.push(a);
        }
    }
}

/// A registry cache-to that left no cache.manifest was refused, and ignore-error kept the
/// build green: say so, with the registry's own words. Missing imports are only notices.
fn cache_reports(plan: &BuildPlan, metadata: Option<&Value>, progress: &Progress, annotations: &mut Vec<Annotation>) {
    let wrote_registry_cache = plan.cache_to.iter().any(|c| c.starts_with("type=registry"));
    if wrote_registry_cache && metadata.is_some_and(|m| m.get("cache.manifest").is_none()) {
        let why = progress.cache_export_error().unwrap_or("buildx reported no reason");
        annotations.push(Annotation::warning(format!(
            "The registry cache was not written ({}): {why}. The build succeeded because the export uses ignore-error=true; check that github-token may write the cache package.",
            plan.cache_to.join(", ")
        )));
    }
    for (source, error) in progress.cache_import_errors() {
        annotations.push(Annotation::notice(format!(
            "Cache {source} was not imported ({error}); a first build has none yet."
        )));
    }
}
