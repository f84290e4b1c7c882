//! The README opens with two commands that must work verbatim on a fresh clone. The first is
//! `cargo run --release -- plan …`: it breaks as soon as `cargo run` cannot tell which binary
//! target to run (this package also has the `fake-docker` test double), so this test asks cargo
//! itself which target that is, then runs that target with the README's own arguments.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The README's fenced commands, in order.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = text.split("```sh\n").nth(1).expect("the README opens with a ```sh block");
    let block = block.split("```").next().unwrap();
    block.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// Which binary `cargo run` (no `--bin`) picks, by cargo's rule: `default-run`, else the only
/// binary target; `Err` with cargo's complaint when it cannot choose.
fn binary_cargo_run_picks() -> Result<String, String> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = &meta["packages"][0];
    let bins: Vec<&str> = package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    if let Some(default) = package["default_run"].as_str() {
        return Ok(default.to_string());
    }
    match bins.as_slice() {
        [only] => Ok(only.to_string()),
        many => {
            Err(format!("`cargo run` could not determine which binary to run; available binaries: {}", many.join(", ")))
        }
    }
}

#[test]
fn the_first_readme_command_runs_the_action_binary() {
    let commands = readme_commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let first: Vec<&str> = commands[0].split_whitespace().collect();
    assert_eq!(&first[..4], ["cargo", "run", "--release", "--"], "{first:?}");
    assert!(!first.contains(&"--bin"), "the README's command names no binary, so cargo must pick one by itself");
    assert_eq!(binary_cargo_run_picks().as_deref(), Ok("secure-docker-images"));

    let out = Command::new(env!("CARGO_BIN_EXE_secure-docker-images"))
        .args(&first[4..])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_EVENT_NAME")
        .env_remove("GITHUB_REPOSITORY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("docker buildx build"), "{stdout}");
    assert!(stdout.contains("trusted:      no: "), "a fork PR is untrusted: {stdout}");
}

#[test]
fn the_second_readme_command_is_the_one_ci_runs() {
    let commands = readme_commands();
    assert_eq!(commands[1], "cargo test --locked");
    let ci = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == commands[1]), ".ci/run runs exactly the README's test command");
}
