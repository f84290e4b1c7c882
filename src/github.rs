//! The GitHub API, only for what the event payload cannot answer: the pull request behind
//! an `issue_comment`, a `workflow_run` whose payload lacks `head_repository`, whether the
//! cache package is public, and cache package housekeeping.
//!
//! octocrab (rustls) carries the requests; retries are ours, because the decisions depend on
//! status codes and headers (`Retry-After`) that octocrab's own retry does not look at.
//! Transient failures are retried with backoff within a total budget; when the answer still
//! is not there, the caller goes on as if the API had said "untrusted".

use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, Method, StatusCode};
use octocrab::Octocrab;
use serde::Deserialize;

use crate::context::{Context, ImageName, Masked, Repository};
use crate::plan::cache::scope_pr;
use crate::plan::meta::{self, Wanted};
use crate::trust::{ApiFacts, Lookup, PrFacts, RunFacts, Trigger, Visibility, classify};

/// How patient the client is.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub api_url: String,
    /// Every attempt and every wait of one call fits in this.
    pub budget: Duration,
    pub request_timeout: Duration,
    /// First wait between attempts; doubled each time, unless the server says `Retry-After`.
    pub backoff: Duration,
}

impl ApiConfig {
    pub fn for_run(api_url: &str) -> Self {
        ApiConfig {
            api_url: api_url.trim_end_matches('/').to_string(),
            budget: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0} {1}")]
    Status(u16, String),
    #[error("{0}")]
    Unreachable(String),
    #[error("no answer within {0} s ({1})")]
    GaveUp(u64, String),
    #[error("unexpected answer: {0}")]
    Malformed(String),
}

impl ApiError {
    pub fn is_forbidden(&self) -> bool {
        matches!(self, ApiError::Status(403, _))
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Status(404, _))
    }
}

pub struct GitHub {
    client: Octocrab,
    config: ApiConfig,
    /// When set, all calls together end by then (the decision's lookups share one budget).
    deadline: Option<Instant>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// GitHub's error body: `{"message": "..."}`.
fn message_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// Whether a failed answer is worth another try, and after how long at the least.
fn transient(a: &Answer) -> Option<Option<Duration>> {
    let retry_after = a
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let rate_limited = a.headers.get("x-ratelimit-remaining").is_some_and(|v| v == "0")
        || message_of(&a.body).to_ascii_lowercase().contains("rate limit");
    match a.status.as_u16() {
        500..=599 | 429 => Some(retry_after),
        403 if retry_after.is_some() || rate_limited => Some(retry_after),
        _ => None,
    }
}

impl GitHub {
    pub fn new(config: ApiConfig, token: &Masked) -> Result<Self, ApiError> {
        let client = Octocrab::builder()
            .base_uri(config.api_url.as_str())
            .map_err(|e| ApiError::Unreachable(format!("invalid GITHUB_API_URL '{}': {e}", config.api_url)))?
            .personal_token(token.expose().to_string())
            .set_connect_timeout(Some(config.request_timeout))
            .set_read_timeout(Some(config.request_timeout))
            .build()
            .map_err(|e| ApiError::Unreachable(format!("cannot make an HTTP client: {e}")))?;
        Ok(GitHub { client, config, deadline: None })
    }

    /// Every call from now on shares one budget, instead of one budget each.
    pub fn sharing_one_budget(mut self) -> Self {
        self.deadline = Some(Instant::now() + self.config.budget);
        self
    }

    async fn send(&self, method: &Method, path: &str, body: Option<&serde_json::Value>) -> Result<Answer, String> {
        let response = match *method {
            Method::DELETE => self.client._delete(path, None::<&()>).await,
            Method::POST => self.client._post(path, body).await,
            _ => self.client._get(path).await,
        }
        .map_err(|e| match e {
            octocrab::Error::Hyper { source, .. } => source.to_string(),
            other => format!("{other:?}").chars().take(200).collect(),
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.client.body_to_string(response).await.map_err(|e| format!("reading the answer: {e}"))?;
        Ok(Answer { status, headers, body })
    }

    /// One API call, retried while the failure is transient and the budget lasts.
    async fn call(&self, method: Method, path: &str) -> Result<Answer, ApiError> {
        self.call_with(method, path, None).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ApiError> {
        let own = Instant::now() + self.config.budget;
        let deadline = self.deadline.map_or(own, |d| d.min(own));
        let mut wait = self.config.backoff;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ApiError::GaveUp(self.config.budget.as_secs(), "the API budget was used up".into()));
            }
            let attempt =
                tokio::time::timeout(remaining.min(self.config.request_timeout), self.send(&method, path, body)).await;
            let (failure, min_wait) = match attempt {
                Ok(Ok(a)) if a.status.is_success() => {
                    tracing::debug!("{method} {path}: {}", a.status.as_u16());
                    return Ok(a);
                }
                Ok(Ok(a)) => match transient(&a) {
                    Some(after) => (format!("{} {}", a.status.as_u16(), message_of(&a.body)), after),
                    None => {
                        tracing::debug!("{method} {path}: {}, final (not retried)", a.status.as_u16());
                        return Err(ApiError::Status(a.status.as_u16(), message_of(&a.body)));
                    }
                },
                Ok(Err(e)) => (e, None),
                Err(_) => (format!("request timed out after {} ms", self.config.request_timeout.as_millis()), None),
            };
            let pause = min_wait.unwrap_or(wait);
            if Instant::now() + pause >= deadline {
                tracing::debug!("{method} {path}: {failure}; not retried: the API budget would run out");
                return Err(ApiError::GaveUp(self.config.budget.as_secs(), failure));
            }
            tracing::debug!("{method} {path}: {failure}; retrying in {} ms", pause.as_millis());
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(Duration::from_secs(8));
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<(T, HeaderMap), ApiError> {
        let a = self.call(Method::GET, path).await?;
        let value = serde_json::from_str(&a.body).map_err(|e| ApiError::Malformed(format!("{path}: {e}")))?;
        Ok((value, a.headers))
    }

    /// Stores a Sigstore bundle with GitHub's attestations API (`attestations: write`).
    pub async fn create_attestation(
        &self,
        owner: &str,
        repo: &str,
        bundle: &serde_json::Value,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({ "bundle": bundle });
        self.call_with(Method::POST, &format!("/repos/{owner}/{repo}/attestations"), Some(&body)).await.map(|_| ())
    }

    pub async fn pull_request(&self, owner: &str, repo: &str, number: u64) -> Result<PrFacts, ApiError> {
        #[derive(Deserialize)]
        struct Side {
            #[serde(rename = "ref")]
            git_ref: Option<String>,
            sha: String,
            repo: Option<RepoRef>,
        }
        #[derive(Deserialize)]
        struct Pr {
            number: u64,
            head: Side,
            base: Side,
        }
        let (pr, _): (Pr, _) = self.get_json(&format!("/repos/{owner}/{repo}/pulls/{number}")).await?;
        Ok(PrFacts {
            number: pr.number,
            head_sha: pr.head.sha,
            head_ref: pr.head.git_ref,
            head_repo_id: pr.head.repo.as_ref().map(|r| r.id),
            head_repo_name: pr.head.repo.and_then(|r| r.full_name),
            base_repo_id: pr.base.repo.map(|r| r.id),
        })
    }

    /// When the pull request was closed (RFC 3339), or `None` while it is open.
    pub async fn pull_request_closed_at(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
    ) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct Pr {
            state: String,
            closed_at: Option<String>,
        }
        let (pr, _): (Pr, _) = self.get_json(&format!("/repos/{owner}/{repo}/pulls/{number}")).await?;
        Ok(pr.closed_at.filter(|_| pr.state == "closed"))
    }

    pub async fn workflow_run(&self, owner: &str, repo: &str, id: u64) -> Result<RunFacts, ApiError> {
        #[derive(Deserialize)]
        struct Run {
            head_branch: Option<String>,
            head_sha: Option<String>,
            head_repository: Option<RepoRef>,
        }
        let (run, _): (Run, _) = self.get_json(&format!("/repos/{owner}/{repo}/actions/runs/{id}")).await?;
        Ok(RunFacts {
            head_repo_id: run.head_repository.as_ref().map(|r| r.id),
            head_repo_name: run.head_repository.and_then(|r| r.full_name),
            head_branch: run.head_branch,
            head_sha: run.head_sha,
        })
    }

    /// The repository as metadata-action reads it (`GET /repos/{owner}/{repo}`): the same
    /// fields, read the same way, as a payload's `repository`.
    pub async fn repository(&self, owner: &str, repo: &str) -> Result<Repository, ApiError> {
        Ok(self.get_json(&format!("/repos/{owner}/{repo}")).await?.0)
    }

    /// A commit's committer date, as metadata-action takes it for `{{commit_date}}`.
    pub async fn commit_date(&self, owner: &str, repo: &str, sha: &str) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Person {
            date: Option<String>,
        }
        #[derive(Deserialize)]
        struct Commit {
            committer: Option<Person>,
        }
        #[derive(Deserialize)]
        struct Answer {
            commit: Commit,
        }
        let path = format!("/repos/{owner}/{repo}/commits/{sha}");
        let (answer, _): (Answer, _) = self.get_json(&path).await?;
        answer
            .commit
            .committer
            .and_then(|c| c.date)
            .ok_or_else(|| ApiError::Malformed(format!("{path}: no committer date")))
    }

    /// The container package's endpoint: under `/orgs/` or `/users/`. When the owner's kind
    /// is unknown, the organisation route is tried first.
    async fn package_base(&self, package: &Package) -> Result<String, ApiError> {
        let name = package.name.replace('/', "%2F");
        let org = format!("/orgs/{}/packages/container/{name}", package.owner);
        let user = format!("/users/{}/packages/container/{name}", package.owner);
        match package.owner_is_org {
            Some(true) => Ok(org),
            Some(false) => Ok(user),
            None => match self.call(Method::GET, &org).await {
                Ok(_) => Ok(org),
                Err(e) if e.is_not_found() => Ok(user),
                Err(e) => Err(e),
            },
        }
    }

    pub async fn package_visibility(&self, package: &Package) -> Result<Visibility, ApiError> {
        #[derive(Deserialize)]
        struct P {
            visibility: String,
        }
        let base = self.package_base(package).await?;
        let (p, _): (P, _) = self.get_json(&base).await?;
        Ok(match p.visibility.as_str() {
            "public" => Visibility::Public,
            _ => Visibility::Private,
        })
    }

    /// Every version of the package, following the `Link: rel="next"` pages.
    pub async fn package_versions(&self, package: &Package) -> Result<Vec<PackageVersion>, ApiError> {
        let base = self.package_base(package).await?;
        let mut url = format!("{base}/versions?per_page=100&state=active");
        let mut all = Vec::new();
        for _ in 0..1000 {
            let (page, headers): (Vec<PackageVersion>, _) = self.get_json(&url).await?;
            all.extend(page);
            match next_link(&headers) {
                Some(next) => url = next,
                None => return Ok(all),
            }
        }
        Ok(all)
    }

    pub async fn delete_version(&self, package: &Package, id: u64) -> Result<(), ApiError> {
        let base = self.package_base(package).await?;
        self.call(Method::DELETE, &format!("{base}/versions/{id}")).await.map(|_| ())
    }
}

#[derive(Deserialize)]
struct RepoRef {
    id: u64,
    full_name: Option<String>,
}

/// The `rel="next"` URL of a `Link` header, as a path the client can ask for.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        if !rel.contains("rel=\"next\"") {
            return None;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        Some(match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_default(),
            None => url.to_string(),
        })
    })
}

/// A GHCR container package: `ghcr.io/<owner>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub owner: String,
    pub name: String,
    pub owner_is_org: Option<bool>,
}

impl Package {
    /// The package behind an image on ghcr.io; other registries have no packages API.
    pub fn of(image: &ImageName, ctx: &Context) -> Option<Package> {
        let path = image.as_str().strip_prefix("ghcr.io/")?;
        let (owner, name) = path.split_once('/')?;
        let repo_owner = ctx.event.repository.as_ref().and_then(|r| r.owner.as_ref());
        let owner_is_org = repo_owner
            .filter(|o| o.login.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(owner)))
            .and_then(|o| o.kind.as_deref())
            .map(|k| k == "Organization");
        Some(Package { owner: owner.to_string(), name: name.to_string(), owner_is_org })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageVersion {
    pub id: u64,
    /// The manifest digest.
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub metadata: Option<VersionMetadata>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionMetadata {
    #[serde(default)]
    pub container: Option<ContainerMetadata>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerMetadata {
    #[serde(default)]
    pub tags: Vec<String>,
}

impl PackageVersion {
    pub fn tags(&self) -> &[String] {
        self.metadata.as_ref().and_then(|m| m.container.as_ref()).map(|c| c.tags.as_slice()).unwrap_or(&[])
    }
}

/// Untagged versions created before `now - keep_days`. Tagged ones (`buildcache`,
/// `buildcache-pr`) are always kept; a version whose date cannot be read is kept too.
pub fn prunable(versions: &[PackageVersion], now: SystemTime, keep_days: u32) -> Vec<&PackageVersion> {
    let cutoff = now - Duration::from_secs(u64::from(keep_days) * 86_400);
    versions
        .iter()
        .filter(|v| v.tags().is_empty())
        .filter(|v| humantime::parse_rfc3339_weak(v.created_at.trim_end_matches('Z')).is_ok_and(|t| t < cutoff))
        .collect()
}

/// Versions whose every tag is a per-PR cache scope of a pull request closed before the
/// cut-off (the API is asked once per pull request; an open one, or no answer, keeps them).
async fn closed_pr_scopes<'a>(
    gh: &GitHub,
    ctx: &Context,
    versions: &'a [PackageVersion],
    now: SystemTime,
    keep_days: u32,
    warnings: &mut Vec<String>,
) -> Vec<&'a PackageVersion> {
    let cutoff = now - Duration::from_secs(u64::from(keep_days) * 86_400);
    let mut numbers: Vec<u64> = versions.iter().flat_map(|v| v.tags().iter().filter_map(|t| scope_pr(t))).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let (owner, repo) = (&ctx.repository.owner, &ctx.repository.name);
    let mut closed = Vec::new();
    for n in numbers {
        match gh.pull_request_closed_at(owner, repo, n).await {
            Ok(Some(at)) if humantime::parse_rfc3339_weak(at.trim_end_matches('Z')).is_ok_and(|t| t < cutoff) => {
                closed.push(n)
            }
            Ok(_) => {}
            Err(e) => {
                warnings.push(format!("Pull request #{n} could not be looked up ({e}): its cache tags are kept."))
            }
        }
    }
    versions
        .iter()
        .filter(|v| !v.tags().is_empty() && v.tags().iter().all(|t| scope_pr(t).is_some_and(|n| closed.contains(&n))))
        .collect()
}

/// Looks up what trust needs and the payload does not say; then what the metadata needs and
/// the payload does not say (`plan::meta::wanted`); then, for untrusted runs, whether the
/// cache package is public. No token: no call, and the facts say why.
pub async fn gather(ctx: &Context, config: &ApiConfig) -> ApiFacts {
    let client = match &ctx.inputs.github_token {
        Some(token) => GitHub::new(config.clone(), token).map(GitHub::sharing_one_budget),
        None => Err(ApiError::Unreachable(NO_TOKEN.into())),
    };
    let mut facts = ApiFacts::default();
    trust_lookups(ctx, &client, &mut facts).await;
    let decision = classify(&Trigger::of(ctx, &facts));
    let built = decision.pinned_sha.as_deref().or(ctx.sha.as_deref());
    metadata_lookups(ctx, &client, &meta::wanted(ctx, built), &mut facts).await;
    // An untrusted run reads the registry cache anonymously: only a public package allows it.
    if !decision.trust.trusted
        && ctx.inputs.fork_cache != crate::context::ForkCache::None
        && let (Ok(gh), Some(package)) = (&client, Package::of(&ctx.inputs.cache_image, ctx))
    {
        facts.package_visibility = Some(Lookup::of(gh.package_visibility(&package).await));
    }
    facts
}

const NO_TOKEN: &str = "no github-token was given";

/// The pull request behind an `issue_comment`, the run behind a `workflow_run` without
/// `head_repository`: a failure is a warning, and the run goes on as untrusted.
async fn trust_lookups(ctx: &Context, client: &Result<GitHub, ApiError>, facts: &mut ApiFacts) {
    let event = &ctx.event;
    let needs_pr = ctx.event_name == "issue_comment" && event.issue.as_ref().is_some_and(|i| i.pull_request.is_some());
    let run_id = event.workflow_run.as_ref().filter(|r| r.head_repository.is_none()).and_then(|r| r.id);
    let needs_run = ctx.event_name == "workflow_run" && run_id.is_some();
    let (owner, repo) = (&ctx.repository.owner, &ctx.repository.name);
    let failed = |what: &str, e: &ApiError, warnings: &mut Vec<String>| {
        let message = format!("the GitHub API lookup of {what} failed: {e}");
        if !matches!(e, ApiError::Unreachable(m) if m == NO_TOKEN) {
            warnings.push(format!("{}; the run goes on as untrusted.", capitalize(&message)));
        }
        message
    };
    if needs_pr && let Some(number) = event.pr_number() {
        facts.pull_request = Some(match client {
            Ok(gh) => match gh.pull_request(owner, repo, number).await {
                Ok(pr) => Lookup::Found(pr),
                Err(e) => Lookup::Failed(failed(&format!("pull request #{number}"), &e, &mut facts.warnings)),
            },
            Err(e) => Lookup::Failed(failed(&format!("pull request #{number}"), e, &mut facts.warnings)),
        });
    }
    if needs_run && let Some(id) = run_id {
        facts.workflow_run = Some(match client {
            Ok(gh) => match gh.workflow_run(owner, repo, id).await {
                Ok(run) => Lookup::Found(run),
                Err(e) => Lookup::Failed(failed(&format!("workflow run {id}"), &e, &mut facts.warnings)),
            },
            Err(e) => Lookup::Failed(failed(&format!("workflow run {id}"), e, &mut facts.warnings)),
        });
    }
}

/// The repository and the commit date, each asked once and only when wanted, side by side.
/// A failure is said by the plan, which names what it left out.
async fn metadata_lookups(ctx: &Context, client: &Result<GitHub, ApiError>, wanted: &Wanted, facts: &mut ApiFacts) {
    let (owner, repo) = (&ctx.repository.owner, &ctx.repository.name);
    let gh = match client {
        Ok(gh) => gh,
        Err(e) => {
            facts.repository = wanted.repository.then(|| Lookup::Failed(e.to_string()));
            facts.commit_date = wanted.commit_date_of.as_ref().map(|_| Lookup::Failed(e.to_string()));
            return;
        }
    };
    let repository = async {
        match wanted.repository {
            true => Some(gh.repository(owner, repo).await),
            false => None,
        }
    };
    let commit_date = async {
        match &wanted.commit_date_of {
            Some(sha) => Some(gh.commit_date(owner, repo, sha).await),
            None => None,
        }
    };
    let (repository, commit_date) = tokio::join!(repository, commit_date);
    facts.repository = repository.map(Lookup::of);
    facts.commit_date = commit_date.map(Lookup::of);
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct PruneReport {
    pub kept: usize,
    pub deleted: Vec<(u64, String)>,
    pub warnings: Vec<String>,
}

/// Deletes the untagged versions of the dedicated cache package older than `keep_days`.
/// A refusal (403) is a warning: housekeeping never fails a build.
pub async fn prune_cache(
    ctx: &Context,
    config: &ApiConfig,
    keep_days: u32,
    dry_run: bool,
    now: SystemTime,
) -> Result<PruneReport, String> {
    let inputs = &ctx.inputs;
    if inputs.cache_image == inputs.image {
        return Err(format!(
            "prune-cache refuses to touch {}: it is also the image package, where untagged versions are the per-platform manifests of multi-arch images. Set cache-image to a dedicated package, such as {}-cache",
            inputs.image, inputs.image
        ));
    }
    let Some(package) = Package::of(&inputs.cache_image, ctx) else {
        return Err(format!("prune-cache works on ghcr.io packages; {} is not one", inputs.cache_image));
    };
    let Some(token) = &inputs.github_token else {
        return Err("prune-cache needs github-token (with packages: write)".into());
    };
    let gh = GitHub::new(config.clone(), token).map_err(|e| e.to_string())?;
    let mut report = PruneReport::default();
    let versions = match gh.package_versions(&package).await {
        Ok(v) => v,
        Err(e) if e.is_forbidden() || e.is_not_found() => {
            report
                .warnings
                .push(format!("Cannot list the versions of {}: {e}; nothing was pruned.", inputs.cache_image));
            return Ok(report);
        }
        Err(e) => return Err(format!("cannot list the versions of {}: {e}", inputs.cache_image)),
    };
    let mut doomed = prunable(&versions, now, keep_days);
    doomed.extend(closed_pr_scopes(&gh, ctx, &versions, now, keep_days, &mut report.warnings).await);
    report.kept = versions.len() - doomed.len();
    for v in doomed {
        if !dry_run {
            match gh.delete_version(&package, v.id).await {
                Ok(()) => {}
                Err(e) if e.is_forbidden() => {
                    report.warnings.push(format!(
                        "Not allowed to delete versions of {} ({e}): give the token packages: write and the repository admin access to the package.",
                        inputs.cache_image
                    ));
                    return Ok(report);
                }
                Err(e) => {
                    report.warnings.push(format!("Could not delete version {} of {}: {e}", v.id, inputs.cache_image));
                    continue;
                }
            }
        }
        report.deleted.push((v.id, v.name.clone()));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: u64, created: &str, tags: &[&str]) -> PackageVersion {
        PackageVersion {
            id,
            name: format!("sha256:{id:064x}"),
            created_at: created.into(),
            metadata: Some(VersionMetadata {
                container: Some(ContainerMetadata { tags: tags.iter().map(|t| t.to_string()).collect() }),
            }),
        }
    }

    #[test]
    fn only_untagged_old_versions_are_prunable() {
        let now = humantime::parse_rfc3339("2026-11-28T00:00:00Z").unwrap();
        let versions = [
            version(1, "2026-11-01T00:00:00Z", &[]),
            version(2, "2026-11-01T00:00:00Z", &["buildcache"]),
            version(3, "2026-11-27T00:00:00Z", &[]),
            version(4, "2026-11-20T23:59:59Z", &[]),
            version(5, "not a date", &[]),
        ];
        let ids: Vec<u64> = prunable(&versions, now, 7).iter().map(|v| v.id).collect();
        assert_eq!(ids, [1, 4]);
        assert!(prunable(&versions, now, 60).is_empty());
    }

    #[test]
    fn follows_link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            "<https://api.github.com/orgs/o/packages/container/c/versions?page=2>; rel=\"next\", <https://api.github.com/x?page=9>; rel=\"last\"".parse().unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/orgs/o/packages/container/c/versions?page=2"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
