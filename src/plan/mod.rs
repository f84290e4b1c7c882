//! Turns context + trust into a `BuildPlan`: caches, push, login, tags, labels, secrets
//! (ids and environment names only) and the exact buildx argv.
//!
//! Pure and deterministic: no environment, no I/O, no clock. The same context always gives
//! the same plan, which is what `plan` prints and what the snapshot tests pin.

mod argv;
mod builder;
pub mod cache;
mod login;
pub mod meta;
pub mod mount_costs;
mod mounts;
pub mod options;
mod secrets;
pub mod sign;
mod tags;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::context::inputs::{BuildOptions, RegistryLogin};
use crate::context::{Context, InputError, PushPolicy};
use crate::trust::{ApiFacts, Decision, Lane, Lookup, Trust, Visibility};
pub use builder::BuilderPlan;
pub use cache::{CACHE_TAG_MAIN, CACHE_TAG_PR, CacheRef, Cleanup, CleanupVia, Scope};
pub use mounts::{
    MOUNTS_TAG_MAIN, MountsPlan, check_dockerfile, mount_dir, restore_dockerfile, save_dockerfile,
    save_on_top_dockerfile,
};
pub use tags::sanitize_tag;

/// Where buildx reads one secret from: an environment variable or a file. Never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretPlan {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// What the run does with the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Build (all platforms in one job) and, when allowed, push with tags.
    Build,
    /// Build one platform and push it by digest only, for a later merge.
    PerPlatform,
    /// Build nothing: combine pushed per-platform digests into one tagged manifest list.
    Merge,
    /// A closed pull request: build nothing, delete its cache scope.
    Cleanup,
}

/// How the built image is checked for leaked secrets, when the build uses any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verify {
    /// Pushed by digest, read back from the registry, tagged only when clean.
    Registry,
    /// Not pushed: exported to an OCI layout under RUNNER_TEMP and read there.
    Layout,
}

/// What entries of the proof ledger a pushed scan can skip layers by (`verify::proofs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proofs {
    /// Keyed by `secrets-proof-key`: values of any strength.
    RepositoryKey,
    /// Keyed by each secret's own value, when every value is one nobody can guess (decided when
    /// the values are read: the plan does not see them).
    SecretValues,
}

/// Everything the run will do, decided before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    pub mode: Mode,
    pub builder: BuilderPlan,
    pub event: String,
    pub trust: Trust,
    pub lane: Lane,
    /// Whose cache the run reads first and writes: `main`, `pr` (shared) or `pr-<N>`.
    pub cache_scope: String,
    /// With a `target` or `file` of its own, the build's caches carry this scope
    /// (`:buildcache.<scope>`), so that the builds of a matrix do not overwrite each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_scope: Option<String>,
    pub image: String,
    pub cache_image: String,
    /// Exactly the `--cache-from` values.
    pub cache_from: Vec<String>,
    /// Exactly the `--cache-to` values.
    pub cache_to: Vec<String>,
    pub push: bool,
    /// Registries to log in to (with `github-token`) before the build.
    pub login: Vec<String>,
    /// Registries logged in to with the `logins` input's credentials (trusted runs only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<RegistryLogin>,
    pub tags: Vec<String>,
    /// metadata-action's `version`: the first tag a rule made.
    pub version: Option<String>,
    /// The tags without image names (metadata-action's `tag-names`).
    pub tag_names: Vec<String>,
    /// metadata-action's `annotations` output (`manifest:key=value`…).
    pub annotations: Vec<String>,
    /// Passed to buildx as `--annotation`: only when the `annotations` input is set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotate: Vec<String>,
    /// Also load the image into the Docker daemon (`--load`); with a push, the same build.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub load: bool,
    /// build-push-action's other inputs, as this run may use them.
    #[serde(skip)]
    pub options: BuildOptions,
    pub platforms: Vec<String>,
    /// The Dockerfile, as a path in the repository (for annotations).
    pub dockerfile: String,
    pub labels: BTreeMap<String, String>,
    /// Secret ids passed to the build.
    pub secrets: Vec<String>,
    pub secret_sources: Vec<SecretPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    /// The scan skips layers the proof ledger shows clean of these very values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proofs: Option<Proofs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_mounts: Option<MountsPlan>,
    /// Cleanup mode: what the closed pull request's run deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<Cleanup>,
    pub warnings: Vec<String>,
    /// What the run says once as `::notice::` (a signature left out, and why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// Keyless signing of what the run pushes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign: Option<sign::SignPlan>,
    /// Merge mode: the `<image>@<digest>` sources of the manifest list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merge_sources: Vec<String>,
    /// The full command: `docker buildx build`, or in merge mode `docker buildx imagetools
    /// create`. Empty when there is nothing to run (an untrusted merge, a cleanup).
    pub argv: Vec<String>,
}

fn mode_of(ctx: &Context) -> Mode {
    if cache::is_closed_pull_request(ctx) {
        Mode::Cleanup
    } else if !ctx.inputs.merge_digests.is_empty() {
        Mode::Merge
    } else if ctx.inputs.push_by_digest {
        Mode::PerPlatform
    } else {
        Mode::Build
    }
}

/// metadata-action's outputs for this run: the rules of `tags` (this action's own tags when it
/// has none), for each image.
fn metadata_for(ctx: &Context, built: Option<&str>, mode: Mode, api: &ApiFacts) -> Result<meta::Metadata, InputError> {
    let defaults = if mode == Mode::Cleanup { Vec::new() } else { tags::default_tags(ctx, built) };
    let mut m = meta::evaluate(ctx, built, defaults, api)?;
    if mode == Mode::Cleanup {
        m.tags.clear();
    }
    Ok(m)
}

/// Annotations for buildx: metadata-action's, at each level, and the levelled lines as written.
fn annotations_for(ctx: &Context, m: &meta::Metadata) -> (Vec<String>, Vec<String>) {
    let levels = &ctx.meta.annotation_levels;
    let output: Vec<String> =
        levels.iter().flat_map(|l| m.annotations.iter().map(move |(k, v)| format!("{l}:{k}={v}"))).collect();
    let given = &ctx.inputs.annotations;
    let annotate =
        if given.given() { output.iter().cloned().chain(given.levelled.iter().cloned()).collect() } else { Vec::new() };
    (output, annotate)
}

/// Whether the run pushes: only trusted code, only what the policy allows, only with a tag.
fn push_for(ctx: &Context, decision: &Decision, mode: Mode, tags: &[String], warnings: &mut Vec<String>) -> bool {
    let trusted = decision.trust.trusted;
    let wanted = match ctx.inputs.push {
        PushPolicy::Auto => trusted && decision.lane == Lane::Main,
        PushPolicy::Always => true,
        PushPolicy::Never => false,
    } && mode != Mode::Cleanup;
    let mut push = wanted && trusted;
    if wanted && !trusted {
        warnings.push("push: true ignored: untrusted code is built but never pushed.".into());
    }
    // By digest, nothing is tagged: the merge job tags the manifest list.
    if push && tags.is_empty() && mode != Mode::PerPlatform {
        push = false;
        warnings.push("Nothing to push: no tag could be derived from this event; set the 'tags' input.".into());
    }
    push
}

/// The caches a run reads and writes: the lanes', then the user's own `cache-from`/`cache-to`.
/// Also says whether it writes a registry cache of its own.
fn caches_for(
    ctx: &Context,
    decision: &Decision,
    scope: Scope,
    api: &ApiFacts,
    options: &BuildOptions,
    warnings: &mut Vec<String>,
) -> (Vec<String>, Vec<String>, bool) {
    let inputs = &ctx.inputs;
    let (mut cache_from, cache_to) = cache::caches(ctx, decision, scope, warnings);
    // An untrusted run does not log in: a private cache package cannot be read at all.
    if !decision.trust.trusted && api.package_visibility == Some(Lookup::Found(Visibility::Private)) {
        let before = cache_from.len();
        cache_from.retain(|c| !c.is_registry());
        if cache_from.len() < before {
            warnings.push(format!(
                "The cache package {} is private and an untrusted run does not log in: registry cache reads dropped (make the package public to let fork PRs read it).",
                inputs.cache_image
            ));
        }
    }
    // `call: check` (outline…) builds no image: it writes no cache either.
    let cache_to = if options.call.is_some() { Vec::new() } else { cache_to };
    let writes_registry = cache_to.iter().any(CacheRef::is_registry);
    let from = cache_from.iter().map(CacheRef::from_arg).chain(options.cache_from.iter().map(|c| c.arg.clone()));
    let user_to = options.cache_to.iter().filter(|_| options.call.is_none()).map(|c| c.arg.clone());
    let to = cache_to.iter().map(|c| c.to_arg(inputs.cache_mode)).chain(user_to);
    (from.collect(), to.collect(), writes_registry)
}

fn warn_workspace(decision: &Decision, ctx: &Context, warnings: &mut Vec<String>) {
    if let (Some(pinned), Some(head)) = (&decision.pinned_sha, &ctx.workspace_head)
        && pinned != head
    {
        warnings.push(format!(
            "The workspace is at {head}, not at the PR head {pinned} that was checked: check out {pinned} (actions/checkout with ref: {pinned}) so that the code built is the code trusted."
        ));
    }
}

fn warn_merge(mode: Mode, push: bool, trusted: bool, warnings: &mut Vec<String>) {
    if mode == Mode::Merge && !push {
        let why = if trusted {
            "this run does not push (push: auto pushes only the main lane)."
        } else {
            "untrusted runs never merge."
        };
        warnings.push(format!("No merge: {why}"));
    }
}

/// `call` other than `build` (check, outline…) builds no image: nothing to push.
fn push_unless_call(push: bool, options: &BuildOptions, warnings: &mut Vec<String>) -> bool {
    if push && let Some(call) = &options.call {
        warnings.push(format!("call: {call} builds no image: nothing is pushed."));
        return false;
    }
    push
}

/// The registries a run logs in to, and with which credentials: only a trusted run, to those it
/// pushes to or writes (an `outputs` registry, the cache image's when a cache or a store is
/// saved) and those of `logins`.
fn logins_for(
    ctx: &Context,
    trusted: bool,
    (mode, push, tags): (Mode, bool, &[String]),
    (options, writes_cache): (&BuildOptions, bool),
    warnings: &mut Vec<String>,
) -> (Vec<String>, Vec<RegistryLogin>) {
    if !trusted {
        return (Vec::new(), Vec::new());
    }
    let mut written = options::written_registries(options);
    if writes_cache {
        written.insert(0, ctx.inputs.cache_image.registry().to_string());
    }
    login::logins(ctx, (mode, push, tags), written, warnings)
}

/// Builds the plan. Fails only for inputs whose problem depends on trust (a secret or a
/// registry password that a trusted run needs but that is empty or missing).
pub fn build(ctx: &Context, decision: &Decision, api: &ApiFacts) -> Result<BuildPlan, InputError> {
    let inputs = &ctx.inputs;
    let trusted = decision.trust.trusted;
    let mut warnings = Vec::new();
    let mode = mode_of(ctx);
    let secrets = secrets::secrets_for(ctx, trusted, mode, &mut warnings)?;
    login::check_credentials(ctx, trusted)?;
    warnings.extend(api.warnings.iter().cloned());
    let builder = BuilderPlan::of(inputs.builder.as_ref(), trusted, &mut warnings);
    secrets::warn_secret_build_args(ctx, &mut warnings);
    let options = options::for_run(ctx, trusted, &mut warnings);

    let scope = Scope::of(ctx, decision.lane);
    let builds = matches!(mode, Mode::Build | Mode::PerPlatform);
    let (cache_from, cache_to, writes_registry_cache) = match builds {
        true => caches_for(ctx, decision, scope, api, &options, &mut warnings),
        false => (Vec::new(), Vec::new(), false),
    };
    let cache_mounts = mounts::mounts_plan(ctx, decision, mode, scope, api);
    let cleanup = (mode == Mode::Cleanup).then(|| Cleanup::of(ctx, trusted));
    // The commit built: the one trust was decided for, else the run's.
    let built = decision.pinned_sha.as_deref().or(ctx.sha.as_deref());
    warn_workspace(decision, ctx, &mut warnings);
    let metadata = metadata_for(ctx, built, mode, api)?;
    warnings.extend(metadata.warnings.iter().cloned());
    let tags = metadata.tags.clone();
    let push = push_for(ctx, decision, mode, &tags, &mut warnings);
    let push = push_unless_call(push, &options, &mut warnings);
    let verify = secrets::verify_for(ctx, builds && !secrets.is_empty(), push, &mut warnings);
    let saves_mounts = cache_mounts.as_ref().is_some_and(|m| m.save_to.is_some());
    let writes_cache = writes_registry_cache || saves_mounts;
    let (login, credentials) = logins_for(ctx, trusted, (mode, push, &tags), (&options, writes_cache), &mut warnings);
    let merge_sources: Vec<String> =
        inputs.merge_digests.iter().map(|d| format!("{}@{}", inputs.image, d.as_str())).collect();
    warn_merge(mode, push, trusted, &mut warnings);
    let mut notices = Vec::new();
    let sign = sign::sign_for(ctx, (mode, trusted, push), &mut notices)?;
    let (annotations, annotate) = annotations_for(ctx, &metadata);
    let mut plan = BuildPlan {
        mode,
        builder,
        event: ctx.event_name.clone(),
        trust: decision.trust.clone(),
        lane: decision.lane,
        cache_scope: scope.name(),
        build_scope: cache::build_scope(inputs),
        image: inputs.image.to_string(),
        cache_image: inputs.cache_image.to_string(),
        cache_from,
        cache_to,
        push,
        login,
        credentials,
        labels: metadata.labels.iter().cloned().collect(),
        tags,
        version: metadata.version.main.clone(),
        tag_names: metadata.tag_names.clone(),
        annotations,
        annotate,
        load: options.load && builds,
        options,
        platforms: inputs.platforms.iter().map(|p| p.as_str().to_string()).collect(),
        dockerfile: inputs.dockerfile_path(),
        secrets: secrets.iter().map(|s| s.id.clone()).collect(),
        secret_sources: secrets::secret_plans(&secrets),
        proofs: (verify == Some(Verify::Registry)).then_some(match inputs.secrets_proof_key {
            Some(_) => Proofs::RepositoryKey,
            None => Proofs::SecretValues,
        }),
        verify,
        cache_mounts,
        cleanup,
        warnings,
        notices,
        sign,
        merge_sources,
        argv: Vec::new(),
    };
    plan.argv = argv::argv(ctx, &plan, &secrets);
    Ok(plan)
}
