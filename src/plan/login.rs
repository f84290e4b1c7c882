//! Which registries a trusted run logs in to, and with what: `github-token`, or the `logins`
//! input's credentials for the registries it names.

use super::Mode;
use crate::context::inputs::{RegistryLogin, registry_of};
use crate::context::{Context, InputError};

/// Registries a trusted run logs in to: each one it pushes or writes a cache to, with the
/// `logins` credentials where the input names the registry, else with `github-token`; and every
/// registry of `logins` (a private base image, Docker Hub's pull limits).
pub(super) fn logins(
    ctx: &Context,
    plan: (Mode, bool, &[String]),
    written: Vec<String>,
    warnings: &mut Vec<String>,
) -> (Vec<String>, Vec<RegistryLogin>) {
    let (mode, push, tags) = plan;
    let inputs = &ctx.inputs;
    // A full reference in `tags` may name another registry: each one pushed to needs a login.
    let pushed_to: Vec<String> = match (push, mode) {
        (false, _) => Vec::new(),
        (true, Mode::PerPlatform) => vec![inputs.image.registry().to_string()],
        (true, _) => tags.iter().map(|t| registry_of(t).to_string()).collect(),
    };
    let credentials = inputs.logins.clone();
    let mut login: Vec<String> = Vec::new();
    for registry in pushed_to.into_iter().chain(written) {
        if !login.contains(&registry) && !credentials.iter().any(|c| c.registry == registry) {
            login.push(registry);
        }
    }
    if inputs.github_token.is_none() && !login.is_empty() {
        warnings.push(format!(
            "No github-token: no login to {}; the push and cache export fail unless the builder already has credentials.",
            login.join(", ")
        ));
        login.clear();
    }
    (login, credentials)
}

/// A trusted run needs the password of each registry it logs in to with `logins`.
pub(super) fn check_credentials(ctx: &Context, trusted: bool) -> Result<(), InputError> {
    match ctx.inputs.logins.iter().find(|l| !l.available) {
        Some(l) if trusted => Err(InputError::new(
            "logins",
            format!(
                "the password for {} reads {}, which is not set or is empty: pass it to the step with env: {}: ${{{{ secrets.{} }}}}",
                l.registry, l.password_env, l.password_env, l.password_env
            ),
        )),
        _ => Ok(()),
    }
}
