//! Carries `RUN --mount=type=cache` stores across ephemeral runners: helper builds on the
//! run's builder copy the saved contents into the stores before the build, and copy the stores
//! out into an image in the cache repository after a trusted, successful one. Neither step can
//! fail a build: a failure is a warning.

use std::path::Path;

pub mod image;
mod registry;
pub mod save;

use crate::engine::docker::{Docker, Ended, Signals, cause_line, random_token};
use crate::plan::mount_costs::{self, Costs, Start, StoreCost};
use crate::plan::{MountsPlan, mount_dir, restore_dockerfile};
use crate::step::Annotation;
pub(crate) use registry::Saved;

/// What happened to one store, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStatus {
    pub id: String,
    pub restored_kib: Option<u64>,
    /// What the restore found and did.
    pub filled: Filled,
    pub saved_kib: Option<u64>,
    /// Saved on top of the image it was restored from: the bytes of the files that changed.
    pub changed_kib: Option<u64>,
    pub too_big: bool,
    /// Not saved, and why: no step that mounts it ran, or they left it as it was restored.
    pub unchanged: Option<&'static str>,
    /// Names, sizes and times of its files as restored (`None`: nothing was restored).
    pub restored_fp: Option<String>,
}

/// How a store was found before the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filled {
    /// Empty, and nothing saved for it (or no restore).
    #[default]
    Nothing,
    /// Not restored: every step that mounts a store came from cache, so none was read.
    NotNeeded,
    /// Empty, and filled with the saved image's copy: it is exactly that image's layer.
    FromImage,
    /// It already held files (a builder that outlives runs): left as it was, the saved copy
    /// is older than what the builder has.
    Warm,
    /// Not restored: earlier runs measured its steps refilling it no slower than a restore
    /// followed by its steps on the restored store.
    Refill(StoreCost),
}

/// How the save after a build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SaveEnd {
    /// No helper ran: no step that uses the stores ran.
    Skipped,
    /// A helper ran (the check, and the save when something changed).
    Ran,
    /// The job was cancelled during it.
    Cancelled(i32),
}

/// How long the helpers took, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MountTimes {
    pub restore: Option<std::time::Duration>,
    pub save: Option<std::time::Duration>,
}

/// The words after `<marker>` of every line a helper's step printed starting with it (never
/// the step's command, which holds the marker too).
pub(super) fn marked_words(stderr: &str, marker: &str) -> Vec<Vec<String>> {
    crate::log::progress::step_output(stderr)
        .iter()
        .filter_map(|l| Some(l.strip_prefix(marker)?.split_whitespace().map(str::to_string).collect()))
        .collect()
}

/// `(dir, kib)` of every `<marker> <dir> <kib>` line the helper printed.
pub(super) fn marked(stderr: &str, marker: &str) -> Vec<(String, u64)> {
    marked_words(stderr, marker)
        .into_iter()
        .filter_map(|w| Some((w.first()?.clone(), w.get(1)?.parse().ok()?)))
        .collect()
}

fn statuses(plan: &MountsPlan) -> Vec<MountStatus> {
    plan.mounts
        .iter()
        .map(|m| MountStatus {
            id: m.id.clone(),
            restored_kib: None,
            filled: Filled::Nothing,
            saved_kib: None,
            changed_kib: None,
            too_big: false,
            unchanged: None,
            restored_fp: None,
        })
        .collect()
}

pub(super) fn status_of<'a>(statuses: &'a mut [MountStatus], dir: &str) -> Option<&'a mut MountStatus> {
    statuses.iter_mut().find(|s| mount_dir(&s.id) == dir)
}

/// The empty build context the helper builds use.
pub(super) fn empty_context(dir: &Path) -> std::io::Result<String> {
    let context = dir.join("mounts-context");
    std::fs::create_dir_all(&context)?;
    Ok(context.display().to_string())
}

/// What the restore left: each store's status, and the image they were restored from.
pub(super) struct Restored {
    pub statuses: Vec<MountStatus>,
    pub source: Option<Saved>,
}

/// What the run found of the saved stores: the image it restored them from, if it did, and
/// what earlier runs measured of each store.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub restored_from: Option<Saved>,
    pub costs: Costs,
}

/// The first saved stores image that exists, pinned to the digest its tag names now, and read
/// (its layers, its measurements). `None` (with a notice) when there is none yet.
pub(super) async fn find_saved(
    (docker, signals): (&mut Docker, &mut Signals),
    plan: &MountsPlan,
    (builder, dir): (&str, &Path),
    annotations: &mut Vec<Annotation>,
) -> Result<Option<Saved>, i32> {
    for candidate in &plan.restore_from {
        let args = ["buildx", "imagetools", "inspect", "--builder", builder, candidate.as_str()];
        match docker.output(&args, None, signals).await {
            Ok(Ended::Exited { code: 0, stdout, .. }) => {
                let digest = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("Digest:"))
                    .map(str::trim)
                    .filter(|d| crate::context::inputs::Digest::parse(d).is_some())
                    .map(str::to_string);
                let image = registry::read_saved(dir, candidate, digest.as_deref()).await;
                return Ok(Some(Saved { reference: candidate.clone(), digest, image }));
            }
            Ok(Ended::Signalled(sig)) => return Err(sig),
            _ => {}
        }
    }
    if !plan.restore_from.is_empty() {
        annotations.push(Annotation::notice(format!(
            "No saved cache-mount contents yet ({}): the stores start empty.",
            plan.restore_from.join(", ")
        )));
    }
    Ok(None)
}

/// Marks the stores that earlier runs found not worth restoring (a notice each) and returns
/// the plan of those left to restore.
pub(super) fn leave_to_steps(
    plan: &MountsPlan,
    costs: &Costs,
    statuses: &mut [MountStatus],
    annotations: &mut Vec<Annotation>,
) -> MountsPlan {
    let refill = mount_costs::not_worth(plan.mounts.iter().map(|m| (m.id.as_str(), mount_dir(&m.id))), costs);
    for s in statuses.iter_mut() {
        if let Some((_, cost)) = refill.iter().find(|(id, _)| *id == s.id) {
            s.filled = Filled::Refill(*cost);
            annotations.push(Annotation::notice(format!(
                "Cache mount '{}' is not restored: {}.",
                s.id,
                refill_reason(cost)
            )));
        }
    }
    let mounts = plan.mounts.iter().filter(|m| !refill.iter().any(|(id, _)| *id == m.id)).cloned().collect();
    MountsPlan { mounts, ..plan.clone() }
}

/// Why a store is left to its steps, in the words of the summary and the notice.
pub fn refill_reason(cost: &StoreCost) -> String {
    let secs = |ms: Option<u64>| format!("{:.1} s", ms.unwrap_or(0) as f64 / 1000.0);
    format!(
        "its steps refill it in {}; restoring took {} and its steps then {}",
        secs(cost.cold),
        secs(cost.restore),
        secs(cost.warm)
    )
}

/// What restoring and refilling each store cost, as the saved image said (`old`) and as this
/// run measured it: the time of the steps that mount a store, on an empty or a restored store,
/// and a restored store's share (by size) of the restore's time.
pub(super) fn measure(
    old: Costs,
    statuses: &[MountStatus],
    ran: &[(String, u64)],
    restore: Option<std::time::Duration>,
) -> Costs {
    let restored_kib: u64 =
        statuses.iter().filter(|s| s.filled == Filled::FromImage).filter_map(|s| s.restored_kib).sum();
    let restore_ms = restore.map_or(0, |d| d.as_millis() as u64);
    let mut costs = old;
    for s in statuses {
        let Some((_, steps)) = ran.iter().find(|(id, _)| *id == s.id) else { continue };
        let start = match s.filled {
            Filled::Nothing | Filled::Refill(_) => Start::Empty,
            Filled::FromImage => {
                let kib = s.restored_kib.unwrap_or(0);
                Start::Restored(restore_ms.saturating_mul(kib).checked_div(restored_kib).unwrap_or(restore_ms))
            }
            Filled::Warm | Filled::NotNeeded => Start::Other,
        };
        let dir = mount_dir(&s.id);
        let cost = mount_costs::measured(costs.get(&dir).copied().unwrap_or_default(), start, *steps);
        costs.insert(dir, cost);
    }
    costs
}

/// Nothing restored: no saved image, or no step that mounts a store ran (`Filled::NotNeeded`).
pub(super) fn not_restored(plan: &MountsPlan, filled: Filled) -> Restored {
    let mut statuses = statuses(plan);
    for s in &mut statuses {
        s.filled = filled;
    }
    Restored { statuses, source: None }
}

/// What the restore helper handles after a stop: the stores to restore, and those left to their
/// steps that a stopped step began to write on a fresh builder (they were empty before it, so
/// they are emptied again: their steps refill them from nothing, not from partial files). On a
/// builder that outlives runs such a store may have been whole before: it is left as it is.
pub(super) fn after_stop(plan: &MountsPlan, restoring: &MountsPlan, (touched, fresh): (&[String], bool)) -> Helper {
    let restores = |id: &String| restoring.mounts.iter().any(|m| &m.id == id);
    let emptied: Vec<String> =
        plan.mounts.iter().map(|m| m.id.clone()).filter(|id| fresh && touched.contains(id) && !restores(id)).collect();
    let mounts = plan.mounts.iter().filter(|m| restores(&m.id) || emptied.contains(&m.id)).cloned().collect();
    Helper { plan: MountsPlan { mounts, ..plan.clone() }, emptied, touched: touched.to_vec(), fresh }
}

/// The restore helper's stores (see `after_stop`), and what the stop left: the stores a
/// stopped step began to write, on a builder made for the run (`fresh`) or not.
pub(super) struct Helper {
    pub plan: MountsPlan,
    pub emptied: Vec<String>,
    pub touched: Vec<String>,
    pub fresh: bool,
}

/// Fills the stores of `helper` from `source` (and empties its `emptied`; see
/// `restore_dockerfile` for the stores a stopped step touched). The statuses are of the stores
/// restored: an emptied one keeps its own.
pub(super) async fn restore(
    (docker, signals): (&mut Docker, &mut Signals),
    helper: &Helper,
    (builder, dir): (&str, &Path),
    source: Saved,
    annotations: &mut Vec<Annotation>,
) -> Result<Restored, i32> {
    let plan = &helper.plan;
    let mut out = statuses(plan);
    out.retain(|s| !helper.emptied.contains(&s.id));
    let file = dir.join("mounts-restore.Dockerfile");
    let touched = (helper.touched.as_slice(), helper.fresh);
    let text = restore_dockerfile(plan, &source.pinned(), touched, &helper.emptied);
    let written = std::fs::write(&file, text).and_then(|()| empty_context(dir));
    let Ok(context) = written else {
        annotations
            .push(Annotation::warning("Cache mounts were not restored: the helper Dockerfile could not be written."));
        return Ok(Restored { statuses: out, source: None });
    };
    let file = file.display().to_string();
    let run_arg = format!("SDI_RUN={}", random_token());
    let args = ["buildx", "build", "--builder", builder, "--file", &file, "--build-arg", &run_arg];
    let args = [&args[..], &["--progress", "rawjson", &context]].concat();
    let restored = match docker.output(&args, None, signals).await {
        Ok(Ended::Exited { code: 0, stderr, .. }) => {
            for words in marked_words(&stderr, "sdi-restored ") {
                if let Some(s) = words.first().and_then(|dir| status_of(&mut out, dir)) {
                    // `sdi-restored <dir> <kib> <fingerprint> <image|warm|none>`
                    s.filled = match words.get(3).map(String::as_str) {
                        Some("image") => Filled::FromImage,
                        Some("warm") => Filled::Warm,
                        _ => Filled::Nothing,
                    };
                    if s.filled != Filled::Nothing {
                        s.restored_kib = words.get(1).and_then(|k| k.parse().ok());
                    }
                    s.restored_fp = words.get(2).cloned();
                }
            }
            true
        }
        Ok(Ended::Exited { stderr, .. }) => {
            annotations.push(Annotation::warning(format!(
                "Cache mounts were not restored from {}: {}",
                source.reference,
                cause_line(&stderr)
            )));
            false
        }
        Ok(Ended::Signalled(sig)) => return Err(sig),
        Err(e) => {
            annotations
                .push(Annotation::warning(format!("Cache mounts were not restored from {}: {e}", source.reference)));
            false
        }
    };
    Ok(Restored { statuses: out, source: restored.then_some(source) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn line(json: serde_json::Value) -> String {
        json.to_string()
    }

    fn log(vertex: &str, text: &str) -> String {
        let data = base64::engine::general_purpose::STANDARD.encode(text);
        line(serde_json::json!({"logs": [{"vertex": vertex, "stream": 1, "data": data}]}))
    }

    /// Seen on the real engine: two helper steps print in turn, and the plain rendering names
    /// a step again (its command quotes the marker) after its output. Only the output counts.
    #[test]
    fn markers_are_read_from_what_the_steps_printed_never_from_their_commands() {
        let cmd = |dir: &str| format!("[r 2/2] RUN echo \"sdi-restored {dir} $(du -sk /sdi-mount | cut -f1) $how\"");
        let vertex = |d: &str, name: String, done: bool| {
            let t = "2026-12-02T08:29:28.295012283Z";
            let v = match done {
                true => serde_json::json!({"digest": d, "name": name, "started": t, "completed": t}),
                false => serde_json::json!({"digest": d, "name": name, "started": t}),
            };
            line(serde_json::json!({ "vertexes": [v] }))
        };
        let stream = [
            vertex("sha256:a", cmd("m-a"), false),
            vertex("sha256:b", cmd("m-b"), false),
            log("sha256:a", "/sdi-mount/lock 7 1796200167\nsdi-restored m-a 8 "),
            log("sha256:b", "sdi-restored m-b 4 fb image\n"),
            log("sha256:a", "fa image\n"),
            vertex("sha256:b", cmd("m-b"), true),
            vertex("sha256:a", cmd("m-a"), true),
        ]
        .join("\n");
        let words = marked_words(&stream, "sdi-restored ");
        let expected = [["m-a", "8", "fa", "image"], ["m-b", "4", "fb", "image"]];
        assert_eq!(words, expected.map(|w| w.map(String::from).to_vec()).to_vec());
    }
}
