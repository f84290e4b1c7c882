//! The container the action runs in, and BuildKit started from its image, as the Docker CLI
//! answers for them (`container inspect --format`, `run --detach`, `rm --force`).
//!
//! Environment:
//! - `FAKE_DOCKER_ACTION_CONTAINER`: `<container>=<label>`: the action runs in that container,
//!   whose image carries `dev.sdi.buildkit.version=<label>` (empty: no such label).
//! - `FAKE_DOCKER_ACTION_MOUNTS`: that container's mounts, as `docker inspect` lists them
//!   (JSON); by default the runner's `RUNNER_TEMP`, bind-mounted from `/home/runner/work/_temp`.
//!   BuildKit's socket appears at the path its container's `/run/buildkit` bind mount has in the
//!   action's container, and goes with its container.
//! - `FAKE_DOCKER_FAIL=run-buildkit`: its BuildKit does not start.
//! - `FAKE_DOCKER_BUILDKIT_LISTENS_MS`: its socket appears that long after the container started.
//! - `FAKE_DOCKER_SCENARIO=cancel-inspect`: asking for the action's container hangs until the
//!   job is cancelled (it writes `FAKE_DOCKER_STAMP` first).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Map, Value, json};

use super::Call;
use super::builders::{containers, failing, save_containers};
use super::state_dir;

/// The sockets of the BuildKit containers started here, by container name.
fn sockets() -> Map<String, Value> {
    let file = state_dir().join("fake-docker-sockets.json");
    std::fs::read_to_string(file).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn save_sockets(sockets: &Map<String, Value>) {
    std::fs::write(state_dir().join("fake-docker-sockets.json"), Value::Object(sockets.clone()).to_string()).unwrap();
}

/// The ID of the action's image in the fake daemon.
pub const ACTION_IMAGE: &str = "sha256:5d1a0c7e9f1b3a2c4e6d8f0a1b3c5e7d9f0a2b4c6e8d0f1a3b5c7e9d1f3a5b7c";

fn action_container() -> Option<(String, String)> {
    let v = std::env::var("FAKE_DOCKER_ACTION_CONTAINER").ok()?;
    let (name, label) = v.split_once('=')?;
    Some((name.to_string(), label.to_string()))
}

/// Where the fake daemon's host keeps the runner's temporary directory.
const HOST_TEMP: &str = "/home/runner/work/_temp";

fn action_mounts() -> Value {
    if let Ok(json) = std::env::var("FAKE_DOCKER_ACTION_MOUNTS") {
        return serde_json::from_str(&json).expect("FAKE_DOCKER_ACTION_MOUNTS is JSON");
    }
    let Ok(temp) = std::env::var("RUNNER_TEMP") else { return json!([]) };
    let temp = std::fs::canonicalize(&temp).map(|p| p.display().to_string()).unwrap_or(temp);
    json!([
        {"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "Mode": "", "RW": true, "Propagation": "rprivate"},
        {"Type": "bind", "Source": HOST_TEMP, "Destination": temp, "Mode": "", "RW": true, "Propagation": "rprivate"}
    ])
}

/// A host path as the action's container sees it, through its bind mounts.
fn in_action_container(host: &str) -> Option<PathBuf> {
    let mounts = action_mounts();
    mounts.as_array()?.iter().filter(|m| m["Type"] == "bind").find_map(|m| {
        let rest = Path::new(host).strip_prefix(m["Source"].as_str()?).ok()?;
        Some(Path::new(m["Destination"].as_str()?).join(rest))
    })
}

/// `container inspect --format '{{.Image}}|{{index .Config.Labels "…"}}|{{json .Mounts}}' NAME`,
/// for the action's own container; `None` for another format (a builder's container).
pub fn inspect(call: Call, rest: &[&str]) -> Option<ExitCode> {
    let [_, format, name] = rest else { return None };
    let label = format.strip_prefix("{{.Image}}|{{index .Config.Labels \"")?.strip_suffix("\"}}|{{json .Mounts}}")?;
    if std::env::var("FAKE_DOCKER_SCENARIO").is_ok_and(|s| s == "cancel-inspect") {
        return Some(hang_until_cancelled(call));
    }
    match action_container() {
        Some((own, version)) if own == *name => {
            let version = if label == "dev.sdi.buildkit.version" { version } else { String::new() };
            println!("{ACTION_IMAGE}|{version}|{}", action_mounts());
            Some(call.finish(0))
        }
        _ => {
            eprintln!("Error response from daemon: No such container: {name}");
            Some(call.finish(1))
        }
    }
}

/// `docker run --detach … --entrypoint /usr/bin/buildkitd-entrypoint IMAGE [flags]`: a running container named
/// as asked, from an image the daemon holds (`--pull never`).
pub fn run_buildkit(call: Call, rest: &[&str]) -> ExitCode {
    let value = |flag: &str| rest.windows(2).find(|w| w[0] == flag).map(|w| w[1]);
    let Some(pos) = rest.iter().position(|a| a.starts_with("sha256:")) else {
        eprintln!("fake docker: BuildKit is run from an image ID");
        return call.finish(127);
    };
    let (image, name) = (rest[pos], value("--name").unwrap_or_default());
    if value("--pull") != Some("never")
        || value("--entrypoint") != Some("/usr/bin/buildkitd-entrypoint")
        || !rest.contains(&"--privileged")
    {
        eprintln!("fake docker: unexpected BuildKit container {rest:?}");
        return call.finish(127);
    }
    // buildkitd listens at /run/buildkit/buildkitd.sock: only a bind mount there shares it.
    let socket_dir = rest.windows(2).find(|w| w[0] == "--mount").and_then(|w| {
        let fields: Vec<&str> = w[1].split(',').collect();
        (fields.contains(&"type=bind") && fields.contains(&"target=/run/buildkit"))
            .then(|| fields.iter().find_map(|f| f.strip_prefix("source=")))?
    });
    let Some(socket_dir) = socket_dir else {
        eprintln!("fake docker: BuildKit's socket directory is not bind-mounted: {rest:?}");
        return call.finish(127);
    };
    if image != ACTION_IMAGE {
        eprintln!(
            "docker: Error response from daemon: No such image: {image}\n\nRun 'docker run --help' for more information"
        );
        return call.finish(125);
    }
    let mut list = containers();
    if list.iter().any(|(n, _)| n == name) {
        eprintln!(
            "docker: Error response from daemon: Conflict. The container name \"/{name}\" is already in use by container \"0123\". You have to remove (or rename) that container to be able to reuse that name.\n\nRun 'docker run --help' for more information"
        );
        return call.finish(125);
    }
    if failing("run-buildkit") {
        eprintln!(
            "docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting \"/var/lib/docker/volumes/0123/_data\" to rootfs at \"/var/lib/buildkit\": no space left on device: unknown.\n\nRun 'docker run --help' for more information"
        );
        return call.finish(127);
    }
    list.push((name.to_string(), true));
    save_containers(&list);
    // Its socket, where the action's container sees the host directory (if it does).
    if let Some(dir) = in_action_container(socket_dir).filter(|d| d.is_dir()) {
        let socket = dir.join("buildkitd.sock");
        listen(&socket);
        let mut sockets = sockets();
        sockets.insert(name.to_string(), json!(socket));
        save_sockets(&sockets);
    }
    println!("{}", "4e".repeat(32));
    call.finish(0)
}

/// BuildKit's socket appears when it listens: at once, or `FAKE_DOCKER_BUILDKIT_LISTENS_MS`
/// after the container started (as a real buildkitd, which the daemon does not wait for).
#[expect(
    clippy::zombie_processes,
    reason = "this fake exits at once: the delayed writer is reparented, not left a zombie"
)]
fn listen(socket: &Path) {
    match std::env::var("FAKE_DOCKER_BUILDKIT_LISTENS_MS").ok().and_then(|ms| ms.parse::<u64>().ok()) {
        Some(ms) => {
            let script = format!("sleep {}; : > \"$0\"", ms as f64 / 1000.0);
            // Detached from the CLI's output, which its caller reads to the end.
            let null = std::process::Stdio::null;
            let mut sh = std::process::Command::new("sh");
            sh.args(["-c", &script]).arg(socket).stdin(null()).stdout(null()).stderr(null());
            sh.spawn().unwrap();
        }
        None => std::fs::write(socket, "").unwrap(),
    }
}

/// `docker rm --force --volumes NAME`: gone, and no error for one already gone.
pub fn remove(call: Call, rest: &[&str]) -> ExitCode {
    let mut list = containers();
    let names: Vec<&str> = rest.iter().copied().filter(|a| !a.starts_with('-')).collect();
    list.retain(|(n, _)| !names.contains(&n.as_str()));
    save_containers(&list);
    let mut sockets = sockets();
    for n in &names {
        if let Some(path) = sockets.remove(*n).and_then(|p| p.as_str().map(PathBuf::from)) {
            let _ = std::fs::remove_file(path);
        }
    }
    save_sockets(&sockets);
    for n in names {
        println!("{n}");
    }
    call.finish(0)
}

/// A call that waits for SIGINT or SIGTERM (at most 30 s), as one to a daemon that does not
/// answer, and ends as the CLI does when interrupted.
fn hang_until_cancelled(mut call: Call) -> ExitCode {
    use std::sync::atomic::Ordering;
    unsafe {
        libc::signal(libc::SIGINT, super::on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, super::on_signal as *const () as libc::sighandler_t);
    }
    if let Ok(path) = std::env::var("FAKE_DOCKER_STAMP") {
        std::fs::write(path, "inspect\n").unwrap();
    }
    for _ in 0..600 {
        if super::SIGNAL.load(Ordering::SeqCst) != 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    call.set("signal", serde_json::json!(super::SIGNAL.load(Ordering::SeqCst)));
    call.finish(1)
}
