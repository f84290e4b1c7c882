//! What ships is what is tested: the engine pinned in `src/engine.rs` is the one the top-level
//! `Dockerfile` takes by default and the one its names say.

#[test]
fn the_dockerfile_takes_the_pinned_buildx() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let default = dockerfile.lines().find_map(|l| l.strip_prefix("ARG BUILDX_IMAGE=")).expect("ARG BUILDX_IMAGE");
    assert_eq!(default, sdi::engine::BUILDX_IMAGE);
    assert!(dockerfile.contains("FROM ${BUILDX_IMAGE} AS buildx"), "{dockerfile}");
    assert!(dockerfile.contains("COPY --from=buildx /buildx /usr/local/libexec/docker/cli-plugins/docker-buildx"));
    assert!(!dockerfile.contains("--from=docker /usr/local/libexec/docker/cli-plugins"), "no second buildx");
}

#[test]
fn the_pinned_images_name_the_pinned_versions() {
    use sdi::engine::*;
    assert_eq!(BUILDX_IMAGE.rsplit_once(':').unwrap().1, BUILDX_VERSION);
    assert_eq!(BUILDKIT_IMAGE.rsplit_once(':').unwrap().1, format!("v{BUILDKIT_VERSION}"));
}

#[test]
fn the_image_carries_the_pinned_buildkit_and_says_so() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let default = dockerfile.lines().find_map(|l| l.strip_prefix("ARG BUILDKIT_IMAGE=")).expect("ARG BUILDKIT_IMAGE");
    assert_eq!(default, sdi::engine::BUILDKIT_IMAGE);
    // The final stage is BuildKit's image, and its label is what the binary checks before it
    // starts a builder from the image it runs in.
    let last_from = dockerfile.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert_eq!(last_from, "FROM ${BUILDKIT_IMAGE}");
    let label = format!("LABEL {}={}", sdi::buildx::own_buildkit::LABEL, sdi::engine::BUILDKIT_VERSION);
    assert!(dockerfile.lines().any(|l| l == label), "{label} in {dockerfile}");
}
