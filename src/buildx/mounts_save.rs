//! After a trusted, successful build: which cache-mount stores the build changed, and saving
//! those only. A store left as restored keeps its layer from the image it was restored from:
//! the new image points at it (same repository, nothing uploaded for it).

use std::path::Path;

use serde_json::Value;

use super::Annotation;
use super::docker::{Docker, Ended, Signals, cause_line, random_token};
use super::mounts::{
    Filled, MountStatus, SaveEnd, Saved, empty_context, marked, marked_words, read_stores_image, status_of,
};
use crate::plan::mount_costs::{self, Costs};
use crate::plan::{MountsPlan, check_dockerfile, mount_dir, save_dockerfile, save_on_top_dockerfile};
use crate::stores_image::StoresImage;
use crate::verify::{Blobs, Needles, Registry};

/// What every helper build needs.
pub(super) struct Helpers<'a> {
    pub docker: &'a mut Docker,
    pub signals: &'a mut Signals,
    pub plan: &'a MountsPlan,
    pub builder: &'a str,
    pub dir: &'a Path,
}

const FROM_CACHE: &str = "unchanged: its steps came from cache";
const AS_RESTORED: &str = "unchanged: its steps left it as restored";
const EMPTIED: &str = "emptied under the build: the saved copy is kept";
const REFILLED: &str = "not restored, so not saved: the saved copy is kept";

/// Stores that held files when restored and are empty now: a prune or BuildKit's garbage
/// collection emptied them under the build. Saving them would replace a good copy with nothing.
fn emptied(out: &[MountStatus], now: &[(String, String, String)]) -> Vec<bool> {
    out.iter()
        .map(|s| {
            let had = s.restored_kib.is_some_and(|k| k > 0) && matches!(s.filled, Filled::FromImage | Filled::Warm);
            had && now.iter().any(|(d, _, state)| *d == mount_dir(&s.id) && state == "empty")
        })
        .collect()
}

/// Saves the stores that changed: none when no step that mounts one ran, or when the steps
/// that ran left every store as it was restored (same names, sizes and times).
pub(super) async fn save_if_used(
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
    let emptied = emptied(out, &now);
    for (s, _) in out.iter_mut().zip(&emptied).filter(|(_, e)| **e) {
        s.unchanged = Some(EMPTIED);
        annotations.push(Annotation::warning(format!(
            "Cache mount '{}' was restored with {} KiB and is empty after the build (a prune or garbage collection on the builder): it is not saved, the saved copy is kept.",
            s.id,
            s.restored_kib.unwrap_or(0)
        )));
    }
    // A prune under the build makes what this run measured doubtful.
    let pruned = emptied.contains(&true);
    // Left to its steps, as not worth restoring: the saved copy is kept as well.
    for s in out.iter_mut().filter(|s| matches!(s.filled, Filled::Refill(_))) {
        s.unchanged = Some(REFILLED);
    }
    let emptied: Vec<bool> = out.iter().zip(emptied).map(|(s, e)| e || matches!(s.filled, Filled::Refill(_))).collect();
    let changed: Vec<bool> = out
        .iter()
        .zip(&emptied)
        .map(|(s, emptied)| {
            !emptied
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
    // The image they came from says which layers hold each store.
    let old = match restored_from {
        Some(source) => stores_image_of(source, h.plan.save_to.as_deref()),
        None => None,
    };
    let dir = |i: usize| mount_dir(&out[i].id);
    // The saved copy is not what the store holds: it changed, or was not filled from it.
    let stale: Vec<bool> = (0..out.len()).map(|i| changed[i] || out[i].filled != Filled::FromImage).collect();
    let on_top: Vec<usize> = (0..out.len()).filter(|&i| stale[i] && !emptied[i]).collect();
    // What changed goes on top of that image, unless a store's changes have piled up.
    let (which, base) = match (old, restored_from) {
        (Some(old), Some(source)) if !on_top.iter().any(|&i| old.squash_due(&dir(i))) => {
            (on_top, Base::OnTop(source, old))
        }
        (old, _) => {
            // Written whole; a store keeps its layers only if it is them: filled from them and
            // left so, or emptied under the build (the layers it had).
            let has = |i: usize| old.as_ref().is_some_and(|o| !o.layers_of(&dir(i)).is_empty());
            let keep: Vec<bool> = (0..out.len()).map(|i| (!stale[i] || emptied[i]) && has(i)).collect();
            let which = (0..out.len()).filter(|&i| !keep[i] && !emptied[i]).collect();
            (which, Base::Whole(old.filter(|_| keep.contains(&true))))
        }
    };
    for i in (0..out.len()).filter(|i| !which.contains(i)) {
        out[i].unchanged.get_or_insert(AS_RESTORED);
    }
    let costs = mount_costs::format(costs);
    match save(&mut h, &which, (secrets, &run_arg, &costs), base, annotations, out).await {
        Some(sig) => SaveEnd::Cancelled(sig),
        None => SaveEnd::Ran,
    }
}

/// Points the saved tag at the image the stores were restored from, with `costs` as its
/// measurements, when they differ from what it says: no layer is pushed.
async fn relabel(dir: &Path, source: &Saved, save_to: Option<&str>, costs: &Costs, annotations: &mut Vec<Annotation>) {
    let (Some(image), Some(save_to)) = (stores_image_of(source, save_to), save_to) else { return };
    let label = mount_costs::format(costs);
    if image.label(mount_costs::COSTS_LABEL) == Some(label.as_str()) {
        return;
    }
    let (repository, tag) = repository_and_tag(save_to);
    let pushed = async {
        let mut registry = super::scan::registry_for(repository, dir)?;
        // Another job's save since the restore is newer than this image: it stays.
        let now = crate::oci::sha256(&registry.manifest_named(tag).await?);
        if source.digest.as_deref() != Some(now.as_str()) {
            return Ok(());
        }
        registry.push_image(image.with_label(mount_costs::COSTS_LABEL, &label), tag).await
    };
    if let Err(e) = pushed.await {
        annotations.push(Annotation::notice(format!("The cache mounts' measurements were not kept in {save_to}: {e}")));
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

/// `(repository, tag)` of a stores image reference (the plan always writes `<image>:<tag>`).
pub(super) fn repository_and_tag(reference: &str) -> (&str, &str) {
    reference.rsplit_once(':').unwrap_or((reference, "latest"))
}

/// The saved stores image the stores were restored from, as read when it was found, if it is
/// in the repository the stores are saved to (its layers can then be reused).
fn stores_image_of(source: &Saved, save_to: Option<&str>) -> Option<StoresImage> {
    let (repository, _) = repository_and_tag(&source.reference);
    (save_to.map(|s| repository_and_tag(s).0) == Some(repository)).then(|| source.image.clone())?
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
    let file = h.dir.join("mounts-save.Dockerfile");
    let text = match &base {
        Base::Whole(_) => save_dockerfile(h.plan, which, costs),
        Base::OnTop(source, old) => {
            let dirs: Vec<String> = old.stores.iter().map(|(d, _)| d.clone()).collect();
            save_on_top_dockerfile(h.plan, which, (&source.pinned(), &dirs), costs)
        }
    };
    let written = std::fs::write(&file, text).and_then(|()| empty_context(h.dir));
    let Ok(context) = written else {
        annotations
            .push(Annotation::warning("Cache mounts were not saved: the helper Dockerfile could not be written."));
        return None;
    };
    let (repository, _) = repository_and_tag(save_to);
    // Kept layers are added to a whole save's image before it is tagged.
    let old = match base {
        Base::Whole(old) => old,
        Base::OnTop(..) => None,
    };
    let by_digest = !secrets.is_empty() || old.is_some();
    // zstd: the next run's restore decompresses it faster than gzip (BuildKit reads both).
    // Not forced: the helper image's own layers keep their blobs (nothing recompressed, and
    // the restore unpacks what the helper image already has).
    let compression = "compression=zstd";
    let output = if by_digest {
        format!("type=image,name={repository},push-by-digest=true,name-canonical=true,push=true,{compression}")
    } else {
        format!("type=image,name={save_to},push=true,{compression}")
    };
    let metadata = h.dir.join("mounts-metadata.json");
    let (file, metadata_arg) = (file.display().to_string(), metadata.display().to_string());
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

/// The stores pushed by digest: add the kept stores' layers, prove the image clean when there
/// are secrets, then point `save_to` at it. `Err`: why nothing was tagged.
async fn finish(
    (dir, metadata): (&Path, &Path),
    save_to: &str,
    old: Option<&StoresImage>,
    dirs: &[String],
    secrets: &Needles,
) -> Result<(), Vec<String>> {
    let failed = |why: String| vec![format!("Cache mounts were pushed but {save_to} was not tagged: {why}.")];
    let digest = std::fs::read_to_string(metadata)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|m| m.get("containerimage.digest")?.as_str().map(str::to_string))
        .ok_or_else(|| failed("buildx reported no digest".into()))?;
    let (repository, tag) = repository_and_tag(save_to);
    let mut registry = super::scan::registry_for(repository, dir).map_err(|e| failed(e.to_string()))?;
    // With kept stores, the image to tag is made here: scanned from memory, then pushed.
    let staged = match old {
        None => None,
        Some(old) => {
            let new = read_stores_image(&mut registry, &digest).await.map_err(|e| failed(e.to_string()))?;
            let image = new.and_then(|new| new.with_reused(old, dirs));
            Some(image.ok_or_else(|| failed("the pushed image is not a stores image".into()))?)
        }
    };
    if !secrets.is_empty() {
        let report = match &staged {
            Some((manifest, config)) => {
                let mut blobs = Staged { registry: &mut registry, manifest, config };
                crate::verify::scan(&mut blobs, &crate::oci::sha256(manifest), secrets).await
            }
            None => crate::verify::scan(&mut registry, &digest, secrets).await,
        };
        match report {
            Ok(r) if r.hits.is_empty() => {}
            Ok(r) => return Err(r.hits.iter().map(|hit| format!("Cache mounts not saved: {hit}.")).collect()),
            Err(e) => {
                return Err(vec![format!("Cache mounts not saved: they could not be checked for secrets ({e}).")]);
            }
        }
    }
    match staged {
        Some(image) => registry.push_image(image, tag).await,
        None => registry.put_tags(&digest, &[tag]).await,
    }
    .map_err(|e| failed(e.to_string()))
}

/// An image not pushed yet: its manifest and config from memory, its layers from the registry.
struct Staged<'a> {
    registry: &'a mut Registry,
    manifest: &'a [u8],
    config: &'a [u8],
}

impl Blobs for Staged<'_> {
    async fn manifest(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        match digest == crate::oci::sha256(self.manifest) {
            true => Ok(self.manifest.to_vec()),
            false => self.registry.manifest(digest).await,
        }
    }
    async fn blob(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        match digest == crate::oci::sha256(self.config) {
            true => Ok(self.config.to_vec()),
            false => self.registry.blob(digest).await,
        }
    }
    async fn layer(&mut self, digest: &str) -> std::io::Result<crate::verify::LayerReader> {
        self.registry.layer(digest).await
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
async fn fingerprints(h: &mut Helpers<'_>, run_arg: &str) -> Result<Vec<(String, String, String)>, i32> {
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
