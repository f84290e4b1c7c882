//! What every phase of a run reports, whichever room it runs in (the Engine API, buildx, the
//! cache-mount helpers, the secret scan): its annotations and how it ended.

/// A message for the run's log and annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    /// `(path in the repository, line)`.
    pub location: Option<(String, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Error,
}

impl Annotation {
    pub fn warning(message: impl Into<String>) -> Self {
        Annotation { level: Level::Warning, message: message.into(), location: None }
    }
    pub fn notice(message: impl Into<String>) -> Self {
        Annotation { level: Level::Notice, message: message.into(), location: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Before the build: login, builder or platform check. The message says what to fix.
    SetupFailed(String),
    /// buildx exited non-zero.
    Failed {
        code: i32,
        error: Option<BuildError>,
    },
    /// The job was cancelled: the signal was forwarded to the child.
    Cancelled {
        signal: i32,
    },
    /// Pushed and tagged, but the signature could not be made or stored: the message names the
    /// step (token, certificate, log, registry, attestations API).
    SignFailed(String),
    /// Secret values were found in the built image; nothing was tagged.
    SecretsLeaked {
        hits: usize,
    },
}

/// A failed build's message and, when buildx printed the Dockerfile excerpt, where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub message: String,
    /// `(file name as buildx printed it, line)`.
    pub location: Option<(String, u32)>,
}
