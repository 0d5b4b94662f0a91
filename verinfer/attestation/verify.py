"""LEGACY (NodeRegistry-era): structural check of a test-PKI SGX v3 quote: PCK chain → QE report → attestation key → quote.

New code verifies with `verinfer.attestation.evidence.verify_evidence` (dcap-qvl, with collateral, as of a time) —
the one path for the test PKI and Intel's root alike. Protocol V2 callers (auditor, `verinfer attestation
verify`, operator attestation) use AttestationRegistry records and `verify_evidence`; `verify_quote` remains for
the SGX quote-format tests and `record.py`; `AttestationError` and `report_data_for` live here for compatibility.

Trust is anchored in one root certificate. For real hardware that is Intel's SGX Root CA; on this
project's machines no TEE exists, so tests and the devnet use the test PKI in `testpki` — same data
format, same checks, different (clearly labelled) root. TCB status and revocation lists (PCS
collateral) are not checked here; `dcap-qvl` is the path for that once real quotes are in scope.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from verinfer.attestation.quote import CERT_TYPE_PCK_CHAIN, Quote, parse_quote
from verinfer.errors import VerinferError

REPORT_DATA_TAG = b"verinfer.attest.v1"
# report data = address (20) || chain id (8, big-endian) || sha256(tag) (32) || 4 zero bytes
_TAG_SUFFIX = hashlib.sha256(REPORT_DATA_TAG).digest() + bytes(4)


class AttestationError(VerinferError):
    """A quote failed one of the verification steps; the message names the step."""


@dataclass(frozen=True)
class VerifiedQuote:
    mr_enclave: bytes
    mr_signer: bytes
    isv_svn: int
    report_data: bytes
    bound_address: str  # checksum-less 0x… lower-case address taken from report data
    chain_id: int
    pck_subject: str
    root_fingerprint: str  # sha256 of the trusted root's DER


def report_data_for(address: str, chain_id: int) -> bytes:
    """64-byte report data binding a node key to the enclave: address || chain id || tag hash."""
    addr = bytes.fromhex(address.removeprefix("0x"))
    if len(addr) != 20:
        raise AttestationError(f"not an address: {address}")
    return addr + chain_id.to_bytes(8, "big") + _TAG_SUFFIX


def _raw_sig_to_der(sig: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


def _raw_point_to_key(point: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + point)


def _check_sig(key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes, step: str) -> None:
    try:
        key.verify(_raw_sig_to_der(sig), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise AttestationError(f"{step}: signature does not verify") from exc


def _verify_chain(pem_chain: bytes, trusted_root: x509.Certificate, now: datetime) -> x509.Certificate:
    certs = x509.load_pem_x509_certificates(pem_chain)
    if len(certs) < 2:
        raise AttestationError("PCK chain: expected leaf, intermediate(s) and root")
    if certs[-1].fingerprint(hashes.SHA256()) != trusted_root.fingerprint(hashes.SHA256()):
        raise AttestationError("PCK chain: root is not the trusted root")
    for child, parent in zip(certs, certs[1:], strict=False):
        if child.issuer != parent.subject:
            raise AttestationError(f"PCK chain: {child.subject.rfc4514_string()} not issued by {parent.subject.rfc4514_string()}")
        try:
            child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise AttestationError(f"PCK chain: bad signature on {child.subject.rfc4514_string()}") from exc
    for c in certs:
        if not (c.not_valid_before_utc <= now <= c.not_valid_after_utc):
            raise AttestationError(f"PCK chain: {c.subject.rfc4514_string()} is not valid at {now.isoformat()}")
    return certs[0]


def verify_quote(
    raw: bytes,
    trusted_root_pem: bytes,
    *,
    expected_address: str | None = None,
    expected_chain_id: int | None = None,
    now: datetime | None = None,
) -> VerifiedQuote:
    """Run every DCAP step; return what the quote proves or raise AttestationError naming the failed step."""
    quote: Quote = parse_quote(raw)
    now = now or datetime.now(timezone.utc)
    root = x509.load_pem_x509_certificate(trusted_root_pem)
    if quote.cert_type != CERT_TYPE_PCK_CHAIN:
        raise AttestationError(f"certification data type {quote.cert_type} unsupported (need 5: PCK chain)")
    pck = _verify_chain(quote.cert_data.rstrip(b"\x00"), root, now)
    pck_key = pck.public_key()
    if not isinstance(pck_key, ec.EllipticCurvePublicKey):
        raise AttestationError("PCK key is not an EC key")
    _check_sig(pck_key, quote.qe_report_signature, quote.qe_report.to_bytes(), "QE report")
    expected_qe_data = hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest()
    if quote.qe_report.report_data[:32] != expected_qe_data:
        raise AttestationError("QE report data does not bind the attestation key")
    _check_sig(_raw_point_to_key(quote.attestation_key), quote.signature, quote.signed_part, "quote")

    rd = quote.report.report_data
    bound = "0x" + rd[:20].hex()
    chain_id = int.from_bytes(rd[20:28], "big")
    if rd[28:] != _TAG_SUFFIX:
        raise AttestationError("report data is not a verinfer binding")
    if expected_address is not None and bound != expected_address.lower():
        raise AttestationError(f"report data binds {bound}, not {expected_address.lower()}")
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise AttestationError(f"report data binds chain {chain_id}, not {expected_chain_id}")
    return VerifiedQuote(
        mr_enclave=quote.report.mr_enclave,
        mr_signer=quote.report.mr_signer,
        isv_svn=quote.report.isv_svn,
        report_data=rd,
        bound_address=bound,
        chain_id=chain_id,
        pck_subject=pck.subject.rfc4514_string(),
        root_fingerprint=root.fingerprint(hashes.SHA256()).hex(),
    )
