//! The signed envelope, the transparency log's entry for it and the Sigstore bundle (v0.3)
//! that carries both with the certificate: pure shapes, as sigstore-python and cosign read them.

use base64::Engine;
use serde_json::{Value, json};

pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.len()
        .is_multiple_of(2)
        .then(|| (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect())
        .flatten()
}

/// DSSE's pre-authentication encoding: what the signature covers.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// The DSSE envelope of `payload`, signed with `sig` (over `pae`).
pub fn envelope(payload: &[u8], sig: &[u8]) -> Value {
    json!({ "payload": b64(payload), "payloadType": IN_TOTO, "signatures": [{ "sig": b64(sig) }] })
}

/// The body of a request that records `envelope` in Rekor (`dsse` 0.0.1): the envelope as
/// text, and the certificate that verifies it.
pub fn rekor_request(envelope: &Value, cert_pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": { "proposedContent": { "envelope": envelope.to_string(), "verifiers": [b64(cert_pem.as_bytes())] } }
    })
}

/// The bundle of a signed envelope: its certificate, Rekor's entry (when logged) and an RFC 3161
/// time-stamp of its signature (when time-stamped).
pub fn bundle(
    cert_der: &[u8],
    envelope: &Value,
    entry: Option<&Value>,
    timestamp: Option<&[u8]>,
) -> Result<Value, String> {
    let tlog: Vec<Value> = entry.map(tlog_entry).transpose()?.into_iter().collect();
    let mut material = json!({ "certificate": { "rawBytes": b64(cert_der) }, "tlogEntries": tlog });
    if let Some(ts) = timestamp {
        material["timestampVerificationData"] = json!({ "rfc3161Timestamps": [{ "signedTimestamp": b64(ts) }] });
    }
    Ok(json!({ "mediaType": BUNDLE_V03, "verificationMaterial": material, "dsseEnvelope": envelope }))
}

/// A bundle's transparency log entry, from Rekor's answer to `rekor_request` (the object it
/// returns under the entry's UUID). `Err` says what the answer lacked.
fn tlog_entry(entry: &Value) -> Result<Value, String> {
    let field = |path: &str| entry.pointer(path).filter(|v| !v.is_null()).ok_or(format!("no {path}"));
    let int = |path: &str| -> Result<String, String> {
        field(path)?.as_u64().map(|n| n.to_string()).ok_or(format!("{path} is not a number"))
    };
    let hex = |v: &Value| v.as_str().and_then(unhex).map(|b| b64(&b)).ok_or("a hash that is not hex".to_string());
    let body_b64 = field("/body")?.as_str().ok_or("body is not text")?;
    let body: Value =
        unb64(body_b64).and_then(|b| serde_json::from_slice(&b).ok()).ok_or("a body that is not base64 JSON")?;
    let proof = field("/verification/inclusionProof")?;
    let hashes = proof["hashes"]
        .as_array()
        .ok_or("no inclusion proof hashes")?
        .iter()
        .map(hex)
        .collect::<Result<Vec<_>, _>>()?;
    let tlog = json!({
        "logIndex": int("/logIndex")?,
        "logId": { "keyId": hex(field("/logID")?)? },
        "kindVersion": { "kind": body["kind"], "version": body["apiVersion"] },
        "integratedTime": int("/integratedTime")?,
        "inclusionPromise": { "signedEntryTimestamp": field("/verification/signedEntryTimestamp")? },
        "inclusionProof": {
            "logIndex": int("/verification/inclusionProof/logIndex")?,
            "rootHash": hex(&proof["rootHash"])?,
            "treeSize": int("/verification/inclusionProof/treeSize")?,
            "hashes": hashes,
            "checkpoint": { "envelope": proof["checkpoint"].as_str().ok_or("no checkpoint")? }
        },
        "canonicalizedBody": body_b64
    });
    Ok(tlog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_dsses() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_bundle_from_a_rekor_entry() {
        let body = b64(json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {}}).to_string().as_bytes());
        let entry = json!({
            "body": body, "integratedTime": 1700000000u64, "logID": "0a0b", "logIndex": 3,
            "verification": {
                "inclusionProof": {"checkpoint": "c\n", "hashes": ["ff00"], "logIndex": 3, "rootHash": "0102", "treeSize": 4},
                "signedEntryTimestamp": "c2V0"
            }
        });
        let env = envelope(b"{}", b"sig");
        let b = bundle(b"cert", &env, Some(&entry), None).unwrap();
        assert!(b["verificationMaterial"].get("timestampVerificationData").is_none());
        let stamped = bundle(b"cert", &env, None, Some(b"tsr")).unwrap();
        assert_eq!(stamped["verificationMaterial"]["tlogEntries"], json!([]));
        assert_eq!(
            stamped["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"],
            b64(b"tsr")
        );
        let t = &b["verificationMaterial"]["tlogEntries"][0];
        assert_eq!(t["logId"]["keyId"], b64(&[0x0a, 0x0b]));
        assert_eq!(t["kindVersion"], json!({"kind": "dsse", "version": "0.0.1"}));
        assert_eq!(t["inclusionProof"]["hashes"], json!([b64(&[0xff, 0])]));
        assert_eq!(t["logIndex"], "3");
        assert_eq!(b["dsseEnvelope"]["payloadType"], IN_TOTO);
        let mut broken = entry.clone();
        broken["verification"].as_object_mut().unwrap().remove("inclusionProof");
        assert!(bundle(b"cert", &env, Some(&broken), None).unwrap_err().contains("inclusionProof"));
    }
}
