//! The stack's Fulcio: its names, certificates, and the leaves it issues with GitHub's OID
//! extensions and an embedded SCT.

use ring::rand::SystemRandom;
use sdi::sign::der;
use serde_json::Value;

use super::{ISSUER, Key, Stack, sha256};

pub(super) const CA_NAME: &[(&str, &str)] = &[("2.5.4.10", "sdi-test"), ("2.5.4.3", "sdi-test-fulcio")];
pub(super) const TSA_NAME: &[(&str, &str)] = &[("2.5.4.10", "sdi-test"), ("2.5.4.3", "sdi-test-tsa")];

pub(super) fn name(parts: &[(&str, &str)]) -> Vec<u8> {
    der::seq(&parts.iter().map(|(o, v)| der::set(&[der::seq(&[der::oid(o), der::utf8(v)])])).collect::<Vec<_>>())
}

pub(super) fn extension(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![der::oid(oid)];
    if critical {
        parts.push(der::boolean(true));
    }
    parts.push(der::octets(value));
    der::seq(&parts)
}

pub(super) fn serial() -> Vec<u8> {
    let mut s = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut s).unwrap();
    s[0] &= 0x7f;
    der::uint(&s)
}

/// A certificate: the TBS signed by `issuer`.
pub(super) fn certificate(tbs: &[u8], issuer: &Key) -> Vec<u8> {
    let alg = der::seq(&[der::oid(der::ECDSA_SHA256)]);
    der::seq(&[tbs.to_vec(), alg, der::bits(&issuer.sign(tbs))])
}

/// A TBS the CA issues for `subject`, valid `days` from `not_before`.
pub(super) fn issued_tbs(
    subject: &[u8],
    spki: &[u8],
    days: i64,
    extensions: &[Vec<u8>],
    not_before: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    der::seq(&[
        der::explicit(0, &der::int(2)),
        serial(),
        der::seq(&[der::oid(der::ECDSA_SHA256)]),
        name(CA_NAME),
        der::seq(&[der::utc_time(not_before), der::utc_time(not_before + chrono::Duration::days(days))]),
        subject.to_vec(),
        spki.to_vec(),
        der::explicit(3, &der::seq(extensions)),
    ])
}

/// The serial number's TLV of a certificate.
pub(super) fn serial_of(cert: &[u8]) -> Vec<u8> {
    let (_, body, _) = der::read(cert).unwrap();
    let (_, tbs, _) = der::read(body).unwrap();
    der::items(tbs)[1].to_vec()
}

impl Stack {
    /// The leaf: Fulcio's extensions from the claims, then the SCT over the rest.
    pub(super) fn leaf(&self, c: &Value, spki: &[u8]) -> Vec<u8> {
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        let server = "https://github.com";
        let identity = format!("{server}/{}", s("job_workflow_ref"));
        let raw = |n: u32, v: String| extension(&format!("1.3.6.1.4.1.57264.1.{n}"), false, v.as_bytes());
        let utf8 = |n: u32, v: String| extension(&format!("1.3.6.1.4.1.57264.1.{n}"), false, &der::utf8(&v));
        let mut exts = vec![
            extension("2.5.29.15", true, &der::tlv(0x03, &[0x07, 0x80])),
            extension("2.5.29.37", false, &der::seq(&[der::oid("1.3.6.1.5.5.7.3.3")])),
            extension("2.5.29.14", false, &der::octets(&sha256(spki)[..20])),
            extension("2.5.29.35", false, &der::seq(&[der::tlv(0x80, &self.ca_key.id()[..20])])),
            extension("2.5.29.17", true, &der::seq(&[der::tlv(0x86, identity.as_bytes())])),
            raw(1, ISSUER.into()),
            raw(2, s("event_name")),
            raw(3, s("sha")),
            raw(4, s("workflow")),
            raw(5, s("repository")),
            raw(6, s("ref")),
            utf8(8, ISSUER.into()),
            utf8(9, identity.clone()),
            utf8(10, s("job_workflow_sha")),
            utf8(11, s("runner_environment")),
            utf8(12, format!("{server}/{}", s("repository"))),
            utf8(13, s("sha")),
            utf8(14, s("ref")),
            utf8(15, s("repository_id")),
            utf8(16, format!("{server}/{}", s("repository_owner"))),
            utf8(17, s("repository_owner_id")),
            utf8(18, format!("{server}/{}", s("workflow_ref"))),
            utf8(19, s("workflow_sha")),
            utf8(20, s("event_name")),
            utf8(
                21,
                format!("{server}/{}/actions/runs/{}/attempts/{}", s("repository"), s("run_id"), s("run_attempt")),
            ),
            utf8(22, s("repository_visibility")),
        ];
        let not_before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let precert = leaf_tbs(spki, &exts, not_before, None);
        let sct = self.sct(&precert);
        exts.push(extension("1.3.6.1.4.1.11129.2.4.2", false, &der::octets(&sct)));
        certificate(&leaf_tbs(spki, &exts, not_before, Some(&precert)), &self.ca_key)
    }

    /// One SCT for `precert` (the TBS without the SCT list), as a TLS `SignedCertificateTimestampList`.
    pub(super) fn sct(&self, precert: &[u8]) -> Vec<u8> {
        let timestamp = chrono::Utc::now().timestamp_millis() as u64;
        let mut signed = vec![0u8, 0u8];
        signed.extend(timestamp.to_be_bytes());
        signed.extend([0u8, 1u8]);
        signed.extend(sha256(&self.ca_key.spki));
        signed.extend(&(precert.len() as u32).to_be_bytes()[1..]);
        signed.extend(precert);
        signed.extend([0u8, 0u8]);
        let sig = self.ct_key.sign(&signed);
        let mut sct = vec![0u8];
        sct.extend(self.ct_key.id());
        sct.extend(timestamp.to_be_bytes());
        sct.extend([0u8, 0u8, 4u8, 3u8]);
        sct.extend((sig.len() as u16).to_be_bytes());
        sct.extend(sig);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(sct);
        list
    }
}

/// A leaf's TBS; with `serial_of`, the serial of that earlier TBS (the precertificate's) is kept.
pub(super) fn leaf_tbs(
    spki: &[u8],
    exts: &[Vec<u8>],
    not_before: chrono::DateTime<chrono::Utc>,
    serial_of: Option<&[u8]>,
) -> Vec<u8> {
    let serial = match serial_of {
        // The serial is the second element: after the [0] version (5 bytes) inside the SEQUENCE header.
        Some(tbs) => {
            let body = &tbs[header_len(tbs)..];
            let version_len = 5;
            let s = &body[version_len..];
            s[..2 + s[1] as usize].to_vec()
        }
        None => serial(),
    };
    der::seq(&[
        der::explicit(0, &der::int(2)),
        serial,
        der::seq(&[der::oid(der::ECDSA_SHA256)]),
        name(CA_NAME),
        der::seq(&[der::utc_time(not_before), der::utc_time(not_before + chrono::Duration::minutes(10))]),
        der::seq(&[]),
        spki.to_vec(),
        der::explicit(3, &der::seq(exts)),
    ])
}

pub(super) fn header_len(der: &[u8]) -> usize {
    if der[1] < 0x80 { 2 } else { 2 + (der[1] & 0x7f) as usize }
}
