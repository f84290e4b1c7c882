//! DESIGN.md's trust table and cache table, row by row, on real payloads. Each variant
//! changes only the fields that matter.

mod common;

use common::{env, fixture, plan, remove, set};
use sdi::plan::BuildPlan;
use sdi::trust::Lane;
use serde_json::{Value, json};

struct Row {
    what: &'static str,
    event: &'static str,
    payload: Value,
    repository: &'static str,
    git_ref: Option<&'static str>,
    actor: Option<&'static str>,
    trusted: bool,
    lane: Lane,
    /// A phrase the reason must contain.
    because: &'static str,
}

fn row(
    what: &'static str,
    event: &'static str,
    payload: Value,
    trusted: bool,
    lane: Lane,
    because: &'static str,
) -> Row {
    Row {
        what,
        event,
        payload,
        repository: "Codertocat/Hello-World",
        git_ref: None,
        actor: None,
        trusted,
        lane,
        because,
    }
}

fn with(mut payload: Value, changes: &[(&str, Value)]) -> Value {
    for (pointer, value) in changes {
        set(&mut payload, pointer, value.clone());
    }
    payload
}

fn rows() -> Vec<Row> {
    let push = fixture("push.json");
    let same = fixture("pull_request-same-repo-opened.json");
    let fork = fixture("pull_request-fork-opened.json");
    let run = fixture("workflow_run-completed.json");
    let dispatch = fixture("workflow_dispatch.json");
    // The workflow_run example's top-level repository differs from its run's repository;
    // a same-repository run has head_repository.id == repository.id.
    let run_same = |branch: &str| {
        with(
            run.clone(),
            &[("/workflow_run/head_repository/id", json!(283462325)), ("/workflow_run/head_branch", json!(branch))],
        )
    };
    let mut run_no_head = run.clone();
    remove(&mut run_no_head, "/workflow_run/head_repository");
    let mut run_missing_ids = run_same("main");
    remove(&mut run_missing_ids, "/repository/id");
    let fork_of_fork = with(
        same.clone(),
        &[
            ("/repository/fork", json!(true)),
            ("/pull_request/head/repo/fork", json!(true)),
            ("/pull_request/base/repo/fork", json!(true)),
        ],
    );
    // A fork whose head repo says fork: false proves nothing either: ids decide.
    let fork_unflagged = with(fork.clone(), &[("/pull_request/head/repo/fork", json!(false))]);

    vec![
        row(
            "push to the default branch",
            "push",
            fixture("push-default-branch.json"),
            true,
            Lane::Main,
            "default branch 'master'",
        ),
        row("push of a tag", "push", push.clone(), true, Lane::Main, "tag 'simple-tag'"),
        Row {
            git_ref: Some("refs/heads/master"),
            ..row(
                "push, ref from GITHUB_REF",
                "push",
                with(push.clone(), &[("/ref", json!("refs/heads/x"))]),
                true,
                Lane::Main,
                "default branch",
            )
        },
        row(
            "push to another branch",
            "push",
            with(push.clone(), &[("/ref", json!("refs/heads/feature/login"))]),
            true,
            Lane::Pr,
            "not the default branch 'master'",
        ),
        row("release", "release", fixture("release-published.json"), true, Lane::Main, "Release '0.0.1'"),
        row("schedule, cron line only", "schedule", fixture("schedule.json"), true, Lane::Main, "Scheduled"),
        Row {
            repository: "octo-org/octo-repo",
            ..row(
                "workflow_dispatch on the default branch",
                "workflow_dispatch",
                dispatch.clone(),
                true,
                Lane::Main,
                "default branch 'main'",
            )
        },
        Row {
            repository: "octo-org/octo-repo",
            ..row(
                "workflow_dispatch on a tag",
                "workflow_dispatch",
                with(dispatch.clone(), &[("/ref", json!("refs/tags/v2.0.0"))]),
                true,
                Lane::Main,
                "tag 'v2.0.0'",
            )
        },
        Row {
            repository: "octo-org/octo-repo",
            ..row(
                "workflow_dispatch on a branch",
                "workflow_dispatch",
                with(dispatch.clone(), &[("/ref", json!("refs/heads/exp"))]),
                true,
                Lane::Pr,
                "branch 'exp'",
            )
        },
        Row {
            git_ref: Some("refs/heads/master"),
            ..row(
                "repository_dispatch (runs on the default branch)",
                "repository_dispatch",
                fixture("repository_dispatch.json"),
                true,
                Lane::Main,
                "default branch 'master'",
            )
        },
        Row {
            git_ref: Some("refs/heads/other"),
            ..row(
                "repository_dispatch on another ref",
                "repository_dispatch",
                fixture("repository_dispatch.json"),
                true,
                Lane::Pr,
                "branch 'other'",
            )
        },
        Row {
            repository: "octo-org/octo-repo",
            ..row("merge_group", "merge_group", fixture("merge_group.json"), true, Lane::Pr, "Merge queue")
        },
        row(
            "pull_request from the same repository",
            "pull_request",
            same.clone(),
            true,
            Lane::Pr,
            "branch 'changes' of this repository",
        ),
        row(
            "pull_request inside a repository that is itself a fork",
            "pull_request",
            fork_of_fork,
            true,
            Lane::Pr,
            "this repository",
        ),
        row("pull_request from a fork", "pull_request", fork.clone(), false, Lane::Pr, "fork octo-forker/Hello-World"),
        row(
            "pull_request from a fork whose fork flag is false",
            "pull_request",
            fork_unflagged,
            false,
            Lane::Pr,
            "repository id 99990002, not 186853002",
        ),
        row(
            "pull_request from a deleted fork",
            "pull_request",
            fixture("pull_request-deleted-fork.json"),
            false,
            Lane::Pr,
            "head.repo is null",
        ),
        row(
            "pull_request opened by Dependabot",
            "pull_request",
            fixture("pull_request-dependabot-opened.json"),
            false,
            Lane::Pr,
            "dependabot[bot]",
        ),
        Row {
            actor: Some("dependabot[bot]"),
            ..row(
                "pull_request pushed to by Dependabot",
                "pull_request",
                same.clone(),
                false,
                Lane::Pr,
                "read-only token",
            )
        },
        row(
            "pull_request_target from a fork",
            "pull_request_target",
            fork.clone(),
            false,
            Lane::Pr,
            "privileged token",
        ),
        row(
            "pull_request_target from the same repository",
            "pull_request_target",
            same.clone(),
            true,
            Lane::Pr,
            "this repository",
        ),
        row(
            "pull_request_target by Dependabot",
            "pull_request_target",
            fixture("pull_request-dependabot-opened.json"),
            false,
            Lane::Pr,
            "dependabot[bot]",
        ),
        row("pull_request_review from a fork", "pull_request_review", fork.clone(), false, Lane::Pr, "fork"),
        row(
            "pull_request payload without pull_request",
            "pull_request",
            json!({"number": 3}),
            false,
            Lane::Pr,
            "no pull_request",
        ),
        row(
            "workflow_run from another repository",
            "workflow_run",
            run.clone(),
            false,
            Lane::Pr,
            "not this repository's 283462325",
        ),
        row(
            "workflow_run of a fork PR (pull_requests empty)",
            "workflow_run",
            with(
                run.clone(),
                &[("/workflow_run/event", json!("pull_request")), ("/workflow_run/pull_requests", json!([]))],
            ),
            false,
            Lane::Pr,
            "fork pull request",
        ),
        row("workflow_run without head_repository", "workflow_run", run_no_head, false, Lane::Pr, "no head_repository"),
        row(
            "workflow_run without repository ids",
            "workflow_run",
            run_missing_ids,
            false,
            Lane::Pr,
            "lacks a repository id",
        ),
        row(
            "workflow_run on the default branch of this repository",
            "workflow_run",
            run_same("main"),
            true,
            Lane::Main,
            "default branch 'main'",
        ),
        row(
            "workflow_run on another branch of this repository",
            "workflow_run",
            run_same("feature"),
            true,
            Lane::Pr,
            "branch 'feature'",
        ),
        row(
            "issue_comment on a pull request",
            "issue_comment",
            fixture("issue_comment-on-pull-request.json"),
            false,
            Lane::Pr,
            "GitHub API lookup",
        ),
        row(
            "issue_comment on an issue",
            "issue_comment",
            with(fixture("issue_comment-on-pull-request.json"), &[("/issue/pull_request", Value::Null)]),
            false,
            Lane::Pr,
            "not a pull request",
        ),
        row(
            "anything else: issues",
            "issues",
            json!({"action": "opened", "repository": {"id": 1}}),
            false,
            Lane::Pr,
            "'issues'",
        ),
        row(
            "anything else: pull_request_review_comment-like names are not prefixes",
            "pull_requests",
            same.clone(),
            false,
            Lane::Pr,
            "'pull_requests'",
        ),
    ]
}

fn plan_for(r: &Row) -> BuildPlan {
    let mut extra = vec![("INPUT_GITHUB-TOKEN", "ghs_token"), ("INPUT_SECRETS", "npm=s3cr3t-value-123")];
    if let Some(git_ref) = r.git_ref {
        extra.push(("GITHUB_REF", git_ref));
    }
    if let Some(actor) = r.actor {
        extra.push(("GITHUB_ACTOR", actor));
    }
    plan(r.event, &r.payload, &env(r.repository, &extra)).unwrap_or_else(|e| panic!("{}: {e}", r.what))
}

#[test]
fn every_row_of_the_trust_table() {
    for r in rows() {
        let p = plan_for(&r);
        assert_eq!(p.trust.trusted, r.trusted, "{}: {}", r.what, p.trust.reason);
        assert_eq!(p.lane, r.lane, "{}: {}", r.what, p.trust.reason);
        assert!(p.trust.reason.contains(r.because), "{}: reason {:?} lacks {:?}", r.what, p.trust.reason, r.because);
        assert!(
            p.trust.reason.ends_with('.') && p.trust.reason.matches(". ").count() == 0,
            "{}: one sentence: {}",
            r.what,
            p.trust.reason
        );
    }
}

#[test]
fn every_row_of_the_cache_table() {
    for r in rows() {
        let p = plan_for(&r);
        let image = format!("ghcr.io/{}", r.repository.to_lowercase());
        let main = format!("type=registry,ref={image}:buildcache");
        let pr = format!("type=registry,ref={image}:buildcache-pr");
        let to = |c: &str| format!("{c},mode=max,ignore-error=true");
        let (from, to, push, login, secrets): (Vec<String>, Vec<String>, bool, Vec<&str>, Vec<&str>) =
            match (r.trusted, r.lane) {
                (true, Lane::Main) => (vec![main.clone()], vec![to(&main)], true, vec!["ghcr.io"], vec!["npm"]),
                (true, Lane::Pr) => {
                    (vec![pr.clone(), main.clone()], vec![to(&pr)], false, vec!["ghcr.io"], vec!["npm"])
                }
                (false, _) => (vec![pr.clone(), main.clone()], vec![], false, vec![], vec![]),
            };
        assert_eq!(p.cache_from, from, "{}", r.what);
        assert_eq!(p.cache_to, to, "{}", r.what);
        assert_eq!(p.push, push, "{}", r.what);
        assert_eq!(p.login, login, "{}", r.what);
        assert_eq!(p.secrets, secrets, "{}", r.what);
        // The argv says the same as the fields.
        let values =
            |flag: &str| -> Vec<String> { p.argv.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect() };
        assert_eq!(values("--cache-from"), p.cache_from, "{}", r.what);
        assert_eq!(values("--cache-to"), p.cache_to, "{}", r.what);
        // A build with secrets pushes by digest (tags follow the scan); others push with --push.
        let pushes =
            p.argv.contains(&"--push".to_string()) || values("--output").iter().any(|o| o.contains("push=true"));
        assert_eq!(pushes, p.push, "{}", r.what);
        if p.push && !p.secrets.is_empty() {
            assert_eq!(
                values("--output"),
                [format!("type=image,name={image},push-by-digest=true,name-canonical=true,push=true")],
                "{}",
                r.what
            );
            assert!(!p.argv.contains(&"--tag".to_string()), "{}: no tag before the scan", r.what);
        }
        assert_eq!(values("--secret").len(), p.secrets.len(), "{}", r.what);
        // Main builds never read the PR cache; untrusted runs never write anything.
        if r.lane == Lane::Main {
            assert!(!p.argv.iter().any(|a| a.contains(":buildcache-pr")), "{}", r.what);
        }
        if !r.trusted {
            assert!(!p.argv.iter().any(|a| a == "--cache-to" || a == "--push" || a == "--secret"), "{}", r.what);
            assert!(p.warnings.iter().any(|w| w.contains("withheld") && w.contains("npm")), "{}", r.what);
        }
        assert!(!p.argv.iter().any(|a| a.contains("s3cr3t")), "{}: secret value in argv", r.what);
    }
}
