//! Keyless signing of a pushed image (trusted lanes only; `plan` decides): the runner's OIDC
//! token, an ephemeral P-256 key held in memory only, a Fulcio certificate for it carrying the
//! workflow's identity, a DSSE envelope over SLSA provenance for the image's digest, its entry
//! in Rekor, and the Sigstore bundle that holds them, stored beside the image.

pub mod bundle;
pub mod der;
pub mod provenance;
pub mod publish;
pub mod services;
pub mod store;
pub mod timestamp;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::Value;

use services::Services;

/// The step a signing failure happened at: what the `::error::` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Token,
    Certificate,
    Log,
    Timestamp,
    Registry,
    AttestationsApi,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Token => "the OIDC token (the runner's token endpoint)",
            Step::Certificate => "the signing certificate (Fulcio)",
            Step::Log => "the transparency log (Rekor)",
            Step::Timestamp => "the time-stamp authority (RFC 3161)",
            Step::Registry => "storing the attestation in the registry",
            Step::AttestationsApi => "GitHub's attestations API",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing failed at {step}: {message}")]
pub struct SignError {
    pub step: Step,
    pub message: String,
}

/// Where the identity comes from and where it is certified and logged.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub token_url: &'a str,
    pub token_request_token: &'a str,
    /// The instances to sign on; the token's `repository_visibility` picks one.
    pub instances: &'a crate::context::SigstoreUrls,
    pub server_url: &'a str,
    /// The image's name, without tag (`ghcr.io/acme/app`): the statement's subject.
    pub image: &'a str,
    pub digest: &'a str,
}

/// A signature made: the bundle, the identity its certificate names, and whether it was logged
/// in a public transparency log (else only time-stamped).
#[derive(Debug, Clone)]
pub struct Signature {
    pub bundle: Value,
    pub identity: String,
    pub logged: bool,
}

/// The ephemeral key: made for one signature, held in memory only, dropped with it.
struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    fn new() -> Option<Signer> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).ok()?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).ok()?;
        Some(Signer { key, rng })
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.key.sign(&self.rng, data).map(|s| s.as_ref().to_vec()).map_err(|_| "signing failed".to_string())
    }

    fn public_pem(&self) -> String {
        der::pem("PUBLIC KEY", &der::p256_spki(self.key.public_key().as_ref()))
    }
}

/// Signs `req.digest`'s provenance. The token and the key never leave this function's memory;
/// failures name their step, with the token blanked out of any message. A repository the token
/// does not call public is signed on the private instance: nothing goes to a public log.
pub async fn sign(services: &Services, req: &Request<'_>) -> Result<Signature, SignError> {
    let fail = |step: Step| move |m: String| SignError { step, message: m };
    let token = services
        .id_token(req.token_url, req.token_request_token)
        .await
        .map_err(|m| SignError { step: Step::Token, message: m.replace(req.token_request_token, "***") })?;
    let blank = |step: Step| {
        let token = token.clone();
        move |m: String| SignError { step, message: m.replace(&token, "***") }
    };
    let claims = provenance::claims(&token).ok_or_else(|| fail(Step::Token)("the token is not a JWT".into()))?;
    let instance = match claims["repository_visibility"].as_str() {
        Some("public") => &req.instances.public,
        _ => &req.instances.private,
    };
    let subject = claims["sub"].as_str().ok_or_else(|| fail(Step::Token)("the token has no subject".into()))?;
    let statement = provenance::statement(&claims, req.server_url, req.image, req.digest)
        .map_err(|claim| fail(Step::Token)(format!("the token has no '{claim}' claim")))?;

    let signer = Signer::new().ok_or_else(|| fail(Step::Certificate)("no key could be made".into()))?;
    let proof = signer.sign(subject.as_bytes()).map_err(fail(Step::Certificate))?;
    let public_pem = signer.public_pem();
    let chain = services.certificate(&instance.fulcio, &token, &public_pem, &proof);
    let chain = chain.await.map_err(blank(Step::Certificate))?;
    let leaf_pem = chain.first().ok_or_else(|| fail(Step::Certificate)("an empty certificate chain".into()))?;
    let leaf = der::unpem("CERTIFICATE", leaf_pem)
        .ok_or_else(|| fail(Step::Certificate)("a certificate that is not PEM".into()))?;

    let payload = serde_json::to_vec(&statement).expect("JSON");
    let sig = signer.sign(&bundle::pae(bundle::IN_TOTO, &payload)).map_err(fail(Step::Log))?;
    let envelope = bundle::envelope(&payload, &sig);
    let (entry, stamp) =
        vouch(services, instance, (&envelope, &sig), leaf_pem).await.map_err(|(step, m)| blank(step)(m))?;
    let bundle = bundle::bundle(&leaf, &envelope, entry.as_ref(), stamp.as_deref())
        .map_err(|m| fail(Step::Log)(format!("Rekor's answer: {m}")))?;
    let identity =
        format!("{}/{}", req.server_url.trim_end_matches('/'), claims["job_workflow_ref"].as_str().unwrap_or_default());
    Ok(Signature { bundle, identity, logged: entry.is_some() })
}

/// What vouches for the signature's time: its entry in the instance's transparency log, and
/// an RFC 3161 time-stamp of the signature from its TSA (either or both).
async fn vouch(
    services: &Services,
    instance: &crate::context::inputs::Instance,
    (envelope, sig): (&Value, &[u8]),
    leaf_pem: &str,
) -> Result<(Option<Value>, Option<Vec<u8>>), (Step, String)> {
    let entry = match &instance.rekor {
        Some(rekor) => Some(
            services.log_entry(rekor, &bundle::rekor_request(envelope, leaf_pem)).await.map_err(|m| (Step::Log, m))?,
        ),
        None => None,
    };
    let stamp = match &instance.tsa {
        Some(tsa) => Some(services.timestamp(tsa, sig).await.map_err(|m| (Step::Timestamp, m))?),
        None => None,
    };
    Ok((entry, stamp))
}
