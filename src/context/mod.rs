//! The runner contract, read once: runner variables, inputs and the event payload, lowered
//! into a validated `Context`. All input validation happens here, before anything runs.

pub mod builder;
pub mod event;
pub mod inputs;

use std::collections::HashMap;

use serde::Deserialize;

pub use event::{Event, Repository};
pub use inputs::{
    CacheMode, Digest, ForkCache, ImageName, Inputs, Masked, Platform, PrCache, PushPolicy, RawInputs, SecretSource,
    SecretSpec, SecretValues, SignMode, SigstoreUrls,
};

/// The lines of a multi-line secret worth masking: short ones such as `{` would only garble
/// the log, and a PEM block's `-----BEGIN …` markers are no secret.
fn secret_lines(text: &str) -> impl Iterator<Item = Masked> + '_ {
    text.lines().map(str::trim).filter(|l| l.len() >= 8 && !l.starts_with("-----")).map(|l| Masked::new(l.into()))
}

fn read_lossy(path: &str) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Every secret value the run knows of, to be masked before anything else is printed: the
/// `secrets:` values, the variables `secret-envs` names, secret files and a BuildKit client key
/// line by line, the token and the proof key.
fn masks(inputs: &Inputs, secret_values: &SecretValues, vars: &HashMap<String, String>) -> Vec<Masked> {
    let mut masks: Vec<Masked> = secret_values.0.iter().map(|(_, v)| v.clone()).collect();
    masks.extend(inputs.github_token.clone());
    masks.extend(inputs.secrets_proof_key.clone());
    for login in &inputs.logins {
        masks.extend(vars.get(&login.password_env).filter(|v| !v.is_empty()).map(|v| Masked::new(v.clone())));
    }
    for spec in &inputs.secrets {
        match &spec.source {
            SecretSource::Env { env: name } => {
                masks.extend(vars.get(name).filter(|v| !v.is_empty()).map(|v| Masked::new(v.clone())))
            }
            SecretSource::File { path } => masks.extend(secret_lines(&read_lossy(path))),
            SecretSource::Value { .. } => {}
        }
    }
    if let Some(builder::BuilderSpec::Endpoint(builder::Endpoint { tls: Some(tls), .. })) = &inputs.builder {
        match &tls.key {
            Some(builder::Pem::Inline(pem)) => masks.extend(secret_lines(pem.expose())),
            Some(builder::Pem::File(path)) => masks.extend(secret_lines(&read_lossy(path))),
            None => {}
        }
    }
    masks
}

/// What metadata-action reads besides the event: the clock, read once here so that the plan
/// stays pure, and its `DOCKER_METADATA_*` variables.
#[derive(Debug, Clone)]
pub struct MetaEnv {
    /// `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
    pub now: chrono::DateTime<chrono::Utc>,
    /// `DOCKER_METADATA_PR_HEAD_SHA`: a pull request's tags and labels name its head commit.
    pub pr_head_sha: bool,
    /// `DOCKER_METADATA_SHORT_SHA_LENGTH` (7).
    pub short_sha_length: usize,
    /// `DOCKER_METADATA_ANNOTATIONS_LEVELS` (`manifest`).
    pub annotation_levels: Vec<String>,
}

impl MetaEnv {
    fn read(vars: &HashMap<String, String>) -> Result<MetaEnv, InputError> {
        let var = |n: &str| vars.get(n).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let now = match var("SOURCE_DATE_EPOCH") {
            Some(v) => v.parse::<i64>().ok().and_then(|s| chrono::DateTime::from_timestamp(s, 0)).ok_or_else(|| {
                InputError::new("SOURCE_DATE_EPOCH", format!("'{v}' is not a number of seconds since 1970"))
            })?,
            None => chrono::Utc::now(),
        };
        let short_sha_length = match var("DOCKER_METADATA_SHORT_SHA_LENGTH") {
            Some(v) => v
                .parse()
                .map_err(|_| InputError::new("DOCKER_METADATA_SHORT_SHA_LENGTH", format!("'{v}' is not a number")))?,
            None => 7,
        };
        let levels = var("DOCKER_METADATA_ANNOTATIONS_LEVELS").unwrap_or_else(|| "manifest".into());
        Ok(MetaEnv {
            now,
            pr_head_sha: var("DOCKER_METADATA_PR_HEAD_SHA").is_some_and(|v| v.to_ascii_lowercase().contains("true")),
            short_sha_length,
            annotation_levels: levels.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
        })
    }
}

/// Bad input: which input (or runner variable) is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input}: {message}")]
pub struct InputError {
    pub input: String,
    pub message: String,
}

impl InputError {
    pub fn new(input: &str, message: impl Into<String>) -> Self {
        InputError { input: input.to_string(), message: message.into() }
    }
}

/// Where the run's OIDC token is asked for (`ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`).
#[derive(Debug, Clone)]
pub struct IdTokenSource {
    pub url: String,
    pub request_token: Masked,
}

/// Runner variables, raw (`GITHUB_EVENT_NAME` → `github_event_name`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRunner {
    github_event_name: Option<String>,
    github_repository: Option<String>,
    github_repository_owner: Option<String>,
    github_repository_id: Option<String>,
    github_ref: Option<String>,
    github_sha: Option<String>,
    github_actor: Option<String>,
    github_server_url: Option<String>,
    github_api_url: Option<String>,
    github_run_id: Option<String>,
    runner_temp: Option<String>,
    actions_cache_mode: Option<String>,
    actions_id_token_request_url: Option<String>,
    actions_id_token_request_token: Option<String>,
}

/// What the CLI flags set; each wins over the matching runner variable.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// The event name (default: GITHUB_EVENT_NAME).
    #[arg(long)]
    pub event_name: Option<String>,
    /// The event payload file (default: GITHUB_EVENT_PATH).
    #[arg(long)]
    pub event_path: Option<String>,
    /// owner/repo (default: GITHUB_REPOSITORY, then the payload's repository).
    #[arg(long)]
    pub repository: Option<String>,
    /// The git ref (default: GITHUB_REF, then the payload's ref).
    #[arg(long = "ref")]
    pub git_ref: Option<String>,
    /// The commit (default: GITHUB_SHA, then the payload's head commit).
    #[arg(long)]
    pub sha: Option<String>,
    /// An action input, as NAME=VALUE (repeatable; wins over INPUT_<NAME>).
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_input)]
    pub inputs: Vec<(String, String)>,
}

fn parse_input(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' has no '=': write NAME=VALUE"))
}

/// `ACTIONS_CACHE_MODE`, which the runner may set to restrict cache use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionsCacheMode {
    Write,
    Read,
    WriteOnly,
    None,
    /// A value this version does not know: treated as `read`, the safe reading.
    Unknown(String),
}

impl ActionsCacheMode {
    /// Whether caches may be read. An unknown mode reads, as `read` does.
    pub fn allows_read(&self) -> bool {
        !matches!(self, ActionsCacheMode::WriteOnly | ActionsCacheMode::None)
    }
    /// Whether caches may be written. An unknown mode does not write.
    pub fn allows_write(&self) -> bool {
        matches!(self, ActionsCacheMode::Write | ActionsCacheMode::WriteOnly)
    }

    fn parse(raw: Option<&str>) -> Self {
        match raw.map(str::trim).unwrap_or_default() {
            "" | "write" => ActionsCacheMode::Write,
            "read" => ActionsCacheMode::Read,
            "write-only" => ActionsCacheMode::WriteOnly,
            "none" => ActionsCacheMode::None,
            other => ActionsCacheMode::Unknown(other.to_string()),
        }
    }
}

/// `owner/repo` as GitHub spells it (case kept: labels and messages show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    pub fn full(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Context {
    pub event_name: String,
    pub event: Event,
    pub repository: RepoName,
    /// `GITHUB_REPOSITORY_ID`, else the payload's: what the proof ledger's value keys are
    /// salted with.
    pub repository_id: Option<u64>,
    /// The ref the run is for: `GITHUB_REF`, else the payload's `ref`.
    pub git_ref: Option<String>,
    /// The commit built: `GITHUB_SHA`, else the payload's head commit.
    pub sha: Option<String>,
    pub actor: Option<String>,
    pub server_url: String,
    pub api_url: String,
    pub run_id: Option<String>,
    pub runner_temp: Option<String>,
    pub actions_cache_mode: ActionsCacheMode,
    pub inputs: Inputs,
    /// The runner's OIDC token endpoint: offered only with `permissions: id-token: write`, and
    /// never to a fork's pull request.
    pub id_token: Option<IdTokenSource>,
    pub secret_values: SecretValues,
    /// The commit checked out in the working directory, when it is a git checkout.
    pub workspace_head: Option<String>,
    /// The Dockerfile's text, when it is a file in the workspace (not a remote context).
    pub dockerfile: Option<String>,
    pub meta: MetaEnv,
    /// Every secret value this run knows (`secrets`, the variables `secret-envs` names, the
    /// token), to be `::add-mask::`ed before anything else is printed.
    pub masks: Vec<Masked>,
}

/// The real process environment and file system, for `Context::load`.
pub struct ProcessEnv {
    vars: HashMap<String, String>,
}

impl ProcessEnv {
    pub fn new(vars: HashMap<String, String>) -> Self {
        ProcessEnv { vars }
    }
    pub fn from_process() -> Self {
        ProcessEnv::new(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect(),
        )
    }
}

impl inputs::Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn is_readable_file(&self, path: &str) -> bool {
        std::fs::File::open(path).and_then(|f| f.metadata()).is_ok_and(|m| m.is_file())
    }
    fn dir_entries(&self, path: &str) -> Option<Vec<String>> {
        let entries = std::fs::read_dir(path).ok()?;
        let mut names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        names.sort();
        Some(names)
    }
}

/// `HEAD` of the git checkout in `dir`: a detached commit, or the commit its branch points
/// to (loose or packed ref). Read from `.git` directly: the action image has no git.
pub fn git_head(dir: &std::path::Path) -> Option<String> {
    let git = dir.join(".git");
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let is_sha = |s: &str| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit());
    let Some(reference) = head.strip_prefix("ref: ") else {
        return is_sha(head).then(|| head.to_string());
    };
    if let Ok(loose) = std::fs::read_to_string(git.join(reference)) {
        return Some(loose.trim().to_string()).filter(|s| is_sha(s));
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (sha, name) = l.split_once(' ')?;
        (name == reference && is_sha(sha)).then(|| sha.to_string())
    })
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn repo_name(full: &str, source: &str) -> Result<RepoName, InputError> {
    match full.split_once('/') {
        Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(RepoName { owner: owner.to_string(), name: name.to_string() })
        }
        _ => Err(InputError::new(source, format!("'{full}' is not of the form owner/repo"))),
    }
}

impl Context {
    /// The user a registry login with `github-token` names: the actor, as docker/login-action
    /// does, else the name GitHub accepts for any token.
    pub fn registry_user(&self) -> String {
        self.actor.clone().unwrap_or_else(|| "x-access-token".into())
    }

    /// Reads everything the run depends on. Reads the event file and checks secret files;
    /// runs nothing.
    pub fn load(env: &ProcessEnv, flags: &Overrides) -> Result<Context, InputError> {
        let (path_source, event_path) = match nonempty(flags.event_path.clone()) {
            Some(p) => ("--event-path", Some(p)),
            None => ("GITHUB_EVENT_PATH", nonempty(env.vars.get("GITHUB_EVENT_PATH").cloned())),
        };
        let event_path = event_path.ok_or_else(|| {
            InputError::new("GITHUB_EVENT_PATH", "is not set: run inside GitHub Actions or pass --event-path")
        })?;
        let text = std::fs::read_to_string(&event_path)
            .map_err(|e| InputError::new(path_source, format!("cannot read the event file '{event_path}': {e}")))?;
        let event = Event::parse(&text).map_err(|e| {
            InputError::new(path_source, format!("the event file '{event_path}' is not a valid event payload: {e}"))
        })?;
        Context::with_event(env, flags, event)
    }

    /// Everything `load` does once the payload is parsed.
    pub fn with_event(env: &ProcessEnv, flags: &Overrides, event: Event) -> Result<Context, InputError> {
        let runner: RawRunner = envy::from_iter(env.vars.iter().map(|(k, v)| (k.clone(), v.clone())))
            .map_err(|e| InputError::new("environment", format!("cannot read runner variables: {e}")))?;
        let event_name = nonempty(flags.event_name.clone().or(runner.github_event_name.clone())).ok_or_else(|| {
            InputError::new("GITHUB_EVENT_NAME", "is not set: run inside GitHub Actions or pass --event-name")
        })?;

        let repository = repository_of(flags, &runner, &event)?;
        let raw = raw_inputs(env, flags)?;
        let (inputs, secret_values) = raw.lower(&repository.full(), env)?;
        let dockerfile = std::fs::read_to_string(inputs.dockerfile_path()).ok();
        let mut masks = masks(&inputs, &secret_values, &env.vars);
        let id_token =
            match (nonempty(runner.actions_id_token_request_url), nonempty(runner.actions_id_token_request_token)) {
                (Some(url), Some(token)) => Some(IdTokenSource { url, request_token: Masked::new(token) }),
                _ => None,
            };
        masks.extend(id_token.as_ref().map(|t| t.request_token.clone()));

        let git_ref = nonempty(flags.git_ref.clone()).or(nonempty(runner.github_ref)).or_else(|| {
            let payload_ref = event.git_ref.clone().or_else(|| event.merge_group.as_ref()?.head_ref.clone());
            payload_ref.or_else(|| Some(format!("refs/tags/{}", event.release.as_ref()?.tag_name.as_ref()?)))
        });
        let sha = nonempty(flags.sha.clone())
            .or(nonempty(runner.github_sha))
            .or_else(|| event.head_sha().map(str::to_string));
        let repository_id =
            nonempty(runner.github_repository_id).and_then(|id| id.parse().ok()).or(event.repository_id());
        Ok(Context {
            event_name,
            repository,
            repository_id,
            git_ref,
            sha,
            actor: nonempty(runner.github_actor).or_else(|| event.sender.as_ref()?.login.clone()),
            server_url: nonempty(runner.github_server_url).unwrap_or_else(|| "https://github.com".into()),
            api_url: nonempty(runner.github_api_url).unwrap_or_else(|| "https://api.github.com".into()),
            run_id: nonempty(runner.github_run_id),
            runner_temp: nonempty(runner.runner_temp),
            actions_cache_mode: ActionsCacheMode::parse(runner.actions_cache_mode.as_deref()),
            event,
            inputs,
            id_token,
            secret_values,
            masks,
            workspace_head: git_head(std::path::Path::new(".")),
            meta: MetaEnv::read(&env.vars)?,
            dockerfile,
        })
    }
}

/// The repository the run is for: `--repository`, else `GITHUB_REPOSITORY`, else the payload's;
/// its owner must be `GITHUB_REPOSITORY_OWNER` when that is set.
fn repository_of(flags: &Overrides, runner: &RawRunner, event: &Event) -> Result<RepoName, InputError> {
    let repository = match nonempty(flags.repository.clone()) {
        Some(r) => repo_name(&r, "--repository")?,
        None => match nonempty(runner.github_repository.clone()) {
            Some(r) => repo_name(&r, "GITHUB_REPOSITORY")?,
            None => {
                let from_payload = event.repository.as_ref().and_then(|r| r.full_name.clone());
                let full = from_payload.ok_or_else(|| {
                    InputError::new(
                        "GITHUB_REPOSITORY",
                        "is not set and the payload names no repository: pass --repository owner/repo",
                    )
                })?;
                repo_name(&full, "repository.full_name")?
            }
        },
    };
    if let Some(owner) = nonempty(runner.github_repository_owner.clone())
        && !owner.eq_ignore_ascii_case(&repository.owner)
    {
        return Err(InputError::new(
            "GITHUB_REPOSITORY_OWNER",
            format!("'{owner}' is not the owner of '{}'", repository.full()),
        ));
    }
    Ok(repository)
}

/// The action's inputs as given: `INPUT_*` (names lowercased, dashes kept), then `--input`s of
/// the local CLI over them, each of which must be an input of the action.
fn raw_inputs(env: &ProcessEnv, flags: &Overrides) -> Result<RawInputs, InputError> {
    let mut raw: HashMap<String, String> = env
        .vars
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("INPUT_")?.to_ascii_lowercase(), v.clone())))
        .collect();
    for (name, value) in &flags.inputs {
        let name = name.trim().to_ascii_lowercase();
        if !inputs::INPUT_NAMES.contains(&name.as_str()) {
            return Err(InputError::new(
                "--input",
                format!("'{name}' is not an input of this action: known inputs are {}", inputs::INPUT_NAMES.join(", ")),
            ));
        }
        raw.insert(name, value.clone());
    }
    envy::from_iter(raw).map_err(|e| InputError::new("inputs", format!("cannot read the action's inputs: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_head_from_a_git_directory() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        assert_eq!(git_head(dir.path()), None, "no HEAD yet");
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        std::fs::write(git.join("HEAD"), format!("{a}\n")).unwrap();
        assert_eq!(git_head(dir.path()), Some(a.clone()), "detached");
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(git.join("packed-refs"), format!("# pack-refs with: peeled\n{b} refs/heads/main\n")).unwrap();
        assert_eq!(git_head(dir.path()), Some(b), "packed ref");
        std::fs::write(git.join("refs/heads/main"), format!("{a}\n")).unwrap();
        assert_eq!(git_head(dir.path()), Some(a), "a loose ref wins over the packed one");
        assert_eq!(git_head(&dir.path().join("elsewhere")), None);
    }
}
