//! What ships is what is tested: the engine pinned in `src/pins.rs` is the one the top-level
//! `Dockerfile` takes by default and the one its names say.

#[test]
fn the_dockerfile_takes_the_pinned_buildx() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let default = dockerfile.lines().find_map(|l| l.strip_prefix("ARG BUILDX_IMAGE=")).expect("ARG BUILDX_IMAGE");
    assert_eq!(default, sdi::pins::BUILDX_IMAGE);
    assert!(dockerfile.contains("FROM ${BUILDX_IMAGE} AS buildx"), "{dockerfile}");
    // buildx on its own, on PATH: the image has no docker CLI to be a plugin of.
    assert!(dockerfile.contains("COPY --from=buildx /buildx /usr/local/bin/buildx"));
    assert_eq!(dockerfile.matches("buildx /usr/").count(), 1, "no second buildx");
    assert!(!dockerfile.contains("DOCKER_IMAGE") && !dockerfile.contains("/docker "), "no docker CLI");
}

#[test]
fn the_pinned_images_name_the_pinned_versions() {
    use sdi::pins::*;
    assert_eq!(BUILDX_IMAGE.rsplit_once(':').unwrap().1, BUILDX_VERSION);
    assert_eq!(BUILDKIT_IMAGE.rsplit_once(':').unwrap().1, format!("v{BUILDKIT_VERSION}"));
}

#[test]
fn the_image_carries_the_pinned_buildkit_and_says_so() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let default = dockerfile.lines().find_map(|l| l.strip_prefix("ARG BUILDKIT_IMAGE=")).expect("ARG BUILDKIT_IMAGE");
    assert_eq!(default, sdi::pins::BUILDKIT_IMAGE);
    // The final stage is made of BuildKit's image, and its label is what the binary checks
    // before it starts a builder from the image it runs in.
    assert!(dockerfile.lines().any(|l| l == "FROM ${BUILDKIT_IMAGE} AS buildkit"), "{dockerfile}");
    let last_from = dockerfile.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert_eq!(last_from, "FROM scratch");
    let label = format!("LABEL {}={}", sdi::engine::own_buildkit::LABEL, sdi::pins::BUILDKIT_VERSION);
    assert!(dockerfile.lines().any(|l| l == label), "{label} in {dockerfile}");
}

/// The final stage's instructions, continuation lines joined.
fn final_stage(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\n", " ");
    let start = joined.rfind("\nFROM ").unwrap();
    joined[start..].lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

#[test]
fn the_image_keeps_buildkits_daemon_and_the_emulators_the_binary_counts_on_and_no_buildctl() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let stage = final_stage(&dockerfile);
    let copied = |from: &str| -> Vec<String> {
        let prefix = format!("COPY --from={from} ");
        let words = stage.iter().filter_map(|l| l.strip_prefix(prefix.as_str()));
        words.flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>()).collect()
    };
    let from_buildkit = copied("buildkit");
    let from_build = copied("build");
    let userland = stage.iter().find(|l| l.ends_with(" / /")).expect("BuildKit's userland");
    assert!(userland.contains("--exclude=usr/bin/buildctl*") && userland.contains("--exclude=usr/bin/buildkit*"));
    assert!(from_buildkit.iter().any(|s| s == sdi::pins::BUILDKIT_ENTRYPOINT), "{from_buildkit:?}");
    for needed in ["/engine/buildkitd", "/engine/buildkit-runc"] {
        assert!(from_build.iter().any(|s| s == needed), "{needed} in {from_build:?}");
    }
    assert!(!from_buildkit.iter().chain(&from_build).any(|s| s.contains("buildctl") && !s.starts_with("--exclude")));
    // What comes from /engine is what the build stage stripped.
    let strip = dockerfile.replace("\\\n", " ");
    let strip = strip.lines().find(|l| l.contains("--strip-all")).expect("the engine is stripped");
    for engine in from_build.iter().filter(|s| s.starts_with("/engine/")) {
        assert!(strip.split_whitespace().any(|w| w == engine), "{engine} not stripped: {strip}");
    }
    // Each emulator the image keeps is an architecture src/pins.rs counts as emulated by the
    // image, and each of those is kept.
    let qemu: Vec<&str> = from_buildkit
        .iter()
        .filter_map(|s| s.strip_prefix("/usr/bin/buildkit-qemu-"))
        .map(|a| a.trim_end_matches('*'))
        .map(|a| match a {
            "aarch64" => "arm64",
            "x86_64" => "amd64",
            "i386" => "386",
            other => other,
        })
        .collect();
    let mut kept = qemu.clone();
    kept.sort();
    let mut counted = sdi::pins::BUILDKIT_EMULATED_ARCHS.to_vec();
    counted.sort();
    assert_eq!(kept, counted);
    // moby/buildkit's environment goes with its files.
    assert!(stage.iter().any(|l| l.starts_with("ENV ") && l.contains("BUILDKIT_SETUP_CGROUPV2_ROOT=1")), "{stage:?}");
}

#[test]
fn the_images_binary_is_built_small_and_its_hot_loops_at_full_speed() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo zigbuild --locked --profile dist "), "{dockerfile}");
    assert!(dockerfile.contains("\"target/${target}/dist/secure-docker-images\""), "{dockerfile}");
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let dist = manifest.split("[profile.dist]\n").nth(1).expect("[profile.dist]");
    let dist: Vec<&str> = dist.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(dist, ["inherits = \"release\"", "lto = \"fat\"", "codegen-units = 1", "opt-level = \"s\""]);
    // Where the run spends CPU stays at full speed.
    for hot in ["aho-corasick", "miniz_oxide", "flate2", "ruzstd", "sha2"] {
        let section = format!("[profile.dist.package.{hot}]\nopt-level = 3\n");
        assert!(manifest.contains(&section), "{section}");
    }
}
