//! secure-docker-images: builds OCI images with Docker Buildx and decides by itself how far
//! to trust the code it builds.
//!
//! The pipeline (DESIGN.md): `context` (read) → `trust` (pure) → `plan` (pure) → effects, a
//! room per thing they talk to: `github` (the GitHub API), `engine` (the Docker daemon: its
//! Engine API, or its CLI where one is installed), `buildx` (builder, build, merge, tag), `log`
//! (BuildKit's progress as buildx's plain text), `mounts` (the cache-mount stores), `verify`
//! (the secret proof of the pushed image); `report` last. What several rooms share sits a floor
//! below them: `step` (a phase's annotations and outcome), `credentials` (the run's registry
//! logins), `registry` and `oci` (registry access, descriptors), `pins` (the engine pinned).

pub mod buildx;
pub mod cleanup;
pub mod context;
pub mod credentials;
pub mod dockerfile;
pub mod engine;
pub mod github;
pub mod log;
pub mod mounts;
#[doc(hidden)]
pub mod oci;
pub mod pins;
pub mod plan;
pub mod registry;
pub mod report;
pub mod sign;
pub mod step;
pub mod trust;
pub mod verify;

use context::{Context, InputError};
use plan::BuildPlan;
use trust::{ApiFacts, Trigger, classify};

/// Context (+ what the GitHub API said) → trust → plan: everything decided before any
/// command runs.
pub fn decide(ctx: &Context, api: &ApiFacts) -> Result<BuildPlan, InputError> {
    let decision = classify(&Trigger::of(ctx, api));
    plan::build(ctx, &decision, api)
}
