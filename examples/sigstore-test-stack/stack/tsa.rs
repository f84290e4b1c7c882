//! The stack's time-stamp authority (RFC 3161).

use sdi::sign::der;

use super::ca::{CA_NAME, name, serial, serial_of};
use super::{Stack, sha256};

/// The time-stamp authority: an RFC 3161 `TimeStampResp` for a `TimeStampReq`.
impl Stack {
    pub(super) fn timestamp(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let (_, body, _) = der::read(request).ok_or("not a TimeStampReq")?;
        let fields = der::items(body);
        let imprint = fields.get(1).ok_or("no messageImprint")?.to_vec();
        let nonce = fields.iter().skip(2).find(|f| f[0] == 0x02).map(|f| f.to_vec());
        let mut tst = vec![der::int(1), der::oid("1.3.6.1.4.1.57264.2"), imprint, serial()];
        tst.push(der::generalized_time(chrono::Utc::now()));
        tst.extend(nonce);
        let tst_info = der::seq(&tst);
        const TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
        let attr = |oid: &str, value: Vec<u8>| der::seq(&[der::oid(oid), der::set(&[value])]);
        let mut attrs = vec![
            attr("1.2.840.113549.1.9.3", der::oid(TST_INFO)),
            attr("1.2.840.113549.1.9.4", der::octets(&sha256(&tst_info))),
            attr(
                "1.2.840.113549.1.9.16.2.47",
                der::seq(&[der::seq(&[der::seq(&[der::octets(&sha256(&self.tsa_cert))])])]),
            ),
        ];
        // DER's SET OF is sorted: the signature is over the attributes as a verifier re-encodes them.
        attrs.sort();
        let signature = self.tsa_key.sign(&der::set(&attrs));
        let sha256_alg = der::seq(&[der::oid("2.16.840.1.101.3.4.2.1")]);
        let signer = der::seq(&[
            der::int(1),
            der::seq(&[name(CA_NAME), serial_of(&self.tsa_cert)]),
            sha256_alg.clone(),
            der::tlv(0xa0, &attrs.concat()),
            der::seq(&[der::oid(der::ECDSA_SHA256)]),
            der::octets(&signature),
        ]);
        let signed_data = der::seq(&[
            der::int(3),
            der::set(&[sha256_alg]),
            der::seq(&[der::oid(TST_INFO), der::explicit(0, &der::octets(&tst_info))]),
            der::tlv(0xa0, &self.tsa_cert),
            der::set(&[signer]),
        ]);
        let token = der::seq(&[der::oid("1.2.840.113549.1.7.2"), der::explicit(0, &signed_data)]);
        Ok(der::seq(&[der::seq(&[der::int(0)]), token]))
    }
}
