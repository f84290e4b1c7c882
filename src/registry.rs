//! The distribution API, for what the docker CLI cannot do: list a repository's tags, resolve
//! a tag to its digest, delete a manifest. Credentials go only to a registry that asks for
//! them (a 401 challenge); plain HTTP only for loopback registries.

use reqwest::{Method, StatusCode};

const MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry does not allow it (deletes disabled, no permission): `status message`.
    #[error("{0} {1}")]
    Refused(u16, String),
    #[error("{0}")]
    Failed(String),
}

pub struct Distribution {
    http: reqwest::Client,
    /// `http(s)://host[:port]`.
    base: String,
    repository: String,
    basic: Option<(String, String)>,
    token: Option<String>,
}

/// Loopback registries speak plain HTTP, as docker assumes for them.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// `Bearer realm="…",service="…",scope="…"` → its parameters.
fn challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.strip_prefix("Bearer ")?;
    let mut out = Vec::new();
    for part in crate::dockerfile::csv_fields(rest) {
        let (k, v) = part.trim().split_once('=')?;
        out.push((k.to_string(), v.trim_matches('"').to_string()));
    }
    Some(out)
}

impl Distribution {
    /// `image` is `registry/repository`.
    pub fn new(image: &str, basic: Option<(String, String)>) -> Result<Self, RegistryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (host, repository) =
            image.split_once('/').ok_or(RegistryError::Failed(format!("'{image}' has no registry")))?;
        let scheme = if is_loopback(host) { "http" } else { "https" };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| RegistryError::Failed(format!("cannot make an HTTP client: {e}")))?;
        Ok(Distribution { http, base: format!("{scheme}://{host}"), repository: repository.into(), basic, token: None })
    }

    /// `basic`: send the credentials (only after a registry asked for them).
    async fn send_once(&self, method: &Method, url: &str, basic: bool) -> Result<reqwest::Response, RegistryError> {
        let mut req = self.http.request(method.clone(), url).header("Accept", MANIFESTS);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        } else if let (true, Some((user, password))) = (basic, &self.basic) {
            req = req.basic_auth(user, Some(password));
        }
        req.send().await.map_err(|e| RegistryError::Failed(format!("{method} {url}: {e}")))
    }

    /// One request; a 401 challenge is answered once: a Bearer one with a token for the scope
    /// it names, a Basic one with the credentials.
    async fn send(&mut self, method: Method, path: &str) -> Result<reqwest::Response, RegistryError> {
        let url = format!("{}{path}", self.base);
        let first = self.send_once(&method, &url, false).await?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let header = first.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if header.starts_with("Basic") && self.basic.is_some() {
            return self.send_once(&method, &url, true).await;
        }
        let Some(params) = challenge(header) else { return Ok(first) };
        let realm = params.iter().find(|(k, _)| k == "realm").map(|(_, v)| v.clone()).unwrap_or_default();
        let query: Vec<(&str, &str)> =
            params.iter().filter(|(k, _)| k != "realm").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut req = self.http.get(&realm).query(&query);
        if let Some((user, password)) = &self.basic {
            req = req.basic_auth(user, Some(password));
        }
        let answer = req.send().await.map_err(|e| RegistryError::Failed(format!("token from {realm}: {e}")))?;
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        self.token = body.get("token").or(body.get("access_token")).and_then(|t| t.as_str()).map(str::to_string);
        self.send_once(&method, &url, false).await
    }

    async fn refused_or_failed(what: &str, response: reqwest::Response) -> RegistryError {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        match status {
            401 | 403 | 405 => RegistryError::Refused(status, message),
            _ => RegistryError::Failed(format!("{what}: {status} {message}")),
        }
    }

    /// Every tag of the repository, following `Link: rel="next"` pages.
    pub async fn tags(&mut self) -> Result<Vec<String>, RegistryError> {
        let mut path = format!("/v2/{}/tags/list?n=1000", self.repository);
        let mut all = Vec::new();
        for _ in 0..1000 {
            let response = self.send(Method::GET, &path).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(all);
            }
            if !response.status().is_success() {
                return Err(Self::refused_or_failed("listing tags", response).await);
            }
            let next = response
                .headers()
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|(p, _)| p.to_string()));
            let body: serde_json::Value =
                response.json().await.map_err(|e| RegistryError::Failed(format!("listing tags: {e}")))?;
            let page = body["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string));
            all.extend(page);
            match next {
                Some(p) if p.starts_with('/') => path = p,
                _ => return Ok(all),
            }
        }
        Ok(all)
    }

    /// The digest a tag names (`None`: no such tag).
    pub async fn digest(&mut self, tag: &str) -> Result<Option<String>, RegistryError> {
        let path = format!("/v2/{}/manifests/{tag}", self.repository);
        let response = self.send(Method::HEAD, &path).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(Self::refused_or_failed(&format!("resolving {tag}"), response).await);
        }
        let digest = response.headers().get("docker-content-digest").and_then(|d| d.to_str().ok());
        digest.map(|d| Some(d.to_string())).ok_or(RegistryError::Failed(format!("{tag}: no Docker-Content-Digest")))
    }

    /// Deletes the manifest, and with it every tag that names it.
    pub async fn delete(&mut self, digest: &str) -> Result<(), RegistryError> {
        let path = format!("/v2/{}/manifests/{digest}", self.repository);
        let response = self.send(Method::DELETE, &path).await?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(Self::refused_or_failed(&format!("deleting {digest}"), response).await),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_challenges_are_read() {
        let c = super::challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:o/r:pull,delete""#,
        )
        .unwrap();
        assert_eq!(c[0], ("realm".into(), "https://auth.example.com/token".into()));
        assert_eq!(c[2], ("scope".into(), "repository:o/r:pull,delete".into()));
        assert!(super::challenge("Basic realm=\"x\"").is_none());
    }
}
