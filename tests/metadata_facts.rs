//! Scheduled runs get metadata-action's tags and labels too: where the event payload has no
//! repository (a `schedule` payload is the cron line) or does not date the commit, the plan
//! asks the GitHub API (the local mock here) once per endpoint, and only then; when it cannot,
//! one warning names what was left out, and nothing is guessed.

mod common;

use std::time::Duration;

use common::{api_body, env, fixture};
use sdi::context::Context;
use sdi::github::{ApiConfig, gather};
use sdi::plan::BuildPlan;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPO: &str = "Codertocat/Hello-World";
const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const IMAGE: &str = "ghcr.io/codertocat/hello-world";
/// A nightly workflow's rules: its commit's date, `edge` on the default branch, and a tag
/// only the default branch gets.
const NIGHTLY: &str = "type=schedule,pattern=nightly-{{commit_date 'YYYYMMDD-HHmm'}}\ntype=edge\ntype=raw,value=default,enable={{is_default_branch}}";
const DESCRIPTION: &str = "org.opencontainers.image.description";
const LICENSES: &str = "org.opencontainers.image.licenses";

fn config(server: &MockServer, budget: Duration) -> ApiConfig {
    ApiConfig {
        api_url: server.uri(),
        budget,
        request_timeout: Duration::from_millis(300),
        backoff: Duration::from_millis(20),
    }
}

fn context(event: &str, payload: &Value, extra: &[(&str, &str)]) -> Context {
    common::context(event, payload, &env(REPO, extra)).unwrap()
}

/// A `schedule` run as the runner starts it: on the default branch's last commit.
fn nightly(token: bool) -> Context {
    let mut vars = vec![("GITHUB_REF", "refs/heads/master"), ("GITHUB_SHA", SHA), ("INPUT_TAGS", NIGHTLY)];
    if token {
        vars.push(("INPUT_GITHUB-TOKEN", "ghs_mocktoken"));
    }
    context("schedule", &fixture("schedule.json"), &vars)
}

async fn plan(server: &MockServer, ctx: &Context, budget: Duration) -> BuildPlan {
    let api = gather(ctx, &config(server, budget)).await;
    sdi::decide(ctx, &api).unwrap()
}

async fn serve(server: &MockServer, route: &str, status: u16, body: Value, times: u64) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(times)
        .mount(server)
        .await;
}

fn tags(p: &BuildPlan) -> Vec<String> {
    p.tags.iter().map(|t| t.strip_prefix(IMAGE).unwrap_or(t).to_string()).collect()
}

fn left_out_warnings(p: &BuildPlan) -> Vec<&String> {
    p.warnings.iter().filter(|w| w.starts_with("Left out of this run's metadata")).collect()
}

#[tokio::test]
async fn a_scheduled_run_reads_the_repository_and_the_commit_date_from_the_api_once_each() {
    let server = MockServer::start().await;
    serve(&server, "/repos/Codertocat/Hello-World", 200, api_body("repos-Codertocat-Hello-World.json"), 1).await;
    serve(&server, &format!("/repos/{REPO}/commits/{SHA}"), 200, api_body("commits-ec26c3e.json"), 1).await;
    let p = plan(&server, &nightly(true), Duration::from_secs(3)).await;
    // The committer's date (15:20), not the author's (15:19), as metadata-action reads it.
    assert_eq!(tags(&p), [":nightly-20190515-1520", ":edge", ":default"]);
    assert_eq!(p.labels[DESCRIPTION], "A small app: the fixtures build it");
    assert_eq!(p.labels[LICENSES], "MIT");
    assert_eq!(p.labels["org.opencontainers.image.url"], "https://github.com/Codertocat/Hello-World");
    assert_eq!(p.labels["org.opencontainers.image.title"], "Hello-World");
    assert!(left_out_warnings(&p).is_empty(), "{:?}", p.warnings);
    let annotations = p.annotations.join("\n");
    assert!(annotations.contains("manifest:org.opencontainers.image.licenses=MIT"), "{annotations}");
    let asked = server.received_requests().await.unwrap();
    assert!(asked.iter().all(|r| r.headers["authorization"] == "Bearer ghs_mocktoken"));
    // `.expect(1)` on each: one call per endpoint, checked when the server drops.
}

#[tokio::test]
async fn a_run_whose_payload_says_it_all_asks_the_api_nothing() {
    let server = MockServer::start().await;
    let vars = [("INPUT_GITHUB-TOKEN", "ghs_mocktoken"), ("INPUT_TAGS", NIGHTLY)];
    let p = plan(&server, &context("push", &fixture("push-default-branch.json"), &vars), Duration::from_secs(3)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 0, "no call for facts the payload has");
    assert_eq!(tags(&p), [":edge", ":default"], "type=schedule makes nothing on a push");
    assert_eq!(p.labels[DESCRIPTION], "", "the payload's repository has no description: empty, not asked");
    assert!(left_out_warnings(&p).is_empty(), "{:?}", p.warnings);

    // The same push with the commit date wanted: the payload dates its head commit.
    let vars = [("INPUT_GITHUB-TOKEN", "ghs_mocktoken"), ("INPUT_TAGS", "type=raw,value={{commit_date 'YYYYMMDD'}}")];
    let p = plan(&server, &context("push", &fixture("push-default-branch.json"), &vars), Duration::from_secs(3)).await;
    assert_eq!(tags(&p), [":20190515"]);
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

/// What the run leaves out when the API gives nothing: every tag and label that needs it, in
/// one warning, with no guessed value in their place.
fn assert_left_out(p: &BuildPlan, why: &str) {
    assert_eq!(tags(p), [":default"], "no dated nightly tag, no edge: {:?}", p.warnings);
    assert!(!p.labels.contains_key(DESCRIPTION) && !p.labels.contains_key(LICENSES), "{:?}", p.labels);
    assert_eq!(p.labels["org.opencontainers.image.revision"], SHA);
    assert!(!p.annotations.iter().any(|a| a.contains(DESCRIPTION)), "{:?}", p.annotations);
    let warnings = left_out_warnings(p);
    assert_eq!(warnings.len(), 1, "one warning: {:?}", p.warnings);
    let w = warnings[0];
    for part in [
        why,
        "the commit date",
        "the tags of 'type=schedule,pattern=nightly-{{commit_date 'YYYYMMDD-HHmm'}}'",
        "the repository's facts",
        "the tags of 'type=edge'",
        "the label and annotation org.opencontainers.image.description",
        "the label and annotation org.opencontainers.image.licenses",
    ] {
        assert!(w.contains(part), "'{part}' in: {w}");
    }
}

#[tokio::test]
async fn without_a_token_nothing_is_asked_and_what_needs_the_api_is_left_out() {
    let server = MockServer::start().await;
    let p = plan(&server, &nightly(false), Duration::from_secs(3)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
    assert_left_out(&p, "no github-token was given");
}

#[tokio::test]
async fn an_api_that_refuses_or_is_down_leaves_them_out_and_the_run_goes_on() {
    let server = MockServer::start().await;
    let refused = json!({"message": "Resource not accessible by integration"});
    serve(&server, "/repos/Codertocat/Hello-World", 403, refused.clone(), 1).await;
    serve(&server, &format!("/repos/{REPO}/commits/{SHA}"), 403, refused, 1).await;
    let p = plan(&server, &nightly(true), Duration::from_secs(3)).await;
    assert_left_out(&p, "403 Resource not accessible by integration");
    assert!(p.push, "a scheduled run still pushes what it could tag");

    let down = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&down).await;
    let p = plan(&down, &nightly(true), Duration::from_millis(400)).await;
    assert_left_out(&p, "no answer within");
}
