//! Real-engine end-to-end tests (DESIGN.md, Tests): the action binary against real buildx,
//! BuildKit and a registry. They run only when `SDI_E2E_BUILDER` (a buildx builder name),
//! `SDI_E2E_REGISTRY` (a plain-HTTP registry the builder pushes to, such as 127.0.0.1:5000)
//! and `SDI_E2E_BASE_IMAGE` (a busybox-like multi-arch image with /bin/sh) are set; otherwise
//! each test prints why it is skipped and passes. Images go under `$SDI_E2E_REGISTRY/sdi-e2e/`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// The tests share one builder and prune it: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct E2e {
    builder: String,
    registry: String,
    base: String,
}

fn e2e(test: &str) -> Option<E2e> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (get("SDI_E2E_BUILDER"), get("SDI_E2E_REGISTRY"), get("SDI_E2E_BASE_IMAGE")) {
        (Some(builder), Some(registry), Some(base)) => Some(E2e { builder, registry, base }),
        _ => {
            skip(test, "set SDI_E2E_BUILDER, SDI_E2E_REGISTRY and SDI_E2E_BASE_IMAGE to run the real-engine tests");
            None
        }
    }
}

/// Says why a test did not run. Written to stderr directly: the test harness captures
/// `eprintln!` of passing tests, and a skip must be seen.
fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr().lock(), "skipped {test}: {why}");
}

/// One test's setup: the environment, the serial lock, and a fresh repository in the registry.
struct Case {
    e: E2e,
    _serial: std::sync::MutexGuard<'static, ()>,
    n: String,
    repo: String,
    image: String,
}

fn start(test: &str, kind: &str) -> Option<Case> {
    let e = e2e(test)?;
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let n = nonce();
    let repo = format!("sdi-e2e/{kind}-{n}");
    let image = format!("{}/{repo}", e.registry);
    Some(Case { e, _serial: serial, n, repo, image })
}

fn nonce() -> String {
    let mut b = [0u8; 6];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A workspace with a Dockerfile, and the runner's files.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(dockerfile: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(dir.path().join("app.txt"), "hello from the e2e app\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "runner/\n").unwrap();
        std::fs::create_dir_all(dir.path().join("runner/temp")).unwrap();
        Workspace { dir }
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.dir.path().join(p)
    }
}

struct Ran {
    output: Output,
    stdout: String,
    outputs: HashMap<String, String>,
    summary: String,
}

/// A fixture's name, or a payload file of the test's own (an absolute path).
fn event_path(fixture: &str) -> std::path::PathBuf {
    if fixture.starts_with('/') { fixture.into() } else { common::fixture_path(fixture) }
}

/// Runs the action as the runner would, with the user's docker environment (daemon, builder).
fn run_action(
    ws: &Workspace,
    event: &str,
    fixture: &str,
    git_ref: &str,
    inputs: &[(&str, &str)],
    extra_env: &[(&str, &str)],
) -> Ran {
    let out_file = ws.path("runner/output");
    let summary_file = ws.path("runner/summary");
    std::fs::write(&out_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-docker-images"));
    cmd.current_dir(ws.dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("GITHUB_") || k.starts_with("INPUT_") || k.starts_with("RUNNER_") || k.starts_with("ACTIONS_")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_EVENT_PATH", event_path(fixture))
        .env("GITHUB_REPOSITORY", "Codertocat/Hello-World")
        .env("GITHUB_REF", git_ref)
        .env("GITHUB_SHA", "6113728f27ae82c7b1a177c8d03f9e96e0adf246")
        .env("GITHUB_ACTOR", "Codertocat")
        .env("GITHUB_RUN_ID", "e2e")
        .env("RUNNER_TEMP", ws.path("runner/temp"))
        .env("GITHUB_OUTPUT", &out_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file);
    for (name, value) in inputs {
        cmd.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let text = std::fs::read_to_string(&out_file).unwrap();
    let mut outputs = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").unwrap();
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        outputs.insert(name.to_string(), value.join("\n"));
    }
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        std::fs::read_dir(ws.path("runner/temp")).unwrap().next().is_none(),
        "the action left files under RUNNER_TEMP"
    );
    Ran { output, stdout, outputs, summary }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn prune(builder: &str) {
    docker(&["buildx", "prune", "-af", "--builder", builder]);
}

fn builder_platforms(builder: &str) -> (Option<String>, Vec<String>) {
    sdi::buildx::inspected_platforms(&docker(&["buildx", "inspect", "--bootstrap", builder]))
}

/// A plain-HTTP GET against the registry: status, lower-cased headers, body.
fn http_get(registry: &str, path: &str, accept: &str) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut path = path.to_string();
    for _ in 0..3 {
        let mut s = TcpStream::connect(registry).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {registry}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP headers");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            body = dechunk(&body);
        }
        if (300..400).contains(&status) {
            let location = headers["location"].clone();
            path = match location.split_once("://") {
                Some((_, rest)) => rest[rest.find('/').unwrap()..].to_string(),
                None => location,
            };
            continue;
        }
        return (status, headers, body);
    }
    panic!("too many redirects for {path}");
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

const MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// `(digest, manifest)` of `repo:reference`, or `None` when the registry has no such tag.
fn manifest(registry: &str, repo: &str, reference: &str) -> Option<(String, Value)> {
    let (status, headers, body) = http_get(registry, &format!("/v2/{repo}/manifests/{reference}"), MANIFESTS);
    match status {
        200 => Some((headers["docker-content-digest"].clone(), serde_json::from_slice(&body).unwrap())),
        404 => None,
        other => panic!("registry answered {other} for {repo}:{reference}"),
    }
}

fn blob(registry: &str, repo: &str, digest: &str) -> Vec<u8> {
    let (status, _, body) = http_get(registry, &format!("/v2/{repo}/blobs/{digest}"), "*/*");
    assert_eq!(status, 200, "blob {digest}");
    body
}

/// The image platforms of a manifest list (attestation manifests left out).
fn index_platforms(index: &Value) -> BTreeSet<String> {
    index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .filter_map(|m| Some(format!("{}/{}", m["platform"]["os"].as_str()?, m["platform"]["architecture"].as_str()?)))
        .filter(|p| p != "unknown/unknown")
        .collect()
}

fn cache_hits(summary: &str) -> (usize, usize) {
    let line = summary
        .lines()
        .find(|l| l.starts_with("| Cache hits | "))
        .unwrap_or_else(|| panic!("no cache line in {summary}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[4].parse().unwrap(), words[6].parse().unwrap())
}

fn native(e: &E2e) -> String {
    let (_, platforms) = builder_platforms(&e.builder);
    platforms.first().cloned().expect("the builder lists a platform")
}

#[test]
fn main_push_then_rebuild_from_the_registry_cache_then_a_fork_pr() {
    let Some(Case { e, n, repo, image, .. }) =
        start("main_push_then_rebuild_from_the_registry_cache_then_a_fork_pr", "main")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nRUN echo \"step one {n}\" > /one.txt && sleep 1\nRUN cat /one.txt > /two.txt\nCOPY app.txt /app.txt\n",
        base = e.base
    ));
    let platform = native(&e);
    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("platforms", platform.as_str()),
        ("github-token", ""),
    ];

    // (a) Trusted main-lane push: the image is in the registry under the digest the action reports.
    let a = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(a.output.status.success(), "{}", a.stdout);
    assert_eq!(a.outputs["pushed"], "true");
    let (digest, _) = manifest(&e.registry, &repo, "latest").expect("latest was pushed");
    assert_eq!(a.outputs["digest"], digest);
    assert!(manifest(&e.registry, &repo, "sha-6113728").is_some());
    assert!(manifest(&e.registry, &repo, "buildcache").is_some(), "the main cache was written");
    assert!(manifest(&e.registry, &repo, "buildcache-pr").is_none(), "a main build never writes the PR cache");

    // (b) An emptied builder, the same build: every step comes from the registry cache.
    prune(&e.builder);
    let b = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(b.output.status.success(), "{}", b.stdout);
    assert_eq!(cache_hits(&b.summary), (3, 3), "{}", b.summary);
    let (cache_digest, _) = manifest(&e.registry, &repo, "buildcache").unwrap();

    // (c) A fork PR: builds from that cache, pushes nothing, writes no cache.
    prune(&e.builder);
    let c = run_action(&ws, "pull_request", "pull_request-fork-opened.json", "refs/pull/2/merge", &inputs, &[]);
    assert!(c.output.status.success(), "{}", c.stdout);
    assert_eq!(c.outputs["trusted"], "false");
    assert_eq!(c.outputs["pushed"], "false");
    assert_eq!(cache_hits(&c.summary), (3, 3), "{}", c.summary);
    assert!(manifest(&e.registry, &repo, "pr-2").is_none(), "a fork PR pushed an image");
    assert!(manifest(&e.registry, &repo, "buildcache-pr").is_none(), "a fork PR wrote the PR cache");
    assert_eq!(manifest(&e.registry, &repo, "buildcache").unwrap().0, cache_digest, "a fork PR changed the main cache");
}

#[test]
fn multi_platform_build_with_a_buildplatform_stage() {
    let Some(Case { e, n, repo, image, .. }) = start("multi_platform_build_with_a_buildplatform_stage", "multi") else {
        return;
    };
    // Every RUN step runs on $BUILDPLATFORM: the action builds this on any builder, with
    // or without emulation for the other platform.
    let ws = Workspace::new(&format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETPLATFORM\nRUN echo \"{n} for $TARGETPLATFORM\" > /target.txt\n\nFROM {base}\nCOPY --from=build /target.txt /target.txt\n",
        base = e.base
    ));
    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("platforms", "linux/amd64,linux/arm64"),
        ("github-token", ""),
    ];
    let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(r.output.status.success(), "{}", r.stdout);
    let (digest, index) = manifest(&e.registry, &repo, "latest").unwrap();
    assert_eq!(r.outputs["digest"], digest);
    assert_eq!(index_platforms(&index), BTreeSet::from(["linux/amd64".to_string(), "linux/arm64".to_string()]));
}

/// A trusted main-lane push for the builder's native platform, with the build secret `token`.
fn push_with_secret(e: &E2e, ws: &Workspace, image: &str, value: &str) -> Ran {
    let platform = native(e);
    let inputs = [
        ("image", image),
        ("builder", e.builder.as_str()),
        ("platforms", platform.as_str()),
        ("github-token", ""),
        ("secret-envs", "token=SDI_E2E_SECRET_VALUE"),
    ];
    run_action(ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[("SDI_E2E_SECRET_VALUE", value)])
}

/// Every layer of the image for `platform`, decompressed, and its config.
fn layers_and_config(registry: &str, repo: &str, reference: &str, platform: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
    let (_, top) = manifest(registry, repo, reference).unwrap();
    let image = match top["manifests"].as_array() {
        Some(list) => {
            let (os, arch) = platform.split_once('/').unwrap();
            let arch = arch.split('/').next().unwrap();
            let m = list
                .iter()
                .find(|m| m["platform"]["os"] == os && m["platform"]["architecture"] == arch)
                .expect("the platform's manifest");
            manifest(registry, repo, m["digest"].as_str().unwrap()).unwrap().1
        }
        None => top,
    };
    let config = blob(registry, repo, image["config"]["digest"].as_str().unwrap());
    let layers = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let data = blob(registry, repo, l["digest"].as_str().unwrap());
            let media = l["mediaType"].as_str().unwrap();
            if media.ends_with("gzip") {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&data[..]).read_to_end(&mut out).unwrap();
                out
            } else {
                assert!(media.ends_with(".tar") || media.ends_with("tar"), "unexpected layer type {media}");
                data
            }
        })
        .collect();
    (layers, config)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_secret_mount_builds_green_and_leaves_no_trace_in_the_image() {
    let Some(Case { e, n, repo, image, .. }) =
        start("a_secret_mount_builds_green_and_leaves_no_trace_in_the_image", "secret")
    else {
        return;
    };
    let value = format!("sdi-e2e-secret-{n}-{}", nonce());
    let ws = Workspace::new(&format!(
        "FROM {base}\nRUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token | tr -d ' ' > /secret-length.txt\n",
        base = e.base
    ));
    let r = push_with_secret(&e, &ws, &image, &value);
    assert!(r.output.status.success(), "{}", r.stdout);
    for line in r.stdout.lines().filter(|l| l.contains(&value)) {
        assert_eq!(line, format!("::add-mask::{value}"));
    }
    let (layers, config) = layers_and_config(&e.registry, &repo, "latest", &native(&e));
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&value)
    };
    for (i, layer) in layers.iter().enumerate() {
        assert!(!contains(layer, value.as_bytes()) && !contains(layer, b64.as_bytes()), "the secret is in layer {i}");
    }
    assert!(
        !contains(&config, value.as_bytes()) && !contains(&config, b64.as_bytes()),
        "the secret is in the image config"
    );
    assert!(r.stdout.contains("::notice::No secret value in the image"), "the image was scanned before it was tagged");
    // The step did see the secret: it recorded its length.
    let proof = format!("{}\n", value.len());
    assert!(
        layers.iter().any(|l| contains(l, b"secret-length.txt") && contains(l, proof.as_bytes())),
        "the secret was not mounted"
    );
}

#[test]
fn per_platform_builds_by_digest_then_a_merge() {
    let Some(Case { e, n, repo, image, .. }) = start("per_platform_builds_by_digest_then_a_merge", "merge") else {
        return;
    };
    // RUN steps on $BUILDPLATFORM: each platform builds on any builder, emulation or not.
    let ws = Workspace::new(&format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETPLATFORM\nRUN echo \"{n} for $TARGETPLATFORM\" > /target.txt\n\nFROM {base}\nCOPY --from=build /target.txt /target.txt\n",
        base = e.base
    ));
    let digests = tempfile::tempdir().unwrap();
    for platform in ["linux/amd64", "linux/arm64"] {
        let inputs = [
            ("image", image.as_str()),
            ("builder", e.builder.as_str()),
            ("platforms", platform),
            ("push-by-digest", "true"),
            ("github-token", ""),
        ];
        let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
        assert!(r.output.status.success(), "{platform}: {}", r.stdout);
        let digest = r.outputs["digest"].clone();
        assert!(manifest(&e.registry, &repo, &digest).is_some(), "{platform} was pushed by digest");
        std::fs::write(digests.path().join(digest.trim_start_matches("sha256:")), "").unwrap();
    }
    assert!(manifest(&e.registry, &repo, "latest").is_none(), "a by-digest push tags nothing");
    let amd64 = manifest(&e.registry, &repo, "buildcache-linux-amd64").expect("amd64 cache").0;
    let arm64 = manifest(&e.registry, &repo, "buildcache-linux-arm64").expect("arm64 cache").0;
    assert_ne!(amd64, arm64, "each platform has its own cache ref");
    assert!(manifest(&e.registry, &repo, "buildcache").is_none(), "no job wrote the shared ref");

    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("merge-digests", digests.path().to_str().unwrap()),
        ("github-token", ""),
    ];
    let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(r.output.status.success(), "{}", r.stdout);
    let raw =
        docker(&["buildx", "imagetools", "inspect", "--builder", &e.builder, "--raw", &format!("{image}:latest")]);
    let index: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index_platforms(&index), BTreeSet::from(["linux/amd64".to_string(), "linux/arm64".to_string()]));
    assert_eq!(r.outputs["digest"], manifest(&e.registry, &repo, "latest").unwrap().0);
}

#[test]
fn a_dockerfile_that_copies_its_secret_fails_and_gets_no_tag() {
    let Some(Case { e, n, repo, image, .. }) =
        start("a_dockerfile_that_copies_its_secret_fails_and_gets_no_tag", "leak")
    else {
        return;
    };
    let value = format!("sdi-e2e-leak-{n}-{}", nonce());
    let ws = Workspace::new(&format!(
        // The nonce makes the step new: secrets are not part of BuildKit's cache key, so a step
        // cached by an earlier run would hold that run's value, not this one's.
        "FROM {base}\nRUN --mount=type=secret,id=token,required=true echo {n} > /n.txt && cp /run/secrets/token /leaked.txt\n",
        base = e.base
    ));
    let r = push_with_secret(&e, &ws, &image, &value);
    assert_eq!(r.output.status.code(), Some(1), "{}", r.stdout);
    let leak = r
        .stdout
        .lines()
        .find(|l| l.starts_with("::error::Leaked: secret 'token'"))
        .unwrap_or_else(|| panic!("a leak error: {}", r.stdout));
    assert!(leak.contains("file /leaked.txt"), "{leak}");
    assert!(!r.stdout.lines().any(|l| l.contains(&value) && l != format!("::add-mask::{value}")));
    assert!(manifest(&e.registry, &repo, "latest").is_none(), "a leaking image got a tag");
    assert!(manifest(&e.registry, &repo, "sha-6113728").is_none());
    assert!(!r.outputs.contains_key("digest"));
}

/// A trusted push of `ws` with cache mounts (helper image: the base image), `RUN_ID` set; it
/// must succeed.
fn push_with_mounts(e: &E2e, ws: &Workspace, image: &str, platforms: &str, run_id: &str) -> Ran {
    let args = format!("RUN_ID={run_id}");
    let inputs = [
        ("image", image),
        ("builder", e.builder.as_str()),
        ("platforms", platforms),
        ("github-token", ""),
        ("build-args", args.as_str()),
        ("cache-mounts-image", e.base.as_str()),
    ];
    let r = run_action(ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(r.output.status.success(), "{}", r.stdout);
    r
}

#[test]
fn cache_mount_contents_survive_an_emptied_builder() {
    let Some(Case { e, n, repo, image, .. }) = start("cache_mount_contents_survive_an_emptied_builder", "mounts")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nARG RUN_ID\nRUN --mount=type=cache,id=sdi-e2e-{n},target=/cache \\\n    ls /cache | grep -c marker > /count.txt; touch /cache/marker-$RUN_ID\n",
        base = e.base
    ));
    let platform = native(&e);
    let build = |run_id: &str| push_with_mounts(&e, &ws, &image, &platform, run_id);
    let first = build("1");
    assert!(manifest(&e.registry, &repo, "buildcache-mounts").is_some(), "the store was saved: {}", first.summary);
    prune(&e.builder);
    let second = build("2");
    assert!(second.summary.contains(&format!("| `sdi-e2e-{n}` | ")), "{}", second.summary);
    let (layers, _) = layers_and_config(&e.registry, &repo, "latest", &platform);
    assert!(
        layers.iter().any(|l| contains(l, b"count.txt") && contains(l, b"1\n")),
        "the second build saw the first build's file in its cache mount"
    );
}

/// Cache records `docker buildx du` lists for a builder.
fn cache_records(builder: &str) -> usize {
    docker(&["buildx", "du", "--builder", builder])
        .lines()
        .map(str::trim)
        .filter(|l| l.split_whitespace().next().is_some_and(|w| w != "ID" && !w.ends_with(':')))
        .count()
}

/// Inside the action's container the runner's `~/.docker` is not visible: a builder made by
/// setup-buildx-action has no record there. Run so (an empty HOME, no DOCKER_CONFIG): the
/// action must attach the builder's container on the daemon, and the build must run on it.
/// `SDI_E2E_DOCKER_HOST` names the daemon when it is not the default socket.
#[test]
fn a_builder_whose_record_is_not_visible_is_attached_through_the_daemon() {
    let test = "a_builder_whose_record_is_not_visible_is_attached_through_the_daemon";
    let Some(Case { e, n, repo, image, .. }) = start(test, "attach") else {
        return;
    };
    let (driver, _) = builder_platforms(&e.builder);
    if driver.as_deref() != Some("docker-container") {
        skip(test, &format!("SDI_E2E_BUILDER uses the {driver:?} driver; this case needs a docker-container builder"));
        return;
    }
    let ws = Workspace::new(&format!("FROM {base}\nRUN echo \"attached {n}\" > /a.txt\n", base = e.base));
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().display().to_string();
    let mut env = vec![("HOME", home_path.as_str()), ("DOCKER_CONFIG", ""), ("RUNNER_DEBUG", "1")];
    let docker_host = std::env::var("SDI_E2E_DOCKER_HOST").unwrap_or_default();
    if !docker_host.is_empty() {
        env.push(("DOCKER_HOST", docker_host.as_str()));
    }
    let platform = native(&e);
    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("platforms", platform.as_str()),
        ("github-token", ""),
    ];
    prune(&e.builder);
    let before = cache_records(&e.builder);
    let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &env);
    assert!(r.output.status.success(), "{}", r.stdout);
    let endpoint = format!("docker-container://buildx_buildkit_{}0", e.builder);
    let container = shlex::try_quote(&endpoint).unwrap();
    assert!(
        r.stdout.lines().any(|l| l.starts_with("::debug::[builder] docker buildx create --name sdi-e2e-")
            && l.ends_with(&format!("--driver remote {container}"))),
        "the builder was attached through its container: {}",
        r.stdout
    );
    assert!(cache_records(&e.builder) > before, "the build ran on the user's builder: its BuildKit has the records");
    assert!(manifest(&e.registry, &repo, "latest").is_some(), "the image was pushed");
    // The user's builder is left as it was: its record and its container.
    let (_, platforms) = builder_platforms(&e.builder);
    assert!(!platforms.is_empty(), "the user's builder still answers");
}

/// Two pull requests interleaved on an emptied builder each time: main, PR 11, PR 12 (other
/// content in the expensive step), then PR 11 again with that step's inputs unchanged. With
/// `pr-cache: per-pr` PR 11 finds its own cache; with `shared`, PR 12 overwrote it.
#[test]
fn per_pr_caches_survive_another_pull_request() {
    let Some(Case { e, n, .. }) = start("per_pr_caches_survive_another_pull_request", "pr-cache") else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nCOPY deps.txt /deps.txt\nRUN cat /deps.txt > /installed.txt && sleep 1\nCOPY app.txt /app.txt\n",
        base = e.base
    ));
    let payload = |number: u64| {
        let mut p = common::fixture("pull_request-same-repo-opened.json");
        common::set(&mut p, "/number", number.into());
        common::set(&mut p, "/pull_request/number", number.into());
        let file = ws.path(&format!("runner/pr-{number}.json"));
        std::fs::write(&file, p.to_string()).unwrap();
        file.display().to_string()
    };
    let (pr11, pr12) = (payload(11), payload(12));
    let platform = native(&e);
    let mut last_hits = Vec::new();
    for mode in ["shared", "per-pr"] {
        let image = format!("{}/sdi-e2e/pr-cache-{mode}-{n}", e.registry);
        let inputs = [
            ("image", image.as_str()),
            ("builder", e.builder.as_str()),
            ("platforms", platform.as_str()),
            ("github-token", ""),
            ("pr-cache", mode),
            ("cache-mounts", "off"),
        ];
        let step = |event: &str, payload: &str, git_ref: &str, deps: &str, app: &str| {
            std::fs::write(ws.path("deps.txt"), deps).unwrap();
            std::fs::write(ws.path("app.txt"), app).unwrap();
            prune(&e.builder);
            let r = run_action(&ws, event, payload, git_ref, &inputs, &[]);
            assert!(r.output.status.success(), "{mode} {event}: {}", r.stdout);
            cache_hits(&r.summary)
        };
        step("push", "push-default-branch.json", "refs/heads/master", "deps-main", "app-main");
        step("pull_request", &pr11, "refs/pull/11/merge", "deps-11", "app-1");
        step("pull_request", &pr12, "refs/pull/12/merge", "deps-12", "app-1");
        last_hits.push(step("pull_request", &pr11, "refs/pull/11/merge", "deps-11", "app-2"));
        let repo = format!("sdi-e2e/pr-cache-{mode}-{n}");
        let own = manifest(&e.registry, &repo, "buildcache-pr-11").is_some();
        assert_eq!(own, mode == "per-pr", "{mode}: a tag of PR 11's own");
    }
    // COPY deps.txt and the RUN come from cache only when PR 11's own cache survived PR 12.
    assert_eq!(last_hits, [(0, 3), (2, 3)], "shared, then per-pr");
}

/// With `secrets-proof-key`, a rebuild whose layers all come from cache reads none of them
/// again (the ledger proves them clean of these very values), and still gets its tags; a
/// rotated value is scanned again.
#[test]
fn proven_layers_are_not_read_again_and_a_rotated_value_is() {
    let Some(Case { e, n, repo, image, .. }) =
        start("proven_layers_are_not_read_again_and_a_rotated_value_is", "proofs")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nRUN --mount=type=secret,id=token echo {n} > /n.txt && head -c 300000 /dev/urandom > /data.bin\nCOPY app.txt /app.txt\n",
        base = e.base
    ));
    let platform = native(&e);
    let run = |value: &str| {
        let inputs = [
            ("image", image.as_str()),
            ("builder", e.builder.as_str()),
            ("platforms", platform.as_str()),
            ("github-token", ""),
            ("secret-envs", "token=SDI_E2E_SECRET_VALUE"),
            ("secrets-proof-key", "e2e-proof-key-0123456789abcdef0123456789"),
        ];
        let env = [("SDI_E2E_SECRET_VALUE", value)];
        let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &env);
        assert!(r.output.status.success(), "{}", r.stdout);
        let notice = r.stdout.lines().find(|l| l.starts_with("::notice::No secret value in the image: ")).unwrap();
        notice.to_string()
    };
    let first = run(&format!("sdi-e2e-proof-{n}-one"));
    assert!(!first.contains("already proven"), "{first}");
    assert!(manifest(&e.registry, &repo, "sdi-proofs").is_some(), "the ledger was pushed");

    let second = run(&format!("sdi-e2e-proof-{n}-one"));
    assert!(second.starts_with("::notice::No secret value in the image: 0 layers"), "{second}");
    assert!(second.contains("already proven clean of these values were not read again"), "{second}");
    assert!(manifest(&e.registry, &repo, "latest").is_some(), "and it is tagged");

    let rotated = run(&format!("sdi-e2e-proof-{n}-two"));
    assert!(!rotated.contains("already proven"), "a rotated value is scanned again: {rotated}");
}

/// Two platforms, one store per platform (`id=…-${TARGETARCH}` in a `$BUILDPLATFORM` stage, the
/// pattern of this project's own Dockerfile): both stores are saved, and both are back after
/// the builder is emptied.
#[test]
fn per_platform_cache_mount_stores_both_survive_an_emptied_builder() {
    let Some(Case { e, n, repo, image, .. }) =
        start("per_platform_cache_mount_stores_both_survive_an_emptied_builder", "mounts-multi")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETARCH\nARG RUN_ID\nRUN --mount=type=cache,id=st-{n}-${{TARGETARCH}},target=/cache \\\n    ls /cache | grep -c marker > /count-$TARGETARCH.txt; touch /cache/marker-$RUN_ID\n\nFROM scratch\nARG TARGETARCH\nCOPY --from=build /count-${{TARGETARCH}}.txt /count.txt\n",
        base = e.base
    ));
    let build = |run_id: &str| push_with_mounts(&e, &ws, &image, "linux/amd64,linux/arm64", run_id);
    let first = build("1");
    for arch in ["amd64", "arm64"] {
        assert!(first.summary.contains(&format!("| `st-{n}-{arch}` | ")), "{}", first.summary);
    }
    prune(&e.builder);
    let second = build("2");
    for platform in ["linux/amd64", "linux/arm64"] {
        let (layers, _) = layers_and_config(&e.registry, &repo, "latest", platform);
        assert!(
            layers.iter().any(|l| contains(l, b"count.txt") && contains(l, b"1\n")),
            "{platform}: the second build found its own store from the first: {}",
            second.summary
        );
    }
}

/// The saved stores image's layer for store `id`, by digest.
fn store_layer(registry: &str, repo: &str, id: &str) -> String {
    let (_, m) = manifest(registry, repo, "buildcache-mounts").expect("a saved stores image");
    let config = blob(registry, repo, m["config"]["digest"].as_str().unwrap());
    let image = sdi::stores_image::StoresImage::read(&serde_json::to_vec(&m).unwrap(), &config).expect("labelled");
    image.layer_of(&sdi::plan::mount_dir(id)).expect("its layer").descriptor["digest"].as_str().unwrap().to_string()
}

#[test]
fn only_the_changed_store_is_saved_and_both_survive_an_emptied_builder() {
    let Some(Case { e, n, repo, image, .. }) =
        start("only_the_changed_store_is_saved_and_both_survive_an_emptied_builder", "mounts-two")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nARG RUN_ID\nRUN --mount=type=cache,id=deps-{n},target=/deps --mount=type=cache,id=out-{n},target=/out \\\n    [ -f /deps/lock ] || echo locked > /deps/lock; ls /deps | wc -l > /deps-count.txt; ls /out | wc -l > /out-count.txt; touch /out/build-$RUN_ID\n",
        base = e.base
    ));
    let platform = native(&e);
    let build = |run_id: &str| {
        prune(&e.builder);
        push_with_mounts(&e, &ws, &image, &platform, run_id)
    };
    build("1");
    let (deps, out) =
        (store_layer(&e.registry, &repo, &format!("deps-{n}")), store_layer(&e.registry, &repo, &format!("out-{n}")));
    let second = build("2");
    assert!(
        second.summary.contains(&format!("| `deps-{n}` | "))
            && second.summary.contains("no (unchanged: its steps left it as restored)"),
        "{}",
        second.summary
    );
    assert_eq!(store_layer(&e.registry, &repo, &format!("deps-{n}")), deps, "the unchanged store keeps its layer");
    assert_ne!(store_layer(&e.registry, &repo, &format!("out-{n}")), out, "the changed store is saved again");
    build("3");
    let (layers, _) = layers_and_config(&e.registry, &repo, "latest", &platform);
    let has = |file: &[u8], text: &[u8]| layers.iter().any(|l| contains(l, file) && contains(l, text));
    assert!(has(b"out-count.txt", b"2\n"), "the third build found both earlier builds' outputs");
    assert!(has(b"deps-count.txt", b"1\n"), "and the dependency store");
}

#[test]
fn a_store_the_builder_already_holds_is_not_overwritten_by_the_saved_copy() {
    let Some(Case { e, n, repo, image, .. }) =
        start("a_store_the_builder_already_holds_is_not_overwritten_by_the_saved_copy", "mounts-warm")
    else {
        return;
    };
    let step = format!("--mount=type=cache,id=warm-{n},target=/cache");
    let ws = Workspace::new(&format!(
        "FROM {base}\nARG RUN_ID\nRUN {step} \\\n    cat /cache/x > /seen.txt 2>/dev/null || echo none > /seen.txt; echo \"run-$RUN_ID\" > /cache/x\n",
        base = e.base
    ));
    let platform = native(&e);
    let build = |run_id: &str| push_with_mounts(&e, &ws, &image, &platform, run_id);
    prune(&e.builder);
    build("1");
    assert!(manifest(&e.registry, &repo, "buildcache-mounts").is_some(), "the store was saved");
    // The builder outlives the run, and another build leaves newer contents in the store.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("Dockerfile"), format!("FROM {}\nRUN {step} echo newer > /cache/x\n", e.base))
        .unwrap();
    docker(&["buildx", "build", "--builder", &e.builder, other.path().to_str().unwrap()]);
    let second = build("2");
    assert!(second.summary.contains("already warm"), "{}", second.summary);
    let (layers, _) = layers_and_config(&e.registry, &repo, "latest", &platform);
    assert!(
        layers.iter().any(|l| contains(l, b"seen.txt") && contains(l, b"newer\n")),
        "the step saw the builder's newer store, not the older saved copy: {}",
        second.summary
    );
}
