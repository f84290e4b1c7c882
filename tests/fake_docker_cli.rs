//! The fake docker is only worth its tests if it is faithful: it refuses what the real CLI
//! refuses and keeps the real outcomes.

use std::process::Command;

fn fake(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-docker"));
    // Run in the test's own directory: "." is an empty build context, not this repository.
    cmd.args(args)
        .current_dir(dir)
        .env("FAKE_DOCKER_LOG", dir.join("calls.jsonl"))
        .env("DOCKER_CONFIG", dir.join("config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn refuses_flags_that_buildx_build_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let out = fake(dir.path(), &["buildx", "build", "--push", "--bogus", "."], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag: --bogus"));
    let out = fake(dir.path(), &["buildx", "build", "--secret-env", "x", "."], &[]);
    assert!(!out.status.success(), "close misspellings are refused too");
    let out =
        fake(dir.path(), &["buildx", "build", "-t", "a:b", "-f", "Dockerfile", "--platform=linux/amd64", "."], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = fake(dir.path(), &["buildx", "build", "--tag"], &[]);
    assert!(!out.status.success(), "a flag without its value");
    let out = fake(dir.path(), &["buildx", "build", "a", "b"], &[]);
    assert!(!out.status.success(), "exactly one context");
}

#[test]
fn rawjson_progress_is_a_vertex_stream_and_plain_is_the_captured_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = fake(dir.path(), &["buildx", "build", "--progress", "rawjson", "."], &[("FAKE_DOCKER_SCENARIO", "warm")]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v.get("vertexes").or(v.get("statuses")).or(v.get("logs")).is_some(), "{line}");
    }
    assert_eq!(stderr.matches("\"cached\":true").count(), 4);
    let out = fake(dir.path(), &["buildx", "build", "--progress=plain", "."], &[("FAKE_DOCKER_SCENARIO", "warm")]);
    assert!(String::from_utf8(out.stderr).unwrap().contains("#8 [4/4] COPY app.txt /app.txt\n#8 CACHED"));
}

#[test]
fn a_denied_cache_export_fails_without_ignore_error_as_buildx_does() {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta.json");
    let m = meta.to_str().unwrap();
    let strict = [
        "buildx",
        "build",
        "--push",
        "-t",
        "r/a:b",
        "--cache-to",
        "type=registry,ref=r/a:c,mode=max",
        "--metadata-file",
        m,
        ".",
    ];
    let out = fake(dir.path(), &strict, &[("FAKE_DOCKER_SCENARIO", "cache-denied")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!meta.exists(), "no metadata file after a failed build");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("ERROR: failed to build: failed to solve: error writing layer blob")
    );
    let lenient = [
        "buildx",
        "build",
        "--push",
        "-t",
        "r/a:b",
        "--cache-to",
        "type=registry,ref=r/a:c,mode=max,ignore-error=true",
        "--metadata-file",
        m,
        ".",
    ];
    let out = fake(dir.path(), &lenient, &[("FAKE_DOCKER_SCENARIO", "cache-denied")]);
    assert!(out.status.success());
    let metadata: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert!(metadata.get("cache.manifest").is_none());
    assert_eq!(metadata["image.name"], "r/a:b");
}

#[test]
fn login_reads_the_password_from_stdin_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = fake(dir.path(), &["login", "ghcr.io", "--username", "u", "--password", "p"], &[]);
    assert!(!out.status.success());
    let calls = std::fs::read_to_string(dir.path().join("calls.jsonl")).unwrap();
    assert!(calls.contains("\"exit\":1"));
}
