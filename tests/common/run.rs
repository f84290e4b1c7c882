//! The action as the runner starts it (no subcommand), against the fake `docker`
//! (tests/fake_docker): a runner-like environment, and readers for what the run left
//! (outputs, summary, every docker call the fake recorded).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TOKEN: &str = "ghs_RunnerToken0123456789abcdef";
pub const SECRET: &str = "npm_SuperSecretValue_4f2a9c";
pub const ENV_SECRET: &str = "env-secret-value-77aa11";

pub struct Run {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    /// Set: no docker CLI on `PATH`, buildx alone, and the daemon's API at this fake's address
    /// (tests/common/engine.rs), started with the first command.
    engine_api: Option<std::sync::OnceLock<String>>,
}

pub struct Done {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    pub fn assert_success(&self) {
        assert!(self.output.status.success(), "{}\n{}", self.stdout, self.stderr);
    }
}

impl Run {
    pub fn new(event: &str, fixture: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_fake-docker"), bin.join("docker")).unwrap();
        std::fs::create_dir_all(dir.path().join("runner_temp")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("github_output"), "").unwrap();
        std::fs::write(dir.path().join("step_summary"), "").unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let env = vec![
            ("PATH", format!("{}:/usr/bin:/bin", bin.display())),
            ("HOME", p("home")),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_EVENT_NAME", event.into()),
            ("GITHUB_EVENT_PATH", super::fixture_path(fixture).display().to_string()),
            ("GITHUB_REPOSITORY", "Codertocat/Hello-World".into()),
            ("GITHUB_REPOSITORY_OWNER", "Codertocat".into()),
            ("GITHUB_ACTOR", "Codertocat".into()),
            ("GITHUB_RUN_ID", "4242".into()),
            ("GITHUB_SHA", "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into()),
            ("RUNNER_TEMP", p("runner_temp")),
            ("GITHUB_OUTPUT", p("github_output")),
            ("GITHUB_STEP_SUMMARY", p("step_summary")),
            ("FAKE_DOCKER_LOG", p("calls.jsonl")),
            ("INPUT_GITHUB-TOKEN", TOKEN.into()),
            ("GITHUB_API_URL", super::github_mock().to_string()),
            ("INPUT_PUSH", "auto".into()),
            ("INPUT_CACHE-MODE", "max".into()),
            ("INPUT_FORK-CACHE", "registry-read".into()),
            ("INPUT_DRY-RUN", "false".into()),
            // Not in a container, wherever the tests run; a test names one to be in.
            ("SDI_OWN_CONTAINER", String::new()),
        ];
        let mut run = Run { dir, env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), engine_api: None };
        if event == "push" {
            run = run.with("GITHUB_REF", "refs/heads/master");
        }
        run
    }

    /// A builder that exists in the user's docker configuration (`~/.docker`), as one made by
    /// docker/setup-buildx-action or by hand.
    pub fn with_user_builder(self, name: &str, driver: &str) -> Run {
        let dir = self.path("home/.docker/buildx/instances");
        std::fs::create_dir_all(&dir).unwrap();
        let instance = serde_json::json!({"Name": name, "Driver": driver, "Nodes": [{"Name": format!("{name}0"), "Endpoint": "tcp://buildkitd:1234"}]});
        std::fs::write(dir.join(name), instance.to_string()).unwrap();
        self.with("INPUT_BUILDER", name).with("FAKE_DOCKER_ENDPOINTS", "tcp://buildkitd:1234")
    }

    /// As in the action's image: buildx without the docker CLI, the daemon asked through its API.
    pub fn via_engine_api(mut self) -> Run {
        let bin = self.path("bin-api");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_fake-docker"), bin.join("buildx")).unwrap();
        self.engine_api = Some(std::sync::OnceLock::new());
        self
    }

    pub fn with_dockerfile(self, text: &str) -> Run {
        std::fs::write(self.path("Dockerfile"), text).unwrap();
        self
    }

    pub fn with(mut self, key: &str, value: &str) -> Run {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-docker-images"));
        cmd.env_clear().envs(self.env.iter().map(|(k, v)| (k, v))).current_dir(self.dir.path());
        if let Some(address) = &self.engine_api {
            let address = address.get_or_init(|| super::engine::start(self.env.clone()));
            cmd.env("PATH", self.path("bin-api")).env("DOCKER_HOST", address);
        }
        for (k, v) in std::env::vars() {
            if k.starts_with("LLVM_PROFILE") {
                cmd.env(k, v);
            }
        }
        cmd
    }

    pub fn run(&self) -> Done {
        let output = self.command().output().unwrap();
        Done {
            stdout: String::from_utf8(output.stdout.clone()).unwrap(),
            stderr: String::from_utf8(output.stderr.clone()).unwrap(),
            output,
        }
    }

    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn call(&self, words: &[&str]) -> Option<Value> {
        self.calls().into_iter().find(|c| {
            let argv: Vec<&str> = c["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            argv.starts_with(words)
        })
    }

    /// `GITHUB_OUTPUT`, parsed as the runner parses it.
    pub fn outputs(&self) -> HashMap<String, String> {
        let text = std::fs::read_to_string(self.path("github_output")).unwrap();
        let mut out = HashMap::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let (name, delimiter) = line.split_once("<<").expect("heredoc form");
            assert!(delimiter.starts_with("ghadelimiter_") && delimiter.len() > 30, "random delimiter: {delimiter}");
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            assert!(out.insert(name.to_string(), value.join("\n")).is_none(), "{name} written twice");
        }
        out
    }

    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.path("step_summary")).unwrap()
    }
}

pub fn argv(call: &Value) -> Vec<String> {
    call["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

pub fn flag_values(argv: &[String], flag: &str) -> Vec<String> {
    argv.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
}

pub fn env_names(call: &Value) -> Vec<String> {
    call["env"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

/// Every file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_below(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A trusted push with a secret, to a registry the fake pushes into for real: pushed by
/// digest, scanned, then tagged.
pub fn secret_push(registry: &str, dir: &Path) -> Run {
    Run::new("push", "push-default-branch.json")
        .with("INPUT_IMAGE", &format!("{registry}/team/app"))
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN")
        .with("NPM_TOKEN", ENV_SECRET)
        .with("FAKE_DOCKER_REGISTRY_DIR", dir.to_str().unwrap())
}

/// Whether `team/app:<tag>` exists in a test registry's directory (what `secret_push` pushes).
pub fn tagged(dir: &Path, tag: &str) -> bool {
    dir.join("v2/team/app/manifests").join(tag).is_file()
}

/// Empties the fake builder whose calls go to `log` (its cache-mount stores), as a fresh
/// runner's builder is.
pub fn empty_builder(log: &Path) {
    let _ = std::fs::remove_file(log.parent().unwrap().join("fake-docker-stores.json"));
}

/// The cache-mount helper builds (restore and save) the fake recorded in `log`.
pub fn helper_builds_in(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|c| c["file_text"].as_str().is_some_and(|t| t.contains("/sdi-mount")))
        .collect()
}

/// This host's platform: a build for it raises no emulation question.
pub fn native() -> &'static str {
    if cfg!(target_arch = "aarch64") { "linux/arm64" } else { "linux/amd64" }
}

/// A trusted push to the default branch, for this host's platform only.
pub fn push() -> Run {
    Run::new("push", "push-default-branch.json").with("INPUT_PLATFORMS", native())
}

/// Sends the action SIGTERM, as a cancelled job does, and requires it to exit within 10 s.
pub fn sigterm_and_wait(child: &mut Child) -> ExitStatus {
    let sent = Instant::now();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
