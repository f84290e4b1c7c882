//! How far to trust the code about to be built, and which cache lane it belongs to.
//!
//! A pure function of the event: no environment, no I/O, no clock. Whenever the payload
//! cannot prove that the code was written by someone with write access and runs with the
//! privileges it was meant to have, the answer is "untrusted".

use serde::Serialize;

use crate::context::{Context, Event, Repository};

/// `main` (default branch, tags, releases) writes `:buildcache`; `pr` (everything else)
/// writes `:buildcache-pr` and never pollutes the production cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Main,
    Pr,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Main => "main",
            Lane::Pr => "pr",
        }
    }
}

/// Whether the code is trusted, with one sentence a user understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trust {
    pub trusted: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub trust: Trust,
    pub lane: Lane,
    /// The commit the decision is about, when it is not the run's own (`issue_comment`: the
    /// PR's head as the API saw it). The plan builds and labels that commit.
    pub pinned_sha: Option<String>,
}

/// An answer the GitHub API gave, or why there is none (no token, or it failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    Found(T),
    Failed(String),
}

impl<T> Lookup<T> {
    pub fn of<E: std::fmt::Display>(answer: Result<T, E>) -> Self {
        match answer {
            Ok(v) => Lookup::Found(v),
            Err(e) => Lookup::Failed(e.to_string()),
        }
    }
}

/// A pull request as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrFacts {
    pub number: u64,
    pub head_sha: String,
    pub head_ref: Option<String>,
    /// `None` when the head fork was deleted.
    pub head_repo_id: Option<u64>,
    pub head_repo_name: Option<String>,
    pub base_repo_id: Option<u64>,
}

/// A workflow run as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    pub head_repo_id: Option<u64>,
    pub head_repo_name: Option<String>,
    pub head_branch: Option<String>,
    pub head_sha: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    /// Private or internal: not readable without logging in.
    Private,
}

/// What the GitHub API said, gathered before the decision (module `github`). Empty when no
/// lookup was needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiFacts {
    pub pull_request: Option<Lookup<PrFacts>>,
    pub workflow_run: Option<Lookup<RunFacts>>,
    pub package_visibility: Option<Lookup<Visibility>>,
    /// metadata-action's repository facts (labels, `type=edge`), when the payload has no
    /// repository (a `schedule` run): `GET /repos/{owner}/{repo}`, read as the payload's is.
    pub repository: Option<Lookup<Repository>>,
    /// The built commit's committer date (RFC 3339), when `{{commit_date}}` is used and the
    /// payload does not date that commit.
    pub commit_date: Option<Lookup<String>>,
    /// Failures worth a `::warning::`.
    pub warnings: Vec<String>,
}

/// The facts the classification reads.
#[derive(Debug, Clone, Copy)]
pub struct Trigger<'a> {
    pub event_name: &'a str,
    pub event: &'a Event,
    /// `GITHUB_REF`, or the payload's ref.
    pub git_ref: Option<&'a str>,
    /// `GITHUB_ACTOR`, or the payload's sender.
    pub actor: Option<&'a str>,
    pub api: &'a ApiFacts,
}

impl<'a> Trigger<'a> {
    pub fn of(ctx: &'a Context, api: &'a ApiFacts) -> Self {
        Trigger {
            event_name: &ctx.event_name,
            event: &ctx.event,
            git_ref: ctx.git_ref.as_deref(),
            actor: ctx.actor.as_deref(),
            api,
        }
    }
}

const DEPENDABOT: &str = "dependabot[bot]";
const PR_EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
];

fn trusted(lane: Lane, reason: String) -> Decision {
    Decision { trust: Trust { trusted: true, reason }, lane, pinned_sha: None }
}

fn untrusted(reason: String) -> Decision {
    Decision { trust: Trust { trusted: false, reason }, lane: Lane::Pr, pinned_sha: None }
}

/// What a ref points at, relative to the repository's default branch.
enum RefKind<'a> {
    DefaultBranch(&'a str),
    Tag(&'a str),
    /// Another branch; the default branch is carried when known.
    Branch(&'a str, Option<&'a str>),
    Other(&'a str),
    Missing,
}

fn ref_kind<'a>(git_ref: Option<&'a str>, default_branch: Option<&'a str>) -> RefKind<'a> {
    let Some(r) = git_ref else {
        return RefKind::Missing;
    };
    if let Some(tag) = r.strip_prefix("refs/tags/") {
        return RefKind::Tag(tag);
    }
    match r.strip_prefix("refs/heads/") {
        Some(b) if Some(b) == default_branch => RefKind::DefaultBranch(b),
        Some(b) => RefKind::Branch(b, default_branch),
        None => RefKind::Other(r),
    }
}

/// Lane of trusted code at a ref: the default branch and tags are `main`, the rest `pr`.
fn by_ref(what: &str, git_ref: Option<&str>, default_branch: Option<&str>) -> Decision {
    match ref_kind(git_ref, default_branch) {
        RefKind::DefaultBranch(b) => trusted(
            Lane::Main,
            format!(
                "{what} on the default branch '{b}': code already in the repository, written by someone with write access."
            ),
        ),
        RefKind::Tag(t) => {
            trusted(Lane::Main, format!("{what} of tag '{t}': a tag can only be created by someone with write access."))
        }
        RefKind::Branch(b, Some(d)) => trusted(
            Lane::Pr,
            format!(
                "{what} on branch '{b}' of this repository, not the default branch '{d}': trusted, but kept in the pr lane so it never writes the production cache."
            ),
        ),
        RefKind::Branch(b, None) => trusted(
            Lane::Pr,
            format!(
                "{what} on branch '{b}' of this repository; the payload does not name the default branch, so it stays in the pr lane."
            ),
        ),
        RefKind::Other(r) => {
            trusted(Lane::Pr, format!("{what} on '{r}', which is neither a branch nor a tag: trusted, in the pr lane."))
        }
        RefKind::Missing => {
            trusted(Lane::Pr, format!("{what} with no ref in the payload or GITHUB_REF: trusted, in the pr lane."))
        }
    }
}

fn pull_request(t: &Trigger) -> Decision {
    let event = t.event;
    let name = t.event_name;
    let Some(pr) = &event.pull_request else {
        return untrusted(format!(
            "The {name} payload has no pull_request, so where the code comes from cannot be proven: untrusted."
        ));
    };
    let number = event.pr_number().map(|n| format!("#{n}")).unwrap_or_else(|| "(no number)".into());
    let author = pr.user.as_ref().and_then(|u| u.login.as_deref());
    if author == Some(DEPENDABOT) || t.actor == Some(DEPENDABOT) {
        return untrusted(format!(
            "Pull request {number} comes from {DEPENDABOT}: GitHub gives such runs a read-only token and no secrets, so it builds as untrusted."
        ));
    }
    let target = name == "pull_request_target";
    let base_id = pr.base.as_ref().and_then(|b| b.repo.as_ref()?.id).or(event.repository_id());
    let Some(head) = pr.head.as_ref().and_then(|h| h.repo.as_ref()) else {
        return untrusted(format!(
            "Pull request {number}'s head repository is gone (head.repo is null: the fork was deleted), so its origin cannot be proven: untrusted."
        ));
    };
    let head_name = head.full_name.as_deref().unwrap_or("an unnamed repository");
    match (head.id, base_id) {
        (Some(h), Some(b)) if h == b => {
            let branch = pr.head.as_ref().and_then(|h| h.git_ref.as_deref()).unwrap_or("?");
            trusted(
                Lane::Pr,
                format!(
                    "Pull request {number} comes from branch '{branch}' of this repository (head and base repository id {h}), so its author has write access."
                ),
            )
        }
        (Some(h), Some(b)) if target => untrusted(format!(
            "pull_request_target for {number} from the fork {head_name} (repository id {h}, not {b}): the runner holds a privileged token, so the fork's code is never logged in, given secrets or allowed to write."
        )),
        (Some(h), Some(b)) => untrusted(format!(
            "Pull request {number} comes from the fork {head_name} (repository id {h}, not {b}): builds without cache writes, push, login or secrets."
        )),
        _ => untrusted(format!(
            "Pull request {number}'s payload lacks the head or base repository id, so it cannot be shown to come from this repository: untrusted."
        )),
    }
}

fn workflow_run(t: &Trigger) -> Decision {
    let event = t.event;
    let Some(run) = &event.workflow_run else {
        return untrusted("The workflow_run payload has no workflow_run object, so the triggering code's origin cannot be proven: untrusted.".into());
    };
    // Where the triggering code lives: from the payload, else from the API.
    let (head_id, head_name, branch, source) = match (&run.head_repository, &t.api.workflow_run) {
        (Some(head), _) => (head.id, head.full_name.as_deref(), run.head_branch.as_deref(), ""),
        (None, Some(Lookup::Found(r))) => (
            r.head_repo_id,
            r.head_repo_name.as_deref(),
            r.head_branch.as_deref().or(run.head_branch.as_deref()),
            " (looked up with the GitHub API)",
        ),
        (None, Some(Lookup::Failed(why))) => {
            return untrusted(format!(
                "The workflow_run payload has no head_repository and {why}, so the triggering code's origin cannot be proven: untrusted."
            ));
        }
        (None, None) => {
            return untrusted(
                "The workflow_run payload has no head_repository, so the triggering code's origin cannot be proven: untrusted.".into(),
            );
        }
    };
    match (head_id, event.repository_id()) {
        (Some(h), Some(r)) if h == r => match (branch, event.default_branch()) {
            (Some(b), Some(d)) if b == d => trusted(
                Lane::Main,
                format!(
                    "workflow_run for code on the default branch '{b}' of this repository{source}: trusted, main lane."
                ),
            ),
            (Some(b), _) => trusted(
                Lane::Pr,
                format!(
                    "workflow_run for branch '{b}' of this repository{source}, not the default branch: trusted, pr lane."
                ),
            ),
            (None, _) => trusted(
                Lane::Pr,
                format!("workflow_run from this repository{source} with no head_branch: trusted, pr lane."),
            ),
        },
        (Some(h), Some(r)) => untrusted(format!(
            "workflow_run triggered by code from {} (repository id {h}, not this repository's {r}){source}, such as a fork pull request: untrusted.",
            head_name.unwrap_or("another repository")
        )),
        _ => untrusted(
            "workflow_run payload lacks a repository id, so the triggering code's origin cannot be proven: untrusted."
                .into(),
        ),
    }
}

/// Comment authors whose word may start a trusted build of a same-repository PR.
const MAY_TRIGGER: &[&str] = &["OWNER", "MEMBER", "COLLABORATOR"];

fn issue_comment(t: &Trigger) -> Decision {
    let event = t.event;
    let on_pr = event.issue.as_ref().is_some_and(|i| i.pull_request.is_some());
    let Some(n) = event.pr_number().filter(|_| on_pr) else {
        return untrusted(
            "issue_comment on an issue that is not a pull request: no code of a pull request to build, untrusted."
                .into(),
        );
    };
    let comment = event.comment.as_ref();
    let who = comment.and_then(|c| c.user.as_ref()?.login.as_deref()).unwrap_or("someone");
    let association = comment.and_then(|c| c.author_association.as_deref()).unwrap_or("NONE");
    let pr = match &t.api.pull_request {
        Some(Lookup::Found(pr)) => pr,
        Some(Lookup::Failed(why)) => {
            return untrusted(format!(
                "Comment on pull request #{n}: {why}, so whether that PR comes from this repository cannot be checked: untrusted."
            ));
        }
        None => {
            return untrusted(format!(
                "Comment on pull request #{n}: whether that PR comes from this repository, and whether the commenter may run builds, needs a GitHub API lookup that was not made: untrusted."
            ));
        }
    };
    let short: String = pr.head_sha.chars().take(7).collect();
    match (pr.head_repo_id, pr.base_repo_id.or(event.repository_id())) {
        (None, _) => untrusted(format!(
            "Comment on pull request #{n}, whose head repository was deleted (the GitHub API says head.repo is null): untrusted."
        )),
        (Some(h), Some(b)) if h != b => untrusted(format!(
            "Comment on pull request #{n}, which the GitHub API says comes from the fork {} (repository id {h}, not {b}): untrusted, whoever commented.",
            pr.head_repo_name.as_deref().unwrap_or("of another repository")
        )),
        (Some(_), None) => untrusted(format!(
            "Comment on pull request #{n}: the base repository id is unknown, so the PR cannot be shown to come from this repository: untrusted."
        )),
        (Some(h), Some(_)) if !MAY_TRIGGER.contains(&association) => untrusted(format!(
            "Comment by {who} ({association}) on pull request #{n} from this repository (id {h}, per the GitHub API): only an OWNER, MEMBER or COLLABORATOR may start a trusted build, so it is untrusted."
        )),
        (Some(h), Some(_)) => Decision {
            pinned_sha: Some(pr.head_sha.clone()),
            ..trusted(
                Lane::Pr,
                format!(
                    "Comment by {who} ({association}) on pull request #{n} from branch '{}' of this repository (id {h}, per the GitHub API): trusted, pr lane, pinned to the PR head {short}.",
                    pr.head_ref.as_deref().unwrap_or("?")
                ),
            )
        },
    }
}

/// Classifies the triggering event (DESIGN.md, "Trust and cache lanes").
pub fn classify(t: &Trigger) -> Decision {
    let event = t.event;
    let default = event.default_branch();
    match t.event_name {
        "push" => by_ref("Push", t.git_ref, default),
        "release" => {
            let tag = event.release.as_ref().and_then(|r| r.tag_name.as_deref()).unwrap_or("?");
            trusted(Lane::Main, format!("Release '{tag}' of this repository: only someone with write access can publish one."))
        }
        "schedule" => trusted(Lane::Main, "Scheduled run: GitHub always runs it on the default branch's code.".into()),
        "workflow_dispatch" => by_ref("Manual run (workflow_dispatch)", t.git_ref, default),
        "repository_dispatch" => by_ref("repository_dispatch", t.git_ref, default),
        "merge_group" => trusted(
            Lane::Pr,
            "Merge queue build: the queued changes were approved for merging into this repository; pr lane until they land.".into(),
        ),
        name if PR_EVENTS.contains(&name) => pull_request(t),
        "workflow_run" => workflow_run(t),
        "issue_comment" => issue_comment(t),
        other => untrusted(format!("Event '{other}' is not one this action knows to be safe to build with privileges: untrusted.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(name: &str, payload: &str, git_ref: Option<&str>) -> Decision {
        let event = Event::parse(payload).unwrap();
        classify(&Trigger { event_name: name, event: &event, git_ref, actor: None, api: &ApiFacts::default() })
    }

    #[test]
    fn branch_push_without_default_branch_stays_in_pr_lane() {
        let d = decide("push", r#"{"ref":"refs/heads/main"}"#, Some("refs/heads/main"));
        assert!(d.trust.trusted);
        assert_eq!(d.lane, Lane::Pr);
    }

    #[test]
    fn unknown_events_are_untrusted() {
        for name in ["issues", "check_run", "fork", "", "PUSH"] {
            let d = decide(name, "{}", None);
            assert!(!d.trust.trusted, "{name}");
            assert_eq!(d.lane, Lane::Pr);
        }
    }

    #[test]
    fn schedule_with_only_the_cron_line_is_trusted_main() {
        let d = decide("schedule", r#"{"schedule":"0 3 * * *"}"#, None);
        assert!(d.trust.trusted);
        assert_eq!(d.lane, Lane::Main);
    }

    #[test]
    fn dependabot_actor_is_untrusted_even_on_a_human_pr() {
        let payload = r#"{"pull_request":{"number":1,"user":{"login":"alice"},"head":{"repo":{"id":1}},"base":{"repo":{"id":1}}}}"#;
        let event = Event::parse(payload).unwrap();
        let d = classify(&Trigger {
            event_name: "pull_request",
            event: &event,
            git_ref: None,
            actor: Some(DEPENDABOT),
            api: &ApiFacts::default(),
        });
        assert!(!d.trust.trusted);
    }
}
