//! A Sigstore of our own on loopback, for tests and for checking by hand: GitHub's OIDC token
//! endpoint (as the runner's `ACTIONS_ID_TOKEN_REQUEST_URL`), a Fulcio CA that writes GitHub's
//! OID extensions and an embedded SCT into its certificates, a Rekor log with inclusion
//! proofs, signed checkpoints and signed entry timestamps, and an RFC 3161 time-stamp authority. Every key is made at start and held
//! in memory; `trust_config` is what sigstore-python's `--trust-config` reads to trust them.

use std::sync::{Arc, Mutex};

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use sdi::sign::der;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::{Request, Respond, ResponseTemplate};

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

const CA_NAME: &[(&str, &str)] = &[("2.5.4.10", "sdi-test"), ("2.5.4.3", "sdi-test-fulcio")];
const TSA_NAME: &[(&str, &str)] = &[("2.5.4.10", "sdi-test"), ("2.5.4.3", "sdi-test-tsa")];

fn name(parts: &[(&str, &str)]) -> Vec<u8> {
    der::seq(&parts.iter().map(|(o, v)| der::set(&[der::seq(&[der::oid(o), der::utf8(v)])])).collect::<Vec<_>>())
}

fn extension(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![der::oid(oid)];
    if critical {
        parts.push(der::boolean(true));
    }
    parts.push(der::octets(value));
    der::seq(&parts)
}

fn serial() -> Vec<u8> {
    let mut s = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut s).unwrap();
    s[0] &= 0x7f;
    der::uint(&s)
}

/// A certificate: the TBS signed by `issuer`.
fn certificate(tbs: &[u8], issuer: &Key) -> Vec<u8> {
    let alg = der::seq(&[der::oid(der::ECDSA_SHA256)]);
    der::seq(&[tbs.to_vec(), alg, der::bits(&issuer.sign(tbs))])
}

/// A TBS the CA issues for `subject`, valid `days` from `not_before`.
fn issued_tbs(
    subject: &[u8],
    spki: &[u8],
    days: i64,
    extensions: &[Vec<u8>],
    not_before: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    der::seq(&[
        der::explicit(0, &der::int(2)),
        serial(),
        der::seq(&[der::oid(der::ECDSA_SHA256)]),
        name(CA_NAME),
        der::seq(&[der::utc_time(not_before), der::utc_time(not_before + chrono::Duration::days(days))]),
        subject.to_vec(),
        spki.to_vec(),
        der::explicit(3, &der::seq(extensions)),
    ])
}

/// The serial number's TLV of a certificate.
fn serial_of(cert: &[u8]) -> Vec<u8> {
    let (_, body, _) = der::read(cert).unwrap();
    let (_, tbs, _) = der::read(body).unwrap();
    der::items(tbs)[1].to_vec()
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

    /// The leaf: Fulcio's extensions from the claims, then the SCT over the rest.
    fn leaf(&self, c: &Value, spki: &[u8]) -> Vec<u8> {
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        let server = "https://github.com";
        let identity = format!("{server}/{}", s("job_workflow_ref"));
        let raw = |n: u32, v: String| extension(&format!("1.3.6.1.4.1.57264.1.{n}"), false, v.as_bytes());
        let utf8 = |n: u32, v: String| extension(&format!("1.3.6.1.4.1.57264.1.{n}"), false, &der::utf8(&v));
        let mut exts = vec![
            extension("2.5.29.15", true, &der::tlv(0x03, &[0x07, 0x80])),
            extension("2.5.29.37", false, &der::seq(&[der::oid("1.3.6.1.5.5.7.3.3")])),
            extension("2.5.29.14", false, &der::octets(&sha256(spki)[..20])),
            extension("2.5.29.35", false, &der::seq(&[der::tlv(0x80, &self.ca_key.id()[..20])])),
            extension("2.5.29.17", true, &der::seq(&[der::tlv(0x86, identity.as_bytes())])),
            raw(1, ISSUER.into()),
            raw(2, s("event_name")),
            raw(3, s("sha")),
            raw(4, s("workflow")),
            raw(5, s("repository")),
            raw(6, s("ref")),
            utf8(8, ISSUER.into()),
            utf8(9, identity.clone()),
            utf8(10, s("job_workflow_sha")),
            utf8(11, s("runner_environment")),
            utf8(12, format!("{server}/{}", s("repository"))),
            utf8(13, s("sha")),
            utf8(14, s("ref")),
            utf8(15, s("repository_id")),
            utf8(16, format!("{server}/{}", s("repository_owner"))),
            utf8(17, s("repository_owner_id")),
            utf8(18, format!("{server}/{}", s("workflow_ref"))),
            utf8(19, s("workflow_sha")),
            utf8(20, s("event_name")),
            utf8(
                21,
                format!("{server}/{}/actions/runs/{}/attempts/{}", s("repository"), s("run_id"), s("run_attempt")),
            ),
            utf8(22, s("repository_visibility")),
        ];
        let not_before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let precert = leaf_tbs(spki, &exts, not_before, None);
        let sct = self.sct(&precert);
        exts.push(extension("1.3.6.1.4.1.11129.2.4.2", false, &der::octets(&sct)));
        certificate(&leaf_tbs(spki, &exts, not_before, Some(&precert)), &self.ca_key)
    }

    /// One SCT for `precert` (the TBS without the SCT list), as a TLS `SignedCertificateTimestampList`.
    fn sct(&self, precert: &[u8]) -> Vec<u8> {
        let timestamp = chrono::Utc::now().timestamp_millis() as u64;
        let mut signed = vec![0u8, 0u8];
        signed.extend(timestamp.to_be_bytes());
        signed.extend([0u8, 1u8]);
        signed.extend(sha256(&self.ca_key.spki));
        signed.extend(&(precert.len() as u32).to_be_bytes()[1..]);
        signed.extend(precert);
        signed.extend([0u8, 0u8]);
        let sig = self.ct_key.sign(&signed);
        let mut sct = vec![0u8];
        sct.extend(self.ct_key.id());
        sct.extend(timestamp.to_be_bytes());
        sct.extend([0u8, 0u8, 4u8, 3u8]);
        sct.extend((sig.len() as u16).to_be_bytes());
        sct.extend(sig);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(sct);
        list
    }
}

/// A leaf's TBS; with `serial_of`, the serial of that earlier TBS (the precertificate's) is kept.
fn leaf_tbs(
    spki: &[u8],
    exts: &[Vec<u8>],
    not_before: chrono::DateTime<chrono::Utc>,
    serial_of: Option<&[u8]>,
) -> Vec<u8> {
    let serial = match serial_of {
        // The serial is the second element: after the [0] version (5 bytes) inside the SEQUENCE header.
        Some(tbs) => {
            let body = &tbs[header_len(tbs)..];
            let version_len = 5;
            let s = &body[version_len..];
            s[..2 + s[1] as usize].to_vec()
        }
        None => serial(),
    };
    der::seq(&[
        der::explicit(0, &der::int(2)),
        serial,
        der::seq(&[der::oid(der::ECDSA_SHA256)]),
        name(CA_NAME),
        der::seq(&[der::utc_time(not_before), der::utc_time(not_before + chrono::Duration::minutes(10))]),
        der::seq(&[]),
        spki.to_vec(),
        der::explicit(3, &der::seq(exts)),
    ])
}

fn header_len(der: &[u8]) -> usize {
    if der[1] < 0x80 { 2 } else { 2 + (der[1] & 0x7f) as usize }
}

/// Rekor: the log's leaves, its tree, and what it signs.
impl Stack {
    fn log_entry(&self, request: &Value) -> Result<Value, String> {
        let content = request.pointer("/spec/proposedContent").ok_or("not a dsse entry")?;
        let envelope_text = content["envelope"].as_str().ok_or("no envelope")?;
        let envelope: Value = serde_json::from_str(envelope_text).map_err(|_| "an envelope that is not JSON")?;
        let verifier = content["verifiers"][0].as_str().ok_or("no verifier")?;
        let cert_pem =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(verifier).map_err(|_| "bad verifier")?)
                .map_err(|_| "bad verifier")?;
        let cert = der::unpem("CERTIFICATE", &cert_pem).ok_or("a verifier that is not a certificate")?;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap_or_default())
            .map_err(|_| "a payload that is not base64")?;
        let pae = sdi::sign::bundle::pae(envelope["payloadType"].as_str().unwrap_or_default(), &payload);
        let sig_b64 = envelope["signatures"][0]["sig"].as_str().ok_or("no signature")?;
        let sig = base64::engine::general_purpose::STANDARD.decode(sig_b64).map_err(|_| "bad signature")?;
        let point = p256_point_in(&cert).ok_or("no P-256 key in the certificate")?;
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
            .verify(&pae, &sig)
            .map_err(|_| "the envelope's signature does not verify")?;
        let body = json!({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex(&sha256(envelope_text.as_bytes()))},
                "payloadHash": {"algorithm": "sha256", "value": hex(&sha256(&payload))},
                "signatures": [{"signature": sig_b64, "verifier": verifier}]
            }
        })
        .to_string();
        let leaf = sha256(&[&[0u8][..], body.as_bytes()].concat());
        let (index, leaves) = {
            let mut leaves = self.leaves.lock().unwrap();
            leaves.push(leaf);
            (leaves.len() - 1, leaves.clone())
        };
        let root = merkle_root(&leaves);
        let proof: Vec<String> = inclusion_path(index, &leaves).iter().map(|h| hex(h)).collect();
        let log_id = hex(&self.rekor_key.id());
        let time = chrono::Utc::now().timestamp();
        let body_b64 = b64(body.as_bytes());
        let set = json!({"body": body_b64, "integratedTime": time, "logID": log_id, "logIndex": index}).to_string();
        let note = format!("sdi-test-rekor - 1\n{}\n{}\n", leaves.len(), b64(&root));
        let signed_note = [&self.rekor_key.id()[..4], &self.rekor_key.sign(note.as_bytes())[..]].concat();
        let checkpoint = format!("{note}\n\u{2014} sdi-test-rekor {}\n", b64(&signed_note));
        Ok(json!({ hex(&leaf): {
            "body": body_b64, "integratedTime": time, "logID": log_id, "logIndex": index,
            "verification": {
                "inclusionProof": {"checkpoint": checkpoint, "hashes": proof, "logIndex": index, "rootHash": hex(&root), "treeSize": leaves.len()},
                "signedEntryTimestamp": b64(&self.rekor_key.sign(set.as_bytes()))
            }
        }}))
    }
}

/// The time-stamp authority: an RFC 3161 `TimeStampResp` for a `TimeStampReq`.
impl Stack {
    fn timestamp(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let (_, body, _) = der::read(request).ok_or("not a TimeStampReq")?;
        let fields = der::items(body);
        let imprint = fields.get(1).ok_or("no messageImprint")?.to_vec();
        let nonce = fields.iter().skip(2).find(|f| f[0] == 0x02).map(|f| f.to_vec());
        let mut tst = vec![der::int(1), der::oid("1.3.6.1.4.1.57264.2"), imprint, serial()];
        tst.push(der::generalized_time(chrono::Utc::now()));
        tst.extend(nonce);
        let tst_info = der::seq(&tst);
        const TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
        let attr = |oid: &str, value: Vec<u8>| der::seq(&[der::oid(oid), der::set(&[value])]);
        let mut attrs = vec![
            attr("1.2.840.113549.1.9.3", der::oid(TST_INFO)),
            attr("1.2.840.113549.1.9.4", der::octets(&sha256(&tst_info))),
            attr(
                "1.2.840.113549.1.9.16.2.47",
                der::seq(&[der::seq(&[der::seq(&[der::octets(&sha256(&self.tsa_cert))])])]),
            ),
        ];
        // DER's SET OF is sorted: the signature is over the attributes as a verifier re-encodes them.
        attrs.sort();
        let signature = self.tsa_key.sign(&der::set(&attrs));
        let sha256_alg = der::seq(&[der::oid("2.16.840.1.101.3.4.2.1")]);
        let signer = der::seq(&[
            der::int(1),
            der::seq(&[name(CA_NAME), serial_of(&self.tsa_cert)]),
            sha256_alg.clone(),
            der::tlv(0xa0, &attrs.concat()),
            der::seq(&[der::oid(der::ECDSA_SHA256)]),
            der::octets(&signature),
        ]);
        let signed_data = der::seq(&[
            der::int(3),
            der::set(&[sha256_alg]),
            der::seq(&[der::oid(TST_INFO), der::explicit(0, &der::octets(&tst_info))]),
            der::tlv(0xa0, &self.tsa_cert),
            der::set(&[signer]),
        ]);
        let token = der::seq(&[der::oid("1.2.840.113549.1.7.2"), der::explicit(0, &signed_data)]);
        Ok(der::seq(&[der::seq(&[der::int(0)]), token]))
    }
}

/// The uncompressed P-256 point of the first SubjectPublicKeyInfo in a certificate.
fn p256_point_in(cert: &[u8]) -> Option<&[u8]> {
    let prefix = &der::p256_spki(&[0u8; 65])[..26];
    let at = cert.windows(prefix.len()).position(|w| w == prefix)? + prefix.len();
    cert.get(at..at + 65)
}

fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[1u8][..], l, r].concat())
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962's Merkle tree hash.
fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let k = split(leaves.len());
    node(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
}

/// RFC 6962's audit path of leaf `m`, from the leaf up.
fn inclusion_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = inclusion_path(m, &leaves[..k]);
        p.push(merkle_root(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_path(m - k, &leaves[k..]);
        p.push(merkle_root(&leaves[..k]));
        p
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
