//! Registry login: the plan lists registries only for trusted runs that write, and only with a
//! token. The token travels on `docker login`'s stdin into the private configuration.

use super::docker::{Docker, Failure, Signals};
use super::{Annotation, Outcome};
use crate::context::Context;
use crate::plan::BuildPlan;

pub(super) async fn login(
    ctx: &Context,
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    annotations: &mut Vec<Annotation>,
) -> Result<(), Outcome> {
    let Some(token) = &ctx.inputs.github_token else { return Ok(()) };
    let user = ctx.registry_user();
    for registry in &plan.login {
        let args = ["login", registry.as_str(), "--username", user.as_str(), "--password-stdin"];
        match docker.run(&args, Some(token.expose().as_bytes()), signals).await {
            Ok(_) => {}
            Err(Failure::Cancelled(sig)) => return Err(Outcome::Cancelled { signal: sig }),
            Err(Failure::Failed(why)) if plan.push => {
                return Err(Outcome::SetupFailed(format!(
                    "docker login to {registry} failed ({why}): check that the workflow grants `packages: write` and that github-token may write this package"
                )));
            }
            Err(Failure::Failed(why)) => annotations.push(Annotation::warning(format!(
                "docker login to {registry} failed ({why}): the cache export will be refused; the build goes on."
            ))),
        }
    }
    Ok(())
}
