//! A closed pull request's run deletes exactly its cache scope: through a registry's
//! distribution API (a stand-in that keeps tags and digests, and can refuse deletes), and on
//! ghcr.io through the packages API (a mock that expects exactly the right DELETEs).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::run::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A repository `team/cache`: tag → digest, as the distribution API shows it. A DELETE of a
/// digest removes every tag naming it, as registry:2 does.
#[derive(Clone, Default)]
struct Tags {
    tags: Arc<Mutex<BTreeMap<String, String>>>,
    refuse_deletes: bool,
    /// Ask for a Bearer token (from `/token`, for the run's Basic credentials) first.
    token_auth: bool,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Tags {
    /// The token service, and the 401 challenge of a request that holds no token.
    fn authorize(&self, request: &Request) -> Option<ResponseTemplate> {
        use base64::Engine;
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if request.url.path() == "/token" {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("Codertocat:{TOKEN}"));
            let scope = request.url.query_pairs().find(|(k, _)| k == "scope").map(|(_, v)| v.to_string());
            return Some(match auth == format!("Basic {basic}") {
                true => ResponseTemplate::new(200)
                    .set_body_json(json!({"token": format!("tok {}", scope.unwrap_or_default())})),
                false => ResponseTemplate::new(401),
            });
        }
        let wanted = if request.method.as_str() == "DELETE" { "pull,delete" } else { "pull" };
        let ok = auth == format!("Bearer tok repository:team/cache:{wanted}")
            || (wanted == "pull" && auth.starts_with("Bearer tok repository:team/cache:pull"));
        (self.token_auth && !ok).then(|| {
            let host = request.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
            let realm = format!("http://{host}/token");
            ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!("Bearer realm=\"{realm}\",service=\"registry\",scope=\"repository:team/cache:{wanted}\"")
                    .as_str(),
            )
        })
    }
}

impl wiremock::Respond for Tags {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let p = request.url.path().to_string();
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("none");
        self.requests.lock().unwrap().push(format!(
            "{} {p} {}",
            request.method,
            auth.split(' ').next().unwrap_or_default()
        ));
        if let Some(answer) = self.authorize(request) {
            return answer;
        }
        let mut tags = self.tags.lock().unwrap();
        let prefix = "/v2/team/cache/";
        let Some(rest) = p.strip_prefix(prefix) else { return ResponseTemplate::new(404) };
        match (request.method.as_str(), rest) {
            ("GET", "tags/list") => ResponseTemplate::new(200)
                .set_body_json(json!({"name": "team/cache", "tags": tags.keys().collect::<Vec<_>>()})),
            ("HEAD", r) if r.starts_with("manifests/") => match tags.get(&r["manifests/".len()..]) {
                Some(d) => ResponseTemplate::new(200).insert_header("docker-content-digest", d.as_str()),
                None => ResponseTemplate::new(404),
            },
            ("DELETE", _) if self.refuse_deletes => ResponseTemplate::new(405).set_body_json(
                json!({"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}),
            ),
            ("DELETE", r) if r.starts_with("manifests/sha256:") => {
                let digest = &r["manifests/".len()..];
                tags.retain(|_, d| d != digest);
                ResponseTemplate::new(202)
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// PR 2 is the fixture's number. Its scope, its neighbours, and the image's own tags.
fn repository() -> BTreeMap<String, String> {
    [
        ("buildcache-pr-2", 1),
        ("buildcache-pr-2-linux-arm64", 2),
        ("buildcache-mounts-pr-2", 3),
        ("buildcache-pr-3", 4),
        ("buildcache-pr-20", 5),
        ("buildcache", 6),
        ("buildcache-pr", 7),
        ("latest", 8),
        ("pr-2", 9),
        // The same manifest as :buildcache: deleting it would delete :buildcache too.
        ("buildcache-mounts-pr-2-linux-amd64", 6),
    ]
    .into_iter()
    .map(|(t, d)| (t.to_string(), digest(d)))
    .collect()
}

struct Registry {
    _rt: tokio::runtime::Runtime,
    server: MockServer,
    tags: Tags,
}

fn registry(refuse_deletes: bool) -> Registry {
    registry_with(Tags { refuse_deletes, ..Default::default() })
}

fn registry_with(tags: Tags) -> Registry {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    *tags.tags.lock().unwrap() = repository();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path_regex("^/(v2/|token)")).respond_with(tags.clone()).mount(&server).await;
        server
    });
    // The server runs on its own thread: the runtime drives it while the test waits.
    let handle = rt.handle().clone();
    std::thread::spawn(move || handle.block_on(std::future::pending::<()>()));
    Registry { _rt: rt, server, tags }
}

fn closed(run: Run, fixture: &str) -> Run {
    let mut payload: Value = common::fixture(fixture);
    common::set(&mut payload, "/action", json!("closed"));
    let file = run.path("event.json");
    std::fs::write(&file, payload.to_string()).unwrap();
    run.with("GITHUB_EVENT_PATH", file.to_str().unwrap())
}

fn closed_pr(event: &str, fixture: &str, cache_image: &str, pr_cache: &str) -> Run {
    let run = Run::new(event, fixture).with("INPUT_CACHE-IMAGE", cache_image).with("INPUT_PR-CACHE", pr_cache);
    closed(run, fixture)
}

#[test]
fn a_closed_pull_request_deletes_exactly_its_scope() {
    let r = registry(false);
    let image = format!("{}/team/cache", r.server.address());
    let run = closed_pr("pull_request", "pull_request-same-repo-opened.json", &image, "per-pr");
    let done = run.run();
    done.assert_success();
    let left: Vec<String> = r.tags.tags.lock().unwrap().keys().cloned().collect();
    assert_eq!(
        left,
        [
            "buildcache",
            "buildcache-mounts-pr-2-linux-amd64",
            "buildcache-pr",
            "buildcache-pr-20",
            "buildcache-pr-3",
            "latest",
            "pr-2"
        ]
    );
    assert!(run.calls().is_empty(), "no docker call: nothing is built");
    assert!(done.stdout.contains(&format!(
        "::notice::Deleted from {image}: buildcache-mounts-pr-2, buildcache-pr-2, buildcache-pr-2-linux-arm64."
    )));
    assert!(
        done.stdout.contains("::notice::Kept in")
            && done.stdout.contains("names the same manifest as buildcache: kept")
    );
    let summary = run.summary();
    assert!(
        summary.contains("| Deleted | <code>buildcache-mounts-pr-2</code><br><code>buildcache-pr-2</code><br><code>buildcache-pr-2-linux-arm64</code> |"),
        "{summary}"
    );
    assert!(
        summary.contains("| Kept | buildcache-mounts-pr-2-linux-amd64 names the same manifest as buildcache: kept |")
    );
    assert!(!summary.contains("| Platforms |"), "nothing was built: {summary}");
    assert!(summary.contains("pull request closed: nothing built"), "{summary}");
    assert_eq!(run.outputs()["pushed"], "false");
    let deletes = r.tags.requests.lock().unwrap().iter().filter(|q| q.starts_with("DELETE")).count();
    assert_eq!(deletes, 3, "one DELETE per digest of the scope");
}

#[test]
fn a_registry_that_asks_for_a_token_gets_one_for_the_runs_credentials() {
    let r = registry_with(Tags { token_auth: true, ..Default::default() });
    let image = format!("{}/team/cache", r.server.address());
    let run = closed_pr("pull_request", "pull_request-same-repo-opened.json", &image, "per-pr");
    run.run().assert_success();
    assert!(!r.tags.tags.lock().unwrap().contains_key("buildcache-pr-2"), "deleted with a delete-scoped token");
    let requests = r.tags.requests.lock().unwrap().clone();
    assert_eq!(requests[0], "GET /v2/team/cache/tags/list none", "no credentials before the registry asks");
    assert!(requests.iter().any(|q| q == "GET /token Basic"), "{requests:#?}");
    assert!(requests.iter().filter(|q| q.starts_with("DELETE")).all(|q| !q.ends_with("Basic")), "{requests:#?}");
}

#[test]
fn a_registry_that_refuses_deletes_only_warns() {
    let r = registry(true);
    let image = format!("{}/team/cache", r.server.address());
    let run = closed_pr("pull_request", "pull_request-same-repo-opened.json", &image, "per-pr");
    let done = run.run();
    done.assert_success();
    assert_eq!(*r.tags.tags.lock().unwrap(), repository(), "nothing deleted");
    let warning = done.stdout.lines().find(|l| l.starts_with("::warning::")).expect("a warning");
    assert!(
        warning.contains("refused to delete") && warning.contains("405 The operation is unsupported."),
        "{warning}"
    );
    assert!(!done.stdout.contains("::error"));
}

#[test]
fn untrusted_and_shared_closed_runs_touch_nothing() {
    let r = registry(false);
    let image = format!("{}/team/cache", r.server.address());
    let fork = closed_pr("pull_request", "pull_request-fork-opened.json", &image, "per-pr");
    let done = fork.run();
    done.assert_success();
    assert!(done.stdout.contains("::notice::Nothing to clean up: untrusted runs delete nothing"), "{}", done.stdout);
    let shared = closed_pr("pull_request", "pull_request-same-repo-opened.json", &image, "shared");
    let done = shared.run();
    done.assert_success();
    assert!(done.stdout.contains("::notice::Nothing to clean up: pr-cache is shared"), "{}", done.stdout);
    assert!(r.tags.requests.lock().unwrap().is_empty(), "the registry was not asked anything");
    assert!(fork.calls().is_empty() && shared.calls().is_empty());
}

fn version(id: u64, tags: &[&str]) -> Value {
    json!({"id": id, "name": digest(id as u8), "created_at": "2026-11-01T00:00:00Z", "metadata": {"package_type": "container", "container": {"tags": tags}}})
}

#[test]
fn on_ghcr_the_packages_api_deletes_the_versions_of_the_scope() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let base = "/users/codertocat/packages/container/hello-world";
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        let versions = json!([
            version(1, &["buildcache-pr-2"]),
            version(2, &["buildcache-pr-2-linux-arm64"]),
            version(3, &["buildcache-pr-2-linux-amd64", "buildcache"]),
            version(4, &["buildcache-pr-20"]),
            version(5, &["latest", "pr-2"]),
            version(6, &[]),
        ]);
        Mock::given(method("GET"))
            .and(path(format!("{base}/versions")))
            .respond_with(ResponseTemplate::new(200).set_body_json(versions))
            .expect(1)
            .mount(&server)
            .await;
        for id in [1, 2] {
            Mock::given(method("DELETE"))
                .and(path(format!("{base}/versions/{id}")))
                .respond_with(ResponseTemplate::new(204))
                .expect(1)
                .mount(&server)
                .await;
        }
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(204))
            .with_priority(10)
            .expect(0)
            .mount(&server)
            .await;
        server
    });
    let handle = rt.handle().clone();
    std::thread::spawn(move || handle.block_on(std::future::pending::<()>()));
    let run = closed(
        Run::new("pull_request", "pull_request-same-repo-opened.json")
            .with("INPUT_PR-CACHE", "per-pr")
            .with("GITHUB_API_URL", &server.uri()),
        "pull_request-same-repo-opened.json",
    );
    let done = run.run();
    done.assert_success();
    assert!(
        done.stdout.contains(
            "::notice::Deleted from ghcr.io/codertocat/hello-world: buildcache-pr-2, buildcache-pr-2-linux-arm64."
        ),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("buildcache-pr-2-linux-amd64 also carries buildcache: kept"), "{}", done.stdout);
    assert!(done.stdout.lines().filter(|l| l.contains(TOKEN)).all(|l| l == format!("::add-mask::{TOKEN}")));
    rt.block_on(server.verify());
}
