//! Tags after the scan: `imagetools create` points the tags at the proven digest, and the
//! digest they now name is read back from the registry.

use serde_json::Value;

use crate::engine::docker::{Docker, Failure, Signals};
use crate::step::BuildError;
use crate::step::Outcome;

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
/// Tags of the image's own repository are PUT straight onto the scanned manifest (a request
/// each); tags elsewhere go through `imagetools create`, which copies the blobs there.
pub(super) async fn tag_scanned(
    plan: &crate::plan::BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    builder: &str,
    (dir, client): (&std::path::Path, Option<crate::verify::Registry>),
    metadata: &mut Option<Value>,
    annotations: &mut Vec<crate::step::Annotation>,
) -> Result<(), Outcome> {
    let digest = metadata.as_ref().and_then(|m| m.get("containerimage.digest")).and_then(Value::as_str);
    let digest = digest.unwrap_or_default().to_string();
    let prefix = format!("{}:", plan.image);
    let (own, elsewhere): (Vec<&String>, Vec<&String>) = plan.tags.iter().partition(|t| t.starts_with(&prefix));
    if !own.is_empty() {
        let names: Vec<&str> = own.iter().map(|t| &t[prefix.len()..]).collect();
        let put = async {
            let mut registry = match client {
                Some(r) => r,
                None => crate::verify::pushed::registry_for(&plan.image, dir)?,
            };
            registry.put_tags(&digest, &names).await
        };
        let put = tokio::select! {
            r = put => r,
            sig = signals.recv() => return Err(Outcome::Cancelled { signal: sig }),
        };
        put.map_err(|e| failed(format!("pushing the tags failed: {e}")))?;
    }
    if !elsewhere.is_empty() {
        let source = format!("{}@{digest}", plan.image);
        let mut create: Vec<&str> = vec!["buildx", "imagetools", "create", "--builder", builder];
        for t in &elsewhere {
            create.extend(["--tag", t.as_str()]);
        }
        create.push(&source);
        let others: Vec<String> = elsewhere.iter().map(|t| t.to_string()).collect();
        if push_tags(docker, &create, &others, Some(builder), signals).await?.is_none() {
            annotations.push(crate::step::Annotation::warning(
                "The tags were pushed, but their digest could not be read back.",
            ));
        }
    }
    if let Some(m) = metadata.as_mut() {
        m["image.name"] = Value::String(plan.tags.join(","));
    }
    Ok(())
}
