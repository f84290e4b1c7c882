//! The builder the build runs on: one made for the run (from the action's own image when it
//! runs in it), the daemon's own, the user's (by its record, or by its container on the daemon
//! the runner mounts), or a BuildKit endpoint. Its platforms are checked in `platforms`.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::context::Context;
use crate::context::builder::{BuilderSpec, BuilderTls, Endpoint, Pem};
use crate::engine::docker::{Docker, Failure, Signals, random_hex};
use crate::plan::{BuildPlan, BuilderPlan};
use crate::step::Outcome;

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

pub(super) fn setup_failed(message: String) -> Outcome {
    Outcome::SetupFailed(message)
}

pub(super) fn failed(f: Failure, word: impl FnOnce(String) -> String) -> Outcome {
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
            let own = crate::engine::own_buildkit::image(docker, signals, dir).await;
            match own.map_err(|signal| Outcome::Cancelled { signal })? {
                Some(own) => from_own_image(docker, signals, (&own, &entitlements), name, slot).await?,
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
    let image = format!("image={}", crate::pins::BUILDKIT_IMAGE);
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

/// BuildKit from the action's own image (nothing pulled), attached with the remote driver at
/// its socket; the container is the builder's, removed with its record.
async fn from_own_image(
    docker: &mut Docker,
    signals: &mut Signals,
    (own, entitlements): (&crate::engine::own_buildkit::Own, &[String]),
    name: String,
    slot: &mut Option<Builder>,
) -> Result<(), Outcome> {
    let container = format!("{name}-buildkit");
    let mut builder = Builder::new(name.clone(), true, true);
    builder.container = Some(container.clone());
    *slot = Some(builder);
    crate::engine::own_buildkit::start(docker, signals, own, &container, entitlements)
        .await
        .map_err(|f| failed(f, |c| format!("could not start BuildKit from the action's own image: {c}")))?;
    let endpoint = own.socket.endpoint();
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
    let running = crate::engine::containers::running(docker, signals, container).await.map_err(|f| {
        failed(f, |cause| {
            format!(
                "builder '{name}' cannot be used: the action sees no record of it (looked for buildx/instances/{name} in the docker configuration, from $DOCKER_CONFIG or $HOME/.docker), and the Docker daemon has no container {container} to attach to ({cause}). Create the builder in this job (docker/setup-buildx-action, or `docker buildx create --name {name} --driver docker-container`), or set builder to `default` or to a BuildKit endpoint (tcp://, unix://, docker-container://)."
            )
        })
    })?;
    if !running {
        crate::engine::containers::start(docker, signals, container).await.map_err(|f| {
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
