//! Action inputs: read raw (`RawInputs`, strings as the runner gives them), then lowered once
//! into `Inputs`, whose fields are validated types. Nothing downstream sees a raw string.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

use super::InputError;
use super::builder::BuilderSpec;

/// Every input of action.yml, as the runner passes it (`INPUT_<NAME>`, hyphens kept).
/// An empty value means "not set", as it does for the runner.
#[derive(Debug, Default, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, rename_all = "kebab-case")]
pub struct RawInputs {
    pub image: Option<String>,
    pub registry: Option<String>,
    pub context: Option<String>,
    pub file: Option<String>,
    pub target: Option<String>,
    pub platforms: Option<String>,
    pub tags: Option<String>,
    pub labels: Option<String>,
    pub build_args: Option<String>,
    pub push: Option<String>,
    pub secrets: Option<String>,
    pub secret_envs: Option<String>,
    pub secret_files: Option<String>,
    pub cache_image: Option<String>,
    pub cache_mode: Option<String>,
    pub fork_cache: Option<String>,
    pub github_token: Option<String>,
    pub builder: Option<String>,
    pub builder_tls_cacert: Option<String>,
    pub builder_tls_cert: Option<String>,
    pub builder_tls_key: Option<String>,
    pub provenance: Option<String>,
    pub sbom: Option<String>,
    pub dry_run: Option<String>,
    pub prune_cache: Option<String>,
    pub prune_keep_days: Option<String>,
    pub push_by_digest: Option<String>,
    pub merge_digests: Option<String>,
    pub verify_secrets: Option<String>,
    pub cache_mounts: Option<String>,
    pub cache_mounts_max_size: Option<String>,
    pub cache_mounts_image: Option<String>,
    pub pr_cache: Option<String>,
    pub secrets_proof_key: Option<String>,
}

/// Input names, as declared in action.yml.
pub const INPUT_NAMES: &[&str] = &[
    "image",
    "registry",
    "context",
    "file",
    "target",
    "platforms",
    "tags",
    "labels",
    "build-args",
    "push",
    "secrets",
    "secret-envs",
    "secret-files",
    "cache-image",
    "cache-mode",
    "fork-cache",
    "github-token",
    "builder",
    "builder-tls-cacert",
    "builder-tls-cert",
    "builder-tls-key",
    "provenance",
    "sbom",
    "dry-run",
    "prune-cache",
    "prune-keep-days",
    "push-by-digest",
    "merge-digests",
    "verify-secrets",
    "cache-mounts",
    "cache-mounts-max-size",
    "cache-mounts-image",
    "pr-cache",
    "secrets-proof-key",
];

pub const DEFAULT_REGISTRY: &str = "ghcr.io";
pub const DEFAULT_PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64"];

/// A value that must never be printed: `Debug` shows `***` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Masked(String);

impl Masked {
    pub fn new(value: String) -> Self {
        Masked(value)
    }
    /// The value itself, for the few places that hand it to a child process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `<registry>/<path>`, lowercased and checked against the distribution reference grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    full: String,
}

impl ImageName {
    pub fn as_str(&self) -> &str {
        &self.full
    }
    /// The registry host (with port), the part a login is for.
    pub fn registry(&self) -> &str {
        self.full.split('/').next().unwrap_or_default()
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// An `os/arch[/variant]` that buildx and BuildKit know.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform(String);

impl Platform {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tag from the `tags` input: bare (`v1`, gets the image prefix) or a full reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagInput {
    Bare(String),
    Full(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushPolicy {
    /// Only trusted main-lane runs push.
    Auto,
    /// Push whenever the run is trusted; downgraded (with a warning) when it is not.
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    Max,
    Min,
}

impl CacheMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Max => "max",
            CacheMode::Min => "min",
        }
    }
}

/// What an untrusted run may do with caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkCache {
    /// Read the registry cache (public packages need no login), write nothing.
    RegistryRead,
    /// Read the registry cache and read/write the PR-scoped GitHub Actions cache.
    Gha,
    /// No cache at all.
    None,
}

/// Which cache tag same-repository pull requests write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrCache {
    /// One `:buildcache-pr` for every pr-lane run.
    Shared,
    /// `:buildcache-pr-<N>` per pull request, so concurrent PRs do not overwrite each other.
    PerPr,
}

/// Where buildx finds a secret's value. Values themselves never live here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// From the `secrets` input: the value travels in the child's environment under `env`.
    Value { env: String },
    /// From `secret-envs`: an environment variable of the action.
    Env { env: String },
    /// From `secret-files`: a file in the workspace.
    File { path: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    /// The input that declared it, for error messages.
    pub input: &'static str,
    pub source: SecretSource,
    /// Whether the value is there (set and non-empty, or a readable file). An untrusted run
    /// gets no secrets anyway, so a missing one is an error only for trusted runs.
    pub available: bool,
}

impl SecretSpec {
    /// The `--secret` value for buildx, which parses it as CSV.
    pub fn buildx_arg(&self) -> String {
        match &self.source {
            SecretSource::Value { env } | SecretSource::Env { env } => {
                format!("id={},env={}", self.id, env)
            }
            SecretSource::File { path } => {
                format!("id={},{}", self.id, csv_field(&format!("src={path}")))
            }
        }
    }
}

/// Quotes one CSV field the way Go's encoding/csv reads it back.
pub fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Prefix of the environment names that carry `secrets:` values to buildx.
pub const SECRET_ENV_PREFIX: &str = "SDI_SECRET_";

#[derive(Debug, Clone)]
pub struct Inputs {
    pub image: ImageName,
    pub cache_image: ImageName,
    pub context: String,
    pub file: Option<String>,
    pub target: Option<String>,
    pub platforms: Vec<Platform>,
    pub tags: Vec<TagInput>,
    pub labels: Vec<(String, String)>,
    pub build_args: Vec<(String, String)>,
    pub push: PushPolicy,
    pub secrets: Vec<SecretSpec>,
    pub cache_mode: CacheMode,
    pub fork_cache: ForkCache,
    pub github_token: Option<Masked>,
    pub builder: Option<BuilderSpec>,
    pub provenance: Option<String>,
    pub sbom: Option<String>,
    pub dry_run: bool,
    /// After a successful trusted build, delete old untagged versions of the cache package.
    pub prune_cache: bool,
    pub prune_keep_days: u32,
    /// One platform per job, pushed by digest only, with per-platform cache refs.
    pub push_by_digest: bool,
    /// Merge mode: the per-platform digests to combine into one manifest list.
    pub merge_digests: Vec<Digest>,
    /// Scan the built image for the secrets' values before any tag points at it (`auto`).
    pub verify_secrets: bool,
    /// Carry `RUN --mount=type=cache` stores across runs through the registry (`auto`).
    pub cache_mounts: bool,
    pub cache_mounts_max_bytes: u64,
    /// The small image with a shell that the helper builds copying mount contents run in.
    pub cache_mounts_image: String,
    pub pr_cache: PrCache,
    /// Keys the proof ledger: with it, layers proven clean of these very secret values are not
    /// scanned again.
    pub secrets_proof_key: Option<Masked>,
}

/// The default helper image for cache mounts: busybox, pinned by digest.
pub const DEFAULT_CACHE_MOUNTS_IMAGE: &str =
    "busybox:1.37@sha256:b3255e7dfbcd10cb367af0d409747d511aeb66dfac98cf30e97e87e4207dd76f";

/// `2GiB`, `500MB`, `1073741824`: a size in bytes.
fn size(input: &str, raw: &Option<String>, default: u64) -> Result<u64, InputError> {
    let Some(v) = value(raw) else { return Ok(default) };
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = v[digits.len()..].trim().to_ascii_lowercase();
    let factor: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if factor > 0 => Ok(n.saturating_mul(factor)),
        _ => Err(err(
            input,
            format!("'{v}' is not a size: write a number of bytes with an optional unit, such as 2GiB or 500MB"),
        )),
    }
}

/// A `sha256:<64 hex>` manifest digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
            .then(|| Digest(format!("sha256:{hex}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where buildx reads the Dockerfile from: `file`, else `<context>/Dockerfile`. A remote
/// context (a git URL) has its Dockerfile at its root.
pub fn dockerfile_path(context: &str, file: Option<&str>) -> String {
    if let Some(f) = file {
        return f.trim_start_matches("./").to_string();
    }
    let remote = context.contains("://") || context.starts_with("git@");
    match context.trim_start_matches("./").trim_end_matches('/') {
        "" | "." => "Dockerfile".into(),
        _ if remote => "Dockerfile".into(),
        dir => format!("{dir}/Dockerfile"),
    }
}

impl Inputs {
    /// The Dockerfile, as a path in the workspace.
    pub fn dockerfile_path(&self) -> String {
        dockerfile_path(&self.context, self.file.as_deref())
    }
}

/// Secret values from the `secrets` input, keyed by the environment name buildx reads.
#[derive(Debug, Clone, Default)]
pub struct SecretValues(pub Vec<(String, Masked)>);

/// What lowering needs from the outside world, so that it stays testable.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn is_readable_file(&self, path: &str) -> bool;
    /// The names of the entries of a directory, or `None` when it is not one.
    fn dir_entries(&self, path: &str) -> Option<Vec<String>>;
}

/// `merge-digests`: digests one a line, or one line naming a directory whose entries are
/// named by the digests (with or without `sha256:`), as docker's multi-platform recipe
/// leaves them after downloading the per-platform artifacts.
fn merge_digests(raw: &Option<String>, env: &dyn Environment) -> Result<Vec<Digest>, InputError> {
    let items = lines(raw);
    let names: Vec<String> = match items.as_slice() {
        [] => return Ok(Vec::new()),
        [(_, only)] if Digest::parse(only).is_none() && !only.starts_with("sha256:") => match env.dir_entries(only) {
            Some(entries) if !entries.is_empty() => entries,
            Some(_) => {
                return Err(err("merge-digests", format!("the directory '{only}' is empty: no digest to merge")));
            }
            None => {
                return Err(err(
                    "merge-digests",
                    format!("'{only}' is neither a sha256 digest nor a directory of digest files"),
                ));
            }
        },
        _ => items.iter().map(|(_, l)| l.to_string()).collect(),
    };
    let mut digests = Vec::new();
    for name in names {
        let d = Digest::parse(&name).ok_or_else(|| {
            err("merge-digests", format!("'{name}' is not a digest: write sha256: and 64 lowercase hex digits"))
        })?;
        if digests.contains(&d) {
            return Err(err("merge-digests", format!("{} is listed twice", d.as_str())));
        }
        digests.push(d);
    }
    digests.sort();
    Ok(digests)
}

fn err(input: &str, message: impl Into<String>) -> InputError {
    InputError::new(input, message)
}

/// A set input's value: `None` for absent or blank.
fn value(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// One item a line; blank lines dropped.
fn lines(raw: &Option<String>) -> Vec<(usize, &str)> {
    raw.as_deref()
        .unwrap_or_default()
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

/// One item a line or comma-separated, as docker's actions accept for tags and platforms.
fn list(raw: &Option<String>) -> Vec<&str> {
    raw.as_deref().unwrap_or_default().split(['\n', ',']).map(str::trim).filter(|l| !l.is_empty()).collect()
}

fn single_line<'a>(input: &str, raw: &'a Option<String>) -> Result<Option<&'a str>, InputError> {
    match value(raw) {
        Some(v) if v.contains(['\n', '\r']) => Err(err(input, "must be a single line")),
        other => Ok(other),
    }
}

/// YAML 1.2 core booleans, as `@actions/core`'s `getBooleanInput` accepts them.
fn boolean(input: &str, raw: &Option<String>, default: bool) -> Result<bool, InputError> {
    match value(raw) {
        None => Ok(default),
        Some("true" | "True" | "TRUE") => Ok(true),
        Some("false" | "False" | "FALSE") => Ok(false),
        Some(other) => Err(err(input, format!("'{other}' is not a boolean: use true or false"))),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Names that go into argv (`--target`, `--builder`, secret ids): `[A-Za-z0-9_.-]`, not
/// starting with `-` so they can never read as a flag.
fn simple_name(input: &str, what: &str, name: &str) -> Result<(), InputError> {
    if name.is_empty() {
        return Err(err(input, format!("{what} is empty")));
    }
    if name.starts_with('-') || !name.chars().all(is_name_char) {
        return Err(err(
            input,
            format!("{what} '{name}' may use only letters, digits, '_', '.' and '-', and must not start with '-'"),
        ));
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `localhost`, or a host with a `.` or a port: docker's rule for "this is a registry".
pub fn is_registry_host(component: &str) -> bool {
    component == "localhost" || component.contains(['.', ':'])
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`: one label of a registry host.
fn is_domain_component(c: &str) -> bool {
    !c.is_empty()
        && !c.starts_with('-')
        && !c.ends_with('-')
        && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
}

/// `host[:port]` of the distribution reference grammar.
fn is_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    !host.is_empty()
        && host.split('.').all(is_domain_component)
        && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: one path component of a repository name.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or any number of "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// A repository name (no tag, no digest) by the grammar of distribution/reference, which
/// docker and buildx use. Written out rather than taken from a crate's regex: compiling
/// that regex cost ~30 ms per run, three times the whole `plan` budget.
pub fn is_valid_repository_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && is_registry_host(parts[0]) {
        if !is_domain(parts[0]) {
            return false;
        }
        parts.remove(0);
    }
    !parts.is_empty() && parts.iter().all(|p| is_path_component(p))
}

fn registry(raw: &Option<String>) -> Result<String, InputError> {
    let Some(registry) = single_line("registry", raw)? else {
        return Ok(DEFAULT_REGISTRY.to_string());
    };
    let registry = registry.trim_end_matches('/').to_ascii_lowercase();
    let port_ok = registry.split_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_ok());
    if !is_domain(&registry) || !port_ok {
        return Err(err(
            "registry",
            format!(
                "'{registry}' is not a registry host: write a host name with an optional port, such as ghcr.io or localhost:5000"
            ),
        ));
    }
    Ok(registry)
}

/// Lowers `image` or `cache-image` into a full image name.
fn image_name(input: &str, given: &str, registry: &str) -> Result<ImageName, InputError> {
    if given.contains(['\n', '\r']) {
        return Err(err(input, "must be a single line"));
    }
    let lowered = given.trim().trim_matches('/').to_ascii_lowercase();
    let first = lowered.split('/').next().unwrap_or_default();
    let full = if lowered.contains('/') && is_registry_host(first) {
        lowered.clone()
    } else {
        format!("{registry}/{lowered}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if full.contains('@') || last.contains(':') {
        return Err(err(
            input,
            format!("'{given}' includes a tag or digest: give the repository only and put tags in the 'tags' input"),
        ));
    }
    if is_valid_repository_name(&full) {
        Ok(ImageName { full })
    } else {
        Err(err(
            input,
            format!(
                "'{given}' is not a valid image name: use lowercase letters, digits and the separators '.', '_', '__', '-' and '/', such as my-org/my-app"
            ),
        ))
    }
}

const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
    "solaris",
    "aix",
    "android",
    "ios",
    "plan9",
    "js",
    "wasip1",
];
const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64", "mipsle", "mips",
    "loong64", "wasm",
];

/// Common spellings of an architecture that buildx does not take.
fn arch_alias(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "x86-64" | "x64" => Some("amd64"),
        "aarch64" | "armv8" => Some("arm64"),
        "armhf" | "armv7" | "armv7l" => Some("arm/v7"),
        "armel" | "armv6" | "armv6l" => Some("arm/v6"),
        "i386" | "i686" | "x86" => Some("386"),
        _ => None,
    }
}

fn platform(item: &str) -> Result<Platform, InputError> {
    let parts: Vec<&str> = item.split('/').collect();
    let bad = |why: String| err("platforms", format!("'{item}' {why}"));
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("is not of the form os/arch[/variant], such as linux/amd64 or linux/arm/v7".into()));
    }
    let (os, arch) = (parts[0], parts[1]);
    if !KNOWN_OS.contains(&os) {
        let hint = if KNOWN_OS.contains(&os.to_ascii_lowercase().as_str()) {
            format!(": write it in lower case ({})", item.to_ascii_lowercase())
        } else {
            ": the first part is the operating system, such as linux".to_string()
        };
        return Err(bad(format!("names an unknown operating system '{os}'{hint}")));
    }
    if !KNOWN_ARCH.contains(&arch) {
        let hint = match arch_alias(&arch.to_ascii_lowercase()) {
            Some(fixed) => format!(": did you mean {os}/{fixed}?"),
            None => format!(": known architectures are {}", KNOWN_ARCH.join(", ")),
        };
        return Err(bad(format!("names an unknown architecture '{arch}'{hint}")));
    }
    if let Some(variant) = parts.get(2) {
        let ok =
            !variant.is_empty() && variant.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.');
        if !ok {
            return Err(bad(format!("has an invalid variant '{variant}': variants look like v7 or v8.2")));
        }
    }
    Ok(Platform(item.to_string()))
}

fn platforms(raw: &Option<String>) -> Result<Vec<Platform>, InputError> {
    let items = list(raw);
    if items.is_empty() {
        return Ok(DEFAULT_PLATFORMS.iter().map(|p| Platform(p.to_string())).collect());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        let p = platform(item)?;
        if !seen.insert(p.clone()) {
            return Err(err("platforms", format!("'{item}' is listed twice")));
        }
        out.push(p);
    }
    Ok(out)
}

/// The tag grammar of the distribution spec.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    tag.len() <= 128
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(is_name_char)
}

fn tags(raw: &Option<String>) -> Result<Vec<TagInput>, InputError> {
    let mut out = Vec::new();
    for item in list(raw) {
        if !item.contains(['/', ':', '@']) {
            if !is_valid_tag(item) {
                return Err(err(
                    "tags",
                    format!(
                        "'{item}' is not a valid tag: use at most 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
                    ),
                ));
            }
            out.push(TagInput::Bare(item.to_string()));
            continue;
        }
        // A full reference: the repository part is lowercased like `image`, the tag kept.
        let (name, tag) = match item.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (item, None),
        };
        let Some(tag) = tag.filter(|_| !item.contains('@')) else {
            return Err(err(
                "tags",
                format!("'{item}' has no tag: write name:tag, or a bare tag such as v1 to tag the image"),
            ));
        };
        let name = name.to_ascii_lowercase();
        if !is_valid_repository_name(&name) || !is_valid_tag(tag) {
            return Err(err(
                "tags",
                format!(
                    "'{item}' is not a valid image reference: write registry/name:tag with a tag of [A-Za-z0-9_.-]"
                ),
            ));
        }
        out.push(TagInput::Full(format!("{name}:{tag}")));
    }
    Ok(out)
}

/// `key=value` lines (labels, build-args). Only the first `=` splits.
fn pairs(input: &str, raw: &Option<String>, what: &str) -> Result<Vec<(String, String)>, InputError> {
    let mut out = Vec::new();
    for (n, line) in lines(raw) {
        let Some((key, val)) = line.split_once('=') else {
            return Err(err(input, format!("line {n} ('{line}') has no '=': write {what}")));
        };
        let key = key.trim();
        if key.is_empty() || key.starts_with('-') || key.chars().any(char::is_whitespace) {
            return Err(err(
                input,
                format!(
                    "line {n} has an invalid name '{key}': names are not empty, have no spaces and do not start with '-'"
                ),
            ));
        }
        out.push((key.to_string(), val.trim().to_string()));
    }
    Ok(out)
}

/// Splits a secret line at its first `=`. The message never repeats the line: it may be a value.
fn secret_line<'a>(input: &str, n: usize, line: &'a str, what: &str) -> Result<(&'a str, &'a str), InputError> {
    let Some((id, rest)) = line.split_once('=') else {
        return Err(err(input, format!("line {n} has no '=': write {what}, one a line")));
    };
    let id = id.trim();
    if id.is_empty() {
        return Err(err(input, format!("line {n} has an empty id before '=': write {what}")));
    }
    simple_name(input, &format!("the id on line {n}"), id)?;
    Ok((id, rest))
}

fn secrets(raw: &RawInputs, env: &dyn Environment) -> Result<(Vec<SecretSpec>, SecretValues), InputError> {
    let mut specs: Vec<SecretSpec> = Vec::new();
    let mut values = SecretValues::default();
    let mut push = |spec: SecretSpec| -> Result<(), InputError> {
        if let Some(other) = specs.iter().find(|s| s.id == spec.id) {
            return Err(err(
                spec.input,
                format!(
                    "secret id '{}' is declared twice (also in '{}'): every id must be unique",
                    spec.id, other.input
                ),
            ));
        }
        specs.push(spec);
        Ok(())
    };
    for (n, line) in lines(&raw.secrets) {
        let (id, val) = secret_line("secrets", n, line, "id=value")?;
        let env_name = format!("{SECRET_ENV_PREFIX}{}", values.0.len());
        let available = !val.is_empty();
        values.0.push((env_name.clone(), Masked::new(val.to_string())));
        push(SecretSpec { id: id.into(), input: "secrets", source: SecretSource::Value { env: env_name }, available })?;
    }
    for (n, line) in lines(&raw.secret_envs) {
        let (id, name) = secret_line("secret-envs", n, line, "id=ENV_NAME")?;
        let name = name.trim();
        if !is_env_name(name) {
            return Err(err(
                "secret-envs",
                format!("line {n}: '{name}' is not an environment variable name: use letters, digits and '_'"),
            ));
        }
        if name.starts_with(SECRET_ENV_PREFIX) {
            return Err(err(
                "secret-envs",
                format!("line {n}: names starting with {SECRET_ENV_PREFIX} are reserved for this action"),
            ));
        }
        let available = env.var(name).is_some_and(|v| !v.is_empty());
        push(SecretSpec {
            id: id.into(),
            input: "secret-envs",
            source: SecretSource::Env { env: name.into() },
            available,
        })?;
    }
    for (n, line) in lines(&raw.secret_files) {
        let (id, path) = secret_line("secret-files", n, line, "id=path")?;
        let path = path.trim();
        if path.is_empty() {
            return Err(err("secret-files", format!("line {n}: the path after '=' is empty")));
        }
        let available = env.is_readable_file(path);
        push(SecretSpec {
            id: id.into(),
            input: "secret-files",
            source: SecretSource::File { path: path.into() },
            available,
        })?;
    }
    Ok((specs, values))
}

/// `secrets-proof-key`: a key of its own for the proof ledger, long enough to be guessed by no one.
fn proof_key(raw: &Option<String>) -> Result<Option<Masked>, InputError> {
    match value(raw) {
        Some(k) if k.len() < 32 || k.contains(['\n', '\r']) => Err(err(
            "secrets-proof-key",
            "must be one line of at least 32 random characters (openssl rand -base64 32), kept as a repository secret",
        )),
        k => Ok(k.map(|k| Masked::new(k.to_string()))),
    }
}

fn choice<T: Copy>(input: &str, raw: &Option<String>, default: T, options: &[(&str, T)]) -> Result<T, InputError> {
    let Some(given) = value(raw) else {
        return Ok(default);
    };
    options.iter().find(|(name, _)| name.eq_ignore_ascii_case(given)).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        err(input, format!("'{given}' is not one of {}", names.join(", ")))
    })
}

fn path_like(input: &str, raw: &Option<String>) -> Result<Option<String>, InputError> {
    match single_line(input, raw)? {
        Some(v) if v.starts_with('-') => Err(err(
            input,
            format!("'{v}' starts with '-', which buildx would read as a flag or as standard input: write ./{v}"),
        )),
        other => Ok(other.map(str::to_string)),
    }
}

impl RawInputs {
    /// Lowers the raw inputs; `repository` is `owner/repo` for the default image name.
    pub fn lower(&self, repository: &str, env: &dyn Environment) -> Result<(Inputs, SecretValues), InputError> {
        let registry = registry(&self.registry)?;
        let image = match value(&self.image) {
            Some(given) => image_name("image", given, &registry)?,
            None => image_name("image", repository, &registry)
                .map_err(|e| err("GITHUB_REPOSITORY", format!("cannot make the default image name: {}", e.message)))?,
        };
        let cache_image = match value(&self.cache_image) {
            Some(given) => image_name("cache-image", given, &registry)?,
            None => image.clone(),
        };
        let target = single_line("target", &self.target)?.map(str::to_string);
        if let Some(t) = &target {
            simple_name("target", "the stage name", t)?;
        }
        let builder = super::builder::lower(
            &super::builder::RawBuilder {
                builder: value(&self.builder),
                cacert: value(&self.builder_tls_cacert),
                cert: value(&self.builder_tls_cert),
                key: value(&self.builder_tls_key),
            },
            env,
        )?;
        let (secrets, values) = secrets(self, env)?;
        let inputs = Inputs {
            image,
            cache_image,
            context: path_like("context", &self.context)?.unwrap_or_else(|| ".".to_string()),
            file: path_like("file", &self.file)?,
            target,
            platforms: platforms(&self.platforms)?,
            tags: tags(&self.tags)?,
            labels: pairs("labels", &self.labels, "key=value, one a line")?,
            build_args: pairs("build-args", &self.build_args, "NAME=value, one a line (use secret-envs for secrets)")?,
            push: choice(
                "push",
                &self.push,
                PushPolicy::Auto,
                &[("auto", PushPolicy::Auto), ("true", PushPolicy::Always), ("false", PushPolicy::Never)],
            )?,
            secrets,
            cache_mode: choice(
                "cache-mode",
                &self.cache_mode,
                CacheMode::Max,
                &[("max", CacheMode::Max), ("min", CacheMode::Min)],
            )?,
            fork_cache: choice(
                "fork-cache",
                &self.fork_cache,
                ForkCache::RegistryRead,
                &[("registry-read", ForkCache::RegistryRead), ("gha", ForkCache::Gha), ("none", ForkCache::None)],
            )?,
            github_token: value(&self.github_token).map(|t| Masked::new(t.to_string())),
            builder,
            provenance: single_line("provenance", &self.provenance)?.map(str::to_string),
            sbom: single_line("sbom", &self.sbom)?.map(str::to_string),
            dry_run: boolean("dry-run", &self.dry_run, false)?,
            prune_cache: boolean("prune-cache", &self.prune_cache, false)?,
            push_by_digest: boolean("push-by-digest", &self.push_by_digest, false)?,
            merge_digests: merge_digests(&self.merge_digests, env)?,
            verify_secrets: choice("verify-secrets", &self.verify_secrets, true, &[("auto", true), ("false", false)])?,
            cache_mounts: choice("cache-mounts", &self.cache_mounts, true, &[("auto", true), ("off", false)])?,
            cache_mounts_max_bytes: size("cache-mounts-max-size", &self.cache_mounts_max_size, 2 << 30)?,
            cache_mounts_image: match single_line("cache-mounts-image", &self.cache_mounts_image)? {
                Some(v) if v.starts_with('-') || v.contains(char::is_whitespace) => {
                    return Err(err("cache-mounts-image", format!("'{v}' is not an image reference")));
                }
                Some(v) => v.to_string(),
                None => DEFAULT_CACHE_MOUNTS_IMAGE.to_string(),
            },
            secrets_proof_key: proof_key(&self.secrets_proof_key)?,
            pr_cache: choice(
                "pr-cache",
                &self.pr_cache,
                PrCache::Shared,
                &[("shared", PrCache::Shared), ("per-pr", PrCache::PerPr)],
            )?,
            prune_keep_days: match value(&self.prune_keep_days) {
                None => 7,
                Some(v) => {
                    v.parse::<u32>().ok().filter(|d| *d <= 3650).ok_or_else(|| {
                        err("prune-keep-days", format!("'{v}' is not a number of days from 0 to 3650"))
                    })?
                }
            },
        };
        if inputs.push_by_digest && inputs.platforms.len() != 1 {
            return Err(err(
                "push-by-digest",
                format!(
                    "builds one platform per job, but platforms lists {}: set platforms to the one platform of this job's runner",
                    inputs.platforms.len()
                ),
            ));
        }
        if inputs.push_by_digest && !inputs.merge_digests.is_empty() {
            return Err(err(
                "merge-digests",
                "merges the digests that push-by-digest jobs pushed; a job does one or the other, not both",
            ));
        }
        Ok((inputs, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_distribution_grammar() {
        for ok in [
            "ghcr.io/o/r",
            "localhost:5000/a/b",
            "localhost/app",
            "app",
            "a/b/c/d",
            "ghcr.io/my-org/my.app__x_y",
            "r.example.com:443/a---b",
            "docker.io/library/alpine",
            "127.0.0.1:5000/sdi-e2e/app",
        ] {
            assert!(is_valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Ghcr.io/O/R/Upper",
            "ghcr.io/o/R",
            "ghcr.io/o/r:tag",
            "ghcr.io/o/-r",
            "ghcr.io/o/r-",
            "ghcr.io/o/a___b",
            "ghcr.io/o/a._b",
            "ghcr.io//r",
            "ghcr.io/",
            "-bad.io/r",
            "bad-.io/r",
            "host:port/r",
            "my app",
        ] {
            assert!(!is_valid_repository_name(bad), "{bad}");
        }
        assert!(!is_valid_repository_name(&format!("o/{}", "a".repeat(260))));
    }

    #[test]
    fn every_input_read_is_declared_and_every_declared_input_is_read() {
        let fields = serde_json::to_value(RawInputs::default()).unwrap();
        let mut read: Vec<&str> = fields.as_object().unwrap().keys().map(String::as_str).collect();
        let mut declared = INPUT_NAMES.to_vec();
        read.sort();
        declared.sort();
        assert_eq!(read, declared);
    }

    #[test]
    fn dockerfile_paths() {
        assert_eq!(dockerfile_path(".", None), "Dockerfile");
        assert_eq!(dockerfile_path("./app/", None), "app/Dockerfile");
        assert_eq!(dockerfile_path("app", Some("./docker/Dockerfile.prod")), "docker/Dockerfile.prod");
        assert_eq!(dockerfile_path("https://github.com/o/r.git#main", None), "Dockerfile");
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(is_valid_tag("v1.2.3-rc_1"));
        assert!(is_valid_tag("_x"));
        assert!(is_valid_tag(&"a".repeat(128)));
        for bad in ["", ".x", "-x", "a b", "a+b", "a:b", "a/b"] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
        assert!(!is_valid_tag(&"a".repeat(129)));
    }
}
