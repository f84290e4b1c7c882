//! The Docker Engine API, for a run with no docker CLI installed: the action's image carries
//! none (10 MB of every job's pull), and asks the daemon itself for the few things that are not
//! buildx's (its own container, BuildKit's container, a login, QEMU). The daemon is the one
//! `DOCKER_HOST` names (`unix://` or `tcp://`), else `/var/run/docker.sock`, as the CLI finds
//! it. The version is negotiated as the CLI negotiates it: `/_ping` once, then every path under
//! `/v<version>/`, the lower of the daemon's and the one this client is written against, so a
//! newer daemon answers in the shape this client reads.

use std::fmt;

use serde_json::Value;

/// Where the daemon listens when `DOCKER_HOST` is unset (the runner mounts it there).
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// An Engine API version, `1.48`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The version this client is written against and its answers were captured in
/// (tests/fixtures/engine): Docker 28.0's, the hosted runners' daemon.
pub const CLIENT_API: ApiVersion = ApiVersion(1, 48);
/// The oldest daemon it works with, and is tested on: Docker 20.10.
pub const MIN_API: ApiVersion = ApiVersion(1, 41);

/// The version to speak with a daemon whose `/_ping` says `daemon`: the lower of the two, or
/// why there is none.
pub fn negotiate(daemon: Option<&str>, host: &str) -> Result<ApiVersion, String> {
    let Some(theirs) = daemon.and_then(ApiVersion::parse) else {
        return Err(format!(
            "the Docker daemon at {host} did not say its Engine API version (its /_ping answer has no API-Version header): this action needs Docker 20.10 (API {MIN_API}) or later"
        ));
    };
    if theirs < MIN_API {
        return Err(format!(
            "the Docker daemon at {host} speaks Engine API {theirs}, older than this action's oldest, {MIN_API} (Docker 20.10): update Docker on the runner"
        ));
    }
    Ok(theirs.min(CLIENT_API))
}

/// A daemon whose oldest accepted version is newer than this client's says so in its own words
/// (`client version 1.48 is too old. Minimum supported API version is 1.50, …`): named both.
fn too_new(message: &str, host: &str, spoken: ApiVersion) -> Option<String> {
    let (_, rest) = message.split_once("Minimum supported API version is ")?;
    let minimum = rest.split([',', ' ']).next().filter(|m| ApiVersion::parse(m).is_some())?;
    Some(format!(
        "the Docker daemon at {host} accepts Engine API {minimum} or later, and this action speaks {MIN_API} to {spoken}: it is too old for that daemon; update the action (or, for now, set the daemon's DOCKER_MIN_API_VERSION={spoken})"
    ))
}

/// The daemon's HTTP API, over its socket.
pub struct EngineApi {
    client: reqwest::Client,
    base: String,
    /// `DOCKER_HOST` as given, for messages.
    host: String,
    /// Negotiated at the first call.
    version: tokio::sync::OnceCell<ApiVersion>,
}

impl EngineApi {
    /// The API at `docker_host` (`DOCKER_HOST`'s value; unset or empty: the default socket).
    /// Any other scheme (`ssh://`, a TLS daemon) needs the docker CLI, which says so.
    pub fn new(docker_host: Option<&str>) -> Result<EngineApi, String> {
        let host = docker_host.filter(|h| !h.is_empty()).unwrap_or("unix:///var/run/docker.sock");
        // reqwest builds its TLS settings even for plain HTTP: the provider the registry client uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = reqwest::Client::builder().no_proxy();
        let (client, base) = if let Some(path) = host.strip_prefix("unix://") {
            let path = if path.is_empty() { DEFAULT_SOCKET } else { path };
            (builder.unix_socket(path), "http://docker".to_string())
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            if std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty()) {
                return Err(tls_unsupported(host));
            }
            (builder, format!("http://{}", addr.trim_end_matches('/')))
        } else {
            return Err(format!(
                "DOCKER_HOST={host}: without the docker CLI the action reaches the Docker daemon at a unix:// or tcp:// address only; install the docker CLI or point DOCKER_HOST at the daemon's socket"
            ));
        };
        let client = client.build().map_err(|e| format!("cannot set up a client for DOCKER_HOST={host}: {e}"))?;
        Ok(EngineApi { client, base, host: host.to_string(), version: tokio::sync::OnceCell::new() })
    }

    fn unreachable(&self, e: reqwest::Error) -> String {
        format!("cannot reach the Docker daemon at {}: {e}", self.host)
    }

    /// The version both speak, asked of the daemon once: its `/_ping`, then `/version` at the
    /// version chosen, which a daemon that no longer accepts it refuses before anything is done.
    pub async fn version(&self) -> Result<ApiVersion, String> {
        let agree = || async {
            let unreachable = |e| self.unreachable(e);
            let response = self.client.get(format!("{}/_ping", self.base)).send().await.map_err(unreachable)?;
            let header = response.headers().get("api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
            let version = negotiate(header.as_deref(), &self.host)?;
            let check =
                self.client.get(format!("{}/v{version}/version", self.base)).send().await.map_err(unreachable)?;
            let status = check.status();
            if !status.is_success() {
                let message = daemon_message(status.as_u16(), &check.bytes().await.unwrap_or_default());
                return Err(too_new(&message, &self.host, version).unwrap_or(message));
            }
            tracing::debug!(
                "engine API: the daemon speaks {}, this client {CLIENT_API}: {version}",
                header.unwrap_or_default()
            );
            Ok(version)
        };
        self.version.get_or_try_init(agree).await.copied()
    }

    /// One call; its answer's body as sent (read whole), or why not: the daemon's own words
    /// (`{"message": …}`, as the CLI prints them), or why it could not be reached.
    /// `registry_auth`: a pull's `X-Registry-Auth` (see `registry_auth`), the credentials the
    /// CLI would send for the image's registry.
    pub async fn send(
        &self,
        (method, path): (reqwest::Method, &str),
        body: Option<&Value>,
        registry_auth: Option<&str>,
    ) -> Result<Vec<u8>, String> {
        let version = self.version().await?;
        tracing::debug!("engine API {method} {}", path.split('?').next().unwrap_or(path));
        let mut request = self.client.request(method, format!("{}/v{version}{path}", self.base));
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body.to_string());
        }
        if let Some(auth) = registry_auth {
            request = request.header("X-Registry-Auth", auth);
        }
        let unreachable = |e| self.unreachable(e);
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let message = daemon_message(status.as_u16(), &bytes);
        Err(too_new(&message, &self.host, version).unwrap_or(message))
    }
}

fn tls_unsupported(host: &str) -> String {
    format!(
        "DOCKER_HOST={host} with DOCKER_TLS_VERIFY: without the docker CLI the action speaks to the Docker daemon without TLS only; install the docker CLI, or use the daemon's unix socket"
    )
}

/// The daemon's reason for an error status, worded as the CLI prints it.
pub fn daemon_message(status: u16, body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    if message.is_empty() {
        format!("Error response from daemon: status {status}")
    } else {
        format!("Error response from daemon: {message}")
    }
}

/// The `X-Registry-Auth` header's value for a login: base64url of its JSON, as the CLI encodes it.
pub fn registry_auth(user: &str, password: &str, server: &str) -> String {
    use base64::Engine;
    let json = serde_json::json!({"username": user, "password": password, "serveraddress": server});
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// A path segment or query value as the API takes it (names here are `[A-Za-z0-9_.-]`, image
/// references add `/:@`).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The frames of a container's log as the API sends it for a container without a TTY (an
/// 8-byte header: stream, three zero bytes, big-endian length), joined into text.
pub fn demux_log(mut raw: &[u8]) -> String {
    let mut out = Vec::new();
    while raw.len() >= 8 {
        let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        let end = (8 + len).min(raw.len());
        out.extend_from_slice(&raw[8..end]);
        raw = &raw[end..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_is_reached_where_docker_host_says_and_nowhere_the_action_cannot_follow() {
        assert_eq!(EngineApi::new(None).unwrap().base, "http://docker");
        assert_eq!(EngineApi::new(Some("")).unwrap().host, "unix:///var/run/docker.sock");
        assert_eq!(EngineApi::new(Some("unix:///run/user/1000/docker.sock")).unwrap().base, "http://docker");
        assert_eq!(EngineApi::new(Some("tcp://127.0.0.1:2375/")).unwrap().base, "http://127.0.0.1:2375");
        let ssh = EngineApi::new(Some("ssh://me@host")).err().unwrap();
        assert!(ssh.contains("DOCKER_HOST=ssh://me@host") && ssh.contains("install the docker CLI"), "{ssh}");
        assert!(tls_unsupported("tcp://h:2376").contains("DOCKER_TLS_VERIFY"));
    }

    #[test]
    fn the_version_spoken_is_the_lower_of_the_daemons_and_this_clients() {
        let host = "unix:///var/run/docker.sock";
        assert_eq!(negotiate(Some("1.41"), host), Ok(ApiVersion(1, 41)), "Docker 20.10");
        assert_eq!(negotiate(Some("1.48"), host), Ok(ApiVersion(1, 48)), "Docker 28.0");
        assert_eq!(negotiate(Some("1.52"), host), Ok(CLIENT_API), "a newer daemon answers as 28.0 does");
        assert_eq!(negotiate(Some("2.0"), host), Ok(CLIENT_API));
        let old = negotiate(Some("1.40"), host).unwrap_err();
        assert!(old.contains("Engine API 1.40") && old.contains("oldest, 1.41 (Docker 20.10)"), "{old}");
        let silent = negotiate(None, host).unwrap_err();
        assert!(silent.contains("no API-Version header"), "{silent}");
        assert!(negotiate(Some("one.two"), host).is_err());
    }

    #[test]
    fn a_daemon_that_refuses_this_clients_version_is_named_with_both() {
        let refused = "Error response from daemon: client version 1.48 is too old. Minimum supported API version is 1.50, please upgrade your client to a newer version";
        let why = too_new(refused, "tcp://h:2375", CLIENT_API).unwrap();
        assert!(why.contains("accepts Engine API 1.50 or later") && why.contains("speaks 1.41 to 1.48"), "{why}");
        assert_eq!(too_new("Error response from daemon: No such container: x", "h", CLIENT_API), None);
    }

    #[test]
    fn an_error_is_the_daemons_message_as_the_cli_words_it() {
        let body = br#"{"message":"No such container: sdi-1-buildkit"}"#;
        assert_eq!(daemon_message(404, body), "Error response from daemon: No such container: sdi-1-buildkit");
        assert_eq!(daemon_message(500, b"page not found\n"), "Error response from daemon: page not found");
        assert_eq!(daemon_message(502, b""), "Error response from daemon: status 502");
    }

    #[test]
    fn names_and_references_are_encoded_for_a_path_or_a_query() {
        assert_eq!(encode("sdi-4242-ab_c.1"), "sdi-4242-ab_c.1");
        assert_eq!(encode("tonistiigi/binfmt:qemu@sha256:40"), "tonistiigi%2Fbinfmt%3Aqemu%40sha256%3A40");
    }

    #[test]
    fn a_pulls_credentials_are_sent_as_the_cli_encodes_them() {
        use base64::Engine;
        let header = registry_auth("me", "pa/ss+?", "https://index.docker.io/v1/");
        let json = base64::engine::general_purpose::URL_SAFE.decode(&header).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"username": "me", "password": "pa/ss+?", "serveraddress": "https://index.docker.io/v1/"})
        );
        assert!(!header.contains('+') && !header.contains('/'), "base64url: {header}");
    }

    #[test]
    fn a_log_without_a_tty_is_read_through_its_frame_headers() {
        let mut raw = vec![1, 0, 0, 0, 0, 0, 0, 3];
        raw.extend_from_slice(b"ok\n");
        raw.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 6]);
        raw.extend_from_slice(b"error\n");
        raw.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 9, b'c', b'u', b't']);
        assert_eq!(demux_log(&raw), "ok\nerror\ncut");
    }
}
