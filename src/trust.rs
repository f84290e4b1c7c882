//! How far to trust the code about to be built, and which cache lane it belongs to.
//!
//! A pure function of the event: no environment, no I/O, no clock. Whenever the payload
//! cannot prove that the code was written by someone with write access and runs with the
//! privileges it was meant to have, the answer is "untrusted".

use serde::Serialize;

use crate::context::{Context, Event};

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
}

impl<'a> Trigger<'a> {
    pub fn of(ctx: &'a Context) -> Self {
        Trigger {
            event_name: &ctx.event_name,
            event: &ctx.event,
            git_ref: ctx.git_ref.as_deref(),
            actor: ctx.actor.as_deref(),
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
    Decision {
        trust: Trust {
            trusted: true,
            reason,
        },
        lane,
    }
}

fn untrusted(reason: String) -> Decision {
    Decision {
        trust: Trust {
            trusted: false,
            reason,
        },
        lane: Lane::Pr,
    }
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
        RefKind::Tag(t) => trusted(
            Lane::Main,
            format!("{what} of tag '{t}': a tag can only be created by someone with write access."),
        ),
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
        RefKind::Other(r) => trusted(
            Lane::Pr,
            format!(
                "{what} on '{r}', which is neither a branch nor a tag: trusted, in the pr lane."
            ),
        ),
        RefKind::Missing => trusted(
            Lane::Pr,
            format!("{what} with no ref in the payload or GITHUB_REF: trusted, in the pr lane."),
        ),
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
    let number = event
        .pr_number()
        .map(|n| format!("#{n}"))
        .unwrap_or_else(|| "(no number)".into());
    let author = pr.user.as_ref().and_then(|u| u.login.as_deref());
    if author == Some(DEPENDABOT) || t.actor == Some(DEPENDABOT) {
        return untrusted(format!(
            "Pull request {number} comes from {DEPENDABOT}: GitHub gives such runs a read-only token and no secrets, so it builds as untrusted."
        ));
    }
    let target = name == "pull_request_target";
    let base_id = pr
        .base
        .as_ref()
        .and_then(|b| b.repo.as_ref()?.id)
        .or(event.repository_id());
    let Some(head) = pr.head.as_ref().and_then(|h| h.repo.as_ref()) else {
        return untrusted(format!(
            "Pull request {number}'s head repository is gone (head.repo is null: the fork was deleted), so its origin cannot be proven: untrusted."
        ));
    };
    let head_name = head.full_name.as_deref().unwrap_or("an unnamed repository");
    match (head.id, base_id) {
        (Some(h), Some(b)) if h == b => {
            let branch = pr
                .head
                .as_ref()
                .and_then(|h| h.git_ref.as_deref())
                .unwrap_or("?");
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
    let this = event.repository_id();
    let Some(head) = &run.head_repository else {
        return untrusted(
            "The workflow_run payload has no head_repository, so the triggering code's origin cannot be proven: untrusted.".into(),
        );
    };
    match (head.id, this) {
        (Some(h), Some(r)) if h == r => {
            let branch = run.head_branch.as_deref();
            let default = event.default_branch();
            match (branch, default) {
                (Some(b), Some(d)) if b == d => trusted(
                    Lane::Main,
                    format!("workflow_run for code on the default branch '{b}' of this repository: trusted, main lane."),
                ),
                (Some(b), _) => trusted(
                    Lane::Pr,
                    format!("workflow_run for branch '{b}' of this repository, not the default branch: trusted, pr lane."),
                ),
                (None, _) => trusted(Lane::Pr, "workflow_run from this repository with no head_branch: trusted, pr lane.".into()),
            }
        }
        (Some(h), Some(r)) => untrusted(format!(
            "workflow_run triggered by code from {} (repository id {h}, not this repository's {r}), such as a fork pull request: untrusted.",
            head.full_name.as_deref().unwrap_or("another repository")
        )),
        _ => untrusted("workflow_run payload lacks a repository id, so the triggering code's origin cannot be proven: untrusted.".into()),
    }
}

fn issue_comment(t: &Trigger) -> Decision {
    match t.event.pr_number() {
        Some(n) if t.event.issue.as_ref().is_some_and(|i| i.pull_request.is_some()) => untrusted(format!(
            "Comment on pull request #{n}: whether that PR comes from this repository, and whether the commenter may run builds, needs a GitHub API lookup that was not made: untrusted."
        )),
        _ => untrusted("issue_comment on an issue that is not a pull request: no code of a pull request to build, untrusted.".into()),
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
        classify(&Trigger {
            event_name: name,
            event: &event,
            git_ref,
            actor: None,
        })
    }

    #[test]
    fn branch_push_without_default_branch_stays_in_pr_lane() {
        let d = decide(
            "push",
            r#"{"ref":"refs/heads/main"}"#,
            Some("refs/heads/main"),
        );
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
        });
        assert!(!d.trust.trusted);
    }
}
