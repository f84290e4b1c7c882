//! Carries `RUN --mount=type=cache` stores across ephemeral runners: helper builds on the
//! run's builder copy the saved contents into the stores before the build, and copy the stores
//! out into an image in the cache repository after a trusted, successful one. Neither step can
//! fail a build: a failure is a warning.

use std::path::Path;

use serde_json::Value;

use super::Annotation;
use super::docker::{Docker, Ended, Signals, cause_line, random_token};
use super::progress::Progress;
use crate::plan::{MountsPlan, mount_dir, restore_dockerfile, save_dockerfile};

/// What happened to one store, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStatus {
    pub id: String,
    pub restored_kib: Option<u64>,
    pub saved_kib: Option<u64>,
    pub too_big: bool,
    /// Not saved, and why: no step that mounts it ran, or they left it as it was restored.
    pub unchanged: Option<&'static str>,
    /// Names, sizes and times of its files as restored (`None`: nothing was restored).
    pub restored_fp: Option<String>,
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

/// The words after `<marker>` of every line the helper printed with it.
fn marked_words(stderr: &str, marker: &str) -> Vec<Vec<String>> {
    let mut progress = Progress::default();
    stderr
        .lines()
        .flat_map(|l| progress.feed(l))
        .filter_map(|l| Some(l[l.find(marker)? + marker.len()..].split_whitespace().map(str::to_string).collect()))
        .collect()
}

/// `(dir, kib)` of every `<marker> <dir> <kib>` line the helper printed.
fn marked(stderr: &str, marker: &str) -> Vec<(String, u64)> {
    marked_words(stderr, marker)
        .into_iter()
        .filter_map(|w| Some((w.first()?.clone(), w.get(1)?.parse().ok()?)))
        .collect()
}

/// `(dir, word)` of the word at `at` after `<marker> <dir>` (a store's fingerprint).
fn marked_at(stderr: &str, marker: &str, at: usize) -> Vec<(String, String)> {
    marked_words(stderr, marker).into_iter().filter_map(|w| Some((w.first()?.clone(), w.get(at)?.clone()))).collect()
}

fn statuses(plan: &MountsPlan) -> Vec<MountStatus> {
    plan.mounts
        .iter()
        .map(|m| MountStatus {
            id: m.id.clone(),
            restored_kib: None,
            saved_kib: None,
            too_big: false,
            unchanged: None,
            restored_fp: None,
        })
        .collect()
}

fn status_of<'a>(statuses: &'a mut [MountStatus], dir: &str) -> Option<&'a mut MountStatus> {
    statuses.iter_mut().find(|s| mount_dir(&s.id) == dir)
}

/// The empty build context the helper builds use.
fn empty_context(dir: &Path) -> std::io::Result<String> {
    let context = dir.join("mounts-context");
    std::fs::create_dir_all(&context)?;
    Ok(context.display().to_string())
}

/// Fills the stores from the first saved image that exists.
pub(super) async fn restore(
    docker: &mut Docker,
    signals: &mut Signals,
    plan: &MountsPlan,
    builder: &str,
    dir: &Path,
    annotations: &mut Vec<Annotation>,
) -> Result<Vec<MountStatus>, i32> {
    let mut out = statuses(plan);
    let mut source = None;
    for candidate in &plan.restore_from {
        let args = ["buildx", "imagetools", "inspect", "--builder", builder, candidate.as_str()];
        match docker.output(&args, None, signals).await {
            Ok(Ended::Exited { code: 0, .. }) => {
                source = Some(candidate.clone());
                break;
            }
            Ok(Ended::Signalled(sig)) => return Err(sig),
            _ => {}
        }
    }
    let Some(source) = source else {
        if !plan.restore_from.is_empty() {
            annotations.push(Annotation::notice(format!(
                "No saved cache-mount contents yet ({}): the stores start empty.",
                plan.restore_from.join(", ")
            )));
        }
        return Ok(out);
    };
    let file = dir.join("mounts-restore.Dockerfile");
    let written = std::fs::write(&file, restore_dockerfile(plan, &source)).and_then(|()| empty_context(dir));
    let Ok(context) = written else {
        annotations
            .push(Annotation::warning("Cache mounts were not restored: the helper Dockerfile could not be written."));
        return Ok(out);
    };
    let file = file.display().to_string();
    let args = ["buildx", "build", "--builder", builder, "--file", &file, "--progress", "rawjson", &context];
    match docker.output(&args, None, signals).await {
        Ok(Ended::Exited { code: 0, stderr, .. }) => {
            // `sdi-restored <dir> <kib> <fingerprint>`
            for words in marked_words(&stderr, "sdi-restored ") {
                if let Some(s) = words.first().and_then(|dir| status_of(&mut out, dir)) {
                    s.restored_kib = words.get(1).and_then(|k| k.parse().ok());
                    s.restored_fp = words.get(2).cloned();
                }
            }
        }
        Ok(Ended::Exited { stderr, .. }) => {
            annotations.push(Annotation::warning(format!(
                "Cache mounts were not restored from {source}: {}",
                cause_line(&stderr)
            )));
        }
        Ok(Ended::Signalled(sig)) => return Err(sig),
        Err(e) => annotations.push(Annotation::warning(format!("Cache mounts were not restored from {source}: {e}"))),
    }
    Ok(out)
}

/// Saves the stores into `save_to`, one layer a store. With secrets in the build, the saved
/// image is pushed by digest and scanned like the image itself, and tagged only when clean: a
/// store can hold what a step wrote while a secret was mounted.
#[allow(clippy::too_many_arguments)]
pub(super) async fn save(
    docker: &mut Docker,
    signals: &mut Signals,
    plan: &MountsPlan,
    builder: &str,
    dir: &Path,
    (secrets, run_arg): (&crate::verify::Needles, &str),
    annotations: &mut Vec<Annotation>,
    out: &mut [MountStatus],
) -> Option<i32> {
    let Some(save_to) = &plan.save_to else { return None };
    let file = dir.join("mounts-save.Dockerfile");
    let written = std::fs::write(&file, save_dockerfile(plan)).and_then(|()| empty_context(dir));
    let Ok(context) = written else {
        annotations
            .push(Annotation::warning("Cache mounts were not saved: the helper Dockerfile could not be written."));
        return None;
    };
    let repository = save_to.rsplit_once(':').map(|(r, _)| r).unwrap_or(save_to);
    let scan = !secrets.is_empty();
    // zstd: the next run's restore decompresses it faster than gzip (BuildKit reads both).
    let compression = "compression=zstd,force-compression=true";
    let output = if scan {
        format!("type=image,name={repository},push-by-digest=true,name-canonical=true,push=true,{compression}")
    } else {
        format!("type=image,name={save_to},push=true,{compression}")
    };
    let metadata = dir.join("mounts-metadata.json");
    let (file, metadata_arg) = (file.display().to_string(), metadata.display().to_string());
    let extra = ["--provenance=false", "--metadata-file", &metadata_arg];
    let args = save_build_args((builder, &file, run_arg), &output, &extra, &context);
    let stderr = match docker.output(&args, None, signals).await {
        Ok(Ended::Exited { code: 0, stderr, .. }) => stderr,
        Ok(Ended::Exited { stderr, .. }) => {
            annotations.push(Annotation::warning(format!(
                "Cache mounts were not saved to {save_to}: {}",
                cause_line(&stderr)
            )));
            return None;
        }
        Ok(Ended::Signalled(sig)) => return Some(sig),
        Err(e) => {
            annotations.push(Annotation::warning(format!("Cache mounts were not saved to {save_to}: {e}")));
            return None;
        }
    };
    for (dir, kib) in marked(&stderr, "sdi-mount-size ") {
        if let Some(s) = status_of(out, &dir) {
            s.saved_kib = Some(kib);
        }
    }
    for words in marked_words(&stderr, "sdi-mount-too-big ") {
        if let Some(s) = words.first().and_then(|dir| status_of(out, dir)) {
            s.too_big = true;
            s.saved_kib = None;
            annotations.push(Annotation::warning(format!(
                "Cache mount '{}' is bigger than cache-mounts-max-size ({} bytes): it was not saved.",
                s.id, plan.max_bytes
            )));
        }
    }
    if !scan {
        return None;
    }
    let target = (repository, save_to.as_str(), builder);
    prove_and_tag(docker, signals, target, (dir, &metadata), secrets, annotations, out).await
}

/// With secrets in the build, the saved stores were pushed by digest: scan them like the image
/// itself, and only then point `save_to` at them.
async fn prove_and_tag(
    docker: &mut Docker,
    signals: &mut Signals,
    (repository, save_to, builder): (&str, &str, &str),
    (dir, metadata): (&Path, &Path),
    secrets: &crate::verify::Needles,
    annotations: &mut Vec<Annotation>,
    out: &mut [MountStatus],
) -> Option<i32> {
    let digest = std::fs::read_to_string(metadata)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|m| m.get("containerimage.digest")?.as_str().map(str::to_string));
    let Some(digest) = digest else {
        annotations.push(Annotation::warning("Cache mounts were pushed but not tagged: buildx reported no digest."));
        return None;
    };
    let report = match super::scan::registry_for(repository, dir) {
        Ok(mut r) => crate::verify::scan(&mut r, &digest, secrets).await,
        Err(e) => Err(e),
    };
    match report {
        Ok(r) if r.hits.is_empty() => {}
        Ok(r) => {
            for hit in &r.hits {
                annotations.push(Annotation::warning(format!("Cache mounts not saved: {hit}.")));
            }
            for s in out.iter_mut() {
                s.saved_kib = None;
            }
            return None;
        }
        Err(e) => {
            annotations.push(Annotation::warning(format!(
                "Cache mounts not saved: they could not be checked for secrets ({e})."
            )));
            return None;
        }
    }
    let source = format!("{repository}@{digest}");
    let args = ["buildx", "imagetools", "create", "--builder", builder, "--tag", save_to, source.as_str()];
    match docker.output(&args, None, signals).await {
        Ok(Ended::Exited { code: 0, .. }) => None,
        Ok(Ended::Signalled(sig)) => Some(sig),
        _ => {
            annotations
                .push(Annotation::warning(format!("Cache mounts were pushed but {save_to} could not be tagged.")));
            None
        }
    }
}

/// Saves the stores after a trusted build — unless no step that mounts one of them ran, or
/// the steps that ran left every store as it was restored (same names, sizes and times): then
/// nothing is pushed. The check is the save's own first half (`--output type=cacheonly`): the
/// save that follows, with the same run argument, finds those steps in the builder's cache.
#[allow(clippy::too_many_arguments)]
pub(super) async fn save_if_used(
    docker: &mut Docker,
    signals: &mut Signals,
    plan: &MountsPlan,
    builder: &str,
    dir: &Path,
    (secrets, ran): (&crate::verify::Needles, &[String]),
    annotations: &mut Vec<Annotation>,
    out: &mut [MountStatus],
) -> SaveEnd {
    let unchanged = |annotations: &mut Vec<Annotation>, out: &mut [MountStatus], why: &str, store: &'static str| {
        for s in out.iter_mut() {
            s.unchanged = Some(store);
        }
        annotations.push(Annotation::notice(format!("Cache mounts not saved: {why}, so they are unchanged.")));
    };
    if !plan.mounts.iter().any(|m| ran.contains(&m.id)) {
        let why = "every step that uses them came from cache";
        unchanged(annotations, out, why, "its steps came from cache");
        return SaveEnd::Skipped;
    }
    let run_arg = format!("SDI_RUN={}", random_token());
    if out.iter().all(|s| s.restored_fp.is_some()) {
        match fingerprints(docker, signals, plan, builder, dir, &run_arg).await {
            Ok(Some(now))
                if out.iter().all(|s| {
                    now.iter().any(|(d, fp)| *d == mount_dir(&s.id) && s.restored_fp.as_ref() == Some(fp))
                }) =>
            {
                let why = "the steps that use them left them as they were restored";
                unchanged(annotations, out, why, "its steps left it as restored");
                return SaveEnd::Ran;
            }
            Err(sig) => return SaveEnd::Cancelled(sig),
            _ => {}
        }
    }
    match save(docker, signals, plan, builder, dir, (secrets, &run_arg), annotations, out).await {
        Some(sig) => SaveEnd::Cancelled(sig),
        None => SaveEnd::Ran,
    }
}

/// The save helper's build: the same builder, file and run argument for its check and for the
/// save itself, so that the save finds the check's steps in the builder's cache.
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

/// The stores' fingerprints as the save helper sees them, without exporting anything.
async fn fingerprints(
    docker: &mut Docker,
    signals: &mut Signals,
    plan: &MountsPlan,
    builder: &str,
    dir: &Path,
    run_arg: &str,
) -> Result<Option<Vec<(String, String)>>, i32> {
    let file = dir.join("mounts-save.Dockerfile");
    let Ok(context) = std::fs::write(&file, save_dockerfile(plan)).and_then(|()| empty_context(dir)) else {
        return Ok(None);
    };
    let file = file.display().to_string();
    let args = save_build_args((builder, &file, run_arg), "type=cacheonly", &[], &context);
    match docker.output(&args, None, signals).await {
        Ok(Ended::Exited { code: 0, stderr, .. }) => Ok(Some(marked_at(&stderr, "sdi-mount-fp ", 1))),
        Ok(Ended::Signalled(sig)) => Err(sig),
        _ => Ok(None),
    }
}
