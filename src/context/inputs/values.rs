//! The validated types inputs are lowered into.

use std::fmt;

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
    pub(super) full: String,
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
pub struct Platform(pub(super) String);

impl Platform {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `annotations`: metadata-action's `key=value` lines, and buildx's own levelled ones.
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    pub unlevelled: Vec<super::Template>,
    pub levelled: Vec<String>,
}

impl Annotations {
    /// Set: the image gets the annotations (defaults included), as a workflow passing
    /// metadata-action's output to build-push-action's `annotations` does.
    pub fn given(&self) -> bool {
        !self.levelled.is_empty() || !self.unlevelled.is_empty()
    }
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

/// Whether a trusted push is signed (keyless, Sigstore): `auto` where the runner offers an
/// OIDC token, `true` requires it (an error before the build otherwise), `false` never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMode {
    Auto,
    Required,
    Off,
}

/// One Sigstore instance: its certificate authority, and what vouches for a signature's time:
/// a transparency log, a time-stamp authority, or both.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    pub fulcio: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rekor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsa: Option<String>,
}

/// Which instance signs, chosen by the repository's visibility as the token states it (as
/// actions/attest chooses): public repositories on the public-good instance, logged in Rekor;
/// the others on GitHub's own, time-stamped, so that no public log names them. One instance
/// for both when the user names one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SigstoreUrls {
    pub public: Instance,
    pub private: Instance,
}

pub const PUBLIC_FULCIO: &str = "https://fulcio.sigstore.dev";
pub const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";
pub const GITHUB_FULCIO: &str = "https://fulcio.githubapp.com";
pub const GITHUB_TSA: &str = "https://timestamp.githubapp.com/api/v1/timestamp";

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

/// Secret values from the `secrets` input, keyed by the environment name buildx reads.
#[derive(Debug, Clone, Default)]
pub struct SecretValues(pub Vec<(String, Masked)>);
