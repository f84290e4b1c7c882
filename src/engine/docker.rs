//! The docker CLI as the run calls it: a private `DOCKER_CONFIG`, a sanitized environment,
//! signals forwarded, and a failure reported by its cause line. Where no docker CLI is installed
//! (the action's image), buildx runs on its own and the daemon is asked through its API
//! (`daemon`).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::context::{Context, SecretSource};
use crate::plan::BuildPlan;

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
    pub(crate) async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
        }
    }
}

/// How long a cancelled child gets to stop before it is killed.
pub(crate) const GRACE: Duration = Duration::from_secs(7);

pub enum Ended {
    Exited { code: i32, stdout: String, stderr: String },
    Signalled(i32),
}

/// Why a short docker call did not succeed, for the caller to word.
pub enum Failure {
    /// The job was cancelled while it ran.
    Cancelled(i32),
    /// It ran and failed: the cause line of its output.
    Failed(String),
}

/// The docker CLI, with the run's private configuration and a sanitized environment.
pub struct Docker {
    program: PathBuf,
    env: Vec<(String, String)>,
    config: PathBuf,
    /// The daemon's API, when no docker CLI is installed: `program` is then buildx itself.
    pub(super) api: Option<super::api::EngineApi>,
    pub(crate) calls: usize,
}

impl Docker {
    /// `dir` holds the private `DOCKER_CONFIG`; `trusted` decides whether the variables named
    /// by `secret-envs` stay visible. Those `logins` names never do.
    /// `Err`: what keeps the run from calling docker, worded for the log.
    pub fn new(ctx: &Context, plan: &BuildPlan, dir: &Path) -> Result<Self, String> {
        let config = crate::credentials::private_config(dir);
        let no_config =
            |e: std::io::Error| format!("cannot create the private DOCKER_CONFIG under {}: {e}", dir.display());
        std::fs::DirBuilder::new().mode(0o700).create(&config).map_err(no_config)?;
        if let Some(user) = user_docker_config() {
            share_user_config(&user, &config, ctx.inputs.builder.as_ref().and_then(|b| b.name())).map_err(no_config)?;
        }
        // Registry passwords travel only on `docker login`'s stdin, never in a child's environment.
        let passwords = ctx.inputs.logins.iter().map(|l| l.password_env.as_str());
        let hidden: Vec<&str> = if plan.trust.trusted {
            passwords.collect()
        } else {
            ctx.inputs
                .secrets
                .iter()
                .filter_map(|s| match &s.source {
                    SecretSource::Env { env } => Some(env.as_str()),
                    _ => None,
                })
                .chain(passwords)
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
        let (program, api) = match find_program("docker") {
            Some(docker) => (docker, None),
            None => {
                let buildx = find_program("buildx")
                    .ok_or("neither the docker CLI nor buildx is installed: looked for docker and buildx on PATH")?;
                let host = std::env::var("DOCKER_HOST").ok();
                (buildx, Some(super::api::EngineApi::new(host.as_deref())?))
            }
        };
        Ok(Docker { program, env, config, api, calls: 0 })
    }

    /// The private configuration's directory (`DOCKER_CONFIG` of every call).
    pub(super) fn config_dir(&self) -> &Path {
        &self.config
    }

    /// Whether buildx has a record of this builder in the run's configuration (copied from the
    /// user's when visible there).
    pub(crate) fn has_builder_record(&self, name: &str) -> bool {
        self.config.join("buildx").join("instances").join(name).is_file()
    }

    pub(crate) fn command(&mut self, args: &[&str]) -> Command {
        self.calls += 1;
        tracing::debug!("docker {}", shlex::try_join(args.iter().copied()).unwrap_or_else(|_| args.join(" ")));
        let mut cmd = Command::new(&self.program);
        // buildx on its own takes the plugin's arguments without the leading `buildx`.
        let args = match (&self.api, args) {
            (Some(_), ["buildx", rest @ ..]) => rest,
            _ => args,
        };
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
    pub(crate) async fn output(
        &mut self,
        args: &[&str],
        stdin: Option<&[u8]>,
        signals: &mut Signals,
    ) -> std::io::Result<Ended> {
        let started = Instant::now();
        if self.api.is_some() && args.first() != Some(&"buildx") {
            return Err(std::io::Error::other(format!(
                "`docker {}` needs the docker CLI, which is not installed",
                args[0]
            )));
        }
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
        let ended = tokio::select! {
            (out, err) = read => {
                let status = child.wait().await?;
                Ended::Exited { code: status.code().unwrap_or(1), stdout: out, stderr: err }
            }
            sig = signals.recv() => {
                stop(&mut child, sig).await;
                Ended::Signalled(sig)
            }
        };
        let secs = started.elapsed().as_secs_f64();
        let what = args.iter().take_while(|a| !a.starts_with('-')).take(3).copied().collect::<Vec<_>>().join(" ");
        match &ended {
            Ended::Exited { code: 0, .. } => tracing::debug!("docker {what}: exit 0 in {secs:.2} s"),
            Ended::Exited { code, stderr, .. } => {
                tracing::debug!("docker {what}: exit {code} in {secs:.2} s: {}", cause_line(stderr))
            }
            Ended::Signalled(sig) => tracing::debug!("docker {what}: stopped by signal {sig} after {secs:.2} s"),
        }
        Ok(ended)
    }

    /// Runs a short command that must succeed: its stdout, or why not (a failure that could
    /// not even start docker is worded as such).
    pub(crate) async fn run(
        &mut self,
        args: &[&str],
        stdin: Option<&[u8]>,
        signals: &mut Signals,
    ) -> Result<String, Failure> {
        match self.output(args, stdin, signals).await {
            Ok(Ended::Exited { code: 0, stdout, .. }) => Ok(stdout),
            Ok(Ended::Exited { stderr, stdout, .. }) => {
                let text = if stderr.trim().is_empty() { stdout } else { stderr };
                Err(Failure::Failed(cause_line(&text).to_string()))
            }
            Ok(Ended::Signalled(sig)) => Err(Failure::Cancelled(sig)),
            Err(e) => Err(Failure::Failed(format!("cannot run docker: {e}"))),
        }
    }
}

/// The line of a failed docker command's output that says why it failed. The CLI often ends
/// with a trailer (`Run 'docker run --help' for more information`, `Error: failed to start
/// containers: x`) after the daemon's answer, and buildx prints progress before its `ERROR:`.
pub fn cause_line(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let is_trailer = |l: &str| {
        (l.starts_with("Run 'docker") && l.ends_with("for more information"))
            || (l.starts_with("See 'docker") && l.ends_with("--help'."))
            || l.starts_with("Usage:")
            || l.starts_with("Error: failed to start containers:")
    };
    let says_why = |l: &str| {
        let l = l.strip_prefix("docker: ").unwrap_or(l);
        l.starts_with("ERROR:") || l.starts_with("Error") || l.starts_with("error:") || l.starts_with("denied:")
    };
    let meaningful: Vec<&str> = lines.iter().copied().filter(|l| !is_trailer(l)).collect();
    meaningful
        .iter()
        .rev()
        .find(|l| says_why(l))
        .or(meaningful.last())
        .or(lines.last())
        .copied()
        .unwrap_or("it printed nothing")
}

/// An executable named `name` in a directory of `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The docker configuration the user's own commands use (`$DOCKER_CONFIG`, else `~/.docker`).
pub(super) fn user_docker_config() -> Option<PathBuf> {
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
pub(super) async fn stop(child: &mut Child, sig: i32) {
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

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn random_token() -> String {
    random_hex(16)
}

#[cfg(test)]
mod tests {
    use super::cause_line;

    #[test]
    fn the_cause_comes_before_the_clis_trailer() {
        let binfmt = "Unable to find image 'tonistiigi/binfmt:qemu-v10.2.3' locally\ndocker: Error response from daemon: pull access denied for tonistiigi/binfmt, repository does not exist or may require 'docker login'.\nRun 'docker run --help' for more information\n";
        assert_eq!(
            cause_line(binfmt),
            "docker: Error response from daemon: pull access denied for tonistiigi/binfmt, repository does not exist or may require 'docker login'."
        );
        let start = "Error response from daemon: cannot start a stopped process: unknown\nError: failed to start containers: buildx_buildkit_ci0\n";
        assert_eq!(cause_line(start), "Error response from daemon: cannot start a stopped process: unknown");
        let create = "#1 [internal] booting buildkit\n#1 pulling image moby/buildkit:buildx-stable-1\n#1 ERROR: Error response from daemon: Head \"https://registry-1.docker.io/v2/moby/buildkit/manifests/buildx-stable-1\": dial tcp: lookup registry-1.docker.io: no such host\n------\n > [internal] booting buildkit:\n------\nERROR: Error response from daemon: Head \"https://registry-1.docker.io/v2/moby/buildkit/manifests/buildx-stable-1\": dial tcp: lookup registry-1.docker.io: no such host\n";
        assert!(cause_line(create).starts_with("ERROR: Error response from daemon: Head"), "{}", cause_line(create));
        let usage = "\"docker buildx imagetools create\" requires at least 1 argument.\nSee 'docker buildx imagetools create --help'.\n\nUsage:  docker buildx imagetools create [OPTIONS] [SOURCE...]\n";
        assert_eq!(cause_line(usage), "\"docker buildx imagetools create\" requires at least 1 argument.");
        assert_eq!(cause_line(""), "it printed nothing");
        assert_eq!(cause_line("just one line\n"), "just one line");
    }
}
