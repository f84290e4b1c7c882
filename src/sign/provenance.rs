//! What is signed: an in-toto statement about the pushed image, with SLSA provenance v1 in the
//! shape actions/attest-build-provenance writes, built from the claims of the run's OIDC token
//! (the same claims Fulcio writes into the certificate, so the two cannot disagree).

use serde_json::{Value, json};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
pub const GITHUB_BUILD_TYPE: &str = "https://actions.github.io/buildtypes/workflow/v1";

/// The token's claims a provenance statement reads; `None` names the first one missing.
pub fn statement(claims: &Value, server_url: &str, image: &str, digest: &str) -> Result<Value, &'static str> {
    let claim = |name: &'static str| -> Result<String, &'static str> {
        match &claims[name] {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(name),
        }
    };
    let repository = claim("repository")?;
    let workflow_ref = claim("workflow_ref")?;
    let workflow_path =
        workflow_ref.trim_start_matches(&format!("{repository}/")).split('@').next().unwrap_or_default();
    let git_ref = claim("ref")?;
    let hex = digest.strip_prefix("sha256:").ok_or("the image's sha256 digest")?;
    let server = server_url.trim_end_matches('/');
    Ok(json!({
        "_type": STATEMENT_TYPE,
        "subject": [{ "name": image, "digest": { "sha256": hex } }],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": GITHUB_BUILD_TYPE,
                "externalParameters": {
                    "workflow": { "ref": git_ref, "repository": format!("{server}/{repository}"), "path": workflow_path }
                },
                "internalParameters": {
                    "github": {
                        "event_name": claim("event_name")?,
                        "repository_id": claim("repository_id")?,
                        "repository_owner_id": claim("repository_owner_id")?,
                        "runner_environment": claim("runner_environment")?,
                    }
                },
                "resolvedDependencies": [{
                    "uri": format!("git+{server}/{repository}@{git_ref}"),
                    "digest": { "gitCommit": claim("sha")? }
                }]
            },
            "runDetails": {
                "builder": { "id": format!("{server}/{}", claim("job_workflow_ref")?) },
                "metadata": {
                    "invocationId": format!(
                        "{server}/{repository}/actions/runs/{}/attempts/{}",
                        claim("run_id")?,
                        claim("run_attempt")?
                    )
                }
            }
        }
    }))
}

/// The claims of a JWT, read without checking its signature: the token comes from the runner,
/// and Fulcio checks it.
pub fn claims(token: &str) -> Option<Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_reads_the_tokens_claims() {
        let claims = json!({
            "repository": "acme/app", "workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
            "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main", "ref": "refs/heads/main",
            "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "event_name": "push", "repository_id": "42",
            "repository_owner_id": 7, "runner_environment": "github-hosted", "run_id": "99", "run_attempt": "1"
        });
        let s = statement(&claims, "https://github.com/", "ghcr.io/acme/app", "sha256:abcd").unwrap();
        assert_eq!(s["subject"][0]["digest"]["sha256"], "abcd");
        let p = &s["predicate"];
        assert_eq!(p["buildDefinition"]["externalParameters"]["workflow"]["path"], ".github/workflows/release.yml");
        assert_eq!(p["buildDefinition"]["internalParameters"]["github"]["repository_owner_id"], "7");
        assert_eq!(
            p["runDetails"]["builder"]["id"],
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
        );
        assert_eq!(
            p["runDetails"]["metadata"]["invocationId"],
            "https://github.com/acme/app/actions/runs/99/attempts/1"
        );
        let mut missing = claims.clone();
        missing.as_object_mut().unwrap().remove("sha");
        assert_eq!(statement(&missing, "https://github.com", "i", "sha256:ab"), Err("sha"));
    }
}
