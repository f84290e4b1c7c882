//! The action signs a trusted push (keyless, against the loopback Sigstore of
//! examples/sigstore-test-stack): the bundle lands beside the image (through the tag schema, the
//! test registry having no referrers API) and with GitHub's attestations API, and
//! sigstore-python verifies it. Untrusted runs never ask for a token; secrets stay unprinted.

mod common;

#[path = "../examples/sigstore-test-stack/stack/mod.rs"]
#[allow(dead_code)]
mod stack;

use std::path::Path;
use std::sync::Arc;

use common::run::*;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NPM: &str = "npm_Xk29fJq0LmZ8rTb3VwY6hN1cPdE7sGa4uQiK";

struct Signing {
    stack: Arc<stack::Stack>,
    url: String,
}

fn signing() -> Signing {
    let stack = Arc::new(stack::Stack::new(stack::default_claims(), None));
    let url = stack::start(stack.clone());
    Signing { stack, url }
}

impl Signing {
    fn requests(&self) -> Vec<String> {
        self.stack.requests.lock().unwrap().clone()
    }
}

/// A GitHub API that answers the attestations API with `status`, on its own runtime.
fn attestations_api(status: u16) -> (String, std::sync::mpsc::Receiver<Vec<Value>>, std::sync::mpsc::Sender<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (bodies_tx, bodies_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let server = MockServer::start().await;
            let answer = match status {
                201 => ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": 1})),
                s => ResponseTemplate::new(s)
                    .set_body_json(serde_json::json!({"message": "Resource not accessible by integration"})),
            };
            Mock::given(method("POST"))
                .and(path("/repos/Codertocat/Hello-World/attestations"))
                .respond_with(answer)
                .mount(&server)
                .await;
            tx.send(server.uri()).unwrap();
            let _ = tokio::task::spawn_blocking(move || done_rx.recv()).await;
            let bodies = server.received_requests().await.unwrap_or_default();
            let bodies = bodies.iter().map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null)).collect();
            bodies_tx.send(bodies).unwrap();
        });
    });
    (rx.recv().unwrap(), bodies_rx, done_tx)
}

fn signed_push(registry: &str, dir: &Path, s: &Signing, api: &str) -> Run {
    let mut run = secret_push(registry, dir).with("NPM_TOKEN", NPM).with("GITHUB_API_URL", api);
    for (k, v) in stack::env(&s.url) {
        run = run.with(&k, &v);
    }
    run
}

fn manifest(dir: &Path, reference: &str) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join("v2/team/app/manifests").join(reference)).ok()?).ok()
}

#[test]
fn a_trusted_push_is_signed_stored_beside_the_image_and_verified_by_sigstore_python() {
    let (registry, dir) = common::dir_registry();
    let s = signing();
    let (api, bodies, done) = attestations_api(201);
    let run = signed_push(&registry, dir.path(), &s, &api);
    let out = run.run();
    out.assert_success();
    let outputs = run.outputs();
    let digest = outputs["digest"].clone();
    let attestation = outputs.get("attestation-digest").expect("an attestation digest").clone();
    let bundle_path = outputs.get("attestation-bundle").expect("a bundle path").clone();
    assert!(bundle_path.starts_with(run.path("runner_temp").to_str().unwrap()), "{bundle_path}");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&bundle_path).unwrap()).unwrap();

    // Beside the image: the artifact refers to it, and the tag schema lists it.
    let artifact = manifest(dir.path(), &attestation).expect("the attestation's manifest");
    assert_eq!(artifact["subject"]["digest"], digest.as_str());
    assert_eq!(artifact["artifactType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
    let referrers = manifest(dir.path(), &digest.replacen(':', "-", 1)).expect("the referrers tag");
    assert!(referrers["manifests"].as_array().unwrap().iter().any(|m| m["digest"] == attestation.as_str()));
    let layer = artifact["layers"][0]["digest"].as_str().unwrap();
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("v2/team/app/blobs").join(layer)).unwrap()).unwrap();
    assert_eq!(stored, bundle);

    // GitHub's copy.
    done.send(()).unwrap();
    let posted = bodies.recv().unwrap();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["bundle"], bundle);

    // The token went to Fulcio only: not in the output, the summary, the outputs or the bundle.
    let token = s.stack.issued.lock().unwrap()[0].clone();
    let summary = std::fs::read_to_string(run.path("step_summary")).unwrap();
    let github_output = std::fs::read_to_string(run.path("github_output")).unwrap();
    for (what, text) in
        [("stdout", &out.stdout), ("summary", &summary), ("outputs", &github_output), ("bundle", &bundle.to_string())]
    {
        assert!(!text.contains(&token), "the token is in the {what}");
        assert!(!text.contains(&token[token.len() - 40..]), "the token's signature is in the {what}");
    }
    let request_token: Vec<&str> = out.stdout.lines().filter(|l| l.contains(stack::REQUEST_TOKEN)).collect();
    assert_eq!(request_token, [format!("::add-mask::{}", stack::REQUEST_TOKEN)]);
    assert!(run.calls().iter().all(|c| !c.to_string().contains(stack::REQUEST_TOKEN)));
    assert!(summary.contains("| Signed |"), "{summary}");
    assert_eq!(
        s.requests(),
        [
            "token GET /token",
            "fulcio POST /api/v2/signingCert",
            "rekor POST /api/v1/log/entries",
            "tsa POST /api/v1/timestamp"
        ]
    );

    let trust = run.path("trust-config.json");
    std::fs::write(&trust, stack::trust_config(&s.stack, &s.url).to_string()).unwrap();
    let bundle_file = Path::new(&bundle_path);
    let Some((ok, said)) =
        common::sigstore::verify_github(&trust, bundle_file, common::sigstore::IDENTITY, &[], &digest)
    else {
        return;
    };
    assert!(ok, "{said}");
}

#[test]
fn a_fork_pull_request_never_asks_for_a_token_and_writes_no_attestation() {
    let (registry, dir) = common::dir_registry();
    let s = signing();
    let mut fork = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("INPUT_IMAGE", &format!("{registry}/team/app"))
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("INPUT_SIGN", "true")
        .with("FAKE_DOCKER_REGISTRY_DIR", dir.path().to_str().unwrap());
    for (k, v) in stack::env(&s.url) {
        fork = fork.with(&k, &v);
    }
    fork.run().assert_success();
    assert_eq!(s.requests(), Vec::<String>::new(), "no request to the token endpoint, Fulcio or Rekor");
    assert!(!fork.outputs().contains_key("attestation-digest"));
    let tags: Vec<String> = std::fs::read_dir(dir.path().join("v2/team/app/manifests"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(tags.iter().all(|t| !t.starts_with("sha256-")), "{tags:?}");
}

#[test]
fn without_the_id_token_permission_auto_says_so_and_true_stops_before_the_build() {
    let (registry, dir) = common::dir_registry();
    let auto = secret_push(&registry, dir.path()).with("NPM_TOKEN", NPM);
    let done = auto.run();
    done.assert_success();
    let notice: Vec<&str> = done.stdout.lines().filter(|l| l.starts_with("::notice::Not signed")).collect();
    assert_eq!(notice.len(), 1, "{}", done.stdout);
    assert!(notice[0].contains("id-token: write"), "{}", notice[0]);
    assert!(!auto.outputs().contains_key("attestation-digest"));

    let required = secret_push(&registry, dir.path()).with("NPM_TOKEN", NPM).with("INPUT_SIGN", "true");
    let done = required.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(
        done.stdout.contains("::error title=Invalid sign::") || done.stderr.contains("::error title=Invalid sign::"),
        "{}",
        done.stdout
    );
    assert!(required.calls().is_empty(), "nothing run");
}

#[test]
fn a_refusing_certificate_authority_fails_the_run_naming_the_step() {
    let (registry, dir) = common::dir_registry();
    let s = signing();
    let (api, _bodies, _done) = attestations_api(201);
    let run =
        signed_push(&registry, dir.path(), &s, &api).with("INPUT_SIGSTORE-FULCIO-URL", &format!("{}/refuses", s.url));
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let errors: Vec<&str> =
        done.stdout.lines().chain(done.stderr.lines()).filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("signing failed at the signing certificate (Fulcio)"), "{}", errors[0]);
    assert!(common::run::tagged(dir.path(), "latest"), "the push and its tags stand");
    let token = s.stack.issued.lock().unwrap()[0].clone();
    assert!(!done.stdout.contains(&token) && !done.stderr.contains(&token));
}

#[test]
fn an_attestations_api_without_the_permission_is_a_warning_naming_it() {
    let (registry, dir) = common::dir_registry();
    let s = signing();
    let (api, _bodies, _done) = attestations_api(403);
    let run = signed_push(&registry, dir.path(), &s, &api);
    let done = run.run();
    done.assert_success();
    let warning = done
        .stdout
        .lines()
        .find(|l| l.starts_with("::warning::GitHub's attestations API refused"))
        .unwrap_or_else(|| panic!("{}", done.stdout));
    assert!(warning.contains("attestations: write"), "{warning}");
    assert!(run.outputs().contains_key("attestation-digest"), "the registry's copy stands");
}

#[test]
fn a_registry_with_the_referrers_api_lists_the_attestation_without_a_tag() {
    let (registry, dir) = common::dir_registry();
    std::fs::write(dir.path().join("referrers-api"), "").unwrap();
    let s = signing();
    let (api, _bodies, _done) = attestations_api(201);
    let run = signed_push(&registry, dir.path(), &s, &api);
    run.run().assert_success();
    let outputs = run.outputs();
    let artifact = manifest(dir.path(), &outputs["attestation-digest"]).expect("the attestation");
    assert_eq!(artifact["subject"]["digest"], outputs["digest"].as_str());
    assert!(manifest(dir.path(), &outputs["digest"].replacen(':', "-", 1)).is_none(), "no tag-schema index needed");
    let asked = common::registry_requests(dir.path());
    assert!(asked.iter().any(|r| r.starts_with("GET /v2/team/app/referrers/")), "{asked:?}");
}

/// The instance from a signing configuration, as sigstore-python reads it (here the stack's own
/// ClientTrustConfig); a configuration beside the URLs, or an http URL off loopback, is bad input.
#[test]
fn the_instance_comes_from_a_signing_config_file_or_urls_not_both() {
    let (registry, dir) = common::dir_registry();
    let s = signing();
    let (api, _bodies, _done) = attestations_api(201);
    let config = dir.path().join("trust-config.json");
    std::fs::write(&config, stack::trust_config(&s.stack, &s.url).to_string()).unwrap();
    let run = signed_push(&registry, dir.path(), &s, &api)
        .with("INPUT_SIGSTORE-FULCIO-URL", "")
        .with("INPUT_SIGSTORE-REKOR-URL", "")
        .with("INPUT_SIGSTORE-TSA-URL", "")
        .with("INPUT_SIGSTORE-SIGNING-CONFIG", config.to_str().unwrap());
    run.run().assert_success();
    assert!(run.outputs().contains_key("attestation-digest"));
    assert_eq!(s.requests().len(), 4, "{:?}", s.requests());

    let both =
        signed_push(&registry, dir.path(), &s, &api).with("INPUT_SIGSTORE-SIGNING-CONFIG", config.to_str().unwrap());
    let done = both.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(done.stderr.contains("::error title=Invalid sigstore-signing-config::"), "{}", done.stderr);
    let plain = signed_push(&registry, dir.path(), &s, &api).with("INPUT_SIGSTORE-REKOR-URL", "http://rekor.example");
    let done = plain.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(done.stderr.contains("::error title=Invalid sigstore-rekor-url::"), "{}", done.stderr);
    assert!(both.calls().is_empty() && plain.calls().is_empty(), "nothing run");
}

/// A runner older than v2.329.0 passes its temp folder's host path, which the container does
/// not see: the run still signs and stores the attestation, and says why there is no file.
#[test]
fn an_unmounted_runner_temp_keeps_the_attestation_in_the_registry_only() {
    let (registry, dir) = common::dir_registry();
    let s = signing();
    let (api, _bodies, _done) = attestations_api(201);
    let run = signed_push(&registry, dir.path(), &s, &api).with("RUNNER_TEMP", "/home/runner/work/_temp");
    let done = run.run();
    done.assert_success();
    let outputs = run.outputs();
    assert!(manifest(dir.path(), &outputs["attestation-digest"]).is_some());
    assert!(!outputs.contains_key("attestation-bundle"));
    assert!(
        done.stdout.contains("::notice::The Sigstore bundle is in the registry beside the image"),
        "{}",
        done.stdout
    );
}
