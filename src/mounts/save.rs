//! After a trusted, successful build: which cache-mount stores the build changed, and saving
//! those only. A store left as restored keeps its layer from the image it was restored from:
//! the new image points at it (same repository, nothing uploaded for it).

use std::path::Path;

use super::image::StoresImage;
use super::registry::{finish, relabel, repository_and_tag, stores_image_of};
use super::{Filled, MountStatus, SaveEnd, Saved, empty_context, marked, marked_words, status_of};
use crate::engine::docker::{Docker, Ended, Signals, cause_line, random_token};
use crate::plan::mount_costs::{self, Costs};
use crate::plan::{MountsPlan, check_dockerfile, mount_dir, save_dockerfile, save_on_top_dockerfile};
use crate::step::Annotation;
use crate::verify::Needles;

/// What every helper build needs.
pub(crate) struct Helpers<'a> {
    pub docker: &'a mut Docker,
    pub signals: &'a mut Signals,
    pub plan: &'a MountsPlan,
    pub builder: &'a str,
    pub dir: &'a Path,
}

const FROM_CACHE: &str = "unchanged: its steps came from cache";
const AS_RESTORED: &str = "unchanged: its steps left it as restored";
/// A store's `(dir, fingerprint, empty|full)` as the check read it after the build.
type Fingerprint = (String, String, String);

const EMPTIED: &str = "emptied under the build: the saved copy is kept";
const REFILLED: &str = "not restored, so not saved: the saved copy is kept";

/// Stores that held files when restored and are empty now: a prune or BuildKit's garbage
/// collection emptied them under the build. Saving them would replace a good copy with nothing.
fn emptied(out: &[MountStatus], now: &[Fingerprint]) -> Vec<bool> {
    out.iter()
        .map(|s| {
            let had = s.restored_kib.is_some_and(|k| k > 0) && matches!(s.filled, Filled::FromImage | Filled::Warm);
            had && now.iter().any(|(d, _, state)| *d == mount_dir(&s.id) && state == "empty")
        })
        .collect()
}

/// Saves the stores that changed: none when no step that mounts one ran, or when the steps
/// that ran left every store as it was restored (same names, sizes and times).
pub(crate) async fn save_if_used(
    mut h: Helpers<'_>,
    (secrets, ran): (&Needles, &[(String, u64)]),
    (restored_from, costs): (Option<&Saved>, &Costs),
    annotations: &mut Vec<Annotation>,
    out: &mut [MountStatus],
) -> SaveEnd {
    if !h.plan.mounts.iter().any(|m| ran.iter().any(|(id, _)| *id == m.id)) {
        out.iter_mut().for_each(|s| s.unchanged = Some(FROM_CACHE));
        let why = "every step that uses them came from cache";
        annotations.push(Annotation::notice(format!("Cache mounts not saved: {why}, so they are unchanged.")));
        return SaveEnd::Skipped;
    }
    let run_arg = format!("SDI_RUN={}", random_token());
    // Nothing restored: every store is new, no need to look.
    let checked = out.iter().any(|s| s.restored_fp.is_some());
    let now = match checked {
        true => match fingerprints(&mut h, &run_arg).await {
            Ok(now) => now,
            Err(sig) => return SaveEnd::Cancelled(sig),
        },
        false => Vec::new(),
    };
    let (held, pruned) = held_back(out, &now, annotations);
    let changed: Vec<bool> = out
        .iter()
        .zip(&held)
        .map(|(s, held)| {
            !held
                && (s.restored_fp.is_none()
                    || !now.iter().any(|(d, fp, _)| *d == mount_dir(&s.id) && s.restored_fp.as_ref() == Some(fp)))
        })
        .collect();
    if !changed.contains(&true) {
        let mut as_restored = out.iter_mut().filter(|s| s.unchanged.is_none()).peekable();
        if as_restored.peek().is_some() {
            as_restored.for_each(|s| s.unchanged = Some(AS_RESTORED));
            let why = "the steps that use them left them as they were restored";
            annotations.push(Annotation::notice(format!("Cache mounts not saved: {why}, so they are unchanged.")));
        }
        // What this run measured is kept all the same: the same layers under a new label.
        if let Some(source) = restored_from.filter(|_| checked && !pruned) {
            relabel(h.dir, source, h.plan.save_to.as_deref(), costs, annotations).await;
        }
        // No helper ran when no store was restored (those left to their steps are not saved).
        return if checked { SaveEnd::Ran } else { SaveEnd::Skipped };
    }
    let (which, base) = what_to_save(out, (&changed, &held), restored_from, h.plan.save_to.as_deref());
    for i in (0..out.len()).filter(|i| !which.contains(i)) {
        out[i].unchanged.get_or_insert(AS_RESTORED);
    }
    let costs = mount_costs::format(costs);
    match save(&mut h, &which, (secrets, &run_arg, &costs), base, annotations, out).await {
        Some(sig) => SaveEnd::Cancelled(sig),
        None => SaveEnd::Ran,
    }
}

/// The stores whose saved copy stays as it is (`true`), and whether a prune ran under the
/// build: emptied under it (a warning each), or left to their steps as not worth restoring.
fn held_back(out: &mut [MountStatus], now: &[Fingerprint], annotations: &mut Vec<Annotation>) -> (Vec<bool>, bool) {
    let emptied = emptied(out, now);
    for (s, _) in out.iter_mut().zip(&emptied).filter(|(_, e)| **e) {
        s.unchanged = Some(EMPTIED);
        annotations.push(Annotation::warning(format!(
            "Cache mount '{}' was restored with {} KiB and is empty after the build (a prune or garbage collection on the builder): it is not saved, the saved copy is kept.",
            s.id,
            s.restored_kib.unwrap_or(0)
        )));
    }
    for s in out.iter_mut().filter(|s| matches!(s.filled, Filled::Refill(_))) {
        s.unchanged = Some(REFILLED);
    }
    let pruned = emptied.contains(&true);
    (out.iter().zip(emptied).map(|(s, e)| e || matches!(s.filled, Filled::Refill(_))).collect(), pruned)
}

/// Which stores to save (indexes), and on what: on top of the image they were restored from
/// (each stale store brought up to date there), unless a store's changes have piled up; then
/// written whole, a store keeping its layers only if it is them (filled from them and left so,
/// or held back).
fn what_to_save<'a>(
    out: &[MountStatus],
    (changed, held): (&[bool], &[bool]),
    restored_from: Option<&'a Saved>,
    save_to: Option<&str>,
) -> (Vec<usize>, Base<'a>) {
    let old = restored_from.and_then(|source| stores_image_of(source, save_to));
    let dir = |i: usize| mount_dir(&out[i].id);
    // The saved copy is not what the store holds: it changed, or was not filled from it.
    let stale: Vec<bool> = (0..out.len()).map(|i| changed[i] || out[i].filled != Filled::FromImage).collect();
    let on_top: Vec<usize> = (0..out.len()).filter(|&i| stale[i] && !held[i]).collect();
    match (old, restored_from) {
        (Some(old), Some(source)) if !on_top.iter().any(|&i| old.squash_due(&dir(i))) => {
            (on_top, Base::OnTop(source, old))
        }
        (old, _) => {
            let has = |i: usize| old.as_ref().is_some_and(|o| !o.layers_of(&dir(i)).is_empty());
            let keep: Vec<bool> = (0..out.len()).map(|i| (!stale[i] || held[i]) && has(i)).collect();
            let which = (0..out.len()).filter(|&i| !keep[i] && !held[i]).collect();
            (which, Base::Whole(old.filter(|_| keep.contains(&true))))
        }
    }
}

/// What a save builds on.
enum Base<'a> {
    /// The stores written whole on the helper image; those left as restored keep their layers
    /// from this image.
    Whole(Option<StoresImage>),
    /// Only what changed, on top of the image the stores were restored from.
    OnTop(&'a Saved, StoresImage),
}

/// Saves the stores `which` into `save_to`, one layer a store. By digest when the image must
/// still be finished (stores kept from `old` added) or proven (secrets in the build: a store
/// can hold what a step wrote while a secret was mounted): tagged only after that.
async fn save(
    h: &mut Helpers<'_>,
    which: &[usize],
    (secrets, run_arg, costs): (&Needles, &str, &str),
    base: Base<'_>,
    annotations: &mut Vec<Annotation>,
    out: &mut [MountStatus],
) -> Option<i32> {
    let save_to = h.plan.save_to.as_deref()?;
    let Ok((file, context)) = write_save_dockerfile(h, which, &base, costs) else {
        annotations
            .push(Annotation::warning("Cache mounts were not saved: the helper Dockerfile could not be written."));
        return None;
    };
    // Kept layers are added to a whole save's image before it is tagged.
    let old = match base {
        Base::Whole(old) => old,
        Base::OnTop(..) => None,
    };
    let by_digest = !secrets.is_empty() || old.is_some();
    let output = save_output(save_to, by_digest);
    let metadata = h.dir.join("mounts-metadata.json");
    let metadata_arg = metadata.display().to_string();
    let extra = ["--provenance=false", "--metadata-file", &metadata_arg];
    let args = save_build_args((h.builder, &file, run_arg), &output, &extra, &context);
    let stderr = match h.docker.output(&args, None, h.signals).await {
        Ok(Ended::Exited { code: 0, stderr, .. }) => stderr,
        Ok(Ended::Exited { stderr, .. }) => {
            let cause = cause_line(&stderr);
            annotations.push(Annotation::warning(format!("Cache mounts were not saved to {save_to}: {cause}")));
            return None;
        }
        Ok(Ended::Signalled(sig)) => return Some(sig),
        Err(e) => {
            annotations.push(Annotation::warning(format!("Cache mounts were not saved to {save_to}: {e}")));
            return None;
        }
    };
    read_sizes(&stderr, h.plan, annotations, out);
    if by_digest {
        let dirs: Vec<String> = h.plan.mounts.iter().map(|m| mount_dir(&m.id)).collect();
        let done = finish((h.dir, &metadata), save_to, old.as_ref(), &dirs, secrets).await;
        if let Err(warnings) = done {
            annotations.extend(warnings.into_iter().map(Annotation::warning));
            out.iter_mut().for_each(|s| s.saved_kib = None);
        }
    }
    None
}

/// The save helper's Dockerfile, written: `(its path, the empty context)`.
fn write_save_dockerfile(
    h: &Helpers<'_>,
    which: &[usize],
    base: &Base<'_>,
    costs: &str,
) -> std::io::Result<(String, String)> {
    let file = h.dir.join("mounts-save.Dockerfile");
    let text = match base {
        Base::Whole(_) => save_dockerfile(h.plan, which, costs),
        Base::OnTop(source, old) => {
            let dirs: Vec<String> = old.stores.iter().map(|(d, _)| d.clone()).collect();
            save_on_top_dockerfile(h.plan, which, (&source.pinned(), &dirs), costs)
        }
    };
    std::fs::write(&file, text)?;
    Ok((file.display().to_string(), empty_context(h.dir)?))
}

/// The save's `--output`: under its tag, or by digest to be finished (kept layers added, or
/// proven clean of secrets) before it is tagged.
fn save_output(save_to: &str, by_digest: bool) -> String {
    // zstd: the next run's restore decompresses it faster than gzip (BuildKit reads both).
    // Not forced: the helper image's own layers keep their blobs (nothing recompressed, and
    // the restore unpacks what the helper image already has).
    let compression = "compression=zstd";
    match by_digest {
        true => {
            let (repository, _) = repository_and_tag(save_to);
            format!("type=image,name={repository},push-by-digest=true,name-canonical=true,push=true,{compression}")
        }
        false => format!("type=image,name={save_to},push=true,{compression}"),
    }
}

/// The sizes the save printed, and the stores it left empty for being too big.
fn read_sizes(stderr: &str, plan: &MountsPlan, annotations: &mut Vec<Annotation>, out: &mut [MountStatus]) {
    for (dir, kib) in marked(stderr, "sdi-mount-size ") {
        if let Some(s) = status_of(out, &dir) {
            s.saved_kib = Some(kib);
        }
    }
    for (dir, kib) in marked(stderr, "sdi-mount-delta ") {
        if let Some(s) = status_of(out, &dir) {
            s.changed_kib = Some(kib);
        }
    }
    for words in marked_words(stderr, "sdi-mount-too-big ") {
        if let Some(s) = words.first().and_then(|dir| status_of(out, dir)) {
            s.too_big = true;
            s.saved_kib = None;
            annotations.push(Annotation::warning(format!(
                "Cache mount '{}' is bigger than cache-mounts-max-size ({} bytes): it was not saved.",
                s.id, plan.max_bytes
            )));
        }
    }
}

/// A save helper's build: the builder, file, run argument and output.
fn save_build_args<'a>(
    (builder, file, run_arg): (&'a str, &'a str, &'a str),
    output: &'a str,
    extra: &[&'a str],
    context: &'a str,
) -> Vec<&'a str> {
    let mut args = vec!["buildx", "build", "--builder", builder, "--file", file, "--build-arg", run_arg];
    args.extend(["--output", output]);
    args.extend(extra);
    args.extend(["--progress", "rawjson", context]);
    args
}

/// Each store's `(dir, fingerprint, empty|full)` as it is now, read in parallel without
/// exporting anything; none when the check could not run (every store then counts as changed).
async fn fingerprints(h: &mut Helpers<'_>, run_arg: &str) -> Result<Vec<Fingerprint>, i32> {
    let file = h.dir.join("mounts-check.Dockerfile");
    let Ok(context) = std::fs::write(&file, check_dockerfile(h.plan)).and_then(|()| empty_context(h.dir)) else {
        return Ok(Vec::new());
    };
    let file = file.display().to_string();
    let args = save_build_args((h.builder, &file, run_arg), "type=cacheonly", &[], &context);
    match h.docker.output(&args, None, h.signals).await {
        Ok(Ended::Exited { code: 0, stderr, .. }) => Ok(marked_words(&stderr, "sdi-mount-fp ")
            .into_iter()
            .filter_map(|w| Some((w.first()?.clone(), w.get(1)?.clone(), w.get(4).cloned().unwrap_or_default())))
            .collect()),
        Ok(Ended::Signalled(sig)) => Err(sig),
        _ => Ok(Vec::new()),
    }
}
