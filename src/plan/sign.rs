//! Whether the run signs what it pushes (keyless, Sigstore). Only a trusted push that leaves a
//! final image — a build with tags, or the merge of per-platform digests — is signed; a
//! per-platform job's digest is signed as part of the merged index. Untrusted runs never sign,
//! whatever `sign` says: they never ask for a token.

use serde::Serialize;

use super::Mode;
use crate::context::{Context, InputError, SignMode};

/// Why a repository that is not public is not signed (here, and when the token says so).
pub const PRIVATE: &str = "the repository is not public: its signatures belong on GitHub's own Sigstore instance, \
     time-stamped (RFC 3161) rather than in the public transparency log, which would publish its names; this version \
     does not sign there";

/// Where the signature is certified and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignPlan {
    pub fulcio: String,
    pub rekor: String,
}

/// The run's signing, or why not (a notice), or an error when `sign: true` cannot be kept.
pub(super) fn sign_for(
    ctx: &Context,
    (mode, trusted, push): (Mode, bool, bool),
    notices: &mut Vec<String>,
) -> Result<Option<SignPlan>, InputError> {
    let signs_here = trusted && push && matches!(mode, Mode::Build | Mode::Merge);
    if ctx.inputs.sign == SignMode::Off || !signs_here {
        return Ok(None);
    }
    let required = ctx.inputs.sign == SignMode::Required;
    let mut refuse = |why: String| -> Result<Option<SignPlan>, InputError> {
        if required {
            return Err(InputError::new("sign", format!("is true, but {why}")));
        }
        notices.push(format!("Not signed: {why}."));
        Ok(None)
    };
    if ctx.event.repository.as_ref().is_some_and(|r| r.is_known_not_public()) {
        return refuse(PRIVATE.into());
    }
    if ctx.id_token.is_none() {
        return refuse(
            "the workflow does not grant the OIDC token a signature needs: add `id-token: write` (and \
             `attestations: write` for GitHub's attestations API) to the job's `permissions:`"
                .into(),
        );
    }
    let urls = &ctx.inputs.sigstore;
    Ok(Some(SignPlan { fulcio: urls.fulcio.clone(), rekor: urls.rekor.clone() }))
}
