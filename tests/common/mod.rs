//! Helpers shared by the integration tests: fixtures, payload variants and contexts.
#![allow(dead_code)]

pub mod e2e;
pub mod engine;
pub mod run;
pub mod sigstore;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sdi::context::{Context, Event, InputError, Overrides, ProcessEnv};
use sdi::plan::BuildPlan;
use serde_json::Value;

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events").join(name)
}

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Sets the value at a JSON pointer (its parent must exist); `Value::Null` stays as null.
pub fn set(payload: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = payload.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    parent.as_object_mut().unwrap().insert(key.to_string(), value);
}

/// Removes the key at a JSON pointer.
pub fn remove(payload: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    payload.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key).unwrap_or_else(|| panic!("no {pointer}"));
}

/// A runner-like environment: GITHUB_REPOSITORY, the clock at the fixtures' commit time
/// (`SOURCE_DATE_EPOCH`, for the `created` label) plus `extra` (`INPUT_*`, `GITHUB_REF`…).
pub fn env(repository: &str, extra: &[(&str, &str)]) -> ProcessEnv {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("GITHUB_REPOSITORY".into(), repository.into()),
        ("SOURCE_DATE_EPOCH".into(), "1557933641".into()),
    ]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    ProcessEnv::new(vars)
}

pub fn context(event_name: &str, payload: &Value, env: &ProcessEnv) -> Result<Context, InputError> {
    let event = Event::parse(&payload.to_string()).expect("payload parses");
    let flags = Overrides { event_name: Some(event_name.into()), ..Default::default() };
    Context::with_event(env, &flags, event)
}

pub fn plan(event_name: &str, payload: &Value, env: &ProcessEnv) -> Result<BuildPlan, InputError> {
    sdi::decide(&context(event_name, payload, env)?, &sdi::trust::ApiFacts::default())
}

/// An answer of the GitHub REST API, from `tests/fixtures/github-api`.
pub fn api_body(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github-api").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"))).unwrap()
}

/// A local stand-in for the GitHub API, shared by the tests of one binary: every container
/// package is public, pull request #1 of Codertocat/Hello-World comes from the repository
/// itself, the repository and its commit `ec26c3e…` are described as the REST API describes
/// them. Returns its base URL, for GITHUB_API_URL.
pub fn github_mock() -> &'static str {
    use std::sync::OnceLock;
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                use wiremock::matchers::{method, path, path_regex};
                use wiremock::{Mock, MockServer, ResponseTemplate};
                let server = MockServer::start().await;
                Mock::given(method("GET"))
                    .and(path_regex(r"^/(orgs|users)/[^/]+/packages/container/[^/]+$"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": 1, "name": "pkg", "package_type": "container", "visibility": "public"})))
                    .mount(&server)
                    .await;
                Mock::given(method("GET"))
                    .and(path("/repos/Codertocat/Hello-World/pulls/1"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(pull_request_body(1, 186853002, 186853002)))
                    .mount(&server)
                    .await;
                Mock::given(method("GET"))
                    .and(path("/repos/Codertocat/Hello-World"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(api_body("repos-Codertocat-Hello-World.json")))
                    .mount(&server)
                    .await;
                Mock::given(method("GET"))
                    .and(path("/repos/Codertocat/Hello-World/commits/ec26c3e57ca3a959ca5aad62de7213c562f8c821"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(api_body("commits-ec26c3e.json")))
                    .mount(&server)
                    .await;
                tx.send(server.uri()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    })
}

/// A pull request as the REST API returns it (the fields octocrab's model and this action read).
pub fn pull_request_body(number: u64, head_repo: u64, base_repo: u64) -> Value {
    let repo = |id: u64, name: &str| serde_json::json!({"id": id, "full_name": name, "fork": id != 186853002});
    serde_json::json!({
        "id": 279147437,
        "number": number,
        "url": format!("https://api.github.com/repos/Codertocat/Hello-World/pulls/{number}"),
        "state": "open",
        "head": {"ref": "changes", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "repo": repo(head_repo, if head_repo == 186853002 { "Codertocat/Hello-World" } else { "octo-forker/Hello-World" })},
        "base": {"ref": "master", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "repo": repo(base_repo, "Codertocat/Hello-World")}
    })
}

/// A registry for tests: serves `<dir>/v2/<name>/{manifests,blobs}/<ref>` as the
/// distribution API does (what the fake docker writes with FAKE_DOCKER_REGISTRY_DIR).
pub struct DirRegistry(pub PathBuf, pub std::time::Duration);

/// Each request a `DirRegistry` answered, `METHOD path` a line, in `requests.log` at its root.
fn log_request(root: &Path, request: &wiremock::Request) {
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(root.join("requests.log")).unwrap();
    writeln!(log, "{} {}", request.method, request.url.path()).unwrap();
}

/// The OCI referrers API (`GET /v2/<name>/referrers/<digest>`), only where the registry's root
/// holds a file `referrers-api` (distribution 2.8, like GHCR, has none: a 404).
fn referrers(root: &Path, path: &str) -> Option<Value> {
    let (repo, subject) = path.strip_prefix("/v2/")?.split_once("/referrers/")?;
    root.join("referrers-api").is_file().then_some(())?;
    let manifests = std::fs::read_dir(root.join("v2").join(repo).join("manifests")).ok()?;
    let listed: Vec<Value> = manifests
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|bytes| {
            let m: Value = serde_json::from_slice(&bytes).ok()?;
            (m["subject"]["digest"] == subject).then(|| {
                serde_json::json!({"mediaType": m["mediaType"], "digest": sdi::oci::sha256(&bytes), "size": bytes.len(), "artifactType": m["artifactType"]})
            })
        })
        .collect();
    Some(
        serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": listed}),
    )
}

/// The requests a `DirRegistry` answered so far.
pub fn registry_requests(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("requests.log")).unwrap_or_default().lines().map(str::to_string).collect()
}

impl wiremock::Respond for DirRegistry {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        use wiremock::ResponseTemplate;
        let path = request.url.path();
        log_request(&self.0, request);
        if path == "/v2/" {
            return ResponseTemplate::new(200).set_body_json(serde_json::json!({}));
        }
        if let Some(index) = referrers(&self.0, path) {
            return ResponseTemplate::new(200)
                .insert_header("content-type", "application/vnd.oci.image.index.v1+json")
                .set_body_json(index);
        }
        let file = self.0.join(path.trim_start_matches('/'));
        match std::fs::read(&file) {
            Ok(bytes) => {
                let media = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
                    .filter(|_| path.contains("/manifests/"))
                    .unwrap_or_else(|| "application/octet-stream".into());
                ResponseTemplate::new(200)
                    .set_delay(self.1)
                    .insert_header("docker-content-digest", sdi::oci::sha256(&bytes).as_str())
                    .insert_header("content-type", media.as_str())
                    .set_body_bytes(bytes)
            }
            Err(_) => ResponseTemplate::new(404).set_body_json(
                serde_json::json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}),
            ),
        }
    }
}

/// The writing half of a `DirRegistry`: monolithic blob uploads (`POST` then `PUT ?digest=`),
/// manifest `PUT`s by tag (also stored by digest), and blob `HEAD`s.
pub struct DirRegistryWrites(pub PathBuf);

impl wiremock::Respond for DirRegistryWrites {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        use wiremock::ResponseTemplate;
        let path = request.url.path().to_string();
        log_request(&self.0, request);
        let file = |p: &str| self.0.join(p.trim_start_matches('/'));
        let write = |p: &str, bytes: &[u8]| {
            let f = file(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, bytes).unwrap();
        };
        match request.method.as_str() {
            "HEAD" if file(&path).is_file() => ResponseTemplate::new(200),
            "HEAD" => ResponseTemplate::new(404),
            "POST" if path.ends_with("/blobs/uploads/") => {
                ResponseTemplate::new(202).insert_header("location", format!("{path}upload-1").as_str())
            }
            "PUT" if path.contains("/blobs/uploads/") => {
                let digest = request.url.query_pairs().find(|(k, _)| k == "digest").map(|(_, v)| v.to_string());
                let Some(digest) = digest else { return ResponseTemplate::new(400) };
                let blob = format!("{}{digest}", &path[..path.find("uploads/").unwrap()]);
                write(&blob, &request.body);
                ResponseTemplate::new(201).insert_header("location", blob.as_str())
            }
            "PUT" if path.contains("/manifests/") => {
                let digest = sdi::oci::sha256(&request.body);
                write(&path, &request.body);
                write(&format!("{}{digest}", &path[..path.rfind('/').unwrap() + 1]), &request.body);
                ResponseTemplate::new(201)
                    .insert_header("docker-content-digest", digest.as_str())
                    .insert_header("location", path.as_str())
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

/// Starts a `DirRegistry` on its own thread; returns its `host:port` and the directory.
pub fn dir_registry() -> (String, tempfile::TempDir) {
    slow_dir_registry(std::time::Duration::ZERO)
}

/// A `DirRegistry` that takes `delay` to answer each request for content.
pub fn slow_dir_registry(delay: std::time::Duration) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let server = wiremock::MockServer::start().await;
            wiremock::Mock::given(wiremock::matchers::method("GET"))
                .respond_with(DirRegistry(root.clone(), delay))
                .mount(&server)
                .await;
            wiremock::Mock::given(wiremock::matchers::any()).respond_with(DirRegistryWrites(root)).mount(&server).await;
            tx.send(server.address().to_string()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    (rx.recv().unwrap(), dir)
}
