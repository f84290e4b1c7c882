//! The Engine API as the docker CLI speaks it, against the daemons runners have: the version
//! negotiated once (`/_ping`), every request under it, answers read as each daemon gives them.
//! The fake daemon answers with the bodies captured from Docker 20.10, 28.0.4 and 29.7.2
//! (tests/fixtures/engine, `capture.sh` there re-captures them).

mod common;

use common::run::*;

const OWN: &str = "ed4ec7b42ce410c4e232f727bd043e7794c4fb2ca8e83f376bf6f1d1d04069f0";

/// In the action's image, without a docker CLI, against the daemon captured in `daemon`.
fn against(daemon: &str) -> Run {
    push()
        .with("SDI_OWN_CONTAINER", OWN)
        .with("FAKE_DOCKER_ACTION_CONTAINER", &format!("{OWN}=0.32.2"))
        .with("FAKE_ENGINE_DAEMON", daemon)
        .via_engine_api()
}

/// Each request's version, as the fake daemon saw it: `METHOD VERSION PATH` lines.
fn versions(run: &Run) -> Vec<String> {
    let text = std::fs::read_to_string(run.path("engine-versions.log")).unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

fn assert_all_at(run: &Run, version: &str) {
    let seen = versions(run);
    assert!(!seen.is_empty(), "the daemon was asked");
    for line in &seen {
        assert_eq!(line.split(' ').nth(1), Some(version), "every request under /v{version}/: {seen:?}");
    }
}

#[test]
fn each_daemon_is_spoken_to_at_the_lower_version_and_its_answers_read() {
    // 20.10 speaks 1.41; 28.0.4 is this client's 1.48; 29.7.2 speaks 1.55, answered at 1.48.
    for (daemon, version) in [("20.10.24+dfsg1", "1.41"), ("28.0.4", "1.48"), ("29.7.2", "1.48")] {
        // The own BuildKit's run: login, the action's container, BuildKit's created and started.
        let run = against(daemon);
        let done = run.run();
        done.assert_success();
        assert!(run.call(&["run", "--detach"]).is_some(), "{daemon}: BuildKit started from the image");
        assert_all_at(&run, version);
        let asked: Vec<String> = versions(&run).iter().map(|l| l.split(' ').skip(2).collect()).collect();
        assert!(asked.iter().any(|p| p.ends_with("/json")) && asked.contains(&"/auth".to_string()), "{asked:?}");

        // QEMU from its pulled image: the pull's stream, a container run to its end, removed.
        let qemu = against(daemon)
            .with("INPUT_PLATFORMS", "linux/amd64,linux/mips64le")
            .with_dockerfile("FROM busybox\nRUN echo hi\n");
        qemu.run().assert_success();
        assert!(qemu.call(&["run", "--privileged"]).is_some(), "{daemon}: QEMU registered");
        assert_all_at(&qemu, version);
        let asked = versions(&qemu).join("\n");
        for path in ["/images/create", "/containers/create", "/wait"] {
            assert!(asked.contains(path), "{daemon}: {path} in {asked}");
        }
    }
}

#[test]
fn a_daemon_older_than_docker_20_10_is_refused_by_name_and_nothing_is_started() {
    let run = against("20.10.24+dfsg1").with("FAKE_ENGINE_API_VERSION", "1.40");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let error = the_error(&done);
    assert!(error.contains("speaks Engine API 1.40, older than this action's oldest, 1.41 (Docker 20.10)"), "{error}");
    assert!(versions(&run).is_empty(), "no request past /_ping: {:?}", versions(&run));
    assert!(run.call(&["run", "--detach"]).is_none() && run.call(&["buildx", "build"]).is_none());
}

#[test]
fn a_daemon_that_no_longer_accepts_this_clients_version_is_named_with_both() {
    let run = against("29.7.2").with("FAKE_ENGINE_API_VERSION", "1.60").with("FAKE_ENGINE_MIN_API", "1.50");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let error = the_error(&done);
    assert!(error.contains("accepts Engine API 1.50 or later") && error.contains("speaks 1.41 to 1.48"), "{error}");
    assert_all_at(&run, "1.48");
    assert!(run.call(&["buildx", "build"]).is_none(), "nothing built");
}

/// The run's one error line: the daemon's version problem on its own, not a login's.
fn the_error(done: &Done) -> String {
    let errors: Vec<&str> = done.stdout.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{}", done.stdout);
    assert!(!errors[0].contains("login"), "{}", errors[0]);
    errors[0].to_string()
}
