//! The stack's Rekor: the log's leaves, its RFC 6962 tree, and what it signs.

use base64::Engine;
use ring::signature;
use sdi::sign::der;
use serde_json::{Value, json};

use super::{Stack, b64, hex, sha256};

/// Rekor: the log's leaves, its tree, and what it signs.
impl Stack {
    pub(super) fn log_entry(&self, request: &Value) -> Result<Value, String> {
        let content = request.pointer("/spec/proposedContent").ok_or("not a dsse entry")?;
        let envelope_text = content["envelope"].as_str().ok_or("no envelope")?;
        let envelope: Value = serde_json::from_str(envelope_text).map_err(|_| "an envelope that is not JSON")?;
        let verifier = content["verifiers"][0].as_str().ok_or("no verifier")?;
        let cert_pem =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(verifier).map_err(|_| "bad verifier")?)
                .map_err(|_| "bad verifier")?;
        let cert = der::unpem("CERTIFICATE", &cert_pem).ok_or("a verifier that is not a certificate")?;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap_or_default())
            .map_err(|_| "a payload that is not base64")?;
        let pae = sdi::sign::bundle::pae(envelope["payloadType"].as_str().unwrap_or_default(), &payload);
        let sig_b64 = envelope["signatures"][0]["sig"].as_str().ok_or("no signature")?;
        let sig = base64::engine::general_purpose::STANDARD.decode(sig_b64).map_err(|_| "bad signature")?;
        let point = p256_point_in(&cert).ok_or("no P-256 key in the certificate")?;
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
            .verify(&pae, &sig)
            .map_err(|_| "the envelope's signature does not verify")?;
        let body = json!({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex(&sha256(envelope_text.as_bytes()))},
                "payloadHash": {"algorithm": "sha256", "value": hex(&sha256(&payload))},
                "signatures": [{"signature": sig_b64, "verifier": verifier}]
            }
        })
        .to_string();
        let leaf = sha256(&[&[0u8][..], body.as_bytes()].concat());
        let (index, leaves) = {
            let mut leaves = self.leaves.lock().unwrap();
            leaves.push(leaf);
            (leaves.len() - 1, leaves.clone())
        };
        let root = merkle_root(&leaves);
        let proof: Vec<String> = inclusion_path(index, &leaves).iter().map(|h| hex(h)).collect();
        let log_id = hex(&self.rekor_key.id());
        let time = chrono::Utc::now().timestamp();
        let body_b64 = b64(body.as_bytes());
        let set = json!({"body": body_b64, "integratedTime": time, "logID": log_id, "logIndex": index}).to_string();
        let note = format!("sdi-test-rekor - 1\n{}\n{}\n", leaves.len(), b64(&root));
        let signed_note = [&self.rekor_key.id()[..4], &self.rekor_key.sign(note.as_bytes())[..]].concat();
        let checkpoint = format!("{note}\n\u{2014} sdi-test-rekor {}\n", b64(&signed_note));
        Ok(json!({ hex(&leaf): {
            "body": body_b64, "integratedTime": time, "logID": log_id, "logIndex": index,
            "verification": {
                "inclusionProof": {"checkpoint": checkpoint, "hashes": proof, "logIndex": index, "rootHash": hex(&root), "treeSize": leaves.len()},
                "signedEntryTimestamp": b64(&self.rekor_key.sign(set.as_bytes()))
            }
        }}))
    }
}

/// The uncompressed P-256 point of the first SubjectPublicKeyInfo in a certificate.
pub(super) fn p256_point_in(cert: &[u8]) -> Option<&[u8]> {
    let prefix = &der::p256_spki(&[0u8; 65])[..26];
    let at = cert.windows(prefix.len()).position(|w| w == prefix)? + prefix.len();
    cert.get(at..at + 65)
}

pub(super) fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[1u8][..], l, r].concat())
}

pub(super) fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962's Merkle tree hash.
pub(super) fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let k = split(leaves.len());
    node(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
}

/// RFC 6962's audit path of leaf `m`, from the leaf up.
pub(super) fn inclusion_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = inclusion_path(m, &leaves[..k]);
        p.push(merkle_root(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_path(m - k, &leaves[k..]);
        p.push(merkle_root(&leaves[..k]));
        p
    }
}
