"""AMD SEV-SNP attestation reports: parse, check the VCEK → ASK → ARK chain, verify the report's P-384 signature.

Layout from AMD's SEV-SNP ABI specification (ATTESTATION_REPORT, 0x4A0 bytes): the signature (ECDSA P-384
with SHA-384; r and s each 72 bytes little-endian) covers bytes 0x000..0x29F. The VCEK (the chip's
versioned endorsement key) is certified by the ASK, which is certified by AMD's self-signed ARK, both with
RSA-PSS / SHA-384. The trust anchor is the ARK pinned by its SHA-256 fingerprint (`AMD_ARK_SHA256`).
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth_utils import keccak

from verinfer.attestation.verify import AttestationError

REPORT_LEN = 0x4A0
SIGNED_LEN = 0x2A0
SIG_ALGO_ECDSA_P384_SHA384 = 1

# AMD root keys (ARK) by product, SHA-256 of the certificate DER as served by https://kdsintf.amd.com/vcek/v1/<product>/cert_chain.
AMD_ARK_SHA256 = {
    "Milan": "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
}

# VCEK extensions (AMD "Versioned Chip Endorsement Key" spec): TCB components and the chip id.
_OID = "1.3.6.1.4.1.3704.1."
_TCB_OIDS = {"boot_loader": _OID + "3.1", "tee": _OID + "3.2", "snp": _OID + "3.3", "microcode": _OID + "3.8"}
_HWID_OID = _OID + "4"


def _fail(step: str, detail: str) -> AttestationError:
    return AttestationError(f"{step}: {detail}")


@dataclass(frozen=True)
class SnpReport:
    version: int
    guest_svn: int
    policy: int
    vmpl: int
    signature_algo: int
    report_data: bytes  # 64
    measurement_raw: bytes  # 48 (launch digest)
    host_data: bytes
    reported_tcb: dict[str, int]
    chip_id: bytes  # 64
    signature_r: int
    signature_s: int
    raw: bytes

    @property
    def signed_part(self) -> bytes:
        return self.raw[:SIGNED_LEN]

    @property
    def measurement(self) -> bytes:
        """The 32-byte measurement AttestationRegistry allow-lists: keccak256(MEASUREMENT)."""
        return keccak(self.measurement_raw)


def parse_snp_report(raw: bytes) -> SnpReport:
    """Parse an exact-length SEV-SNP attestation report (versions 2 and later)."""
    if len(raw) < REPORT_LEN:
        raise _fail("parse", f"SEV-SNP report truncated: {len(raw)} bytes, expected {REPORT_LEN}")
    if len(raw) > REPORT_LEN:
        raise _fail("parse", f"SEV-SNP report padded: {len(raw) - REPORT_LEN} extra bytes")
    version, guest_svn, policy = struct.unpack_from("<IIQ", raw, 0)
    if version < 2:
        raise _fail("version", f"unsupported SEV-SNP report version {version} (2 or later)")
    vmpl, sig_algo = struct.unpack_from("<II", raw, 0x30)
    if sig_algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise _fail("version", f"unsupported SEV-SNP signature algorithm {sig_algo} (1: ECDSA P-384/SHA-384)")
    tcb = raw[0x180:0x188]
    return SnpReport(
        version=version, guest_svn=guest_svn, policy=policy, vmpl=vmpl, signature_algo=sig_algo,
        report_data=raw[0x50:0x90], measurement_raw=raw[0x90:0xC0], host_data=raw[0xC0:0xE0],
        reported_tcb={"boot_loader": tcb[0], "tee": tcb[1], "snp": tcb[6], "microcode": tcb[7]},
        chip_id=raw[0x1A0:0x1E0],
        signature_r=int.from_bytes(raw[0x2A0:0x2A0 + 72], "little"),
        signature_s=int.from_bytes(raw[0x2A0 + 72:0x2A0 + 144], "little"),
        raw=raw,
    )


@dataclass(frozen=True)
class SnpVerdict:
    product: str
    measurement: bytes  # 32-byte registry measurement
    measurement_raw: bytes  # 48
    report_data: bytes
    reported_tcb: dict[str, int]
    chip_id: bytes
    quote_hash: bytes  # keccak256 of the report
    as_of: int


def _load_cert(data: bytes) -> x509.Certificate:
    with warnings.catch_warnings():  # AMD certificates carry a non-positive serial; cryptography warns
        warnings.simplefilter("ignore")
        return x509.load_der_x509_certificate(data) if not data.lstrip().startswith(b"-----") \
            else x509.load_pem_x509_certificate(data)


def _ext_int(cert: x509.Certificate, oid: str) -> int:
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    der = ext.value  # type: ignore[attr-defined]
    if len(der) < 3 or der[0] != 0x02:
        raise _fail("VCEK", f"extension {oid} is not an INTEGER")
    return int.from_bytes(der[2:2 + der[1]], "big")


def _issued_by(child: x509.Certificate, parent: x509.Certificate, what: str) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise _fail("AMD chain", f"{what} is not signed by {parent.subject.rfc4514_string()} ({exc or 'bad signature'})") from None


def verify_snp(raw: bytes, vcek: bytes, cert_chain_pem: bytes, *, as_of: int, product: str = "Milan",
               ark_sha256: str | None = None) -> SnpVerdict:
    """Verify an SEV-SNP report: ARK pinned → ASK → VCEK (validity as of `as_of`) → VCEK matches chip and TCB → signature."""
    rep = parse_snp_report(raw)
    want = ark_sha256 or AMD_ARK_SHA256.get(product)
    if want is None:
        raise _fail("AMD chain", f"no pinned ARK for product {product}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = x509.load_pem_x509_certificates(cert_chain_pem)
    if len(chain) != 2:
        raise _fail("AMD chain", f"expected ASK and ARK, got {len(chain)} certificates")
    ask, ark = chain
    vcek_cert = _load_cert(vcek)
    if ark.fingerprint(hashes.SHA256()).hex() != want:
        raise _fail("AMD chain", f"ARK is not AMD's pinned {product} root")
    _issued_by(ark, ark, "ARK")
    _issued_by(ask, ark, "ASK")
    _issued_by(vcek_cert, ask, "VCEK")
    when = datetime.fromtimestamp(int(as_of), UTC)
    for c in (ark, ask, vcek_cert):
        if not (c.not_valid_before_utc <= when <= c.not_valid_after_utc):
            raise _fail("AMD chain", f"{c.subject.rfc4514_string()} is not valid at {when:%Y-%m-%dT%H:%M:%SZ}")
    hwid = vcek_cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(_HWID_OID)).value.value  # type: ignore[attr-defined]
    if bytes(hwid) != rep.chip_id:
        raise _fail("VCEK", "certificate is for another chip (hwID differs from the report's CHIP_ID)")
    for name, oid in _TCB_OIDS.items():
        if _ext_int(vcek_cert, oid) != rep.reported_tcb[name]:
            raise _fail("VCEK", f"certificate TCB {name}={_ext_int(vcek_cert, oid)} differs from the report's "
                                f"{rep.reported_tcb[name]}")
    key = vcek_cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise _fail("VCEK", "key is not ECDSA P-384")
    try:
        key.verify(encode_dss_signature(rep.signature_r, rep.signature_s), rep.signed_part, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise _fail("report signature", "does not verify with the VCEK") from None
    return SnpVerdict(product=product, measurement=rep.measurement, measurement_raw=rep.measurement_raw,
                      report_data=rep.report_data, reported_tcb=rep.reported_tcb, chip_id=rep.chip_id,
                      quote_hash=keccak(raw), as_of=int(as_of))
