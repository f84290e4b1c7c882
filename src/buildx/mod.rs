//! The imperative shell around a `BuildPlan`, one file per phase: `login`, `builder` (with
//! `own_buildkit`, and `platforms` for what it runs), the cache-mount helpers (`mounts`,
//! `mounts_save`; `mounts_registry` for the stores image), `build`, the secret `scan`, `tag`
//! and `merge`, all through `docker` (the CLI with a private configuration). This file only
//! sequences them.
//!
//! Every docker call runs with a private `DOCKER_CONFIG` (mode 0700, removed when the run
//! ends), without the action's `INPUT_*` variables, and — for untrusted code — without the
//! variables that `secret-envs` names. A token only ever travels on `docker login`'s stdin;
//! `secrets:` values only in the build's environment.

mod build;
pub mod builder;
pub mod merge;
pub mod platforms;
mod tag;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::Instrument;

use crate::context::Context;
use crate::engine::docker::{Docker, Ended, Signals};
use crate::engine::{containers, login};
use crate::log::progress::CacheHits;
use crate::mounts;
use crate::plan::{BuildPlan, Mode, Verify};
use crate::step::{Annotation, Outcome};
use crate::verify::pushed as scan;
use builder::Builder;
pub use merge::duplicate_platform;
pub use platforms::{BINFMT_IMAGE, binfmt_archs, inspected_platforms, missing_platforms};

/// How the run's builder came to be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuilderReady {
    /// BuildKit started from the action's own image: nothing was pulled for it.
    pub own_image: bool,
    /// From the first builder call to the builder checked and ready.
    pub took: Duration,
}

/// What the shell did and learnt.
#[derive(Debug)]
pub struct Execution {
    pub outcome: Outcome,
    pub annotations: Vec<Annotation>,
    pub metadata: Option<Value>,
    pub cache_hits: Option<CacheHits>,
    /// What happened to each cache-mount store, and how long the helpers took.
    pub mounts: Vec<mounts::MountStatus>,
    pub mount_times: mounts::MountTimes,
    pub pushed: bool,
    pub duration: Duration,
    /// The builder once it was ready to build: the summary tells its time from the build's.
    pub builder: Option<BuilderReady>,
    pub docker_calls: usize,
    /// Cleanup mode: what the closed pull request's run deleted and kept.
    pub cleanup: Option<crate::cleanup::CleanupReport>,
    /// The signature stored beside what was pushed.
    pub signed: Option<crate::sign::publish::Published>,
}

impl Execution {
    /// A run that made no docker call (it could not, or had nothing to build).
    pub fn without_docker(outcome: Outcome, annotations: Vec<Annotation>, duration: Duration) -> Self {
        Execution {
            outcome,
            annotations,
            metadata: None,
            cache_hits: None,
            mounts: Vec::new(),
            mount_times: Default::default(),
            pushed: false,
            duration,
            builder: None,
            docker_calls: 0,
            cleanup: None,
            signed: None,
        }
    }
}

type RunResult = (Outcome, Option<Value>, Option<CacheHits>);

/// Logs in, prepares the builder, builds, and cleans up whatever happens.
pub async fn execute(ctx: &Context, plan: &BuildPlan, dir: &Path, signals: &mut Signals) -> Execution {
    let started = Instant::now();
    let mut annotations = Vec::new();
    let mut docker = match Docker::new(ctx, plan, dir) {
        Ok(d) => d,
        Err(message) => {
            return Execution::without_docker(Outcome::SetupFailed(message), annotations, started.elapsed());
        }
    };
    let mut builder = None;
    let mut mounts = Vec::new();
    let mut mount_times = mounts::MountTimes::default();
    let mut signed = None;
    let mut effects = Effects {
        annotations: &mut annotations,
        builder: &mut builder,
        mounts: &mut mounts,
        mount_times: &mut mount_times,
        signed: &mut signed,
    };
    let result = run(ctx, plan, dir, &mut docker, signals, &mut effects).await;
    if let Some(b) = builder.as_ref().filter(|b| b.remove) {
        let cancelled = matches!(result.0, Outcome::Cancelled { .. });
        if !remove_builder(&mut docker, signals, b, cancelled).await {
            let message = format!("Could not remove the builder {}; it is left on the runner.", b.name);
            annotations.push(Annotation::warning(message));
        }
    }
    let (outcome, metadata, cache_hits) = result;
    let pushed = (outcome == Outcome::Succeeded || matches!(outcome, Outcome::SignFailed(_))) && plan.push;
    Execution {
        outcome,
        annotations,
        metadata,
        cache_hits,
        mounts,
        mount_times,
        pushed,
        duration: started.elapsed(),
        builder: builder.as_ref().and_then(|b| Some(BuilderReady { own_image: b.container.is_some(), took: b.ready? })),
        docker_calls: docker.calls,
        cleanup: None,
        signed,
    }
}

/// Removing the builder must not outlive a cancelled job: bounded, and best effort.
/// A BuildKit container the run started goes with the record, its state volume with it.
async fn remove_builder(docker: &mut Docker, signals: &mut Signals, b: &Builder, cancelled: bool) -> bool {
    let limit = Duration::from_secs(if cancelled { 2 } else { 10 });
    let rm = async {
        let record = docker.output(&["buildx", "rm", b.name.as_str()], None, signals).await;
        let record = matches!(record, Ok(Ended::Exited { code: 0, .. }));
        let Some(container) = &b.container else { return record };
        containers::remove(docker, signals, container).await && record
    };
    let rm = rm.instrument(tracing::debug_span!("cleanup"));
    tokio::time::timeout(limit, rm).await.unwrap_or(false)
}

/// The build, with its cache-mount stores restored only if a step uses them: it runs without
/// them, and when a step that mounts a store with a saved copy starts for real, it is stopped,
/// the stores are restored (what that step began to write does not pass for a warm store) and it runs
/// again, everything before that step now in the builder's cache. A run whose mounting steps
/// all come from cache restores nothing; a store that earlier runs found quicker to refill
/// than to restore is left to its steps.
async fn build_with_stores(
    ctx: &Context,
    plan: &BuildPlan,
    (docker, signals): (&mut Docker, &mut Signals),
    (b, dir): (&Builder, &Path),
    (statuses, times): (&mut Vec<mounts::MountStatus>, &mut mounts::MountTimes),
    annotations: &mut Vec<Annotation>,
) -> Result<(Option<Value>, Option<CacheHits>, Ran, mounts::Found), (Outcome, Option<CacheHits>)> {
    let cancelled = |sig| (Outcome::Cancelled { signal: sig }, None);
    let finished = |end| match end {
        build::BuildEnd::Finished(metadata, hits, ran) => Ok((metadata, hits, ran)),
        build::BuildEnd::Stopped(_) => Err((Outcome::SetupFailed("the build stopped twice".into()), None)),
    };
    let Some(mp) = &plan.cache_mounts else {
        let (m, h, ran) = finished(build::build(ctx, plan, (b, &[]), docker, signals, dir, annotations).await?)?;
        return Ok((m, h, ran, mounts::Found::default()));
    };
    let saved = mounts::find_saved((docker, signals), mp, (&b.name, dir), annotations).await.map_err(cancelled)?;
    let costs = saved.as_ref().map(mounts::Saved::costs).unwrap_or_default();
    let filled = if saved.is_some() { mounts::Filled::NotNeeded } else { mounts::Filled::Nothing };
    *statuses = mounts::not_restored(mp, filled).statuses;
    let restoring = mounts::leave_to_steps(mp, &costs, statuses, annotations);
    let stop: Vec<String> = saved.iter().flat_map(|_| restoring.mounts.iter().map(|m| m.id.clone())).collect();
    let (touched, saved) = match (build::build(ctx, plan, (b, &stop), docker, signals, dir, annotations).await?, saved)
    {
        (build::BuildEnd::Stopped(ids), Some(saved)) => (ids, saved),
        (end, _) => return finished(end).map(|(m, h, ran)| (m, h, ran, mounts::Found { restored_from: None, costs })),
    };
    let started = Instant::now();
    let helper = mounts::after_stop(mp, &restoring, (&touched, b.fresh));
    let restore = mounts::restore((docker, signals), &helper, (&b.name, dir), saved, annotations);
    let restored = restore.instrument(tracing::debug_span!("cache-mounts restore")).await.map_err(cancelled)?;
    times.restore = Some(started.elapsed());
    for r in restored.statuses {
        if let Some(s) = statuses.iter_mut().find(|s| s.id == r.id) {
            *s = r;
        }
    }
    let (m, h, ran) = finished(build::build(ctx, plan, (b, &[]), docker, signals, dir, annotations).await?)?;
    Ok((m, h, ran, mounts::Found { restored_from: restored.source, costs }))
}

/// The cache-mount stores of the RUN steps that ran, with how long those steps took (ms).
type Ran = Vec<(String, u64)>;

/// After a good trusted build, the cache-mount stores its steps changed are saved, with what
/// this run measured of them. `Err`: the job was cancelled during it.
async fn save_stores(
    ctx: &Context,
    plan: &BuildPlan,
    (docker, signals): (&mut Docker, &mut Signals),
    (builder, dir): (&str, &Path),
    (ran, found): (Ran, mounts::Found),
    (statuses, times): (&mut [mounts::MountStatus], &mut mounts::MountTimes),
    annotations: &mut Vec<Annotation>,
) -> Result<(), i32> {
    let Some(mp) = plan.cache_mounts.as_ref().filter(|m| m.save_to.is_some() && plan.trust.trusted) else {
        return Ok(());
    };
    let started = Instant::now();
    let needles = crate::verify::Needles::new(&scan::secret_values(ctx, plan));
    let costs = mounts::measure(found.costs, statuses, &ran, times.restore);
    let helpers = mounts::save::Helpers { docker, signals, plan: mp, builder, dir };
    let from = (found.restored_from.as_ref(), &costs);
    let save = mounts::save::save_if_used(helpers, (&needles, ran.as_slice()), from, annotations, statuses);
    match save.instrument(tracing::debug_span!("cache-mounts save")).await {
        mounts::SaveEnd::Cancelled(sig) => return Err(sig),
        mounts::SaveEnd::Ran => times.save = Some(started.elapsed()),
        mounts::SaveEnd::Skipped => {}
    }
    Ok(())
}

/// Signs what the run pushed, when the plan says so: after the tags, so that a signing failure
/// fails the run but never leaves an image untagged.
async fn sign_pushed(
    ctx: &Context,
    plan: &BuildPlan,
    dir: &Path,
    metadata: Option<&Value>,
    (annotations, signed): (&mut Vec<Annotation>, &mut Option<crate::sign::publish::Published>),
) -> Result<(), Outcome> {
    if plan.sign.is_none() {
        return Ok(());
    }
    let digest = metadata.and_then(|m| m.get("containerimage.digest")).and_then(Value::as_str);
    let Some(digest) = digest else {
        return Err(Outcome::SignFailed("signing failed: buildx reported no digest to sign".into()));
    };
    let signing = crate::sign::publish::publish(ctx, plan, digest, dir, annotations);
    match signing.instrument(tracing::debug_span!("sign")).await {
        Ok(done) => {
            *signed = done;
            Ok(())
        }
        Err(e) => Err(Outcome::SignFailed(e.to_string())),
    }
}

/// What `run` leaves behind besides its result: messages, the builder to remove, mount reports.
struct Effects<'a> {
    annotations: &'a mut Vec<Annotation>,
    builder: &'a mut Option<Builder>,
    mounts: &'a mut Vec<mounts::MountStatus>,
    mount_times: &'a mut mounts::MountTimes,
    signed: &'a mut Option<crate::sign::publish::Published>,
}

/// The builder made or attached, checked, and timed: its name.
async fn ready_builder(
    ctx: &Context,
    plan: &BuildPlan,
    (docker, signals): (&mut Docker, &mut Signals),
    dir: &Path,
    slot: &mut Option<Builder>,
    annotations: &mut Vec<Annotation>,
) -> Result<String, Outcome> {
    let preparing = Instant::now();
    builder::prepare(ctx, plan, docker, signals, dir, slot).await?;
    let b = slot.as_mut().expect("prepare fills the builder");
    platforms::check(ctx, plan, docker, signals, b, annotations).await?;
    platforms::check_load(plan, docker, signals).await?;
    b.ready = Some(preparing.elapsed());
    Ok(b.name.clone())
}

/// The phases in order; each one's span (with its duration) is what `RUNNER_DEBUG` shows.
async fn run(
    ctx: &Context,
    plan: &BuildPlan,
    dir: &Path,
    docker: &mut Docker,
    signals: &mut Signals,
    effects: &mut Effects<'_>,
) -> RunResult {
    let annotations = &mut *effects.annotations;
    // The scan's registry client and proof keys are made while the run logs in, prepares and builds.
    let mut prepared = scan::prepare(ctx, plan);
    let setup = async {
        containers::agree_on_version(docker, signals).await?;
        login::login(ctx, plan, docker, signals, annotations).instrument(tracing::debug_span!("login")).await?;
        prepared.logged_in(plan, dir);
        if plan.mode == Mode::Merge {
            return Ok(None);
        }
        let ready = ready_builder(ctx, plan, (docker, signals), dir, effects.builder, annotations);
        ready.instrument(tracing::debug_span!("builder")).await.map(Some)
    };
    let builder_name = match setup.await {
        Ok(Some(name)) => name,
        Ok(None) => {
            let merged =
                merge::merge(plan, docker, signals, annotations).instrument(tracing::debug_span!("merge")).await;
            if merged.0 != Outcome::Succeeded {
                return merged;
            }
            return match sign_pushed(ctx, plan, dir, merged.1.as_ref(), (annotations, effects.signed)).await {
                Ok(()) => merged,
                Err(outcome) => (outcome, merged.1, None),
            };
        }
        Err(outcome) => return (outcome, None, None),
    };

    let b = effects.builder.as_ref().expect("prepare fills the builder");
    let stores = (&mut *effects.mounts, &mut *effects.mount_times);
    let built = build_with_stores(ctx, plan, (docker, signals), (b, dir), stores, annotations);
    let (mut metadata, hits, ran, found) = match built.instrument(tracing::debug_span!("build")).await {
        Ok(done) => done,
        Err((outcome, hits)) => return (outcome, None, hits),
    };

    // The scan reads the whole image: a cancelled job must not wait for it.
    let scan = scan::verify_image(ctx, plan, dir, metadata.as_ref(), prepared, annotations)
        .instrument(tracing::debug_span!("scan"));
    let verified = tokio::select! {
        v = scan => v,
        sig = signals.recv() => Err(Outcome::Cancelled { signal: sig }),
    };
    let client = match verified {
        Ok(client) => client,
        Err(outcome) => return (outcome, None, hits),
    };
    if plan.verify == Some(Verify::Registry) && plan.mode == Mode::Build {
        let tagging = tag::tag_scanned(plan, docker, signals, &builder_name, (dir, client), &mut metadata, annotations);
        if let Err(outcome) = tagging.instrument(tracing::debug_span!("tagging")).await {
            return (outcome, None, hits);
        }
    }
    if let Err(outcome) = sign_pushed(ctx, plan, dir, metadata.as_ref(), (annotations, effects.signed)).await {
        return (outcome, metadata, hits);
    }
    // …and the cache-mount stores saved after a good trusted build.
    let stores = (effects.mounts.as_mut_slice(), &mut *effects.mount_times);
    if let Err(sig) =
        save_stores(ctx, plan, (docker, signals), (&builder_name, dir), (ran, found), stores, annotations).await
    {
        return (Outcome::Cancelled { signal: sig }, None, hits);
    }
    (Outcome::Succeeded, metadata, hits)
}
