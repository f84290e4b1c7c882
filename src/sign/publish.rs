//! The signing step of a run: sign the pushed digest, keep the bundle under RUNNER_TEMP, store
//! it beside the image and, with a token, with GitHub's attestations API. Runs only where the
//! plan says so (a trusted push); a failure after the push fails the run, naming its step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::services::{Patience, Services};
use super::{Request, SignError, Step};
use crate::context::Context;
use crate::plan::BuildPlan;
use crate::step::Annotation;

/// What the run published of its signature (outputs and the summary's line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub attestation_digest: String,
    /// Under RUNNER_TEMP, where the job's later steps find it (none when it is not mounted).
    pub bundle_path: Option<PathBuf>,
    pub identity: String,
    /// Logged in a transparency log (else time-stamped only).
    pub logged: bool,
    pub took: Duration,
}

/// Signs `digest` (what the run pushed) if the plan says so.
pub async fn publish(
    ctx: &Context,
    plan: &BuildPlan,
    digest: &str,
    dir: &Path,
    annotations: &mut Vec<Annotation>,
) -> Result<Option<Published>, SignError> {
    let (Some(sp), Some(id)) = (&plan.sign, &ctx.id_token) else { return Ok(None) };
    let started = Instant::now();
    let fail = |step: Step| move |message: String| SignError { step, message };
    let services = Services::new(Patience::default()).map_err(fail(Step::Token))?;
    let req = Request {
        token_url: &id.url,
        token_request_token: id.request_token.expose(),
        instances: sp,
        server_url: &ctx.server_url,
        image: &plan.image,
        digest,
    };
    let signature = super::sign(&services, &req).await?;
    let bytes = serde_json::to_vec(&signature.bundle).expect("JSON");
    let bundle_path = keep_bundle(ctx.runner_temp.as_deref(), digest, &bytes, annotations);
    let registry =
        crate::verify::pushed::registry_for(&plan.image, dir).map_err(|e| fail(Step::Registry)(e.to_string()))?;
    let annotations_json = serde_json::json!({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": super::provenance::SLSA_PROVENANCE_V1,
    });
    let stored = super::store::store(&registry, digest, &bytes, annotations_json)
        .await
        .map_err(|e| fail(Step::Registry)(e.to_string()))?;
    attestations_api(ctx, &signature.bundle, annotations).await?;
    Ok(Some(Published {
        attestation_digest: stored,
        bundle_path,
        identity: signature.identity,
        logged: signature.logged,
        took: started.elapsed(),
    }))
}

/// The bundle as a file under RUNNER_TEMP, for the job's later steps. A runner older than
/// v2.329.0 passes the host's path, which this container does not see: then no file, and a
/// notice (the registry's copy is the one that matters).
fn keep_bundle(
    runner_temp: Option<&str>,
    digest: &str,
    bytes: &[u8],
    annotations: &mut Vec<Annotation>,
) -> Option<PathBuf> {
    let hex = digest.trim_start_matches("sha256:");
    let name = format!("sdi-attestation-{}.sigstore.json", &hex[..hex.len().min(12)]);
    let dir = runner_temp.map(Path::new).filter(|d| d.is_dir());
    let kept = dir.map(|d| d.join(name)).map(|path| std::fs::write(&path, bytes).map(|()| path));
    match kept {
        Some(Ok(path)) => Some(path),
        Some(Err(e)) => {
            annotations.push(Annotation::warning(format!(
                "The Sigstore bundle was not written under RUNNER_TEMP ({e}); it is in the registry beside the image."
            )));
            None
        }
        None => {
            annotations.push(Annotation::notice(
                "The Sigstore bundle is in the registry beside the image; RUNNER_TEMP is not a directory here (a runner older than v2.329.0), so no attestation-bundle file.",
            ));
            None
        }
    }
}

/// GitHub's copy of the bundle, when a token is given. Without `attestations: write` the API
/// refuses (403): a warning naming the permission; the registry's copy stands.
async fn attestations_api(
    ctx: &Context,
    bundle: &serde_json::Value,
    annotations: &mut Vec<Annotation>,
) -> Result<(), SignError> {
    let Some(token) = &ctx.inputs.github_token else { return Ok(()) };
    let fail = |message: String| SignError { step: Step::AttestationsApi, message };
    let api = crate::github::GitHub::new(crate::github::ApiConfig::for_run(&ctx.api_url), token)
        .map_err(|e| fail(e.to_string()))?;
    match api.create_attestation(&ctx.repository.owner, &ctx.repository.name, bundle).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_forbidden() => {
            annotations.push(Annotation::warning(format!(
                "GitHub's attestations API refused the attestation ({e}): add `attestations: write` to the job's \
                 `permissions:` for `gh attestation verify` to find it there; the copy in the registry stands."
            )));
            Ok(())
        }
        Err(e) => Err(fail(e.to_string())),
    }
}
