//! Proofs already made, so that a rebuild whose layers all come from cache does not read them
//! again. The ledger (an OCI artifact tagged `sdi-proofs` in the image repository) holds one
//! entry per (layer, secret value) this action scanned and found clean:
//!
//! `HMAC-SHA256(key, "sdi-proof-v1" 0 layer-digest 0 secret-id 0 secret-value)`
//!
//! with `key` the `secrets-proof-key` input: a random secret of the repository. Sound because
//! (README, "What the scan proves"):
//! - an entry can only be made with the key, which untrusted runs never receive: whoever can
//!   push tags without the key can delete or replace the ledger (layers are then scanned again,
//!   no harm) but cannot add a valid entry;
//! - an entry is bound to the layer's digest (its content) and to the secret's *value*: a
//!   rotated token, a new secret id, a changed layer each need a scan of their own;
//! - without the key an entry reveals nothing of the value (HMAC is a PRF under a 256-bit
//!   key), so publishing the ledger next to a public image gives a fork nothing to brute-force.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const LEDGER_TAG: &str = "sdi-proofs";
pub const ARTIFACT_TYPE: &str = "application/vnd.secure-docker-images.proofs.v1+json";
/// The ledger keeps the newest entries: enough for many images' worth of layers.
const MAX_ENTRIES: usize = 20_000;

/// One entry, hex.
pub fn entry(key: &[u8], layer: &str, id: &str, value: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in [b"sdi-proof-v1".as_slice(), layer.as_bytes(), id.as_bytes()] {
        mac.update(part);
        mac.update(&[0]);
    }
    mac.update(value);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
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

    /// Whether every one of `secrets` was proven absent from `layer` with this key.
    pub fn proves(&self, key: &[u8], layer: &str, secrets: &[(String, Vec<u8>)]) -> bool {
        !secrets.is_empty() && secrets.iter().all(|(id, value)| self.index.contains(&entry(key, layer, id, value)))
    }

    /// Records that `layer` was scanned clean of `secrets`; true if anything was new.
    pub fn record(&mut self, key: &[u8], layer: &str, secrets: &[(String, Vec<u8>)]) -> bool {
        let mut added = false;
        for (id, value) in secrets {
            let e = entry(key, layer, id, value);
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

    #[test]
    fn a_proof_holds_for_its_key_layer_id_and_value_only() {
        let key = b"0123456789abcdef0123456789abcdef";
        let mut ledger = Ledger::default();
        let secrets = [s("npm", "npm_value_one"), s("gh", "ghp_value_two")];
        assert!(ledger.record(key, "sha256:aa", &secrets));
        assert!(!ledger.record(key, "sha256:aa", &secrets), "nothing new the second time");
        assert!(ledger.proves(key, "sha256:aa", &secrets));
        assert!(ledger.proves(key, "sha256:aa", &secrets[..1]), "a subset of what was proven");
        assert!(!ledger.proves(key, "sha256:bb", &secrets), "another layer");
        assert!(!ledger.proves(b"another key, just as long as that", "sha256:aa", &secrets), "another key");
        assert!(!ledger.proves(key, "sha256:aa", &[s("npm", "npm_value_ONE")]), "a rotated value");
        assert!(!ledger.proves(key, "sha256:aa", &[s("new", "npm_value_one")]), "a new id");
        assert!(!ledger.proves(key, "sha256:aa", &[]), "no secret, no proof");
        let again = Ledger::parse(&ledger.to_json());
        assert_eq!(again, ledger);
        assert!(!String::from_utf8(ledger.to_json()).unwrap().contains("npm_value_one"));
    }

    #[test]
    fn a_garbled_ledger_proves_nothing() {
        for junk in [&b"not json"[..], b"{}", b"{\"entries\": [1, 2]}", b"{\"entries\": [\"short\"]}"] {
            assert!(Ledger::parse(junk).is_empty());
        }
    }

    #[test]
    fn the_ledger_keeps_the_newest_entries() {
        let key = b"0123456789abcdef0123456789abcdef";
        let mut ledger = Ledger::default();
        for i in 0..(MAX_ENTRIES + 10) {
            ledger.record(key, &format!("sha256:{i}"), &[s("a", "value-aaaaaaaa")]);
        }
        assert_eq!(ledger.len(), MAX_ENTRIES);
        assert!(!ledger.proves(key, "sha256:0", &[s("a", "value-aaaaaaaa")]));
        assert!(ledger.proves(key, &format!("sha256:{}", MAX_ENTRIES + 9), &[s("a", "value-aaaaaaaa")]));
    }
}
