//! The logins a run keeps, in its private docker configuration (`DOCKER_CONFIG`): written as the
//! docker CLI writes them without a credential helper, where buildx reads them, and read back by
//! the run's own registry clients (the scan, the stores, a pull through the Engine API). One
//! place for the format, both ways.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

/// The run's private docker configuration under its directory `dir`.
pub fn private_config(dir: &Path) -> PathBuf {
    dir.join("docker-config")
}

/// The key a login is kept under: Docker Hub's historical address, else the host as given.
pub fn auth_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/".to_string(),
        other => other.to_string(),
    }
}

/// What a login keeps: the password, or the identity token the registry gave in its place.
pub enum Secret<'a> {
    Password(&'a str),
    IdentityToken(&'a str),
}

/// Adds a login to `config/config.json` (created 0600; the rest of it kept): `auth` is base64
/// of `user:password` (of `user:` beside an identity token).
pub fn store(config: &Path, registry: &str, user: &str, secret: Secret) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = config.join("config.json");
    let mut json: Value = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(json!({}));
    let base64 = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
    let entry = match secret {
        Secret::Password(p) => json!({"auth": base64(format!("{user}:{p}"))}),
        Secret::IdentityToken(t) => json!({"auth": base64(format!("{user}:")), "identitytoken": t}),
    };
    if !json["auths"].is_object() {
        json["auths"] = json!({});
    }
    json["auths"][auth_key(registry)] = entry;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(json.to_string().as_bytes())
}

/// The `user:password` a login kept for `registry` in `config/config.json`.
pub fn stored(config: &Path, registry: &str) -> Option<(String, String)> {
    found(&std::fs::read_to_string(config.join("config.json")).ok()?, registry)
}

/// `stored`, from the file's text.
fn found(config_json: &str, registry: &str) -> Option<(String, String)> {
    let v: Value = serde_json::from_str(config_json).ok()?;
    let auth = v.get("auths")?.get(auth_key(registry))?.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(auth).ok()?;
    let (user, password) =
        String::from_utf8(decoded).ok()?.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_kept_as_the_cli_keeps_it_beside_the_rest_of_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"currentContext":"ci"}"#).unwrap();
        store(dir.path(), "ghcr.io", "octo", Secret::Password("s3cret:x")).unwrap();
        store(dir.path(), "docker.io", "me", Secret::IdentityToken("tok")).unwrap();
        let config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(config["currentContext"], "ci");
        let auth = config["auths"]["ghcr.io"]["auth"].as_str().unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(auth).unwrap(), b"octo:s3cret:x");
        let hub = &config["auths"]["https://index.docker.io/v1/"];
        assert_eq!((hub["auth"].as_str(), hub["identitytoken"].as_str()), (Some("bWU6"), Some("tok")));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Read back as it was written, Docker Hub under whichever name.
        assert_eq!(stored(dir.path(), "ghcr.io"), Some(("octo".into(), "s3cret:x".into())));
        assert_eq!(stored(dir.path(), "quay.io"), None);
    }

    #[test]
    fn a_login_is_found_under_the_key_the_cli_keeps_it_under() {
        let config = r#"{"auths":{"ghcr.io":{"auth":"b2N0bzpzM2NyZXQ6eA=="},"https://index.docker.io/v1/":{"auth":"bWU6aHVi"}}}"#;
        assert_eq!(found(config, "ghcr.io"), Some(("octo".into(), "s3cret:x".into())));
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(found(config, hub), Some(("me".into(), "hub".into())), "{hub}");
        }
        assert_eq!(found(config, "quay.io"), None);
    }
}
