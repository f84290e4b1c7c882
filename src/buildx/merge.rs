//! Merge mode: per-platform digests combined into one tagged manifest list. A dry run checks
//! the combination (every digest resolves, platforms distinct) before anything is pushed.

use serde_json::Value;

use super::RunResult;
use super::tag::{failed, push_tags};
use crate::engine::docker::{Docker, Failure, Signals};
use crate::plan::BuildPlan;
use crate::step::{Annotation, Outcome};

/// `os/arch[/variant]` of an index entry; `None` for attestation manifests (`unknown/unknown`).
fn entry_platform(m: &Value) -> Option<String> {
    let p = m.get("platform")?;
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    if os == "unknown" {
        return None;
    }
    Some(match p.get("variant").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

/// Two sources of one platform in a manifest list: the first pair found.
pub fn duplicate_platform(index: &Value) -> Option<(String, String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for m in index.get("manifests")?.as_array()? {
        let Some(platform) = entry_platform(m) else { continue };
        let digest = m.get("digest").and_then(Value::as_str).unwrap_or("?").to_string();
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == platform) {
            return Some((platform, first.clone(), digest));
        }
        seen.push((platform, digest));
    }
    None
}

/// `imagetools create` over the plan's sources; `builder` only when its record is visible
/// (it lends its registry configuration, nothing else).
pub(super) async fn merge(
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    annotations: &mut Vec<Annotation>,
) -> RunResult {
    if plan.argv.is_empty() {
        annotations.push(Annotation::notice(format!(
            "Nothing merged: {}",
            plan.warnings
                .iter()
                .find(|w| w.starts_with("No merge"))
                .map(String::as_str)
                .unwrap_or("this run does not push.")
        )));
        return (Outcome::Succeeded, None, None);
    }
    let mut create: Vec<&str> = plan.argv[1..].iter().map(String::as_str).collect();
    if let Some(i) = create.iter().position(|a| *a == "--builder") {
        let name = create[i + 1];
        if name != "default" && !docker.has_builder_record(name) {
            create.drain(i..i + 2);
        }
    }
    let builder = create.iter().position(|a| *a == "--builder").map(|i| create[i + 1]);
    let mut dry = create.clone();
    dry.insert(3, "--dry-run");
    let index: Value = match docker.run(&dry, None, signals).await {
        Ok(stdout) => match serde_json::from_str(stdout.trim_end()) {
            Ok(v) => v,
            Err(e) => {
                return (failed(format!("imagetools create --dry-run printed no manifest list: {e}")), None, None);
            }
        },
        Err(Failure::Cancelled(sig)) => return (Outcome::Cancelled { signal: sig }, None, None),
        Err(Failure::Failed(cause)) => {
            return (failed(format!("the digests cannot be merged: {cause}")), None, None);
        }
    };
    if let Some((platform, a, b)) = duplicate_platform(&index) {
        let why = format!("{a} and {b} are both {platform}: each per-platform job must build a different platform");
        return (failed(why), None, None);
    }
    let digest = match push_tags(docker, &create, &plan.tags, builder, signals).await {
        Ok(d) => d,
        Err(outcome) => return (outcome, None, None),
    };
    let mut platforms: Vec<String> =
        index["manifests"].as_array().map(|m| m.iter().filter_map(entry_platform).collect()).unwrap_or_default();
    platforms.sort();
    let mut metadata = serde_json::json!({ "image.name": plan.tags.join(","), "platforms": platforms });
    match digest {
        Some(d) => metadata["containerimage.digest"] = Value::String(d),
        None => annotations.push(Annotation::warning(format!(
            "The manifest list was pushed, but its digest could not be read back from {}.",
            plan.tags.first().map(String::as_str).unwrap_or_default()
        ))),
    }
    (Outcome::Succeeded, Some(metadata), None)
}
