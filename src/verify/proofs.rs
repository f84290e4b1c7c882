//! Proofs already made, so that a rebuild whose layers all come from cache does not read them
//! again. The ledger (an OCI artifact tagged `sdi-proofs` in the image repository) holds one
//! entry per (layer, secret value) this action scanned and found clean, in one of two kinds:
//!
//! - with `secrets-proof-key` (a random secret of the repository), for values of any strength:
//!   `HMAC-SHA256(key, "sdi-proof-v1" 0 layer-digest 0 secret-id 0 secret-value)`;
//! - without it, for values nobody can guess (`strength`), keyed by the value itself:
//!   `HMAC-SHA256(Argon2id(value, salt = "sdi-proof-v2" 0 repository 0 secret-id), "sdi-proof-v2" 0 layer-digest)`.
//!
//! Sound because (README, "Why skipping is sound"):
//! - only a holder of the key — or of the value — can compute an entry; untrusted runs hold
//!   neither. Whoever can push tags without them can delete or replace the ledger (layers are
//!   then scanned again, no harm) but cannot add a valid entry;
//! - an entry is bound to the layer's digest (its content) and to the secret's *value*: a
//!   rotated token, a new secret id, a changed layer, another repository each need a scan;
//! - the ledger is public beside the image, so an entry must not let anyone test guesses: the
//!   v1 key is a 256-bit secret they never see; a v2 entry is only made for a value of at least
//!   `strength::BAR` bits, and each guess costs an Argon2id derivation.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const LEDGER_TAG: &str = "sdi-proofs";
pub const ARTIFACT_TYPE: &str = "application/vnd.secure-docker-images.proofs.v1+json";
/// The ledger keeps the newest entries: enough for many images' worth of layers.
const MAX_ENTRIES: usize = 20_000;

/// One v1 entry (keyed by `secrets-proof-key`), hex.
pub fn entry(key: &[u8], layer: &str, id: &str, value: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in [b"sdi-proof-v1".as_slice(), layer.as_bytes(), id.as_bytes()] {
        mac.update(part);
        mac.update(&[0]);
    }
    mac.update(value);
    hex(&mac.finalize().into_bytes())
}

/// Argon2id's cost: OWASP's first recommendation (19 MiB, two passes, one lane). Runs once per
/// secret per run, while the build runs.
const KDF_MEMORY_KIB: u32 = 19 * 1024;
const KDF_PASSES: u32 = 2;

/// The key of a secret's v2 entries: only a holder of `value` can make it. Salted with the
/// repository and the secret id, so that the same token in two repositories or under two ids
/// gives unrelated entries, and no work on one ledger helps with another.
pub fn value_key(repository: &str, id: &str, value: &[u8]) -> [u8; 32] {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(KDF_MEMORY_KIB, KDF_PASSES, 1, Some(32)).expect("valid Argon2 parameters");
    let mut salt = b"sdi-proof-v2".to_vec();
    for part in [repository, id] {
        salt.push(0);
        salt.extend_from_slice(part.as_bytes());
    }
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(value, &salt, &mut key)
        .expect("any value and a salt of 8 bytes or more");
    key
}

/// One v2 entry (keyed by a secret's value through `value_key`), hex.
pub fn value_entry(key: &[u8; 32], layer: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"sdi-proof-v2");
    mac.update(&[0]);
    mac.update(layer.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What this run's entries are keyed by; each layer needs an entry for every secret.
#[derive(Clone)]
pub enum Keys {
    /// `secrets-proof-key`, and the values the scan looks for.
    Repository { key: Vec<u8>, values: Vec<(String, Vec<u8>)> },
    /// One key per secret, each derived from the secret's whole value.
    Values(Vec<[u8; 32]>),
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keys::Repository { values, .. } => write!(f, "Keys::Repository({} values)", values.len()),
            Keys::Values(keys) => write!(f, "Keys::Values({} keys)", keys.len()),
        }
    }
}

impl Keys {
    /// The entries that prove `layer` clean of every secret: none when there is no secret.
    pub fn entries(&self, layer: &str) -> Vec<String> {
        match self {
            Keys::Repository { key, values } => values.iter().map(|(id, v)| entry(key, layer, id, v)).collect(),
            Keys::Values(keys) => keys.iter().map(|k| value_entry(k, layer)).collect(),
        }
    }
}

/// The entries, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    entries: Vec<String>,
    index: BTreeSet<String>,
}

impl Ledger {
    /// A ledger's JSON; anything else (a garbled or foreign artifact) is an empty ledger: no
    /// proof, so every layer is scanned.
    pub fn parse(bytes: &[u8]) -> Ledger {
        let entries: Vec<String> = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| v.get("entries")?.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.as_str().filter(|s| s.len() == 64).map(str::to_string))
            .collect();
        let index = entries.iter().cloned().collect();
        Ledger { entries, index }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::json!({ "version": 1, "entries": self.entries }).to_string().into_bytes()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `layer` was proven clean of every secret `keys` stands for.
    pub fn proves(&self, keys: &Keys, layer: &str) -> bool {
        let entries = keys.entries(layer);
        !entries.is_empty() && entries.iter().all(|e| self.index.contains(e))
    }

    /// Records that `layer` was scanned clean of the secrets; true if anything was new.
    pub fn record(&mut self, keys: &Keys, layer: &str) -> bool {
        let mut added = false;
        for e in keys.entries(layer) {
            if self.index.insert(e.clone()) {
                self.entries.push(e);
                added = true;
            }
        }
        if self.entries.len() > MAX_ENTRIES {
            let drop = self.entries.len() - MAX_ENTRIES;
            for e in self.entries.drain(..drop) {
                self.index.remove(&e);
            }
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, v: &str) -> (String, Vec<u8>) {
        (id.to_string(), v.as_bytes().to_vec())
    }

    fn repo_keys(key: &[u8], values: &[(String, Vec<u8>)]) -> Keys {
        Keys::Repository { key: key.to_vec(), values: values.to_vec() }
    }

    #[test]
    fn a_proof_holds_for_its_key_layer_id_and_value_only() {
        let key = b"0123456789abcdef0123456789abcdef";
        let mut ledger = Ledger::default();
        let secrets = [s("npm", "npm_value_one"), s("gh", "ghp_value_two")];
        let keys = repo_keys(key, &secrets);
        assert!(ledger.record(&keys, "sha256:aa"));
        assert!(!ledger.record(&keys, "sha256:aa"), "nothing new the second time");
        assert!(ledger.proves(&keys, "sha256:aa"));
        assert!(ledger.proves(&repo_keys(key, &secrets[..1]), "sha256:aa"), "a subset of what was proven");
        assert!(!ledger.proves(&keys, "sha256:bb"), "another layer");
        assert!(!ledger.proves(&repo_keys(b"another key, just as long as that", &secrets), "sha256:aa"), "another key");
        assert!(!ledger.proves(&repo_keys(key, &[s("npm", "npm_value_ONE")]), "sha256:aa"), "a rotated value");
        assert!(!ledger.proves(&repo_keys(key, &[s("new", "npm_value_one")]), "sha256:aa"), "a new id");
        assert!(!ledger.proves(&repo_keys(key, &[]), "sha256:aa"), "no secret, no proof");
        assert!(!ledger.proves(&Keys::Values(Vec::new()), "sha256:aa"), "no secret, no proof");
        let again = Ledger::parse(&ledger.to_json());
        assert_eq!(again, ledger);
        assert!(!String::from_utf8(ledger.to_json()).unwrap().contains("npm_value_one"));
    }

    #[test]
    fn a_value_key_is_bound_to_value_repository_and_id() {
        let token = b"npm_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
        let key = value_key("github-repository:42", "npm", token);
        assert_eq!(key, value_key("github-repository:42", "npm", token), "deterministic");
        for other in [
            value_key("github-repository:42", "npm", b"npm_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r9"),
            value_key("github-repository:43", "npm", token),
            value_key("github-repository:42", "npm2", token),
        ] {
            assert_ne!(key, other);
        }
        let mut ledger = Ledger::default();
        let keys = Keys::Values(vec![key]);
        ledger.record(&keys, "sha256:aa");
        assert!(ledger.proves(&keys, "sha256:aa"));
        assert!(!ledger.proves(&keys, "sha256:bb"));
        // A v1 entry for the same layer and value is another entry: the kinds never stand in for each other.
        assert!(!ledger.proves(&repo_keys(&key, &[s("npm", std::str::from_utf8(token).unwrap())]), "sha256:aa"));
        let json = String::from_utf8(ledger.to_json()).unwrap();
        assert!(!json.contains("npm_A1b2"));
        assert!(!json.contains(&hex(&key)), "the key itself is never written");
    }

    #[test]
    fn a_garbled_ledger_proves_nothing() {
        for junk in [&b"not json"[..], b"{}", b"{\"entries\": [1, 2]}", b"{\"entries\": [\"short\"]}"] {
            assert!(Ledger::parse(junk).is_empty());
        }
    }

    #[test]
    fn the_ledger_keeps_the_newest_entries() {
        let keys = repo_keys(b"0123456789abcdef0123456789abcdef", &[s("a", "value-aaaaaaaa")]);
        let mut ledger = Ledger::default();
        for i in 0..(MAX_ENTRIES + 10) {
            ledger.record(&keys, &format!("sha256:{i}"));
        }
        assert_eq!(ledger.len(), MAX_ENTRIES);
        assert!(!ledger.proves(&keys, "sha256:0"));
        assert!(ledger.proves(&keys, &format!("sha256:{}", MAX_ENTRIES + 9)));
    }
}
