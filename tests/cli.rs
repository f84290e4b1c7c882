//! The `plan` command as a whole process: JSON snapshots for every fixture, the human
//! explanation, and bad input (one `::error` line, exit 1).

mod common;

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

const REPO: &str = "Codertocat/Hello-World";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events").join(name).display().to_string()
}

/// The binary with a clean environment, so that a developer's or CI's variables never leak in,
/// run outside any git checkout (the workspace's HEAD is part of what it reads), with the
/// clock set (the `created` label) to the fixtures' commit time.
fn sdi() -> Command {
    let mut cmd = Command::cargo_bin("secure-docker-images").unwrap();
    cmd.current_dir(std::env::temp_dir());
    cmd.env_clear();
    cmd.env("SOURCE_DATE_EPOCH", "1557933641");
    for (k, v) in std::env::vars() {
        if k.starts_with("LLVM_PROFILE") || k == "PATH" {
            cmd.env(k, v);
        }
    }
    cmd
}

fn plan_json(event: &str, file: &str, repo: &str, args: &[&str]) -> Value {
    let out = sdi()
        .args(["plan", "--json", "--event-name", event, "--event-path", &fixture(file), "--repository", repo])
        .args(args)
        .env("INPUT_GITHUB-TOKEN", "ghs_runnertoken")
        .env("GITHUB_API_URL", common::github_mock())
        .env("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN")
        .env("NPM_TOKEN", "npm_secretvalue")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{event} {file}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("npm_secretvalue") && !stdout.contains("ghs_runnertoken"));
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn plan_json_snapshots_for_every_fixture() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("push-tag", "push", "push.json", REPO),
        ("push-default-branch", "push", "push-default-branch.json", REPO),
        ("release", "release", "release-published.json", REPO),
        ("pull_request-same-repo", "pull_request", "pull_request-same-repo-opened.json", REPO),
        ("pull_request-fork", "pull_request", "pull_request-fork-opened.json", REPO),
        ("pull_request-deleted-fork", "pull_request", "pull_request-deleted-fork.json", REPO),
        ("pull_request-dependabot", "pull_request", "pull_request-dependabot-opened.json", REPO),
        ("pull_request_target-fork", "pull_request_target", "pull_request-fork-opened.json", REPO),
        ("pull_request_target-same-repo", "pull_request_target", "pull_request-same-repo-opened.json", REPO),
        ("workflow_dispatch", "workflow_dispatch", "workflow_dispatch.json", "octo-org/octo-repo"),
        ("repository_dispatch", "repository_dispatch", "repository_dispatch.json", REPO),
        ("merge_group", "merge_group", "merge_group.json", "octo-org/octo-repo"),
        ("workflow_run", "workflow_run", "workflow_run-completed.json", REPO),
        ("issue_comment-on-pull-request", "issue_comment", "issue_comment-on-pull-request.json", REPO),
        ("schedule", "schedule", "schedule.json", REPO),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let mut covered: Vec<&str> = cases.iter().map(|c| c.2).collect();
    covered.sort();
    covered.dedup();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    assert_eq!(covered, on_disk, "every fixture has a snapshot");
    for (name, event, file, repo) in cases {
        let plan = plan_json(event, file, repo, &[]);
        for field in
            ["trust", "lane", "image", "cache_from", "cache_to", "push", "tags", "platforms", "secrets", "argv"]
        {
            assert!(plan.get(field).is_some(), "{name}: no {field}");
        }
        if *event == "issue_comment" {
            let reason = plan["trust"]["reason"].as_str().unwrap();
            assert!(reason.contains("(OWNER)") && reason.contains("per the GitHub API"), "the API's answer: {reason}");
        }
        insta::assert_json_snapshot!(*name, plan);
    }
}

#[test]
fn newcomer_command_explains_a_fork_pr() {
    let out = sdi()
        .args(["plan", "--event-name", "pull_request", "--event-path", &fixture("pull_request-fork-opened.json")])
        .args(["--repository", REPO])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("trusted:      no: Pull request #2 comes from the fork octo-forker/Hello-World"), "{text}");
    assert!(text.contains("lane:         pr"));
    assert!(text.contains("cache to:     none"));
    assert!(text.contains("docker buildx build \\\n  --platform 'linux/amd64,linux/arm64' \\\n"), "{text}");
    assert!(text.contains("--cache-from 'type=registry,ref=ghcr.io/codertocat/hello-world:buildcache-pr'"));
    assert!(text.trim_end().ends_with("\n  ."));
}

#[test]
fn flags_win_over_the_environment() {
    let out = sdi()
        .args(["plan", "--json", "--event-name", "push", "--ref", "refs/heads/feature", "--sha", "abcdef0123456789"])
        .args(["--input", "image=team/app", "--input", "tags=one"])
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", fixture("push-default-branch.json"))
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_REF", "refs/heads/master")
        .env("GITHUB_SHA", "1111111111111111")
        .env("INPUT_IMAGE", "other/app")
        .env("INPUT_TAGS", "two")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["event"], "push");
    assert_eq!(plan["lane"], "pr", "--ref wins over GITHUB_REF");
    assert_eq!(plan["tags"][0], "ghcr.io/team/app:one");
    assert_eq!(plan["labels"]["org.opencontainers.image.revision"], "abcdef0123456789");
}

#[test]
fn runs_from_the_runner_environment_alone() {
    let out = sdi()
        .args(["plan", "--json"])
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", fixture("push-default-branch.json"))
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_REPOSITORY_OWNER", "Codertocat")
        .env("GITHUB_REF", "refs/heads/master")
        .env("GITHUB_SHA", "ffffffffffffffffffffffffffffffffffffffff")
        .env("INPUT_PLATFORMS", "linux/amd64")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["tags"],
        serde_json::json!(["ghcr.io/codertocat/hello-world:latest", "ghcr.io/codertocat/hello-world:sha-fffffff"])
    );
    assert_eq!(plan["platforms"], serde_json::json!(["linux/amd64"]));
}

/// One bad input: exit 1, nothing on stdout, one `::error title=…::` line on stderr naming
/// the input.
fn refused(args: &[&str], env: &[(&str, &str)], input: &str, says: &str) -> String {
    let mut cmd = sdi();
    cmd.args([
        "plan",
        "--event-name",
        "push",
        "--event-path",
        &fixture("push-default-branch.json"),
        "--repository",
        REPO,
    ]);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: printed a plan");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let prefix = format!("::error title=Invalid {}::{}: ", input.replace(':', "%3A"), input);
    assert!(stderr.starts_with(&prefix), "{args:?} {env:?}: expected {prefix:?}, got {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr:?} lacks {says:?}");
    stderr
}

fn input(name: &str, value: &str) -> Vec<String> {
    vec!["--input".into(), format!("{name}={value}")]
}

#[test]
fn malformed_inputs_end_the_run_with_one_error_line() {
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (input("platforms", "linux/amd65"), "platforms", "unknown architecture 'amd65'"),
        (input("platforms", "linux"), "platforms", "os/arch[/variant]"),
        (input("platforms", "linux/x86_64"), "platforms", "did you mean linux/amd64?"),
        (input("platforms", "Linux/amd64"), "platforms", "write it in lower case (linux/amd64)"),
        (input("platforms", "linux/arm64,linux/arm64"), "platforms", "listed twice"),
        (input("platforms", "linux/arm/V7!"), "platforms", "invalid variant"),
        (input("image", "my app"), "image", "not a valid image name"),
        (input("image", "ghcr.io/o/r:v1"), "image", "includes a tag or digest"),
        (input("image", "team/app!"), "image", "not a valid image name"),
        (input("cache-image", "team/-cache"), "cache-image", "not a valid image name"),
        (input("registry", "not a host!"), "registry", "not a registry host"),
        (input("tags", "v1 beta"), "tags", "'v1 beta' is not a valid tag"),
        (input("tags", ".hidden"), "tags", "not a valid tag"),
        (input("tags", &"a".repeat(129)), "tags", "at most 128"),
        (
            input("tags", "ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "tags",
            "has no tag",
        ),
        (input("tags", "ghcr.io/o/r:bad~tag"), "tags", "not a valid image reference"),
        (input("secrets", "=value"), "secrets", "empty id"),
        (input("secrets", "a=1\na=2"), "secrets", "declared twice"),
        (input("secrets", "bad id=1"), "secrets", "may use only letters"),
        (input("secret-envs", "npm=not-an-env"), "secret-envs", "not an environment variable name"),
        (input("secret-envs", "npm=SDI_SECRET_0"), "secret-envs", "reserved"),
        (input("secret-files", "npmrc="), "secret-files", "path after '=' is empty"),
        (input("labels", "version={{branch"), "labels", "never closed"),
        (input("tags", "type=semver"), "tags", "'type=semver': type=semver needs a pattern= attribute"),
        (input("tags", "type=ref,event=push"), "tags", "not one of branch, tag, pr"),
        (
            input("tags", "type=raw,value=x,enable={{is_default_branch}}-ish"),
            "tags",
            "enable= must render true or false",
        ),
        (input("tags", "type=match,pattern=(?<=v)1"), "tags", "no look-around"),
        (input("flavor", "latest=sometimes"), "flavor", "latest= takes auto, true or false"),
        (input("images", "name=app,enable=yes"), "images", "enable= takes true or false"),
        (input("images", "Not An Image"), "images", "not a valid image name"),
        (input("annotations", "layer:key=value"), "annotations", "is not a level"),
        (input("logins", "registry=docker.io,username=me,password=hunter2"), "logins", "never written in the workflow"),
        (input("outputs", "type=ftp"), "outputs", "type=ftp is not one of"),
        (input("cache-to", "type=registry"), "cache-to", "needs ref="),
        (input("network", "bridge"), "network", "not one of default, none, host"),
        (input("allow", "root"), "allow", "is not an entitlement"),
        (input("ulimit", "nofile"), "ulimit", "name=soft[:hard]"),
        (input("call", "explode"), "call", "not build, check, outline or targets"),
        (input("load", "maybe"), "load", "not a boolean"),
        (input("build-args", "=value"), "build-args", "invalid name"),
        (input("push", "maybe"), "push", "'maybe' is not one of auto, true, false"),
        (input("cache-mode", "huge"), "cache-mode", "not one of max, min"),
        (input("fork-cache", "write"), "fork-cache", "not one of registry-read, gha, none"),
        (input("dry-run", "yes"), "dry-run", "not a boolean"),
        (input("context", "-"), "context", "starts with '-'"),
        (input("file", "-"), "file", "starts with '-'"),
        (input("target", "a b"), "target", "may use only letters"),
        (input("builder", ".."), "builder", "a letter or digit, then letters"),
        (input("builder", "--privileged"), "builder", "is neither a builder name"),
        (input("builder", "tcp://buildkitd"), "builder", "write tcp://host:port"),
        (input("builder", "ssh://me@host"), "builder", "cannot be reached from the action's container"),
        (input("builder-tls-key", "/etc/hostname"), "builder-tls-key", "`builder` is not"),
        (input("pr-cache", "sometimes"), "pr-cache", "'sometimes' is not one of shared, per-pr"),
        (input("provenance", "mode=max\n::set-output name=x::y"), "provenance", "single line"),
        (input("unknown-input", "1"), "--input", "'unknown-input' is not an input of this action"),
        (vec!["--repository".into(), "noslash".into()], "--repository", "owner/repo"),
        ([input("images", "ghcr.io/o/a"), input("image", "o/b")].concat(), "images", "not both"),
        (vec!["--event-path".into(), "/nonexistent/event.json".into()], "--event-path", "cannot read the event file"),
        (vec!["--event-path".into(), fixture("README.md")], "--event-path", "not a valid event payload"),
    ];
    assert!(cases.len() >= 15);
    for (args, name, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, &[], name, says);
    }
    refused(&[], &[("SOURCE_DATE_EPOCH", "yesterday")], "SOURCE_DATE_EPOCH", "not a number of seconds");
}

#[test]
fn trust_dependent_secret_errors_are_input_errors_too() {
    refused(&["--input", "secret-envs=npm=NPM_TOKEN"], &[], "secret-envs", "NPM_TOKEN, which is not set or is empty");
    refused(&["--input", "secret-envs=npm=NPM_TOKEN"], &[("NPM_TOKEN", "")], "secret-envs", "not set or is empty");
    refused(&["--input", "secret-files=npmrc=/nonexistent"], &[], "secret-files", "not a readable file");
    refused(&["--input", "secrets=npm="], &[], "secrets", "'npm' is empty");
}

#[test]
fn runner_variables_are_checked() {
    let mut cmd = sdi();
    let out = cmd.args(["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("::error title=Invalid GITHUB_EVENT_PATH::"));
    let out = sdi().args(["plan", "--event-path", &fixture("push.json")]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("::error title=Invalid GITHUB_EVENT_NAME::"));
    let mut cmd = sdi();
    cmd.args(["plan", "--event-name", "push", "--event-path", &fixture("push.json")]);
    let out = cmd.env("GITHUB_REPOSITORY", REPO).env("GITHUB_REPOSITORY_OWNER", "someone-else").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("::error title=Invalid GITHUB_REPOSITORY_OWNER::"));
}

#[test]
fn errors_never_echo_a_secret_line_or_inject_a_command() {
    let stderr = refused(&["--input", "secrets=ghp_TopSecretValue123"], &[], "secrets", "line 1 has no '='");
    assert!(!stderr.contains("ghp_TopSecretValue123"));
    let stderr = refused(&["--input", "tags=ok\n::add-mask::x"], &[], "tags", "not a valid");
    assert!(!stderr.contains("\n::add-mask"), "{stderr}");
    let stderr = refused(&["--input", "platforms=linux/amd64%0A::x"], &[], "platforms", "unknown architecture");
    assert!(stderr.contains("%250A"), "a literal %0A in input is escaped: {stderr}");
}

#[test]
fn prune_cache_refuses_the_image_package_and_needs_no_event() {
    let out = sdi()
        .args(["prune-cache", "--dry-run", "--repository", REPO, "--input", "github-token=ghs_x"])
        .env("GITHUB_API_URL", common::github_mock())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("::error::prune-cache refuses to touch ghcr.io/codertocat/hello-world"), "{stdout}");
    assert!(!stdout.contains("ghs_x") || stdout.contains("::add-mask::ghs_x"));
}

const DIGEST_AMD64: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const DIGEST_ARM64: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn plan_json_snapshots_for_per_platform_and_merge_modes() {
    let digests = format!("{DIGEST_AMD64}\n{DIGEST_ARM64}");
    let cases: &[(&str, &str, &str, Vec<String>)] = &[
        (
            "per-platform-trusted",
            "push",
            "push-default-branch.json",
            input("push-by-digest", "true").into_iter().chain(input("platforms", "linux/arm/v7")).collect(),
        ),
        (
            "per-platform-fork",
            "pull_request",
            "pull_request-fork-opened.json",
            input("push-by-digest", "true").into_iter().chain(input("platforms", "linux/arm64")).collect(),
        ),
        ("merge-trusted", "push", "push-default-branch.json", input("merge-digests", &digests)),
        ("merge-fork", "pull_request", "pull_request-fork-opened.json", input("merge-digests", &digests)),
    ];
    for (name, event, file, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let plan = plan_json(event, file, REPO, &args);
        insta::assert_json_snapshot!(*name, plan);
    }
}

#[test]
fn per_platform_and_merge_inputs_are_checked() {
    refused(&["--input", "push-by-digest=true"], &[], "push-by-digest", "platforms lists 2");
    refused(&["--input", "merge-digests=sha256:abc"], &[], "merge-digests", "not a digest");
    refused(
        &["--input", "merge-digests=/nonexistent/digests"],
        &[],
        "merge-digests",
        "neither a sha256 digest nor a directory",
    );
    refused(
        &["--input", &format!("merge-digests={DIGEST_AMD64}\n{DIGEST_AMD64}")],
        &[],
        "merge-digests",
        "listed twice",
    );
    refused(
        &[
            "--input",
            "push-by-digest=true",
            "--input",
            "platforms=linux/amd64",
            "--input",
            &format!("merge-digests={DIGEST_AMD64}"),
        ],
        &[],
        "merge-digests",
        "one or the other",
    );
    let empty = tempfile::tempdir().unwrap();
    refused(&["--input", &format!("merge-digests={}", empty.path().display())], &[], "merge-digests", "is empty");
}

#[test]
fn merge_digests_may_name_a_directory_of_digest_files() {
    let dir = tempfile::tempdir().unwrap();
    for d in [DIGEST_ARM64, DIGEST_AMD64] {
        std::fs::write(dir.path().join(d.trim_start_matches("sha256:")), "").unwrap();
    }
    let arg = format!("merge-digests={}", dir.path().display());
    let plan = plan_json("push", "push-default-branch.json", REPO, &["--input", &arg]);
    assert_eq!(
        plan["merge_sources"],
        serde_json::json!([
            format!("ghcr.io/codertocat/hello-world@{DIGEST_AMD64}"),
            format!("ghcr.io/codertocat/hello-world@{DIGEST_ARM64}")
        ])
    );
    assert_eq!(plan["argv"][3], "create");
}
