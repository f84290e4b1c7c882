//! Turns context + trust into a `BuildPlan`: caches, push, login, tags, labels, secrets
//! (ids and environment names only) and the exact buildx argv.
//!
//! Pure and deterministic: no environment, no I/O, no clock. The same context always gives
//! the same plan, which is what `plan` prints and what the snapshot tests pin.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::context::builder::BuilderSpec;
use crate::context::inputs::{is_registry_host, is_valid_tag};
use crate::context::{
    ActionsCacheMode, CacheMode, Context, ForkCache, ImageName, InputError, PushPolicy, SecretSource, SecretSpec,
    TagInput,
};
use crate::trust::{ApiFacts, Decision, Lane, Lookup, Trust, Visibility};

pub const CACHE_TAG_MAIN: &str = "buildcache";
pub const CACHE_TAG_PR: &str = "buildcache-pr";

/// Where the build runs, decided before anything runs; `buildx` resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BuilderPlan {
    /// A `docker-container` builder made for this run and removed after it.
    New,
    /// The Docker daemon's own BuildKit (`docker` driver).
    Default,
    /// A builder of the user's: its record when the action can see it, else `container` on
    /// the daemon, attached with the remote driver.
    Named { name: String, container: String },
    /// A BuildKit endpoint, attached with the remote driver for this run.
    Remote { endpoint: String, tls: bool },
}

impl BuilderPlan {
    /// Untrusted code never runs on a BuildKit that outlives the job: its cache mounts and
    /// local cache would reach the next trusted build on that endpoint.
    fn of(builder: Option<&BuilderSpec>, trusted: bool, warnings: &mut Vec<String>) -> Self {
        match builder {
            None => BuilderPlan::New,
            Some(BuilderSpec::Default) => BuilderPlan::Default,
            Some(BuilderSpec::Named(name)) => {
                BuilderPlan::Named { name: name.clone(), container: format!("buildx_buildkit_{name}0") }
            }
            Some(BuilderSpec::Endpoint(ep)) if !trusted => {
                warnings.push(format!(
                    "Untrusted code does not run on the shared BuildKit at {}: this run builds on a builder of its own, so nothing it does can reach that BuildKit's cache.",
                    ep.url
                ));
                BuilderPlan::New
            }
            Some(BuilderSpec::Endpoint(ep)) => BuilderPlan::Remote { endpoint: ep.url.clone(), tls: ep.tls.is_some() },
        }
    }

    /// The `--builder` the plan's command names; the others are made by the run.
    fn flag(&self) -> Option<&str> {
        match self {
            BuilderPlan::Default => Some("default"),
            BuilderPlan::Named { name, .. } => Some(name),
            BuilderPlan::New | BuilderPlan::Remote { .. } => None,
        }
    }
}

/// One cache source or destination, spelled for `--cache-from` / `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheRef {
    /// A cache image in a registry (`<cache-image>:<tag>`).
    Registry { image: String, tag: String },
    /// The GitHub Actions cache, scoped to the image. Used only for `fork-cache: gha`: it is
    /// PR-scoped by GitHub, so a fork cannot poison another branch's cache.
    Gha { scope: String },
}

impl CacheRef {
    /// `tag`, suffixed with the platform in per-platform mode (`buildcache-linux-arm64`) so
    /// that parallel jobs never write the same ref.
    fn registry(image: &ImageName, tag: &str, platform: Option<&str>) -> Self {
        let tag = match platform {
            Some(p) => format!("{tag}-{}", p.replace('/', "-")),
            None => tag.to_string(),
        };
        CacheRef::Registry { image: image.as_str().to_string(), tag }
    }

    /// The `--cache-from` value.
    pub fn from_arg(&self) -> String {
        match self {
            CacheRef::Registry { image, tag } => format!("type=registry,ref={image}:{tag}"),
            // The runner does not set ACTIONS_CACHE_SERVICE_V2 for container actions, so
            // version=2 must be explicit.
            CacheRef::Gha { scope } => format!("type=gha,version=2,scope={scope}"),
        }
    }

    /// The `--cache-to` value. `ignore-error=true` always: a cache that cannot be written
    /// must never fail a build.
    pub fn to_arg(&self, mode: CacheMode) -> String {
        format!("{},mode={},ignore-error=true", self.from_arg(), mode.as_str())
    }

    pub fn is_registry(&self) -> bool {
        matches!(self, CacheRef::Registry { .. })
    }
}

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

/// `RUN --mount=type=cache` stores carried across ephemeral runners: restored into the builder
/// from an image in the cache repository before the build, saved (one layer per store) after a
/// trusted, successful one. BuildKit's registry cache never exports their contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountsPlan {
    pub mounts: Vec<crate::dockerfile::CacheMount>,
    /// Images to restore from, the first that exists.
    pub restore_from: Vec<String>,
    /// Where a trusted, successful build saves them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_to: Option<String>,
    /// A store bigger than this is not saved.
    pub max_bytes: u64,
    /// The image with a shell the helper builds run in.
    pub helper_image: String,
}

pub const MOUNTS_TAG_MAIN: &str = "buildcache-mounts";
pub const MOUNTS_TAG_PR: &str = "buildcache-mounts-pr";

/// The directory of a store inside the saved image: its id, hex-encoded (ids may hold `/`).
pub fn mount_dir(id: &str) -> String {
    format!("m-{}", id.bytes().map(|b| format!("{b:02x}")).collect::<String>())
}

/// `--mount=type=cache,…` as the build itself declares the store, so the helper reaches the
/// very same one (id, sharing, ownership).
fn mount_flag(m: &crate::dockerfile::CacheMount, target: &str) -> String {
    let mut f = format!("--mount=type=cache,id={},target={target}", m.id);
    for (k, v) in [("sharing", &m.sharing), ("uid", &m.uid), ("gid", &m.gid), ("mode", &m.mode)] {
        if let Some(v) = v {
            f.push_str(&format!(",{k}={v}"));
        }
    }
    f
}

/// The helper Dockerfile that copies the saved contents (image `from`) into the stores.
pub fn restore_dockerfile(plan: &MountsPlan, from: &str) -> String {
    // No `# syntax=` line: the builder's own frontend reads these, no frontend image is pulled.
    let mut d = format!("FROM {from} AS saved\nFROM {}\n", plan.helper_image);
    for m in &plan.mounts {
        let dir = mount_dir(&m.id);
        // Saved layers come back owned by root: give a store declared with uid/gid its owner.
        let chown = match (&m.uid, &m.gid) {
            (None, None) => String::new(),
            (uid, gid) => {
                format!(" && chown -R {}:{} /sdi-mount", uid.as_deref().unwrap_or("0"), gid.as_deref().unwrap_or("0"))
            }
        };
        d.push_str(&format!(
            "RUN {} --mount=type=bind,from=saved,target=/sdi-saved \\\n    if [ -d /sdi-saved/{dir} ]; then cp -a /sdi-saved/{dir}/. /sdi-mount/{chown}; fi; echo \"sdi-restored {dir} $(du -sk /sdi-mount | cut -f1)\"\n",
            mount_flag(m, "/sdi-mount")
        ));
    }
    d
}

/// The helper Dockerfile that copies each store out (one stage a store, a store over the size
/// limit left empty) into an image with one layer a store. `SDI_RUN` changes every run, so the
/// copy is never served from cache.
pub fn save_dockerfile(plan: &MountsPlan) -> String {
    let max_kib = plan.max_bytes / 1024;
    let mut d = String::new();
    for (i, m) in plan.mounts.iter().enumerate() {
        let dir = mount_dir(&m.id);
        d.push_str(&format!(
            "FROM {} AS m{i}\nARG SDI_RUN\nRUN {} \\\n    mkdir -p /sdi-out && kib=$(du -sk /sdi-mount | cut -f1) && echo \"sdi-mount-size {dir} $kib $SDI_RUN\" && \\\n    if [ \"$kib\" -le {max_kib} ]; then cp -a /sdi-mount/. /sdi-out/; else echo \"sdi-mount-too-big {dir}\"; fi\n",
            plan.helper_image,
            mount_flag(m, "/sdi-mount")
        ));
    }
    d.push_str("FROM scratch\n");
    for (i, m) in plan.mounts.iter().enumerate() {
        d.push_str(&format!("COPY --from=m{i} /sdi-out /{}\n", mount_dir(&m.id)));
    }
    d
}

/// Everything the run will do, decided before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    pub mode: Mode,
    pub builder: BuilderPlan,
    pub event: String,
    pub trust: Trust,
    pub lane: Lane,
    pub image: String,
    pub cache_image: String,
    /// Exactly the `--cache-from` values.
    pub cache_from: Vec<String>,
    /// Exactly the `--cache-to` values.
    pub cache_to: Vec<String>,
    pub push: bool,
    /// Registries to log in to (with `github-token`) before the build.
    pub login: Vec<String>,
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
    /// The Dockerfile, as a path in the repository (for annotations).
    pub dockerfile: String,
    pub labels: BTreeMap<String, String>,
    /// Secret ids passed to the build.
    pub secrets: Vec<String>,
    pub secret_sources: Vec<SecretPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_mounts: Option<MountsPlan>,
    pub warnings: Vec<String>,
    /// Merge mode: the `<image>@<digest>` sources of the manifest list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merge_sources: Vec<String>,
    /// The full command: `docker buildx build`, or in merge mode `docker buildx imagetools
    /// create`. Empty when there is nothing to run (an untrusted merge).
    pub argv: Vec<String>,
}

/// `[A-Za-z0-9_.-]`, no leading `.` or `-`, at most 128 characters; `None` if nothing is left.
pub fn sanitize_tag(raw: &str) -> Option<String> {
    let replaced: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).collect();
    let trimmed: String = replaced.trim_start_matches(['.', '-']).chars().take(128).collect();
    Some(trimmed).filter(|t| is_valid_tag(t))
}

/// Tags for a git tag or release: semver `v1.2.3` → `1.2.3`, `1.2`, `1`; pre-releases get the
/// full version only. A `0.x` release gets no bare `0`: semver promises nothing across 0.x
/// minors, so a floating `0` tag would move users onto breaking changes.
fn version_tags(tag: &str, prerelease: bool) -> Vec<String> {
    let bare = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    match semver::Version::parse(bare) {
        Ok(v) => {
            let full = sanitize_tag(bare).into_iter();
            if prerelease || !v.pre.is_empty() {
                return full.collect();
            }
            let minor = format!("{}.{}", v.major, v.minor);
            let major = (v.major > 0).then(|| v.major.to_string());
            full.chain(Some(minor)).chain(major).collect()
        }
        Err(_) => sanitize_tag(tag).into_iter().collect(),
    }
}

/// The registry a full image reference lives in, by docker's rule (Docker Hub otherwise).
fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if is_registry_host(first) => first,
        _ => "docker.io",
    }
}

fn short_sha(sha: Option<&str>) -> Option<String> {
    let sha = sha?;
    (sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("sha-{}", &sha[..7]))
}

/// Tags when the `tags` input is empty, from what is being built.
fn default_tags(ctx: &Context, built: Option<&str>) -> Vec<String> {
    let event = &ctx.event;
    let sha = short_sha(built);
    let default_branch = event.default_branch();
    let for_branch = |branch: &str| -> Vec<String> {
        if Some(branch) == default_branch {
            std::iter::once("latest".to_string()).chain(sha.clone()).collect()
        } else {
            sanitize_tag(branch).into_iter().collect()
        }
    };
    match ctx.event_name.as_str() {
        "pull_request"
        | "pull_request_target"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "pull_request_review_thread" => event.pr_number().map(|n| vec![format!("pr-{n}")]).unwrap_or_default(),
        // A comment-triggered build names the PR and the exact head it was checked against.
        "issue_comment" => event.pr_number().map(|n| format!("pr-{n}")).into_iter().chain(sha).collect(),
        "release" => {
            let release = event.release.as_ref();
            match release.and_then(|r| r.tag_name.as_deref()) {
                Some(tag) => version_tags(tag, release.and_then(|r| r.prerelease).unwrap_or(false)),
                None => sha.into_iter().collect(),
            }
        }
        "merge_group" => sha.into_iter().collect(),
        "schedule" => std::iter::once("nightly".to_string()).chain(sha).collect(),
        "workflow_run" => match event.workflow_run.as_ref().and_then(|r| r.head_branch.as_deref()) {
            Some(branch) => for_branch(branch),
            None => sha.into_iter().collect(),
        },
        _ => match ctx.git_ref.as_deref() {
            Some(r) if r.starts_with("refs/tags/") => version_tags(&r["refs/tags/".len()..], false),
            Some(r) if r.starts_with("refs/heads/") => for_branch(&r["refs/heads/".len()..]),
            _ => sha.into_iter().collect(),
        },
    }
}

fn labels(ctx: &Context, tags: &[String], built: Option<&str>) -> BTreeMap<String, String> {
    const P: &str = "org.opencontainers.image";
    let url = format!("{}/{}", ctx.server_url.trim_end_matches('/'), ctx.repository.full());
    let mut labels = BTreeMap::new();
    // GHCR links the package to the repository through `source`.
    labels.insert(format!("{P}.source"), url.clone());
    labels.insert(format!("{P}.url"), url);
    labels.insert(format!("{P}.title"), ctx.repository.name.clone());
    if let Some(sha) = built {
        labels.insert(format!("{P}.revision"), sha.to_string());
    }
    if let Some(time) = ctx.event.commit_time() {
        labels.insert(format!("{P}.created"), time.to_string());
    }
    if let Some(version) = tags.first().and_then(|t| t.rsplit_once(':')).map(|(_, t)| t) {
        labels.insert(format!("{P}.version"), version.to_string());
    }
    for (k, v) in &ctx.inputs.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels
}

/// Names and value shapes of build-args that are most likely secrets. Build arguments persist
/// in the image history and in provenance, so they deserve a warning.
fn looks_like_secret(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let by_name =
        ["TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL", "AUTH"].iter().any(|w| upper.contains(w));
    let by_value =
        ["ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "npm_", "glpat-", "xoxb-", "xoxp-", "sk_live_", "AKIA", "ASIA"]
            .iter()
            .any(|p| value.starts_with(p) && value.len() >= 16);
    by_name || by_value
}

fn missing_secret(spec: &SecretSpec) -> InputError {
    let message = match &spec.source {
        SecretSource::Value { .. } => format!(
            "the value of '{}' is empty: a secret that is not set in the repository's settings expands to nothing; set it, or remove the line",
            spec.id
        ),
        SecretSource::Env { env } => format!(
            "'{}' reads {env}, which is not set or is empty (buildx would silently pass an empty secret): pass it to the step with env: {env}: ${{{{ secrets.{env} }}}}",
            spec.id
        ),
        SecretSource::File { path } => {
            format!("'{}' names '{path}', which is not a readable file", spec.id)
        }
    };
    InputError::new(spec.input, message)
}

/// Cache sources and destinations for the run's trust and lane.
fn caches(ctx: &Context, decision: &Decision, warnings: &mut Vec<String>) -> (Vec<CacheRef>, Vec<CacheRef>) {
    let image = &ctx.inputs.cache_image;
    let platform = ctx.inputs.push_by_digest.then(|| ctx.inputs.platforms[0].as_str());
    let main = CacheRef::registry(image, CACHE_TAG_MAIN, platform);
    let pr = CacheRef::registry(image, CACHE_TAG_PR, platform);
    let (mut from, mut to) = match (decision.trust.trusted, decision.lane) {
        // Main builds never read :buildcache-pr: that would let a PR poison a release.
        (true, Lane::Main) => (vec![main.clone()], vec![main]),
        (true, Lane::Pr) => (vec![pr.clone(), main], vec![pr]),
        (false, _) => match ctx.inputs.fork_cache {
            ForkCache::RegistryRead => (vec![pr, main], vec![]),
            ForkCache::Gha => {
                let gha = CacheRef::Gha { scope: ctx.inputs.image.as_str().to_string() };
                (vec![gha.clone(), pr, main], vec![gha])
            }
            ForkCache::None => (vec![], vec![]),
        },
    };
    let mode = &ctx.actions_cache_mode;
    if let ActionsCacheMode::Unknown(v) = mode {
        warnings.push(format!("ACTIONS_CACHE_MODE='{v}' is not one of read, write, write-only, none: treated as read, no cache is written."));
    }
    if !mode.allows_write() && !to.is_empty() {
        to.clear();
        if !matches!(mode, ActionsCacheMode::Unknown(_)) {
            warnings.push("ACTIONS_CACHE_MODE forbids cache writes: no cache is exported.".into());
        }
    }
    if !mode.allows_read() && !from.is_empty() {
        from.clear();
        warnings.push("ACTIONS_CACHE_MODE forbids cache reads: no cache is imported.".into());
    }
    (from, to)
}

/// Builds the plan. Fails only for inputs whose problem depends on trust (a secret that a
/// trusted run needs but that is empty or missing).
pub fn build(ctx: &Context, decision: &Decision, api: &ApiFacts) -> Result<BuildPlan, InputError> {
    let inputs = &ctx.inputs;
    let trusted = decision.trust.trusted;
    let mut warnings = Vec::new();

    let mode = if !inputs.merge_digests.is_empty() {
        Mode::Merge
    } else if inputs.push_by_digest {
        Mode::PerPlatform
    } else {
        Mode::Build
    };
    let secrets: Vec<&SecretSpec> = if mode == Mode::Merge {
        // A merge builds nothing: no secret is passed, none is needed.
        Vec::new()
    } else if trusted {
        if let Some(missing) = inputs.secrets.iter().find(|s| !s.available) {
            return Err(missing_secret(missing));
        }
        inputs.secrets.iter().collect()
    } else {
        if !inputs.secrets.is_empty() {
            let ids: Vec<&str> = inputs.secrets.iter().map(|s| s.id.as_str()).collect();
            warnings.push(format!(
                "Build secrets withheld from untrusted code: {}. RUN --mount=type=secret steps run without them.",
                ids.join(", ")
            ));
        }
        Vec::new()
    };

    warnings.extend(api.warnings.iter().cloned());
    let builder = BuilderPlan::of(inputs.builder.as_ref(), trusted, &mut warnings);
    for (name, value) in &inputs.build_args {
        if looks_like_secret(name, value) {
            warnings.push(format!(
                "build-arg {name} looks like a secret: build arguments stay in the image history and its provenance. Pass it with secret-envs ({}={name}) and RUN --mount=type=secret,id={},env={name}.",
                name.to_ascii_lowercase(),
                name.to_ascii_lowercase()
            ));
        }
    }
    let (mut cache_from, cache_to) =
        if mode == Mode::Merge { (Vec::new(), Vec::new()) } else { caches(ctx, decision, &mut warnings) };
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
    // Cache-mount stores: restored for every run that builds, saved only by trusted ones, in the
    // lane's own image; untrusted runs read the main lane only. ACTIONS_CACHE_MODE applies.
    let cache_mounts = match (&ctx.dockerfile, mode) {
        (Some(text), Mode::Build | Mode::PerPlatform) if inputs.cache_mounts => {
            let mounts = crate::dockerfile::cache_mounts(text, &inputs.build_args);
            (!mounts.is_empty()).then(|| {
                let image = &inputs.cache_image;
                let suffix = if inputs.push_by_digest {
                    format!("-{}", inputs.platforms[0].as_str().replace('/', "-"))
                } else {
                    String::new()
                };
                let main = format!("{image}:{MOUNTS_TAG_MAIN}{suffix}");
                let pr = format!("{image}:{MOUNTS_TAG_PR}{suffix}");
                let (mut restore_from, mut save_to) = match (trusted, decision.lane) {
                    (true, Lane::Main) => (vec![main.clone()], Some(main)),
                    (true, Lane::Pr) => (vec![pr.clone(), main], Some(pr)),
                    (false, _) => (vec![main], None),
                };
                if !ctx.actions_cache_mode.allows_write() {
                    save_to = None;
                }
                if !ctx.actions_cache_mode.allows_read() {
                    restore_from.clear();
                }
                MountsPlan {
                    mounts,
                    restore_from,
                    save_to,
                    max_bytes: inputs.cache_mounts_max_bytes,
                    helper_image: inputs.cache_mounts_image.clone(),
                }
            })
        }
        _ => None,
    };
    let mut cache_mounts = cache_mounts;
    if let Some(m) = cache_mounts.as_mut()
        && !trusted
        && api.package_visibility == Some(Lookup::Found(Visibility::Private))
    {
        m.restore_from.clear();
    }
    // The commit built: the one trust was decided for, else the run's.
    let built = decision.pinned_sha.as_deref().or(ctx.sha.as_deref());
    if let (Some(pinned), Some(head)) = (&decision.pinned_sha, &ctx.workspace_head)
        && pinned != head
    {
        warnings.push(format!(
            "The workspace is at {head}, not at the PR head {pinned} that was checked: check out {pinned} (actions/checkout with ref: {pinned}) so that the code built is the code trusted."
        ));
    }

    let tags: Vec<String> = if inputs.tags.is_empty() {
        default_tags(ctx, built).into_iter().map(|t| format!("{}:{t}", inputs.image)).collect()
    } else {
        inputs
            .tags
            .iter()
            .map(|t| match t {
                TagInput::Bare(tag) => format!("{}:{tag}", inputs.image),
                TagInput::Full(full) => full.clone(),
            })
            .collect()
    };

    let wanted = match inputs.push {
        PushPolicy::Auto => trusted && decision.lane == Lane::Main,
        PushPolicy::Always => true,
        PushPolicy::Never => false,
    };
    let mut push = wanted && trusted;
    if wanted && !trusted {
        warnings.push("push: true ignored: untrusted code is built but never pushed.".into());
    }
    // By digest, nothing is tagged: the merge job tags the manifest list.
    if push && tags.is_empty() && mode != Mode::PerPlatform {
        push = false;
        warnings.push("Nothing to push: no tag could be derived from this event; set the 'tags' input.".into());
    }
    // A build that uses secrets is checked for them before any tag exists.
    let verify = if mode == Mode::Merge || secrets.is_empty() {
        None
    } else if !inputs.verify_secrets {
        warnings.push("verify-secrets: false: the image is not checked for leaked secret values.".into());
        None
    } else if push {
        Some(Verify::Registry)
    } else {
        Some(Verify::Layout)
    };

    let mut login: Vec<String> = Vec::new();
    if trusted {
        let saves_mounts = cache_mounts.as_ref().is_some_and(|m| m.save_to.is_some());
        let writes_cache = cache_to.iter().any(CacheRef::is_registry) || saves_mounts;
        // A full reference in `tags` may name another registry: each one pushed to needs a login.
        let pushed_to: Vec<&str> = match (push, mode) {
            (false, _) => Vec::new(),
            (true, Mode::PerPlatform) => vec![inputs.image.registry()],
            (true, _) => tags.iter().map(|t| registry_of(t)).collect(),
        };
        let cache = writes_cache.then(|| inputs.cache_image.registry());
        for registry in pushed_to.into_iter().chain(cache) {
            if !login.iter().any(|r| r == registry) {
                login.push(registry.to_string());
            }
        }
        if inputs.github_token.is_none() && !login.is_empty() {
            warnings.push(format!(
                "No github-token: no login to {}; the push and cache export fail unless the builder already has credentials.",
                login.join(", ")
            ));
            login.clear();
        }
    }

    let labels = labels(ctx, &tags, built);
    let platforms: Vec<String> = inputs.platforms.iter().map(|p| p.as_str().to_string()).collect();
    let dockerfile = inputs.dockerfile_path();
    let secret_args: Vec<String> = secrets.iter().map(|s| s.buildx_arg()).collect();
    let secret_sources = secrets
        .iter()
        .map(|s| match &s.source {
            SecretSource::Value { env } | SecretSource::Env { env } => {
                SecretPlan { id: s.id.clone(), env: Some(env.clone()), file: None }
            }
            SecretSource::File { path } => SecretPlan { id: s.id.clone(), env: None, file: Some(path.clone()) },
        })
        .collect();
    let secrets: Vec<String> = secrets.iter().map(|s| s.id.clone()).collect();

    // A merge builds nothing: its command is `imagetools create`, when it may push.
    let merge_sources: Vec<String> =
        inputs.merge_digests.iter().map(|d| format!("{}@{}", inputs.image, d.as_str())).collect();
    if mode == Mode::Merge && !push {
        let why = if trusted {
            "this run does not push (push: auto pushes only the main lane)."
        } else {
            "untrusted runs never merge."
        };
        warnings.push(format!("No merge: {why}"));
    }
    let cache_from: Vec<String> = cache_from.iter().map(CacheRef::from_arg).collect();
    let cache_to: Vec<String> = cache_to.iter().map(|c| c.to_arg(inputs.cache_mode)).collect();

    let argv: Vec<String> = if mode == Mode::Merge {
        let mut argv = Vec::new();
        if push {
            argv = ["docker", "buildx", "imagetools", "create"].map(String::from).to_vec();
            if let Some(b) = builder.flag() {
                argv.extend(["--builder".to_string(), b.to_string()]);
            }
            for t in &tags {
                argv.extend(["--tag".to_string(), t.clone()]);
            }
            argv.extend(merge_sources.iter().cloned());
        }
        argv
    } else {
        let mut argv: Vec<String> = ["docker", "buildx", "build"].map(String::from).to_vec();
        let mut flag = |name: &str, value: &str| {
            argv.push(name.to_string());
            argv.push(value.to_string());
        };
        if let Some(b) = builder.flag() {
            flag("--builder", b);
        }
        if let Some(f) = &inputs.file {
            flag("--file", f);
        }
        if let Some(t) = &inputs.target {
            flag("--target", t);
        }
        flag("--platform", &platforms.join(","));
        // Tagged here only when no scan must come first; otherwise the tags follow a clean scan.
        if mode == Mode::Build && verify != Some(Verify::Registry) {
            for t in &tags {
                flag("--tag", t);
            }
        }
        for (k, v) in &labels {
            flag("--label", &format!("{k}={v}"));
        }
        for (k, v) in &inputs.build_args {
            flag("--build-arg", &format!("{k}={v}"));
        }
        for s in &secret_args {
            flag("--secret", s);
        }
        for c in &cache_from {
            flag("--cache-from", c);
        }
        for c in &cache_to {
            flag("--cache-to", c);
        }
        if let Some(p) = &inputs.provenance {
            argv.push(format!("--provenance={p}"));
        }
        if let Some(s) = &inputs.sbom {
            argv.push(format!("--sbom={s}"));
        }
        // By digest: a per-platform job (the merge tags it), or a build whose tags wait for the scan.
        let by_digest = mode == Mode::PerPlatform || verify == Some(Verify::Registry);
        match (push, by_digest) {
            (true, true) => argv.extend([
                "--output".to_string(),
                format!("type=image,name={},push-by-digest=true,name-canonical=true,push=true", inputs.image),
            ]),
            (true, false) => argv.push("--push".into()),
            (false, _) => {}
        }
        argv.push(inputs.context.clone());
        argv
    };

    Ok(BuildPlan {
        mode,
        builder,
        event: ctx.event_name.clone(),
        trust: decision.trust.clone(),
        lane: decision.lane,
        image: inputs.image.to_string(),
        cache_image: inputs.cache_image.to_string(),
        cache_from,
        cache_to,
        push,
        login,
        tags,
        platforms,
        dockerfile,
        labels,
        secrets,
        secret_sources,
        verify,
        cache_mounts,
        warnings,
        merge_sources,
        argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags_follow_semver() {
        assert_eq!(version_tags("v1.2.3", false), ["1.2.3", "1.2", "1"]);
        assert_eq!(version_tags("1.2.3", false), ["1.2.3", "1.2", "1"]);
        assert_eq!(version_tags("v1.2.3-rc.1", false), ["1.2.3-rc.1"]);
        assert_eq!(version_tags("v2.0.0", true), ["2.0.0"]);
        assert_eq!(version_tags("v0.4.1", false), ["0.4.1", "0.4"]);
        assert_eq!(version_tags("v1.2.3+build.5", false), ["1.2.3-build.5", "1.2", "1"]);
        assert_eq!(version_tags("simple-tag", false), ["simple-tag"]);
        assert_eq!(version_tags("release/2024", false), ["release-2024"]);
    }

    #[test]
    fn sanitize_tag_obeys_the_tag_grammar() {
        assert_eq!(sanitize_tag("feature/Login-Page").as_deref(), Some("feature-Login-Page"));
        assert_eq!(sanitize_tag("-.-x").as_deref(), Some("x"));
        assert_eq!(sanitize_tag("ümlaut").as_deref(), Some("mlaut"));
        assert_eq!(sanitize_tag("///"), None);
        assert_eq!(sanitize_tag(&"a".repeat(300)).map(|t| t.len()), Some(128));
    }

    #[test]
    fn cache_ref_spellings_are_exact() {
        let r = CacheRef::Registry { image: "ghcr.io/o/r".into(), tag: CACHE_TAG_MAIN.into() };
        assert_eq!(r.from_arg(), "type=registry,ref=ghcr.io/o/r:buildcache");
        assert_eq!(r.to_arg(CacheMode::Max), "type=registry,ref=ghcr.io/o/r:buildcache,mode=max,ignore-error=true");
        let g = CacheRef::Gha { scope: "ghcr.io/o/r".into() };
        assert_eq!(g.to_arg(CacheMode::Min), "type=gha,version=2,scope=ghcr.io/o/r,mode=min,ignore-error=true");
    }
}
