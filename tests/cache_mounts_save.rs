//! Cache-mount stores around the build: restored before it (untrusted runs only restore), saved
//! after a trusted one only when a step that mounts them ran and only the stores it changed (a
//! kept store keeps the layer it was restored from, and is scanned with the rest), one store per
//! expanded platform id, warm stores left alone, and the helpers' times in the summary.

mod common;

use std::path::Path;

use common::run::*;
use serde_json::Value;

const STORE_PER_ARCH: &str = "FROM --platform=$BUILDPLATFORM node:22 AS deps\nARG TARGETARCH\nRUN --mount=type=cache,id=st-${TARGETARCH},target=/store pnpm install\n";

fn saves(log: &std::path::Path) -> usize {
    helper_builds_in(log).iter().filter(|c| c["file_text"].as_str().unwrap().contains("sdi-mount-size")).count()
}

fn restores(log: &std::path::Path) -> usize {
    helper_builds_in(log).iter().filter(|c| c["file_text"].as_str().unwrap().contains(" AS saved")).count()
}

fn pushed_to_log(log: &std::path::Path, platforms: &str) -> Run {
    Run::new("push", "push-default-branch.json")
        .with_dockerfile(STORE_PER_ARCH)
        .with("INPUT_PLATFORMS", platforms)
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
}

#[test]
fn a_build_whose_steps_all_came_from_cache_restores_and_saves_nothing() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    let first = pushed_to_log(&log, "linux/amd64");
    first.run().assert_success();
    assert_eq!(saves(&log), 1, "the install step ran: its store is saved");
    assert_eq!(restores(&log), 0, "nothing saved yet: nothing to restore");
    assert!(first.summary().contains("Cache-mount helpers: restore –, save "), "{}", first.summary());

    empty_builder(&log);
    let cached = pushed_to_log(&log, "linux/amd64").with("FAKE_DOCKER_SCENARIO", "warm");
    let done = cached.run();
    done.assert_success();
    assert_eq!(restores(&log), 0, "every step that mounts the store came from cache: no restore helper");
    assert_eq!(saves(&log), 1, "no second save: nothing pushed");
    let calls: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let builds = calls.iter().filter(|c| c["argv"][1] == "build" && c["file_text"].is_null()).count();
    assert_eq!(builds, 2, "one build in each run, none stopped");
    assert!(done.stdout.contains("::notice::Cache mounts not saved: every step that uses them came from cache"));
    let summary = cached.summary();
    assert!(
        summary.contains("| `st-amd64` | no (its steps came from cache) | no (unchanged: its steps came from cache) |"),
        "{summary}"
    );
    assert!(summary.contains("restore –, save –."), "{summary}");
}

#[test]
fn each_platform_store_is_restored_and_saved() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    pushed_to_log(&log, "linux/amd64,linux/arm64").run().assert_success();
    pushed_to_log(&log, "linux/amd64,linux/arm64").run().assert_success();
    let texts: Vec<String> =
        helper_builds_in(&log).iter().map(|c| c["file_text"].as_str().unwrap().to_string()).collect();
    let restore = texts.iter().find(|t| t.contains("AS saved")).expect("a restore");
    for id in ["st-amd64", "st-arm64"] {
        assert_eq!(restore.matches(&format!("--mount=type=cache,id={id},")).count(), 1, "{restore}");
        for save in texts.iter().filter(|t| t.contains("sdi-mount-size")) {
            assert!(save.contains(&format!("--mount=type=cache,id={id},")), "{save}");
        }
    }
    assert!(!restore.contains("id=st-,"), "no store of an unexpanded id");
}

#[test]
fn a_store_left_as_it_was_restored_is_not_pushed_again() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    pushed_to_log(&log, "linux/amd64").run().assert_success();
    // The install step runs again (a lockfile change), but leaves the store as restored.
    let same = pushed_to_log(&log, "linux/amd64").with("FAKE_DOCKER_MOUNT_UNCHANGED", "1");
    let done = same.run();
    done.assert_success();
    let helpers = helper_builds_in(&log);
    let probe =
        helpers.iter().rfind(|c| c["argv"].to_string().contains("type=cacheonly")).expect("a check before saving");
    assert!(probe["file_text"].as_str().unwrap().contains("sdi-mount-fp"));
    assert_eq!(saves_pushed(&log), 1, "only the first run pushed its stores");
    assert!(done.stdout.contains("left them as they were restored"), "{}", done.stdout);
    assert!(same.summary().contains("no (unchanged"), "{}", same.summary());

    // Changed: checked, then saved with the same run argument (the check's steps are reused).
    let changed = pushed_to_log(&log, "linux/amd64");
    changed.run().assert_success();
    assert_eq!(saves_pushed(&log), 2);
    let helpers = helper_builds_in(&log);
    let run_arg = |c: &serde_json::Value| {
        let argv: Vec<String> = argv(c);
        flag_values(&argv, "--build-arg").into_iter().find(|a| a.starts_with("SDI_RUN=")).unwrap()
    };
    let (check, save) = (&helpers[helpers.len() - 2], &helpers[helpers.len() - 1]);
    assert!(check["argv"].to_string().contains("type=cacheonly") && save["argv"].to_string().contains("push=true"));
    assert_eq!(run_arg(check), run_arg(save));
}

/// Save helper builds that pushed.
fn saves_pushed(log: &std::path::Path) -> usize {
    helper_builds_in(log).iter().filter(|c| c["argv"].to_string().contains("push=true")).count()
}

const TWO_STORES: &str =
    "FROM node:22\nRUN --mount=type=cache,id=deps,target=/deps --mount=type=cache,id=out,target=/out make\n";

fn two_stores(registry: &str, dir: &std::path::Path, log: &std::path::Path) -> Run {
    Run::new("push", "push-default-branch.json")
        .with_dockerfile(TWO_STORES)
        .with("INPUT_IMAGE", &format!("{registry}/team/app"))
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("FAKE_DOCKER_REGISTRY_DIR", dir.to_str().unwrap())
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
}

/// A test registry (its address and directory) and the fake's state directory with its log.
fn served() -> (String, tempfile::TempDir, tempfile::TempDir, std::path::PathBuf) {
    let (registry, dir) = common::dir_registry();
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    (registry, dir, state, log)
}

/// The stores image `team/app:buildcache-mounts` in a test registry's directory.
fn saved_image(dir: &std::path::Path) -> sdi::mounts::image::StoresImage {
    let repo = dir.join("v2/team/app");
    let manifest = std::fs::read(repo.join("manifests/buildcache-mounts")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let config = std::fs::read(repo.join("blobs").join(m["config"]["digest"].as_str().unwrap())).unwrap();
    sdi::mounts::image::StoresImage::read(&manifest, &config).expect("a stores image")
}

/// A store's layers in the image (its whole copy, then what later saves changed), by digest.
fn layer_digest(image: &sdi::mounts::image::StoresImage, id: &str) -> Vec<String> {
    let layers = image.layers_of(&sdi::plan::mount_dir(id));
    assert!(!layers.is_empty(), "store {id} has layers");
    layers.iter().map(|l| l.descriptor["digest"].as_str().unwrap().to_string()).collect()
}

#[test]
fn only_the_store_that_changed_is_pushed_and_the_other_keeps_its_layer() {
    let (registry, dir, state, log) = served();
    two_stores(&registry, dir.path(), &log).run().assert_success();
    let first = saved_image(dir.path());
    assert_eq!(first.stores.len(), 2);

    // On a fresh runner, the step runs again and changes `out` only.
    empty_builder(&log);
    let second = two_stores(&registry, dir.path(), &log).with("FAKE_DOCKER_MOUNT_WRITES", "out");
    let done = second.run();
    done.assert_success();
    let save = helper_builds_in(&log).into_iter().next_back().unwrap();
    let text = save["file_text"].as_str().unwrap();
    assert!(text.contains("id=out,") && !text.contains("id=deps,"), "only the changed store is copied: {text}");
    let restored = helper_builds_in(&log).into_iter().find(|b| b["file_text"].as_str().unwrap().contains(" AS saved"));
    let pinned = restored.unwrap()["file_text"].as_str().unwrap().lines().next().unwrap().replace(" AS saved", "");
    assert!(text.starts_with(&format!("{pinned}\n")), "on top of the very image restored: {text}");
    let output = &flag_values(&argv(&save), "--output")[0];
    assert!(output.contains("name=127.0.0.1") && output.contains(":buildcache-mounts,push=true"), "{output}");
    let now = saved_image(dir.path());
    assert_eq!(layer_digest(&now, "deps"), layer_digest(&first, "deps"), "kept: the very layer restored");
    let (before, after) = (layer_digest(&first, "out"), layer_digest(&now, "out"));
    assert_eq!((after.len(), &after[..1]), (2, &before[..]), "changed: what changed on top of its layer");
    let summary = second.summary();
    assert!(summary.contains("| `deps` | 2.1 MB | no (unchanged: its steps left it as restored) |"), "{summary}");
    assert!(summary.contains("| `out` | 2.1 MB | 2.1 MB (0.1 MB changed, on top of the restored copy) |"), "{summary}");
    assert!(!done.stdout.contains("::warning::"), "{}", done.stdout);

    // An emptied builder whose step runs again gets back exactly what the last build left in
    // both stores (the step leaves them as restored here).
    let fresh = tempfile::tempdir().unwrap();
    let third =
        two_stores(&registry, dir.path(), &fresh.path().join("calls.jsonl")).with("FAKE_DOCKER_MOUNT_UNCHANGED", "1");
    third.run().assert_success();
    let stores = |d: &std::path::Path| std::fs::read_to_string(d.join("fake-docker-stores.json")).unwrap();
    assert_eq!(stores(fresh.path()), stores(state.path()));
    assert!(stores(state.path()).contains("out install 2"), "{}", stores(state.path()));
}

/// Here a store's changes are its whole content again (the fake's layers hold a store whole),
/// so after one save on top, its changes outweigh half its copy: the next save writes it whole,
/// and the store that did not change keeps its layer throughout.
#[test]
fn a_store_whose_changes_piled_up_is_written_whole_again() {
    let (registry, dir, state, log) = served();
    two_stores(&registry, dir.path(), &log).run().assert_success();
    let first = saved_image(dir.path());
    let mut saves = Vec::new();
    for _ in 0..2 {
        empty_builder(&log);
        two_stores(&registry, dir.path(), &log).with("FAKE_DOCKER_MOUNT_WRITES", "out").run().assert_success();
        let save = helper_builds_in(&log).into_iter().next_back().unwrap();
        saves.push(save["file_text"].as_str().unwrap().to_string());
        assert_eq!(layer_digest(&saved_image(dir.path()), "deps"), layer_digest(&first, "deps"));
    }
    assert!(saves[0].starts_with("FROM 127.0.0.1") && saves[0].contains("sdi-mount-delta"), "{}", saves[0]);
    assert!(saves[1].starts_with("FROM busybox") && !saves[1].contains("sdi-mount-delta"), "{}", saves[1]);
    let out = layer_digest(&saved_image(dir.path()), "out");
    assert_eq!(out.len(), 1, "written whole: one layer again");
    // And it holds what the builder had.
    let fresh = tempfile::tempdir().unwrap();
    let check = two_stores(&registry, dir.path(), &fresh.path().join("calls.jsonl"));
    check.with("FAKE_DOCKER_MOUNT_UNCHANGED", "1").run().assert_success();
    let stores = |d: &std::path::Path| std::fs::read_to_string(d.join("fake-docker-stores.json")).unwrap();
    assert_eq!(stores(fresh.path()), stores(state.path()));
}

/// A run that restored the stores and left them as they were saves nothing, yet keeps what it
/// measured (the restore, the steps on the restored stores) in the saved image's label: same
/// layers, a new config.
#[test]
fn an_unchanged_restore_keeps_its_measurements_on_the_same_layers() {
    let (registry, dir, _state, log) = served();
    two_stores(&registry, dir.path(), &log).run().assert_success();
    let first = saved_image(dir.path());
    let costs = |i: &sdi::mounts::image::StoresImage| {
        sdi::plan::mount_costs::parse(i.label(sdi::plan::mount_costs::COSTS_LABEL).unwrap_or_default())
    };
    let deps = sdi::plan::mount_dir("deps");
    assert_eq!(costs(&first)[&deps].cold, Some(5000), "the first run measured an empty store");
    assert_eq!(costs(&first)[&deps].warm, None);
    empty_builder(&log);
    std::fs::remove_file(&log).unwrap();
    let second = two_stores(&registry, dir.path(), &log).with("FAKE_DOCKER_MOUNT_UNCHANGED", "1");
    second.run().assert_success();
    assert!(!helper_builds_in(&log).iter().any(|b| b["file_text"].as_str().unwrap().contains("sdi-mount-size")));
    let now = saved_image(dir.path());
    assert_eq!((&now.base, &now.stores), (&first.base, &first.stores), "no layer pushed");
    let measured = costs(&now)[&deps];
    assert_eq!((measured.cold, measured.warm), (Some(5000), Some(1000)), "{measured:?}");
    assert!(measured.restore.is_some(), "{measured:?}");
}

#[test]
fn kept_stores_are_scanned_with_the_new_ones_before_the_tag_moves() {
    let (registry, dir, _state, log) = served();
    let with_secret = |run: Run| run.with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN").with("NPM_TOKEN", ENV_SECRET);
    with_secret(two_stores(&registry, dir.path(), &log)).run().assert_success();
    let first = saved_image(dir.path());
    empty_builder(&log);
    let second = with_secret(two_stores(&registry, dir.path(), &log).with("FAKE_DOCKER_MOUNT_WRITES", "deps"));
    let done = second.run();
    done.assert_success();
    assert!(!done.stdout.contains("::warning::"), "{}", done.stdout);
    let now = saved_image(dir.path());
    assert_eq!(layer_digest(&now, "out"), layer_digest(&first, "out"));
    assert_ne!(layer_digest(&now, "deps"), layer_digest(&first, "deps"));
}

#[test]
fn a_kept_layer_holding_a_secret_value_stops_the_tag() {
    let (registry, dir, _state, log) = served();
    // Saved by builds without secrets, `out` holds a text that later becomes a secret's value.
    two_stores(&registry, dir.path(), &log).run().assert_success();
    empty_builder(&log);
    let leaky = two_stores(&registry, dir.path(), &log).with("FAKE_DOCKER_MOUNT_WRITES", "out");
    leaky.with("FAKE_DOCKER_MOUNT_LEAK", ENV_SECRET).run().assert_success();
    let first = dir.path().join("v2/team/app/manifests/buildcache-mounts");
    let before = std::fs::read(&first).unwrap();
    empty_builder(&log);
    let second = two_stores(&registry, dir.path(), &log)
        .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN")
        .with("NPM_TOKEN", ENV_SECRET)
        .with("FAKE_DOCKER_MOUNT_WRITES", "deps");
    let done = second.run();
    done.assert_success();
    assert!(done.stdout.contains("::warning::Cache mounts not saved: secret 'npm_token'"), "{}", done.stdout);
    let shown = done.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).any(|l| l.contains(ENV_SECRET));
    assert!(!shown && !second.summary().contains(ENV_SECRET), "the value is masked, never shown");
    assert_eq!(std::fs::read(&first).unwrap(), before, "the tag did not move");
}

#[test]
fn a_store_the_builder_already_holds_is_left_as_it_is() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    pushed_to_log(&log, "linux/amd64").run().assert_success();
    // A builder that outlives runs: its store is newer than the saved copy.
    let stores = state.path().join("fake-docker-stores.json");
    std::fs::write(&stores, r#"{"": {"st-amd64": "newer than the saved copy"}}"#).unwrap();
    let again = pushed_to_log(&log, "linux/amd64")
        .with_user_builder("long-lived", "docker-container")
        .with("FAKE_DOCKER_MOUNT_UNCHANGED", "1");
    again.run().assert_success();
    assert!(std::fs::read_to_string(&stores).unwrap().contains("newer than the saved copy"));
    let summary = again.summary();
    assert!(summary.contains("| `st-amd64` | no (already warm: 2.1 MB) | no (unchanged"), "{summary}");
}

#[test]
fn a_warm_store_is_saved_as_the_builder_has_it_not_kept_from_the_older_image() {
    let (registry, dir, state, log) = served();
    two_stores(&registry, dir.path(), &log).run().assert_success();
    let first = saved_image(dir.path());
    // The builder outlives runs and its `deps` store differs from the saved copy.
    let stores = state.path().join("fake-docker-stores.json");
    std::fs::write(&stores, r#"{"": {"deps": "the builder's own", "out": "old"}}"#).unwrap();
    let second = two_stores(&registry, dir.path(), &log)
        .with_user_builder("long-lived", "docker-container")
        .with("FAKE_DOCKER_MOUNT_WRITES", "out");
    second.run().assert_success();
    let save = helper_builds_in(&log).into_iter().next_back().unwrap();
    let text = save["file_text"].as_str().unwrap();
    assert!(
        text.contains("id=deps,") && text.contains("id=out,"),
        "the saved copy of deps is not what it holds: {text}"
    );
    assert_ne!(layer_digest(&saved_image(dir.path()), "deps"), layer_digest(&first, "deps"));
}

#[test]
fn a_kept_layer_comes_from_the_image_restored_even_if_the_tag_moved_since() {
    let (registry, dir, _state, log) = served();
    let manifests = dir.path().join("v2/team/app/manifests");
    two_stores(&registry, dir.path(), &log).run().assert_success();
    let restored = saved_image(dir.path());
    let first = std::fs::read(manifests.join("buildcache-mounts")).unwrap();
    // Another image with a different `deps`, kept aside under a tag of its own.
    empty_builder(&log);
    two_stores(&registry, dir.path(), &log).with("FAKE_DOCKER_MOUNT_WRITES", "deps").run().assert_success();
    let other = saved_image(dir.path());
    assert_ne!(layer_digest(&other, "deps"), layer_digest(&restored, "deps"));
    std::fs::copy(manifests.join("buildcache-mounts"), manifests.join("other-job")).unwrap();
    std::fs::write(manifests.join("buildcache-mounts"), &first).unwrap();
    // This run restores the first image; while it builds, another job's save moves the tag.
    empty_builder(&log);
    two_stores(&registry, dir.path(), &log)
        .with("FAKE_DOCKER_MOUNT_WRITES", "out")
        .with("FAKE_DOCKER_RETAG_DURING_BUILD", "team/app:other-job")
        .run()
        .assert_success();
    let now = saved_image(dir.path());
    assert_eq!(layer_digest(&now, "deps"), layer_digest(&restored, "deps"), "the layer of the store it restored");
}

const PNPM_DOCKERFILE: &str = "# syntax=docker/dockerfile:1\nFROM node:22 AS deps\nARG STORE=pnpm-store\nRUN --mount=type=cache,id=${STORE},target=/pnpm/store,sharing=locked \\\n    pnpm install --frozen-lockfile\n";

fn helper_builds(run: &Run) -> Vec<Value> {
    let log = run.env.iter().find(|(k, _)| k == "FAKE_DOCKER_LOG").map(|(_, v)| v.clone()).unwrap();
    helper_builds_in(Path::new(&log))
}

#[test]
fn cache_mounts_are_saved_after_a_trusted_build_and_restored_by_the_next() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    let first = Run::new("push", "push-default-branch.json")
        .with_dockerfile(PNPM_DOCKERFILE)
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap());
    let done = first.run();
    done.assert_success();
    assert!(
        done.stdout
            .contains("::notice::No saved cache-mount contents yet (ghcr.io/codertocat/hello-world:buildcache-mounts)"),
        "{}",
        done.stdout
    );
    let helpers = helper_builds(&first);
    assert_eq!(helpers.len(), 1, "only the save helper: nothing to restore yet");
    let save = &helpers[0];
    let text = save["file_text"].as_str().unwrap();
    assert!(text.contains("RUN --mount=type=cache,id=pnpm-store,target=/sdi-mount,sharing=locked"), "{text}");
    assert!(text.contains("cp -a /sdi-mount/. /m-706e706d2d73746f7265/"), "{text}");
    let argv = argv(save);
    assert_eq!(
        flag_values(&argv, "--output"),
        ["type=image,name=ghcr.io/codertocat/hello-world:buildcache-mounts,push=true,compression=zstd"]
    );
    assert!(flag_values(&argv, "--build-arg")[0].starts_with("SDI_RUN="), "never served from cache");
    assert!(first.summary().contains("| `pnpm-store` | no | 2.1 MB |"), "{}", first.summary());

    empty_builder(&log);
    let second = Run::new("push", "push-default-branch.json")
        .with_dockerfile(PNPM_DOCKERFILE)
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap());
    second.run().assert_success();
    let calls: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let restore = calls
        .iter()
        .find(|c| c["file_text"].as_str().is_some_and(|t| t.contains("AS saved")))
        .expect("a restore helper build");
    let text = restore["file_text"].as_str().unwrap();
    // Pinned to the digest the tag named when it was looked up.
    let first_line = text.lines().next().unwrap();
    let pinned = first_line.strip_prefix("FROM ghcr.io/codertocat/hello-world:buildcache-mounts@").unwrap_or_default();
    assert!(
        pinned.strip_suffix(" AS saved").is_some_and(|d| sdi::context::inputs::Digest::parse(d).is_some()),
        "{text}"
    );
    assert!(text.contains("--mount=type=cache,id=pnpm-store,target=/sdi-mount,sharing=locked --mount=type=bind,from=saved,target=/sdi-saved"));
    let main_build = calls.iter().rposition(|c| c["argv"][1] == "build" && c["file_text"].is_null()).unwrap();
    let restore_at =
        calls.iter().rposition(|c| c["file_text"].as_str().is_some_and(|t| t.contains("AS saved"))).unwrap();
    assert!(restore_at < main_build, "restored before the build");
    assert!(second.summary().contains("| `pnpm-store` | 2.1 MB | 2.1 MB |"), "{}", second.summary());
}

#[test]
fn untrusted_runs_restore_from_the_main_lane_and_never_save() {
    let run = Run::new("pull_request", "pull_request-fork-opened.json")
        .with_dockerfile(PNPM_DOCKERFILE)
        .with("INPUT_PLATFORMS", "linux/amd64");
    let done = run.run();
    done.assert_success();
    assert!(
        done.stdout.contains("No saved cache-mount contents yet (ghcr.io/codertocat/hello-world:buildcache-mounts)")
    );
    assert!(helper_builds(&run).is_empty(), "no save helper for untrusted code");
    let pr = Run::new("pull_request", "pull_request-same-repo-opened.json")
        .with_dockerfile(PNPM_DOCKERFILE)
        .with("INPUT_PLATFORMS", "linux/amd64");
    let done = pr.run();
    done.assert_success();
    assert!(done.stdout.contains(
        "(ghcr.io/codertocat/hello-world:buildcache-mounts-pr, ghcr.io/codertocat/hello-world:buildcache-mounts)"
    ));
    let save = &helper_builds(&pr)[0];
    assert_eq!(
        flag_values(&argv(save), "--output"),
        ["type=image,name=ghcr.io/codertocat/hello-world:buildcache-mounts-pr,push=true,compression=zstd"]
    );
}

#[test]
fn a_store_over_the_size_limit_is_not_saved_and_helpers_never_fail_the_build() {
    let big = Run::new("push", "push-default-branch.json")
        .with_dockerfile(PNPM_DOCKERFILE)
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("INPUT_CACHE-MOUNTS-MAX-SIZE", "1MiB")
        .with("FAKE_DOCKER_MOUNT_KIB", "5000");
    let done = big.run();
    done.assert_success();
    assert!(helper_builds(&big)[0]["file_text"].as_str().unwrap().contains("-le 1024 ]"));
    assert!(done.stdout.contains("::warning::Cache mount 'pnpm-store' is bigger than cache-mounts-max-size (1048576 bytes): it was not saved."), "{}", done.stdout);
    assert!(big.summary().contains("no (over cache-mounts-max-size)"));

    let failing = Run::new("push", "push-default-branch.json")
        .with_dockerfile(PNPM_DOCKERFILE)
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("FAKE_DOCKER_FAIL_HELPERS", "1");
    let done = failing.run();
    done.assert_success();
    assert!(
        done.stdout
            .contains("::warning::Cache mounts were not saved to ghcr.io/codertocat/hello-world:buildcache-mounts"),
        "{}",
        done.stdout
    );
    assert_eq!(failing.outputs()["pushed"], "true");
}

#[test]
fn cache_mounts_off_makes_no_helper_build() {
    let run = Run::new("push", "push-default-branch.json")
        .with_dockerfile(PNPM_DOCKERFILE)
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("INPUT_CACHE-MOUNTS", "off");
    run.run().assert_success();
    assert!(helper_builds(&run).is_empty());
    assert!(!run.calls().iter().any(|c| argv(c).contains(&"imagetools".to_string())));
}

#[test]
fn a_system_without_ca_certificates_says_so_instead_of_crashing() {
    // As in an image without a CA bundle: no registry client can be made. The saved stores
    // image cannot be read, so every store is restored and saved whole, the reason in the
    // debug log; the run never panics (it did: exit 101).
    let (registry, dir, state, log) = served();
    let empty = state.path().join("no-certs.pem");
    std::fs::write(&empty, "").unwrap();
    two_stores(&registry, dir.path(), &log).run().assert_success();
    empty_builder(&log);
    let run = two_stores(&registry, dir.path(), &log)
        .with("SSL_CERT_FILE", empty.to_str().unwrap())
        .with("SSL_CERT_DIR", state.path().to_str().unwrap())
        .with("RUNNER_DEBUG", "1");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(0), "{}\n{}", done.stdout, done.stderr);
    assert!(done.stdout.contains("could not be read (cannot make a registry client: "), "{}", done.stdout);
    let summary = run.summary();
    assert!(
        summary.contains("| `deps` | 2.1 MB | 2.1 MB |") && summary.contains("| `out` | 2.1 MB | 2.1 MB |"),
        "{summary}"
    );
}
