//! The builder the build runs on: one made for the run, the daemon's own, the user's (by its
//! record, or by its container on the daemon the runner mounts), or a BuildKit endpoint; then
//! its platforms checked, with QEMU registered where a RUN step needs it.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::docker::{Docker, Failure, Signals, random_hex};
use super::{Annotation, Outcome};
use crate::context::builder::{BuilderSpec, BuilderTls, Endpoint, Pem};
use crate::context::{Context, Platform};
use crate::plan::{BuildPlan, BuilderPlan};

/// QEMU registration runs privileged on the host: pinned by digest.
pub const BINFMT_IMAGE: &str =
    "tonistiigi/binfmt:qemu-v10.2.3@sha256:400a4873b838d1b89194d982c45e5fb3cda4593fbfd7e08a02e76b03b21166f0";

/// The builder the build runs on.
pub(super) struct Builder {
    pub name: String,
    /// A record this run made: removed at the end. For an attached BuildKit that removes the
    /// record only, never the user's BuildKit.
    pub remove: bool,
    /// A docker-container builder made here: it runs this host's native platforms.
    pub fresh: bool,
    /// The builder's first platform, where it runs steps without emulation.
    pub native: Option<String>,
    /// False for the `docker` driver without the containerd image store.
    pub cache_export: bool,
    /// The BuildKit container this run started (from the action's own image): removed with it.
    pub container: Option<String>,
    /// How long it took to make it ready (set once it is).
    pub ready: Option<std::time::Duration>,
}

impl Builder {
    fn new(name: String, remove: bool, fresh: bool) -> Self {
        Builder { name, remove, fresh, native: None, cache_export: true, container: None, ready: None }
    }
}

fn setup_failed(message: String) -> Outcome {
    Outcome::SetupFailed(message)
}

fn failed(f: Failure, word: impl FnOnce(String) -> String) -> Outcome {
    match f {
        Failure::Cancelled(sig) => Outcome::Cancelled { signal: sig },
        Failure::Failed(cause) => setup_failed(word(cause)),
    }
}

/// Makes the plan's builder usable: `slot` holds it as soon as a record exists, so that the
/// caller removes it whatever happens next.
pub(super) async fn prepare(
    ctx: &Context,
    plan: &BuildPlan,
    docker: &mut Docker,
    signals: &mut Signals,
    dir: &Path,
    slot: &mut Option<Builder>,
) -> Result<(), Outcome> {
    let run = ctx.run_id.as_deref().unwrap_or("local");
    match &plan.builder {
        BuilderPlan::New => {
            let name = format!("sdi-{run}-{}", random_hex(4));
            // `allow` needs BuildKit started with the entitlement (the plan gives it to trusted code only).
            let entitlements: Vec<String> =
                crate::plan::options::insecure_entitlements(&plan.options).iter().map(|e| e.to_string()).collect();
            match super::own_buildkit::image(docker, signals).await {
                Some(image) => from_own_image(docker, signals, (&image, &entitlements), name, slot).await?,
                None => docker_container(docker, signals, &entitlements, name, slot).await?,
            }
        }
        BuilderPlan::Default => *slot = Some(Builder::new("default".into(), false, false)),
        BuilderPlan::Named { name, .. } if docker.has_builder_record(name) => {
            *slot = Some(Builder::new(name.clone(), false, false));
        }
        BuilderPlan::Named { name, container } => {
            reach_container(docker, signals, name, container).await?;
            let endpoint = format!("docker-container://{container}");
            attach(docker, signals, &endpoint, &[], slot, run).await?;
        }
        BuilderPlan::Remote { endpoint, .. } => {
            let tls = match &ctx.inputs.builder {
                Some(BuilderSpec::Endpoint(Endpoint { tls: Some(tls), .. })) => tls_options(tls, dir)
                    .map_err(|e| setup_failed(format!("cannot write the BuildKit client certificates: {e}")))?,
                _ => Vec::new(),
            };
            attach(docker, signals, endpoint, &tls, slot, run).await?;
        }
    }
    Ok(())
}

/// A docker-container builder on the pinned BuildKit, not buildx's moving `buildx-stable-1`.
async fn docker_container(
    docker: &mut Docker,
    signals: &mut Signals,
    entitlements: &[String],
    name: String,
    slot: &mut Option<Builder>,
) -> Result<(), Outcome> {
    *slot = Some(Builder::new(name.clone(), true, true));
    let image = format!("image={}", crate::engine::BUILDKIT_IMAGE);
    let mut args = vec!["buildx", "create", "--name", name.as_str(), "--driver", "docker-container"];
    args.extend(["--driver-opt", image.as_str()]);
    let flags: Vec<String> = entitlements.iter().map(|e| format!("--allow-insecure-entitlement {e}")).collect();
    let flags = flags.join(" ");
    if !flags.is_empty() {
        args.extend(["--buildkitd-flags", flags.as_str()]);
    }
    args.push("--bootstrap");
    docker
        .run(&args, None, signals)
        .await
        .map_err(|f| failed(f, |c| format!("could not create a docker-container builder: {c}")))?;
    Ok(())
}

/// BuildKit from the action's own image (nothing pulled), attached with the remote driver; the
/// container is the builder's, removed with its record.
async fn from_own_image(
    docker: &mut Docker,
    signals: &mut Signals,
    (image, entitlements): (&str, &[String]),
    name: String,
    slot: &mut Option<Builder>,
) -> Result<(), Outcome> {
    let container = format!("{name}-buildkit");
    let mut builder = Builder::new(name.clone(), true, true);
    builder.container = Some(container.clone());
    *slot = Some(builder);
    super::own_buildkit::start(docker, signals, image, &container, entitlements)
        .await
        .map_err(|f| failed(f, |c| format!("could not start BuildKit from the action's own image: {c}")))?;
    let endpoint = format!("docker-container://{container}");
    let args = ["buildx", "create", "--name", name.as_str(), "--driver", "remote", "--bootstrap", endpoint.as_str()];
    docker.run(&args, None, signals).await.map_err(|f| {
        failed(f, |c| format!("could not attach the BuildKit started from the action's own image: {c}"))
    })?;
    Ok(())
}

/// A `docker-container` builder whose record the action cannot see is still a container on
/// the daemon: started if it was stopped, as buildx would boot it.
async fn reach_container(
    docker: &mut Docker,
    signals: &mut Signals,
    name: &str,
    container: &str,
) -> Result<(), Outcome> {
    let inspect = ["container", "inspect", "--format", "{{.State.Running}}", container];
    let running = docker.run(&inspect, None, signals).await.map_err(|f| {
        failed(f, |cause| {
            format!(
                "builder '{name}' cannot be used: the action sees no record of it (looked for buildx/instances/{name} in the docker configuration, from $DOCKER_CONFIG or $HOME/.docker), and the Docker daemon has no container {container} to attach to ({cause}). Create the builder in this job (docker/setup-buildx-action, or `docker buildx create --name {name} --driver docker-container`), or set builder to `default` or to a BuildKit endpoint (tcp://, unix://, docker-container://)."
            )
        })
    })?;
    if running.trim() != "true" {
        docker.run(&["start", container], None, signals).await.map_err(|f| {
            failed(f, |c| {
                format!("builder '{name}': its container {container} is stopped and could not be started: {c}")
            })
        })?;
    }
    Ok(())
}

/// Attaches a BuildKit with buildx's remote driver, under a name of this run's.
async fn attach(
    docker: &mut Docker,
    signals: &mut Signals,
    endpoint: &str,
    driver_opts: &[String],
    slot: &mut Option<Builder>,
    run: &str,
) -> Result<(), Outcome> {
    let name = format!("sdi-{run}-{}", random_hex(4));
    let mut args = vec!["buildx", "create", "--name", name.as_str(), "--driver", "remote"];
    for opt in driver_opts {
        args.extend(["--driver-opt", opt.as_str()]);
    }
    args.push(endpoint);
    *slot = Some(Builder::new(name.clone(), true, false));
    docker
        .run(&args, None, signals)
        .await
        .map_err(|f| failed(f, |c| format!("could not attach the BuildKit at {endpoint}: {c}")))?;
    Ok(())
}

/// `--driver-opt` values for client TLS: absolute paths, PEM text written to 0600 files in
/// the run's private directory (removed with it).
fn tls_options(tls: &BuilderTls, dir: &Path) -> std::io::Result<Vec<String>> {
    let certs = dir.join("builder-tls");
    std::fs::create_dir_all(&certs)?;
    let mut opts = Vec::new();
    for (key, pem) in [("cacert", Some(&tls.cacert)), ("cert", tls.cert.as_ref()), ("key", tls.key.as_ref())] {
        let Some(pem) = pem else { continue };
        let path = match pem {
            Pem::File(p) => std::path::absolute(p)?,
            Pem::Inline(text) => {
                let path = certs.join(format!("{key}.pem"));
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
                std::io::Write::write_all(&mut f, text.expose().as_bytes())?;
                path
            }
        };
        // buildx reads each --driver-opt as CSV.
        opts.push(crate::context::inputs::csv_field(&format!("{key}={}", path.display())));
    }
    Ok(opts)
}

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
        // QEMU registered on the host serves a builder in a container on it: buildx's, or the
        // one started from the action's image when its own emulators do not cover a platform.
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

/// `load` of several platforms: only a daemon with the containerd image store holds an image of
/// several platforms; any other refuses it at the end of the build. Asked before it.
pub(super) async fn check_load(plan: &BuildPlan, docker: &mut Docker, signals: &mut Signals) -> Result<(), Outcome> {
    if !plan.load || plan.platforms.len() < 2 {
        return Ok(());
    }
    let args = ["info", "--format", "{{json .DriverStatus}}"];
    let status = docker
        .run(&args, None, signals)
        .await
        .map_err(|f| failed(f, |c| format!("load: the Docker daemon cannot be asked how it stores images: {c}")))?;
    if status.contains("io.containerd.snapshotter") {
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
    let args = ["run", "--privileged", "--rm", BINFMT_IMAGE, "--install", archs.as_str()];
    docker
        .run(&args, None, signals)
        .await
        .map_err(|f| failed(f, |c| format!("could not register QEMU for {}: {c}", names.join(", "))))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
