//! The build's secrets under trust: which a run receives (all for trusted code, each required;
//! none for untrusted code), how buildx finds each (an environment name or a file, never a
//! value), whether the image is checked for them, and build-args that look like one.

use super::{Mode, SecretPlan, Verify};
use crate::context::{Context, InputError, SecretSource, SecretSpec};

/// Names and value shapes of build-args that are most likely secrets. Build arguments persist
/// in the image history and in provenance, so they deserve a warning.
fn looks_like_secret(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let by_name =
        ["TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL", "AUTH"].iter().any(|w| upper.contains(w));
    let by_value =
        ["ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "npm_", "glpat-", "xoxb-", "xoxp-", "sk_live_", "AKIA", "ASIA"]
            .iter()
            .any(|p| value.starts_with(p) && value.len() >= 16);
    by_name || by_value
}

fn missing_secret(spec: &SecretSpec) -> InputError {
    let message = match &spec.source {
        SecretSource::Value { .. } => format!(
            "the value of '{}' is empty: a secret that is not set in the repository's settings expands to nothing; set it, or remove the line",
            spec.id
        ),
        SecretSource::Env { env } => format!(
            "'{}' reads {env}, which is not set or is empty (buildx would silently pass an empty secret): pass it to the step with env: {env}: ${{{{ secrets.{env} }}}}",
            spec.id
        ),
        SecretSource::File { path } => {
            format!("'{}' names '{path}', which is not a readable file", spec.id)
        }
    };
    InputError::new(spec.input, message)
}

/// The secrets a build receives: all of them for trusted code (each must be there), none for
/// untrusted code (a warning names them), none for runs that build nothing.
pub(super) fn secrets_for<'a>(
    ctx: &'a Context,
    trusted: bool,
    mode: Mode,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'a SecretSpec>, InputError> {
    let inputs = &ctx.inputs;
    if matches!(mode, Mode::Merge | Mode::Cleanup) {
        return Ok(Vec::new());
    }
    if trusted {
        if let Some(missing) = inputs.secrets.iter().find(|s| !s.available) {
            return Err(missing_secret(missing));
        }
        return Ok(inputs.secrets.iter().collect());
    }
    if !inputs.secrets.is_empty() {
        let ids: Vec<&str> = inputs.secrets.iter().map(|s| s.id.as_str()).collect();
        warnings.push(format!(
            "Build secrets withheld from untrusted code: {}. RUN --mount=type=secret steps run without them.",
            ids.join(", ")
        ));
    }
    Ok(Vec::new())
}

pub(super) fn warn_secret_build_args(ctx: &Context, warnings: &mut Vec<String>) {
    for (name, value) in &ctx.inputs.build_args {
        if looks_like_secret(name, value) {
            let id = name.to_ascii_lowercase();
            warnings.push(format!(
                "build-arg {name} looks like a secret: build arguments stay in the image history and its provenance. Pass it with secret-envs ({id}={name}) and RUN --mount=type=secret,id={id},env={name}."
            ));
        }
    }
}

pub(super) fn secret_plans(secrets: &[&SecretSpec]) -> Vec<SecretPlan> {
    secrets
        .iter()
        .map(|s| match &s.source {
            SecretSource::Value { env } | SecretSource::Env { env } => {
                SecretPlan { id: s.id.clone(), env: Some(env.clone()), file: None }
            }
            SecretSource::File { path } => SecretPlan { id: s.id.clone(), env: None, file: Some(path.clone()) },
        })
        .collect()
}

/// A build that uses secrets is checked for them before any tag exists: read back from the
/// registry when pushed by digest, from a local export otherwise.
pub(super) fn verify_for(ctx: &Context, uses_secrets: bool, push: bool, warnings: &mut Vec<String>) -> Option<Verify> {
    if !uses_secrets {
        None
    } else if !ctx.inputs.verify_secrets {
        warnings.push("verify-secrets: false: the image is not checked for leaked secret values.".into());
        None
    } else if push {
        Some(Verify::Registry)
    } else {
        Some(Verify::Layout)
    }
}
