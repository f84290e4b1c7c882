//! Registry login: the plan lists registries only for trusted runs — those it writes to, with
//! `github-token`, and those of `logins`, with their own credentials. A password travels only
//! on `docker login`'s stdin (or in the Engine API's login request) into the private
//! configuration.

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
    match super::containers::login(docker, signals, registry, user, password).await {
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
