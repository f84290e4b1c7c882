//! RFC 3161 time-stamps: what a Sigstore instance without a public log (GitHub's, for private
//! repositories) vouches for the signature's time with.

use super::der;

const SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// A `TimeStampReq` for `message` (its SHA-256), asking for the TSA's certificate.
pub fn request(message: &[u8], nonce: u64) -> Vec<u8> {
    use sha2::Digest;
    let imprint = der::seq(&[der::seq(&[der::oid(SHA256)]), der::octets(&sha2::Sha256::digest(message))]);
    der::seq(&[der::int(1), imprint, der::int(nonce), der::boolean(true)])
}

/// Whether a `TimeStampResp` grants a time-stamp (status 0 or 1, and a token); `Err` says why not.
pub fn granted(response: &[u8]) -> Result<(), String> {
    let malformed = || "an answer that is not a time-stamp response".to_string();
    let (_, body, _) = der::read(response).ok_or_else(malformed)?;
    let parts = der::items(body);
    let (_, status_info, _) = der::read(parts.first().ok_or_else(malformed)?).ok_or_else(malformed)?;
    let (_, status, _) = der::read(status_info).ok_or_else(malformed)?;
    match (status, parts.len()) {
        ([0] | [1], 2) => Ok(()),
        ([0] | [1], _) => Err("granted, but without a time-stamp token".into()),
        (s, _) => Err(format!("refused (PKIStatus {})", s.first().copied().unwrap_or(255))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_the_status_of_answers() {
        let req = request(b"sig", 7);
        let (_, body, _) = der::read(&req).unwrap();
        assert_eq!(der::items(body).len(), 4);
        let granted_answer = der::seq(&[der::seq(&[der::int(0)]), der::seq(&[])]);
        assert_eq!(granted(&granted_answer), Ok(()));
        let refused = der::seq(&[der::seq(&[der::int(2)])]);
        assert!(granted(&refused).unwrap_err().contains("PKIStatus 2"));
        assert!(granted(b"junk").is_err());
    }
}
