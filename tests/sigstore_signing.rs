//! Keyless signing against the loopback Sigstore (examples/sigstore-test-stack), and the bundle
//! checked by someone else's verifier: sigstore-python (`.ci/run` installs it).

#[path = "common/sigstore.rs"]
mod sigstore_python;

#[path = "../examples/sigstore-test-stack/stack/mod.rs"]
#[allow(dead_code)]
mod stack;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use sdi::context::SigstoreUrls;
use sdi::context::inputs::Instance;
use sdi::sign::services::{Patience, Services};
use sdi::sign::{Request, sign};
use serde_json::Value;

const DIGEST: &str = "sha256:0c4a5e4b8c5bfa1d4d9b5a0cf3c1d3f0e62c9a2e7b1d4f3a5c6e7d8f9a0b1c2d";
const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
use sigstore_python::IDENTITY;

/// sigstore-python's `verify github` of `bundle`, against the stack's trust configuration in `dir`.
fn verify(dir: &Path, bundle: &Value, digest: &str, identity: &str) -> Option<(bool, String)> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let path = dir.join(format!("bundle-{nanos}.json"));
    std::fs::write(&path, bundle.to_string()).unwrap();
    sigstore_python::verify_github(&dir.join("trust-config.json"), &path, identity, &["--sha", SHA], digest)
}

/// A signing of `DIGEST` for `ghcr.io/acme/app`, with the stack's request token.
fn request<'a>(token_url: &'a str, instances: &'a SigstoreUrls) -> Request<'a> {
    Request {
        token_url,
        token_request_token: stack::REQUEST_TOKEN,
        instances,
        server_url: "https://github.com",
        image: "ghcr.io/acme/app",
        digest: DIGEST,
    }
}

/// Signs `DIGEST` on the stack at `url`: public repositories logged and time-stamped, the
/// others (as the token says) time-stamped only, as GitHub's instance does.
fn signed(url: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let services = Services::new(Patience::default()).unwrap();
    let token_url = format!("{url}/token?api-version=2.0");
    let tsa = Some(format!("{url}/api/v1/timestamp"));
    let instances = SigstoreUrls {
        public: Instance { fulcio: url.into(), rekor: Some(url.into()), tsa: tsa.clone() },
        private: Instance { fulcio: url.into(), rekor: None, tsa },
    };
    let signature = rt.block_on(sign(&services, &request(&token_url, &instances))).unwrap();
    assert_eq!(signature.identity, IDENTITY);
    signature.bundle
}

/// tests/verify_timestamped.py: the bundle's time-stamp (rfc3161-client), certificate and DSSE
/// signature (cryptography); `None` without sigstore-python's libraries (outside CI).
fn verify_timestamped(dir: &Path, bundle: &Value, hex: &str) -> Option<(bool, String)> {
    let path = dir.join("timestamped.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_timestamped.py"))
        .arg(&path)
        .arg(dir.join("trust-config.json"))
        .arg(hex)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if text.contains("No module named") {
        assert!(std::env::var_os("CI").is_none(), "CI must have sigstore-python (pip install sigstore==4.5.1)");
        return None;
    }
    Some((out.status.success(), text))
}

#[test]
fn a_signed_digest_verifies_with_sigstore_python_and_a_tampered_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Arc::new(stack::Stack::new(stack::default_claims(), None));
    let url = stack::start(stack.clone());
    std::fs::write(dir.path().join("trust-config.json"), stack::trust_config(&stack, &url).to_string()).unwrap();
    // A second entry first, so that the inclusion proof is not trivial.
    let _ = signed(&url);
    let bundle = signed(&url);
    assert_eq!(bundle["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
    let Some((ok, text)) = verify(dir.path(), &bundle, DIGEST, IDENTITY) else { return };
    assert!(ok, "{text}");
    eprintln!("sigstore-python: {}", text.trim());

    let wrong_digest = DIGEST.replace("0c4a", "1c4a");
    let (ok, text) = verify(dir.path(), &bundle, &wrong_digest, IDENTITY).unwrap();
    assert!(!ok && text.contains("no subject for digest"), "{text}");
    let other = "https://github.com/acme/app/.github/workflows/other.yml@refs/heads/main";
    let (ok, text) = verify(dir.path(), &bundle, DIGEST, other).unwrap();
    assert!(!ok, "{text}");
    let mut tampered = bundle.clone();
    let payload = tampered["dsseEnvelope"]["payload"].as_str().unwrap().replace('A', "B");
    tampered["dsseEnvelope"]["payload"] = payload.into();
    let (ok, text) = verify(dir.path(), &tampered, DIGEST, IDENTITY).unwrap();
    assert!(!ok, "{text}");
    let requests = stack.requests.lock().unwrap().clone();
    assert_eq!(requests.iter().filter(|r| r.starts_with("token GET /token")).count(), 2, "{requests:?}");
    // Logged and time-stamped: the time-stamp, too, is checked by someone else's code.
    let (ok, text) = verify_timestamped(dir.path(), &bundle, &DIGEST[7..]).unwrap();
    assert!(ok, "{text}");
}

/// A repository the token calls private is signed without a public log: only time-stamped
/// (GitHub's instance, as actions/attest does); nothing reaches Rekor.
#[test]
fn a_private_repository_is_time_stamped_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut claims = stack::default_claims();
    claims["repository_visibility"] = "private".into();
    let stack = Arc::new(stack::Stack::new(claims, None));
    let url = stack::start(stack.clone());
    std::fs::write(dir.path().join("trust-config.json"), stack::trust_config(&stack, &url).to_string()).unwrap();
    let bundle = signed(&url);
    assert_eq!(bundle["verificationMaterial"]["tlogEntries"], serde_json::json!([]));
    let requests = stack.requests.lock().unwrap().clone();
    assert_eq!(requests, ["token GET /token", "fulcio POST /api/v2/signingCert", "tsa POST /api/v1/timestamp"]);
    let Some((ok, text)) = verify_timestamped(dir.path(), &bundle, &DIGEST[7..]) else { return };
    assert!(ok, "{text}");
    eprintln!("tests/verify_timestamped.py: {}", text.trim());
    let (ok, text) = verify_timestamped(dir.path(), &bundle, &DIGEST[7..].replace("0c4a", "1c4a")).unwrap();
    assert!(!ok && text.contains("no subject"), "{text}");
    let mut tampered = bundle.clone();
    tampered["dsseEnvelope"]["signatures"][0]["sig"] =
        bundle["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap().replacen('M', "N", 1).into();
    let (ok, text) = verify_timestamped(dir.path(), &tampered, &DIGEST[7..]).unwrap();
    assert!(!ok, "{text}");
}

/// A transient answer (5xx, 429) is asked again, as the GitHub API calls are; a refusal is not.
#[test]
fn transient_answers_are_retried_and_refusals_are_not() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).up_to_n_times(2).mount(&server).await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(429)).up_to_n_times(1).mount(&server).await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"uuid": {"logIndex": 1}})))
            .mount(&server)
            .await;
        let quick = Patience {
            budget: std::time::Duration::from_secs(5),
            backoff: std::time::Duration::from_millis(10),
            request_timeout: std::time::Duration::from_secs(2),
        };
        let services = Services::new(quick.clone()).unwrap();
        let entry = services.log_entry(&server.uri(), &serde_json::json!({})).await.unwrap();
        assert_eq!(entry["logIndex"], 1);
        assert_eq!(server.received_requests().await.unwrap().len(), 4);

        let refusing = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_string("bad entry"))
            .mount(&refusing)
            .await;
        let err = services.log_entry(&refusing.uri(), &serde_json::json!({})).await.unwrap_err();
        assert!(err.starts_with("400 bad entry"), "{err}");
        assert_eq!(refusing.received_requests().await.unwrap().len(), 1);
    });
}

/// A token endpoint that echoes the request token in its refusal: the error names the step,
/// never the token (errors reach the summary, which the runner does not mask).
#[test]
fn a_refusal_that_echoes_the_request_token_is_reported_without_it() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let server = MockServer::start().await;
        let echo = format!("bad request token {}", stack::REQUEST_TOKEN);
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(403).set_body_string(echo)).mount(&server).await;
        let instance = Instance { fulcio: server.uri(), rekor: Some(server.uri()), tsa: None };
        let instances = SigstoreUrls { public: instance.clone(), private: instance };
        let token_url = format!("{}/token", server.uri());
        let err =
            sign(&Services::new(Patience::default()).unwrap(), &request(&token_url, &instances)).await.unwrap_err();
        assert!(err.to_string().starts_with("signing failed at the OIDC token"), "{err}");
        assert!(!err.to_string().contains(stack::REQUEST_TOKEN) && err.to_string().contains("***"), "{err}");
    });
}
