//! The imperative shell around a `BuildPlan`: registry login, builder, `docker buildx build`
//! as a child process, its progress stream and metadata file.
//!
//! Every docker call runs with a private `DOCKER_CONFIG` (mode 0700, removed when the run
//! ends), without the action's `INPUT_*` variables, and — for untrusted code — without the
//! variables that `secret-envs` names. A token only ever travels on `docker login`'s stdin;
//! `secrets:` values only in the build's environment.

pub mod mounts;
pub mod progress;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::context::{Context, Platform, SecretSource};
use crate::plan::{BuildPlan, Mode, Verify};
use progress::{BuildError, CacheHits, Progress};

/// A message for the run's log and annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    /// `(path in the repository, line)`.
    pub location: Option<(String, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Error,
}

impl Annotation {
    fn warning(message: impl Into<String>) -> Self {
        Annotation { level: Level::Warning, message: message.into(), location: None }
    }
    fn notice(message: impl Into<String>) -> Self {
        Annotation { level: Level::Notice, message: message.into(), location: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Before the build: login, builder or platform check. The message says what to fix.
    SetupFailed(String),
    /// buildx exited non-zero.
    Failed {
        code: i32,
        error: Option<BuildError>,
    },
    /// The job was cancelled: the signal was forwarded to the child.
    Cancelled {
        signal: i32,
    },
    /// Secret values were found in the built image; nothing was tagged.
    SecretsLeaked {
        hits: usize,
    },
}

/// What the shell did and learnt.
#[derive(Debug)]
pub struct Execution {
    pub outcome: Outcome,
    pub annotations: Vec<Annotation>,
    pub metadata: Option<Value>,
    pub cache_hits: Option<CacheHits>,
    /// What happened to each cache-mount store.
    pub mounts: Vec<mounts::MountStatus>,
    pub pushed: bool,
    pub duration: Duration,
    pub docker_calls: usize,
}

/// SIGINT and SIGTERM, watched for the whole run (the action is PID 1 in its container,
/// which has no default handlers).
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }
    async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
        }
    }
}

/// QEMU registration runs privileged on the host: pinned by digest.
pub const BINFMT_IMAGE: &str =
    "tonistiigi/binfmt:qemu-v10.2.3@sha256:400a4873b838d1b89194d982c45e5fb3cda4593fbfd7e08a02e76b03b21166f0";

/// How long a cancelled child gets to stop before it is killed.
const GRACE: Duration = Duration::from_secs(7);

enum Ended {
    Exited { code: i32, stdout: String, stderr: String },
    Signalled(i32),
}

/// The docker CLI, with the run's private configuration and a sanitized environment.
pub struct Docker {
    program: PathBuf,
    env: Vec<(String, String)>,
    config: PathBuf,
    calls: usize,
}

impl Docker {
    /// `dir` holds the private `DOCKER_CONFIG`; `trusted` decides whether the variables named
    /// by `secret-envs` stay visible.
    pub fn new(ctx: &Context, plan: &BuildPlan, dir: &Path) -> std::io::Result<Self> {
        let config = dir.join("docker-config");
        std::fs::DirBuilder::new().mode(0o700).create(&config)?;
        if let Some(user) = user_docker_config() {
            share_user_config(&user, &config, ctx.inputs.builder.as_deref())?;
        }
        let hidden: Vec<&str> = if plan.trust.trusted {
            Vec::new()
        } else {
            ctx.inputs
                .secrets
                .iter()
                .filter_map(|s| match &s.source {
                    crate::context::SecretSource::Env { env } => Some(env.as_str()),
                    _ => None,
                })
                .collect()
        };
        // The runner's credentials reach docker only where a docker call needs them: the
        // Actions runtime token for a gha cache, the OIDC request token never.
        let uses_gha = plan.cache_from.iter().chain(&plan.cache_to).any(|c| c.starts_with("type=gha"));
        let keep = |k: &str| {
            !k.starts_with("INPUT_")
                && k != "DOCKER_CONFIG"
                && !hidden.contains(&k)
                && !k.starts_with("ACTIONS_ID_TOKEN_REQUEST_")
                && (uses_gha || k != "ACTIONS_RUNTIME_TOKEN")
        };
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| keep(k))
            .collect();
        Ok(Docker { program: PathBuf::from("docker"), env, config, calls: 0 })
    }

    fn command(&mut self, args: &[&str]) -> Command {
        self.calls += 1;
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DOCKER_CONFIG", &self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a short command to completion, capturing its output; a signal stops it.
    async fn output(&mut self, args: &[&str], stdin: Option<&[u8]>, signals: &mut Signals) -> std::io::Result<Ended> {
        let mut cmd = self.command(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn()?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data).await?;
            drop(pipe);
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let read = async {
            let mut out = String::new();
            let mut err = String::new();
            let (mut o, mut e) = (stdout.unwrap(), stderr.unwrap());
            let _ = tokio::join!(
                tokio::io::AsyncReadExt::read_to_string(&mut o, &mut out),
                tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err)
            );
            (out, err)
        };
        tokio::select! {
            (out, err) = read => {
                let status = child.wait().await?;
                Ok(Ended::Exited { code: status.code().unwrap_or(1), stdout: out, stderr: err })
            }
            sig = signals.recv() => {
                stop(&mut child, sig).await;
                Ok(Ended::Signalled(sig))
            }
        }
    }
}

/// The docker configuration the user's own commands use (`$DOCKER_CONFIG`, else `~/.docker`).
fn user_docker_config() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(Path::new(&std::env::var_os("HOME")?).join(".docker")),
    }
}

/// Brings into the private configuration what the run needs of the user's, and nothing
/// else: no stored credentials. The current docker context (which daemon to talk to), the
/// contexts themselves, and the instance file of the builder named by `builder`.
fn share_user_config(user: &Path, private: &Path, builder: Option<&str>) -> std::io::Result<()> {
    let current = std::fs::read_to_string(user.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("currentContext")?.as_str().map(str::to_string));
    if let Some(context) = current {
        std::fs::write(private.join("config.json"), serde_json::json!({ "currentContext": context }).to_string())?;
    }
    let contexts = user.join("contexts");
    if contexts.is_dir() {
        std::os::unix::fs::symlink(&contexts, private.join("contexts"))?;
    }
    if let Some(name) = builder {
        let instance = user.join("buildx").join("instances").join(name);
        if instance.is_file() {
            let dir = private.join("buildx").join("instances");
            std::fs::create_dir_all(&dir)?;
            std::fs::copy(&instance, dir.join(name))?;
        }
    }
    Ok(())
}

/// Forwards the signal, waits up to `GRACE`, then kills.
async fn stop(child: &mut Child, sig: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// Platforms a `docker buildx inspect` lists, over all nodes (`*` marks configured ones).
pub fn inspected_platforms(stdout: &str) -> (Option<String>, Vec<String>) {
    let mut driver = None;
    let mut platforms = Vec::new();
    for line in stdout.lines() {
        if let Some(d) = line.strip_prefix("Driver:") {
            driver = Some(d.trim().to_string());
        }
        if let Some(list) = line.strip_prefix("Platforms:") {
            platforms
                .extend(list.split(',').map(|p| p.trim().trim_end_matches('*').to_string()).filter(|p| !p.is_empty()));
        }
    }
    (driver, platforms)
}

/// Requested platforms the builder does not list. `linux/arm64` is served by `linux/arm64/v8`.
pub fn missing_platforms<'a>(requested: &'a [Platform], available: &[String]) -> Vec<&'a Platform> {
    requested
        .iter()
        .filter(|p| {
            let want = p.as_str();
            !available
                .iter()
                .any(|a| a == want || (want.matches('/').count() == 1 && a.starts_with(&format!("{want}/"))))
        })
        .collect()
}

/// The architectures `tonistiigi/binfmt --install` takes for these platforms.
pub fn binfmt_archs(platforms: &[&Platform]) -> String {
    let mut archs: Vec<&str> = platforms.iter().filter_map(|p| p.as_str().split('/').nth(1)).collect();
    archs.dedup();
    archs.join(",")
}

/// Platforms a docker-container builder on this host runs without emulation.
fn native_platforms() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["linux/amd64", "linux/386"],
        "aarch64" => &["linux/arm64"],
        _ => &[],
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn random_token() -> String {
    random_hex(16)
}

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

/// The builder the build runs on: the input, or one created for this run.
struct Builder {
    name: String,
    created: bool,
}

/// `os/arch[/variant]` of an index entry; `None` for attestation manifests (`unknown/unknown`).
fn entry_platform(m: &Value) -> Option<String> {
    let p = m.get("platform")?;
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    if os == "unknown" {
        return None;
    }
    Some(match p.get("variant").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

/// Two sources of one platform in a manifest list: the first pair found.
pub fn duplicate_platform(index: &Value) -> Option<(String, String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for m in index.get("manifests")?.as_array()? {
        let Some(platform) = entry_platform(m) else { continue };
        let digest = m.get("digest").and_then(Value::as_str).unwrap_or("?").to_string();
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == platform) {
            return Some((platform, first.clone(), digest));
        }
        seen.push((platform, digest));
    }
    None
}

/// Merge mode: check the combination (every digest resolves, platforms distinct) with a dry
/// run, push the manifest list, and read its digest back from the registry.
async fn merge(
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    annotations: &mut Vec<Annotation>,
) -> RunResult {
    if plan.argv.is_empty() {
        annotations.push(Annotation::notice(format!(
            "Nothing merged: {}",
            plan.warnings
                .iter()
                .find(|w| w.starts_with("No merge"))
                .map(String::as_str)
                .unwrap_or("this run does not push.")
        )));
        return (Outcome::Succeeded, None, None);
    }
    let failed = |message: String| {
        (Outcome::Failed { code: 1, error: Some(BuildError { message, location: None }) }, None, None)
    };
    let create: Vec<&str> = plan.argv[1..].iter().map(String::as_str).collect();
    let mut dry = create.clone();
    dry.insert(3, "--dry-run");
    let index: Value = match docker.output(&dry, None, signals).await {
        Ok(Ended::Exited { code: 0, stdout, .. }) => match serde_json::from_str(stdout.trim_end()) {
            Ok(v) => v,
            Err(e) => return failed(format!("imagetools create --dry-run printed no manifest list: {e}")),
        },
        Ok(Ended::Signalled(sig)) => return (Outcome::Cancelled { signal: sig }, None, None),
        Ok(Ended::Exited { stderr, .. }) => {
            return failed(format!("the digests cannot be merged: {}", last_line(&stderr)));
        }
        Err(e) => return failed(format!("cannot run docker: {e}")),
    };
    if let Some((platform, a, b)) = duplicate_platform(&index) {
        return failed(format!(
            "{a} and {b} are both {platform}: each per-platform job must build a different platform"
        ));
    }
    let builder =
        plan.argv.iter().position(|a| a == "--builder").and_then(|i| plan.argv.get(i + 1)).map(String::as_str);
    let digest = match push_tags(docker, &create, &plan.tags, builder, signals).await {
        Ok(d) => d,
        Err(outcome) => return (outcome, None, None),
    };
    let mut platforms: Vec<String> =
        index["manifests"].as_array().map(|m| m.iter().filter_map(entry_platform).collect()).unwrap_or_default();
    platforms.sort();
    let mut metadata = serde_json::json!({ "image.name": plan.tags.join(","), "platforms": platforms });
    match digest {
        Some(d) => metadata["containerimage.digest"] = Value::String(d),
        None => annotations.push(Annotation::warning(format!(
            "The manifest list was pushed, but its digest could not be read back from {}.",
            plan.tags.first().map(String::as_str).unwrap_or_default()
        ))),
    }
    (Outcome::Succeeded, Some(metadata), None)
}

/// Runs `imagetools create` (tags over sources) and reads the digest the first tag now names
/// back from the registry.
async fn push_tags(
    docker: &mut Docker,
    create: &[&str],
    tags: &[String],
    builder: Option<&str>,
    signals: &mut Signals,
) -> Result<Option<String>, Outcome> {
    let failed = |message: String| Outcome::Failed { code: 1, error: Some(BuildError { message, location: None }) };
    match docker.output(create, None, signals).await {
        Ok(Ended::Exited { code: 0, .. }) => {}
        Ok(Ended::Signalled(sig)) => return Err(Outcome::Cancelled { signal: sig }),
        Ok(Ended::Exited { stderr, .. }) => {
            return Err(failed(format!("pushing the tags failed: {}", last_line(&stderr))));
        }
        Err(e) => return Err(failed(format!("cannot run docker: {e}"))),
    }
    let first = tags.first().map(String::as_str).unwrap_or_default();
    // The builder's registry configuration (an HTTP registry, mirrors) applies to reading too.
    let mut inspect = vec!["buildx", "imagetools", "inspect"];
    if let Some(b) = builder {
        inspect.extend(["--builder", b]);
    }
    inspect.push(first);
    Ok(match docker.output(&inspect, None, signals).await {
        Ok(Ended::Exited { code: 0, stdout, .. }) => {
            stdout.lines().find_map(|l| l.strip_prefix("Digest:").map(|d| d.trim().to_string()))
        }
        _ => None,
    })
}

/// The values of the secrets the build was given, by id, in memory only. A multi-line value
/// (an `.npmrc`, a key file) is also searched for line by line.
fn secret_values(ctx: &Context, plan: &BuildPlan) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for spec in ctx.inputs.secrets.iter().filter(|s| plan.secrets.contains(&s.id)) {
        let value: Option<Vec<u8>> = match &spec.source {
            SecretSource::Value { env } => {
                ctx.secret_values.0.iter().find(|(n, _)| n == env).map(|(_, v)| v.expose().as_bytes().to_vec())
            }
            SecretSource::Env { env } => std::env::var_os(env).map(|v| v.into_encoded_bytes()),
            SecretSource::File { path } => std::fs::read(path).ok(),
        };
        let Some(value) = value else { continue };
        let text = String::from_utf8_lossy(&value).into_owned();
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| l.len() >= crate::verify::MIN_SCAN_LEN).collect();
        if lines.len() > 1 {
            out.extend(lines.iter().map(|l| (spec.id.clone(), l.as_bytes().to_vec())));
        }
        out.push((spec.id.clone(), value));
    }
    out
}

/// The credentials `docker login` left in the private configuration, for reading `registry`.
fn run_credentials(dir: &Path, registry: &str) -> Option<(String, String)> {
    let config = std::fs::read_to_string(dir.join("docker-config").join("config.json")).ok()?;
    crate::verify::stored_auth(&config, registry)
}

/// Scans the built image for the build's secrets. `Err` is the outcome that ends the run: a
/// leak, or an image that could not be read (no proof, no tag).
async fn verify_image(
    ctx: &Context,
    plan: &BuildPlan,
    dir: &Path,
    metadata: Option<&Value>,
    annotations: &mut Vec<Annotation>,
) -> Result<(), Outcome> {
    let Some(mode) = plan.verify else { return Ok(()) };
    let started = Instant::now();
    let needles = crate::verify::Needles::new(&secret_values(ctx, plan));
    if !needles.skipped.is_empty() {
        annotations.push(Annotation::notice(format!(
            "Not scanned for, being shorter than {} bytes: {}.",
            crate::verify::MIN_SCAN_LEN,
            needles.skipped.join(", ")
        )));
    }
    if needles.is_empty() {
        return Ok(());
    }
    let no_proof = |why: String| Outcome::Failed {
        code: 1,
        error: Some(BuildError {
            message: format!("the image could not be checked for leaked secrets ({why}), so no tag was created"),
            location: None,
        }),
    };
    let report = match mode {
        Verify::Layout => crate::verify::scan_layout(&dir.join("oci"), &needles).await,
        Verify::Registry => {
            let digest = metadata.and_then(|m| m.get("containerimage.digest")).and_then(Value::as_str);
            let Some(digest) = digest else { return Err(no_proof("buildx reported no digest".into())) };
            let registry = plan.image.split('/').next().unwrap_or_default();
            match crate::verify::Registry::new(&plan.image, run_credentials(dir, registry)) {
                Ok(mut r) => crate::verify::scan(&mut r, digest, &needles).await,
                Err(e) => Err(e),
            }
        }
    };
    let report = report.map_err(|e| no_proof(e.to_string()))?;
    if !report.hits.is_empty() {
        for hit in &report.hits {
            annotations.push(Annotation { level: Level::Error, message: format!("Leaked: {hit}."), location: None });
        }
        return Err(Outcome::SecretsLeaked { hits: report.hits.len() });
    }
    let scope = if report.platforms.is_empty() { "the image".to_string() } else { report.platforms.join(", ") };
    annotations.push(Annotation::notice(format!(
        "No secret value in the image: {} layers ({:.1} MB) of {scope} checked in {:.1} s.",
        report.layers,
        report.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    )));
    Ok(())
}

/// Logs in, prepares the builder, builds, and cleans up whatever happens.
pub async fn execute(ctx: &Context, plan: &BuildPlan, dir: &Path, signals: &mut Signals) -> Execution {
    let started = Instant::now();
    let mut annotations = Vec::new();
    let mut docker = match Docker::new(ctx, plan, dir) {
        Ok(d) => d,
        Err(e) => {
            return Execution {
                outcome: Outcome::SetupFailed(format!(
                    "cannot create the private DOCKER_CONFIG under {}: {e}",
                    dir.display()
                )),
                annotations,
                metadata: None,
                cache_hits: None,
                mounts: Vec::new(),
                pushed: false,
                duration: started.elapsed(),
                docker_calls: 0,
            };
        }
    };
    let mut builder = None;
    let mut mounts = Vec::new();
    let mut effects = Effects { annotations: &mut annotations, builder: &mut builder, mounts: &mut mounts };
    let result = run(ctx, plan, dir, &mut docker, signals, &mut effects).await;
    if let Some(Builder { name, created: true }) = &builder {
        // Removing the builder must not outlive a cancelled job: bounded, and best effort.
        let args = ["buildx", "rm", name.as_str()];
        let limit = if matches!(result.0, Outcome::Cancelled { .. }) {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(10)
        };
        let rm = docker.output(&args, None, signals);
        match tokio::time::timeout(limit, rm).await {
            Ok(Ok(Ended::Exited { code: 0, .. })) => {}
            _ => annotations
                .push(Annotation::warning(format!("Could not remove the builder {name}; it is left on the runner."))),
        }
    }
    let (outcome, metadata, cache_hits) = result;
    let pushed = outcome == Outcome::Succeeded && plan.push;
    Execution {
        outcome,
        annotations,
        metadata,
        cache_hits,
        mounts,
        pushed,
        duration: started.elapsed(),
        docker_calls: docker.calls,
    }
}

type RunResult = (Outcome, Option<Value>, Option<CacheHits>);

/// What `run` leaves behind besides its result: messages, the builder to remove, mount reports.
struct Effects<'a> {
    annotations: &'a mut Vec<Annotation>,
    builder: &'a mut Option<Builder>,
    mounts: &'a mut Vec<mounts::MountStatus>,
}

async fn run(
    ctx: &Context,
    plan: &BuildPlan,
    dir: &Path,
    docker: &mut Docker,
    signals: &mut Signals,
    effects: &mut Effects<'_>,
) -> RunResult {
    let annotations = &mut *effects.annotations;
    let builder_slot = &mut *effects.builder;
    let setup_failed = |m: String| (Outcome::SetupFailed(m), None, None);

    // Login: the plan lists registries only for trusted runs that write, and only with a token.
    if let Some(token) = &ctx.inputs.github_token {
        let user = ctx.actor.clone().unwrap_or_else(|| "x-access-token".into());
        for registry in &plan.login {
            let args = ["login", registry.as_str(), "--username", user.as_str(), "--password-stdin"];
            match docker.output(&args, Some(token.expose().as_bytes()), signals).await {
                Ok(Ended::Exited { code: 0, .. }) => {}
                Ok(Ended::Signalled(sig)) => {
                    return (Outcome::Cancelled { signal: sig }, None, None);
                }
                Ok(Ended::Exited { stderr, .. }) => {
                    let why = last_line(&stderr).to_string();
                    if plan.push {
                        return setup_failed(format!(
                            "docker login to {registry} failed ({why}): check that the workflow grants `packages: write` and that github-token may write this package"
                        ));
                    }
                    annotations.push(Annotation::warning(format!(
                        "docker login to {registry} failed ({why}): the cache export will be refused; the build goes on."
                    )));
                }
                Err(e) => return setup_failed(format!("cannot run docker: {e}")),
            }
        }
    }

    if plan.mode == Mode::Merge {
        return merge(plan, docker, signals, annotations).await;
    }

    // Builder: the input, or a docker-container builder for this run (the docker driver
    // cannot export a registry cache).
    let builder = match &ctx.inputs.builder {
        Some(name) => Builder { name: name.clone(), created: false },
        None => {
            let name = format!("sdi-{}-{}", ctx.run_id.as_deref().unwrap_or("local"), random_hex(4));
            let args = ["buildx", "create", "--name", name.as_str(), "--driver", "docker-container", "--bootstrap"];
            match docker.output(&args, None, signals).await {
                Ok(Ended::Exited { code: 0, .. }) => {}
                Ok(Ended::Signalled(sig)) => {
                    return (Outcome::Cancelled { signal: sig }, None, None);
                }
                Ok(Ended::Exited { stderr, .. }) => {
                    *builder_slot = Some(Builder { name: name.clone(), created: true });
                    return setup_failed(format!(
                        "could not create a docker-container builder: {}",
                        last_line(&stderr)
                    ));
                }
                Err(e) => return setup_failed(format!("cannot run docker: {e}")),
            }
            Builder { name, created: true }
        }
    };
    let builder_name = builder.name.clone();
    let created = builder.created;
    *builder_slot = Some(builder);

    // Platforms: a builder made here on this host runs its native platforms for sure; any
    // other request is checked. A missing one matters only if a RUN step executes on it: then
    // QEMU is registered (docker-container builders) or the run fails naming it.
    let native = native_platforms();
    let mut native_platform = native.first().map(|p| p.to_string());
    let all_native = created && plan.platforms.iter().all(|p| native.contains(&p.as_str()));
    if !all_native {
        // A Dockerfile that cannot be read here (a remote context) counts as needing emulation.
        let needs_emulation = ctx.dockerfile.as_deref().is_none_or(crate::dockerfile::runs_on_target_platform);
        let mut installed = false;
        loop {
            let out = match docker.output(&["buildx", "inspect", "--bootstrap", &builder_name], None, signals).await {
                Ok(Ended::Exited { code: 0, stdout, .. }) => stdout,
                Ok(Ended::Signalled(sig)) => {
                    return (Outcome::Cancelled { signal: sig }, None, None);
                }
                Ok(Ended::Exited { stderr, .. }) => {
                    return setup_failed(format!("builder '{builder_name}' cannot be used: {}", last_line(&stderr)));
                }
                Err(e) => return setup_failed(format!("cannot run docker: {e}")),
            };
            let (driver, available) = inspected_platforms(&out);
            if !created {
                // A builder of the user's may run elsewhere: its first platform is its native one.
                native_platform = available.first().cloned().or(native_platform);
            }
            let missing = missing_platforms(&ctx.inputs.platforms, &available);
            if missing.is_empty() {
                break;
            }
            let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
            if !needs_emulation {
                annotations.push(Annotation::notice(format!(
                    "Builder '{builder_name}' has no emulation for {}; the Dockerfile runs every RUN step on $BUILDPLATFORM, so none is needed.",
                    names.join(", ")
                )));
                break;
            }
            if installed || driver.as_deref() != Some("docker-container") {
                return setup_failed(format!(
                    "builder '{builder_name}' does not support {} (it lists {}), and the Dockerfile runs steps on those platforms: use a builder for them, build them on $BUILDPLATFORM, or drop them from `platforms`",
                    names.join(", "),
                    available.join(", ")
                ));
            }
            let archs = binfmt_archs(&missing);
            annotations.push(Annotation::notice(format!(
                "Registering QEMU emulation for {} (emulated steps are much slower than native runners).",
                names.join(", ")
            )));
            match docker
                .output(&["run", "--privileged", "--rm", BINFMT_IMAGE, "--install", &archs], None, signals)
                .await
            {
                Ok(Ended::Exited { code: 0, .. }) => installed = true,
                Ok(Ended::Signalled(sig)) => {
                    return (Outcome::Cancelled { signal: sig }, None, None);
                }
                Ok(Ended::Exited { stderr, .. }) => {
                    return setup_failed(format!(
                        "could not register QEMU for {}: {}",
                        names.join(", "),
                        last_line(&stderr)
                    ));
                }
                Err(e) => return setup_failed(format!("cannot run docker: {e}")),
            }
        }
    }

    // Cache-mount stores: filled from the registry before the build.
    if let Some(mp) = &plan.cache_mounts {
        match mounts::restore(docker, signals, mp, &builder_name, dir, annotations).await {
            Ok(statuses) => *effects.mounts = statuses,
            Err(sig) => return (Outcome::Cancelled { signal: sig }, None, None),
        }
    }

    // The build: the plan's argv, plus what only this run knows.
    let metadata_file = dir.join("metadata.json");
    let mut argv: Vec<String> = plan.argv[1..].to_vec();
    let context = argv.pop().unwrap_or_else(|| ".".into());
    if created {
        argv.extend(["--builder".into(), builder_name.clone()]);
    }
    argv.extend(["--metadata-file".into(), metadata_file.display().to_string(), "--progress".into(), "rawjson".into()]);
    if plan.verify == Some(Verify::Layout) {
        // Not pushed, yet to be checked: exported where this run (and only it) can read it.
        argv.extend(["--output".into(), format!("type=oci,dest={},tar=false", dir.join("oci").display())]);
    }
    argv.push(context);
    let secret_env: Vec<(String, String)> = if plan.trust.trusted {
        ctx.secret_values
            .0
            .iter()
            .filter(|(name, _)| plan.secret_sources.iter().any(|s| s.env.as_deref() == Some(name)))
            .map(|(name, value)| (name.clone(), value.expose().to_string()))
            .collect()
    } else {
        Vec::new()
    };
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut cmd = docker.command(&args);
    cmd.env("BUILDX_METADATA_WARNINGS", "true").envs(secret_env);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return setup_failed(format!("cannot run docker: {e}")),
    };
    // Build output is untrusted text: it is streamed between stop-commands markers so that
    // nothing a Dockerfile prints can act as a workflow command.
    let stop_token = random_token();
    println!("::group::docker buildx build");
    println!("::stop-commands::{stop_token}");
    let mut progress = Progress::default();
    let mut plain = Vec::new();
    let mut out_lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut out_open, mut err_open) = (true, true);
    let mut cancelled = None;
    while out_open || err_open {
        tokio::select! {
            line = out_lines.next_line(), if out_open => match line {
                Ok(Some(l)) => println!("{l}"),
                _ => out_open = false,
            },
            line = err_lines.next_line(), if err_open => match line {
                Ok(Some(l)) => {
                    if !l.trim_start().starts_with('{') {
                        plain.push(l.clone());
                    }
                    for shown in progress.feed(&l) {
                        println!("{shown}");
                    }
                }
                _ => err_open = false,
            },
            sig = signals.recv(), if cancelled.is_none() => {
                println!("Cancelling the build ({}).", if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" });
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) on our own child, not yet reaped.
                    unsafe { libc::kill(pid as i32, sig); }
                }
                cancelled = Some((sig, Instant::now()));
            },
            _ = tokio::time::sleep(Duration::from_millis(200)), if cancelled.is_some() => {
                if cancelled.is_some_and(|(_, at)| at.elapsed() > GRACE) {
                    let _ = child.start_kill();
                    break;
                }
            },
        }
    }
    let status = match cancelled {
        Some(_) => tokio::time::timeout(Duration::from_secs(2), child.wait()).await.ok().and_then(Result::ok),
        None => child.wait().await.ok(),
    };
    println!("::{stop_token}::");
    println!("::endgroup::");

    let hits = Some(progress.cache_hits());
    // Emulated steps are the slow part of a multi-arch build: say how slow, and the way out.
    if let Some(native) = &native_platform {
        for (platform, secs) in progress.emulated_run_seconds(&plan.platforms, native) {
            annotations.push(Annotation::notice(format!(
                "RUN steps for {platform} ran under emulation on this {native} builder for {secs:.1} s: build each platform on a native runner and merge the digests (README: \"Multi-arch on native runners\")."
            )));
        }
    }
    if let Some((sig, _)) = cancelled {
        return (Outcome::Cancelled { signal: sig }, None, hits);
    }
    let code = status.and_then(|s| s.code()).unwrap_or(1);
    let metadata: Option<Value> =
        std::fs::read_to_string(&metadata_file).ok().and_then(|t| serde_json::from_str(&t).ok());
    let _ = std::fs::remove_file(&metadata_file);
    // Dockerfile warnings: from the metadata file when buildx wrote one, else from the stream.
    let warnings: Vec<progress::VertexWarning> = metadata
        .as_ref()
        .and_then(|m| m.get("buildx.build.warnings"))
        .and_then(|w| serde_json::from_value(w.clone()).ok())
        .unwrap_or_else(|| progress.warnings.clone());
    for w in &warnings {
        let location = w.location().map(|(_, line)| (plan.dockerfile.clone(), line));
        let a = Annotation { level: Level::Warning, message: w.message(), location };
        if !annotations.contains(&a) {
            annotations.push(a);
        }
    }
    if code != 0 {
        let error = progress::build_error(&plain).map(|mut e| {
            e.location = e.location.map(|(_, line)| (plan.dockerfile.clone(), line));
            e
        });
        return (Outcome::Failed { code, error }, None, hits);
    }

    // A registry cache-to that left no cache.manifest was refused, and ignore-error kept the
    // build green: say so, with the registry's own words.
    let wrote_registry_cache = plan.cache_to.iter().any(|c| c.starts_with("type=registry"));
    if wrote_registry_cache && metadata.as_ref().is_some_and(|m| m.get("cache.manifest").is_none()) {
        let why = progress.cache_export_error().unwrap_or("buildx reported no reason");
        annotations.push(Annotation::warning(format!(
            "The registry cache was not written ({}): {why}. The build succeeded because the export uses ignore-error=true; check that github-token may write the cache package.",
            plan.cache_to.join(", ")
        )));
    }
    for (source, error) in progress.cache_import_errors() {
        annotations.push(Annotation::notice(format!(
            "Cache {source} was not imported ({error}); a first build has none yet."
        )));
    }

    // Secrets were used: prove none is in the image before anything is tagged.
    // The scan reads the whole image: a cancelled job must not wait for it.
    let verified = tokio::select! {
        v = verify_image(ctx, plan, dir, metadata.as_ref(), annotations) => v,
        sig = signals.recv() => Err(Outcome::Cancelled { signal: sig }),
    };
    if let Err(outcome) = verified {
        return (outcome, None, hits);
    }
    let mut metadata = metadata;
    if plan.verify == Some(Verify::Registry) && plan.mode == Mode::Build {
        let digest = metadata.as_ref().and_then(|m| m.get("containerimage.digest")).and_then(Value::as_str);
        let source = format!("{}@{}", plan.image, digest.unwrap_or_default());
        let mut create: Vec<&str> = vec!["buildx", "imagetools", "create", "--builder", builder_name.as_str()];
        for t in &plan.tags {
            create.extend(["--tag", t.as_str()]);
        }
        create.push(&source);
        match push_tags(docker, &create, &plan.tags, Some(&builder_name), signals).await {
            Ok(Some(tagged)) => {
                if let Some(m) = metadata.as_mut() {
                    m["containerimage.digest"] = Value::String(tagged);
                    m["image.name"] = Value::String(plan.tags.join(","));
                }
            }
            Ok(None) => {
                annotations.push(Annotation::warning("The tags were pushed, but their digest could not be read back."))
            }
            Err(outcome) => return (outcome, None, hits),
        }
    }
    // …and saved after a good trusted build.
    if let Some(mp) = plan.cache_mounts.as_ref().filter(|m| m.save_to.is_some() && plan.trust.trusted) {
        let needles = crate::verify::Needles::new(&secret_values(ctx, plan));
        if let Some(sig) =
            mounts::save(docker, signals, mp, &builder_name, dir, &needles, annotations, effects.mounts).await
        {
            return (Outcome::Cancelled { signal: sig }, None, hits);
        }
    }
    (Outcome::Succeeded, metadata, hits)
}
