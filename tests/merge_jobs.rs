//! Per-platform jobs (push-by-digest) and the merge job that makes one manifest list of their
//! digests, against the fake docker.

mod common;

use common::run::*;
use serde_json::Value;

/// Two per-platform jobs push by digest into the fake registry; the merge job combines them.
#[test]
fn per_platform_jobs_then_a_merge_make_one_manifest_list() {
    let digests_dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    let mut cache_refs = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        let run = Run::new("push", "push-default-branch.json")
            .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
            .with("FAKE_DOCKER_PLATFORMS", "linux/amd64, linux/arm64")
            .with("INPUT_PUSH-BY-DIGEST", "true")
            .with("INPUT_PLATFORMS", platform);
        let done = run.run();
        done.assert_success();
        let out = run.outputs();
        let digest = out["digest"].clone();
        assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
        assert!(!out.contains_key("tags"), "nothing is tagged by a per-platform job");
        assert!(
            run.summary().contains(&format!("<code>ghcr.io/codertocat/hello-world@{digest}</code>")),
            "{}",
            run.summary()
        );
        // As docker's recipe does: one empty file a digest, handed to the merge job.
        std::fs::write(digests_dir.path().join(digest.trim_start_matches("sha256:")), "").unwrap();
        cache_refs.push(out["cache-to"].clone());
    }
    let builds: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|c| c["argv"][1] == "build")
        .collect();
    for b in &builds {
        let a = argv(b);
        assert!(!a.contains(&"--tag".to_string()) && !a.contains(&"--push".to_string()));
        assert_eq!(
            flag_values(&a, "--output"),
            ["type=image,name=ghcr.io/codertocat/hello-world,push-by-digest=true,name-canonical=true,push=true"]
        );
    }
    assert_eq!(
        cache_refs,
        [
            "type=registry,ref=ghcr.io/codertocat/hello-world:buildcache-linux-amd64,mode=max,ignore-error=true",
            "type=registry,ref=ghcr.io/codertocat/hello-world:buildcache-linux-arm64,mode=max,ignore-error=true"
        ],
        "parallel jobs never write the same cache ref"
    );

    let merge = Run::new("push", "push-default-branch.json")
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
        .with("INPUT_MERGE-DIGESTS", digests_dir.path().to_str().unwrap());
    let done = merge.run();
    done.assert_success();
    let calls: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let merge_calls: Vec<Vec<String>> = calls[calls.len() - 4..].iter().map(argv).collect();
    assert_eq!(merge_calls[0][..2], ["login", "ghcr.io"]);
    assert_eq!(merge_calls[1][..4], ["buildx", "imagetools", "create", "--dry-run"]);
    assert_eq!(merge_calls[2][..3], ["buildx", "imagetools", "create"]);
    assert!(!merge_calls[2].contains(&"--dry-run".to_string()));
    assert_eq!(merge_calls[3], ["buildx", "imagetools", "inspect", "ghcr.io/codertocat/hello-world:latest"]);
    assert!(
        !calls.iter().skip(calls.len() - 4).any(|c| c["argv"][1] == "create" && c["argv"][0] == "buildx"),
        "no builder for a merge"
    );
    let out = merge.outputs();
    assert!(out["digest"].starts_with("sha256:"));
    assert_eq!(out["pushed"], "true");
    // The fake registry now has an index with both platforms under the tag.
    let fake = std::process::Command::new(env!("CARGO_BIN_EXE_fake-docker"))
        .args(["buildx", "imagetools", "inspect", "--raw", "ghcr.io/codertocat/hello-world:latest"])
        .env("FAKE_DOCKER_LOG", &log)
        .output()
        .unwrap();
    let index: Value = serde_json::from_slice(&fake.stdout).unwrap();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .filter(|p| p != "unknown/unknown")
        .collect();
    let mut platforms = platforms;
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let summary = merge.summary();
    assert!(
        summary.contains("| Mode | merge of 2 digests |")
            && summary.contains("| Platforms | linux/amd64, linux/arm64 |"),
        "{summary}"
    );
}

#[test]
fn a_merge_of_a_missing_digest_or_of_one_platform_twice_fails_before_pushing() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("calls.jsonl");
    let missing = Run::new("push", "push-default-branch.json")
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
        .with("INPUT_MERGE-DIGESTS", "sha256:3333333333333333333333333333333333333333333333333333333333333333");
    let done = missing.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(
        done.stdout.contains(
            "::error::Build failed: the digests cannot be merged: ERROR: ghcr.io/codertocat/hello-world@sha256:3333"
        ),
        "{}",
        done.stdout
    );
    assert!(!missing.outputs().contains_key("digest"));

    let mut digests = Vec::new();
    for context in ["a", "b"] {
        std::fs::create_dir_all(state.path().join(context)).unwrap();
        let run = Run::new("push", "push-default-branch.json")
            .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
            .with("INPUT_PUSH-BY-DIGEST", "true")
            .with("INPUT_PLATFORMS", "linux/amd64")
            .with("INPUT_CONTEXT", state.path().join(context).to_str().unwrap());
        run.run().assert_success();
        digests.push(run.outputs()["digest"].clone());
    }
    let twice = Run::new("push", "push-default-branch.json")
        .with("FAKE_DOCKER_LOG", log.to_str().unwrap())
        .with("INPUT_MERGE-DIGESTS", &digests.join("\n"));
    let done = twice.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(done.stdout.contains("are both linux/amd64"), "{}", done.stdout);
    let last: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().last().unwrap()).unwrap();
    assert!(argv(&last).contains(&"--dry-run".to_string()), "nothing was pushed after the dry run");
}

#[test]
fn an_untrusted_merge_does_nothing_and_stays_green() {
    let run = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("INPUT_MERGE-DIGESTS", "sha256:3333333333333333333333333333333333333333333333333333333333333333");
    let done = run.run();
    done.assert_success();
    assert!(run.calls().is_empty(), "{:?}", run.calls());
    assert!(done.stdout.contains("::notice::Nothing merged: No merge: untrusted runs never merge."), "{}", done.stdout);
    assert_eq!(run.outputs()["pushed"], "false");
}
