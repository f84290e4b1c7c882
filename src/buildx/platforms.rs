//! What the builder runs: its platforms checked against the request, with QEMU registered
//! where a RUN step needs it and nothing else emulates it, and whether the daemon can load
//! several platforms.

use super::builder::{Builder, failed, setup_failed};
use crate::context::{Context, Platform};
use crate::engine::docker::{Docker, Signals};
use crate::plan::{BuildPlan, BuilderPlan};
use crate::step::{Annotation, Outcome};

/// QEMU registration runs privileged on the host: pinned by digest.
pub const BINFMT_IMAGE: &str =
    "tonistiigi/binfmt:qemu-v10.2.3@sha256:400a4873b838d1b89194d982c45e5fb3cda4593fbfd7e08a02e76b03b21166f0";

/// What `docker buildx inspect` says of a builder.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inspected {
    pub driver: Option<String>,
    /// Over all nodes (`*` marks configured ones).
    pub platforms: Vec<String>,
    /// `Error:` lines: buildx prints them and still exits 0 for a node it cannot reach.
    pub errors: Vec<String>,
    /// The `docker` driver exports caches only with the containerd image store, whose worker
    /// carries this label.
    pub containerd_snapshotter: bool,
}

pub fn inspect_output(stdout: &str) -> Inspected {
    let mut out = Inspected::default();
    for line in stdout.lines() {
        let t = line.trim();
        if let Some(d) = t.strip_prefix("Driver:") {
            out.driver = Some(d.trim().to_string());
        } else if let Some(list) = t.strip_prefix("Platforms:") {
            out.platforms
                .extend(list.split(',').map(|p| p.trim().trim_end_matches('*').to_string()).filter(|p| !p.is_empty()));
        } else if let Some(e) = t.strip_prefix("Error:") {
            out.errors.push(e.trim().to_string());
        } else if t.starts_with("org.mobyproject.buildkit.worker.snapshotter:") {
            out.containerd_snapshotter = true;
        }
    }
    out
}

/// Platforms a `docker buildx inspect` lists, and its driver.
pub fn inspected_platforms(stdout: &str) -> (Option<String>, Vec<String>) {
    let i = inspect_output(stdout);
    (i.driver, i.platforms)
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

/// A builder made here on this host runs its native platforms for sure; any other builder, or
/// request, is inspected. A missing platform matters only if a RUN step executes on it: then
/// QEMU is registered (docker-container builders) or the run fails naming it.
pub(super) async fn check(
    ctx: &Context,
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    builder: &mut Builder,
    annotations: &mut Vec<Annotation>,
) -> Result<(), Outcome> {
    let native = native_platforms();
    builder.native = native.first().map(|p| p.to_string());
    if builder.fresh && plan.platforms.iter().all(|p| native.contains(&p.as_str())) {
        return Ok(());
    }
    // A Dockerfile that cannot be read here (a remote context) counts as needing emulation.
    let needs_emulation = ctx.dockerfile.as_deref().is_none_or(crate::dockerfile::runs_on_target_platform);
    let name = builder.name.clone();
    let mut installed = false;
    loop {
        let found = inspect_builder(plan, docker, signals, builder).await?;
        let missing = missing_platforms(&ctx.inputs.platforms, &found.platforms);
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
        if !needs_emulation {
            annotations.push(Annotation::notice(format!(
                "Builder '{}' has no emulation for {}; the Dockerfile runs every RUN step on $BUILDPLATFORM, so none is needed.",
                shown(plan, &name),
                names.join(", ")
            )));
            return Ok(());
        }
        // The image's own emulators serve a builder started from it: nothing to register.
        let missing = match builder.container {
            Some(_) => without_image_emulators(missing, &name, (annotations, !installed)),
            None => missing,
        };
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
        // QEMU registered on the host serves a builder in a container on it: buildx's, or the
        // one started from the action's image for a platform its emulators do not cover.
        let on_this_host = found.driver.as_deref() == Some("docker-container") || builder.container.is_some();
        if installed || !on_this_host {
            return Err(setup_failed(format!(
                "builder '{}' does not support {} (it lists {}), and the Dockerfile runs steps on those platforms: use a builder for them, build them on $BUILDPLATFORM, or drop them from `platforms`",
                shown(plan, &name),
                names.join(", "),
                found.platforms.join(", ")
            )));
        }
        register_qemu(docker, signals, &missing, annotations).await?;
        installed = true;
    }
}

/// `buildx inspect --bootstrap` of the builder: what it runs, and what that says of it (its
/// native platform, whether it can export a cache).
async fn inspect_builder(
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    builder: &mut Builder,
) -> Result<Inspected, Outcome> {
    let name = builder.name.clone();
    let args = ["buildx", "inspect", "--bootstrap", name.as_str()];
    let out = docker
        .run(&args, None, signals)
        .await
        .map_err(|f| failed(f, |c| format!("builder '{}' cannot be used: {c}", shown(plan, &name))))?;
    let found = inspect_output(&out);
    if let Some(e) = found.errors.first() {
        return Err(setup_failed(format!("builder '{}' cannot be used: {e}", shown(plan, &name))));
    }
    if !builder.fresh {
        // A builder of the user's may run elsewhere: its first platform is its native one.
        builder.native = found.platforms.first().cloned().or(builder.native.take());
    }
    builder.cache_export = found.driver.as_deref() != Some("docker") || found.containerd_snapshotter;
    Ok(found)
}

/// The platforms the BuildKit of the action's image does not emulate itself; those it does are
/// said in a notice (once: `say`).
fn without_image_emulators<'a>(
    missing: Vec<&'a Platform>,
    name: &str,
    (annotations, say): (&mut Vec<Annotation>, bool),
) -> Vec<&'a Platform> {
    let (covered, rest): (Vec<&Platform>, Vec<&Platform>) =
        missing.into_iter().partition(|p| emulated_by_image(p.as_str()));
    if say && !covered.is_empty() {
        let names: Vec<&str> = covered.iter().map(|p| p.as_str()).collect();
        annotations.push(Annotation::notice(format!(
            "Builder '{name}' runs {}'s steps under the QEMU emulators of the action's image (nothing registered on the host; emulated steps are much slower than native runners).",
            names.join(", ")
        )));
    }
    rest
}

/// Whether the image's BuildKit runs this platform's steps under its own emulators: its
/// architecture has one, and BuildKit emulates amd64 only as plain amd64 or v2 (`getEmulator`).
fn emulated_by_image(platform: &str) -> bool {
    let mut parts = platform.split('/').skip(1);
    let (arch, variant) = (parts.next().unwrap_or_default(), parts.next());
    crate::pins::BUILDKIT_EMULATED_ARCHS.contains(&arch) && !(arch == "amd64" && variant.is_some_and(|v| v != "v2"))
}

/// `load` of several platforms: only a daemon with the containerd image store holds an image of
/// several platforms; any other refuses it at the end of the build. Asked before it.
pub(super) async fn check_load(plan: &BuildPlan, docker: &mut Docker, signals: &mut Signals) -> Result<(), Outcome> {
    if !plan.load || plan.platforms.len() < 2 {
        return Ok(());
    }
    let containerd = crate::engine::containers::containerd_store(docker, signals)
        .await
        .map_err(|f| failed(f, |c| format!("load: the Docker daemon cannot be asked how it stores images: {c}")))?;
    if containerd {
        return Ok(());
    }
    Err(setup_failed(format!(
        "load: the Docker daemon stores images without the containerd image store, which keeps one platform per image, so it cannot load {}: set platforms to the one platform the job tests (a push of every platform can run in another step), or enable the containerd image store on the daemon",
        plan.platforms.join(", ")
    )))
}

/// The builder as the user named it (an attached one has a name of the run's).
fn shown<'a>(plan: &'a BuildPlan, name: &'a str) -> &'a str {
    match &plan.builder {
        BuilderPlan::Named { name, .. } => name,
        BuilderPlan::Remote { endpoint, .. } => endpoint,
        _ => name,
    }
}

async fn register_qemu(
    docker: &mut Docker,
    signals: &mut Signals,
    missing: &[&Platform],
    annotations: &mut Vec<Annotation>,
) -> Result<(), Outcome> {
    let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
    let archs = binfmt_archs(missing);
    annotations.push(Annotation::notice(format!(
        "Registering QEMU emulation for {} (emulated steps are much slower than native runners).",
        names.join(", ")
    )));
    crate::engine::containers::run_privileged(docker, signals, BINFMT_IMAGE, &["--install", archs.as_str()])
        .await
        .map_err(|f| failed(f, |c| format!("could not register QEMU for {}: {c}", names.join(", "))))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_images_emulators_serve_their_architectures_and_plain_amd64_only() {
        for p in ["linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/amd64", "linux/amd64/v2"] {
            assert!(emulated_by_image(p), "{p}");
        }
        // The image leaves these emulators out (Dockerfile): QEMU is registered on the host.
        for p in ["linux/riscv64", "linux/386", "linux/s390x", "linux/ppc64le"] {
            assert!(!emulated_by_image(p), "{p}");
        }
        for p in ["linux/mips64le", "linux/loong64", "linux/amd64/v3", "linux/amd64/v4"] {
            assert!(!emulated_by_image(p), "{p}");
        }
    }

    #[test]
    fn inspect_reads_errors_and_the_containerd_store() {
        let docker = "Name:   default\nDriver: docker\n\nNodes:\nName:     default\nEndpoint: default\nStatus:   running\nPlatforms: linux/amd64, linux/386\nLabels:\n org.mobyproject.buildkit.worker.moby.host-gateway-ip: 172.17.0.1\n";
        let i = inspect_output(docker);
        assert_eq!(i.driver.as_deref(), Some("docker"));
        assert!(!i.containerd_snapshotter && i.errors.is_empty());
        let store = format!("{docker} org.mobyproject.buildkit.worker.snapshotter: overlayfs\n");
        assert!(inspect_output(&store).containerd_snapshotter);
        let down = "Name:   sdi-1-ab\nDriver: remote\n\nNodes:\nName:     sdi-1-ab0\nEndpoint: tcp://bk:1234\nError:    Unavailable: connection error: desc = \"transport: Error while dialing: dial tcp: lookup bk: no such host\"\n";
        assert_eq!(inspect_output(down).errors.len(), 1);
        assert!(inspect_output(down).errors[0].contains("no such host"));
    }
}
