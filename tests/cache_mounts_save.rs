//! Cache-mount stores after the build: saved only when a step that mounts them ran (a build
//! whose steps all came from cache pushes nothing), one store per expanded platform id, and
//! the helpers' times in the summary.

mod common;

use common::run::*;

const STORE_PER_ARCH: &str = "FROM --platform=$BUILDPLATFORM node:22 AS deps\nARG TARGETARCH\nRUN --mount=type=cache,id=st-${TARGETARCH},target=/store pnpm install\n";

fn saves(log: &std::path::Path) -> usize {
    helper_builds_in(log).iter().filter(|c| c["file_text"].as_str().unwrap().contains("/sdi-out")).count()
}

fn pushed_to_log(log: &std::path::Path, platforms: &str) -> Run {
    Run::new("push", "push-default-branch.json")
        .with_dockerfile(STORE_PER_ARCH)
        .with("INPUT_PLATFORMS", platforms)
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
}

#[test]
fn a_build_whose_steps_all_came_from_cache_saves_nothing() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    let first = pushed_to_log(&log, "linux/amd64");
    first.run().assert_success();
    assert_eq!(saves(&log), 1, "the install step ran: its store is saved");
    assert!(first.summary().contains("Cache-mount helpers: restore "), "{}", first.summary());
    assert!(first.summary().contains(", save ") && !first.summary().contains("save –"), "{}", first.summary());

    let cached = pushed_to_log(&log, "linux/amd64").with("FAKE_DOCKER_SCENARIO", "warm");
    let done = cached.run();
    done.assert_success();
    assert_eq!(saves(&log), 1, "no second save: nothing pushed");
    assert!(done.stdout.contains("::notice::Cache mounts not saved: every step that uses them came from cache"));
    let summary = cached.summary();
    assert!(summary.contains("| `st-amd64` | 2.1 MB | no (unchanged: its steps came from cache) |"), "{summary}");
    assert!(summary.contains(", save –."), "{summary}");
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
        for save in texts.iter().filter(|t| t.contains("/sdi-out")) {
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
