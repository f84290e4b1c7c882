//! Whether the run signs what it pushes (keyless, Sigstore). Only a trusted push that leaves a
//! final image — a build with tags, or the merge of per-platform digests — is signed; a
//! per-platform job's digest is signed as part of the merged index. Untrusted runs never sign,
//! whatever `sign` says: they never ask for a token.

use super::Mode;
use crate::context::{Context, InputError, SignMode, SigstoreUrls};

/// Where the signature is certified and what vouches for its time, by the repository's
/// visibility (the token's claim decides which).
pub type SignPlan = SigstoreUrls;

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
    if ctx.id_token.is_none() {
        let why = "the workflow does not grant the OIDC token a signature needs: add `id-token: write` (and \
                   `attestations: write` for GitHub's attestations API) to the job's `permissions:`";
        if ctx.inputs.sign == SignMode::Required {
            return Err(InputError::new("sign", format!("is true, but {why}")));
        }
        notices.push(format!("Not signed: {why}."));
        return Ok(None);
    }
    Ok(Some(ctx.inputs.sigstore.clone()))
}
