//! A failed docker call is reported by its cause, not by the CLI's last line: one test per
//! kind of call. The fake fails each the way the real one does (the daemon's answer, then the
//! CLI's trailer where it prints one: `Run 'docker run --help' …`, `Error: failed to start
//! containers: …`, buildx's progress before its `ERROR:`).

mod common;

use common::run::*;

/// The run's one `::error` line, after it failed with exit 1.
fn the_error(run: &Run) -> String {
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let errors: Vec<&str> = done.stdout.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{}", done.stdout);
    errors[0].to_string()
}

fn says(line: &str, cause: &str, not: &[&str]) {
    assert!(line.contains(cause), "{cause:?} not in {line}");
    for trailer in not {
        assert!(!line.contains(trailer), "{trailer:?} in {line}");
    }
}

#[test]
fn login() {
    let line = the_error(&push().with("FAKE_DOCKER_FAIL_LOGIN", "1"));
    says(
        &line,
        "docker login to ghcr.io failed (Error response from daemon: Get \"https://ghcr.io/v2/\": denied: denied)",
        &[],
    );
}

#[test]
fn login_through_the_engine_api() {
    let line = the_error(&push().with("FAKE_DOCKER_FAIL_LOGIN", "1").via_engine_api());
    says(
        &line,
        "docker login to ghcr.io failed (Error response from daemon: Get \"https://ghcr.io/v2/\": denied: denied)",
        &[],
    );
}

#[test]
fn builder_create() {
    let line = the_error(&push().with("FAKE_DOCKER_FAIL", "create"));
    says(
        &line,
        "could not create a docker-container builder: ERROR: Error response from daemon: toomanyrequests",
        &["booting buildkit"],
    );
}

#[test]
fn builder_inspect() {
    let line = the_error(&push().with_user_builder("ci", "docker-container").with("FAKE_DOCKER_FAIL", "inspect"));
    says(&line, "builder 'ci' cannot be used: ERROR: Get ", &[]);
    says(&line, "context deadline exceeded", &[]);
}

#[test]
fn binfmt() {
    let run = Run::new("push", "push-default-branch.json")
        .with_dockerfile("FROM alpine\nRUN apk add curl\n")
        .with("INPUT_PLATFORMS", "linux/amd64,linux/arm64")
        .with("FAKE_DOCKER_FAIL", "binfmt");
    let line = the_error(&run);
    says(
        &line,
        "could not register QEMU for linux/arm64: docker: Error response from daemon: Get \"https://registry-1.docker.io/v2/\"",
        &["Run 'docker run --help'", "Unable to find image"],
    );
}

#[test]
fn container_inspect() {
    let line = the_error(&push().with("INPUT_BUILDER", "userbuilder").with("FAKE_DOCKER_FAIL", "container-inspect"));
    says(
        &line,
        "(Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?)",
        &[],
    );
}

#[test]
fn container_start() {
    let run = push()
        .with("INPUT_BUILDER", "userbuilder")
        .with("FAKE_DOCKER_CONTAINERS", "buildx_buildkit_userbuilder0=exited")
        .with("FAKE_DOCKER_FAIL", "start");
    let line = the_error(&run);
    says(
        &line,
        "its container buildx_buildkit_userbuilder0 is stopped and could not be started: Error response from daemon: failed to create task",
        &["Error: failed to start containers"],
    );
}

#[test]
fn remote_attach() {
    let run = push()
        .with("INPUT_BUILDER", "userbuilder")
        .with("FAKE_DOCKER_CONTAINERS", "buildx_buildkit_userbuilder0=running")
        .with("FAKE_DOCKER_FAIL", "create");
    says(
        &the_error(&run),
        "could not attach the BuildKit at docker-container://buildx_buildkit_userbuilder0: ERROR: Error response from daemon: toomanyrequests",
        &["booting buildkit"],
    );
}

#[test]
fn imagetools_create() {
    let (registry, dir) = common::dir_registry();
    let run = secret_push(&registry, dir.path())
        .with("INPUT_TAGS", &format!("{registry}/team/mirror:v1"))
        .with("FAKE_DOCKER_FAIL", "imagetools-create");
    says(
        &the_error(&run),
        "pushing the tags failed: ERROR: failed commit on ref \"index-sha256:4f0c\": unexpected status from PUT request",
        &["#1 [internal] pushing"],
    );
}

#[test]
fn cache_mount_helper() {
    let run = push()
        .with_dockerfile("FROM node:22\nRUN --mount=type=cache,id=pnpm,target=/pnpm/store pnpm install\n")
        .with("FAKE_DOCKER_FAIL_HELPERS", "1");
    let done = run.run();
    done.assert_success();
    let warning = done.stdout.lines().find(|l| l.starts_with("::warning::Cache mounts were not saved")).unwrap();
    says(warning, "ERROR: failed to build: failed to solve: helper failed as asked", &["{\"vertexes\""]);
}

/// The main build calls the fake made (not the cache-mount helpers).
fn builds(run: &Run) -> usize {
    run.calls().iter().filter(|c| argv(c).get(1).is_some_and(|a| a == "build") && c["file_text"].is_null()).count()
}

#[test]
fn a_push_refused_in_buildkits_push_race_is_pushed_again_once() {
    let run = push().with("FAKE_DOCKER_FAIL", "push-race");
    let done = run.run();
    done.assert_success();
    assert_eq!(builds(&run), 2, "built once more, from the cache");
    assert!(done.stdout.contains("::notice::The registry refused a push while BuildKit was still uploading a blob"));
    assert_eq!(run.outputs()["pushed"], "true");

    // A registry that keeps refusing: one more try, then the cause.
    let always = push().with("FAKE_DOCKER_FAIL", "push-race-always");
    let line = the_error(&always);
    assert_eq!(builds(&always), 2);
    says(&line, "failed to push", &[]);

    // Any other failure is not retried.
    let broken = push().with("FAKE_DOCKER_SCENARIO", "dockerfile-error");
    assert_eq!(broken.run().output.status.code(), Some(1));
    assert_eq!(builds(&broken), 1);
}
