//! A builder started from the action's own image. The runner pulled that image at "Set up job",
//! and it carries the pinned BuildKit (buildkitd, buildctl, runc, QEMU emulators), so a run
//! pulls nothing for its builder: no `moby/buildkit` from Docker Hub, no pull limit, no second
//! 60 MB. The image is found through the container the action runs in, and used only when its
//! label says it carries the BuildKit this binary pins; anywhere else (the binary on a host,
//! another image) the builder is buildx's docker-container one on the pinned `moby/buildkit`.

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

/// The action's own image, by ID, when it carries the pinned BuildKit. Every miss falls back
/// to the pinned `moby/buildkit`, said in the debug log only: the build runs either way.
/// `Err`: the job was cancelled while the daemon was asked.
pub(super) async fn image(docker: &mut Docker, signals: &mut Signals) -> Result<Option<String>, i32> {
    let Some(container) = own_container() else { return Ok(None) };
    let format = format!("{{{{.Image}}}}|{{{{index .Config.Labels \"{LABEL}\"}}}}");
    let out = match docker.run(&["container", "inspect", "--format", &format, &container], None, signals).await {
        Ok(out) => out,
        Err(Failure::Failed(cause)) => {
            tracing::debug!(%container, %cause, "the action's own container cannot be inspected");
            return Ok(None);
        }
        Err(Failure::Cancelled(sig)) => return Err(sig),
    };
    let Some((image, version)) = out.trim().split_once('|') else { return Ok(None) };
    if version != crate::engine::BUILDKIT_VERSION || !image.starts_with("sha256:") {
        tracing::debug!(%image, %version, "the action's own image does not carry the pinned BuildKit");
        return Ok(None);
    }
    Ok(Some(image.to_string()))
}

/// `docker run` of BuildKit from `image` as `container`: privileged and through the BuildKit
/// image's own entrypoint, as buildx runs its docker-container builders, with an init to reap
/// what steps leave, never pulled (it is an image ID), and given only the entitlements the plan
/// grants.
pub fn run_args<'a>(image: &'a str, container: &'a str, flags: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["run", "--detach", "--privileged", "--init", "--pull", "never", "--name", container];
    args.extend(["--volume", STATE_DIR, "--entrypoint", crate::engine::BUILDKIT_ENTRYPOINT, image]);
    for e in flags {
        args.extend(["--allow-insecure-entitlement", e.as_str()]);
    }
    args
}

/// Starts BuildKit from `image` in `container`.
pub(super) async fn start(
    docker: &mut Docker,
    signals: &mut Signals,
    image: &str,
    container: &str,
    entitlements: &[String],
) -> Result<(), Failure> {
    docker.run(&run_args(image, container, entitlements), None, signals).await.map(drop)
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
        assert_eq!(
            run_args("sha256:abc", "sdi-1-ab-buildkit", &flags),
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
                "--entrypoint",
                "/usr/bin/buildkitd-entrypoint",
                "sha256:abc",
                "--allow-insecure-entitlement",
                "security.insecure"
            ]
        );
        assert!(!run_args("sha256:abc", "c", &[]).iter().any(|a| a.contains("entitlement")));
    }
}
