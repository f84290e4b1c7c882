//! The builder's cache-mount stores, for the action's helper builds: what each store holds
//! (kept between calls, as a builder keeps them, in `fake-docker-stores.json` of the state
//! directory: delete it for an emptied builder), the Dockerfile's own steps that change them,
//! and the restore, check and save helpers that read and write them. A saved image is a real
//! stores image (helper layer, one layer a store, the label) in `FAKE_DOCKER_REGISTRY_DIR`, or
//! a record of its contents when there is no such registry.
//!
//! - `FAKE_DOCKER_MOUNT_UNCHANGED=1`: the build's steps leave every store as it was.
//! - `FAKE_DOCKER_MOUNT_WRITES=<id>,…`: they change these stores only (default: all).
//! - `FAKE_DOCKER_MOUNT_LEAK=<text>`: what they write into a store includes this text.
//! - `FAKE_DOCKER_RETAG_DURING_BUILD=<repo>:<from>`: while the main build runs, another job
//!   points `<repo>:buildcache-mounts` at what `<repo>:<from>` names (registry directory).
//! - `FAKE_DOCKER_MOUNT_KIB`: the size every store reports (default 2048).
//! - `FAKE_DOCKER_PRUNE_UNDER_BUILD=1`: the builder's stores are emptied as the build ends.
//! - `FAKE_DOCKER_MOUNT_STEP_MS`: how long a step that mounts a store runs before it is done
//!   (SIGINT stops it earlier, leaving `+partial` in its store).
//! - `FAKE_DOCKER_COLD_STEP_SECS`: the time such a step reports when its store was empty (5.0;
//!   1.0 on a filled one).
//! - `FAKE_DOCKER_SAVE_COSTS`: the costs label a saved stores image carries, whatever the
//!   save measured (what earlier runs measured, for a test to start from).
//!
//! A RUN line that mounts several stores is one step that uses them all (interrupted, each has
//! begun to be written); a store of a stage that expands its id per platform is a step of its own.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use sdi::dockerfile::CacheMount;

use super::{BuildArgs, Replay, fake_digest, state_dir};

type Contents = BTreeMap<String, String>;

fn load(name: &str) -> BTreeMap<String, Contents> {
    let text = std::fs::read_to_string(state_dir().join(name)).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

fn store(name: &str, value: &BTreeMap<String, Contents>) {
    std::fs::write(state_dir().join(name), serde_json::to_string(value).unwrap()).unwrap();
}

/// What each store of the builder holds, by id.
fn stores() -> Contents {
    load("fake-docker-stores.json").remove("").unwrap_or_default()
}

fn save_stores(s: Contents) {
    store("fake-docker-stores.json", &BTreeMap::from([(String::new(), s)]))
}

/// A store's fingerprint, as the helpers print it.
fn fingerprint(content: &str) -> String {
    fake_digest(content.as_bytes())[7..39].to_string()
}

fn kib() -> u64 {
    std::env::var("FAKE_DOCKER_MOUNT_KIB").ok().and_then(|k| k.parse().ok()).unwrap_or(2048)
}

/// The Dockerfile's own step mounting store `id` ran: it changes the store unless told not to.
pub fn step_ran(id: &str) {
    if std::env::var("FAKE_DOCKER_MOUNT_UNCHANGED").is_ok() {
        return;
    }
    if let Ok(only) = std::env::var("FAKE_DOCKER_MOUNT_WRITES")
        && !only.split(',').any(|w| w == id)
    {
        return;
    }
    let mut s = stores();
    let n = s.get(id).map_or(0, |c| c.matches('+').count()) + 1;
    let leak = std::env::var("FAKE_DOCKER_MOUNT_LEAK").unwrap_or_default();
    s.insert(id.to_string(), format!("{}+{id} install {n}{leak}", s.get(id).cloned().unwrap_or_default()));
    save_stores(s);
}

/// The build's step mounting `ids` runs for `ms` milliseconds unless SIGINT stops it: then it
/// has begun to write each store (`+partial`), and `true` is returned.
pub fn step_interrupted(ids: &[&str], ms: u64) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    while std::time::Instant::now() < until {
        if super::SIGNAL.load(std::sync::atomic::Ordering::SeqCst) != 0 {
            let mut s = stores();
            for id in ids {
                s.insert(id.to_string(), format!("{}+partial {id}", s.get(*id).cloned().unwrap_or_default()));
            }
            save_stores(s);
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// `(id, dir)` of each `--mount=type=cache,id=…` of a helper, in order.
fn helper_mounts(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split("--mount=type=cache,id=").nth(1)?.split(',').next().map(str::to_string))
        .map(|id| {
            let dir = sdi::plan::mount_dir(&id);
            (id, dir)
        })
        .collect()
}

/// Whether the restore helper empties store `id` before filling it: always (a fresh builder's
/// store a stopped step touched), or unless it holds half the saved copy's size (a builder that
/// outlives runs; here a store holding only a stopped step's partial files is small).
fn forced(text: &str, id: &str, content: Option<&String>) -> bool {
    let Some(stage) = text.split("\nFROM ").find(|s| s.contains(&format!("--mount=type=cache,id={id},"))) else {
        return false;
    };
    let whole = content.is_some_and(|c| !c.replace(&format!("+partial {id}"), "").is_empty());
    stage.contains("-exec rm -rf") && !(stage.contains("-ge $((") && whole)
}

/// Replays a cache-mount helper build (restore, check or save) and returns the stores a save
/// copied: `(dir, content)` in layer order. Every other build returns nothing.
pub fn replay_helper(replay: &mut Replay, text: &str) -> Vec<(String, String)> {
    let mut s = stores();
    let mut saved = Vec::new();
    let source = text.lines().next().and_then(|l| l.strip_prefix("FROM ")?.strip_suffix(" AS saved"));
    let from = source.map(saved_contents).unwrap_or_default();
    let max: Option<u64> = text.split("-le ").nth(1).and_then(|r| r.split(' ').next()).and_then(|m| m.parse().ok());
    for (n, (id, dir)) in (900..).zip(helper_mounts(text)) {
        replay.line(&format!("#{n} [m 2/2] RUN helper {dir}"));
        if source.is_some() {
            // A store a stopped step began to write is emptied first; one that already holds
            // files is otherwise left as it is.
            if forced(text, &id, s.get(&id)) {
                s.remove(&id);
            }
            let how = match (s.get(&id).is_some_and(|c| !c.is_empty()), from.get(&dir)) {
                (true, _) => "warm",
                (false, Some(c)) => {
                    s.insert(id.clone(), c.clone());
                    "image"
                }
                (false, None) => "none",
            };
            let fp = fingerprint(s.get(&id).map_or("", String::as_str));
            replay.line(&format!("#{n} 0.100 sdi-restored {dir} {} {fp} {how}", kib()));
        } else if text.contains("sdi-mount-size ") {
            replay.line(&format!("#{n} 0.100 sdi-mount-size {dir} {} run", kib()));
            if max.is_some_and(|m| kib() > m) {
                replay.line(&format!("#{n} 0.200 sdi-mount-too-big {dir}"));
                saved.push((dir, String::new()));
            } else {
                if text.contains("sdi-mount-delta ") {
                    replay.line(&format!("#{n} 0.300 sdi-mount-delta {dir} {}", kib() / 16));
                }
                saved.push((dir, s.get(&id).cloned().unwrap_or_default()));
            }
        } else {
            let content = s.get(&id).map_or("", String::as_str);
            let (kib, state) = if content.is_empty() { (0, "empty") } else { (kib(), "full") };
            replay.line(&format!("#{n} 0.100 sdi-mount-fp {dir} {} run {kib} {state}", fingerprint(content)));
        }
        replay.line(&format!("#{n} DONE 0.1s"));
    }
    save_stores(s);
    // A save of what changed builds on the image the stores were restored from.
    let on_top =
        text.lines().next().and_then(|l| l.strip_prefix("FROM ")).filter(|_| text.contains("sdi-mount-delta "));
    if let Some(base) = on_top {
        std::fs::write(state_dir().join("fake-docker-save-on-top"), base).unwrap();
    }
    // What restoring and refilling cost, as the save's label says.
    let costs = format!("{}=\"", sdi::plan::mount_costs::COSTS_LABEL);
    if let Some(value) = text.split_once(&costs).and_then(|(_, r)| r.split_once('"')).map(|(v, _)| v) {
        std::fs::write(state_dir().join("fake-docker-save-costs"), value).unwrap();
    }
    saved
}

/// The image the save being pushed builds on, once (see `replay_helper`).
fn take_on_top() -> Option<String> {
    let path = state_dir().join("fake-docker-save-on-top");
    let base = std::fs::read_to_string(&path).ok()?;
    std::fs::remove_file(path).ok()?;
    Some(base)
}

/// The registry directory a test serves, if any.
fn registry_dir() -> Option<PathBuf> {
    std::env::var("FAKE_DOCKER_REGISTRY_DIR").ok().map(PathBuf::from)
}

/// What a saved stores image holds, by store directory: read from the registry directory
/// (a real image, layers untarred), else from the fake's record of tagged pushes.
fn saved_contents(reference: &str) -> Contents {
    // `name:tag`, or pinned: `name:tag@sha256:…`
    let (tagged, digest) = reference.split_once('@').map_or((reference, None), |(t, d)| (t, Some(d)));
    if let Some(dir) = registry_dir()
        && let Some(c) = read_image(&dir, tagged, digest)
    {
        return c;
    }
    load("fake-docker-saved.json").remove(tagged).unwrap_or_default()
}

/// What a saved stores image holds: each store as its layers leave it (a later layer of a
/// store holds its whole content here, and replaces what the earlier ones held).
fn read_image(dir: &Path, reference: &str, digest: Option<&str>) -> Option<Contents> {
    Some(read_layers(dir, reference, digest)?.into_iter().collect())
}

/// A saved stores image's store layers, in order: `(store dir, content)`.
fn read_layers(dir: &Path, reference: &str, digest: Option<&str>) -> Option<Vec<(String, String)>> {
    let (name, tag) = reference.rsplit_once(':')?;
    let repo = dir.join("v2").join(name.split_once('/')?.1);
    let mut manifest = std::fs::read(repo.join("manifests").join(digest.unwrap_or(tag))).ok()?;
    if let Some(image) = sdi::mounts::image::image_in_index(&manifest) {
        manifest = std::fs::read(repo.join("manifests").join(image)).ok()?;
    }
    let m: serde_json::Value = serde_json::from_slice(&manifest).ok()?;
    let config = std::fs::read(repo.join("blobs").join(m.pointer("/config/digest")?.as_str()?)).ok()?;
    let image = sdi::mounts::image::StoresImage::read(&manifest, &config)?;
    let mut out = Vec::new();
    for (store_dir, layer) in &image.stores {
        let blob = std::fs::read(repo.join("blobs").join(layer.descriptor["digest"].as_str()?)).ok()?;
        let mut raw = Vec::new();
        ruzstd::decoding::StreamingDecoder::new(blob.as_slice()).ok()?.read_to_end(&mut raw).ok()?;
        let mut archive = tar::Archive::new(raw.as_slice());
        let mut text = String::new();
        for entry in archive.entries().ok()? {
            entry.ok()?.read_to_string(&mut text).ok()?;
        }
        out.push((store_dir.clone(), text));
    }
    Some(out)
}

/// A save pushed into the registry directory (by digest, or under `tag`): a real stores image;
/// returns its digest.
pub fn push_stores_image(dir: &Path, name: &str, tag: Option<&str>, saved: &[(String, String)]) -> String {
    use sdi::oci::{Compression, Layer};
    let mut layers =
        vec![Layer { files: vec![("bin/sh".into(), b"busybox".to_vec())], compression: Compression::Zstd }];
    // On top of an earlier image: its layers again (same bytes, same digests), then the new.
    let base = take_on_top().map(|b| {
        let (tagged, digest) = b.split_once('@').map_or((b.as_str(), None), |(t, d)| (t, Some(d)));
        read_layers(dir, tagged, digest).expect("the image a save builds on")
    });
    let saved: Vec<(String, String)> = base.unwrap_or_default().into_iter().chain(saved.iter().cloned()).collect();
    for (store_dir, content) in &saved {
        let files = vec![(format!("{store_dir}/content"), content.as_bytes().to_vec())];
        layers.push(Layer { files, compression: Compression::Zstd });
    }
    let dirs: Vec<&str> = saved.iter().map(|(d, _)| d.as_str()).collect();
    let mut label = json!({"config": {"Labels": {sdi::mounts::image::LABEL: dirs.join(" ")}}});
    let costs_file = state_dir().join("fake-docker-save-costs");
    let measured = std::fs::read_to_string(&costs_file).inspect(|_| drop(std::fs::remove_file(&costs_file)));
    if let Ok(costs) = std::env::var("FAKE_DOCKER_SAVE_COSTS").or(measured) {
        label["config"]["Labels"][sdi::plan::mount_costs::COSTS_LABEL] = json!(costs);
    }
    let image = sdi::oci::image("linux/amd64", &layers, label);
    let repo = name.split_once('/').map_or(name, |(_, r)| r);
    sdi::oci::write_registry(dir, repo, &image, &[]).unwrap();
    if let Some(tag) = tag {
        let manifest = &image.blobs.iter().find(|(d, _)| *d == image.manifest).unwrap().1;
        std::fs::write(dir.join("v2").join(repo).join("manifests").join(tag), manifest).unwrap();
    }
    image.manifest
}

/// A save pushed under its tag: into the registry directory if a test serves one, and its
/// contents recorded for the next restore.
pub fn record_tagged(reference: &str, saved: &[(String, String)]) {
    let mut all = load("fake-docker-saved.json");
    let mut contents = Contents::new();
    if let (Some(dir), Some((name, tag))) = (registry_dir(), reference.rsplit_once(':')) {
        push_stores_image(&dir, name, Some(tag), saved);
    } else if let Some(base) = take_on_top() {
        contents = saved_contents(&base);
    }
    contents.extend(saved.iter().cloned());
    all.insert(reference.to_string(), contents);
    store("fake-docker-saved.json", &all);
}

/// A prune or garbage collection on the builder while the build runs
/// (`FAKE_DOCKER_PRUNE_UNDER_BUILD`): every store is empty afterwards.
pub fn pruned_under_build() {
    if std::env::var("FAKE_DOCKER_PRUNE_UNDER_BUILD").is_ok() {
        save_stores(Contents::new());
    }
}

/// Another job's save landing while this build runs (`FAKE_DOCKER_RETAG_DURING_BUILD`).
pub fn another_job_saves() {
    let (Some(dir), Ok(spec)) = (registry_dir(), std::env::var("FAKE_DOCKER_RETAG_DURING_BUILD")) else { return };
    let Some((repo, from)) = spec.split_once(':') else { return };
    let manifests = dir.join("v2").join(repo).join("manifests");
    std::fs::copy(manifests.join(from), manifests.join("buildcache-mounts")).unwrap();
}

/// The Dockerfile's own steps that mount stores: served from cache (`warm`), or run. A step
/// that runs takes `FAKE_DOCKER_MOUNT_STEP_MS` (default: 10 s when this run found a saved
/// stores image, else no time) unless SIGINT stops it first: it has then begun to write its
/// store (`+partial`), and the build ends as buildx ends a cancelled one. `false`: stopped.
pub fn replay_mount_steps(replay: &mut Replay, (args, requested): (&BuildArgs, &[&str]), scenario: &str) -> bool {
    let main_file = args.one("--file").map(str::to_string).unwrap_or_else(|| format!("{}/Dockerfile", args.context));
    let main_text = std::fs::read_to_string(&main_file).unwrap_or_default();
    if main_text.contains("/sdi-mount") {
        return true;
    }
    let build_args: Vec<(String, String)> = args
        .all("--build-arg")
        .iter()
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let platforms: Vec<&str> = if requested.is_empty() { vec!["linux/amd64"] } else { requested.to_vec() };
    let mounts =
        sdi::dockerfile::cache_mounts_for(&main_text, &build_args, (&platforms, "linux/amd64"), args.one("--target"));
    for (i, step) in steps(&main_text, &build_args, &mounts).iter().enumerate() {
        let n = 950 + i;
        let flags: Vec<String> =
            step.iter().map(|m| format!("--mount=type=cache,id={},target={}", m.id, m.target)).collect();
        replay.line(&format!("#{n} [stage-0 2/2] RUN {} install", flags.join(" ")));
        if scenario == "warm" {
            replay.line(&format!("#{n} CACHED"));
            continue;
        }
        replay.start(n as u32);
        let ids: Vec<&str> = step.iter().map(|m| m.id.as_str()).collect();
        if step_interrupted(&ids, mount_step_ms()) {
            replay.line(&format!("#{n} CANCELED"));
            eprintln!("ERROR: failed to build: failed to solve: Canceled: context canceled");
            return false;
        }
        // On an empty store the step fetches everything: `FAKE_DOCKER_COLD_STEP_SECS` (5.0).
        let cold = ids.iter().any(|id| stores().get(*id).is_none_or(|c| c.is_empty() || c.starts_with("+partial")));
        let warm = "1.0".to_string();
        let secs = if cold { std::env::var("FAKE_DOCKER_COLD_STEP_SECS").unwrap_or("5.0".into()) } else { warm };
        replay.line(&format!("#{n} DONE {secs}s"));
        for id in ids {
            step_ran(id);
        }
    }
    true
}

/// The build's stores, a step each, but for those a RUN line mounts together (its ids as
/// written, no per-platform expansion): one step.
fn steps<'a>(text: &str, build_args: &[(String, String)], mounts: &'a [CacheMount]) -> Vec<Vec<&'a CacheMount>> {
    let mut steps: Vec<Vec<&CacheMount>> = Vec::new();
    for m in mounts {
        let together = text.lines().filter(|l| l.trim_start().starts_with("RUN ")).find_map(|line| {
            let ids: Vec<String> = sdi::dockerfile::cache_mounts(&format!("FROM scratch\n{line}\n"), build_args)
                .into_iter()
                .map(|m| m.id)
                .collect();
            (ids.len() > 1 && ids.contains(&m.id)).then_some(ids)
        });
        match together.and_then(|ids| steps.iter_mut().find(|s| s.iter().any(|o| ids.contains(&o.id)))) {
            Some(step) => step.push(m),
            None => steps.push(vec![m]),
        }
    }
    steps
}

/// How long a step that mounts a store runs (see `replay_mount_steps`): long (until a
/// stop) after this run found a saved stores image and has not restored it yet, as a real
/// install is long next to the action's reaction; no time otherwise.
fn mount_step_ms() -> u64 {
    if let Some(ms) = std::env::var("FAKE_DOCKER_MOUNT_STEP_MS").ok().and_then(|v| v.parse().ok()) {
        return ms;
    }
    let log = std::fs::read_to_string(std::env::var("FAKE_DOCKER_LOG").unwrap_or_default()).unwrap_or_default();
    let calls: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let found = calls.iter().rposition(|c| {
        let argv = c["argv"].to_string();
        argv.contains("imagetools") && argv.contains("buildcache-mounts") && c["exit"] == 0
    });
    let restored_since =
        |i: usize| calls[i..].iter().any(|c| c["file_text"].as_str().is_some_and(|t| t.contains(" AS saved")));
    match found {
        Some(i) if !restored_since(i) => 10_000,
        _ => 0,
    }
}
