//! The proof ledger: a rebuild whose layers were already proven clean of the same secret
//! values reads none of them again; anything else is scanned — another key's (or a forged)
//! ledger, a new secret id, a rotated value, a changed layer — and a leak is still caught.

mod common;

use std::path::Path;

use common::run::*;

const KEY: &str = "k3y-0f-the-repository-0123456789abcdef";

fn ledger(dir: &Path) -> Option<serde_json::Value> {
    let manifest = std::fs::read(dir.join("v2/team/app/manifests/sdi-proofs")).ok()?;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(dir.join("v2/team/app/blobs").join(layer)).unwrap()).ok()
}

fn entries(dir: &Path) -> usize {
    ledger(dir).map_or(0, |l| l["entries"].as_array().unwrap().len())
}

/// `(layers read, layers proven before)` from the run's notice.
fn scanned(stdout: &str) -> (usize, usize) {
    let line =
        stdout.lines().find(|l| l.starts_with("::notice::No secret value in the image: ")).expect("a clean scan");
    let read = line["::notice::No secret value in the image: ".len()..].split(' ').next().unwrap().parse().unwrap();
    let proven = line.split("; ").nth(1).map_or(0, |p| p.split(' ').next().unwrap().parse().unwrap());
    (read, proven)
}

fn with_key(run: Run, key: &str) -> Run {
    run.with("INPUT_SECRETS-PROOF-KEY", key)
}

#[test]
fn a_rebuild_of_proven_layers_reads_none_of_them() {
    let (registry, dir) = common::dir_registry();
    let first = with_key(secret_push(&registry, dir.path()), KEY);
    let done = first.run();
    done.assert_success();
    assert_eq!(scanned(&done.stdout), (1, 0));
    assert_eq!(entries(dir.path()), 1, "one layer × one secret");
    let text = serde_json::to_string(&ledger(dir.path())).unwrap();
    assert!(!text.contains(ENV_SECRET) && !text.contains(KEY), "the ledger holds neither value nor key");

    let again = with_key(secret_push(&registry, dir.path()), KEY);
    let done = again.run();
    done.assert_success();
    assert_eq!(scanned(&done.stdout), (0, 1), "{}", done.stdout);
    let digest = again.outputs()["digest"].clone();
    let manifests = dir.path().join("v2/team/app/manifests");
    assert_eq!(
        std::fs::read(manifests.join("latest")).unwrap(),
        std::fs::read(manifests.join(digest)).unwrap(),
        "tagged"
    );
    // The key is a secret like the others: masked first, and nowhere else.
    let shown: Vec<&str> = done.stdout.lines().filter(|l| l.contains(KEY)).collect();
    assert_eq!(shown, [format!("::add-mask::{KEY}")]);
    for call in again.calls() {
        assert!(!call.to_string().contains(KEY));
    }
}

#[test]
fn another_keys_or_a_forged_ledger_proves_nothing() {
    let (registry, dir) = common::dir_registry();
    with_key(secret_push(&registry, dir.path()), KEY).run().assert_success();
    let other = with_key(secret_push(&registry, dir.path()), "another-key-of-someone-else-0123456789");
    let done = other.run();
    done.assert_success();
    assert_eq!(scanned(&done.stdout), (1, 0), "a ledger made with another key");

    // Someone who can push tags replaces the ledger: entries of their making, or junk.
    for forged in [
        serde_json::json!({"version": 1, "entries": ["0".repeat(64), "f".repeat(64)]}).to_string(),
        "not a ledger".to_string(),
    ] {
        let manifest = std::fs::read(dir.path().join("v2/team/app/manifests/sdi-proofs")).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        std::fs::write(dir.path().join("v2/team/app/blobs").join(layer), &forged).unwrap();
        let done = with_key(secret_push(&registry, dir.path()), KEY).run();
        done.assert_success();
        assert_eq!(scanned(&done.stdout), (1, 0), "forged: {forged}");
    }
}

#[test]
fn a_new_secret_id_or_a_rotated_value_is_scanned_again() {
    let (registry, dir) = common::dir_registry();
    with_key(secret_push(&registry, dir.path()), KEY).run().assert_success();
    let more = with_key(secret_push(&registry, dir.path()), KEY)
        .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN\ngh_token=GH_TOKEN")
        .with("GH_TOKEN", "ghp_anotherSecretValue123456");
    let done = more.run();
    done.assert_success();
    assert_eq!(scanned(&done.stdout), (1, 0), "a new id");
    let rotated = with_key(secret_push(&registry, dir.path()), KEY).with("NPM_TOKEN", "env-secret-value-ROTATED-99");
    let done = rotated.run();
    done.assert_success();
    assert_eq!(scanned(&done.stdout), (1, 0), "a rotated value");
    let original = with_key(secret_push(&registry, dir.path()), KEY).run();
    original.assert_success();
    assert_eq!(scanned(&original.stdout), (0, 1), "the first value is still proven");
}

#[test]
fn a_changed_layer_is_scanned_and_its_leak_caught() {
    let (registry, dir) = common::dir_registry();
    with_key(secret_push(&registry, dir.path()), KEY).run().assert_success();
    let before = entries(dir.path());
    let latest = std::fs::read(dir.path().join("v2/team/app/manifests/latest")).unwrap();
    let leaking = with_key(secret_push(&registry, dir.path()), KEY).with("FAKE_DOCKER_LEAK", "npm_token");
    let done = leaking.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    assert!(done.stdout.contains("::error::Leaked: secret 'npm_token'"));
    assert!(!leaking.outputs().contains_key("digest"), "no digest");
    assert_eq!(std::fs::read(dir.path().join("v2/team/app/manifests/latest")).unwrap(), latest, "latest did not move");
    assert_eq!(entries(dir.path()), before, "a leaking layer is never recorded");
}

#[test]
fn without_a_key_no_ledger_is_read_or_written() {
    let (registry, dir) = common::dir_registry();
    for _ in 0..2 {
        let done = secret_push(&registry, dir.path()).run();
        done.assert_success();
        assert_eq!(scanned(&done.stdout), (1, 0));
    }
    assert!(ledger(dir.path()).is_none());
}
