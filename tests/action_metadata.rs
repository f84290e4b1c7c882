//! action.yml, the code and the README say the same thing: every input and output the code
//! knows is declared, with a description; the defaults are the code's; the README documents
//! each; the dogfood action differs from the published one only in where its image comes from.

use std::collections::BTreeSet;
use std::path::Path;

use sdi::context::inputs::INPUT_NAMES;
use sdi::report::OUTPUT_NAMES;
use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn keys(section: &Yaml) -> BTreeSet<String> {
    section.as_hash().unwrap().keys().map(|k| k.as_str().unwrap().to_string()).collect()
}

#[test]
fn inputs_and_outputs_match_the_code() {
    let action = load("action.yml");
    let inputs = &action["inputs"];
    assert_eq!(keys(inputs), INPUT_NAMES.iter().map(|s| s.to_string()).collect());
    assert_eq!(keys(&action["outputs"]), OUTPUT_NAMES.iter().map(|s| s.to_string()).collect());
    for name in INPUT_NAMES {
        let input = &inputs[*name];
        assert!(input["description"].as_str().is_some_and(|d| d.len() > 20), "{name} needs a description");
        assert!(!input["default"].is_badvalue(), "{name} needs a default");
        assert_eq!(input["required"].as_bool(), Some(false), "{name}: every input has a default");
    }
    for name in OUTPUT_NAMES {
        assert!(action["outputs"][*name]["description"].as_str().is_some(), "{name} needs a description");
    }
    assert_eq!(action["runs"]["using"].as_str(), Some("docker"));
    assert!(action["runs"]["image"].as_str().unwrap().starts_with("docker://ghcr.io/"));
    assert!(action["branding"]["icon"].as_str().is_some() && action["branding"]["color"].as_str().is_some());
}

#[test]
fn declared_defaults_are_the_codes_defaults() {
    let action = load("action.yml");
    let default = |name: &str| action["inputs"][name]["default"].as_str().unwrap().to_string();
    assert_eq!(default("registry"), sdi::context::inputs::DEFAULT_REGISTRY);
    assert_eq!(default("platforms"), sdi::context::inputs::DEFAULT_PLATFORMS.join(","));
    assert_eq!(default("context"), ".");
    assert_eq!(default("push"), "auto");
    assert_eq!(default("cache-mode"), "max");
    assert_eq!(default("fork-cache"), "registry-read");
    assert_eq!(default("dry-run"), "false");
    assert_eq!(default("push-by-digest"), "false");
    assert_eq!(default("prune-cache"), "false");
    assert_eq!(default("prune-keep-days"), "7");
    assert_eq!(default("github-token"), "${{ github.token }}");
    assert_eq!(default("verify-secrets"), "auto");
    assert_eq!(default("cache-mounts"), "auto");
    assert_eq!(default("cache-mounts-max-size"), "2GiB");
    assert_eq!(default("cache-mounts-image"), sdi::context::inputs::DEFAULT_CACHE_MOUNTS_IMAGE);
    // The empty defaults are the code's "not set".
    for name in [
        "image",
        "file",
        "target",
        "tags",
        "labels",
        "build-args",
        "secrets",
        "secret-envs",
        "secret-files",
        "cache-image",
        "builder",
        "provenance",
        "sbom",
        "merge-digests",
    ] {
        assert_eq!(default(name), "", "{name}");
    }
}

#[test]
fn the_readme_documents_every_input_and_output() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for name in INPUT_NAMES.iter().chain(OUTPUT_NAMES) {
        assert!(readme.contains(&format!("`{name}`")), "README does not mention `{name}`");
    }
}

/// The action for Docker 20.10 is the published one, its image the gzip copy of the same tag.
#[test]
fn the_gzip_action_is_the_published_one_on_the_gzip_copy() {
    let mut published = load("action.yml");
    let mut gzip = load("gzip/action.yml");
    let image = |doc: &Yaml| doc["runs"]["image"].as_str().unwrap().to_string();
    assert_eq!(image(&gzip), format!("{}-gzip", image(&published)));
    for doc in [&mut published, &mut gzip] {
        if let Some(Yaml::Hash(runs)) = doc.as_mut_hash().unwrap().get_mut(&Yaml::String("runs".into())) {
            runs.remove(&Yaml::String("image".into()));
        }
    }
    assert_eq!(published, gzip);
}

#[test]
fn the_dogfood_action_is_the_published_one_built_from_source() {
    let mut published = load("action.yml");
    let mut dogfood = load(".github/actions/dogfood/action.yml");
    assert_eq!(dogfood["runs"]["image"].as_str(), Some("../../../Dockerfile"));
    for doc in [&mut published, &mut dogfood] {
        let map = doc.as_mut_hash().unwrap();
        map.remove(&Yaml::String("name".into()));
        if let Some(Yaml::Hash(runs)) = map.get_mut(&Yaml::String("runs".into())) {
            runs.remove(&Yaml::String("image".into()));
        }
    }
    assert_eq!(published, dogfood);
}
