//! The action image as a user gets it: built from the top-level `Dockerfile`, pushed, pulled by
//! the runner and run as the runner runs a container action (`../shared/harness/ghrunner/
//! run-container-action.sh`: `docker run` with the Docker socket, `/github/workspace`,
//! `/github/home`, `/github/file_commands`, `INPUT_*` with dashes kept). Real engine only: it
//! runs when the real-engine suite does (`SDI_E2E_*`, tests/e2e_real.rs) and a Docker daemon
//! answers, and skips saying why otherwise.
//!
//! Stand-ins. Every base image of the `Dockerfile` is a `*_IMAGE` build argument; a loopback
//! engine passes local ones: `SDI_E2E_BUILDX_IMAGE` (`/buildx`; default: an image made here
//! from this machine's buildx plugin), `SDI_E2E_BUILDKIT_IMAGE` (moby/buildkit's layout;
//! default `$SDI_E2E_REGISTRY/moby/buildkit:buildx-stable-1`, the harness's). The compiled
//! binary is this test build's own, given as the `build` stage (`--build-context build=…`):
//! the release build cross-compiles it with cargo-zigbuild from crates and toolchains a
//! loopback engine cannot reach. This build is linked against glibc, so the BuildKit stand-in
//! gets the libraries it needs. `SDI_E2E_RUNNER` names another run-container-action.sh.

mod common;

#[path = "../examples/sigstore-test-stack/stack/mod.rs"]
#[allow(dead_code)]
mod stack;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::e2e::*;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The runner simulation, and whether a Docker daemon answers; `None` says why not.
fn runner() -> Result<PathBuf, String> {
    let script = std::env::var("SDI_E2E_RUNNER")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(MANIFEST_DIR).join("../shared/harness/ghrunner/run-container-action.sh"));
    if !script.is_file() {
        return Err(format!("no runner simulation at {} (set SDI_E2E_RUNNER)", script.display()));
    }
    let info = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    match info {
        Ok(o) if o.status.success() => Ok(script),
        _ => Err("no Docker daemon answers `docker info`: the runner runs the action image on one".into()),
    }
}

/// Builds `dockerfile` (with `files` beside it) and pushes it as `tag`.
fn push_image(builder: &str, tag: &str, dockerfile: &str, files: &[(&str, &Path)]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, from) in files {
        let to = dir.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap();
    }
    let context = dir.path().to_str().unwrap();
    docker(&["buildx", "build", "--builder", builder, "--provenance=false", "--push", "-t", tag, context]);
}

/// This machine's file that `which` finds first among `candidates`.
fn first_file(candidates: &[PathBuf]) -> PathBuf {
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| panic!("none of {candidates:?}"))
}

/// The shared libraries a dynamically linked binary loads, from `ldd`.
fn libraries(binary: &str) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')).map(PathBuf::from))
        .collect()
}

/// The `*_IMAGE` build arguments of the stand-ins, made where no variable names one.
fn stand_ins(e: &E2e, n: &str) -> Vec<(String, String)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let buildx = var("SDI_E2E_BUILDX_IMAGE").unwrap_or_else(|| {
        let tag = format!("{}/sdi-e2e/standin-buildx:{n}", e.registry);
        let home = std::env::var("HOME").unwrap_or_default();
        let plugin = first_file(&[
            PathBuf::from("/usr/local/libexec/docker/cli-plugins/docker-buildx"),
            Path::new(&home).join(".docker/cli-plugins/docker-buildx"),
            PathBuf::from("/usr/libexec/docker/cli-plugins/docker-buildx"),
        ]);
        push_image(&e.builder, &tag, "FROM scratch\nCOPY buildx /buildx\n", &[("buildx", &plugin)]);
        tag
    });
    let buildkit =
        var("SDI_E2E_BUILDKIT_IMAGE").unwrap_or_else(|| format!("{}/moby/buildkit:buildx-stable-1", e.registry));
    // The stand-in binary is glibc-linked: its libraries go into the BuildKit stand-in.
    let libs = libraries(env!("CARGO_BIN_EXE_secure-docker-images"));
    let names: Vec<(String, &Path)> =
        libs.iter().map(|l| (l.to_str().unwrap().trim_start_matches('/').to_string(), l.as_path())).collect();
    let copies: String = names.iter().map(|(name, _)| format!("COPY {name} /{name}\n")).collect();
    let files: Vec<(&str, &Path)> = names.iter().map(|(name, p)| (name.as_str(), *p)).collect();
    // moby/buildkit v0.32.2 runs buildkitd through /usr/bin/buildkitd-entrypoint (its cgroup v2
    // setup); a stand-in without it gets one that runs buildkitd.
    let shim = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(shim.path(), "#!/bin/sh\nexec /usr/bin/buildkitd \"$@\"\n").unwrap();
    let mut files = files;
    files.push(("buildkitd-entrypoint", shim.path()));
    let entrypoint = sdi::pins::BUILDKIT_ENTRYPOINT;
    let shim_copy = format!("COPY --chmod=755 buildkitd-entrypoint {entrypoint}\n");
    let own = docker(&["buildx", "imagetools", "inspect", "--format", "{{json .Image.Config.Entrypoint}}", &buildkit]);
    // Nor does it carry moby/buildkit's runc name or its emulators: runc goes by that name,
    // and this machine's QEMU (Debian's static user-mode emulators) stands in for them.
    let qemu =
        [("buildkit-qemu-aarch64", "/usr/bin/qemu-aarch64-static"), ("buildkit-qemu-arm", "/usr/bin/qemu-arm-static")];
    let mut layout = shim_copy;
    layout.push_str("RUN [ -e /usr/bin/buildkit-runc ] || ln /usr/bin/runc /usr/bin/buildkit-runc\n");
    for (name, path) in qemu.into_iter().filter(|(_, p)| Path::new(p).is_file()) {
        layout.push_str(&format!("COPY {name} /usr/bin/{name}\n"));
        files.push((name, Path::new(path)));
    }
    let layout = if own.contains(entrypoint) { "" } else { layout.as_str() };
    let with_libs = format!("{}/sdi-e2e/standin-buildkit:{n}", e.registry);
    push_image(&e.builder, &with_libs, &format!("FROM {buildkit}\n{copies}{layout}"), &files);
    vec![("BUILDX_IMAGE".into(), buildx), ("BUILDKIT_IMAGE".into(), with_libs)]
}

/// What the `build` stage makes of the engine's binaries: buildkitd and runc from the BuildKit
/// image, stripped (this machine's `strip`: the test image is this machine's platform).
fn engine_binaries(e: &E2e, images: &[(String, String)], dest: &Path) {
    let image = |name: &str| images.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap();
    let dockerfile = format!(
        "FROM {} AS buildkit\nFROM scratch\nCOPY --from=buildkit /usr/bin/buildkitd /usr/bin/buildkit-runc /\n",
        image("BUILDKIT_IMAGE")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let output = format!("type=local,dest={}", dest.display());
    docker(&["buildx", "build", "--builder", &e.builder, "--output", &output, dir.path().to_str().unwrap()]);
    for name in ["buildkitd", "buildkit-runc"] {
        let status = Command::new("strip").arg("--strip-all").arg(dest.join(name)).status().unwrap();
        assert!(status.success(), "strip {name}");
    }
}

/// The action image from the top-level `Dockerfile`, pushed to the registry.
fn action_image(e: &E2e, n: &str) -> String {
    // The `build` stage: the binary and the CA bundle the final stage takes from it.
    let bin = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_secure-docker-images"), bin.path().join("secure-docker-images")).unwrap();
    std::fs::create_dir_all(bin.path().join("etc/ssl/certs")).unwrap();
    std::fs::copy("/etc/ssl/certs/ca-certificates.crt", bin.path().join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    let tag = format!("{}/sdi-e2e/action:{n}", e.registry);
    let images = stand_ins(e, n);
    engine_binaries(e, &images, &bin.path().join("engine"));
    let args: Vec<String> = images.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let stage = format!("build={}", bin.path().display());
    // As released: zstd layers where the daemon pulls them (Docker 23 and later), else the gzip copy.
    let output = match pulls_zstd() {
        true => format!(
            "type=image,name={tag},push=true,oci-mediatypes=true,compression=zstd,compression-level=3,force-compression=true"
        ),
        false => format!("type=image,name={tag},push=true"),
    };
    let mut cmd = vec!["buildx", "build", "--builder", &e.builder, "--provenance=false", "--output", &output];
    for a in &args {
        cmd.extend(["--build-arg", a.as_str()]);
    }
    cmd.extend(["--build-context", stage.as_str(), MANIFEST_DIR]);
    docker(&cmd);
    tag
}

/// Whether the daemon pulls zstd layers: Docker 23 and later.
fn pulls_zstd() -> bool {
    let version = docker(&["version", "--format", "{{.Server.Version}}"]);
    version.trim().split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|major| major >= 23)
}

struct Job {
    code: Option<i32>,
    log: String,
    outputs: HashMap<String, String>,
}

/// The run ID of the test's jobs: the builders they make are named after it.
fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| u64::from_str_radix(&nonce()[..10], 16).unwrap().to_string())
}

/// One job step: the runner pulls the image (if it is not there) and runs it.
fn job(script: &Path, image: &str, ws: &Workspace, event: &str, fixture: &str, inputs: &[(&str, &str)]) -> Job {
    job_with_env(script, image, ws, (event, fixture), inputs, ("", true, &[]))
}

/// `job`, with the step's `env:` (shell-quoted `K=V` words), on a runner that mounts its temp
/// folder at `/github/runner_temp` (v2.329.0 and later) or one that does not, and the runner
/// simulation's own settings (`GHR_ID_TOKEN_URL`: `permissions: id-token: write`).
fn job_with_env(
    script: &Path,
    image: &str,
    ws: &Workspace,
    (event, fixture): (&str, &str),
    inputs: &[(&str, &str)],
    (step_env, runner_temp_mounted, runner): (&str, bool, &[(&str, &str)]),
) -> Job {
    let mut cmd = Command::new(script);
    cmd.env("GHR_STEP_ENV", step_env).envs(runner.iter().copied());
    cmd.args([image, ws.dir.path().to_str().unwrap(), event, event_path(fixture).to_str().unwrap()]);
    cmd.args(inputs.iter().map(|(k, v)| format!("{k}={v}")));
    cmd.env("GHR_ACTION_YML", Path::new(MANIFEST_DIR).join("action.yml")).env("GHR_RUN_ID", run_id());
    // RUNNER_TEMP bind-mounted from the host, as the runner mounts it: BuildKit's socket is
    // shared through it.
    cmd.env("GHR_RUNNER_TEMP_MOUNT", if runner_temp_mounted { "1" } else { "0" });
    let out = cmd.output().expect("the runner simulation runs");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let section = log.split("===== GITHUB_OUTPUT =====\n").nth(1).unwrap_or_default();
    let section = section.split("===== GITHUB_STEP_SUMMARY =====").next().unwrap_or_default();
    Job { code: out.status.code(), outputs: parse_outputs(section), log }
}

/// The job built on BuildKit from the action's image, pulled none, and left no container.
fn on_its_own_buildkit(job: &Job) {
    let summary = job.log.split("===== GITHUB_STEP_SUMMARY =====").nth(1).unwrap_or_default();
    assert!(summary.contains("from the action's own image (nothing pulled)"), "{}", job.log);
    let images = docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    let pinned = sdi::pins::BUILDKIT_IMAGE;
    assert!(!images.lines().any(|i| i.ends_with(pinned) || i.contains("binfmt")), "pulled: {images}");
    let left = docker(&["ps", "--all", "--filter", &format!("name=sdi-{}-", run_id()), "--format", "{{.Names}}"]);
    assert_eq!(left.trim(), "", "BuildKit containers left on the daemon");
}

#[test]
fn the_image_builds_from_the_dockerfile_and_runs_as_the_runner_runs_it() {
    const TEST: &str = "the_image_builds_from_the_dockerfile_and_runs_as_the_runner_runs_it";
    let Some(Case { _serial, e, n, repo, image, .. }) = start(TEST, "image") else { return };
    let script = match runner() {
        Ok(s) => s,
        Err(why) => return skip(TEST, &why),
    };
    let _leaves_nothing = LeavesNothing::now();
    let action = action_image(&e, &n);
    carries_the_pinned_buildkit_only(&action);
    let layers = docker(&["buildx", "imagetools", "inspect", "--raw", &action]);
    assert_eq!(layers.contains("tar+zstd"), pulls_zstd(), "layers as released for this daemon: {layers}");
    assert!(pulls_zstd() || layers.contains("gzip"), "{layers}");
    let ws = Workspace::new(&format!(
        "FROM {base}\nARG TARGETPLATFORM\nRUN echo \"{n} on $TARGETPLATFORM, $(uname -m)\" > /built.txt\nCOPY app.txt /app.txt\n",
        base = e.base
    ));
    let platform = native(&e);
    let inputs = [("image", image.as_str()), ("platforms", platform.as_str()), ("github-token", "")];

    // A trusted push with the registry cache, on BuildKit from the action's image.
    let push = job(&script, &action, &ws, "push", "push-default-branch.json", &inputs);
    assert_eq!(push.code, Some(0), "{}", push.log);
    assert_eq!(push.outputs["pushed"], "true", "{}", push.log);
    let (digest, _) = manifest(&e.registry, &repo, "latest").expect("latest was pushed");
    assert_eq!(push.outputs["digest"], digest);
    let (cache, _) = manifest(&e.registry, &repo, "buildcache").expect("the main cache was written");
    on_its_own_buildkit(&push);

    // A fork PR: built from that cache, nothing pushed, no cache written.
    let fork = job(&script, &action, &ws, "pull_request", "pull_request-fork-opened.json", &inputs);
    assert_eq!(fork.code, Some(0), "{}", fork.log);
    assert_eq!((fork.outputs["trusted"].as_str(), fork.outputs["pushed"].as_str()), ("false", "false"));
    assert!(manifest(&e.registry, &repo, "pr-2").is_none(), "a fork PR pushed an image");
    assert_eq!(manifest(&e.registry, &repo, "buildcache").unwrap().0, cache, "a fork PR changed the cache");
    on_its_own_buildkit(&fork);

    // Two platforms, a RUN step on each.
    let both = [("image", image.as_str()), ("platforms", "linux/amd64,linux/arm64"), ("github-token", "")];
    let multi = job(&script, &action, &ws, "push", "push-default-branch.json", &both);
    assert_eq!(multi.code, Some(0), "{}", multi.log);
    let (digest, index) = manifest(&e.registry, &repo, "latest").unwrap();
    assert_eq!(multi.outputs["digest"], digest);
    let platforms: Vec<String> = index_platforms(&index).into_iter().collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    on_its_own_buildkit(&multi);

    signs_what_it_pushes(&e, (&script, &action), (&repo, &image), &ws);
    stores_outlive_the_jobs_builder(&e, (&script, &action), (&repo, &n));
    logs_in_through_the_daemon(&e, (&script, &action), &n);

    // A runner older than v2.329.0 passes its temp folder's host path, unmounted: the run
    // goes on with a private directory of its own and a builder buildx makes.
    let older = job_with_env(&script, &action, &ws, ("push", "push-default-branch.json"), &inputs, ("", false, &[]));
    assert_eq!(older.code, Some(0), "{}", older.log);
    assert_eq!(older.outputs["pushed"], "true", "{}", older.log);
}

/// With `id-token: write`, a trusted two-platform push signs the index (against the loopback
/// Sigstore); the bundle, read back from the registry through the tag schema, passes
/// sigstore-python. A fork's run with the token offered asks for none.
fn signs_what_it_pushes(e: &E2e, (script, action): (&Path, &str), (repo, image): (&str, &str), ws: &Workspace) {
    let stack = Arc::new(stack::Stack::new(stack::default_claims(), None));
    let url = stack::start(stack.clone());
    let token_url = format!("{url}/token?api-version=2.0");
    let runner = [("GHR_ID_TOKEN_URL", token_url.as_str()), ("GHR_ID_TOKEN_TOKEN", stack::REQUEST_TOKEN)];
    let inputs = [
        ("image", image),
        ("platforms", "linux/amd64,linux/arm64"),
        ("github-token", ""),
        ("sigstore-fulcio-url", url.as_str()),
        ("sigstore-rekor-url", url.as_str()),
    ];
    let push = ("push", "push-default-branch.json");
    let signed = job_with_env(script, action, ws, push, &inputs, ("", true, &runner));
    assert_eq!(signed.code, Some(0), "{}", signed.log);
    let (digest, index) = manifest(&e.registry, repo, "latest").unwrap();
    assert_eq!(signed.outputs["digest"], digest);
    assert_eq!(index_platforms(&index).len(), 2, "the index is what is signed");
    let attestation = &signed.outputs["attestation-digest"];
    let (_, artifact) = manifest(&e.registry, repo, attestation).expect("the attestation in the registry");
    assert_eq!(artifact["subject"]["digest"], digest.as_str());
    let (_, referrers) = manifest(&e.registry, repo, &digest.replacen(':', "-", 1)).expect("the referrers tag");
    assert!(referrers["manifests"].as_array().unwrap().iter().any(|m| m["digest"] == attestation.as_str()));
    let bundle = blob(&e.registry, repo, artifact["layers"][0]["digest"].as_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bundle.json"), &bundle).unwrap();
    std::fs::write(dir.path().join("trust.json"), stack::trust_config(&stack, &url).to_string()).unwrap();
    let (trust, bundle) = (dir.path().join("trust.json"), dir.path().join("bundle.json"));
    let verified = common::sigstore::verify_github(&trust, &bundle, common::sigstore::IDENTITY, &[], &digest);
    let (ok, said) = verified.expect("sigstore-python, for the real-engine suite (pip install sigstore==4.5.1)");
    assert!(ok, "sigstore-python: {said}");

    let asked = stack.requests.lock().unwrap().len();
    let fork = ("pull_request", "pull_request-fork-opened.json");
    let untrusted = job_with_env(script, action, ws, fork, &inputs, ("", true, &runner));
    assert_eq!(untrusted.code, Some(0), "{}", untrusted.log);
    assert_eq!(stack.requests.lock().unwrap().len(), asked, "a fork's run asked for a token");
}

/// What the daemon holds when the test starts; when it ends, also by a failure, every
/// container, volume and image it made is removed: the daemon holds nothing it did not before.
struct LeavesNothing {
    before: [Vec<String>; 3],
}

impl LeavesNothing {
    const KINDS: [&'static [&'static str]; 3] = [
        &["ps", "--all", "--quiet", "--no-trunc"],
        &["volume", "ls", "--quiet"],
        &["image", "ls", "--quiet", "--no-trunc"],
    ];

    fn held(args: &[&str]) -> Vec<String> {
        let out = Command::new("docker").args(args).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()).unwrap_or_default()
    }

    fn now() -> Self {
        LeavesNothing { before: Self::KINDS.map(Self::held) }
    }
}

impl Drop for LeavesNothing {
    /// Containers first (an image in use cannot go), then volumes, then images; again after a
    /// second while something is still going away.
    fn drop(&mut self) {
        let remove: [&[&str]; 3] =
            [&["rm", "--force", "--volumes"], &["volume", "rm", "--force"], &["image", "rm", "--force"]];
        for attempt in 0..3 {
            let mut left = Vec::new();
            for ((kind, before), rm) in Self::KINDS.iter().zip(&self.before).zip(remove) {
                let mut made: Vec<String> = Self::held(kind).into_iter().filter(|id| !before.contains(id)).collect();
                made.sort();
                made.dedup();
                if !made.is_empty() {
                    let out = Command::new("docker").args(rm).args(&made).output();
                    left.extend(
                        out.ok()
                            .filter(|o| !o.status.success())
                            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned()),
                    );
                }
            }
            if left.is_empty() {
                return;
            }
            if attempt == 2 {
                eprintln!("could not remove what the test made: {left:?}");
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// A registry that needs a login (`SDI_E2E_AUTH_REGISTRY=user:password@host:port`, e.g. the
/// harness's `harness:harnesspw@127.0.0.1:5002`): the daemon checks the credentials (the image
/// has no docker CLI), buildx pushes with them, and the password is printed nowhere.
fn logs_in_through_the_daemon(e: &E2e, (script, action): (&Path, &str), n: &str) {
    const TEST: &str = "the_image_builds_from_the_dockerfile_and_runs_as_the_runner_runs_it (login)";
    let Some(auth) = std::env::var("SDI_E2E_AUTH_REGISTRY").ok().filter(|v| !v.is_empty()) else {
        return skip(TEST, "set SDI_E2E_AUTH_REGISTRY=user:password@host:port to push where a login is needed");
    };
    let (credentials, registry) = auth.rsplit_once('@').expect("user:password@host:port");
    let (user, password) = credentials.split_once(':').expect("user:password");
    let ws = Workspace::new(&format!("FROM {base}\nCOPY app.txt /app.txt\n", base = e.base));
    let image = format!("{registry}/sdi-e2e/login-{n}");
    let logins = format!("registry={registry},username={user},password-env=SDI_REGISTRY_PASSWORD");
    let platform = native(e);
    let inputs =
        [("image", image.as_str()), ("platforms", platform.as_str()), ("github-token", ""), ("logins", &logins)];
    let step_env = format!("SDI_REGISTRY_PASSWORD={password}");
    let refused = format!("SDI_REGISTRY_PASSWORD={password}-wrong");
    let bad = job_with_env(script, action, &ws, ("push", "push-default-branch.json"), &inputs, (&refused, true, &[]));
    assert_eq!(bad.code, Some(1), "{}", bad.log);
    assert!(
        bad.log.contains(&format!("::error::docker login to {registry} failed (Error response from daemon:")),
        "{}",
        bad.log
    );
    let good = job_with_env(script, action, &ws, ("push", "push-default-branch.json"), &inputs, (&step_env, true, &[]));
    assert_eq!(good.code, Some(0), "{}", good.log);
    assert_eq!(good.outputs["pushed"], "true", "{}", good.log);
    on_its_own_buildkit(&good);
    for log in [&good.log, &bad.log] {
        let shown = log.lines().filter(|l| !l.starts_with("::add-mask::")).filter(|l| l.contains(password));
        assert_eq!(shown.count(), 0, "the password is printed: {log}");
    }
}

/// The image says which BuildKit it carries, and ships nothing a run never starts: buildctl
/// (buildx dials BuildKit's socket), the docker CLI.
fn carries_the_pinned_buildkit_only(action: &str) {
    let labels = docker(&["buildx", "imagetools", "inspect", "--format", "{{json .Image.Config.Labels}}", action]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels[sdi::engine::own_buildkit::LABEL], sdi::pins::BUILDKIT_VERSION, "{labels}");
    let listing = docker(&["run", "--rm", "--entrypoint", "/bin/ls", action, "/usr/bin"]);
    let names: Vec<&str> = listing.lines().collect();
    assert!(names.contains(&"buildkitd") && names.contains(&"buildkit-runc"), "{listing}");
    assert!(!names.iter().any(|n| n.starts_with("buildctl")), "{listing}");
    // No docker CLI: buildx runs on its own and the binary speaks to the daemon's API.
    let local = docker(&["run", "--rm", "--entrypoint", "/bin/ls", action, "/usr/local/bin"]);
    assert!(local.lines().any(|l| l == "buildx") && local.lines().any(|l| l == "secure-docker-images"), "{local}");
    assert!(!local.lines().chain(names).any(|l| l == "docker"), "{local}");
}

/// A cache-mount store outlives the job's builder: saved by one job, restored into the next
/// job's new BuildKit.
fn stores_outlive_the_jobs_builder(e: &E2e, (script, action): (&Path, &str), (repo, n): (&str, &str)) {
    let platform = native(e);
    let stores = Workspace::new(&format!(
        "FROM {base}\nARG RUN_ID\nRUN --mount=type=cache,id=sdi-e2e-{n},target=/cache \\\n    sleep 1; ls /cache | grep -c marker > /count.txt; touch /cache/marker-$RUN_ID\n",
        base = e.base
    ));
    let mounts_repo = format!("{repo}-mounts");
    let mounts_image = format!("{}/{mounts_repo}", e.registry);
    for run_id in ["1", "2"] {
        let args = format!("RUN_ID={run_id}");
        let inputs = [
            ("image", mounts_image.as_str()),
            ("platforms", platform.as_str()),
            ("github-token", ""),
            ("build-args", args.as_str()),
            ("cache-mounts-image", e.base.as_str()),
        ];
        let job = job(script, action, &stores, "push", "push-default-branch.json", &inputs);
        assert_eq!(job.code, Some(0), "{}", job.log);
        on_its_own_buildkit(&job);
        assert!(manifest(&e.registry, &mounts_repo, "buildcache-mounts").is_some(), "{}", job.log);
    }
    let (layers, _) = layers_and_config(&e.registry, &mounts_repo, "latest", &platform);
    assert!(
        layers.iter().any(|l| contains(l, b"count.txt") && contains(l, b"1\n")),
        "the second job saw the first job's file in its cache mount"
    );
}
