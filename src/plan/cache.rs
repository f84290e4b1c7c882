//! Cache refs: which registry (or GitHub Actions) caches a run reads and writes, by trust, lane
//! and — with `pr-cache: per-pr` — pull request; and what a closed pull request deletes.

use serde::Serialize;

use crate::context::{ActionsCacheMode, CacheMode, Context, ForkCache, ImageName, Inputs, PrCache};
use crate::trust::{Decision, Lane};

pub const CACHE_TAG_MAIN: &str = "buildcache";
pub const CACHE_TAG_PR: &str = "buildcache-pr";

/// The cache a run belongs to: the main lane's, the shared pr-lane one, or one pull request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Main,
    SharedPr,
    Pr(u64),
}

impl Scope {
    pub fn of(ctx: &Context, lane: Lane) -> Scope {
        match (lane, ctx.inputs.pr_cache, pull_request_number(ctx)) {
            (Lane::Main, _, _) => Scope::Main,
            (Lane::Pr, PrCache::PerPr, Some(n)) => Scope::Pr(n),
            (Lane::Pr, _, _) => Scope::SharedPr,
        }
    }

    /// `main`, `pr` or `pr-<N>`, as the plan shows it.
    pub fn name(self) -> String {
        match self {
            Scope::Main => "main".into(),
            Scope::SharedPr => "pr".into(),
            Scope::Pr(n) => format!("pr-{n}"),
        }
    }

    /// The pr-lane tag for a base tag: `buildcache-pr`, or `buildcache-pr-12` per pull request.
    pub fn pr_tag(self, base: &str) -> String {
        match self {
            Scope::Pr(n) => format!("{base}-pr-{n}"),
            Scope::Main | Scope::SharedPr => format!("{base}-pr"),
        }
    }
}

/// The pull request a run's event names: the `pull_request*` events, and a comment on a PR.
pub fn pull_request_number(ctx: &Context) -> Option<u64> {
    match ctx.event_name.as_str() {
        "pull_request"
        | "pull_request_target"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "pull_request_review_thread"
        | "issue_comment" => ctx.event.pr_number(),
        _ => None,
    }
}

/// A pull request that was closed (merged or not): its run builds nothing, it only tidies.
pub fn is_closed_pull_request(ctx: &Context) -> bool {
    matches!(ctx.event_name.as_str(), "pull_request" | "pull_request_target")
        && ctx.event.action.as_deref() == Some("closed")
}

/// Whether `tag` belongs to one of `scopes` (`buildcache-pr-12` holds `buildcache-pr-12`,
/// `buildcache-pr-12-linux-arm64` and `buildcache-pr-12.api`, never `buildcache-pr-120`).
pub fn in_scope(tag: &str, scopes: &[String]) -> bool {
    scopes.iter().any(|s| tag == s || tag.strip_prefix(s.as_str()).is_some_and(|rest| rest.starts_with(['-', '.'])))
}

/// The build a cache belongs to when a repository builds several (a matrix over `target` or
/// `file`): readable, from the Dockerfile's path and the target (`docker-dockerfile.api-prod`
/// is `dockerfile-api-prod`); `None` for the default build, whose caches keep their tags.
pub fn build_scope(inputs: &Inputs) -> Option<String> {
    let slug = |s: &str| -> String {
        let mut out = String::new();
        for c in s.chars().map(|c| c.to_ascii_lowercase()) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_end_matches('-').to_string()
    };
    let default_file = crate::context::inputs::dockerfile_path(&inputs.context, None);
    let file = inputs.file.as_ref().filter(|_| inputs.dockerfile_path() != default_file);
    let parts: Vec<String> =
        file.map(|f| slug(f)).into_iter().chain(inputs.target.as_deref().map(slug)).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return None;
    }
    let scope = parts.join("-");
    if scope.len() <= 60 {
        return Some(scope);
    }
    // Long paths: a readable start and a hash of the whole, so that two builds never share.
    use sha2::Digest;
    let hash = sha2::Sha256::digest(scope.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Some(format!("{}-{hex}", scope[..51].trim_end_matches('-')))
}

/// A cache tag: the lane's (`buildcache`, `buildcache-pr-12`…), the build scope (`.api`) and,
/// for a per-platform job, the platform (`-linux-arm64`).
pub fn cache_tag(lane_tag: &str, build: Option<&str>, platform: Option<&str>) -> String {
    let mut tag = lane_tag.to_string();
    if let Some(b) = build {
        tag.push('.');
        tag.push_str(b);
    }
    if let Some(p) = platform {
        tag.push('-');
        tag.push_str(&p.replace('/', "-"));
    }
    tag
}

/// The pull request whose per-PR scope a tag belongs to, if any.
pub fn scope_pr(tag: &str) -> Option<u64> {
    let rest = tag
        .strip_prefix(&format!("{CACHE_TAG_MAIN}-pr-"))
        .or_else(|| tag.strip_prefix(&format!("{}-pr-", super::mounts::MOUNTS_TAG_MAIN)))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    (!digits.is_empty() && (after.is_empty() || after.starts_with(['-', '.']))).then(|| digits.parse().ok()).flatten()
}

/// How a closed pull request's scope is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanupVia {
    /// ghcr.io: the GitHub packages API (the registry itself deletes nothing).
    PackagesApi,
    /// Any other registry: the distribution API (`tags/list`, `DELETE /manifests/<digest>`).
    Registry,
}

/// What a closed pull request's run does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Cleanup {
    /// Delete every tag of these scopes in the cache repository, and nothing else.
    Delete { pr: u64, repository: String, scopes: Vec<String>, via: CleanupVia },
    /// Nothing to delete, and why.
    Nothing { why: String },
}

impl Cleanup {
    pub(super) fn of(ctx: &Context, trusted: bool) -> Cleanup {
        let nothing = |why: &str| Cleanup::Nothing { why: why.into() };
        let image = &ctx.inputs.cache_image;
        match (ctx.inputs.pr_cache, pull_request_number(ctx)) {
            (PrCache::Shared, _) => nothing(
                "pr-cache is shared: a closed pull request leaves no cache tag of its own (set pr-cache: per-pr for one per pull request, deleted when it closes).",
            ),
            (_, None) => nothing("the event names no pull request number."),
            (_, Some(_)) if !trusted => {
                nothing("untrusted runs delete nothing (their pull requests never wrote a cache).")
            }
            (_, Some(n)) => Cleanup::Delete {
                pr: n,
                repository: image.to_string(),
                scopes: [CACHE_TAG_MAIN, super::mounts::MOUNTS_TAG_MAIN]
                    .iter()
                    .map(|base| Scope::Pr(n).pr_tag(base))
                    .collect(),
                via: if image.registry() == "ghcr.io" { CleanupVia::PackagesApi } else { CleanupVia::Registry },
            },
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
    /// `tag` (see `cache_tag`: per build scope and, in per-platform mode, per platform, so
    /// that parallel jobs never write the same ref).
    fn registry(image: &ImageName, tag: String) -> Self {
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

/// `--cache-from` / `--cache-to` for the run. Main builds never read a pr-lane cache (cache
/// poisoning); untrusted runs write no registry cache; a per-PR scope is read only by the
/// trusted runs that write it (an untrusted PR's scope is never written, so it reads main).
pub(super) fn caches(
    ctx: &Context,
    decision: &Decision,
    scope: Scope,
    warnings: &mut Vec<String>,
) -> (Vec<CacheRef>, Vec<CacheRef>) {
    let image = &ctx.inputs.cache_image;
    let platform = ctx.inputs.push_by_digest.then(|| ctx.inputs.platforms[0].as_str());
    let build = build_scope(&ctx.inputs);
    let tag = |lane: &str| cache_tag(lane, build.as_deref(), platform);
    let main = CacheRef::registry(image, tag(CACHE_TAG_MAIN));
    let pr = CacheRef::registry(image, tag(&scope.pr_tag(CACHE_TAG_MAIN)));
    let (mut from, mut to) = match (decision.trust.trusted, decision.lane) {
        (true, Lane::Main) => (vec![main.clone()], vec![main]),
        (true, Lane::Pr) => (vec![pr.clone(), main], vec![pr]),
        (false, _) => {
            let reads = if matches!(scope, Scope::Pr(_)) { vec![main] } else { vec![pr, main] };
            match ctx.inputs.fork_cache {
                ForkCache::RegistryRead => (reads, vec![]),
                ForkCache::Gha => {
                    let gha = CacheRef::Gha { scope: ctx.inputs.image.as_str().to_string() };
                    (std::iter::once(gha.clone()).chain(reads).collect(), vec![gha])
                }
                ForkCache::None => (vec![], vec![]),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_ref_spellings_are_exact() {
        let r = CacheRef::Registry { image: "ghcr.io/o/r".into(), tag: CACHE_TAG_MAIN.into() };
        assert_eq!(r.from_arg(), "type=registry,ref=ghcr.io/o/r:buildcache");
        assert_eq!(r.to_arg(CacheMode::Max), "type=registry,ref=ghcr.io/o/r:buildcache,mode=max,ignore-error=true");
        let g = CacheRef::Gha { scope: "ghcr.io/o/r".into() };
        assert_eq!(g.to_arg(CacheMode::Min), "type=gha,version=2,scope=ghcr.io/o/r,mode=min,ignore-error=true");
    }

    #[test]
    fn scope_tags_of_one_pull_request_only() {
        let scopes = vec!["buildcache-pr-12".to_string(), "buildcache-mounts-pr-12".to_string()];
        for tag in [
            "buildcache-pr-12",
            "buildcache-pr-12-linux-arm64",
            "buildcache-mounts-pr-12",
            "buildcache-mounts-pr-12-linux-amd64",
            "buildcache-pr-12.api-prod",
            "buildcache-mounts-pr-12.api-linux-arm64",
        ] {
            assert!(in_scope(tag, &scopes), "{tag}");
        }
        for tag in [
            "buildcache-pr-120",
            "buildcache-pr-1",
            "buildcache-pr",
            "buildcache",
            "buildcache-mounts",
            "pr-12",
            "latest",
            "buildcache-pr-13",
        ] {
            assert!(!in_scope(tag, &scopes), "{tag}");
        }
        assert_eq!(scope_pr("buildcache-pr-12"), Some(12));
        assert_eq!(scope_pr("buildcache-pr-7-linux-arm64"), Some(7));
        assert_eq!(scope_pr("buildcache-mounts-pr-30"), Some(30));
        assert_eq!(scope_pr("buildcache-pr-30.api"), Some(30));
        for tag in ["buildcache-pr", "buildcache-pr-x", "buildcache-pr-12x", "buildcache", "pr-12", "buildcache-prod"] {
            assert_eq!(scope_pr(tag), None, "{tag}");
        }
    }
}
