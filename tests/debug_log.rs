//! A job re-run with debug logging (`RUNNER_DEBUG=1`) prints `::debug::` lines that explain
//! the run without the code: each phase with its duration, every docker call's argv and exit,
//! every API request's status and retry decision. No secret value is in them; without
//! `RUNNER_DEBUG` there is none.

mod common;

use common::run::*;

const SECRET: &str = ENV_SECRET;

fn debug_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("::debug::")).collect()
}

/// A trusted push that uses every phase: login, builder, cache-mount restore, build, scan,
/// tagging, cache-mount save, report.
fn every_phase(registry: &str, dir: &std::path::Path) -> Run {
    secret_push(registry, dir)
        .with_dockerfile("FROM node:22\nRUN --mount=type=cache,id=pnpm,target=/pnpm/store pnpm install\n")
}

#[test]
fn runner_debug_shows_each_phase_its_duration_and_every_docker_call() {
    let (registry, dir) = common::dir_registry();
    // A first run saves the store; the second, on a builder of its own, stops as the install
    // begins and restores it.
    every_phase(&registry, dir.path()).run().assert_success();
    let run = every_phase(&registry, dir.path()).with("RUNNER_DEBUG", "1");
    let done = run.run();
    done.assert_success();
    let lines = debug_lines(&done.stdout);
    for phase in [
        "context",
        "github",
        "login",
        "builder",
        "cache-mounts restore",
        "build",
        "scan",
        "tagging",
        "cache-mounts save",
        "cleanup",
        "report",
    ] {
        let took = format!("::debug::[{phase}] took ");
        assert!(lines.iter().any(|l| l.starts_with(&took) && l.ends_with(" s")), "no {took:?} in {lines:#?}");
    }
    // Every docker call the fake saw is in the log, argv and exit code, in its phase.
    let calls = run.calls();
    assert!(calls.len() >= 5, "{calls:?}");
    for call in &calls {
        let shown = shlex::try_join(argv(call).iter().map(String::as_str)).unwrap();
        assert!(lines.iter().any(|l| l.contains(&format!("] docker {shown}"))), "no argv of {shown} in {lines:#?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("::debug::[login] docker login ") && l.contains("--password-stdin")));
    assert!(lines.iter().any(|l| l.starts_with("::debug::[login] docker login ") && l.contains(": exit 0 in ")));
    assert!(lines.iter().any(|l| l.starts_with("::debug::[build] docker buildx build ")));
    assert!(lines.iter().any(|l| l.starts_with("::debug::[build] docker buildx build: exit 0 in ")));
    assert!(lines.iter().any(|l| l.starts_with("::debug::[scan] scanned ")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("::debug::[cleanup] docker buildx rm ")));
    assert!(lines.iter().any(|l| l.starts_with("::debug::[context] event push on Codertocat/Hello-World")));
    // Nothing of a secret, and nothing the runner would ignore inside the build's stop-commands window.
    for l in &lines {
        assert!(!l.contains(SECRET) && !l.contains(TOKEN), "{l}");
    }
    let mut inside = false;
    for l in done.stdout.lines() {
        if l.starts_with("::stop-commands::") {
            inside = true;
        } else if inside && l.starts_with("::") && l.ends_with("::") && !l.starts_with("::debug") {
            inside = false;
        }
        assert!(!(inside && l.starts_with("::debug::")), "a debug line inside the build's output: {l}");
    }
    // The masks come first, before any debug line.
    let first_debug = done.stdout.find("::debug::").unwrap();
    assert!(done.stdout.find(&format!("::add-mask::{SECRET}")).unwrap() < first_debug);
}

#[test]
fn api_lookups_show_status_codes_and_retry_decisions() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        let package = || path_regex(r"^/(orgs|users)/[^/]+/packages/container/[^/]+$");
        Mock::given(method("GET"))
            .and(package())
            .respond_with(ResponseTemplate::new(502).set_body_json(serde_json::json!({"message": "Server Error"})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(package())
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"id": 1, "name": "hello-world", "package_type": "container", "visibility": "public"}),
            ))
            .mount(&server)
            .await;
        server
    });
    let run = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("GITHUB_API_URL", &server.uri())
        .with("INPUT_DRY-RUN", "true")
        .with("RUNNER_DEBUG", "1");
    let done = run.run();
    done.assert_success();
    let lines = debug_lines(&done.stdout);
    let api: Vec<&&str> = lines.iter().filter(|l| l.starts_with("::debug::[github] GET /")).collect();
    assert!(api.iter().any(|l| l.contains(": 502 Server Error; retrying in ")), "{lines:#?}");
    assert!(api.iter().any(|l| l.ends_with(": 200")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("::debug::[github] took ")));
    assert!(!lines.iter().any(|l| l.contains(TOKEN)));
    drop(rt);
}

#[test]
fn without_runner_debug_there_is_no_debug_line() {
    let (registry, dir) = common::dir_registry();
    for value in [None, Some("0")] {
        let mut run = every_phase(&registry, dir.path());
        if let Some(v) = value {
            run = run.with("RUNNER_DEBUG", v);
        }
        let done = run.run();
        done.assert_success();
        assert!(debug_lines(&done.stdout).is_empty(), "{}", done.stdout);
        assert!(!done.stdout.contains("::debug::") && !done.stderr.contains("::debug::"));
    }
}
