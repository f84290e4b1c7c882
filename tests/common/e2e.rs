//! The real-engine tests' harness (tests/e2e_real.rs): the environment that enables them, one
//! case's setup (serial lock, fresh repository, workspace), the action run as the runner runs
//! it, and plain-HTTP reads of the registry.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// The tests share one builder and prune it: one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub struct E2e {
    pub builder: String,
    pub registry: String,
    pub base: String,
}

pub fn e2e(test: &str) -> Option<E2e> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (get("SDI_E2E_BUILDER"), get("SDI_E2E_REGISTRY"), get("SDI_E2E_BASE_IMAGE")) {
        (Some(builder), Some(registry), Some(base)) => {
            if let Err(why) = ENGINE.get_or_init(|| pinned_engine(&builder)) {
                panic!("{why}");
            }
            Some(E2e { builder, registry, base })
        }
        _ => {
            skip(test, "set SDI_E2E_BUILDER, SDI_E2E_REGISTRY and SDI_E2E_BASE_IMAGE to run the real-engine tests");
            None
        }
    }
}

/// Whether the engine is the pinned one, checked once for the whole suite.
static ENGINE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();

/// The suite runs on the buildx and BuildKit that `src/pins.rs` pins (what ships is what is
/// tested); `SDI_E2E_ANY_ENGINE=1` runs it on another one anyway.
fn pinned_engine(builder: &str) -> Result<(), String> {
    if std::env::var("SDI_E2E_ANY_ENGINE").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    let buildx = docker(&["buildx", "version"]);
    let buildkit = docker(&["buildx", "inspect", "--bootstrap", builder]);
    let buildkit = buildkit.lines().find_map(|l| l.strip_prefix("BuildKit version:")).unwrap_or("unknown").trim();
    let buildx = buildx.split_whitespace().nth(1).unwrap_or("unknown").to_string();
    let (want_buildx, want_buildkit) = (sdi::pins::BUILDX_VERSION, sdi::pins::BUILDKIT_VERSION);
    if buildx == format!("v{want_buildx}") && buildkit == format!("v{want_buildkit}") {
        return Ok(());
    }
    Err(format!(
        "the real-engine suite runs on the engine src/pins.rs pins, buildx v{want_buildx} and BuildKit v{want_buildkit}; this one is buildx {buildx} and BuildKit {buildkit} (builder {builder}). Use the pinned engine (../shared/harness), or set SDI_E2E_ANY_ENGINE=1 to run on this one anyway."
    ))
}

/// Says why a test did not run. Written to stderr directly: the test harness captures
/// `eprintln!` of passing tests, and a skip must be seen.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr().lock(), "skipped {test}: {why}");
}

/// One test's setup: the environment, the serial lock, and a fresh repository in the registry.
/// Bind the lock by name (`let Some(Case { _serial, e, .. })`): a `..` that leaves it out drops
/// it at once, and the next test then prunes the shared builder in the middle of this one.
pub struct Case {
    pub e: E2e,
    pub _serial: std::sync::MutexGuard<'static, ()>,
    pub n: String,
    pub repo: String,
    pub image: String,
}

pub fn start(test: &str, kind: &str) -> Option<Case> {
    let e = e2e(test)?;
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let n = nonce();
    let repo = format!("sdi-e2e/{kind}-{n}");
    let image = format!("{}/{repo}", e.registry);
    Some(Case { e, _serial: serial, n, repo, image })
}

pub fn nonce() -> String {
    let mut b = [0u8; 6];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A workspace with a Dockerfile, and the runner's files.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(dockerfile: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(dir.path().join("app.txt"), "hello from the e2e app\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "runner/\n").unwrap();
        std::fs::create_dir_all(dir.path().join("runner/temp")).unwrap();
        Workspace { dir }
    }

    pub fn path(&self, p: &str) -> std::path::PathBuf {
        self.dir.path().join(p)
    }
}

pub struct Ran {
    pub output: Output,
    pub stdout: String,
    pub outputs: HashMap<String, String>,
    pub summary: String,
}

/// A fixture's name, or a payload file of the test's own (an absolute path).
pub fn event_path(fixture: &str) -> std::path::PathBuf {
    if fixture.starts_with('/') { fixture.into() } else { super::fixture_path(fixture) }
}

/// Runs the action as the runner would, with the user's docker environment (daemon, builder).
pub fn run_action(
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
    let outputs = parse_outputs(&std::fs::read_to_string(&out_file).unwrap());
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        std::fs::read_dir(ws.path("runner/temp")).unwrap().next().is_none(),
        "the action left files under RUNNER_TEMP"
    );
    Ran { output, stdout, outputs, summary }
}

/// The `name<<delimiter` blocks of a `GITHUB_OUTPUT` file.
pub fn parse_outputs(text: &str) -> HashMap<String, String> {
    let mut outputs = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("every output is a heredoc block");
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        outputs.insert(name.to_string(), value.join("\n"));
    }
    outputs
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn prune(builder: &str) {
    docker(&["buildx", "prune", "-af", "--builder", builder]);
}

pub fn builder_platforms(builder: &str) -> (Option<String>, Vec<String>) {
    sdi::buildx::inspected_platforms(&docker(&["buildx", "inspect", "--bootstrap", builder]))
}

/// A plain-HTTP GET against the registry: status, lower-cased headers, body.
pub fn http_get(registry: &str, path: &str, accept: &str) -> (u16, HashMap<String, String>, Vec<u8>) {
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

pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
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

pub const MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// `(digest, manifest)` of `repo:reference`, or `None` when the registry has no such tag.
pub fn manifest(registry: &str, repo: &str, reference: &str) -> Option<(String, Value)> {
    let (status, headers, body) = http_get(registry, &format!("/v2/{repo}/manifests/{reference}"), MANIFESTS);
    match status {
        200 => Some((headers["docker-content-digest"].clone(), serde_json::from_slice(&body).unwrap())),
        404 => None,
        other => panic!("registry answered {other} for {repo}:{reference}"),
    }
}

pub fn blob(registry: &str, repo: &str, digest: &str) -> Vec<u8> {
    let (status, _, body) = http_get(registry, &format!("/v2/{repo}/blobs/{digest}"), "*/*");
    assert_eq!(status, 200, "blob {digest}");
    body
}

/// The image platforms of a manifest list (attestation manifests left out).
pub fn index_platforms(index: &Value) -> BTreeSet<String> {
    index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .filter_map(|m| Some(format!("{}/{}", m["platform"]["os"].as_str()?, m["platform"]["architecture"].as_str()?)))
        .filter(|p| p != "unknown/unknown")
        .collect()
}

pub fn cache_hits(summary: &str) -> (usize, usize) {
    let line = summary
        .lines()
        .find(|l| l.starts_with("| Cache hits | "))
        .unwrap_or_else(|| panic!("no cache line in {summary}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[4].parse().unwrap(), words[6].parse().unwrap())
}

pub fn native(e: &E2e) -> String {
    let (_, platforms) = builder_platforms(&e.builder);
    platforms.first().cloned().expect("the builder lists a platform")
}

/// A trusted main-lane push for the builder's native platform, with the build secret `token`.
pub fn push_with_secret(e: &E2e, ws: &Workspace, image: &str, value: &str) -> Ran {
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
pub fn layers_and_config(registry: &str, repo: &str, reference: &str, platform: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
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

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A trusted push of `ws` with cache mounts (helper image: the base image), `RUN_ID` set; it
/// must succeed.
pub fn push_with_mounts(e: &E2e, ws: &Workspace, image: &str, platforms: &str, run_id: &str) -> Ran {
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

/// `push_with_mounts` on the native platform of a builder emptied first, as a fresh runner's.
pub fn push_on_an_emptied_builder(e: &E2e, ws: &Workspace, image: &str, run_id: &str) -> Ran {
    prune(&e.builder);
    push_with_mounts(e, ws, image, &native(e), run_id)
}

/// A workspace whose Dockerfile is one `RUN` (after `ARG RUN_ID`) on the base image.
pub fn one_step(e: &E2e, run: &str) -> Workspace {
    Workspace::new(&format!("FROM {}\nARG RUN_ID\nRUN {run}\n", e.base))
}

/// Cache records `docker buildx du` lists for a builder.
pub fn cache_records(builder: &str) -> usize {
    docker(&["buildx", "du", "--builder", builder])
        .lines()
        .map(str::trim)
        .filter(|l| l.split_whitespace().next().is_some_and(|w| w != "ID" && !w.ends_with(':')))
        .count()
}

/// The saved stores image's layers for store `id` (its whole copy, then changes), by digest.
pub fn store_layer(registry: &str, repo: &str, id: &str) -> Vec<String> {
    let (_, m) = manifest(registry, repo, "buildcache-mounts").expect("a saved stores image");
    let config = blob(registry, repo, m["config"]["digest"].as_str().unwrap());
    let image = sdi::mounts::image::StoresImage::read(&serde_json::to_vec(&m).unwrap(), &config).expect("labelled");
    let layers = image.layers_of(&sdi::plan::mount_dir(id));
    assert!(!layers.is_empty(), "store {id} has layers");
    layers.iter().map(|l| l.descriptor["digest"].as_str().unwrap().to_string()).collect()
}
