//! Registry login: the plan lists registries only for trusted runs — those it writes to, with
//! `github-token`, and those of `logins`, with their own credentials. A password travels only
//! on `docker login`'s stdin (or in the Engine API's login request) into the private
//! configuration.

use reqwest::Method;
use serde_json::{Value, json};

use super::docker::{Docker, Failure, Signals};
use super::{Annotation, Outcome};
use crate::context::Context;
use crate::plan::BuildPlan;

/// One login; a failure fails the run when the run pushes, else it is a warning.
async fn one(
    docker: &mut Docker,
    signals: &mut Signals,
    (registry, user, password): (&str, &str, &str),
    plan: &BuildPlan,
    annotations: &mut Vec<Annotation>,
    hint: &str,
) -> Result<(), Outcome> {
    match through_the_daemon(docker, signals, registry, user, password).await {
        Ok(_) => Ok(()),
        Err(Failure::Cancelled(sig)) => Err(Outcome::Cancelled { signal: sig }),
        Err(Failure::Failed(why)) if plan.push => {
            Err(Outcome::SetupFailed(format!("docker login to {registry} failed ({why}): {hint}")))
        }
        Err(Failure::Failed(why)) => {
            annotations.push(Annotation::warning(format!(
                "docker login to {registry} failed ({why}): the cache export will be refused; the build goes on."
            )));
            Ok(())
        }
    }
}

pub(super) async fn login(
    ctx: &Context,
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    annotations: &mut Vec<Annotation>,
) -> Result<(), Outcome> {
    if let Some(token) = &ctx.inputs.github_token {
        let user = ctx.registry_user();
        let hint = "check that the workflow grants `packages: write` and that github-token may write this package";
        for registry in &plan.login {
            one(docker, signals, (registry, &user, token.expose()), plan, annotations, hint).await?;
        }
    }
    for c in &plan.credentials {
        // Checked by the plan: a trusted run has every password it logs in with.
        let password = std::env::var(&c.password_env).unwrap_or_default();
        let hint = format!("check the username and the secret {} names (logins)", c.password_env);
        one(docker, signals, (&c.registry, &c.username, &password), plan, annotations, &hint).await?;
    }
    Ok(())
}

/// Logs in to `registry` as the CLI does: the daemon checks the credentials (`/auth`), then
/// they are kept in the private configuration only, where buildx reads them. The password is
/// on `docker login`'s stdin, or in the request's body: never in an argument or a log line.
async fn through_the_daemon(
    docker: &mut Docker,
    signals: &mut Signals,
    registry: &str,
    user: &str,
    password: &str,
) -> Result<(), Failure> {
    if docker.api.is_none() {
        let args = ["login", registry, "--username", user, "--password-stdin"];
        return docker.run(&args, Some(password.as_bytes()), signals).await.map(drop);
    }
    let server = auth_key(registry);
    let body = json!({"username": user, "password": password, "serveraddress": server});
    let answer = super::containers::call(docker, signals, (Method::POST, "/auth"), Some(&body)).await?;
    let token = answer["IdentityToken"].as_str().filter(|t| !t.is_empty());
    let path = docker.config_dir().join("config.json");
    store_auth(&path, &server, user, token.map_or(Secret::Password(password), Secret::IdentityToken))
        .map_err(|e| Failure::Failed(format!("cannot keep the login in {}: {e}", path.display())))
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

/// Adds a login to a docker `config.json` (created 0600; the rest of it kept), as the CLI writes
/// one without a credential helper: `auth` is base64 of `user:password` (of `user:` beside an
/// identity token).
pub fn store_auth(path: &std::path::Path, server: &str, user: &str, secret: Secret) -> std::io::Result<()> {
    use base64::Engine;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut config: Value = std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(json!({}));
    let entry = match secret {
        Secret::Password(p) => json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{p}"))}),
        Secret::IdentityToken(t) => json!({
            "auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:")),
            "identitytoken": t,
        }),
    };
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    config["auths"][server] = entry;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(config.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_kept_as_the_cli_keeps_it_beside_the_rest_of_the_configuration() {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"currentContext":"ci"}"#).unwrap();
        store_auth(&path, &auth_key("ghcr.io"), "octo", Secret::Password("s3cret:x")).unwrap();
        store_auth(&path, &auth_key("docker.io"), "me", Secret::IdentityToken("tok")).unwrap();
        let config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(config["currentContext"], "ci");
        let auth = config["auths"]["ghcr.io"]["auth"].as_str().unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(auth).unwrap(), b"octo:s3cret:x");
        let hub = &config["auths"]["https://index.docker.io/v1/"];
        assert_eq!((hub["auth"].as_str(), hub["identitytoken"].as_str()), (Some("bWU6"), Some("tok")));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
