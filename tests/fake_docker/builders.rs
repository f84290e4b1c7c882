//! Builders and the daemon's containers, as buildx and the docker CLI keep and report them:
//! instance records under `$DOCKER_CONFIG/buildx/instances`, the built-in `default` builder
//! (docker driver), the remote driver's endpoint and TLS rules (buildx's driver/remote
//! factory), `buildx inspect`'s output, containers on the daemon, and QEMU registration.
//!
//! Environment:
//! - `FAKE_DOCKER_PLATFORMS`: what `buildx inspect` reports (default: an amd64 host).
//! - `FAKE_DOCKER_CONTAINERS`: containers on the daemon, `name=running|exited` comma-separated
//!   (a `docker start` is remembered).
//! - `FAKE_DOCKER_ENDPOINTS`: `tcp://` endpoints that answer, comma-separated.
//! - `FAKE_DOCKER_CONTAINERD_STORE=1`: the daemon uses the containerd image store.
//! - `FAKE_DOCKER_FAIL=<kind>`: that call fails as the real one does, cause line first and the
//!   CLI's trailer after it: `create`, `inspect`, `binfmt`, `container-inspect`, `start`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Call, state_dir};

pub const DEFAULT_PLATFORMS: &str = "linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/386";

/// Whether the test asked this kind of call to fail.
pub fn failing(kind: &str) -> bool {
    std::env::var("FAKE_DOCKER_FAIL").is_ok_and(|k| k.split(',').any(|k| k == kind))
}

/// Where buildx keeps builder instances: `$DOCKER_CONFIG/buildx/instances/<name>`.
fn instances_dir() -> PathBuf {
    let config = std::env::var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".docker"));
    config.join("buildx").join("instances")
}

/// A builder's record as buildx keeps it; `default` always exists (the docker driver).
pub fn instance(name: &str) -> Option<Value> {
    if name == "default" {
        return Some(
            json!({"Name": "default", "Driver": "docker", "Nodes": [{"Name": "default", "Endpoint": "default"}]}),
        );
    }
    let text = std::fs::read_to_string(instances_dir().join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The driver of a known builder, read from its record as buildx does.
pub fn builder_driver(name: &str) -> Option<String> {
    Some(instance(name)?["Driver"].as_str().unwrap_or_default().to_string())
}

fn platforms() -> Vec<String> {
    let mut list: Vec<String> = std::env::var("FAKE_DOCKER_PLATFORMS")
        .unwrap_or_else(|_| DEFAULT_PLATFORMS.into())
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Ok(t) = std::fs::read_to_string(state_dir().join("fake-docker-binfmt")) {
        list.extend(t.lines().map(str::to_string));
    }
    list
}

/// The daemon's containers: name → running.
pub fn containers() -> Vec<(String, bool)> {
    let file = state_dir().join("fake-docker-containers.json");
    if let Some(v) = std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str(&t).ok()) {
        return v;
    }
    std::env::var("FAKE_DOCKER_CONTAINERS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|c| c.split_once('='))
        .map(|(n, s)| (n.trim().to_string(), s.trim() == "running"))
        .collect()
}

pub fn save_containers(list: &[(String, bool)]) {
    std::fs::write(state_dir().join("fake-docker-containers.json"), serde_json::to_string(list).unwrap()).unwrap();
}

/// `docker container inspect --format {{.State.Running}} NAME`.
pub fn container_inspect(call: Call, rest: &[&str]) -> ExitCode {
    let name = rest.last().copied().unwrap_or_default();
    if !rest.windows(2).any(|w| w == ["--format", "{{.State.Running}}"]) {
        eprintln!("fake docker: only `container inspect --format {{{{.State.Running}}}} NAME` is supported");
        return call.finish(127);
    }
    if failing("container-inspect") {
        eprintln!("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?");
        return call.finish(1);
    }
    match containers().into_iter().find(|(n, _)| n == name) {
        Some((_, running)) => {
            println!("{running}");
            call.finish(0)
        }
        None => {
            eprintln!("Error response from daemon: No such container: {name}");
            call.finish(1)
        }
    }
}

/// `docker start NAME`: the daemon's cause, then the CLI's own trailer.
pub fn start(call: Call, rest: &[&str]) -> ExitCode {
    let name = rest.last().copied().unwrap_or_default();
    let mut list = containers();
    let Some(entry) = list.iter_mut().find(|(n, _)| n == name) else {
        eprintln!("Error response from daemon: No such container: {name}");
        eprintln!("Error: failed to start containers: {name}");
        return call.finish(1);
    };
    if failing("start") {
        eprintln!(
            "Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: unable to start container process: error mounting \"/var/lib/buildkit\": no space left on device"
        );
        eprintln!("Error: failed to start containers: {name}");
        return call.finish(1);
    }
    entry.1 = true;
    save_containers(&list);
    println!("{name}");
    call.finish(0)
}

fn container_running(name: &str) -> bool {
    containers().iter().any(|(n, running)| n == name && *running)
}

/// Driver options as buildx's remote factory checks them.
fn remote_options(opts: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for opt in opts {
        for field in sdi::dockerfile::csv_fields(opt) {
            let (k, v) = field.split_once('=').ok_or(format!("invalid value {field}"))?;
            match k {
                "servername" => {}
                "cacert" | "cert" | "key" if !v.starts_with('/') => {
                    return Err(format!("non-absolute path '{v}' provided for {k}"));
                }
                "cacert" | "cert" | "key" => {}
                other => return Err(format!("invalid driver option {other} for remote driver")),
            }
            out.push((k.to_string(), v.to_string()));
        }
    }
    let has = |k: &str| out.iter().any(|(n, _)| n == k);
    if !out.is_empty() {
        let mut missing = Vec::new();
        if !has("cacert") {
            missing.push("cacert");
        }
        if has("cert") != has("key") {
            missing.push(if has("cert") { "key" } else { "cert" });
        }
        if !missing.is_empty() {
            return Err(format!("tls enabled, but missing keys {}", missing.join(", ")));
        }
    }
    Ok(out)
}

pub fn create(mut call: Call, rest: &[&str]) -> ExitCode {
    let (mut name, mut driver, mut opts, mut endpoint) = (None, "docker-container".to_string(), Vec::new(), None);
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "--name" => {
                name = rest.get(i + 1).map(|s| s.to_string());
                i += 1;
            }
            "--driver" => {
                driver = rest.get(i + 1).map(|s| s.to_string()).unwrap_or_default();
                i += 1;
            }
            "--driver-opt" => {
                opts.push(rest.get(i + 1).map(|s| s.to_string()).unwrap_or_default());
                i += 1;
            }
            "--bootstrap" | "--use" => {}
            "--buildkitd-flags" | "--platform" => i += 1,
            other if other.starts_with('-') => {
                eprintln!("ERROR: unknown flag: {other}");
                return call.finish(1);
            }
            other => endpoint = Some(other.to_string()),
        }
        i += 1;
    }
    let name = name.unwrap_or_else(|| "fake_builder".into());
    if builder_driver(&name).is_some() {
        eprintln!("ERROR: existing instance for \"{name}\" but no append mode");
        return call.finish(1);
    }
    let endpoint = match driver.as_str() {
        "remote" => match remote_endpoint(&mut call, endpoint, &opts) {
            Ok(ep) => ep,
            Err(why) => {
                eprintln!("ERROR: {why}");
                return call.finish(1);
            }
        },
        _ => "unix:///var/run/docker.sock".to_string(),
    };
    if failing("create") {
        eprintln!("#1 [internal] booting buildkit");
        eprintln!("#1 pulling image moby/buildkit:buildx-stable-1");
        eprintln!("#1 ERROR: Error response from daemon: toomanyrequests: You have reached your pull rate limit.");
        eprintln!("------\n > [internal] booting buildkit:\n------");
        eprintln!("ERROR: Error response from daemon: toomanyrequests: You have reached your pull rate limit.");
        return call.finish(1);
    }
    let instance = json!({"Name": name, "Driver": driver, "Nodes": [{"Name": format!("{name}0"), "Endpoint": endpoint, "DriverOpts": opts}], "Dynamic": false});
    std::fs::create_dir_all(instances_dir()).unwrap();
    std::fs::write(instances_dir().join(&name), instance.to_string()).unwrap();
    println!("{name}");
    call.finish(0)
}

/// A remote builder's endpoint as buildx's remote factory checks it, with its options; for a
/// socket, whether BuildKit listened when buildx was asked (its bootstrap would otherwise poll
/// once a second).
fn remote_endpoint(call: &mut Call, endpoint: Option<String>, opts: &[String]) -> Result<String, String> {
    let ep = endpoint.ok_or("remote driver requires an endpoint")?;
    let scheme = ep.split_once("://").map(|(s, _)| s).unwrap_or_default();
    if !["docker-container", "kube-pod", "npipe", "ssh", "tcp", "unix"].contains(&scheme) {
        return Err(format!("failed to find driver \"remote\": unrecognized url scheme {scheme}"));
    }
    remote_options(opts)?;
    if let Some(path) = ep.strip_prefix("unix://") {
        call.set("endpoint_listening", json!(Path::new(path).exists()));
    }
    Ok(ep)
}

/// Why a remote builder's BuildKit cannot be reached, as buildx words it; `None` if it can.
pub fn unreachable(instance: &Value) -> Option<String> {
    if instance["Driver"] != "remote" {
        return None;
    }
    let node = &instance["Nodes"][0];
    let endpoint = node["Endpoint"].as_str().unwrap_or_default();
    let opts: Vec<String> = node["DriverOpts"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    for (k, path) in remote_options(&opts).unwrap_or_default() {
        if k != "servername" && !Path::new(&path).is_file() {
            return Some(format!("could not read certificate file {path}: open {path}: no such file or directory"));
        }
    }
    let (scheme, rest) = endpoint.split_once("://").unwrap_or_default();
    let reachable = match scheme {
        "docker-container" => container_running(rest),
        "unix" => Path::new(rest).exists(),
        "tcp" => std::env::var("FAKE_DOCKER_ENDPOINTS").is_ok_and(|e| e.split(',').any(|e| e == endpoint)),
        _ => false,
    };
    (!reachable).then(|| match scheme {
        "docker-container" => format!("Error response from daemon: No such container: {rest}"),
        _ => format!(
            "Unavailable: connection error: desc = \"transport: Error while dialing: dial {scheme} {rest}: connect: connection refused\""
        ),
    })
}

/// The TLS files a remote builder was given: option → `{path, mode, bytes}`, read at build time.
pub fn tls_files(instance: &Value) -> Value {
    use std::os::unix::fs::PermissionsExt;
    let opts: Vec<String> = instance["Nodes"][0]["DriverOpts"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    for (k, path) in remote_options(&opts).unwrap_or_default() {
        let meta = std::fs::metadata(&path).ok();
        let mode = meta.as_ref().map(|m| format!("{:o}", m.permissions().mode() & 0o777));
        out.insert(k, json!({"path": path, "mode": mode, "bytes": meta.map(|m| m.len())}));
    }
    Value::Object(out)
}

pub fn inspect(call: Call, rest: &[&str]) -> ExitCode {
    let name = rest.iter().find(|a| !a.starts_with('-')).copied().unwrap_or("default");
    let Some(instance) = instance(name) else {
        eprintln!("ERROR: no builder \"{name}\" found");
        return call.finish(1);
    };
    let driver = instance["Driver"].as_str().unwrap_or_default().to_string();
    let bootstrap = rest.contains(&"--bootstrap");
    let down = unreachable(&instance);
    if let (true, Some(why)) = (bootstrap, &down) {
        eprintln!("ERROR: {why}");
        return call.finish(1);
    }
    if failing("inspect") {
        eprintln!(
            "ERROR: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.47/containers/buildx_buildkit_{name}0/json\": context deadline exceeded"
        );
        return call.finish(1);
    }
    let endpoint = instance["Nodes"][0]["Endpoint"].as_str().unwrap_or_default().to_string();
    let mut out = std::io::stdout().lock();
    let _ =
        writeln!(out, "Name:          {name}\nDriver:        {driver}\nLast Activity: 2026-11-28 00:00:00 +0000 UTC\n");
    let _ = writeln!(
        out,
        "Nodes:\nName:                  {}\nEndpoint:              {endpoint}",
        instance["Nodes"][0]["Name"].as_str().unwrap_or(name)
    );
    if let Some(why) = down {
        // As buildx does for a node it cannot reach: an Error line, and exit 0.
        let _ = writeln!(out, "Error:                 {why}");
        return call.finish(0);
    }
    let _ = writeln!(out, "Status:                running\nBuildKit version:      v0.32.2");
    let _ = writeln!(out, "Platforms:             {}", platforms().join(", "));
    let _ = writeln!(
        out,
        "Labels:\n org.mobyproject.buildkit.worker.executor:         oci\n org.mobyproject.buildkit.worker.hostname:         {name}0"
    );
    if driver == "docker" && std::env::var("FAKE_DOCKER_CONTAINERD_STORE").is_ok() {
        let _ = writeln!(out, " org.mobyproject.buildkit.worker.snapshotter:      overlayfs");
    }
    call.finish(0)
}

pub fn remove(call: Call, rest: &[&str]) -> ExitCode {
    let Some(name) = rest.iter().find(|a| !a.starts_with('-')) else {
        eprintln!("ERROR: no builder name");
        return call.finish(1);
    };
    if std::fs::remove_file(instances_dir().join(name)).is_err() {
        eprintln!("ERROR: no builder \"{name}\" found");
        return call.finish(1);
    }
    eprintln!("{name} removed");
    call.finish(0)
}

/// `docker run --privileged --rm tonistiigi/binfmt --install <archs>`.
pub fn run(call: Call, rest: &[&str]) -> ExitCode {
    let Some(pos) = rest.iter().position(|a| a.starts_with("tonistiigi/binfmt")) else {
        eprintln!("fake docker: only `run … tonistiigi/binfmt --install` is supported");
        return call.finish(127);
    };
    if !rest[..pos].contains(&"--privileged") {
        eprintln!("installing: operation not permitted");
        return call.finish(1);
    }
    if failing("binfmt") {
        eprintln!("Unable to find image '{}' locally", rest[pos]);
        eprintln!(
            "docker: Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)."
        );
        eprintln!("Run 'docker run --help' for more information");
        return call.finish(125);
    }
    let archs = match &rest[pos + 1..] {
        ["--install", archs] => archs.split(',').map(str::to_string).collect::<Vec<_>>(),
        other => {
            eprintln!("fake docker: unsupported binfmt arguments {other:?}");
            return call.finish(127);
        }
    };
    let platforms: Vec<String> = archs
        .iter()
        .flat_map(|a| match a.as_str() {
            "arm" => vec!["linux/arm/v7".to_string(), "linux/arm/v6".to_string()],
            a => vec![format!("linux/{a}")],
        })
        .collect();
    let mut f =
        std::fs::OpenOptions::new().create(true).append(true).open(state_dir().join("fake-docker-binfmt")).unwrap();
    for p in &platforms {
        writeln!(f, "{p}").unwrap();
    }
    println!(
        "{}",
        json!({ "supported": platforms, "emulators": archs.iter().map(|a| format!("qemu-{a}")).collect::<Vec<_>>() })
    );
    call.finish(0)
}
