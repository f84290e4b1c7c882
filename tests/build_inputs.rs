//! build-push-action's inputs, lowered into the plan under this action's trust rules (plan
//! snapshots, trusted push and fork PR for each), and what the fake `docker` saw of `load`,
//! `logins` and `allow`.

mod common;

use common::run::*;
use common::{env, fixture, plan};
use serde_json::{Value, json};

/// What an input changes in a plan: the command, caches, push, logins and warnings.
fn shape(event: &str, payload: &Value, inputs: &[(&str, &str)]) -> Value {
    let vars: Vec<(String, String)> =
        inputs.iter().map(|(k, v)| (format!("INPUT_{}", k.to_ascii_uppercase()), v.to_string())).collect();
    let mut extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    extra.extend([
        ("INPUT_GITHUB-TOKEN", "ghs_token"),
        ("INPUT_PLATFORMS", "linux/amd64"),
        ("HUB_TOKEN", "dckr_pat_x"),
    ]);
    let p = plan(event, payload, &env("Codertocat/Hello-World", &extra)).unwrap();
    let argv: Vec<&String> = p.argv.iter().filter(|a| !a.starts_with("org.opencontainers.image.")).collect();
    json!({
        "argv": argv, "cache_from": p.cache_from, "cache_to": p.cache_to, "push": p.push, "load": p.load,
        "login": p.login, "credentials": p.credentials, "warnings": p.warnings,
    })
}

const INPUTS: &[(&str, &[(&str, &str)])] = &[
    ("load", &[("load", "true")]),
    ("outputs", &[("outputs", "type=local,dest=out\ntype=image,name=quay.io/acme/app,push=true")]),
    ("ssh", &[("ssh", "default\ngithub=/home/runner/.ssh/id_ed25519")]),
    ("build-contexts", &[("build-contexts", "base=docker-image://alpine:3.20\nsrc={{defaultContext}}/src")]),
    ("annotations", &[("annotations", "org.opencontainers.image.vendor=Acme\nindex:org.example.note=multi")]),
    ("attests", &[("attests", "type=sbom,generator=docker/buildkit-syft-scanner\ntype=provenance,mode=max")]),
    ("no-cache", &[("no-cache", "true")]),
    ("no-cache-filters", &[("no-cache-filters", "deps,test")]),
    ("pull", &[("pull", "true")]),
    ("network", &[("network", "host"), ("allow", "network.host")]),
    ("add-hosts", &[("add-hosts", "docker:10.180.0.1,db=10.0.0.2")]),
    ("allow", &[("allow", "security.insecure")]),
    ("shm-size", &[("shm-size", "2g")]),
    ("ulimit", &[("ulimit", "nofile=1024:1024")]),
    ("cgroup-parent", &[("cgroup-parent", "/actions")]),
    ("call", &[("call", "check")]),
    ("cache-from", &[("cache-from", "user/app:cache\ntype=gha,scope=app")]),
    ("cache-to", &[("cache-to", "type=registry,ref=quay.io/acme/app:cache,mode=max\ntype=gha,scope=app,mode=max")]),
    (
        "logins",
        &[
            ("logins", "registry=docker.io,username=acme,password-env=HUB_TOKEN"),
            ("images", "ghcr.io/codertocat/hello-world\nacme/app"),
        ],
    ),
];

#[test]
fn every_build_push_input_reaches_the_plan_under_the_trust_rules() {
    for (name, inputs) in INPUTS {
        let trusted = shape("push", &fixture("push-default-branch.json"), inputs);
        let fork = shape("pull_request", &fixture("pull_request-fork-opened.json"), inputs);
        insta::assert_json_snapshot!(format!("build-input-{name}"), json!({"trusted push": trusted, "fork PR": fork}));
    }
}

#[test]
fn untrusted_code_never_gets_ssh_entitlements_cache_writes_or_pushing_outputs() {
    let all = [
        ("ssh", "default"),
        ("allow", "network.host,security.insecure"),
        ("network", "host"),
        ("cache-to", "type=registry,ref=ghcr.io/codertocat/hello-world:mine"),
        ("outputs", "type=registry,name=ghcr.io/codertocat/hello-world:x\ntype=local,dest=out"),
        ("logins", "registry=docker.io,username=acme,password-env=HUB_TOKEN"),
        ("load", "true"),
    ];
    let fork = shape("pull_request", &fixture("pull_request-fork-opened.json"), &all);
    let argv: Vec<&str> = fork["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for forbidden in ["--ssh", "--allow", "--network", "type=registry,name=ghcr.io/codertocat/hello-world:x", "--push"]
    {
        assert!(!argv.contains(&forbidden), "{forbidden} in {argv:?}");
    }
    assert!(!argv.iter().any(|a| a.contains(":mine")), "{argv:?}");
    assert!(argv.contains(&"--load") && argv.contains(&"type=local,dest=out"), "load and local outputs stay: {argv:?}");
    assert_eq!(fork["login"], json!([]));
    assert_eq!(fork["credentials"], json!([]));
    let warnings = fork["warnings"].to_string();
    for input in ["ssh withheld", "allow withheld", "network: host withheld", "cache-to withheld", "outputs withheld"] {
        assert!(warnings.contains(input), "{input}: {warnings}");
    }
    // The same inputs on a trusted run: all of them, and logins to where it writes.
    let trusted = shape("push", &fixture("push-default-branch.json"), &all);
    let argv = trusted["argv"].to_string();
    for wanted in ["--ssh", "--allow", "--network", ":mine", "type=registry,name=ghcr.io/codertocat/hello-world:x"] {
        assert!(argv.contains(wanted), "{wanted}: {argv}");
    }
}

#[test]
fn a_trusted_run_needs_the_password_it_logs_in_with() {
    let inputs = [("INPUT_LOGINS", "registry=docker.io,username=acme,password-env=HUB_TOKEN")];
    let e = plan("push", &fixture("push-default-branch.json"), &env("Codertocat/Hello-World", &inputs)).unwrap_err();
    assert_eq!(e.input, "logins");
    assert!(e.message.contains("HUB_TOKEN, which is not set"), "{}", e.message);
    // An untrusted run logs in nowhere, so the missing password is no error there.
    plan("pull_request", &fixture("pull_request-fork-opened.json"), &env("Codertocat/Hello-World", &inputs)).unwrap();
}

#[test]
fn load_and_push_are_one_build() {
    let run = push().with("INPUT_LOAD", "true").with("INPUT_PLATFORMS", native());
    run.run().assert_success();
    let builds: Vec<Value> =
        run.calls().into_iter().filter(|c| argv(c).starts_with(&["buildx".into(), "build".into()])).collect();
    assert_eq!(builds.len(), 1, "one build loads and pushes");
    let a = argv(&builds[0]);
    assert!(a.contains(&"--load".to_string()) && a.contains(&"--push".to_string()), "{a:?}");
    assert!(run.call(&["info"]).is_none(), "one platform: nothing to ask the daemon");
}

#[test]
fn loading_several_platforms_asks_the_daemon_first() {
    loads_several_platforms_only_into_the_containerd_store(push);
}

#[test]
fn loading_several_platforms_asks_the_daemon_through_its_api_without_the_docker_cli() {
    loads_several_platforms_only_into_the_containerd_store(|| push().via_engine_api());
}

fn loads_several_platforms_only_into_the_containerd_store(push: impl Fn() -> Run) {
    let several = push().with("INPUT_LOAD", "true").with("INPUT_PLATFORMS", "linux/amd64,linux/arm64");
    let done = several.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    assert!(
        done.stdout.contains("::error::load: the Docker daemon stores images without the containerd image store"),
        "{}",
        done.stdout
    );
    assert!(several.call(&["buildx", "build"]).is_none(), "refused before the build");

    let store = push()
        .with("INPUT_LOAD", "true")
        .with("INPUT_PLATFORMS", "linux/amd64,linux/arm64")
        .with("FAKE_DOCKER_CONTAINERD_STORE", "1");
    store.run().assert_success();
    assert!(argv(&store.call(&["buildx", "build"]).unwrap()).contains(&"--load".to_string()));
}

const HUB_PASSWORD: &str = "dckr_pat_HubSecretValue_9c1e";

#[test]
fn a_second_registry_is_logged_in_with_its_own_credentials_and_the_password_goes_nowhere_else() {
    logs_in_to_a_second_registry(push());
}

#[test]
fn through_the_engine_api_a_second_registry_is_kept_where_buildx_finds_it_and_nowhere_else() {
    logs_in_to_a_second_registry(push().via_engine_api());
}

fn logs_in_to_a_second_registry(run: Run) {
    let run = run
        .with("INPUT_IMAGES", "ghcr.io/codertocat/hello-world\nacme/app")
        .with("INPUT_LOGINS", "registry=docker.io,username=acme-bot,password-env=DOCKERHUB_TOKEN")
        .with("DOCKERHUB_TOKEN", HUB_PASSWORD)
        .with("INPUT_PLATFORMS", native());
    let done = run.run();
    done.assert_success();
    // The CLI is given Docker Hub's name; the API its historical address, as the CLI sends it.
    let hub = run.call(&["login", "docker.io"]).or_else(|| run.call(&["login", "https://index.docker.io/v1/"]));
    let hub = hub.expect("a login to Docker Hub");
    assert_eq!(argv(&hub)[2..], ["--username", "acme-bot", "--password-stdin"]);
    assert_eq!(hub["stdin_bytes"], HUB_PASSWORD.len());
    let ghcr = run.call(&["login", "ghcr.io"]).expect("GHCR with the token");
    assert_eq!(ghcr["stdin_bytes"], TOKEN.len());
    // buildx finds both logins where the CLI keeps them (Docker Hub under its historical address).
    let build = run.call(&["buildx", "build"]).unwrap();
    assert_eq!(build["auths"], serde_json::json!(["ghcr.io", "https://index.docker.io/v1/"]), "{build}");
    let build = argv(&build);
    assert!(build.contains(&"acme/app:latest".to_string()), "{build:?}");
    for call in run.calls() {
        assert!(!call.to_string().contains(HUB_PASSWORD), "in a docker call: {call}");
        assert!(!env_names(&call).contains(&"DOCKERHUB_TOKEN".to_string()), "in a docker call's environment: {call}");
    }
    // Printed once, to be masked, and nowhere else; no file is left that holds it.
    let mask = format!("::add-mask::{HUB_PASSWORD}");
    assert_eq!(done.stdout.matches(HUB_PASSWORD).count(), 1, "{}", done.stdout);
    assert!(done.stdout.lines().next().unwrap().starts_with("::add-mask::") && done.stdout.contains(&mask));
    assert!(!done.stderr.contains(HUB_PASSWORD));
    for file in files_below(run.dir.path()) {
        let text = std::fs::read(&file).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&text).contains(HUB_PASSWORD), "{}", file.display());
    }

    // Untrusted: no login at all, the password reaches nothing.
    let fork = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("INPUT_LOGINS", "registry=docker.io,username=acme-bot,password-env=DOCKERHUB_TOKEN")
        .with("DOCKERHUB_TOKEN", HUB_PASSWORD)
        .with("INPUT_PLATFORMS", native());
    fork.run().assert_success();
    assert!(fork.call(&["login"]).is_none());
    assert!(fork.calls().iter().all(|c| !env_names(c).contains(&"DOCKERHUB_TOKEN".to_string())));
}

#[test]
fn allow_starts_the_runs_builder_with_the_entitlement() {
    let run = push().with("INPUT_ALLOW", "security.insecure").with("INPUT_PLATFORMS", native());
    run.run().assert_success();
    let create = argv(&run.call(&["buildx", "create"]).unwrap());
    let flags = create.iter().position(|a| a == "--buildkitd-flags").expect("--buildkitd-flags");
    assert_eq!(create[flags + 1], "--allow-insecure-entitlement security.insecure");
    assert!(
        flag_values(&argv(&run.call(&["buildx", "build"]).unwrap()), "--allow")
            .contains(&"security.insecure".to_string())
    );
}

/// The caches of one build of a matrix: its scope and refs, main lane, PR lane and fork PR.
fn scoped(inputs: &[(&str, &str)]) -> Value {
    let caches = |event: &str, payload: &Value, extra: &[(&str, &str)]| {
        let mut vars: Vec<(String, String)> =
            inputs.iter().map(|(k, v)| (format!("INPUT_{}", k.to_ascii_uppercase()), v.to_string())).collect();
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let p = plan(event, payload, &env("Codertocat/Hello-World", &vars)).unwrap();
        json!({"build_scope": p.build_scope, "cache_from": p.cache_from, "cache_to": p.cache_to})
    };
    let main = fixture("push-default-branch.json");
    let same = fixture("pull_request-same-repo-opened.json");
    json!({
        "main": caches("push", &main, &[]),
        "per-pr PR": caches("pull_request", &same, &[("INPUT_PR-CACHE", "per-pr")]),
        "per-platform": caches("push", &main, &[("INPUT_PUSH-BY-DIGEST", "true"), ("INPUT_PLATFORMS", "linux/arm64")]),
        "fork PR": caches("pull_request", &fixture("pull_request-fork-opened.json"), &[]),
    })
}

#[test]
fn each_build_of_a_matrix_gets_a_cache_scope_and_the_default_build_keeps_buildcache() {
    let default = scoped(&[]);
    assert_eq!(
        default["main"]["cache_to"][0],
        "type=registry,ref=ghcr.io/codertocat/hello-world:buildcache,mode=max,ignore-error=true"
    );
    assert_eq!(default["main"]["build_scope"], Value::Null);
    assert_eq!(scoped(&[("file", "./Dockerfile")]), default, "the default Dockerfile spelled out is the default build");
    let api = scoped(&[("target", "api")]);
    let worker = scoped(&[("target", "worker")]);
    assert_ne!(api["main"]["cache_to"], worker["main"]["cache_to"], "two targets, two caches");
    insta::assert_json_snapshot!(
        "matrix-cache-scopes",
        json!({
            "default": default,
            "target api": api,
            "target worker": worker,
            "file docker/Dockerfile.API": scoped(&[("file", "docker/Dockerfile.API")]),
            "file and target": scoped(&[("file", "services/billing/Dockerfile"), ("target", "Runtime")]),
        })
    );
}
