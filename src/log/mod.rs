//! The build log: BuildKit's progress stream (`--progress rawjson`) read as it comes, counted
//! (cache hits, the stores a step used, a failure's cause) and shown as buildx's
//! `--progress=plain` shows it (`render`).

pub mod progress;
mod render;
pub mod status;
