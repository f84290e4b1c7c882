//! The action end to end, as the runner starts it (no subcommand), against the fake
//! `docker` (tests/fake_docker): runner-like environment, outputs, summary, annotations,
//! exit codes, and what every docker call saw.

mod common;

use common::run::*;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

#[test]
fn trusted_push_logs_in_builds_pushes_and_reports() {
    let run = Run::new("push", "push-default-branch.json");
    let done = run.run();
    done.assert_success();

    // Login: token on stdin only, private DOCKER_CONFIG under RUNNER_TEMP.
    let login = run.call(&["login"]).expect("a login");
    assert_eq!(argv(&login), ["login", "ghcr.io", "--username", "Codertocat", "--password-stdin"]);
    assert_eq!(login["stdin_bytes"], TOKEN.len());
    let config = login["docker_config"].as_str().unwrap();
    assert!(config.starts_with(run.path("runner_temp").to_str().unwrap()), "{config}");
    assert_eq!(login["docker_config_mode"], "700");
    assert!(!Path::new(config).exists(), "DOCKER_CONFIG is removed when the run ends");
    assert!(files_below(&run.path("runner_temp")).is_empty(), "nothing is left under RUNNER_TEMP");

    // Builder made for the run, used, removed.
    let create = argv(&run.call(&["buildx", "create"]).unwrap());
    let name = create[3].clone();
    assert!(name.starts_with("sdi-4242-"), "{name}");
    let pinned = ["--driver", "docker-container", "--driver-opt", "image=moby/buildkit:v0.32.2", "--bootstrap"];
    assert!(create.ends_with(&pinned.map(String::from)), "the pinned BuildKit: {create:?}");
    let build = run.call(&["buildx", "build"]).unwrap();
    let build_argv = argv(&build);
    assert_eq!(flag_values(&build_argv, "--builder"), std::slice::from_ref(&name));
    assert_eq!(flag_values(&build_argv, "--progress"), ["rawjson"]);
    assert_eq!(flag_values(&build_argv, "--metadata-file").len(), 1);
    assert!(build_argv.contains(&"--push".to_string()));
    assert_eq!(build_argv.last().unwrap(), ".");
    assert!(env_names(&build).contains(&"BUILDX_METADATA_WARNINGS".to_string()));
    assert_eq!(argv(&run.calls().last().unwrap().clone()), ["buildx", "rm", name.as_str()]);
    // No call sees the action's inputs.
    for call in run.calls() {
        assert!(!env_names(&call).iter().any(|n| n.starts_with("INPUT_")), "{call}");
    }

    let out = run.outputs();
    assert_eq!(out["digest"], "sha256:df9a0923f3e0042a93146c90a70ce06a069c280488fa684d5a7d9312cbe07e61");
    assert_eq!(out["imageid"], out["digest"]);
    assert_eq!(out["pushed"], "true");
    assert_eq!(out["trusted"], "true");
    assert_eq!(out["lane"], "main");
    assert_eq!(out["tags"], "ghcr.io/codertocat/hello-world:latest\nghcr.io/codertocat/hello-world:sha-6113728");
    assert_eq!(
        out["cache-to"],
        "type=registry,ref=ghcr.io/codertocat/hello-world:buildcache,mode=max,ignore-error=true"
    );
    let metadata: Value = serde_json::from_str(&out["metadata"]).unwrap();
    assert_eq!(
        metadata["image.name"],
        "ghcr.io/codertocat/hello-world:latest,ghcr.io/codertocat/hello-world:sha-6113728"
    );
    let plan: Value = serde_json::from_str(&out["plan"]).unwrap();
    assert_eq!(plan["push"], true);

    let summary = run.summary();
    assert!(summary.contains("| Trusted | yes: Push on the default branch 'master'"), "{summary}");
    assert!(summary.contains("| Cache hits | 0 of 8 build steps served from cache |"), "{summary}");
    assert!(summary.contains("<code>ghcr.io/codertocat/hello-world:latest@sha256:df9a0923"), "{summary}");
    assert!(summary.contains("| Result | built in "), "{summary}");
    // Both platforms were built here: the foreign one's RUN steps (5.3 s + 3.2 s) ran emulated.
    let foreign = if cfg!(target_arch = "aarch64") { "linux/amd64" } else { "linux/arm64" };
    assert!(
        summary.contains(&format!("RUN steps for {foreign} ran under emulation")) && summary.contains("for 8.5 s"),
        "{summary}"
    );
    assert!(summary.contains("Multi-arch on native runners"));
    assert!(summary.contains("| Build ref | `harness/harness0/alyw8lkr9hq5mfj0bya656hsc` |"), "{summary}");
    assert!(summary.contains("| Image name | <code>ghcr.io/codertocat/hello-world:latest,ghcr.io/codertocat/hello-world:sha-6113728</code> |"), "{summary}");

    // The build log is streamed in a group, with workflow commands switched off around it.
    let stdout = &done.stdout;
    let group = stdout.find("::group::docker buildx build").unwrap();
    let stop = stdout[group..].lines().nth(1).unwrap().strip_prefix("::stop-commands::").unwrap().to_string();
    assert!(stop.len() >= 32);
    assert!(stdout.contains(&format!("::{stop}::\n::endgroup::")));
    let numbered = |text: &str| {
        stdout.lines().any(|l| l.starts_with('#') && l.split_once(' ').is_some_and(|(_, rest)| rest.starts_with(text)))
    };
    assert!(numbered("[linux/arm64 2/4] RUN"), "{stdout}");
    assert!(numbered("0.181 step1-start"), "container output is shown, with its time in the step, as buildx shows it");
}

#[test]
fn warm_build_reports_every_step_from_cache() {
    let run = Run::new("push", "push-default-branch.json").with("FAKE_DOCKER_SCENARIO", "warm");
    let done = run.run();
    assert!(done.output.status.success(), "{}", done.stdout);
    assert!(run.summary().contains("| Cache hits | 8 of 8 build steps served from cache |"), "{}", run.summary());
}

#[test]
fn same_repo_pr_writes_the_pr_cache_and_does_not_push() {
    let run = Run::new("pull_request", "pull_request-same-repo-opened.json").with("GITHUB_REF", "refs/pull/2/merge");
    let done = run.run();
    done.assert_success();
    assert!(run.call(&["login", "ghcr.io"]).is_some(), "a trusted PR logs in to write its cache");
    let build = argv(&run.call(&["buildx", "build"]).unwrap());
    assert_eq!(
        flag_values(&build, "--cache-to"),
        ["type=registry,ref=ghcr.io/codertocat/hello-world:buildcache-pr,mode=max,ignore-error=true"]
    );
    assert!(!build.contains(&"--push".to_string()));
    let out = run.outputs();
    assert_eq!((out["trusted"].as_str(), out["lane"].as_str(), out["pushed"].as_str()), ("true", "pr", "false"));
    assert!(!out.contains_key("digest"), "nothing was pushed, so there is no digest");
}

#[test]
fn fork_pr_builds_without_login_push_cache_writes_or_secrets() {
    let run = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("INPUT_SECRETS", &format!("npm={SECRET}"))
        .with("INPUT_SECRET-ENVS", "token=NPM_TOKEN")
        .with("NPM_TOKEN", ENV_SECRET)
        .with("INPUT_PUSH", "true");
    let done = run.run();
    done.assert_success();
    assert!(run.call(&["login"]).is_none(), "untrusted code never logs in");
    let build_call = run.call(&["buildx", "build"]).unwrap();
    let build = argv(&build_call);
    for flag in ["--cache-to", "--push", "--secret"] {
        assert!(!build.contains(&flag.to_string()), "{flag} in {build:?}");
    }
    assert_eq!(flag_values(&build, "--cache-from").len(), 2, "reads the registry cache anonymously");
    let names = env_names(&build_call);
    assert!(
        !names.contains(&"NPM_TOKEN".to_string()) && !names.iter().any(|n| n.starts_with("SDI_SECRET")),
        "{names:?}"
    );
    let out = run.outputs();
    assert_eq!(out["trusted"], "false");
    assert_eq!(out["pushed"], "false");
    assert!(out["trust-reason"].contains("fork octo-forker/Hello-World"));
    assert!(done.stdout.contains("::warning::push: true ignored"));
    assert!(done.stdout.contains("::warning::Build secrets withheld from untrusted code: npm, token."));
    assert!(run.summary().contains("| Trusted | no: Pull request #2 comes from the fork"));
}

#[test]
fn failed_build_points_at_the_dockerfile_line_and_writes_no_image_outputs() {
    let run = Run::new("push", "push-default-branch.json")
        .with("FAKE_DOCKER_SCENARIO", "dockerfile-error")
        .with("INPUT_FILE", "docker/Dockerfile");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let errors: Vec<&str> = done.stdout.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("::error file=docker/Dockerfile,line=4::Build failed: failed to build: failed to solve: process \"/bin/sh -c echo compiling && exit 3\""),
        "{}",
        errors[0]
    );
    let out = run.outputs();
    for absent in ["digest", "imageid", "metadata", "tags", "pushed"] {
        assert!(!out.contains_key(absent), "{absent} written for a failed build");
    }
    assert_eq!(out["trusted"], "true");
    assert!(run.summary().contains("| Result | build failed: failed to build"), "{}", run.summary());
    assert!(run.call(&["buildx", "rm"]).is_some(), "the builder is removed after a failure too");
    assert!(files_below(&run.path("runner_temp")).is_empty());
}

#[test]
fn denied_cache_export_warns_with_the_registry_error_and_stays_green() {
    let run = Run::new("push", "push-default-branch.json").with("FAKE_DOCKER_SCENARIO", "cache-denied");
    let done = run.run();
    assert!(done.output.status.success(), "{}", done.stdout);
    let warning = done
        .stdout
        .lines()
        .find(|l| l.starts_with("::warning::The registry cache was not written"))
        .expect("a warning");
    assert!(warning.contains("405 Method Not Allowed"), "{warning}");
    assert!(warning.contains("ignore-error=true"), "{warning}");
    assert!(run.summary().contains("The registry cache was not written"));
    assert_eq!(run.outputs()["pushed"], "true");
}

#[test]
fn dockerfile_warnings_become_annotations() {
    let run =
        Run::new("push", "push-default-branch.json").with("FAKE_DOCKER_WARNINGS", "1").with("INPUT_CONTEXT", "app");
    let done = run.run();
    assert!(done.output.status.success());
    assert!(
        done.stdout.contains(
            "::warning file=app/Dockerfile,line=1::FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)"
        ),
        "{}",
        done.stdout
    );
}

#[test]
fn dry_run_runs_no_docker_command_and_writes_the_plan() {
    let run = Run::new("push", "push-default-branch.json").with("INPUT_DRY-RUN", "true");
    let done = run.run();
    assert!(done.output.status.success(), "{}", done.stderr);
    assert!(run.calls().is_empty(), "no docker call in a dry run");
    let out = run.outputs();
    assert_eq!(out["pushed"], "false");
    assert_eq!(out["lane"], "main");
    assert!(out["tags"].contains(":latest"));
    assert!(run.summary().contains("dry run: nothing was built"));
}

#[test]
fn bad_input_writes_nothing_and_runs_nothing() {
    let run = Run::new("push", "push-default-branch.json").with("INPUT_PLATFORMS", "linux/amd65");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(done.stderr.starts_with("::error title=Invalid platforms::"), "{}", done.stderr);
    assert_eq!(done.stderr.lines().count(), 1);
    assert!(done.stdout.is_empty(), "{}", done.stdout);
    assert!(run.calls().is_empty());
    assert_eq!(std::fs::read_to_string(run.path("github_output")).unwrap(), "");
    assert_eq!(run.summary(), "");
}

#[test]
fn a_missing_platform_on_a_given_builder_fails_naming_it() {
    let run = Run::new("push", "push-default-branch.json")
        .with_user_builder("remote-amd64", "remote")
        .with_dockerfile("FROM alpine\nRUN apk add curl\n")
        .with("INPUT_PLATFORMS", "linux/amd64,linux/riscv64");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(done.stdout.contains("::error::builder 'remote-amd64' does not support linux/riscv64"), "{}", done.stdout);
    assert!(run.call(&["buildx", "build"]).is_none());
    assert!(run.call(&["run"]).is_none(), "QEMU is registered only for docker-container builders");
    assert!(run.call(&["buildx", "create"]).is_none() && run.call(&["buildx", "rm"]).is_none());
}

#[test]
fn a_cross_compiling_dockerfile_needs_no_emulation() {
    let run = Run::new("push", "push-default-branch.json")
        .with_user_builder("remote-amd64", "remote")
        .with_dockerfile(
            "FROM --platform=$BUILDPLATFORM alpine AS build\nRUN make\nFROM scratch\nCOPY --from=build /app /app\n",
        )
        .with("INPUT_PLATFORMS", "linux/amd64,linux/arm64");
    let done = run.run();
    assert!(done.output.status.success(), "{}", done.stdout);
    assert!(
        done.stdout.contains("::notice::Builder 'remote-amd64' has no emulation for linux/arm64"),
        "{}",
        done.stdout
    );
    assert!(run.call(&["run"]).is_none(), "no privileged QEMU container when nothing runs emulated");
    assert!(run.call(&["buildx", "build"]).is_some());
}

#[test]
fn qemu_is_registered_once_for_missing_platforms() {
    let run = Run::new("push", "push-default-branch.json")
        .with_dockerfile("FROM alpine\nRUN apk add curl\n")
        .with("INPUT_PLATFORMS", "linux/amd64,linux/arm64,linux/arm/v7");
    let done = run.run();
    assert!(done.output.status.success(), "{}", done.stdout);
    let binfmt = argv(&run.call(&["run"]).unwrap());
    assert_eq!(binfmt, ["run", "--privileged", "--rm", sdi::buildx::BINFMT_IMAGE, "--install", "arm64,arm"]);
    let inspects = run.calls().iter().filter(|c| argv(c).starts_with(&["buildx".into(), "inspect".into()])).count();
    assert_eq!(inspects, 2);
}

#[test]
fn a_native_single_platform_build_makes_only_the_calls_it_needs() {
    let native = if cfg!(target_arch = "aarch64") { "linux/arm64" } else { "linux/amd64" };
    let run = Run::new("push", "push-default-branch.json").with("INPUT_PLATFORMS", native);
    assert!(run.run().output.status.success());
    let words: Vec<String> = run.calls().iter().map(|c| argv(c)[..2].join(" ")).collect();
    assert_eq!(words, ["login ghcr.io", "buildx create", "buildx build", "buildx rm"]);
    let given = Run::new("push", "push-default-branch.json")
        .with_user_builder("ci", "docker-container")
        .with("INPUT_PLATFORMS", native)
        .with("INPUT_GITHUB-TOKEN", "");
    let done = given.run();
    assert!(done.output.status.success(), "{}", done.stdout);
    let words: Vec<String> = given.calls().iter().map(|c| argv(c)[..2].join(" ")).collect();
    assert_eq!(words, ["buildx inspect", "buildx build"]);
    assert_eq!(flag_values(&argv(&given.call(&["buildx", "build"]).unwrap()), "--builder"), ["ci"]);
}

#[test]
fn refused_login_fails_a_push_before_the_build() {
    let run = Run::new("push", "push-default-branch.json").with("FAKE_DOCKER_FAIL_LOGIN", "1");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(
        done.stdout.contains("::error::docker login to ghcr.io failed (Error response from daemon"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("packages: write"));
    assert!(run.call(&["buildx", "build"]).is_none());
    assert!(!run.outputs().contains_key("digest"));
}

#[test]
fn refused_login_only_warns_when_nothing_is_pushed() {
    let run = Run::new("pull_request", "pull_request-same-repo-opened.json").with("FAKE_DOCKER_FAIL_LOGIN", "1");
    let done = run.run();
    assert!(done.output.status.success(), "{}", done.stdout);
    assert!(done.stdout.contains("::warning::docker login to ghcr.io failed"));
    assert!(run.call(&["buildx", "build"]).is_some());
}

#[test]
fn no_secret_value_leaks_anywhere() {
    leaks_no_secret_value(|run| run);
}

/// As in the action's image: the login through the daemon's API, kept in the private
/// configuration for buildx (base64 there, gone with it); and the debug log on.
#[test]
fn without_the_docker_cli_no_secret_value_leaks_anywhere() {
    leaks_no_secret_value(|run| run.via_engine_api().with("RUNNER_DEBUG", "1"));
}

fn leaks_no_secret_value(way: impl Fn(Run) -> Run) {
    // The whole path: login, build, scan of the pushed image, tagging.
    let (registry, dir) = common::dir_registry();
    let run = way(Run::new("push", "push-default-branch.json"))
        .with("INPUT_IMAGE", &format!("{registry}/team/app"))
        .with("FAKE_DOCKER_REGISTRY_DIR", dir.path().to_str().unwrap())
        .with("INPUT_SECRETS", &format!("npm={SECRET}\nmulti=first-line-secret"))
        .with("INPUT_SECRET-ENVS", "token=NPM_TOKEN")
        .with("NPM_TOKEN", ENV_SECRET);
    let done = run.run();
    assert!(done.output.status.success(), "{}", done.stdout);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let values = [SECRET, "first-line-secret", ENV_SECRET, TOKEN];

    // The build got them the way buildx reads them: by environment name.
    let build = run.call(&["buildx", "build"]).unwrap();
    assert_eq!(build["secrets"], serde_json::json!({"npm": true, "multi": true, "token": true}));
    assert!(env_names(&build).contains(&"SDI_SECRET_0".to_string()));

    for value in values {
        for call in run.calls() {
            let text = call.to_string();
            assert!(!text.contains(value), "{value} reached a docker call's record: {text}");
        }
        for file in files_below(&run.path("runner_temp")).iter().chain(files_below(&run.path("home")).iter()) {
            let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
            assert!(!text.contains(value) && !text.contains(&b64(value)), "{value} left in {}", file.display());
        }
        let outputs = std::fs::read_to_string(run.path("github_output")).unwrap();
        assert!(!outputs.contains(value), "{value} in GITHUB_OUTPUT");
        assert!(!run.summary().contains(value), "{value} in the summary");
        assert!(!done.stderr.contains(value), "{value} on stderr");
        for line in done.stdout.lines().filter(|l| l.contains(value)) {
            assert_eq!(line, format!("::add-mask::{value}"), "{value} printed unmasked");
        }
        // Masked before anything else is printed.
        let mask = done.stdout.find(&format!("::add-mask::{value}")).expect("masked");
        assert!(mask < done.stdout.find("::group::Plan").unwrap());
    }
}

/// Starts the action, waits until the fake docker has started the build (its stamp file), then
/// `after` more, sends SIGTERM as a cancelled job does, and requires an exit within 10 s.
fn sigterm_once_building(run: &Run, stamp: &Path, after: Duration) -> std::process::ExitStatus {
    let mut child = run.command().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let waited = Instant::now();
    while !stamp.exists() {
        assert!(waited.elapsed() < Duration::from_secs(20), "the build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(after);
    sigterm_and_wait(&mut child)
}

#[test]
fn cancellation_is_forwarded_and_the_action_exits_within_ten_seconds() {
    let run = Run::new("push", "push-default-branch.json").with("FAKE_DOCKER_SCENARIO", "cancel");
    let stamp = run.path("stamp");
    let run = run.with("FAKE_DOCKER_STAMP", stamp.to_str().unwrap());
    let status = sigterm_once_building(&run, &stamp, Duration::from_millis(200));
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    let build = run.call(&["buildx", "build"]).unwrap();
    assert_eq!(build["signal"], libc::SIGTERM, "the child received the same signal");
    assert!(run.call(&["buildx", "rm"]).is_some(), "the builder is removed");
    assert!(files_below(&run.path("runner_temp")).is_empty(), "the private directory is removed");
    let out = run.outputs();
    assert!(!out.contains_key("digest") && !out.contains_key("pushed"));
}

#[test]
fn prune_cache_runs_after_a_good_trusted_build_and_never_fails_it() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start());
    let versions = "/users/codertocat/packages/container/hello-cache/versions";
    let old = |id: u64, tags: &[&str]| {
        serde_json::json!({"id": id, "name": format!("sha256:{id:064x}"), "created_at": "2020-01-01T00:00:00Z",
                           "metadata": {"package_type": "container", "container": {"tags": tags}}})
    };
    rt.block_on(async {
        Mock::given(method("GET"))
            .and(path(versions))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!([old(7, &[]), old(8, &["buildcache"])])),
            )
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(format!("{versions}/7")))
            .respond_with(
                ResponseTemplate::new(403)
                    .set_body_json(serde_json::json!({"message": "Must have admin rights to Repository."})),
            )
            .expect(1)
            .mount(&server)
            .await;
    });
    let run = Run::new("push", "push-default-branch.json")
        .with("GITHUB_API_URL", &server.uri())
        .with("INPUT_CACHE-IMAGE", "Codertocat/hello-cache")
        .with("INPUT_PRUNE-CACHE", "true");
    let done = run.run();
    done.assert_success();
    assert!(
        done.stdout.contains("::warning::Not allowed to delete versions of ghcr.io/codertocat/hello-cache"),
        "{}",
        done.stdout
    );
    rt.block_on(server.verify());

    // Untrusted runs never prune.
    let fork = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("GITHUB_API_URL", &server.uri())
        .with("INPUT_CACHE-IMAGE", "Codertocat/hello-cache")
        .with("INPUT_PRUNE-CACHE", "true");
    fork.run().assert_success();
    let deletes =
        rt.block_on(server.received_requests()).unwrap().iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(deletes, 1, "the fork run deleted nothing");
}

#[test]
fn a_clean_image_is_pushed_by_digest_scanned_then_tagged() {
    let (registry, dir) = common::dir_registry();
    let run = secret_push(&registry, dir.path());
    let done = run.run();
    done.assert_success();
    let build = argv(&run.call(&["buildx", "build"]).unwrap());
    assert!(!build.contains(&"--tag".to_string()) && !build.contains(&"--push".to_string()), "{build:?}");
    assert_eq!(
        flag_values(&build, "--output"),
        [format!("type=image,name={registry}/team/app,push-by-digest=true,name-canonical=true,push=true")]
    );
    // Tagged after the scan: the very manifest that was scanned, PUT under each tag.
    assert!(run.call(&["buildx", "imagetools", "create"]).is_none(), "tags of the image's repository need no copy");
    assert!(done.stdout.contains("::notice::No secret value in the image: 1 layers"), "{}", done.stdout);
    let out = run.outputs();
    assert_eq!(out["pushed"], "true");
    let digest = out["digest"].clone();
    let manifests = dir.path().join("v2/team/app/manifests");
    let scanned = std::fs::read(manifests.join(&digest)).expect("the pushed digest");
    for tag in ["latest", "sha-6113728"] {
        assert_eq!(std::fs::read(manifests.join(tag)).unwrap(), scanned, "{tag} names the scanned digest");
    }
    // A tag in another repository is copied there by imagetools.
    let mirrored = secret_push(&registry, dir.path()).with("INPUT_TAGS", &format!("latest\n{registry}/team/mirror:v1"));
    mirrored.run().assert_success();
    let copy = argv(&mirrored.call(&["buildx", "imagetools", "create"]).expect("copied to the other repository"));
    assert_eq!(flag_values(&copy, "--tag"), [format!("{registry}/team/mirror:v1")]);
    assert!(copy.last().unwrap().starts_with(&format!("{registry}/team/app@sha256:")), "{copy:?}");
}

#[test]
fn a_leaked_secret_fails_the_run_and_nothing_is_tagged() {
    let (registry, dir) = common::dir_registry();
    let run = secret_push(&registry, dir.path()).with("FAKE_DOCKER_LEAK", "npm_token");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let leak = done.stdout.lines().find(|l| l.starts_with("::error::Leaked")).expect("a leak error");
    assert!(leak.starts_with("::error::Leaked: secret 'npm_token' (as is) is in layer sha256:"), "{leak}");
    assert!(leak.contains("(linux/amd64), file /root/.npmrc"), "{leak}");
    assert!(
        !tagged(dir.path(), "latest") && !tagged(dir.path(), "sha-6113728"),
        "a leaking image never receives a tag"
    );
    assert!(run.call(&["buildx", "imagetools", "create"]).is_none());
    let out = run.outputs();
    assert!(!out.contains_key("digest") && !out.contains_key("pushed"));
    assert!(run.summary().contains("secret value(s) found in the image, so no tag was created"), "{}", run.summary());
    assert!(run.summary().contains("Leaked: secret 'npm_token'"));
    for line in done.stdout.lines().chain(done.stderr.lines()).filter(|l| l.contains(ENV_SECRET)) {
        assert_eq!(line, format!("::add-mask::{ENV_SECRET}"));
    }
    assert!(!run.summary().contains(ENV_SECRET));
}

#[test]
fn an_unpushed_build_is_exported_and_scanned_locally() {
    let run = Run::new("pull_request", "pull_request-same-repo-opened.json")
        .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN")
        .with("NPM_TOKEN", ENV_SECRET)
        .with("FAKE_DOCKER_LEAK", "npm_token");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    let build = argv(&run.call(&["buildx", "build"]).unwrap());
    let output = flag_values(&build, "--output");
    assert_eq!(output.len(), 1);
    assert!(output[0].starts_with(&format!("type=oci,dest={}/sdi-", run.path("runner_temp").display())), "{output:?}");
    assert!(output[0].ends_with("/oci,tar=false"));
    assert!(done.stdout.contains("::error::Leaked: secret 'npm_token' (as is) is in layer"), "{}", done.stdout);
    assert!(files_below(&run.path("runner_temp")).is_empty(), "the export is removed with the run");

    let clean = Run::new("pull_request", "pull_request-same-repo-opened.json")
        .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN")
        .with("NPM_TOKEN", ENV_SECRET);
    let done = clean.run();
    done.assert_success();
    assert!(done.stdout.contains("::notice::No secret value in the image: 2 layers"), "{}", done.stdout);
}

#[test]
fn verify_secrets_false_skips_the_scan_with_a_warning() {
    let run = Run::new("push", "push-default-branch.json")
        .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN")
        .with("NPM_TOKEN", ENV_SECRET)
        .with("INPUT_VERIFY-SECRETS", "false");
    let done = run.run();
    done.assert_success();
    let build = argv(&run.call(&["buildx", "build"]).unwrap());
    assert!(build.contains(&"--push".to_string()) && build.contains(&"--tag".to_string()));
    assert!(done.stdout.contains("::warning::verify-secrets: false"));
    assert!(run.summary().contains("verify-secrets: false"));
}

#[test]
fn secret_looking_build_args_are_flagged() {
    let run = Run::new("push", "push-default-branch.json")
        .with("INPUT_BUILD-ARGS", "NPM_TOKEN=abc\nVERSION=1.2.3\nNOTE=ghp_0123456789abcdefghij");
    let done = run.run();
    done.assert_success();
    assert!(done.stdout.contains("::warning::build-arg NPM_TOKEN looks like a secret"), "{}", done.stdout);
    assert!(done.stdout.contains("::warning::build-arg NOTE looks like a secret"));
    assert!(!done.stdout.contains("build-arg VERSION"));
}

#[test]
fn a_leaking_per_platform_build_hands_no_digest_to_the_merge() {
    let (registry, dir) = common::dir_registry();
    let run =
        secret_push(&registry, dir.path()).with("INPUT_PUSH-BY-DIGEST", "true").with("FAKE_DOCKER_LEAK", "npm_token");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(!run.outputs().contains_key("digest"));
    assert!(run.call(&["buildx", "imagetools"]).is_none());
}

#[test]
fn secret_file_contents_are_masked_first() {
    let run = Run::new("push", "push-default-branch.json");
    let file = run.path("npmrc");
    std::fs::write(&file, "{\n//registry.npmjs.org/:_authToken=npm_FileSecretValue_0042\n}\n").unwrap();
    let run =
        run.with("INPUT_SECRET-FILES", &format!("npmrc={}", file.display())).with("INPUT_VERIFY-SECRETS", "false");
    let done = run.run();
    done.assert_success();
    let masks: Vec<&str> = done.stdout.lines().take_while(|l| l.starts_with("::add-mask::")).collect();
    assert!(masks.contains(&"::add-mask:://registry.npmjs.org/:_authToken=npm_FileSecretValue_0042"), "{masks:?}");
    assert!(!done.stdout.contains("::add-mask::{"), "short lines are not masked");
}

#[test]
fn a_runner_temp_the_container_cannot_see_falls_back_to_a_private_temp_dir() {
    let run = Run::new("push", "push-default-branch.json").with("INPUT_PLATFORMS", "linux/amd64");
    let tmp = run.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let run = run.with("RUNNER_TEMP", "/home/runner/work/_temp/not-mounted-here").with("TMPDIR", tmp.to_str().unwrap());
    let done = run.run();
    done.assert_success();
    let login = run.call(&["login"]).unwrap();
    assert!(login["docker_config"].as_str().unwrap().starts_with(tmp.to_str().unwrap()), "{login}");
    assert_eq!(login["docker_config_mode"], "700");
    assert!(files_below(&tmp).is_empty(), "removed at the end");
}

#[test]
fn runner_tokens_reach_docker_only_where_needed() {
    // Not signing: the OIDC token is for this run's own signature (tests/signing_action.rs).
    let with_tokens = |run: Run| {
        run.with("INPUT_SIGN", "false")
            .with("ACTIONS_RUNTIME_TOKEN", "runtime-token-value")
            .with("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc-token-value")
            .with("ACTIONS_ID_TOKEN_REQUEST_URL", "https://oidc.example")
            .with("ACTIONS_RESULTS_URL", "https://results.example")
    };
    let run = with_tokens(Run::new("push", "push-default-branch.json"));
    run.run().assert_success();
    for call in run.calls() {
        let names = env_names(&call);
        assert!(
            !names.iter().any(|n| n.starts_with("ACTIONS_ID_TOKEN_REQUEST_") || n == "ACTIONS_RUNTIME_TOKEN"),
            "{names:?}"
        );
    }
    // A fork PR with the GitHub Actions cache: buildx needs the runtime token for it.
    let gha = with_tokens(Run::new("pull_request", "pull_request-fork-opened.json").with("INPUT_FORK-CACHE", "gha"));
    gha.run().assert_success();
    let names = env_names(&gha.call(&["buildx", "build"]).unwrap());
    assert!(names.contains(&"ACTIONS_RUNTIME_TOKEN".to_string()) && names.contains(&"ACTIONS_RESULTS_URL".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("ACTIONS_ID_TOKEN_REQUEST_")));
}

#[test]
fn a_cancel_during_the_secret_scan_ends_the_run_promptly_and_tags_nothing() {
    let (registry, dir) = common::slow_dir_registry(Duration::from_secs(60));
    let run = secret_push(&registry, dir.path());
    let stamp = run.path("stamp");
    let run = run.with("FAKE_DOCKER_STAMP", stamp.to_str().unwrap());
    // The fake build ends at once; the scan then waits on the slow registry.
    let status = sigterm_once_building(&run, &stamp, Duration::from_millis(700));
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(
        !tagged(dir.path(), "latest") && run.call(&["buildx", "imagetools", "create"]).is_none(),
        "nothing was tagged"
    );
}
