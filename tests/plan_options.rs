//! How inputs and runner variables shape the plan: cache options, push policy, names,
//! tags and labels.

mod common;

use common::{env, fixture, plan};
use sdi::plan::BuildPlan;
use serde_json::{Value, json};

fn run(event: &str, payload: &Value, extra: &[(&str, &str)]) -> BuildPlan {
    plan(event, payload, &env("Codertocat/Hello-World", extra)).unwrap()
}

fn fork() -> Value {
    fixture("pull_request-fork-opened.json")
}

fn main_push() -> Value {
    fixture("push-default-branch.json")
}

const IMG: &str = "ghcr.io/codertocat/hello-world";

#[test]
fn fork_cache_gha_writes_the_pr_scoped_actions_cache_only() {
    let p = run("pull_request", &fork(), &[("INPUT_FORK-CACHE", "gha")]);
    assert_eq!(
        p.cache_from,
        [
            format!("type=gha,version=2,scope={IMG}"),
            format!("type=registry,ref={IMG}:buildcache-pr"),
            format!("type=registry,ref={IMG}:buildcache"),
        ]
    );
    assert_eq!(p.cache_to, [format!("type=gha,version=2,scope={IMG},mode=max,ignore-error=true")]);
    assert!(p.login.is_empty() && !p.push);
}

#[test]
fn fork_cache_none_uses_no_cache_and_does_not_touch_trusted_runs() {
    let p = run("pull_request", &fork(), &[("INPUT_FORK-CACHE", "none")]);
    assert!(p.cache_from.is_empty() && p.cache_to.is_empty());
    let t = run("push", &main_push(), &[("INPUT_FORK-CACHE", "none")]);
    assert_eq!(t.cache_to.len(), 1);
}

#[test]
fn cache_mode_min_and_a_separate_cache_image() {
    let p = run("push", &main_push(), &[("INPUT_CACHE-MODE", "min"), ("INPUT_CACHE-IMAGE", "Codertocat/hello-cache")]);
    assert_eq!(p.cache_from, ["type=registry,ref=ghcr.io/codertocat/hello-cache:buildcache"]);
    assert_eq!(p.cache_to, ["type=registry,ref=ghcr.io/codertocat/hello-cache:buildcache,mode=min,ignore-error=true"]);
    assert_eq!(p.image, IMG);
}

#[test]
fn actions_cache_mode_is_obeyed() {
    let read = run("push", &main_push(), &[("ACTIONS_CACHE_MODE", "read")]);
    assert_eq!(read.cache_from.len(), 1);
    assert!(read.cache_to.is_empty());
    assert!(read.login.is_empty(), "no cache write and no push: nothing to log in for");
    let write_only = run("push", &main_push(), &[("ACTIONS_CACHE_MODE", "write-only")]);
    assert!(write_only.cache_from.is_empty());
    assert_eq!(write_only.cache_to.len(), 1);
    let none = run("pull_request", &fixture("pull_request-same-repo-opened.json"), &[("ACTIONS_CACHE_MODE", "none")]);
    assert!(none.cache_from.is_empty() && none.cache_to.is_empty());
    let unknown = run("push", &main_push(), &[("ACTIONS_CACHE_MODE", "sometimes")]);
    assert!(unknown.cache_to.is_empty());
    assert!(unknown.warnings.iter().any(|w| w.contains("sometimes")));
}

#[test]
fn registry_and_image_inputs_make_the_image_name() {
    let p = run("push", &main_push(), &[("INPUT_REGISTRY", "registry.example.com:5000")]);
    assert_eq!(p.image, "registry.example.com:5000/codertocat/hello-world");
    assert!(p.cache_to[0].contains("ref=registry.example.com:5000/codertocat/hello-world:buildcache,"));
    let full =
        run("push", &main_push(), &[("INPUT_IMAGE", "localhost:5000/team/app"), ("INPUT_REGISTRY", "docker.io")]);
    assert_eq!(full.image, "localhost:5000/team/app");
    let local = run("push", &main_push(), &[("INPUT_IMAGE", "localhost/app")]);
    assert_eq!(local.image, "localhost/app");
    let path = run("push", &main_push(), &[("INPUT_IMAGE", "team/app")]);
    assert_eq!(path.image, "ghcr.io/team/app");
    let upper = run("push", &main_push(), &[("INPUT_IMAGE", "Team/App"), ("INPUT_GITHUB-TOKEN", "t")]);
    assert_eq!(upper.image, "ghcr.io/team/app");
    assert_eq!(upper.login, ["ghcr.io"]);
    let split = run(
        "push",
        &main_push(),
        &[
            ("INPUT_IMAGE", "docker.io/team/app"),
            ("INPUT_CACHE-IMAGE", "cache.example.com/c"),
            ("INPUT_GITHUB-TOKEN", "t"),
        ],
    );
    assert_eq!(split.login, ["docker.io", "cache.example.com"]);
    let mirrored = run(
        "push",
        &main_push(),
        &[("INPUT_TAGS", "v1\nquay.io/team/app:v1\nteam/app:v1"), ("INPUT_GITHUB-TOKEN", "t")],
    );
    assert_eq!(mirrored.login, ["ghcr.io", "quay.io", "docker.io"], "every registry pushed to");
}

#[test]
fn push_policy() {
    let same = fixture("pull_request-same-repo-opened.json");
    assert!(!run("pull_request", &same, &[]).push, "auto: pr lane does not push");
    assert!(run("pull_request", &same, &[("INPUT_PUSH", "true")]).push, "true: trusted pr lane pushes");
    assert!(!run("push", &main_push(), &[("INPUT_PUSH", "false")]).push);
    let forced = run("pull_request", &fork(), &[("INPUT_PUSH", "true"), ("INPUT_GITHUB-TOKEN", "t")]);
    assert!(!forced.push && forced.login.is_empty());
    assert!(forced.warnings.iter().any(|w| w.contains("push: true ignored")));
    let no_token = run("push", &main_push(), &[]);
    assert!(no_token.push && no_token.login.is_empty());
    assert!(no_token.warnings.iter().any(|w| w.contains("No github-token")));
}

#[test]
fn default_tags_per_event() {
    let tags = |event: &str, payload: &Value, extra: &[(&str, &str)]| -> Vec<String> {
        run(event, payload, extra)
            .tags
            .iter()
            .map(|t| t.strip_prefix(&format!("{IMG}:")).unwrap().to_string())
            .collect()
    };
    assert_eq!(tags("push", &main_push(), &[]), ["latest", "sha-6113728"]);
    let mut branch = main_push();
    branch["ref"] = json!("refs/heads/feature/Login_page+x");
    assert_eq!(tags("push", &branch, &[]), ["feature-Login_page-x"]);
    let mut semver = main_push();
    semver["ref"] = json!("refs/tags/v1.2.3");
    assert_eq!(tags("push", &semver, &[]), ["1.2.3", "1.2", "1"]);
    semver["ref"] = json!("refs/tags/v1.3.0-beta.2");
    assert_eq!(tags("push", &semver, &[]), ["1.3.0-beta.2"]);
    assert_eq!(tags("push", &fixture("push.json"), &[]), ["simple-tag"]);
    let mut release = fixture("release-published.json");
    release["release"]["tag_name"] = json!("v1.2.3");
    assert_eq!(tags("release", &release, &[]), ["1.2.3", "1.2", "1"]);
    release["release"]["prerelease"] = json!(true);
    assert_eq!(tags("release", &release, &[]), ["1.2.3"]);
    assert_eq!(tags("pull_request", &fork(), &[]), ["pr-2"]);
    assert_eq!(tags("issue_comment", &fixture("issue_comment-on-pull-request.json"), &[]), ["pr-1"]);
    assert_eq!(
        tags("schedule", &fixture("schedule.json"), &[("GITHUB_SHA", "0123456789abcdef")]),
        ["nightly", "sha-0123456"]
    );
    let explicit = run("push", &main_push(), &[("INPUT_TAGS", "v1\nedge, ghcr.io/Other/Name:Stable")]);
    assert_eq!(explicit.tags, [format!("{IMG}:v1"), format!("{IMG}:edge"), "ghcr.io/other/name:Stable".to_string()]);
}

#[test]
fn oci_labels() {
    // metadata-action's defaults: the repository's page from the payload (else the server's URL).
    let mut payload = main_push();
    common::remove(&mut payload, "/repository/html_url");
    let p = run(
        "push",
        &payload,
        &[
            ("GITHUB_SERVER_URL", "https://ghe.example.com"),
            ("SOURCE_DATE_EPOCH", "1700000000"),
            ("INPUT_LABELS", "org.opencontainers.image.title=Custom {{branch}}\nteam=core=infra"),
        ],
    );
    let l = &p.labels;
    assert_eq!(l["org.opencontainers.image.source"], "https://ghe.example.com/Codertocat/Hello-World");
    assert_eq!(l["org.opencontainers.image.url"], "https://ghe.example.com/Codertocat/Hello-World");
    assert_eq!(l["org.opencontainers.image.revision"], "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(l["org.opencontainers.image.created"], "2023-11-14T22:13:20.000Z", "the clock, read once");
    assert_eq!(
        run("push", &main_push(), &[]).labels["org.opencontainers.image.url"],
        "https://github.com/Codertocat/Hello-World"
    );
    assert_eq!(l["org.opencontainers.image.version"], "latest");
    assert_eq!(l["org.opencontainers.image.title"], "Custom master", "inputs win over defaults");
    assert_eq!(l["team"], "core=infra", "only the first '=' splits");
    assert!(p.argv.windows(2).any(|w| w[0] == "--label" && w[1] == "team=core=infra"));
}

#[test]
fn build_options_reach_the_argv_in_order() {
    let p = run(
        "push",
        &main_push(),
        &[
            ("INPUT_BUILDER", "ci-builder"),
            ("INPUT_FILE", "docker/Dockerfile.prod"),
            ("INPUT_TARGET", "runtime"),
            ("INPUT_CONTEXT", "./app"),
            ("INPUT_PLATFORMS", "linux/arm/v7"),
            ("INPUT_BUILD-ARGS", "NODE_VERSION=22\nGREETING=a b=c"),
            ("INPUT_PROVENANCE", "mode=max"),
            ("INPUT_SBOM", "true"),
            ("INPUT_TAGS", "v1"),
        ],
    );
    let argv: Vec<&str> = p.argv.iter().map(String::as_str).collect();
    assert_eq!(
        &argv[..9],
        [
            "docker",
            "buildx",
            "build",
            "--builder",
            "ci-builder",
            "--file",
            "docker/Dockerfile.prod",
            "--target",
            "runtime"
        ]
    );
    assert_eq!(&argv[9..11], ["--platform", "linux/arm/v7"]);
    assert!(argv.windows(2).any(|w| w == ["--build-arg", "GREETING=a b=c"]));
    let tail = &argv[argv.len() - 4..];
    assert_eq!(tail, ["--provenance=mode=max", "--sbom=true", "--push", "./app"]);
}

#[test]
fn secret_sources_carry_names_never_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("npmrc, with comma");
    std::fs::write(&file, "registry-token").unwrap();
    let files = format!("npmrc={}", file.display());
    let p = run(
        "push",
        &main_push(),
        &[
            ("INPUT_SECRETS", "a=x=y,\"z\"\nb=second value"),
            ("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN"),
            ("NPM_TOKEN", "env-secret-value"),
            ("INPUT_SECRET-FILES", &files),
        ],
    );
    assert_eq!(p.secrets, ["a", "b", "npm_token", "npmrc"]);
    let secrets: Vec<&String> = p.argv.windows(2).filter(|w| w[0] == "--secret").map(|w| &w[1]).collect();
    assert_eq!(secrets[0], "id=a,env=SDI_SECRET_0");
    assert_eq!(secrets[1], "id=b,env=SDI_SECRET_1");
    assert_eq!(secrets[2], "id=npm_token,env=NPM_TOKEN");
    assert_eq!(*secrets[3], format!("id=npmrc,\"src={}\"", file.display()));
    let json = serde_json::to_string(&p).unwrap();
    for value in ["x=y", "second value", "env-secret-value", "registry-token"] {
        assert!(!json.contains(value), "{value} leaked into the plan");
    }
}

#[test]
fn a_trusted_run_needs_its_secrets_an_untrusted_one_does_not() {
    let e = env("Codertocat/Hello-World", &[("INPUT_SECRET-ENVS", "npm=NPM_TOKEN")]);
    let err = plan("push", &main_push(), &e).unwrap_err();
    assert_eq!(err.input, "secret-envs");
    assert!(err.message.contains("NPM_TOKEN"), "{}", err.message);
    // A fork PR gets no repository secrets, so the variable is empty there: it stays green.
    let p = plan("pull_request", &fork(), &e).unwrap();
    assert!(p.secrets.is_empty());
    let empty = env("Codertocat/Hello-World", &[("INPUT_SECRETS", "npm=")]);
    assert_eq!(plan("push", &main_push(), &empty).unwrap_err().input, "secrets");
    assert!(plan("pull_request", &fork(), &empty).is_ok());
    let missing = env("Codertocat/Hello-World", &[("INPUT_SECRET-FILES", "npmrc=/nonexistent/file")]);
    assert_eq!(plan("push", &main_push(), &missing).unwrap_err().input, "secret-files");
}

fn builder_flag(p: &BuildPlan) -> Option<&str> {
    p.argv.iter().position(|a| a == "--builder").map(|i| p.argv[i + 1].as_str())
}

#[test]
fn each_builder_form_has_its_plan() {
    use sdi::plan::BuilderPlan;
    let p = run("push", &main_push(), &[("GITHUB_REF", "refs/heads/master")]);
    assert_eq!((p.builder.clone(), builder_flag(&p)), (BuilderPlan::New, None));

    let p = run("push", &main_push(), &[("GITHUB_REF", "refs/heads/master"), ("INPUT_BUILDER", "userbuilder")]);
    let named = BuilderPlan::Named { name: "userbuilder".into(), container: "buildx_buildkit_userbuilder0".into() };
    assert_eq!((p.builder.clone(), builder_flag(&p)), (named, Some("userbuilder")));

    let p = run("push", &main_push(), &[("GITHUB_REF", "refs/heads/master"), ("INPUT_BUILDER", "default")]);
    assert_eq!((p.builder.clone(), builder_flag(&p)), (BuilderPlan::Default, Some("default")));

    for endpoint in ["tcp://buildkitd:1234", "unix:///run/buildkit/buildkitd.sock", "docker-container://bk0"] {
        let p = run("push", &main_push(), &[("GITHUB_REF", "refs/heads/master"), ("INPUT_BUILDER", endpoint)]);
        let remote = BuilderPlan::Remote { endpoint: endpoint.into(), tls: false };
        assert_eq!((p.builder.clone(), builder_flag(&p)), (remote, None), "{endpoint}");
        assert!(!p.warnings.iter().any(|w| w.contains("BuildKit")), "{:?}", p.warnings);
    }
}

#[test]
fn untrusted_code_never_runs_on_a_shared_buildkit() {
    use sdi::plan::BuilderPlan;
    let p = run("pull_request", &fork(), &[("INPUT_BUILDER", "tcp://buildkitd:1234")]);
    assert_eq!((p.builder.clone(), builder_flag(&p)), (BuilderPlan::New, None));
    assert!(p.warnings.iter().any(|w| w.contains("does not run on the shared BuildKit at tcp://buildkitd:1234")));
    // A builder of the job's own (a name) is the job's: a fork PR builds on it.
    let p = run("pull_request", &fork(), &[("INPUT_BUILDER", "ci")]);
    assert_eq!(builder_flag(&p), Some("ci"));
}
