//! The GitHub API module against a local mock of the REST API (wiremock), with response
//! bodies shaped like GitHub's.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{env, fixture, pull_request_body, set};
use sdi::context::Context;
use sdi::github::{ApiConfig, gather, prune_cache};
use sdi::plan::BuildPlan;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPO: &str = "Codertocat/Hello-World";

fn config(server: &MockServer) -> ApiConfig {
    ApiConfig {
        api_url: server.uri(),
        budget: Duration::from_secs(3),
        request_timeout: Duration::from_millis(300),
        backoff: Duration::from_millis(20),
    }
}

fn context(event: &str, payload: &Value, extra: &[(&str, &str)]) -> Context {
    let mut vars = vec![("INPUT_GITHUB-TOKEN", "ghs_mocktoken")];
    vars.extend_from_slice(extra);
    common::context(event, payload, &env(REPO, &vars)).unwrap()
}

async fn plan(server: &MockServer, ctx: &Context) -> BuildPlan {
    let api = gather(ctx, &config(server)).await;
    sdi::decide(ctx, &api).unwrap()
}

fn comment(association: &str) -> Value {
    let mut p = fixture("issue_comment-on-pull-request.json");
    set(&mut p, "/comment/author_association", json!(association));
    p
}

async fn pr_returns(server: &MockServer, body: Value) {
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_comment_by_a_maintainer_on_a_same_repo_pr_is_trusted_and_pinned() {
    for association in ["OWNER", "MEMBER", "COLLABORATOR"] {
        let server = MockServer::start().await;
        pr_returns(&server, pull_request_body(1, 186853002, 186853002)).await;
        let p = plan(&server, &context("issue_comment", &comment(association), &[])).await;
        assert!(p.trust.trusted, "{association}: {}", p.trust.reason);
        assert!(p.trust.reason.contains(&format!("({association})")) && p.trust.reason.contains("per the GitHub API"));
        assert!(p.tags.contains(&"ghcr.io/codertocat/hello-world:sha-ec26c3e".to_string()), "{:?}", p.tags);
        assert_eq!(p.labels["org.opencontainers.image.revision"], "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
        let auth = server.received_requests().await.unwrap()[0].headers.get("authorization").cloned();
        assert_eq!(auth.unwrap().to_str().unwrap(), "Bearer ghs_mocktoken");
    }
}

#[tokio::test]
async fn other_commenters_forks_and_deleted_forks_are_untrusted() {
    for association in ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN", "NONE"] {
        let server = MockServer::start().await;
        pr_returns(&server, pull_request_body(1, 186853002, 186853002)).await;
        let p = plan(&server, &context("issue_comment", &comment(association), &[])).await;
        assert!(!p.trust.trusted, "{association}");
        assert!(p.trust.reason.contains("only an OWNER, MEMBER or COLLABORATOR"), "{}", p.trust.reason);
    }
    let server = MockServer::start().await;
    pr_returns(&server, pull_request_body(1, 99990002, 186853002)).await;
    let p = plan(&server, &context("issue_comment", &comment("OWNER"), &[])).await;
    assert!(!p.trust.trusted);
    assert!(p.trust.reason.contains("comes from the fork octo-forker/Hello-World"), "{}", p.trust.reason);
    assert!(p.cache_to.is_empty() && p.secrets.is_empty() && p.login.is_empty());

    let server = MockServer::start().await;
    let mut deleted = pull_request_body(1, 1, 186853002);
    deleted["head"]["repo"] = Value::Null;
    pr_returns(&server, deleted).await;
    let p = plan(&server, &context("issue_comment", &comment("OWNER"), &[])).await;
    assert!(!p.trust.trusted);
    assert!(p.trust.reason.contains("head repository was deleted"), "{}", p.trust.reason);
}

#[tokio::test]
async fn a_missing_pr_is_not_retried_and_leaves_the_run_untrusted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/1"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = plan(&server, &context("issue_comment", &comment("OWNER"), &[])).await;
    assert!(!p.trust.trusted);
    assert!(p.trust.reason.contains("404 Not Found"), "{}", p.trust.reason);
    assert!(p.warnings.iter().any(|w| w.contains("pull request #1 failed: 404 Not Found")), "{:?}", p.warnings);
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/1"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "Server Error"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    pr_returns(&server, pull_request_body(1, 186853002, 186853002)).await;
    let p = plan(&server, &context("issue_comment", &comment("MEMBER"), &[])).await;
    assert!(p.trust.trusted, "{}", p.trust.reason);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_secondary_rate_limit_waits_for_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/1"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    pr_returns(&server, pull_request_body(1, 186853002, 186853002)).await;
    let started = Instant::now();
    let p = plan(&server, &context("issue_comment", &comment("OWNER"), &[])).await;
    assert!(p.trust.trusted, "{}", p.trust.reason);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn a_plain_403_is_final() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/1"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = plan(&server, &context("issue_comment", &comment("OWNER"), &[])).await;
    assert!(!p.trust.trusted);
    assert!(p.trust.reason.contains("403 Resource not accessible by integration"));
}

#[tokio::test]
async fn a_timeout_ends_in_an_untrusted_run_within_the_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(pull_request_body(1, 186853002, 186853002))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let ctx = context("issue_comment", &comment("OWNER"), &[]);
    let cfg = ApiConfig { budget: Duration::from_secs(1), ..config(&server) };
    let started = Instant::now();
    let api = gather(&ctx, &cfg).await;
    let p = sdi::decide(&ctx, &api).unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    assert!(!p.trust.trusted);
    assert!(
        p.warnings.iter().any(|w| w.contains("timed out") && w.contains("goes on as untrusted")),
        "{:?}",
        p.warnings
    );
}

#[tokio::test]
async fn persistent_failures_fall_back_to_untrusted_with_a_warning() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .mount(&server)
        .await;
    let started = Instant::now();
    let p = plan(&server, &context("issue_comment", &comment("OWNER"), &[])).await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(!p.trust.trusted);
    let warning = p.warnings.iter().find(|w| w.contains("no answer within 3 s")).expect("a warning");
    assert!(warning.contains("502"), "{warning}");
    assert!(server.received_requests().await.unwrap().len() > 2, "it was retried");
}

#[tokio::test]
async fn without_a_token_no_call_is_made() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let ctx = common::context("issue_comment", &comment("OWNER"), &env(REPO, &[])).unwrap();
    let api = gather(&ctx, &config(&server)).await;
    let p = sdi::decide(&ctx, &api).unwrap();
    assert!(!p.trust.trusted);
    assert!(p.trust.reason.contains("no github-token was given"), "{}", p.trust.reason);
    assert!(p.warnings.is_empty(), "no token is a choice, not a failure: {:?}", p.warnings);
}

#[tokio::test]
async fn a_workflow_run_without_head_repository_is_looked_up() {
    let mut payload = fixture("workflow_run-completed.json");
    common::remove(&mut payload, "/workflow_run/head_repository");
    let run = |head_id: u64, name: &str| {
        json!({"id": 1589141559, "name": "CI", "head_branch": "main", "head_sha": "5779607b49aab1200488439f02372c57b4f75444",
               "event": "pull_request", "status": "completed", "pull_requests": [],
               "head_repository": {"id": head_id, "full_name": name}, "repository": {"id": 283462325, "full_name": REPO}})
    };
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/actions/runs/1589141559"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run(283462325, REPO)))
        .expect(1)
        .mount(&server)
        .await;
    let p = plan(&server, &context("workflow_run", &payload, &[])).await;
    assert!(p.trust.trusted, "{}", p.trust.reason);
    assert_eq!(p.lane, sdi::trust::Lane::Main);
    assert!(p.trust.reason.contains("looked up with the GitHub API"));

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/actions/runs/1589141559"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run(99990002, "octo-forker/Hello-World")))
        .mount(&server)
        .await;
    let p = plan(&server, &context("workflow_run", &payload, &[])).await;
    assert!(!p.trust.trusted);
    assert!(p.trust.reason.contains("octo-forker/Hello-World"), "{}", p.trust.reason);
}

fn fork_pr(owner_kind: &str) -> Value {
    let mut p = fixture("pull_request-fork-opened.json");
    set(&mut p, "/repository/owner/type", json!(owner_kind));
    p
}

async fn package(server: &MockServer, route: &str, visibility: &str) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 197, "name": "hello-world", "package_type": "container", "visibility": visibility,
            "url": format!("https://api.github.com{route}"), "created_at": "2026-01-01T00:00:00Z"
        })))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_private_cache_package_is_not_read_by_untrusted_runs() {
    let server = MockServer::start().await;
    package(&server, "/orgs/codertocat/packages/container/hello-world", "private").await;
    let p = plan(&server, &context("pull_request", &fork_pr("Organization"), &[])).await;
    assert!(!p.trust.trusted);
    assert!(p.cache_from.is_empty(), "{:?}", p.cache_from);
    assert!(!p.argv.contains(&"--cache-from".to_string()));
    assert!(p.warnings.iter().any(|w| w.contains("is private")), "{:?}", p.warnings);
}

#[tokio::test]
async fn a_public_user_owned_package_keeps_the_cache_reads() {
    let server = MockServer::start().await;
    package(&server, "/users/codertocat/packages/container/hello-world", "public").await;
    let p = plan(&server, &context("pull_request", &fork_pr("User"), &[])).await;
    assert_eq!(p.cache_from.len(), 2);
}

#[tokio::test]
async fn an_unknown_owner_is_tried_as_an_organisation_then_a_user() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/someone/packages/container/shared-cache"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&server)
        .await;
    package(&server, "/users/someone/packages/container/shared-cache", "private").await;
    let ctx = context("pull_request", &fork_pr("User"), &[("INPUT_CACHE-IMAGE", "someone/shared-cache")]);
    let p = plan(&server, &ctx).await;
    assert!(p.cache_from.is_empty());
}

#[tokio::test]
async fn an_unknown_visibility_keeps_the_cache_reads_and_trusted_runs_do_not_ask() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let p = plan(&server, &context("pull_request", &fork_pr("User"), &[])).await;
    assert_eq!(p.cache_from.len(), 2, "a failed import is harmless, a missing one is slow");

    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let p = plan(&server, &context("pull_request", &fixture("pull_request-same-repo-opened.json"), &[])).await;
    assert!(p.trust.trusted);
}

fn version(id: u64, created: &str, tags: &[&str]) -> Value {
    json!({
        "id": id,
        "name": format!("sha256:{id:064x}"),
        "url": format!("https://api.github.com/orgs/Codertocat/packages/container/hello-cache/versions/{id}"),
        "package_html_url": "https://github.com/orgs/Codertocat/packages/container/package/hello-cache",
        "created_at": created,
        "updated_at": created,
        "html_url": format!("https://github.com/orgs/Codertocat/packages/container/hello-cache/{id}"),
        "metadata": {"package_type": "container", "container": {"tags": tags}}
    })
}

const VERSIONS: &str = "/users/codertocat/packages/container/hello-cache/versions";

/// Three pages of versions, linked as GitHub links them.
async fn versions(server: &MockServer) {
    let pages = [
        vec![version(1, "2026-11-27T10:00:00Z", &["buildcache"]), version(2, "2026-10-01T10:00:00Z", &[])],
        vec![version(3, "2026-11-26T10:00:00Z", &[]), version(4, "2026-09-01T10:00:00Z", &["buildcache-pr"])],
        vec![version(5, "2026-08-01T10:00:00Z", &[])],
    ];
    for (i, page) in pages.iter().enumerate() {
        let n = i + 1;
        let mut response = ResponseTemplate::new(200).set_body_json(page);
        if n < pages.len() {
            let link = format!(
                "<{}{VERSIONS}?per_page=100&state=active&page={}>; rel=\"next\", <{}{VERSIONS}?per_page=100&state=active&page=3>; rel=\"last\"",
                server.uri(),
                n + 1,
                server.uri()
            );
            response = response.insert_header("link", link.as_str());
        }
        let m = Mock::given(method("GET")).and(path(VERSIONS));
        let m = if n == 1 {
            m.and(wiremock::matchers::query_param_is_missing("page"))
        } else {
            m.and(query_param("page", n.to_string()))
        };
        m.respond_with(response).expect(1).mount(server).await;
    }
}

/// Each of these versions is deleted exactly once.
async fn expect_deletes(server: &MockServer, ids: &[u64]) {
    for id in ids {
        Mock::given(method("DELETE"))
            .and(path(format!("{VERSIONS}/{id}")))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(server)
            .await;
    }
}

fn prune_context() -> Context {
    context("push", &fixture("push-default-branch.json"), &[("INPUT_CACHE-IMAGE", "Codertocat/hello-cache")])
}

fn now() -> SystemTime {
    humantime::parse_rfc3339("2026-11-28T00:00:00Z").unwrap()
}

#[tokio::test]
async fn prune_deletes_only_old_untagged_versions_across_pages() {
    let server = MockServer::start().await;
    versions(&server).await;
    expect_deletes(&server, &[2, 5]).await;
    let report = prune_cache(&prune_context(), &config(&server), 7, false, now()).await.unwrap();
    let ids: Vec<u64> = report.deleted.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 5]);
    assert_eq!(report.kept, 3);
    assert!(report.warnings.is_empty());
    let deletes = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(deletes, 2, "tagged or recent versions are never deleted");
}

#[tokio::test]
async fn a_dry_run_deletes_nothing() {
    let server = MockServer::start().await;
    versions(&server).await;
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).expect(0).mount(&server).await;
    let report = prune_cache(&prune_context(), &config(&server), 7, true, now()).await.unwrap();
    assert_eq!(report.deleted.len(), 2);
}

#[tokio::test]
async fn prune_refuses_the_image_package_itself() {
    let server = MockServer::start().await;
    Mock::given(path_regex(".*")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let ctx = context("push", &fixture("push-default-branch.json"), &[]);
    let err = prune_cache(&ctx, &config(&server), 7, false, now()).await.unwrap_err();
    assert!(err.contains("it is also the image package") && err.contains("cache-image"), "{err}");
}

#[tokio::test]
async fn a_forbidden_delete_is_a_warning_not_a_failure() {
    let server = MockServer::start().await;
    versions(&server).await;
    Mock::given(method("DELETE"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Must have admin rights to Repository."})),
        )
        .mount(&server)
        .await;
    let report = prune_cache(&prune_context(), &config(&server), 7, false, now()).await.unwrap();
    assert!(report.deleted.is_empty());
    assert!(
        report.warnings.iter().any(|w| w.contains("Not allowed to delete") && w.contains("admin rights")),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn a_workspace_at_another_commit_than_the_checked_pr_head_is_flagged() {
    let server = MockServer::start().await;
    pr_returns(&server, pull_request_body(1, 186853002, 186853002)).await;
    let mut ctx = context("issue_comment", &comment("OWNER"), &[]);
    ctx.workspace_head = Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into());
    let p = plan(&server, &ctx).await;
    assert!(p.trust.trusted);
    let w = p.warnings.iter().find(|w| w.contains("not at the PR head")).expect("a warning");
    assert!(
        w.contains("f95f852bd8fca8fcc58a9a2d6c842781e32a215e")
            && w.contains("ec26c3e57ca3a959ca5aad62de7213c562f8c821"),
        "{w}"
    );
    ctx.workspace_head = Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821".into());
    let p = plan(&server, &ctx).await;
    assert!(!p.warnings.iter().any(|w| w.contains("not at the PR head")));
}

#[tokio::test]
async fn prune_also_deletes_the_scopes_of_pull_requests_closed_long_ago() {
    let server = MockServer::start().await;
    let list = vec![
        version(10, "2026-10-01T10:00:00Z", &["buildcache-pr-5"]),
        version(11, "2026-10-01T10:00:00Z", &["buildcache-mounts-pr-5-linux-arm64"]),
        version(12, "2026-10-01T10:00:00Z", &["buildcache-pr-6"]),
        version(13, "2026-10-01T10:00:00Z", &["buildcache-pr-7"]),
        version(14, "2026-10-01T10:00:00Z", &["buildcache-pr-5", "buildcache"]),
        version(15, "2026-10-01T10:00:00Z", &["buildcache"]),
        version(16, "2026-10-01T10:00:00Z", &["buildcache-pr-8"]),
    ];
    Mock::given(method("GET"))
        .and(path(VERSIONS))
        .respond_with(ResponseTemplate::new(200).set_body_json(list))
        .mount(&server)
        .await;
    // #5 closed a month ago, #6 yesterday (inside the 7 days kept), #7 still open, #8 unknown.
    let pr = |state: &str, closed_at: Option<&str>| json!({"number": 1, "state": state, "closed_at": closed_at});
    for (n, body) in [
        (5, pr("closed", Some("2026-10-28T00:00:00Z"))),
        (6, pr("closed", Some("2026-11-27T00:00:00Z"))),
        (7, pr("open", None)),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/repos/Codertocat/Hello-World/pulls/{n}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/8"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    expect_deletes(&server, &[10, 11]).await;
    let report = prune_cache(&prune_context(), &config(&server), 7, false, now()).await.unwrap();
    let ids: Vec<u64> = report.deleted.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [10, 11], "only the scopes of #5, and never a version that also carries buildcache");
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("#8"));
    let deletes = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(deletes, 2);
}
