//! Tags after the scan: `imagetools create` points the tags at the proven digest, and the
//! digest they now name is read back from the registry.

use serde_json::Value;

use super::Outcome;
use super::docker::{Docker, Failure, Signals};
use super::progress::BuildError;

pub(super) fn failed(message: String) -> Outcome {
    Outcome::Failed { code: 1, error: Some(BuildError { message, location: None }) }
}

/// Runs `imagetools create` (tags over sources) and reads the digest the first tag now names
/// back from the registry.
pub(super) async fn push_tags(
    docker: &mut Docker,
    create: &[&str],
    tags: &[String],
    builder: Option<&str>,
    signals: &mut Signals,
) -> Result<Option<String>, Outcome> {
    match docker.run(create, None, signals).await {
        Ok(_) => {}
        Err(Failure::Cancelled(sig)) => return Err(Outcome::Cancelled { signal: sig }),
        Err(Failure::Failed(cause)) => return Err(failed(format!("pushing the tags failed: {cause}"))),
    }
    let first = tags.first().map(String::as_str).unwrap_or_default();
    // The builder's registry configuration (an HTTP registry, mirrors) applies to reading too.
    let mut inspect = vec!["buildx", "imagetools", "inspect"];
    if let Some(b) = builder {
        inspect.extend(["--builder", b]);
    }
    inspect.push(first);
    Ok(match docker.run(&inspect, None, signals).await {
        Ok(stdout) => stdout.lines().find_map(|l| l.strip_prefix("Digest:").map(|d| d.trim().to_string())),
        Err(Failure::Cancelled(sig)) => return Err(Outcome::Cancelled { signal: sig }),
        Err(Failure::Failed(_)) => None,
    })
}

/// After a clean scan: the plan's tags onto the pushed digest; the metadata then names them.
pub(super) async fn tag_scanned(
    plan: &crate::plan::BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    builder: &str,
    metadata: &mut Option<Value>,
    annotations: &mut Vec<super::Annotation>,
) -> Result<(), Outcome> {
    let digest = metadata.as_ref().and_then(|m| m.get("containerimage.digest")).and_then(Value::as_str);
    let source = format!("{}@{}", plan.image, digest.unwrap_or_default());
    let mut create: Vec<&str> = vec!["buildx", "imagetools", "create", "--builder", builder];
    for t in &plan.tags {
        create.extend(["--tag", t.as_str()]);
    }
    create.push(&source);
    match push_tags(docker, &create, &plan.tags, Some(builder), signals).await? {
        Some(tagged) => {
            if let Some(m) = metadata.as_mut() {
                m["containerimage.digest"] = Value::String(tagged);
                m["image.name"] = Value::String(plan.tags.join(","));
            }
        }
        None => annotations
            .push(super::Annotation::warning("The tags were pushed, but their digest could not be read back.")),
    }
    Ok(())
}
