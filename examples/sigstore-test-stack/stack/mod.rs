//! A Sigstore of our own on loopback, for tests and for checking by hand: GitHub's OIDC token
//! endpoint (as the runner's `ACTIONS_ID_TOKEN_REQUEST_URL`), a Fulcio CA (`ca`) that writes
//! GitHub's OID extensions and an embedded SCT into its certificates, a Rekor log (`rekor`) with
//! inclusion proofs, signed checkpoints and signed entry timestamps, and an RFC 3161 time-stamp
//! authority (`tsa`). Every key is made at start and held in memory; `trust_config` is what
//! sigstore-python's `--trust-config` reads to trust them.

mod ca;
mod rekor;
mod tsa;

use std::sync::{Arc, Mutex};

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use sdi::sign::der;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::{Request, Respond, ResponseTemplate};

use ca::{CA_NAME, TSA_NAME, certificate, extension, issued_tbs, name};

pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const REQUEST_TOKEN: &str = "sdi-test-stack-request-token";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A P-256 key of the stack's, and its public half as SubjectPublicKeyInfo.
pub struct Key {
    pair: EcdsaKeyPair,
    pub spki: Vec<u8>,
}

impl Key {
    fn new(alg: &'static signature::EcdsaSigningAlgorithm) -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let spki = der::p256_spki(pair.public_key().as_ref());
        Key { pair, spki }
    }
    fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.pair.sign(&SystemRandom::new(), data).unwrap().as_ref().to_vec()
    }
    /// The key's id in a trusted root: SHA-256 of its SubjectPublicKeyInfo.
    pub fn id(&self) -> [u8; 32] {
        sha256(&self.spki)
    }
}

/// The default claims: a push to `acme/app`'s default branch.
pub fn default_claims() -> Value {
    json!({
        "sub": "repo:acme/app:ref:refs/heads/main",
        "repository": "acme/app", "repository_owner": "acme", "repository_id": "4242", "repository_owner_id": "7",
        "repository_visibility": "public", "actor": "octocat", "actor_id": "1",
        "workflow": "release", "workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
        "workflow_sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
        "job_workflow_sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "ref": "refs/heads/main", "ref_type": "branch", "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "event_name": "push", "run_id": "4242", "run_number": "1", "run_attempt": "1", "runner_environment": "github-hosted"
    })
}

/// What the stack holds: its keys, certificate authority, log and request log.
pub struct Stack {
    pub token_key: Key,
    pub ca_key: Key,
    pub ca_cert: Vec<u8>,
    pub ct_key: Key,
    pub rekor_key: Key,
    /// The time-stamp authority's key and certificate (issued by the CA, EKU timeStamping).
    pub tsa_key: Key,
    pub tsa_cert: Vec<u8>,
    pub claims: Value,
    pub leaves: Mutex<Vec<[u8; 32]>>,
    pub requests: Mutex<Vec<String>>,
    /// Every token issued, for tests that look for it where it must not be.
    pub issued: Mutex<Vec<String>>,
    pub log_file: Option<std::path::PathBuf>,
}

impl Stack {
    pub fn new(claims: Value, log_file: Option<std::path::PathBuf>) -> Stack {
        let ca_key = Key::new(&signature::ECDSA_P256_SHA256_ASN1_SIGNING);
        let exts = [
            extension("2.5.29.15", true, &der::tlv(0x03, &[0x01, 0x06])),
            extension("2.5.29.19", true, &der::seq(&[der::boolean(true)])),
            extension("2.5.29.14", false, &der::octets(&ca_key.id()[..20])),
        ];
        let start = chrono::Utc::now() - chrono::Duration::days(1);
        let ca_cert = certificate(&issued_tbs(&name(CA_NAME), &ca_key.spki, 3650, &exts, start), &ca_key);
        let tsa_key = Key::new(&signature::ECDSA_P256_SHA256_ASN1_SIGNING);
        let tsa_exts = [
            extension("2.5.29.15", true, &der::tlv(0x03, &[0x07, 0x80])),
            extension("2.5.29.37", true, &der::seq(&[der::oid("1.3.6.1.5.5.7.3.8")])),
            extension("2.5.29.14", false, &der::octets(&tsa_key.id()[..20])),
            extension("2.5.29.35", false, &der::seq(&[der::tlv(0x80, &ca_key.id()[..20])])),
        ];
        let tsa_cert = certificate(&issued_tbs(&name(TSA_NAME), &tsa_key.spki, 3650, &tsa_exts, start), &ca_key);
        Stack {
            token_key: Key::new(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            ca_key,
            ca_cert,
            ct_key: Key::new(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
            rekor_key: Key::new(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
            tsa_key,
            tsa_cert,
            claims,
            leaves: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
            log_file,
        }
    }

    fn log(&self, service: &str, request: &Request) {
        let line = format!("{service} {} {}", request.method, request.url.path());
        if let Some(path) = &self.log_file {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            writeln!(f, "{line}").unwrap();
        }
        self.requests.lock().unwrap().push(line);
    }

    /// An ES256 JWT with the stack's claims, for `audience`.
    pub fn token(&self, audience: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = self.claims.clone();
        let extra = json!({"iss": ISSUER, "aud": audience, "iat": now, "nbf": now, "exp": now + 300, "jti": hex(&sha256(&now.to_be_bytes())[..8])});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let header = b64url(json!({"alg": "ES256", "typ": "JWT", "kid": "sdi-test"}).to_string().as_bytes());
        let signed = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
        let token = format!("{signed}.{}", b64url(&self.token_key.sign(signed.as_bytes())));
        self.issued.lock().unwrap().push(token.clone());
        token
    }

    /// The claims of a token this stack issued, if its signature, issuer, audience and time hold.
    fn verify_token(&self, token: &str) -> Result<Value, String> {
        let (signed, sig) = token.rsplit_once('.').ok_or("not a JWT")?;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).map_err(|_| "not a JWT")?;
        let public = &self.token_key.spki[self.token_key.spki.len() - 65..];
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public)
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| "the token's signature does not verify")?;
        let claims = sdi::sign::provenance::claims(token).ok_or("not a JWT")?;
        let now = chrono::Utc::now().timestamp();
        if claims["iss"] != ISSUER || claims["aud"] != "sigstore" || claims["exp"].as_i64().unwrap_or(0) < now {
            return Err("wrong issuer or audience, or expired".into());
        }
        Ok(claims)
    }

    /// Fulcio's `signingCert`: a certificate for the requester's key, naming the workflow.
    fn signing_cert(&self, body: &Value) -> Result<Value, String> {
        let token = body.pointer("/credentials/oidcIdentityToken").and_then(Value::as_str).ok_or("no token")?;
        let claims = self.verify_token(token)?;
        let pem = body.pointer("/publicKeyRequest/publicKey/content").and_then(Value::as_str).ok_or("no public key")?;
        let spki = der::unpem("PUBLIC KEY", pem).ok_or("a public key that is not PEM")?;
        let proof = body.pointer("/publicKeyRequest/proofOfPossession").and_then(Value::as_str).unwrap_or_default();
        let proof = base64::engine::general_purpose::STANDARD.decode(proof).map_err(|_| "no proof of possession")?;
        let sub = claims["sub"].as_str().unwrap_or_default();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &spki[spki.len().saturating_sub(65)..])
            .verify(sub.as_bytes(), &proof)
            .map_err(|_| "the proof of possession does not verify")?;
        let leaf = self.leaf(&claims, &spki);
        Ok(json!({"signedCertificateEmbeddedSct": {"chain": {"certificates": [
            der::pem("CERTIFICATE", &leaf), der::pem("CERTIFICATE", &self.ca_cert)
        ]}}}))
    }
}

/// The stack's services as one wiremock responder: `/token`, Fulcio's and Rekor's paths.
pub struct Services(pub Arc<Stack>);

impl Respond for Services {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let body = || serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
        let answer = |r: Result<Value, String>, ok: u16| match r {
            Ok(v) => ResponseTemplate::new(ok).set_body_json(v),
            Err(e) => ResponseTemplate::new(400).set_body_json(json!({"code": 400, "message": e})),
        };
        match path {
            "/token" => {
                self.0.log("token", request);
                let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                if auth != format!("Bearer {REQUEST_TOKEN}") {
                    return ResponseTemplate::new(401).set_body_json(json!({"message": "bad request token"}));
                }
                let audience = request.url.query_pairs().find(|(k, _)| k == "audience").map(|(_, v)| v.to_string());
                ResponseTemplate::new(200).set_body_json(json!({"value": self.0.token(&audience.unwrap_or_default())}))
            }
            "/api/v2/signingCert" => {
                self.0.log("fulcio", request);
                answer(self.0.signing_cert(&body()), 201)
            }
            "/api/v1/log/entries" => {
                self.0.log("rekor", request);
                answer(self.0.log_entry(&body()), 201)
            }
            "/api/v1/timestamp" => {
                self.0.log("tsa", request);
                match self.0.timestamp(&request.body) {
                    Ok(der) => ResponseTemplate::new(200)
                        .insert_header("content-type", "application/timestamp-reply")
                        .set_body_bytes(der),
                    Err(e) => ResponseTemplate::new(400).set_body_string(e),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

/// The client trust configuration for sigstore-python (`--trust-config`): this stack's CA, CT
/// log and Rekor, and where they listen.
pub fn trust_config(stack: &Stack, url: &str) -> Value {
    let start = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let key = |k: &Key| json!({"rawBytes": b64(&k.spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": start}});
    let service =
        |u: String| json!([{"url": u, "majorApiVersion": 1, "validFor": {"start": start}, "operator": "sdi-test"}]);
    json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": url, "hashAlgorithm": "SHA2_256", "publicKey": key(&stack.rekor_key), "logId": {"keyId": b64(&stack.rekor_key.id())}}],
            "certificateAuthorities": [{
                "subject": {"organization": "sdi-test", "commonName": "sdi-test-fulcio"}, "uri": url,
                "certChain": {"certificates": [{"rawBytes": b64(&stack.ca_cert)}]}, "validFor": {"start": start}
            }],
            "ctlogs": [{"baseUrl": url, "hashAlgorithm": "SHA2_256", "publicKey": key(&stack.ct_key), "logId": {"keyId": b64(&stack.ct_key.id())}}],
            "timestampAuthorities": [{
                "subject": {"organization": "sdi-test", "commonName": "sdi-test-tsa"}, "uri": format!("{url}/api/v1/timestamp"),
                "certChain": {"certificates": [{"rawBytes": b64(&stack.tsa_cert)}, {"rawBytes": b64(&stack.ca_cert)}]},
                "validFor": {"start": start}
            }]
        },
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": service(url.to_string()), "oidcUrls": service(url.to_string()),
            "rekorTlogUrls": service(url.to_string()), "tsaUrls": service(format!("{url}/api/v1/timestamp")),
            "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"}
        }
    })
}

/// Starts the stack on loopback (in its own thread and runtime); its base URL.
pub fn start(stack: Arc<Stack>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let server = wiremock::MockServer::start().await;
            wiremock::Mock::given(wiremock::matchers::any()).respond_with(Services(stack)).mount(&server).await;
            tx.send(server.uri()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// What points a run at the stack: the runner's token variables and the action's inputs.
pub fn env(url: &str) -> Vec<(String, String)> {
    [
        ("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{url}/token?api-version=2.0")),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_string()),
        ("INPUT_SIGSTORE-FULCIO-URL", url.to_string()),
        ("INPUT_SIGSTORE-REKOR-URL", url.to_string()),
        ("INPUT_SIGSTORE-TSA-URL", format!("{url}/api/v1/timestamp")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
