//! The one place that pins the engine a user's build runs on when the action makes the builder:
//! the buildx plugin the image carries and the BuildKit its builder runs. The top-level
//! `Dockerfile`'s default and the real-engine suite are checked against these (tests), so that
//! what ships is what is tested. By version: a digest is written only where it was resolved
//! (the release workflow resolves and verifies them).

/// The buildx release the action image carries (`docker buildx version`).
pub const BUILDX_VERSION: &str = "0.36.1";

/// The BuildKit release a builder made by the action runs.
pub const BUILDKIT_VERSION: &str = "0.32.2";

/// The image the `Dockerfile` takes the buildx plugin from (`/buildx` in it).
pub const BUILDX_IMAGE: &str = "docker/buildx-bin:0.36.1";

/// The image of a builder the action makes (docker-container driver), instead of buildx's
/// unpinned default `moby/buildkit:buildx-stable-1`.
pub const BUILDKIT_IMAGE: &str = "moby/buildkit:v0.32.2";

/// What the pinned BuildKit image runs (moby/buildkit v0.32.2's `buildkit-linux` stage): a
/// script that gives buildkitd its own cgroup namespace on cgroup v2 hosts, then runs it. The
/// action image keeps it, and a builder started from that image runs it, as buildx's do.
pub const BUILDKIT_ENTRYPOINT: &str = "/usr/bin/buildkitd-entrypoint";

/// The architectures whose QEMU emulators (`buildkit-qemu-*`) the action image keeps of the
/// pinned BuildKit image's (`Dockerfile`; each platform's image lacks its own): moby/buildkit
/// v0.32.2 takes tonistiigi/binfmt's `buildkit-v10.2.3-66` emulators. BuildKit runs a step of
/// such a platform through them when the kernel has no handler registered, so a builder started
/// from the action's image needs no `tonistiigi/binfmt` for these. The rest (riscv64, ppc64le,
/// s390x, 386: about 2.5 MB compressed each) are left out; those platforms get QEMU registered on
/// the host, as for buildx's own builders.
pub const BUILDKIT_EMULATED_ARCHS: &[&str] = &["amd64", "arm64", "arm"];
