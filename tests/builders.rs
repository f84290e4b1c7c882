//! Every form of the `builder` input, run as the runner runs the action (inside its container
//! the user's `~/.docker` is not visible): the exact docker calls, where the build ran (the
//! fake records the builder's endpoint per build), and what is left afterwards.

mod common;

use common::run::*;
use serde_json::Value;

fn words(run: &Run) -> Vec<String> {
    run.calls().iter().map(|c| argv(c).iter().take(2).cloned().collect::<Vec<_>>().join(" ")).collect()
}

/// The builder a run attached: `buildx create … --driver remote <endpoint>` under a name of
/// the run's, which the build then names and the end removes.
fn attached(run: &Run, endpoint: &str) -> String {
    let create = argv(&run.call(&["buildx", "create"]).expect("a builder record is made"));
    let name = create[3].clone();
    assert!(name.starts_with("sdi-4242-"), "{create:?}");
    assert_eq!(create.last().map(String::as_str), Some(endpoint), "{create:?}");
    assert_eq!(flag_values(&create, "--driver"), ["remote"]);
    let build = run.call(&["buildx", "build"]).expect("a build");
    assert_eq!(flag_values(&argv(&build), "--builder"), std::slice::from_ref(&name));
    assert_eq!(build["builder_endpoint"], endpoint, "the build ran on that BuildKit");
    let rm = argv(&run.call(&["buildx", "rm"]).expect("the record is removed"));
    assert_eq!(rm, ["buildx", "rm", name.as_str()]);
    name
}

#[test]
fn a_name_whose_record_is_not_visible_attaches_the_daemons_container() {
    let run = push()
        .with("INPUT_BUILDER", "userbuilder")
        .with("FAKE_DOCKER_CONTAINERS", "buildx_buildkit_userbuilder0=running");
    let done = run.run();
    done.assert_success();
    let name = attached(&run, "docker-container://buildx_buildkit_userbuilder0");
    assert_eq!(
        argv(&run.call(&["container", "inspect"]).unwrap()),
        ["container", "inspect", "--format", "{{.State.Running}}", "buildx_buildkit_userbuilder0"]
    );
    assert_eq!(
        words(&run),
        ["login ghcr.io", "container inspect", "buildx create", "buildx inspect", "buildx build", "buildx rm"]
    );
    assert_eq!(argv(&run.call(&["buildx", "inspect"]).unwrap()), ["buildx", "inspect", "--bootstrap", name.as_str()]);
    assert!(run.call(&["start"]).is_none(), "a running container is not restarted");
    // The summary names the builder as the user did.
    assert!(done.stdout.contains("userbuilder (its record, else the container buildx_buildkit_userbuilder0"));
}

#[test]
fn a_stopped_builder_container_is_started_first() {
    let run = push()
        .with("INPUT_BUILDER", "userbuilder")
        .with("FAKE_DOCKER_CONTAINERS", "buildx_buildkit_userbuilder0=exited");
    run.run().assert_success();
    assert_eq!(argv(&run.call(&["start"]).unwrap()), ["start", "buildx_buildkit_userbuilder0"]);
    attached(&run, "docker-container://buildx_buildkit_userbuilder0");
}

#[test]
fn a_name_with_a_visible_record_is_used_as_it_is() {
    let run = push().with_user_builder("ci", "docker-container");
    run.run().assert_success();
    assert_eq!(words(&run), ["login ghcr.io", "buildx inspect", "buildx build"]);
    let build = run.call(&["buildx", "build"]).unwrap();
    assert_eq!(flag_values(&argv(&build), "--builder"), ["ci"]);
    assert_eq!(build["builder_driver"], "docker-container");
}

#[test]
fn an_unresolvable_name_fails_before_the_build_saying_what_was_tried() {
    let run = push().with("INPUT_BUILDER", "userbuilder");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1));
    let errors: Vec<&str> = done.stdout.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{}", done.stdout);
    for said in [
        "builder 'userbuilder' cannot be used",
        "no record of it (looked for buildx/instances/userbuilder",
        "no container buildx_buildkit_userbuilder0",
        "No such container: buildx_buildkit_userbuilder0",
        "tcp://, unix://, docker-container://",
    ] {
        assert!(errors[0].contains(said), "{said:?} not in {}", errors[0]);
    }
    assert!(run.call(&["buildx", "build"]).is_none() && run.call(&["buildx", "create"]).is_none());
}

#[test]
fn each_endpoint_scheme_is_attached_with_the_remote_driver() {
    let run = push()
        .with("INPUT_BUILDER", "docker-container://shared_buildkit")
        .with("FAKE_DOCKER_CONTAINERS", "shared_buildkit=running");
    run.run().assert_success();
    attached(&run, "docker-container://shared_buildkit");
    assert!(run.call(&["container", "inspect"]).is_none(), "an endpoint is taken as given");

    let run = push();
    let socket = run.path("buildkitd.sock");
    std::fs::write(&socket, "").unwrap();
    let endpoint = format!("unix://{}", socket.display());
    let run = run.with("INPUT_BUILDER", &endpoint);
    run.run().assert_success();
    attached(&run, &endpoint);

    let run =
        push().with("INPUT_BUILDER", "tcp://buildkitd:1234").with("FAKE_DOCKER_ENDPOINTS", "tcp://buildkitd:1234");
    run.run().assert_success();
    attached(&run, "tcp://buildkitd:1234");
    let create = argv(&run.call(&["buildx", "create"]).unwrap());
    assert!(flag_values(&create, "--driver-opt").is_empty(), "no TLS asked, none given");
}

const KEY_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";

#[test]
fn tcp_with_client_certificates_from_files_and_from_text() {
    let run = push();
    std::fs::create_dir_all(run.path("certs")).unwrap();
    for f in ["ca.pem", "cert.pem"] {
        std::fs::write(
            run.path(&format!("certs/{f}")),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
    }
    let key = format!("-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----");
    let cert = run.path("certs/cert.pem").display().to_string();
    let run = run
        .with("INPUT_BUILDER", "tcp://buildkitd:1234")
        .with("FAKE_DOCKER_ENDPOINTS", "tcp://buildkitd:1234")
        .with("INPUT_BUILDER-TLS-CACERT", "certs/ca.pem")
        .with("INPUT_BUILDER-TLS-CERT", &cert)
        .with("INPUT_BUILDER-TLS-KEY", &key);
    let done = run.run();
    done.assert_success();
    attached(&run, "tcp://buildkitd:1234");
    let create = argv(&run.call(&["buildx", "create"]).unwrap());
    let opts = flag_values(&create, "--driver-opt");
    let ca = run.path("certs/ca.pem");
    assert_eq!(opts[0], format!("cacert={}", ca.display()), "a relative path is made absolute, as buildx requires");
    assert_eq!(opts[1], format!("cert={}", run.path("certs/cert.pem").display()));
    let key_path = opts[2].strip_prefix("key=").unwrap();
    assert!(key_path.starts_with(&run.path("runner_temp").display().to_string()), "{key_path}");
    // The remote driver read a 0600 key file of the right size at build time…
    let tls = &run.call(&["buildx", "build"]).unwrap()["builder_tls"];
    assert_eq!(tls["key"]["mode"], "600");
    assert_eq!(tls["key"]["bytes"], Value::from(key.len() + 1));
    // …which is gone with the run, and the key is nowhere else.
    assert!(!std::path::Path::new(key_path).exists());
    for f in files_below(run.dir.path()) {
        let text = std::fs::read(&f).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&text).contains(KEY_BODY), "{} holds the key", f.display());
    }
    let shown: Vec<&str> = done.stdout.lines().filter(|l| l.contains(KEY_BODY)).collect();
    assert_eq!(shown, [format!("::add-mask::{KEY_BODY}")], "only masked");
    assert!(!done.stderr.contains(KEY_BODY));
    for call in run.calls() {
        assert!(!call.to_string().contains(KEY_BODY), "the key reached a docker call: {call}");
    }
}

#[test]
fn an_unreachable_endpoint_fails_before_the_build_and_leaves_no_record() {
    let run = push().with("INPUT_BUILDER", "tcp://buildkitd:1234");
    let done = run.run();
    assert_eq!(done.output.status.code(), Some(1));
    assert!(
        done.stdout
            .contains("::error::builder 'tcp://buildkitd:1234' cannot be used: ERROR: Unavailable: connection error"),
        "{}",
        done.stdout
    );
    assert!(run.call(&["buildx", "build"]).is_none());
    assert!(run.call(&["buildx", "rm"]).is_some(), "the attached record is removed");
}

#[test]
fn untrusted_code_gets_a_builder_of_its_own_instead_of_the_shared_endpoint() {
    let run = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("INPUT_BUILDER", "tcp://buildkitd:1234")
        .with("FAKE_DOCKER_ENDPOINTS", "tcp://buildkitd:1234");
    let done = run.run();
    done.assert_success();
    let create = argv(&run.call(&["buildx", "create"]).unwrap());
    assert_eq!(flag_values(&create, "--driver"), ["docker-container"]);
    assert!(!run.calls().iter().any(|c| c.to_string().contains("buildkitd:1234")));
    assert!(done.stdout.contains("does not run on the shared BuildKit at tcp://buildkitd:1234"));
}

#[test]
fn default_is_the_daemons_buildkit_and_writes_no_cache_it_cannot() {
    let run = push().with("INPUT_BUILDER", "default");
    let done = run.run();
    done.assert_success();
    assert_eq!(words(&run), ["login ghcr.io", "buildx inspect", "buildx build"]);
    let build = argv(&run.call(&["buildx", "build"]).unwrap());
    assert_eq!(flag_values(&build, "--builder"), ["default"]);
    assert!(flag_values(&build, "--cache-to").is_empty(), "{build:?}");
    assert!(!flag_values(&build, "--cache-from").is_empty(), "reading the cache works on the docker driver");
    assert!(done.stdout.contains("uses the docker driver without the containerd image store"), "{}", done.stdout);
    assert!(!done.stdout.contains("The registry cache was not written"), "a cache not asked for is not missed");

    // With the containerd image store the docker driver exports caches: nothing is dropped.
    let run = push().with("INPUT_BUILDER", "default").with("FAKE_DOCKER_CONTAINERD_STORE", "1");
    run.run().assert_success();
    let build = argv(&run.call(&["buildx", "build"]).unwrap());
    assert_eq!(flag_values(&build, "--cache-to").len(), 1, "{build:?}");
}
