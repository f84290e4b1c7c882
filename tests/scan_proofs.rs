//! The proof ledger: a rebuild whose layers were already proven clean of the same secret
//! values reads none of them again; anything else is scanned — another key's (or a forged)
//! ledger, a new secret id, a rotated value, a changed layer — and a leak is still caught.
//! Keyed by `secrets-proof-key`, or without it by the secret's own value when that value is a
//! token nobody can guess.

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
fn a_new_layer_beside_proven_ones_is_scanned_and_its_leak_caught() {
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

/// A token as npm issues them (random, drawn for this test; not a live credential).
const NPM: &str = "npm_Xk29fJq0LmZ8rTb3VwY6hN1cPdE7sGa4uQiK";
const ROTATED: &str = "npm_Vb7Qz1Lm4Xc8Nd2Kp6Wr0Ts3Hy9Gf5Ja1EuOi";

fn token_push(registry: &str, dir: &Path, value: &str) -> Run {
    secret_push(registry, dir).with("NPM_TOKEN", value)
}

fn guessable_notice(stdout: &str) -> Option<&str> {
    stdout.lines().find(|l| l.starts_with("::notice::Every layer was read for the secrets"))
}

#[test]
fn a_token_without_a_key_is_proven_by_its_own_value() {
    let (registry, dir) = common::dir_registry();
    let first = token_push(&registry, dir.path(), NPM).run();
    first.assert_success();
    assert_eq!(scanned(&first.stdout), (1, 0));
    assert_eq!(entries(dir.path()), 1, "one layer × one secret");
    assert!(guessable_notice(&first.stdout).is_none(), "{}", first.stdout);
    let again = token_push(&registry, dir.path(), NPM);
    let done = again.run();
    done.assert_success();
    assert_eq!(scanned(&done.stdout), (0, 1), "{}", done.stdout);
    assert!(common::run::tagged(dir.path(), "latest"));
    // The value is masked first and written nowhere: not in the ledger, argv or the summary.
    let text = serde_json::to_string(&ledger(dir.path())).unwrap();
    assert!(!text.contains(NPM) && !text.contains(&NPM[4..20]), "{text}");
    let shown: Vec<&str> = done.stdout.lines().filter(|l| l.contains(NPM)).collect();
    assert_eq!(shown, [format!("::add-mask::{NPM}")]);
    assert!(again.calls().iter().all(|c| !c.to_string().contains(NPM)));
    assert!(!std::fs::read_to_string(again.path("step_summary")).unwrap().contains(NPM));
}

/// The entry is the MAC of the layer under a key only the value gives: checked here with the
/// crate's own functions, the right value finds it, a near miss, another repository or
/// another id does not — and nothing in the ledger is the value's hash.
/// The first layer of the image (first platform) an index names.
fn first_layer(dir: &Path, index: &[u8]) -> String {
    let blob = |digest: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("v2/team/app/blobs").join(digest)).unwrap()).unwrap()
    };
    let index: serde_json::Value = serde_json::from_slice(index).unwrap();
    let image = blob(index["manifests"][0]["digest"].as_str().unwrap());
    image["layers"][0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn an_entry_cannot_be_checked_without_the_value() {
    use sdi::verify::proofs::{value_entry, value_key};
    let (registry, dir) = common::dir_registry();
    token_push(&registry, dir.path(), NPM).run().assert_success();
    let ledger = ledger(dir.path()).unwrap();
    let entries: Vec<&str> = ledger["entries"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    let layer = &first_layer(dir.path(), &std::fs::read(dir.path().join("v2/team/app/manifests/latest")).unwrap());
    let repo = "github-repository-id:186853002";
    let check = |repo: &str, id: &str, value: &str| {
        entries.contains(&value_entry(&value_key(repo, id, value.as_bytes()), layer).as_str())
    };
    assert!(check(repo, "npm_token", NPM), "the holder of the value finds its entry: {entries:?}");
    assert!(!check(repo, "npm_token", &format!("{}x", &NPM[..NPM.len() - 1])), "a near miss");
    assert!(!check("github-repository-id:1", "npm_token", NPM), "another repository");
    assert!(!check(repo, "other", NPM), "another id");
    let plain = sdi::oci::sha256(NPM.as_bytes());
    assert!(entries.iter().all(|e| !plain.contains(e)), "no plain hash of the value");
}

#[test]
fn a_rotated_token_or_a_foreign_ledger_proves_nothing() {
    let (registry, dir) = common::dir_registry();
    token_push(&registry, dir.path(), NPM).run().assert_success();
    let rotated = token_push(&registry, dir.path(), ROTATED).run();
    rotated.assert_success();
    assert_eq!(scanned(&rotated.stdout), (1, 0), "a rotated token");
    let back = token_push(&registry, dir.path(), NPM).run();
    assert_eq!(scanned(&back.stdout), (0, 1), "the first token's entry still stands");
    // The same ledger, image and token, in another repository (copied, or the image moved).
    let moved = token_push(&registry, dir.path(), NPM).with("GITHUB_REPOSITORY_ID", "99").run();
    moved.assert_success();
    assert_eq!(scanned(&moved.stdout), (1, 0), "a ledger of another repository");
    // The value's entries and the repository key's are of different kinds.
    let keyed = with_key(token_push(&registry, dir.path(), NPM), KEY).run();
    assert_eq!(scanned(&keyed.stdout), (1, 0), "a value entry is no key entry");
    for forged in [serde_json::json!({"version": 1, "entries": ["0".repeat(64)]}).to_string(), "junk".into()] {
        let manifest = std::fs::read(dir.path().join("v2/team/app/manifests/sdi-proofs")).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let blob = dir.path().join("v2/team/app/blobs").join(manifest["layers"][0]["digest"].as_str().unwrap());
        std::fs::write(blob, &forged).unwrap();
        let done = token_push(&registry, dir.path(), NPM).run();
        assert_eq!(scanned(&done.stdout), (1, 0), "forged: {forged}");
    }
}

#[test]
fn a_token_copied_into_a_new_layer_is_caught_before_any_tag() {
    let (registry, dir) = common::dir_registry();
    token_push(&registry, dir.path(), NPM).run().assert_success();
    let before = entries(dir.path());
    let latest = std::fs::read(dir.path().join("v2/team/app/manifests/latest")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("requests.log"));
    let leaking = token_push(&registry, dir.path(), NPM).with("FAKE_DOCKER_LEAK", "npm_token");
    let done = leaking.run();
    assert_eq!(done.output.status.code(), Some(1), "{}", done.stdout);
    assert!(done.stdout.contains("::error::Leaked: secret 'npm_token'"), "{}", done.stdout);
    assert_eq!(std::fs::read(dir.path().join("v2/team/app/manifests/latest")).unwrap(), latest, "latest did not move");
    assert_eq!(entries(dir.path()), before, "nothing recorded from a leaking image");
    // The proven layer was not read again; the new one was.
    let proven = first_layer(dir.path(), &latest);
    let reads: Vec<String> =
        common::registry_requests(dir.path()).into_iter().filter(|r| r.contains("/blobs/")).collect();
    assert!(reads.iter().all(|r| !r.ends_with(&proven)), "{reads:?}");
    assert!(!reads.is_empty());
}

#[test]
fn a_guessable_value_is_read_every_run_and_the_summary_says_why() {
    let (registry, dir) = common::dir_registry();
    for _ in 0..2 {
        let run = secret_push(&registry, dir.path())
            .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN\ndb_password=DB_PASSWORD")
            .with("NPM_TOKEN", NPM)
            .with("DB_PASSWORD", "hunter2-hunter2");
        let done = run.run();
        done.assert_success();
        assert_eq!(scanned(&done.stdout), (1, 0));
        let notice = guessable_notice(&done.stdout).expect("a notice naming the guessable secret");
        assert!(notice.contains("'db_password'") && !notice.contains("npm_token"), "{notice}");
        assert!(notice.contains("secrets-proof-key"), "{notice}");
        assert!(!notice.contains("hunter2"), "{notice}");
        assert!(
            notice
                .contains("a 15-character value that is neither a known token format nor random enough: about 27 bits"),
            "{notice}"
        );
        let summary = std::fs::read_to_string(run.path("step_summary")).unwrap();
        assert!(summary.contains("'db_password'") && !summary.contains("hunter2"), "{summary}");
    }
    assert!(ledger(dir.path()).is_none(), "no ledger: nothing keyed by a guessable value");
    assert!(common::registry_requests(dir.path()).iter().all(|r| !r.contains("sdi-proofs")), "not even read");
}

#[test]
fn without_a_key_a_weak_value_reads_and_writes_no_ledger() {
    let (registry, dir) = common::dir_registry();
    for _ in 0..2 {
        let done = secret_push(&registry, dir.path()).run();
        done.assert_success();
        assert_eq!(scanned(&done.stdout), (1, 0));
        assert!(guessable_notice(&done.stdout).unwrap().contains("'npm_token'"));
    }
    assert!(ledger(dir.path()).is_none());
}

/// Untrusted code holds no secret: it neither reads nor writes the ledger, whatever it holds.
#[test]
fn a_fork_pull_request_never_touches_the_ledger() {
    let (registry, dir) = common::dir_registry();
    token_push(&registry, dir.path(), NPM).run().assert_success();
    let _ = std::fs::remove_file(dir.path().join("requests.log"));
    let ledger_before = ledger(dir.path());
    let fork = Run::new("pull_request", "pull_request-fork-opened.json")
        .with("INPUT_IMAGE", &format!("{registry}/team/app"))
        .with("INPUT_PLATFORMS", "linux/amd64")
        .with("INPUT_SECRET-ENVS", "npm_token=NPM_TOKEN")
        .with("NPM_TOKEN", NPM)
        .with("FAKE_DOCKER_REGISTRY_DIR", dir.path().to_str().unwrap());
    let done = fork.run();
    done.assert_success();
    assert!(common::registry_requests(dir.path()).iter().all(|r| !r.contains("sdi-proofs")));
    assert_eq!(ledger(dir.path()), ledger_before);
    assert!(fork.calls().iter().all(|c| !c.to_string().contains("npm_token")), "no secret passed to the build");
}
