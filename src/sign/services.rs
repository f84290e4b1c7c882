//! The services a keyless signature needs: the runner's OIDC token endpoint, Fulcio (a
//! certificate for an ephemeral key) and Rekor (the transparency log). Each call is retried
//! while the answer is transient (5xx, 429, no connection) and the run's budget lasts, as the
//! GitHub API calls are.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How patient the calls are (tests make it short).
#[derive(Debug, Clone)]
pub struct Patience {
    pub budget: Duration,
    pub backoff: Duration,
    pub request_timeout: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            budget: Duration::from_secs(30),
            backoff: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
        }
    }
}

pub struct Services {
    client: reqwest::Client,
    patience: Patience,
}

impl Services {
    pub fn new(patience: Patience) -> Result<Services, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().build().map_err(|e| format!("an HTTP client: {e}"))?;
        Ok(Services { client, patience })
    }

    /// The runner's OIDC token for Sigstore (`audience=sigstore`).
    pub async fn id_token(&self, request_url: &str, request_token: &str) -> Result<String, String> {
        let sep = if request_url.contains('?') { '&' } else { '?' };
        let url = format!("{request_url}{sep}audience=sigstore");
        let answer = self.call(|c| c.get(&url).bearer_auth(request_token)).await?;
        answer["value"].as_str().map(str::to_string).ok_or_else(|| "the answer holds no token".to_string())
    }

    /// A certificate chain (PEM, leaf first) for `public_key_pem`, proven held by `proof` (a
    /// signature over the token's subject).
    pub async fn certificate(
        &self,
        fulcio: &str,
        token: &str,
        public_key_pem: &str,
        proof: &[u8],
    ) -> Result<Vec<String>, String> {
        use base64::Engine;
        let url = format!("{}/api/v2/signingCert", fulcio.trim_end_matches('/'));
        let body = json!({
            "credentials": { "oidcIdentityToken": token },
            "publicKeyRequest": {
                "publicKey": { "algorithm": "ECDSA", "content": public_key_pem },
                "proofOfPossession": base64::engine::general_purpose::STANDARD.encode(proof)
            }
        })
        .to_string();
        let answer = self.call(|c| c.post(&url).header("content-type", "application/json").body(body.clone())).await?;
        let chain = answer
            .pointer("/signedCertificateEmbeddedSct/chain/certificates")
            .or_else(|| answer.pointer("/signedCertificateDetachedSct/chain/certificates"))
            .and_then(Value::as_array)
            .ok_or("the answer holds no certificate chain")?;
        Ok(chain.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
    }

    /// Records an entry in Rekor; its answer for the entry (body, proofs).
    pub async fn log_entry(&self, rekor: &str, request: &Value) -> Result<Value, String> {
        let url = format!("{}/api/v1/log/entries", rekor.trim_end_matches('/'));
        let body = request.to_string();
        let answer = self.call(|c| c.post(&url).header("content-type", "application/json").body(body.clone())).await?;
        answer
            .as_object()
            .and_then(|m| m.values().next().cloned())
            .ok_or_else(|| "the answer holds no entry".to_string())
    }

    /// An RFC 3161 time-stamp of `message` (the signature) from a TSA: the DER response.
    pub async fn timestamp(&self, tsa: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        let nonce = u64::from_be_bytes(ring_random::<8>()) >> 1;
        let body = super::timestamp::request(message, nonce);
        let answer = self
            .call_raw(|c| c.post(tsa).header("content-type", "application/timestamp-query").body(body.clone()))
            .await?;
        super::timestamp::granted(&answer)?;
        Ok(answer)
    }

    /// One call, retried while transient; the answer's JSON, or why not.
    async fn call(&self, request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder) -> Result<Value, String> {
        let bytes = self.call_raw(request).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("an answer that is not JSON: {e}"))
    }

    /// One call, retried while transient; the answer's bytes, or why not.
    async fn call_raw(&self, request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.patience.budget;
        let mut wait = self.patience.backoff;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent = request(&self.client).timeout(remaining.min(self.patience.request_timeout)).send().await;
            let failure = match sent {
                Ok(r) if r.status().is_success() => {
                    return r.bytes().await.map(|b| b.to_vec()).map_err(|e| format!("reading the answer: {e}"));
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text: String = r.text().await.unwrap_or_default().chars().take(300).collect();
                    let failure = format!("{status} {}", text.trim());
                    if status != 429 && status < 500 {
                        return Err(failure);
                    }
                    failure
                }
                Err(e) => {
                    format!("no answer: {}", std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string()))
                }
            };
            if Instant::now() + wait >= deadline {
                return Err(format!("{failure} (gave up after {} s)", self.patience.budget.as_secs()));
            }
            tracing::debug!("{failure}; retrying in {} ms", wait.as_millis());
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(8));
        }
    }
}

fn ring_random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out);
    out
}
