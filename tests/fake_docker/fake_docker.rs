//! A stand-in for the `docker` CLI in CI, where there is no engine. Faithful where the
//! action depends on it: `buildx build` accepts only the flags of the captured
//! `build-help.txt`, replays the captured progress logs (as plain text or converted to the
//! `rawjson` vertex stream) with their real outcomes, and writes metadata shaped like the
//! captured metadata files. `login`, `buildx create|inspect|rm` and `run … binfmt` behave as
//! the real commands do for the action's calls.
//!
//! Driven by the environment:
//! - `FAKE_DOCKER_LOG` (required): file to which one JSON record per call is appended: argv,
//!   the *names* of the environment, `DOCKER_CONFIG` and its mode, stdin length, the program
//!   called (`docker`, or `buildx` on its own: then argv is recorded as `buildx …`), and for
//!   buildx the registries it has credentials for.
//! - `FAKE_DOCKER_SCENARIO`: `success` (default), `warm`, `cache-denied`, `dockerfile-error`,
//!   `cancel`.
//! - builders, containers and injected failures of their calls: see `builders.rs`; the
//!   action's own container and BuildKit started from its image: see `own.rs`.
//! - `FAKE_DOCKER_FAIL_LOGIN=1`: `login` is refused as a registry refuses a bad token.
//! - `FAKE_DOCKER_WARNINGS=1`: the build reports a Dockerfile lint warning.
//! - cache-mount stores and the helpers that restore, check and save them: see `stores.rs`.
//! - `FAKE_DOCKER_REGISTRY_DIR`: the directory a test registry serves; see `images.rs`.
//! - `FAKE_DOCKER_STAMP`: file that receives a line with the time (ns since the epoch) each
//!   `buildx build` started.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

mod builders;
mod images;
mod own;
mod stores;
use builders::{create, failing, inspect, remove, run};
use images::{fake_digest, imagetools_create, imagetools_inspect, push, real_image};

const HELP: &str = include_str!("../fixtures/buildx/build-help.txt");
const LOG_COLD: &str = include_str!("../fixtures/buildx/log-cold-build-with-registry-cache.txt");
const LOG_WARM: &str = include_str!("../fixtures/buildx/log-warm-build-from-registry-cache.txt");
const LOG_DENIED: &str = include_str!("../fixtures/buildx/log-cache-export-denied-ignore-error.txt");
const LOG_DENIED_STRICT: &str = include_str!("../fixtures/buildx/log-cache-export-denied-strict.txt");
const LOG_DOCKERFILE_ERROR: &str = include_str!("../fixtures/buildx/log-dockerfile-error.txt");
const META_SINGLE: &str = include_str!("../fixtures/buildx/metadata-single-platform-push.json");
const META_MULTI: &str = include_str!("../fixtures/buildx/metadata-multi-platform.json");

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

struct Call {
    record: serde_json::Map<String, Value>,
}

impl Call {
    fn new(args: &[String]) -> Self {
        let mut names: Vec<String> = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect();
        names.sort();
        let config = std::env::var("DOCKER_CONFIG").ok();
        let mode = config
            .as_ref()
            .and_then(|c| std::fs::metadata(c).ok())
            .map(|m| format!("{:o}", m.permissions().mode() & 0o777));
        let mut record = serde_json::Map::new();
        record.insert("argv".into(), json!(args));
        record.insert("env".into(), json!(names));
        record.insert("docker_config".into(), json!(config));
        record.insert("docker_config_mode".into(), json!(mode));
        Call { record }
    }

    fn set(&mut self, key: &str, value: Value) {
        self.record.insert(key.into(), value);
    }

    fn finish(self, code: u8) -> ExitCode {
        let mut record = self.record;
        record.insert("exit".into(), json!(code));
        if let Ok(path) = std::env::var("FAKE_DOCKER_LOG") {
            let mut f =
                std::fs::OpenOptions::new().create(true).append(true).open(path).expect("FAKE_DOCKER_LOG is writable");
            writeln!(f, "{}", Value::Object(record)).unwrap();
        }
        ExitCode::from(code)
    }
}

/// Where the fake keeps what outlives one call (QEMU handlers registered).
fn state_dir() -> PathBuf {
    let log = std::env::var("FAKE_DOCKER_LOG").unwrap_or_else(|_| "/tmp/fake-docker.log".into());
    Path::new(&log).parent().unwrap().to_path_buf()
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Called as `buildx` (buildx on its own, without the docker CLI): its arguments are the
    // plugin's, recorded as `docker buildx …` with the program's name beside them.
    let program = std::env::args().next().unwrap_or_default();
    let standalone = Path::new(&program).file_name().is_some_and(|n| n == "buildx");
    if standalone {
        args.insert(0, "buildx".into());
    }
    let mut call = Call::new(&args);
    call.set("program", json!(if standalone { "buildx" } else { "docker" }));
    if args.first().is_some_and(|a| a == "buildx") {
        call.set("auths", json!(logged_in()));
    }
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["login", rest @ ..] => login(call, rest),
        ["buildx", "build", rest @ ..] | ["buildx", "b", rest @ ..] => build(call, rest),
        ["buildx", "create", rest @ ..] => create(call, rest),
        ["buildx", "inspect", rest @ ..] => inspect(call, rest),
        ["buildx", "imagetools", "create", rest @ ..] => imagetools_create(call, rest),
        ["buildx", "imagetools", "inspect", rest @ ..] => imagetools_inspect(call, rest),
        ["buildx", "rm", rest @ ..] => remove(call, rest),
        ["run", "--detach", rest @ ..] => own::run_buildkit(call, rest),
        ["run", rest @ ..] => run(call, rest),
        ["rm", rest @ ..] => own::remove(call, rest),
        ["container", "inspect", "--format", f, _] if f.starts_with("{{.Image}}|") => {
            own::inspect(call, &words[2..]).expect("the own-image format")
        }
        ["container", "inspect", rest @ ..] => builders::container_inspect(call, rest),
        ["start", rest @ ..] => builders::start(call, rest),
        ["info", "--format", "{{json .DriverStatus}}"] => info(call),
        _ => {
            eprintln!("fake docker: unsupported command: {args:?}");
            call.finish(127)
        }
    }
}

/// `docker info`'s storage driver status, as Docker 28 prints it: with the containerd image
/// store (`FAKE_DOCKER_CONTAINERD_STORE` set) the snapshotter, else overlay2's lines.
fn info(call: Call) -> ExitCode {
    if std::env::var("FAKE_DOCKER_CONTAINERD_STORE").is_ok() {
        println!("[[\"driver-type\",\"io.containerd.snapshotter.v1\"]]");
    } else {
        println!(
            "[[\"Backing Filesystem\",\"extfs\"],[\"Supports d_type\",\"true\"],[\"Using metacopy\",\"false\"],[\"Native Overlay Diff\",\"true\"],[\"userxattr\",\"false\"]]"
        );
    }
    call.finish(0)
}

/// The registries buildx finds credentials for in `DOCKER_CONFIG/config.json` (what a login
/// left there, whoever wrote it).
fn logged_in() -> Vec<String> {
    let Ok(dir) = std::env::var("DOCKER_CONFIG") else { return Vec::new() };
    let config: Value = std::fs::read(Path::new(&dir).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    config["auths"].as_object().map(|a| a.keys().cloned().collect()).unwrap_or_default()
}

fn login(mut call: Call, rest: &[&str]) -> ExitCode {
    let (mut registry, mut user, mut stdin) = (None, None, false);
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "--username" | "-u" => {
                user = rest.get(i + 1).copied();
                i += 1;
            }
            "--password-stdin" => stdin = true,
            "--password" | "-p" => {
                eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
                return call.finish(1);
            }
            flag if flag.starts_with('-') => {
                eprintln!("unknown flag: {flag}");
                return call.finish(125);
            }
            reg => registry = Some(reg),
        }
        i += 1;
    }
    let mut password = String::new();
    if stdin {
        std::io::stdin().read_to_string(&mut password).unwrap();
    }
    let password = password.trim_end_matches(['\n', '\r']);
    call.set("stdin_bytes", json!(password.len()));
    let (Some(registry), Some(user)) = (registry, user) else {
        eprintln!("Error: Cannot perform an interactive login from a non TTY device");
        return call.finish(1);
    };
    if password.is_empty() {
        eprintln!("Error: Cannot perform an interactive login from a non TTY device");
        return call.finish(1);
    }
    if std::env::var("FAKE_DOCKER_FAIL_LOGIN").is_ok() {
        eprintln!("Error response from daemon: Get \"https://{registry}/v2/\": denied: denied");
        return call.finish(1);
    }
    // Like the real CLI without a credential helper: the credentials land in config.json.
    let dir = std::env::var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".docker"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.json");
    let mut config: Value =
        std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(json!({}));
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    // Docker Hub under its historical address, as the CLI keeps it.
    let key = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    config["auths"][key] = json!({ "auth": auth });
    std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    println!("Login Succeeded");
    call.finish(0)
}

/// Flags of `docker buildx build --help`: name → whether it takes a value.
fn known_flags() -> BTreeMap<String, bool> {
    let mut flags = BTreeMap::new();
    for line in HELP.lines() {
        let t = line.trim_start();
        if !t.starts_with('-') {
            continue;
        }
        let mut words = t.split_whitespace();
        let mut first = words.next().unwrap_or_default();
        if first.len() == 3 && first.ends_with(',') {
            let short = &first[1..2];
            let long = words.next().unwrap_or_default();
            let takes = words.next().is_some_and(is_type);
            flags.insert(format!("-{short}"), takes);
            first = long;
            flags.insert(first.to_string(), takes);
            continue;
        }
        let takes = words.next().is_some_and(is_type);
        flags.insert(first.to_string(), takes);
    }
    flags
}

fn is_type(word: &str) -> bool {
    matches!(word, "string" | "stringArray" | "strings" | "bytes" | "ulimit")
}

struct BuildArgs {
    flags: Vec<(String, Option<String>)>,
    context: String,
}

impl BuildArgs {
    fn all(&self, name: &str) -> Vec<&str> {
        self.flags.iter().filter(|(n, _)| n == name).filter_map(|(_, v)| v.as_deref()).collect()
    }
    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).last().copied()
    }
    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }
}

fn parse_build(rest: &[&str]) -> Result<BuildArgs, String> {
    let known = known_flags();
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let a = rest[i];
        if a.starts_with('-') && a != "-" {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a, None),
            };
            let Some(&takes) = known.get(name) else {
                return Err(format!("unknown flag: {name}"));
            };
            let name = match name {
                "-f" => "--file",
                "-t" => "--tag",
                "-o" => "--output",
                "-q" => "--quiet",
                "-D" => "--debug",
                n => n,
            };
            let value = if takes {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        Some(rest.get(i).ok_or(format!("flag needs an argument: {name}"))?.to_string())
                    }
                }
            } else {
                inline
            };
            flags.push((name.to_string(), value));
        } else {
            positional.push(a.to_string());
        }
        i += 1;
    }
    match positional.as_slice() {
        [context] => Ok(BuildArgs { flags, context: context.clone() }),
        _ => Err(format!(
            "\"docker buildx build\" requires exactly 1 argument.\nSee 'docker buildx build --help'.\n\nUsage:  docker buildx build [OPTIONS] PATH | URL | -\n\nStart a build ({} given)",
            positional.len()
        )),
    }
}

/// The build runs on `builder` as buildx would: it must exist and be reachable; where it ran
/// and what its remote driver was handed are recorded. The docker driver without the
/// containerd store refuses a cache export.
fn on_builder(call: &mut Call, args: &BuildArgs, builder: &str) -> Result<(), u8> {
    let Some(instance) = builders::instance(builder) else {
        eprintln!("ERROR: no builder \"{builder}\" found");
        return Err(1);
    };
    if let Some(why) = builders::unreachable(&instance) {
        eprintln!("ERROR: {why}");
        return Err(1);
    }
    // Where the build ran, and what the remote driver was handed (paths and their modes).
    call.set("builder_driver", instance["Driver"].clone());
    call.set("builder_endpoint", instance["Nodes"][0]["Endpoint"].clone());
    call.set("builder_tls", builders::tls_files(&instance));
    if instance["Driver"] == "docker"
        && !args.all("--cache-to").is_empty()
        && std::env::var("FAKE_DOCKER_CONTAINERD_STORE").is_err()
    {
        eprintln!("ERROR: failed to build: Cache export is not supported for the docker driver.");
        eprintln!("Switch to a different driver, or turn on the containerd image store, and try again.");
        eprintln!("Learn more at https://docs.docker.com/go/build-cache-backends/");
        return Err(1);
    }
    Ok(())
}

/// The Dockerfile's own cache-mount RUN steps, named as BuildKit names them (the instruction
/// with its ARGs expanded): cached in the `warm` scenario, run otherwise.
/// The plain log, or the same events as BuildKit `SolveStatus` JSON lines.
struct Replay {
    rawjson: bool,
    clock: f64,
    names: BTreeMap<u32, String>,
    started: BTreeMap<u32, f64>,
    /// Vertices whose start was reported (BuildKit announces a vertex, then starts it).
    reported: std::collections::BTreeSet<u32>,
}

fn stamp(t: f64) -> String {
    let h = (t / 3600.0) as u32;
    let m = ((t % 3600.0) / 60.0) as u32;
    let s = t % 60.0;
    format!("2026-11-28T{h:02}:{m:02}:{s:06.3}Z")
}

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

impl Replay {
    fn line(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if !self.rawjson {
            let _ = writeln!(err, "{line}");
            return;
        }
        let Some((num, rest)) = line.strip_prefix('#').and_then(|l| l.split_once(' ')) else {
            // Outside vertex blocks: printError's excerpt and ERROR line stay plain text; the
            // plain printer's own summary (`------`, ` > step:`) does not exist in rawjson.
            if !(line.is_empty()
                || line == "------"
                || line.starts_with(" > ")
                || line.chars().next().is_some_and(|c| c.is_ascii_digit() && !line.contains(':')))
            {
                let _ = writeln!(err, "{line}");
            }
            return;
        };
        let Ok(n) = num.parse::<u32>() else { return };
        if n == 0 {
            return;
        }
        let d = digest(n);
        let Some(name) = self.names.get(&n).cloned() else {
            self.names.insert(n, rest.to_string());
            self.started.insert(n, self.clock);
            let v = json!({"vertexes": [{"digest": d, "name": rest}]});
            let _ = writeln!(err, "{v}");
            return;
        };
        if rest == name {
            return;
        }
        // A cached step is reported started, completed and cached at once; any other is
        // reported started before its first event.
        if rest != "CACHED" {
            drop(err);
            self.start(n);
            err = std::io::stderr().lock();
        }
        let started = stamp(*self.started.get(&n).unwrap_or(&self.clock));
        let vertex = |extra: Value| {
            let mut v = json!({"digest": d, "name": name, "started": started});
            for (k, val) in extra.as_object().unwrap() {
                v[k] = val.clone();
            }
            json!({ "vertexes": [v] })
        };
        let msg = if let Some(secs) =
            rest.strip_prefix("DONE ").and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
        {
            self.clock += secs;
            vertex(json!({"completed": stamp(self.clock)}))
        } else if rest == "CACHED" {
            vertex(json!({"cached": true, "completed": stamp(self.clock)}))
        } else if rest == "CANCELED" {
            vertex(json!({"error": "context canceled", "completed": stamp(self.clock)}))
        } else if let Some(e) = rest.strip_prefix("ERROR: ") {
            vertex(json!({"error": e, "completed": stamp(self.clock)}))
        } else if let Some((t, text)) = rest.split_once(' ').filter(|(t, _)| t.parse::<f64>().is_ok()) {
            // The captured line's time is since the step started: the log's timestamp.
            let at = self.started.get(&n).copied().unwrap_or(self.clock) + t.parse::<f64>().unwrap_or(0.0);
            let data = base64::engine::general_purpose::STANDARD.encode(format!("{text}\n"));
            json!({"logs": [{"vertex": d, "stream": 1, "data": data, "timestamp": stamp(at)}]})
        } else {
            let done = rest.ends_with(" done");
            let id = rest.trim_end_matches(" done");
            let mut s = json!({"id": id, "vertex": d, "current": 0, "timestamp": stamp(self.clock), "started": stamp(self.clock)});
            if done {
                s["completed"] = json!(stamp(self.clock));
            }
            json!({ "statuses": [s] })
        };
        let _ = writeln!(err, "{msg}");
    }
}

impl Replay {
    /// Reports vertex `n` as started (once), as BuildKit does when a step begins to run.
    fn start(&mut self, n: u32) {
        if !self.rawjson || !self.reported.insert(n) {
            return;
        }
        let Some(name) = self.names.get(&n) else { return };
        let started = stamp(*self.started.get(&n).unwrap_or(&self.clock));
        let v = json!({"vertexes": [{"digest": digest(n), "name": name, "started": started}]});
        let _ = writeln!(std::io::stderr().lock(), "{v}");
    }
}

/// A Dockerfile step's vertex name: `[2/4] RUN …`.
fn is_step(name: &str) -> bool {
    name.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(counter, _)| counter.split_once('/'))
        .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
}

/// A multi-platform build runs every Dockerfile step once per platform, named
/// `[linux/arm64 2/4] RUN …` as BuildKit names them.
fn expand_platforms(lines: Vec<String>, platforms: &[&str]) -> Vec<String> {
    if platforms.len() < 2 {
        return lines;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let header = lines[i].strip_prefix('#').and_then(|l| l.split_once(' ')).filter(|(_, name)| is_step(name));
        let Some((num, name)) = header else {
            out.push(lines[i].clone());
            i += 1;
            continue;
        };
        let prefix = format!("#{num} ");
        let end = (i..lines.len()).find(|&j| !lines[j].starts_with(&prefix)).unwrap_or(lines.len());
        let n: u32 = num.parse().unwrap();
        for (k, platform) in platforms.iter().enumerate() {
            let renumbered = format!("#{} ", n + 100 * k as u32);
            for (j, line) in lines[i..end].iter().enumerate() {
                let body = &line[prefix.len()..];
                let body =
                    if j == 0 || body == name { format!("[{platform} {}", &name[1..]) } else { body.to_string() };
                out.push(format!("{renumbered}{body}"));
            }
            if k + 1 < platforms.len() {
                out.push(String::new());
            }
        }
        i = end;
    }
    out
}

/// Drops the blocks of vertices that the flags given would not produce.
fn filter_blocks(log: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut skipping: Option<String> = None;
    let mut out = Vec::new();
    for line in log.lines() {
        if let Some((num, rest)) = line.strip_prefix('#').and_then(|l| l.split_once(' ')) {
            if !keep(rest) && skipping.is_none() {
                skipping = Some(num.to_string());
            }
            if skipping.as_deref() == Some(num) {
                continue;
            }
        }
        if line.is_empty() {
            skipping = None;
        }
        out.push(line.to_string());
    }
    out
}

fn build(mut call: Call, rest: &[&str]) -> ExitCode {
    if let Ok(path) = std::env::var("FAKE_DOCKER_STAMP") {
        let ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        // A line per build started, helpers included.
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        writeln!(f, "{ns}").unwrap();
    }
    let args = match parse_build(rest) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return call.finish(1);
        }
    };
    call.set("secrets", secrets_present(&args));
    // buildx cancels a build on SIGINT or SIGTERM; this one notices it where a step waits (the
    // mount steps).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    // The generated Dockerfiles (cache-mount helpers) are part of what the test checks.
    let dockerfile = args.one("--file").and_then(|f| std::fs::read_to_string(f).ok());
    if let Some(text) = &dockerfile {
        call.set("file_text", json!(text));
    }
    if let Some(builder) = args.one("--builder")
        && let Err(code) = on_builder(&mut call, &args, builder)
    {
        return call.finish(code);
    }
    let scenario = std::env::var("FAKE_DOCKER_SCENARIO").unwrap_or_else(|_| "success".into());
    let cache_to = args.all("--cache-to");
    let registry_cache = cache_to.iter().any(|c| c.contains("type=registry"));
    let cache_from = !args.all("--cache-from").is_empty();
    let strict = cache_to.iter().any(|c| c.contains("type=registry") && !c.contains("ignore-error=true"));
    let (log, code, cache_written) = match scenario.as_str() {
        "warm" => (LOG_WARM, 0, registry_cache),
        "cache-denied" if registry_cache && strict => (LOG_DENIED_STRICT, 1, false),
        "cache-denied" => (LOG_DENIED, 0, false),
        "dockerfile-error" => (LOG_DOCKERFILE_ERROR, 1, false),
        _ => (LOG_COLD, 0, registry_cache),
    };
    let lines = filter_blocks(log, |name| {
        (registry_cache || !name.starts_with("exporting cache to registry"))
            && (cache_from || !name.starts_with("importing cache manifest"))
    });
    let requested: Vec<&str> = args.all("--platform").iter().flat_map(|p| p.split(',')).collect();
    let lines = expand_platforms(lines, &requested);
    let mut replay = Replay {
        rawjson: args.one("--progress") == Some("rawjson"),
        clock: 0.0,
        names: BTreeMap::new(),
        started: BTreeMap::new(),
        reported: Default::default(),
    };
    if scenario == "cancel" {
        return cancelled(call, &mut replay, &lines);
    }
    if std::env::var("FAKE_DOCKER_FAIL_HELPERS").is_ok()
        && dockerfile.as_deref().is_some_and(|t| t.contains("/sdi-mount"))
    {
        eprintln!("ERROR: failed to build: failed to solve: helper failed as asked");
        return call.finish(1);
    }
    // A cache-mount helper reads and writes the builder's stores, as its RUN steps would.
    let helper = dockerfile.as_deref().filter(|t| t.contains("/sdi-mount"));
    let saved = helper.map(|t| stores::replay_helper(&mut replay, t)).unwrap_or_default();
    let saves = helper.is_some_and(|t| t.contains("sdi-mount-size "));
    for l in &lines {
        replay.line(l);
    }
    if code == 0 && !stores::replay_mount_steps(&mut replay, (&args, &requested), &scenario) {
        return call.finish(1);
    }
    if helper.is_none() {
        stores::another_job_saves();
        stores::pruned_under_build();
    }
    if code == 0 && helper.is_none() && push_race(&args) {
        return call.finish(1);
    }
    if code != 0 {
        return call.finish(code);
    }
    if let Some(path) = args.one("--metadata-file") {
        let stores = saves.then_some(saved.as_slice());
        write_metadata(Path::new(path), (&args, &requested), cache_written, stores);
    }
    call.finish(0)
}

/// `FAKE_DOCKER_FAIL=push-race`: the first pushing build fails as it does when BuildKit's image
/// and cache pushes race on a registry (words captured from buildx 0.36.1 and registry 2.8);
/// `push-race-always`: every one does. Prints buildx's error when it fails.
fn push_race(args: &BuildArgs) -> bool {
    let pushes = args.has("--push") || args.all("--output").iter().any(|o| o.contains("push=true"));
    let first = || {
        let marker = state_dir().join("fake-docker-push-race");
        let first = !marker.exists();
        std::fs::write(&marker, "").unwrap();
        first
    };
    if !pushes || !(failing("push-race-always") || (failing("push-race") && first())) {
        return false;
    }
    let tag = args.all("--tag").first().map_or("ghcr.io/codertocat/hello-world:latest", |t| t);
    let errors = "unknown: provided digest did not match uploaded content\nunknown: blob unknown to registry - sha256:b651c0148d02c5cc99f87d58bf68d26dc5ca40b2afb287f90e4a55312e7c661d";
    eprintln!("{errors}\n\nERROR: failed to build: failed to solve: failed to push {tag}: errors:\n{errors}");
    true
}

/// buildx reads `env=` secrets from its environment: whether each is there, by id.
fn secrets_present(args: &BuildArgs) -> Value {
    let mut secrets = serde_json::Map::new();
    for s in args.all("--secret") {
        let fields: BTreeMap<&str, &str> = s.split(',').filter_map(|f| f.split_once('=')).collect();
        let id = fields.get("id").copied().unwrap_or_default();
        let present = match (fields.get("env"), fields.get("src")) {
            (Some(env), _) => std::env::var(env).is_ok_and(|v| !v.is_empty()),
            (None, Some(src)) => Path::new(src.trim_matches('"')).is_file(),
            _ => std::env::var(id).is_ok(),
        };
        secrets.insert(id.to_string(), json!(present));
    }
    Value::Object(secrets)
}

/// The `cancel` scenario: a step that runs until the job is cancelled (SIGINT/SIGTERM), then
/// ends as buildx does.
fn cancelled(mut call: Call, replay: &mut Replay, lines: &[String]) -> ExitCode {
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    for l in lines.iter().take_while(|l| !l.starts_with("#6 ")) {
        replay.line(l);
    }
    replay.line("#6 [2/4] RUN sleep 600");
    for _ in 0..600 {
        if SIGNAL.load(Ordering::SeqCst) != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sig = SIGNAL.load(Ordering::SeqCst);
    call.set("signal", json!(sig));
    replay.line("#6 CANCELED");
    eprintln!("ERROR: failed to build: failed to solve: Canceled: context canceled");
    call.finish(if sig == 0 { 2 } else { 1 })
}

/// The metadata file buildx writes, shaped like the captured ones, after what the build pushed.
fn write_metadata(
    path: &Path,
    (args, requested): (&BuildArgs, &[&str]),
    cache_written: bool,
    stores: Option<&[(String, String)]>,
) {
    let multi = args.all("--platform").iter().flat_map(|p| p.split(',')).count() > 1;
    let mut meta: Value = serde_json::from_str(if multi { META_MULTI } else { META_SINGLE }).unwrap();
    let m = meta.as_object_mut().unwrap();
    if let Some(dest) = args
        .all("--output")
        .iter()
        .find_map(|o| o.contains("type=oci").then(|| o.split(',').find_map(|f| f.strip_prefix("dest=")))?)
    {
        sdi::oci::write_layout(Path::new(dest), &real_image(args, requested)).unwrap();
    }
    push(m, (args, requested), stores);
    if !cache_written {
        m.remove("cache.manifest");
    } else if !m.contains_key("cache.manifest") {
        m.insert("cache.manifest".into(), json!("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:630ac3442c2f843500e06ea238e8eaaf21dbb588586095be8ea8a7f1fda0c610\",\"size\":1561}"));
    }
    if std::env::var("BUILDX_METADATA_WARNINGS").as_deref() == Ok("true")
        && std::env::var("FAKE_DOCKER_WARNINGS").is_ok()
    {
        let short = base64::engine::general_purpose::STANDARD
            .encode("FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)");
        m.insert(
            "buildx.build.warnings".into(),
            json!([{ "vertex": digest(1), "level": 1, "short": short, "url": "https://docs.docker.com/go/dockerfile/rule/from-as-casing/", "sourceInfo": { "filename": "Dockerfile" }, "range": [{ "start": { "line": 1 }, "end": { "line": 1 } }] }]),
        );
    }
    std::fs::write(path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
}
