//! secure-docker-images: builds OCI images with Docker Buildx and decides by itself how far
//! to trust the code it builds.
//!
//! The pipeline (DESIGN.md): `context` (read) → `trust` (pure) → `plan` (pure) → effects.

pub mod buildx;
pub mod cleanup;
pub mod context;
pub mod dockerfile;
pub mod engine;
pub mod github;
#[doc(hidden)]
pub mod oci;
pub mod plan;
pub mod registry;
pub mod report;
pub mod stores_image;
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
