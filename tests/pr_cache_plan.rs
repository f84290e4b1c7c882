//! `pr-cache: per-pr` in the plan: each row of its table, the per-platform and cache-mount
//! variants, what stays shared, and the closed pull request (mode `cleanup`) in both modes.

mod common;

use common::{env, fixture, set};
use sdi::plan::{BuildPlan, Cleanup, CleanupVia, Mode};
use serde_json::{Value, json};

const IMG: &str = "ghcr.io/codertocat/hello-world";
const DOCKERFILE: &str = "FROM node:22\nRUN --mount=type=cache,id=pnpm,target=/pnpm/store pnpm install\n";

fn plan_with(event: &str, payload: &Value, extra: &[(&str, &str)]) -> BuildPlan {
    let mut ctx = common::context(event, payload, &env("Codertocat/Hello-World", extra)).unwrap();
    ctx.dockerfile = Some(DOCKERFILE.to_string());
    sdi::decide(&ctx, &Default::default()).unwrap()
}

fn per_pr(event: &str, payload: &Value, extra: &[(&str, &str)]) -> BuildPlan {
    let mut all = vec![("INPUT_PR-CACHE", "per-pr"), ("INPUT_GITHUB-TOKEN", "t")];
    all.extend_from_slice(extra);
    plan_with(event, payload, &all)
}

/// What the snapshots pin of a plan: its caches, cache-mount images and cleanup.
fn caches(p: &BuildPlan) -> Value {
    json!({
        "mode": p.mode,
        "trusted": p.trust.trusted,
        "cache_scope": p.cache_scope,
        "cache_from": p.cache_from,
        "cache_to": p.cache_to,
        "mounts_restore_from": p.cache_mounts.as_ref().map(|m| &m.restore_from),
        "mounts_save_to": p.cache_mounts.as_ref().map(|m| &m.save_to),
        "cleanup": p.cleanup,
        "login": p.login,
    })
}

fn same_repo() -> Value {
    fixture("pull_request-same-repo-opened.json")
}

fn fork() -> Value {
    fixture("pull_request-fork-opened.json")
}

fn closed(mut payload: Value) -> Value {
    set(&mut payload, "/action", json!("closed"));
    set(&mut payload, "/pull_request/merged", json!(true));
    payload
}

#[test]
fn a_trusted_pull_request_reads_and_writes_its_own_scope_then_main() {
    let p = per_pr("pull_request", &same_repo(), &[]);
    let n = same_repo()["number"].as_u64().unwrap();
    assert_eq!(p.cache_scope, format!("pr-{n}"));
    assert_eq!(
        p.cache_from,
        [format!("type=registry,ref={IMG}:buildcache-pr-{n}"), format!("type=registry,ref={IMG}:buildcache")]
    );
    assert_eq!(p.cache_to, [format!("type=registry,ref={IMG}:buildcache-pr-{n},mode=max,ignore-error=true")]);
    let min = per_pr("pull_request", &same_repo(), &[("INPUT_CACHE-MODE", "min")]);
    assert_eq!(min.cache_to, [format!("type=registry,ref={IMG}:buildcache-pr-{n},mode=min,ignore-error=true")]);
    insta::assert_json_snapshot!("per-pr-trusted", caches(&p));
}

#[test]
fn an_untrusted_pull_request_reads_main_only_and_writes_nothing() {
    let p = per_pr("pull_request", &fork(), &[]);
    assert_eq!(p.cache_from, [format!("type=registry,ref={IMG}:buildcache")]);
    assert!(p.cache_to.is_empty() && p.login.is_empty());
    insta::assert_json_snapshot!("per-pr-fork", caches(&p));
    // fork-cache: gha still gives the fork its PR-scoped Actions cache.
    let gha = per_pr("pull_request", &fork(), &[("INPUT_FORK-CACHE", "gha")]);
    assert_eq!(gha.cache_to, [format!("type=gha,version=2,scope={IMG},mode=max,ignore-error=true")]);
    assert_eq!(gha.cache_from[1], format!("type=registry,ref={IMG}:buildcache"));
}

#[test]
fn per_platform_jobs_and_cache_mounts_follow_the_scope() {
    let n = same_repo()["number"].as_u64().unwrap();
    let p =
        per_pr("pull_request", &same_repo(), &[("INPUT_PUSH-BY-DIGEST", "true"), ("INPUT_PLATFORMS", "linux/arm64")]);
    assert_eq!(
        p.cache_to,
        [format!("type=registry,ref={IMG}:buildcache-pr-{n}-linux-arm64,mode=max,ignore-error=true")]
    );
    insta::assert_json_snapshot!("per-pr-per-platform", caches(&p));
    let m = per_pr("pull_request", &same_repo(), &[]).cache_mounts.unwrap();
    assert_eq!(m.restore_from, [format!("{IMG}:buildcache-mounts-pr-{n}"), format!("{IMG}:buildcache-mounts")]);
    assert_eq!(m.save_to, Some(format!("{IMG}:buildcache-mounts-pr-{n}")));
    let fork = per_pr("pull_request", &fork(), &[]).cache_mounts.unwrap();
    assert_eq!((fork.restore_from, fork.save_to), (vec![format!("{IMG}:buildcache-mounts")], None));
}

#[test]
fn runs_without_a_pull_request_keep_the_shared_pr_cache() {
    let branch = per_pr("push", &fixture("push.json"), &[("GITHUB_REF", "refs/heads/feature")]);
    assert_eq!(branch.cache_scope, "pr");
    assert_eq!(branch.cache_to, [format!("type=registry,ref={IMG}:buildcache-pr,mode=max,ignore-error=true")]);
    let queue = per_pr("merge_group", &fixture("merge_group.json"), &[]);
    assert_eq!(queue.cache_scope, "pr");
    let main = per_pr("push", &fixture("push-default-branch.json"), &[("GITHUB_REF", "refs/heads/master")]);
    assert_eq!(main.cache_scope, "main");
    assert_eq!(main.cache_from, [format!("type=registry,ref={IMG}:buildcache")]);
    // The default stays as it was.
    let shared = plan_with("pull_request", &same_repo(), &[]);
    assert_eq!(shared.cache_scope, "pr");
    assert_eq!(shared.cache_from[0], format!("type=registry,ref={IMG}:buildcache-pr"));
}

#[test]
fn actions_cache_mode_still_rules() {
    let read = per_pr("pull_request", &same_repo(), &[("ACTIONS_CACHE_MODE", "read")]);
    assert!(read.cache_to.is_empty() && read.cache_from.len() == 2);
    let none = per_pr("pull_request", &same_repo(), &[("ACTIONS_CACHE_MODE", "none")]);
    assert!(none.cache_from.is_empty() && none.cache_to.is_empty());
}

#[test]
fn a_closed_pull_request_builds_nothing_and_plans_its_cleanup() {
    let n = same_repo()["number"].as_u64().unwrap();
    let p = per_pr("pull_request", &closed(same_repo()), &[]);
    assert_eq!(p.mode, Mode::Cleanup);
    assert!(p.argv.is_empty() && !p.push && p.cache_from.is_empty() && p.tags.is_empty() && p.secrets.is_empty());
    assert_eq!(
        p.cleanup,
        Some(Cleanup::Delete {
            pr: n,
            repository: IMG.into(),
            scopes: vec![format!("buildcache-pr-{n}"), format!("buildcache-mounts-pr-{n}")],
            via: CleanupVia::PackagesApi,
        })
    );
    insta::assert_json_snapshot!("closed-per-pr", caches(&p));
    let target = per_pr("pull_request_target", &closed(same_repo()), &[]);
    assert!(matches!(target.cleanup, Some(Cleanup::Delete { .. })));
    let elsewhere =
        per_pr("pull_request", &closed(same_repo()), &[("INPUT_CACHE-IMAGE", "registry.example.com/team/cache")]);
    assert!(matches!(elsewhere.cleanup, Some(Cleanup::Delete { via: CleanupVia::Registry, .. })));

    let shared = plan_with("pull_request", &closed(same_repo()), &[]);
    assert_eq!(shared.mode, Mode::Cleanup);
    assert!(matches!(&shared.cleanup, Some(Cleanup::Nothing { why }) if why.contains("pr-cache is shared")));
    insta::assert_json_snapshot!("closed-shared", caches(&shared));
    let untrusted = per_pr("pull_request", &closed(fork()), &[]);
    assert!(matches!(&untrusted.cleanup, Some(Cleanup::Nothing { why }) if why.contains("untrusted")));
    assert!(untrusted.login.is_empty());
}
