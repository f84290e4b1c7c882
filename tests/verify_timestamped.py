"""Checks a Sigstore bundle's RFC 3161 time-stamp with rfc3161-client, and its certificate and
DSSE signature with cryptography: what sigstore-python 4.5.1 cannot check of a bundle without a
transparency log entry (a private repository's), done by the same independent libraries.

    python3 tests/verify_timestamped.py BUNDLE TRUST_CONFIG SHA256_HEX
"""

import base64
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from rfc3161_client import VerifierBuilder, decode_timestamp_response


def der(entry):
    return x509.load_der_x509_certificate(base64.b64decode(entry["rawBytes"]))


bundle = json.load(open(sys.argv[1]))
root = json.load(open(sys.argv[2]))["trustedRoot"]
material = bundle["verificationMaterial"]
envelope = bundle["dsseEnvelope"]
signature = base64.b64decode(envelope["signatures"][0]["sig"])

tsa = [der(c) for c in root["timestampAuthorities"][0]["certChain"]["certificates"]]
stamp = base64.b64decode(material["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"])
response = decode_timestamp_response(stamp)
VerifierBuilder().tsa_certificate(tsa[0]).add_root_certificate(tsa[-1]).build().verify_message(response, signature)

leaf = x509.load_der_x509_certificate(base64.b64decode(material["certificate"]["rawBytes"]))
ca = der(root["certificateAuthorities"][0]["certChain"]["certificates"][-1])
leaf.verify_directly_issued_by(ca)
when = response.tst_info.gen_time
assert leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc, f"time-stamp {when} outside the certificate"

payload = base64.b64decode(envelope["payload"])
kind = envelope["payloadType"].encode()
pae = b"DSSEv1 %d %s %d " % (len(kind), kind, len(payload)) + payload
leaf.public_key().verify(signature, pae, ec.ECDSA(hashes.SHA256()))
subjects = json.loads(payload)["subject"]
assert any(s["digest"].get("sha256") == sys.argv[3] for s in subjects), "no subject for the digest"
print("OK: time-stamped", when.isoformat())
