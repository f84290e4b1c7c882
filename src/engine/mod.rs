//! The Docker daemon: what a run asks of it besides buildx — its own container, BuildKit's
//! container, logins, QEMU, the image store (`containers`, `login`, `own_buildkit`) — through
//! the docker CLI where one is installed (it honours the user's contexts), through the Engine
//! API (`api`) where none is (the action's image); and the handle every docker and buildx call
//! goes through (`docker`: a private configuration, a sanitized environment, signals).

pub mod api;
pub mod containers;
pub mod docker;
pub mod login;
pub mod own_buildkit;

pub use docker::{Docker, Ended, Failure, Signals, cause_line, random_token};
