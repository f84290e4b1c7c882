//! Which proofs a run can use, decided once per run and before the scan needs them: entries
//! keyed by `secrets-proof-key` (any value), or keyed by each secret's own value when every
//! value is one nobody can guess (`strength`). The Argon2id derivations run on a blocking thread
//! while the build runs, once per secret.

use std::time::{Duration, Instant};

use super::proofs::{self, Keys};
use super::strength::{self, Strength};

/// A secret the ledger cannot be keyed by, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guessable {
    pub id: String,
    pub why: String,
}

/// The run's proofs: the keys when every secret has one; else the secrets that stand in the way.
#[derive(Debug)]
pub struct Keying {
    pub keys: Option<Keys>,
    pub guessable: Vec<Guessable>,
    /// How long the derivations took (the summary's debug line; the bench's figure).
    pub took: Duration,
}

/// The secrets' values, as the scan uses them: `whole` per id (what v2 keys are derived from),
/// `scanned` the values and lines searched for (what v1 entries name).
pub struct Values {
    pub whole: Vec<(String, Vec<u8>)>,
    pub scanned: Vec<(String, Vec<u8>)>,
}

/// Decides: `repository` salts the v2 keys (`proofs::value_key`); `key` is `secrets-proof-key`.
pub fn decide(repository: &str, key: Option<&[u8]>, values: Values) -> Keying {
    let started = Instant::now();
    if let Some(key) = key {
        let keys = (!values.scanned.is_empty()).then(|| Keys::Repository { key: key.to_vec(), values: values.scanned });
        return Keying { keys, guessable: Vec::new(), took: started.elapsed() };
    }
    let guessable: Vec<Guessable> = values
        .whole
        .iter()
        .filter_map(|(id, value)| match strength::classify(value) {
            Strength::Strong { .. } => None,
            Strength::Weak { why } => Some(Guessable { id: id.clone(), why }),
        })
        .collect();
    if !guessable.is_empty() || values.whole.is_empty() {
        return Keying { keys: None, guessable, took: started.elapsed() };
    }
    let keys = values.whole.iter().map(|(id, value)| proofs::value_key(repository, id, value)).collect();
    Keying { keys: Some(Keys::Values(keys)), guessable, took: started.elapsed() }
}

/// The notice of a run whose layers were all read because a value could be guessed.
pub fn guessable_notice(guessable: &[Guessable]) -> Option<String> {
    if guessable.is_empty() {
        return None;
    }
    let named: Vec<String> = guessable.iter().map(|g| format!("'{}' ({})", g.id, g.why)).collect();
    Some(format!(
        "Every layer was read for the secrets, as it will be on every run: {} could be guessed, and a proof keyed by a \
         guessable value would let anyone test guesses against the public proof ledger. A random repository secret \
         passed as secrets-proof-key lifts this for values of any strength.",
        named.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(id, v)| (id.to_string(), v.as_bytes().to_vec())).collect()
    }

    const NPM: &str = "npm_Xk29fJq0LmZ8rTb3VwY6hN1cPdE7sGa4uQiK";

    #[test]
    fn strong_values_are_keyed_by_themselves_and_a_guessable_one_stops_it() {
        let strong = decide("r", None, Values { whole: v(&[("npm", NPM)]), scanned: v(&[("npm", NPM)]) });
        assert!(matches!(strong.keys, Some(Keys::Values(ref k)) if k.len() == 1));
        let mixed = v(&[("npm", NPM), ("db", "hunter2hunter2")]);
        let weak = decide("r", None, Values { whole: mixed.clone(), scanned: mixed.clone() });
        assert!(weak.keys.is_none());
        assert_eq!(weak.guessable.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["db"]);
        let notice = guessable_notice(&weak.guessable).unwrap();
        assert!(notice.contains("'db'") && notice.contains("secrets-proof-key"), "{notice}");
        assert!(!notice.contains("hunter2"), "the value is never named: {notice}");
        // The repository's own key covers values of any strength.
        let keyed = decide("r", Some(b"k".as_slice()), Values { whole: mixed.clone(), scanned: mixed });
        assert!(matches!(keyed.keys, Some(Keys::Repository { .. })) && keyed.guessable.is_empty());
        assert!(decide("r", None, Values { whole: vec![], scanned: vec![] }).keys.is_none());
    }
}
