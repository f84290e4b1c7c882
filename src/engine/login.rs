//! Registry login: the plan lists registries only for trusted runs — those it writes to, with
//! `github-token`, and those of `logins`, with their own credentials. A password travels only
//! on `docker login`'s stdin (or in the Engine API's login request) into the private
//! configuration.

use reqwest::Method;
use serde_json::json;

use super::docker::{Docker, Failure, Signals};
use crate::context::Context;
use crate::credentials::{self, Secret};
use crate::plan::BuildPlan;
use crate::step::{Annotation, Outcome};

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

pub(crate) async fn login(
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
    let server = credentials::auth_key(registry);
    let body = json!({"username": user, "password": password, "serveraddress": server});
    let answer = super::containers::call(docker, signals, (Method::POST, "/auth"), Some(&body)).await?;
    let token = answer["IdentityToken"].as_str().filter(|t| !t.is_empty());
    let config = docker.config_dir();
    credentials::store(config, registry, user, token.map_or(Secret::Password(password), Secret::IdentityToken))
        .map_err(|e| Failure::Failed(format!("cannot keep the login in {}: {e}", config.display())))
}
