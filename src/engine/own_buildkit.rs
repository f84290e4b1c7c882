//! A builder started from the action's own image. The runner pulled that image at "Set up job",
//! and it carries the pinned BuildKit (buildkitd, runc, QEMU emulators), so a run pulls nothing
//! for its builder: no `moby/buildkit` from Docker Hub, no pull limit, no second 60 MB. The
//! image is found through the container the action runs in, and used only when its label says
//! it carries the BuildKit this binary pins and BuildKit's socket can be shared with it through
//! a directory the runner bind-mounts (the run's private directory under `RUNNER_TEMP`): buildx
//! then dials that socket, with no `docker exec` per connection and no `buildctl` in the image.
//! Anywhere else (the binary on a host, another image, nothing mounted) the builder is buildx's
//! docker-container one on the pinned `moby/buildkit`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::docker::{Docker, Failure, Signals};

/// The label the action image carries: the BuildKit release inside it (`Dockerfile`).
pub const LABEL: &str = "dev.sdi.buildkit.version";

/// Where BuildKit keeps its state: a volume of the container's own (overlayfs cannot stack
/// on the container's root), removed with it.
const STATE_DIR: &str = "/var/lib/buildkit";

/// Names the container the action runs in when `/proc/self/mountinfo` does not tell (a runtime
/// that mounts its files elsewhere); set and empty, none (tests of the shell on any machine).
const CONTAINER_VAR: &str = "SDI_OWN_CONTAINER";

/// The container this process runs in: Docker (and Podman) bind-mount `hostname`, `hosts` and
/// `resolv.conf` from the container's own directory, named by its 64-hex ID.
pub fn container_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let root = fields.nth(3)?;
        let target = fields.next()?;
        if !["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].contains(&target) {
            return None;
        }
        root.split('/').find(|part| part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit())).map(str::to_string)
    })
}

/// The container this process runs in, if any: named by `SDI_OWN_CONTAINER`, else read from
/// `/proc/self/mountinfo`.
fn own_container() -> Option<String> {
    match std::env::var(CONTAINER_VAR) {
        Ok(named) => Some(named).filter(|n| !n.is_empty()),
        Err(_) => container_id(&std::fs::read_to_string("/proc/self/mountinfo").ok()?),
    }
}

/// One of the action container's mounts, as `docker container inspect` lists them.
#[derive(Debug, Clone, Deserialize)]
pub struct Mount {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Source")]
    source: PathBuf,
    #[serde(rename = "Destination")]
    destination: PathBuf,
    #[serde(rename = "RW")]
    rw: bool,
}

/// Where `path` (a path in the action's container) is on the daemon's host: through the
/// writable bind mount nearest to it. `None` when no such mount holds it (the container's own
/// filesystem, a volume, a read-only mount).
pub fn host_path(mounts: &[Mount], path: &Path) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|m| m.kind == "bind" && m.rw)
        .filter_map(|m| Some((m, path.strip_prefix(&m.destination).ok()?)))
        .max_by_key(|(m, _)| m.destination.components().count())
        .map(|(m, rest)| if rest.as_os_str().is_empty() { m.source.clone() } else { m.source.join(rest) })
}

/// Where BuildKit listens in its container (buildkitd's default address).
const SOCKET_DIR: &str = "/run/buildkit";
const SOCKET: &str = "buildkitd.sock";

/// A unix socket path must fit `sockaddr_un` (108 bytes with its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// The directory BuildKit's socket is shared through: as this process sees it, and as the
/// daemon's host does (what BuildKit's container mounts at `/run/buildkit`).
#[derive(Debug, Clone, PartialEq)]
pub struct SocketDir {
    pub ours: PathBuf,
    pub host: PathBuf,
}

impl SocketDir {
    /// `dir/buildkit`, when a writable bind mount holds `dir` and the socket's path fits.
    pub fn under(mounts: &[Mount], dir: &Path) -> Option<SocketDir> {
        let ours = dir.join("buildkit");
        let host = host_path(mounts, &ours)?;
        (ours.join(SOCKET).as_os_str().len() <= SOCKET_PATH_MAX).then_some(SocketDir { ours, host })
    }

    /// The endpoint buildx dials.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.ours.join(SOCKET).display())
    }
}

/// The action's own image, by ID, and the directory its BuildKit's socket is shared through.
pub(crate) struct Own {
    pub image: String,
    pub socket: SocketDir,
}

/// The action's own image, when it carries the pinned BuildKit and `dir` (the run's private
/// directory) is on a bind mount of the runner's. Every miss falls back to the pinned
/// `moby/buildkit`, said in the debug log only: the build runs either way.
/// `Err`: the job was cancelled while the daemon was asked.
pub(crate) async fn image(docker: &mut Docker, signals: &mut Signals, dir: &Path) -> Result<Option<Own>, i32> {
    let Some(container) = own_container() else { return Ok(None) };
    let (image, version, mounts) = match super::containers::own_facts(docker, signals, &container, LABEL).await {
        Ok(facts) => facts,
        Err(Failure::Failed(cause)) => {
            tracing::debug!(%container, %cause, "the action's own container cannot be inspected");
            return Ok(None);
        }
        Err(Failure::Cancelled(sig)) => return Err(sig),
    };
    if version != crate::pins::BUILDKIT_VERSION || !image.starts_with("sha256:") {
        tracing::debug!(%image, %version, "the action's own image does not carry the pinned BuildKit");
        return Ok(None);
    }
    let mounts: Vec<Mount> = serde_json::from_str(&mounts).unwrap_or_else(|e| {
        tracing::debug!(%e, "the action container's mounts cannot be read");
        Vec::new()
    });
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let Some(socket) = SocketDir::under(&mounts, &dir) else {
        tracing::debug!(dir = %dir.display(), "no bind mount of the runner's holds the run's directory: BuildKit's socket cannot be shared");
        return Ok(None);
    };
    Ok(Some(Own { image, socket }))
}

/// `docker run` of BuildKit from `image` as `container`: privileged and through the BuildKit
/// image's own entrypoint, as buildx runs its docker-container builders, with an init to reap
/// what steps leave, never pulled (it is an image ID), listening in the shared socket
/// directory, and given only the entitlements the plan grants.
pub fn run_args(image: &str, container: &str, socket_host: &Path, flags: &[String]) -> Vec<String> {
    let bind = crate::context::inputs::csv_field(&format!("source={}", socket_host.display()));
    let mut args: Vec<String> = ["run", "--detach", "--privileged", "--init", "--pull", "never", "--name", container]
        .map(String::from)
        .to_vec();
    args.extend(["--volume", STATE_DIR, "--mount"].map(String::from));
    args.push(format!("type=bind,{bind},target={SOCKET_DIR}"));
    args.extend(["--entrypoint", crate::pins::BUILDKIT_ENTRYPOINT, image].map(String::from));
    for e in flags {
        args.extend(["--allow-insecure-entitlement".to_string(), e.clone()]);
    }
    args
}

/// Starts BuildKit from the action's image in `container`, its socket in a directory of the
/// run's own (0700: nobody else on the runner dials it).
pub(crate) async fn start(
    docker: &mut Docker,
    signals: &mut Signals,
    own: &Own,
    container: &str,
    entitlements: &[String],
) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&own.socket.ours)
        .map_err(|e| Failure::Failed(format!("cannot create {}: {e}", own.socket.ours.display())))?;
    if docker.api.is_some() {
        let body = create_body(&own.image, &own.socket.host, entitlements);
        super::containers::create_and_start(docker, signals, container, &body).await?;
    } else {
        let args = run_args(&own.image, container, &own.socket.host, entitlements);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker.run(&args, None, signals).await?;
    }
    listening(signals, &own.socket.ours.join(SOCKET)).await
}

/// How long BuildKit gets to listen before buildx's own wait (20 s) takes over, to say why it
/// does not: it listens within a few hundredths of a second here.
const LISTEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until BuildKit listens: its socket appears in the run's new directory when it does
/// (Go's `net.Listen` binds and listens at once). buildx's bootstrap polls a BuildKit that is
/// not up yet once a second (BuildKit's `Client.Wait`): a container just started costs a whole
/// second there, where BuildKit itself needs a fraction of one.
async fn listening(signals: &mut Signals, socket: &Path) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    while started.elapsed() < LISTEN_WAIT {
        if socket.exists() {
            tracing::debug!("BuildKit listens after {:.2} s", started.elapsed().as_secs_f64());
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
            sig = signals.recv() => return Err(Failure::Cancelled(sig)),
        }
    }
    Ok(())
}

/// `run_args` as the Engine API takes it: the same container, created then started.
pub fn create_body(image: &str, socket_host: &Path, flags: &[String]) -> serde_json::Value {
    let cmd: Vec<&str> = flags.iter().flat_map(|e| ["--allow-insecure-entitlement", e.as_str()]).collect();
    serde_json::json!({
        "Image": image,
        "Entrypoint": [crate::pins::BUILDKIT_ENTRYPOINT],
        "Cmd": cmd,
        "Volumes": {STATE_DIR: {}},
        "HostConfig": {
            "Privileged": true,
            "Init": true,
            "Mounts": [{"Type": "bind", "Source": socket_host, "Target": SOCKET_DIR}],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ed4ec7b42ce410c4e232f727bd043e7794c4fb2ca8e83f376bf6f1d1d04069f0";

    #[test]
    fn the_container_is_read_from_the_files_docker_mounts_into_it() {
        // Captured in a container of the harness's Docker 20.10 (data-root moved).
        let docker = format!(
            "79 60 0:52 / / rw,relatime master:31 - overlay overlay rw,lowerdir=/x\n96 79 254:0 /work/harness/dockerd/data/containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw\n97 79 254:0 /work/harness/dockerd/data/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id(&docker).as_deref(), Some(ID));
        let podman = format!(
            "120 99 0:30 /containers/storage/overlay-containers/{ID}/userdata/hosts /etc/hosts rw - tmpfs tmpfs rw\n"
        );
        assert_eq!(container_id(&podman).as_deref(), Some(ID));
        // A host (a runner VM): its /etc files are its own; a 64-hex name elsewhere is no container.
        let host = format!(
            "25 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw\n30 25 0:5 /cache/{ID} /mnt rw - ext4 /dev/vdb rw\n"
        );
        assert_eq!(container_id(&host), None);
    }

    #[test]
    fn buildkit_runs_privileged_from_the_image_id_with_the_plans_entitlements_only() {
        let flags = vec!["security.insecure".to_string()];
        let host = Path::new("/home/runner/work/_temp/sdi-Ab1/buildkit");
        assert_eq!(
            run_args("sha256:abc", "sdi-1-ab-buildkit", host, &flags),
            [
                "run",
                "--detach",
                "--privileged",
                "--init",
                "--pull",
                "never",
                "--name",
                "sdi-1-ab-buildkit",
                "--volume",
                "/var/lib/buildkit",
                "--mount",
                "type=bind,source=/home/runner/work/_temp/sdi-Ab1/buildkit,target=/run/buildkit",
                "--entrypoint",
                "/usr/bin/buildkitd-entrypoint",
                "sha256:abc",
                "--allow-insecure-entitlement",
                "security.insecure"
            ]
        );
        assert!(!run_args("sha256:abc", "c", host, &[]).iter().any(|a| a.contains("entitlement")));
        // A host path with a comma stays one field of --mount's CSV.
        let odd = run_args("sha256:abc", "c", Path::new("/srv/a,b"), &[]);
        assert!(odd.contains(&"type=bind,\"source=/srv/a,b\",target=/run/buildkit".to_string()), "{odd:?}");
    }

    #[test]
    fn the_engine_api_creates_the_same_container_as_docker_run() {
        let host = Path::new("/home/runner/work/_temp/sdi-Ab1/buildkit");
        let body = create_body("sha256:abc", host, &["security.insecure".to_string()]);
        assert_eq!(
            body,
            serde_json::json!({
                "Image": "sha256:abc",
                "Entrypoint": ["/usr/bin/buildkitd-entrypoint"],
                "Cmd": ["--allow-insecure-entitlement", "security.insecure"],
                "Volumes": {"/var/lib/buildkit": {}},
                "HostConfig": {
                    "Privileged": true,
                    "Init": true,
                    "Mounts": [{"Type": "bind", "Source": "/home/runner/work/_temp/sdi-Ab1/buildkit", "Target": "/run/buildkit"}]
                }
            })
        );
        assert_eq!(create_body("sha256:abc", host, &[])["Cmd"], serde_json::json!([]));
    }

    /// The mounts of a container action as the runner starts it (`docker inspect`, abridged).
    fn runner_mounts() -> Vec<Mount> {
        serde_json::from_str(
            r#"[
            {"Type":"bind","Source":"/var/run/docker.sock","Destination":"/var/run/docker.sock","Mode":"","RW":true,"Propagation":"rprivate"},
            {"Type":"bind","Source":"/home/runner/work/_temp","Destination":"/github/runner_temp","Mode":"","RW":true,"Propagation":"rprivate"},
            {"Type":"bind","Source":"/home/runner/work/_temp/_github_home","Destination":"/github/home","Mode":"","RW":true,"Propagation":"rprivate"},
            {"Type":"bind","Source":"/home/runner/work/_temp/_github_workflow","Destination":"/github/workflow","Mode":"","RW":false,"Propagation":"rprivate"},
            {"Type":"volume","Name":"0123","Source":"/var/lib/docker/volumes/0123/_data","Destination":"/cache","Driver":"local","Mode":"","RW":true,"Propagation":""}
        ]"#,
        )
        .unwrap()
    }

    #[test]
    fn the_socket_is_shared_through_the_bind_mount_that_holds_the_runs_directory() {
        let mounts = runner_mounts();
        let at = |p: &str| host_path(&mounts, Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(at("/github/runner_temp/sdi-x").as_deref(), Some("/home/runner/work/_temp/sdi-x"));
        assert_eq!(at("/github/runner_temp").as_deref(), Some("/home/runner/work/_temp"));
        // The nearest mount wins; a prefix of a name is no parent.
        assert_eq!(at("/github/home/d").as_deref(), Some("/home/runner/work/_temp/_github_home/d"));
        assert_eq!(at("/github/runner_temp2/d"), None);
        // Read-only, a volume, the container's own filesystem: nothing to share through.
        assert_eq!(at("/github/workflow/d"), None);
        assert_eq!(at("/cache/d"), None);
        assert_eq!(at("/tmp/sdi-x"), None);

        let dir = SocketDir::under(&mounts, Path::new("/github/runner_temp/sdi-Ab1")).unwrap();
        assert_eq!(dir.host, Path::new("/home/runner/work/_temp/sdi-Ab1/buildkit"));
        assert_eq!(dir.endpoint(), "unix:///github/runner_temp/sdi-Ab1/buildkit/buildkitd.sock");
        assert_eq!(SocketDir::under(&mounts, Path::new("/tmp/sdi-Ab1")), None);
        let deep = format!("/github/runner_temp/{}", "d".repeat(80));
        assert_eq!(SocketDir::under(&mounts, Path::new(&deep)), None, "a socket path longer than sockaddr_un");
    }
}
