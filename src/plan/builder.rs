//! Where the build runs: the `builder` input, with the one rule trust adds to it.

use serde::Serialize;

use crate::context::builder::BuilderSpec;

/// Where the build runs, decided before anything runs; `buildx` resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BuilderPlan {
    /// A `docker-container` builder made for this run and removed after it.
    New,
    /// The Docker daemon's own BuildKit (`docker` driver).
    Default,
    /// A builder of the user's: its record when the action can see it, else `container` on
    /// the daemon, attached with the remote driver.
    Named { name: String, container: String },
    /// A BuildKit endpoint, attached with the remote driver for this run.
    Remote { endpoint: String, tls: bool },
}

impl BuilderPlan {
    /// Untrusted code never runs on a BuildKit that outlives the job: its cache mounts and
    /// local cache would reach the next trusted build on that endpoint.
    pub(super) fn of(builder: Option<&BuilderSpec>, trusted: bool, warnings: &mut Vec<String>) -> Self {
        match builder {
            None => BuilderPlan::New,
            Some(BuilderSpec::Default) => BuilderPlan::Default,
            Some(BuilderSpec::Named(name)) => {
                BuilderPlan::Named { name: name.clone(), container: format!("buildx_buildkit_{name}0") }
            }
            Some(BuilderSpec::Endpoint(ep)) if !trusted => {
                warnings.push(format!(
                    "Untrusted code does not run on the shared BuildKit at {}: this run builds on a builder of its own, so nothing it does can reach that BuildKit's cache.",
                    ep.url
                ));
                BuilderPlan::New
            }
            Some(BuilderSpec::Endpoint(ep)) => BuilderPlan::Remote { endpoint: ep.url.clone(), tls: ep.tls.is_some() },
        }
    }

    /// The `--builder` the plan's command names; the others are made by the run.
    pub(super) fn flag(&self) -> Option<&str> {
        match self {
            BuilderPlan::Default => Some("default"),
            BuilderPlan::Named { name, .. } => Some(name),
            BuilderPlan::New | BuilderPlan::Remote { .. } => None,
        }
    }
}
