//! Cache-mount stores restored only for a run that uses them: the build runs without them and
//! is stopped when a step that mounts a store with a saved copy starts for real; the stores are
//! restored (the stopped step's partial files replaced) and the build runs again. And a store
//! emptied under the build is reported, never saved over its saved copy. Against the fake
//! `docker`, whose steps that mount a store run until a SIGINT when this run found a saved
//! stores image (tests/fake_docker/stores.rs).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::run::*;
use serde_json::Value;

const PNPM: &str = "FROM node:22\nRUN --mount=type=cache,id=pnpm-store,target=/pnpm/store pnpm install\n";

fn pnpm(log: &std::path::Path) -> Run {
    push().with_dockerfile(PNPM).with("FAKE_DOCKER_LOG", log.to_str().unwrap())
}

/// `pnpm`, pushing to the registry a test serves from `dir` (the saved image is then read).
fn pnpm_in(log: &std::path::Path, registry: &str, dir: &std::path::Path) -> Run {
    pnpm(log)
        .with("INPUT_IMAGE", &format!("{registry}/team/app"))
        .with("FAKE_DOCKER_REGISTRY_DIR", dir.to_str().unwrap())
}

/// The calls the fake recorded so far (a line it is still writing is left out).
fn calls(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// What each docker call of a run was: `inspect`, `build <exit>`, `restore`, `check`, `save`.
fn phases(calls: &[Value]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| {
            let text = c["file_text"].as_str().unwrap_or_default();
            let argv = c["argv"].to_string();
            Some(match () {
                _ if argv.contains("imagetools") && argv.contains("buildcache-mounts") => "inspect".to_string(),
                _ if text.contains(" AS saved") => "restore".to_string(),
                _ if text.contains("sdi-mount-fp") => "check".to_string(),
                _ if text.contains("sdi-mount-size") => "save".to_string(),
                _ if c["argv"][1] == "build" => format!("build {}", c["exit"]),
                _ => return None,
            })
        })
        .collect()
}

fn store(state: &std::path::Path, id: &str) -> String {
    let text = std::fs::read_to_string(state.join("fake-docker-stores.json")).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or_default();
    v[""][id].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_run_whose_mounting_step_runs_stops_restores_that_store_once_and_builds_again() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    pnpm(&log).run().assert_success();
    assert_eq!(phases(&calls(&log)), ["inspect", "build 0", "save"], "a first run: nothing saved to restore");
    let saved = store(state.path(), "pnpm-store");

    empty_builder(&log);
    std::fs::remove_file(&log).unwrap();
    let second = pnpm(&log);
    let done = second.run();
    done.assert_success();
    assert_eq!(
        phases(&calls(&log)),
        ["inspect", "build 1", "restore", "build 0", "check", "save"],
        "stopped as the install began, restored once, built again"
    );
    assert!(done.stdout.contains("Stopping the build: a step begins to use the cache-mount store(s) pnpm-store"));
    let restore = calls(&log).into_iter().find(|c| c["file_text"].as_str().is_some_and(|t| t.contains(" AS saved")));
    let text = restore.unwrap()["file_text"].as_str().unwrap().to_string();
    assert!(
        text.contains("find /sdi-mount -mindepth 1 -maxdepth 1 -exec rm -rf {} +; if [ -d /sdi-saved/"),
        "the partial store is emptied first: {text}"
    );
    // The step ran once more on the saved contents: no partial file of the stopped one is left.
    let now = store(state.path(), "pnpm-store");
    assert!(now.starts_with(&saved) && !now.contains("partial"), "{now}");
    assert!(second.summary().contains("| `pnpm-store` | 2.1 MB | 2.1 MB |"), "{}", second.summary());
}

#[test]
fn a_cancel_after_the_restore_ends_the_run_promptly() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    pnpm(&log).run().assert_success();
    empty_builder(&log);
    std::fs::remove_file(&log).unwrap();
    // Every step that mounts a store now runs for 20 s unless stopped.
    let stamp = state.path().join("stamp");
    let run = pnpm(&log).with("FAKE_DOCKER_MOUNT_STEP_MS", "20000").with("FAKE_DOCKER_STAMP", stamp.to_str().unwrap());
    let mut child = run.command().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let waited = Instant::now();
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        while !done() {
            assert!(waited.elapsed() < Duration::from_secs(20), "never {what}: {:?}", phases(&calls(&log)));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The fake stamps a line as each build starts: the stopped one, the restore, this one.
    wait_for("built again", &|| std::fs::read_to_string(&stamp).unwrap_or_default().lines().count() >= 3);
    std::thread::sleep(Duration::from_millis(200));
    let status = sigterm_and_wait(&mut child);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert_eq!(phases(&calls(&log)), ["inspect", "build 1", "restore", "build 1"], "the second build was cancelled");
    let last = calls(&log).last().unwrap()["argv"].clone();
    assert_eq!((last[0].as_str(), last[1].as_str()), (Some("buildx"), Some("rm")), "the builder is removed");
    assert!(files_below(&run.path("runner_temp")).is_empty(), "the private directory is removed");
}

#[test]
fn a_store_emptied_under_the_build_is_reported_and_not_saved_over_the_saved_copy() {
    let (registry, dir) = common::dir_registry();
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    let run = || pnpm_in(&log, &registry, dir.path());
    run().run().assert_success();
    let manifest = dir.path().join("v2/team/app/manifests/buildcache-mounts");
    let before = std::fs::read(&manifest).unwrap();

    empty_builder(&log);
    let pruned = run().with("FAKE_DOCKER_PRUNE_UNDER_BUILD", "1");
    let done = pruned.run();
    done.assert_success();
    assert!(
        done.stdout
            .contains("::warning::Cache mount 'pnpm-store' was restored with 2048 KiB and is empty after the build"),
        "{}",
        done.stdout
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), before, "the saved copy is still what the tag names");
    assert!(!phases(&calls(&log)).ends_with(&["save".to_string()]), "{:?}", phases(&calls(&log)));
    let summary = pruned.summary();
    assert!(
        summary.contains("| `pnpm-store` | 2.1 MB | no (emptied under the build: the saved copy is kept) |"),
        "{summary}"
    );
}

#[test]
fn on_a_builder_that_outlives_runs_a_stopped_steps_partial_store_is_replaced_and_a_whole_one_kept() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    pnpm(&log).run().assert_success();
    // The user's builder was pruned: the store is empty, and the stopped step leaves partial files.
    empty_builder(&log);
    let pruned = pnpm(&log).with_user_builder("long-lived", "docker-container");
    pruned.run().assert_success();
    assert!(pruned.summary().contains("| `pnpm-store` | 2.1 MB |"), "restored: {}", pruned.summary());
    assert!(!store(state.path(), "pnpm-store").contains("partial"));
    // The builder kept its store: the stopped step's files sit on a whole store, which stays.
    let warm = pnpm(&log).with_user_builder("long-lived", "docker-container");
    warm.run().assert_success();
    assert!(warm.summary().contains("| `pnpm-store` | no (already warm: 2.1 MB) |"), "{}", warm.summary());
}

/// `auto` restores a store only where that pays, by what earlier runs measured (kept in the
/// saved image's label): here the install takes `cold` s on an empty store and 1.0 s on a
/// restored one. After a first run (measures cold) and a restoring one (measures the restore
/// and warm), a third on an emptied builder restores only if restore + warm < cold; a store
/// left to its steps is not saved either (its saved copy stays), and the summary says why.
#[test]
fn a_store_quicker_to_refill_than_to_restore_is_left_to_its_steps() {
    for (cold, restored) in [("0.5", false), ("30.0", true)] {
        let (registry, dir) = common::dir_registry();
        let state = tempfile::tempdir().unwrap();
        let log = state.path().join("calls.jsonl");
        let run = || {
            let run = pnpm_in(&log, &registry, dir.path()).with("FAKE_DOCKER_COLD_STEP_SECS", cold);
            run.with("FAKE_DOCKER_MOUNT_STEP_MS", "1500")
        };
        run().run().assert_success();
        for _ in 0..2 {
            empty_builder(&log);
            std::fs::remove_file(&log).unwrap();
            let manifests = dir.path().join("v2/team/app/manifests/buildcache-mounts");
            let before = std::fs::read(&manifests).unwrap();
            let third = run();
            let done = third.run();
            done.assert_success();
            let phases = phases(&calls(&log));
            let summary = third.summary();
            let refilled = !phases.contains(&"restore".to_string());
            if !refilled {
                assert_eq!(phases, ["inspect", "build 1", "restore", "build 0", "check", "save"], "{summary}");
                continue;
            }
            assert!(!restored, "cold {cold}: worth restoring, yet refilled: {summary}");
            assert_eq!(phases, ["inspect", "build 0"], "no stop, no restore, no save");
            assert!(
                summary.contains("| `pnpm-store` | no (its steps refill it in 0.5 s; restoring took "),
                "{summary}"
            );
            assert!(summary.contains("and its steps then 1.0 s) | no (not restored, so not saved"), "{summary}");
            assert!(summary.contains("Cache-mount helpers: restore –, save –."), "no helper ran: {summary}");
            assert!(!done.stdout.contains("Cache mounts not saved"), "nothing to say of the others: {}", done.stdout);
            assert!(
                done.stdout
                    .contains("::notice::Cache mount 'pnpm-store' is not restored: its steps refill it in 0.5 s")
            );
            assert_eq!(std::fs::read(&manifests).unwrap(), before, "the saved copy stays");
        }
        let last = phases(&calls(&log));
        assert_eq!(last.contains(&"restore".to_string()), restored, "cold {cold}: {last:?}");
    }
}

/// One step mounts two stores: one worth restoring, one its steps refill quicker (by what
/// earlier runs measured). The build stops as that step starts, and the stopped step has begun
/// to write both; on a fresh builder, the store left to its steps is emptied with the restore
/// (it was empty before), so its steps refill it from nothing, not from the stopped step's
/// partial files.
#[test]
fn a_store_left_to_its_steps_that_the_stopped_step_touched_starts_empty_again() {
    const TWO: &str = "FROM node:22\nRUN --mount=type=cache,id=pnpm-store,target=/pnpm/store --mount=type=cache,id=tools,target=/tools pnpm install\n";
    let (registry, dir) = common::dir_registry();
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    let (pnpm_dir, tools_dir) = (sdi::plan::mount_dir("pnpm-store"), sdi::plan::mount_dir("tools"));
    let costs = format!("{pnpm_dir}:cold=500,warm=1000,restore=100 {tools_dir}:cold=30000,warm=1000,restore=100");
    let run = || pnpm_in(&log, &registry, dir.path()).with_dockerfile(TWO).with("FAKE_DOCKER_SAVE_COSTS", &costs);
    run().run().assert_success();

    empty_builder(&log);
    std::fs::remove_file(&log).unwrap();
    let second = run();
    let done = second.run();
    done.assert_success();
    assert_eq!(phases(&calls(&log)), ["inspect", "build 1", "restore", "build 0", "check", "save"]);
    assert!(
        done.stdout.contains("::notice::Cache mount 'pnpm-store' is not restored: its steps refill it in 0.5 s"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("Stopping the build: a step begins to use the cache-mount store(s) tools"));
    let restore = calls(&log).into_iter().find(|c| c["file_text"].as_str().is_some_and(|t| t.contains(" AS saved")));
    let text = restore.unwrap()["file_text"].as_str().unwrap().to_string();
    assert!(text.contains("id=tools,"), "{text}");
    for id in ["pnpm-store", "tools"] {
        let now = store(state.path(), id);
        assert!(!now.contains("partial"), "{id}: the stopped step's partial files are left: {now}");
    }
    let summary = second.summary();
    assert!(summary.contains("| `pnpm-store` | no (its steps refill it in 0.5 s;"), "{summary}");
}
