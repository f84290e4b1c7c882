//! The builder a run makes, when the action runs in its own image (as the runner runs it): its
//! BuildKit is started from that image, already pulled, so the run pulls nothing for its
//! builder; anywhere else, buildx's docker-container builder on the pinned `moby/buildkit`.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::run::*;

/// The container the runner started the action in, and the image ID the fake daemon gives it.
const OWN: &str = "ed4ec7b42ce410c4e232f727bd043e7794c4fb2ca8e83f376bf6f1d1d04069f0";
const IMAGE: &str = "sha256:5d1a0c7e9f1b3a2c4e6d8f0a1b3c5e7d9f0a2b4c6e8d0f1a3b5c7e9d1f3a5b7c";

/// In the action's container, whose image carries BuildKit `label`.
fn in_action_image(run: Run, label: &str) -> Run {
    run.with("SDI_OWN_CONTAINER", OWN).with("FAKE_DOCKER_ACTION_CONTAINER", &format!("{OWN}={label}"))
}

fn words(run: &Run) -> Vec<String> {
    run.calls().iter().map(|c| argv(c).iter().take(2).cloned().collect::<Vec<_>>().join(" ")).collect()
}

/// Nothing the run asked of docker names an image to pull for its builder.
fn pulled_nothing(run: &Run) {
    for call in run.calls() {
        let text = call["argv"].to_string();
        assert!(!text.contains("moby/buildkit") && !text.contains("binfmt"), "{text}");
    }
}

/// BuildKit's socket directory, as its `docker run` mounts it: the run's own, in RUNNER_TEMP,
/// bind-mounted from where the host keeps it (the fake daemon's RUNNER_TEMP mount). Its path
/// below RUNNER_TEMP.
fn socket_dir(started: &[String]) -> String {
    let mount = flag_values(started, "--mount").pop().expect("the socket directory is mounted");
    let host = mount.strip_prefix("type=bind,source=").and_then(|m| m.strip_suffix(",target=/run/buildkit"));
    let host = host.unwrap_or_else(|| panic!("{mount}"));
    let sub = host.strip_prefix("/home/runner/work/_temp/").unwrap_or_else(|| panic!("{host}"));
    assert!(sub.starts_with("sdi-") && sub.ends_with("/buildkit"), "{host}");
    sub.to_string()
}

#[test]
fn in_its_own_image_the_run_starts_buildkit_from_it_and_pulls_nothing() {
    starts_buildkit_from_its_image(&in_action_image(push(), "0.32.2"));
}

/// The action's image carries no docker CLI: buildx runs on its own, and the daemon is asked
/// through its API for the same things, with the same answers.
#[test]
fn without_the_docker_cli_the_daemon_is_asked_through_its_api_for_the_same_run() {
    let run = in_action_image(push(), "0.32.2").via_engine_api();
    starts_buildkit_from_its_image(&run);
    for call in run.calls() {
        let (words, env) = (argv(&call), env_names(&call));
        if words[0] == "buildx" {
            assert_eq!(call["program"], "buildx", "{words:?}");
        } else {
            assert!(env.contains(&"FAKE_DOCKER_VIA".to_string()), "asked through the Engine API: {words:?}");
        }
    }
    let login = run.call(&["login"]).unwrap();
    assert_eq!(login["stdin_bytes"], TOKEN.len(), "the daemon was given the token to check");
    let build = run.call(&["buildx", "build"]).unwrap();
    assert_eq!(build["auths"], serde_json::json!(["ghcr.io"]), "buildx finds the login the action kept");
    for call in run.calls() {
        assert!(!call.to_string().contains(TOKEN));
    }
}

/// The run in the action's image: BuildKit started from it, attached, built on, removed.
fn starts_buildkit_from_its_image(run: &Run) {
    let done = run.run();
    done.assert_success();
    assert_eq!(
        words(run),
        [
            "login ghcr.io",
            "container inspect",
            "run --detach",
            "buildx create",
            "buildx build",
            "buildx rm",
            "rm --force"
        ]
    );
    let inspect = argv(&run.call(&["container", "inspect"]).unwrap());
    assert_eq!(
        inspect[1..],
        [
            "inspect",
            "--format",
            "{{.Image}}|{{index .Config.Labels \"dev.sdi.buildkit.version\"}}|{{json .Mounts}}",
            OWN
        ]
    );
    let started = argv(&run.call(&["run", "--detach"]).unwrap());
    let container = flag_values(&started, "--name").pop().unwrap();
    assert!(started.contains(&IMAGE.to_string()) && started.contains(&"--privileged".to_string()), "{started:?}");
    assert_eq!(flag_values(&started, "--pull"), ["never"]);
    assert!(!started.iter().any(|a| a.contains("entitlement")), "nothing granted that the plan did not: {started:?}");

    let sub = socket_dir(&started);
    let create = argv(&run.call(&["buildx", "create"]).unwrap());
    let name = flag_values(&create, "--name").pop().unwrap();
    assert_eq!(container, format!("{name}-buildkit"));
    assert_eq!(flag_values(&create, "--driver"), ["remote"]);
    let temp = std::fs::canonicalize(run.path("runner_temp")).unwrap();
    let endpoint = format!("unix://{}/{sub}/buildkitd.sock", temp.display());
    assert_eq!(create.last(), Some(&endpoint), "buildx dials the socket: no docker exec, no buildctl");
    let build = run.call(&["buildx", "build"]).unwrap();
    assert_eq!(flag_values(&argv(&build), "--builder"), std::slice::from_ref(&name));
    assert_eq!(build["builder_endpoint"], endpoint.as_str(), "the build ran on the BuildKit from the action's image");
    assert_eq!(argv(&run.call(&["buildx", "rm"]).unwrap()), ["buildx", "rm", name.as_str()]);
    assert_eq!(argv(&run.call(&["rm"]).unwrap()), ["rm", "--force", "--volumes", container.as_str()]);
    pulled_nothing(run);
    let left = std::fs::read_to_string(run.path("fake-docker-containers.json")).unwrap();
    assert_eq!(left.trim(), "[]", "the BuildKit container is gone");
    let temp_left: Vec<_> = std::fs::read_dir(&temp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(temp_left.is_empty(), "the socket directory is gone with the run's: {temp_left:?}");
    let summary = std::fs::read_to_string(run.path("step_summary")).unwrap();
    assert!(
        summary.contains("| Builder | a builder made for this run, on BuildKit 0.32.2 from the action's own image (nothing pulled); ready in "),
        "{summary}"
    );
}

#[test]
fn allow_reaches_the_own_buildkit_for_trusted_code_only() {
    let trusted = in_action_image(push(), "0.32.2").with("INPUT_ALLOW", "network.host");
    trusted.run().assert_success();
    let started = argv(&trusted.call(&["run", "--detach"]).unwrap());
    assert_eq!(flag_values(&started, "--allow-insecure-entitlement"), ["network.host"]);
    assert_eq!(started[started.iter().position(|a| a == IMAGE).unwrap() + 1], "--allow-insecure-entitlement");

    let fork = in_action_image(Run::new("pull_request", "pull_request-fork-opened.json"), "0.32.2")
        .with("INPUT_ALLOW", "network.host")
        .with("INPUT_PLATFORMS", native());
    fork.run().assert_success();
    let started = argv(&fork.call(&["run", "--detach"]).expect("a fork PR also builds on the image's BuildKit"));
    assert!(flag_values(&started, "--allow-insecure-entitlement").is_empty(), "{started:?}");
    pulled_nothing(&fork);
}

#[test]
fn elsewhere_the_builder_is_buildxs_on_the_pinned_buildkit() {
    let pinned = |run: &Run| {
        let create = argv(&run.call(&["buildx", "create"]).unwrap());
        assert_eq!(flag_values(&create, "--driver"), ["docker-container"]);
        assert_eq!(flag_values(&create, "--driver-opt"), ["image=moby/buildkit:v0.32.2"]);
        assert!(run.call(&["run", "--detach"]).is_none() && run.call(&["rm"]).is_none());
    };
    // Not in a container (the binary on a host): nothing asked.
    let host = push();
    host.run().assert_success();
    assert!(host.call(&["container", "inspect"]).is_none());
    pinned(&host);
    let summary = std::fs::read_to_string(host.path("step_summary")).unwrap();
    assert!(
        summary
            .contains("| Builder | a docker-container builder made for this run, on moby/buildkit:v0.32.2; ready in "),
        "{summary}"
    );
    // An image that carries another BuildKit, or none.
    for label in ["0.31.0", ""] {
        let other = in_action_image(push(), label);
        other.run().assert_success();
        assert!(other.call(&["container", "inspect"]).is_some());
        pinned(&other);
    }
    // The run's directory on no mount of the runner's (nothing to share BuildKit's socket
    // through), or on a read-only one.
    for mounts in ["[]", r#"[{"Type":"bind","Source":"/srv","Destination":"/","RW":false}]"#] {
        let unshared = in_action_image(push(), "0.32.2").with("FAKE_DOCKER_ACTION_MOUNTS", mounts);
        unshared.run().assert_success();
        assert!(unshared.call(&["container", "inspect"]).is_some());
        pinned(&unshared);
    }
    // A container the daemon does not know (the action in a container of another daemon).
    let elsewhere = push().with("SDI_OWN_CONTAINER", OWN);
    elsewhere.run().assert_success();
    pinned(&elsewhere);
}

#[test]
fn a_buildkit_that_does_not_start_fails_the_run_by_its_cause_and_leaves_nothing() {
    fails_to_start_buildkit(in_action_image(push(), "0.32.2"), "docker: Error response from daemon:");
}

/// BuildKit's container does not start: the run fails by the daemon's words (as the CLI or the
/// API words them: `said`), builds nothing, and removes whatever the daemon kept of it.
fn fails_to_start_buildkit(run: Run, said: &str) {
    let run = run.with("FAKE_DOCKER_FAIL", "run-buildkit");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let cause = format!(
        "::error::could not start BuildKit from the action's own image: {said} failed to create task for container"
    );
    assert!(done.stdout.contains(&cause), "{}", done.stdout);
    assert!(done.stdout.contains("no space left on device"), "{}", done.stdout);
    assert!(run.call(&["buildx", "build"]).is_none());
    assert!(run.call(&["rm", "--force"]).is_some(), "whatever the daemon kept of it is removed");
}

#[test]
fn platforms_the_images_emulators_cover_need_no_qemu_registration() {
    let dockerfile = "FROM busybox\nRUN echo hi\n";
    // A runner without QEMU registered: the builder lists its native platforms only, and the
    // image's BuildKit runs arm64 steps under its own emulator.
    let bare = in_action_image(push(), "0.32.2")
        .with("INPUT_PLATFORMS", "linux/amd64,linux/arm64")
        .with_dockerfile(dockerfile);
    let done = bare.run();
    done.assert_success();
    assert!(bare.call(&["buildx", "inspect", "--bootstrap"]).is_some(), "a second platform is checked");
    pulled_nothing(&bare);
    assert!(
        done.stdout.contains("runs linux/arm64's steps under the QEMU emulators of the action's image"),
        "{}",
        done.stdout
    );
    // A platform the image has no emulator for (moby/buildkit drops mips64): QEMU is
    // registered on the host, as for buildx's own builder.
    let mips = in_action_image(push(), "0.32.2")
        .with("INPUT_PLATFORMS", "linux/amd64,linux/mips64le,linux/arm64")
        .with_dockerfile(dockerfile);
    mips.run().assert_success();
    let binfmt = argv(&mips.call(&["run", "--privileged"]).expect("QEMU registered"));
    assert!(binfmt.iter().any(|a| a.starts_with("tonistiigi/binfmt")), "{binfmt:?}");
    assert_eq!(binfmt.last().map(String::as_str), Some("mips64le"), "only the platform the image lacks: {binfmt:?}");
    // buildx's builder on a host has no emulators of its own: QEMU is registered for arm64.
    let host = push().with("INPUT_PLATFORMS", "linux/amd64,linux/arm64").with_dockerfile(dockerfile);
    host.run().assert_success();
    assert!(host.call(&["run", "--privileged"]).is_some(), "QEMU registered for buildx's builder");
}

#[test]
fn a_job_cancelled_while_the_daemon_is_asked_for_the_image_stops_there() {
    // The daemon does not answer the question about the action's container; the job is then
    // cancelled. The run ends as cancelled: it does not go on to make another builder.
    let run = cancelled_while_its_container_is_asked(in_action_image(push(), "0.32.2"));
    assert_eq!(run.call(&["container", "inspect"]).unwrap()["signal"], libc::SIGTERM);
    assert_eq!(words(&run), ["login ghcr.io", "container inspect"], "nothing after the cancel");
}

#[test]
fn through_the_api_a_buildkit_that_does_not_start_fails_by_the_daemons_words_and_leaves_nothing() {
    fails_to_start_buildkit(in_action_image(push(), "0.32.2").via_engine_api(), "Error response from daemon:");
}

#[test]
fn through_the_api_qemu_is_registered_from_its_image_pulled_first() {
    let dockerfile = "FROM busybox\nRUN echo hi\n";
    let mips = || {
        in_action_image(push(), "0.32.2")
            .with("INPUT_PLATFORMS", "linux/amd64,linux/mips64le")
            .with_dockerfile(dockerfile)
            .via_engine_api()
    };
    let run = mips();
    run.run().assert_success();
    let binfmt = argv(&run.call(&["run", "--privileged"]).expect("QEMU registered"));
    assert_eq!(binfmt[..3], ["run", "--privileged", "--rm"], "{binfmt:?}");
    let pulls = std::fs::read_to_string(run.path("engine-pulls.jsonl")).unwrap();
    assert_eq!(pulls.trim(), r#"{"image":"tonistiigi/binfmt","server":null,"user":null}"#, "no login, no credentials");
    // Logged in to Docker Hub: the pull carries that login, as the CLI's would.
    let hub = mips()
        .with("INPUT_LOGINS", "registry=docker.io,username=acme-bot,password-env=HUB_TOKEN")
        .with("HUB_TOKEN", "dckr_pat_pull_limits_0123");
    hub.run().assert_success();
    let pulls = std::fs::read_to_string(hub.path("engine-pulls.jsonl")).unwrap();
    assert_eq!(
        pulls.trim(),
        r#"{"image":"tonistiigi/binfmt","server":"https://index.docker.io/v1/","user":"acme-bot"}"#
    );
    assert_eq!(binfmt[3], sdi::buildx::BINFMT_IMAGE);
    assert_eq!(binfmt[4..], ["--install", "mips64le"]);
    // Its image cannot be pulled: the run says why, by the daemon's words.
    let failing = mips().with("FAKE_DOCKER_FAIL", "binfmt");
    let done = failing.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    assert!(
        done.stdout.contains(
            "could not register QEMU for linux/mips64le: Error response from daemon: Get \"https://registry-1.docker.io/v2/\""
        ),
        "{}",
        done.stdout
    );
    assert!(failing.call(&["run", "--privileged"]).is_none(), "nothing ran without its image");
}

#[test]
fn through_the_api_a_job_cancelled_while_the_daemon_is_asked_stops_there() {
    let run = cancelled_while_its_container_is_asked(in_action_image(push(), "0.32.2").via_engine_api());
    assert_eq!(words(&run), ["login ghcr.io"], "nothing after the cancel (the unanswered question is never logged)");
}

/// The run, cancelled (SIGTERM) while the daemon holds the question about the action's own
/// container unanswered: it ends as cancelled, at once, whatever the daemon does.
fn cancelled_while_its_container_is_asked(run: Run) -> Run {
    let run = run.with("FAKE_DOCKER_SCENARIO", "cancel-inspect");
    let stamp = run.path("stamp");
    let run = run.with("FAKE_DOCKER_STAMP", stamp.to_str().unwrap());
    let mut child = run.command().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let waited = Instant::now();
    while !stamp.exists() {
        assert!(waited.elapsed() < Duration::from_secs(20), "the daemon was never asked");
        std::thread::sleep(Duration::from_millis(20));
    }
    let asked = Instant::now();
    let status = sigterm_and_wait(&mut child);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(asked.elapsed() < Duration::from_secs(10), "the question was dropped, not waited for");
    run
}

/// The daemon starts BuildKit's container and answers before buildkitd listens; buildx,
/// asked then, would poll it once a second. It is asked once BuildKit listens.
#[test]
fn buildx_attaches_the_images_buildkit_once_it_listens() {
    for way in [|run: Run| run, |run: Run| run.via_engine_api()] {
        let run = way(in_action_image(push(), "0.32.2").with("FAKE_DOCKER_BUILDKIT_LISTENS_MS", "300"));
        run.run().assert_success();
        let create = run.call(&["buildx", "create"]).unwrap();
        assert_eq!(create["endpoint_listening"], true, "{create}");
    }
}
