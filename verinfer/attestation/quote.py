"""Intel SGX DCAP ECDSA quotes (version 3): the byte layout, parsed without trusting anything.

The layout is Intel's (SGX ECDSA Quote Library API, "Quote Format"). Parsing is strict: every
length is checked, so a truncated or padded quote is an error, not a silently short field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from verinfer.errors import VerinferError

QUOTE_VERSION_3 = 3
ATT_KEY_TYPE_ECDSA_P256 = 2
CERT_TYPE_PCK_CHAIN = 5

HEADER_LEN = 48
REPORT_BODY_LEN = 384
ECDSA_SIG_LEN = 64
ATT_KEY_LEN = 64

# Intel's QE vendor id (939A7233-F79C-4CA9-940A-0DB3957F0607).
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")


class QuoteFormatError(VerinferError):
    """The bytes are not a well-formed SGX DCAP v3 quote."""


@dataclass(frozen=True)
class QuoteHeader:
    version: int
    att_key_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<HHIHH16s20s",
            self.version,
            self.att_key_type,
            0,
            self.qe_svn,
            self.pce_svn,
            self.qe_vendor_id,
            self.user_data,
        )


@dataclass(frozen=True)
class ReportBody:
    """An SGX enclave report body (384 bytes). `mr_enclave` is the measurement we allow-list."""

    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes

    def to_bytes(self) -> bytes:
        out = (
            self.cpu_svn
            + struct.pack("<I", self.misc_select)
            + bytes(28)
            + self.attributes
            + self.mr_enclave
            + bytes(32)
            + self.mr_signer
            + bytes(96)
            + struct.pack("<HH", self.isv_prod_id, self.isv_svn)
            + bytes(60)
            + self.report_data
        )
        assert len(out) == REPORT_BODY_LEN
        return out

    @classmethod
    def parse(cls, b: bytes) -> "ReportBody":
        if len(b) != REPORT_BODY_LEN:
            raise QuoteFormatError(f"report body is {len(b)} bytes, expected {REPORT_BODY_LEN}")
        (misc_select,) = struct.unpack_from("<I", b, 16)
        isv_prod_id, isv_svn = struct.unpack_from("<HH", b, 256)
        return cls(
            cpu_svn=b[0:16],
            misc_select=misc_select,
            attributes=b[48:64],
            mr_enclave=b[64:96],
            mr_signer=b[128:160],
            isv_prod_id=isv_prod_id,
            isv_svn=isv_svn,
            report_data=b[320:384],
        )


@dataclass(frozen=True)
class Quote:
    header: QuoteHeader
    report: ReportBody
    signature: bytes  # r || s over header || report body, by the attestation key
    attestation_key: bytes  # raw P-256 point x || y
    qe_report: ReportBody
    qe_report_signature: bytes  # r || s over the QE report body, by the PCK key
    qe_auth_data: bytes
    cert_type: int
    cert_data: bytes  # PEM chain (leaf PCK, intermediate, root) for type 5
    raw: bytes

    @property
    def signed_part(self) -> bytes:
        return self.raw[: HEADER_LEN + REPORT_BODY_LEN]


def _need(b: bytes, off: int, n: int, what: str) -> bytes:
    if off + n > len(b):
        raise QuoteFormatError(f"quote truncated in {what} (needs {off + n} bytes, has {len(b)})")
    return b[off : off + n]


def parse_quote(raw: bytes) -> Quote:
    """Parse a DCAP v3 ECDSA-P256 quote; raise QuoteFormatError on any deviation from the layout."""
    hdr = _need(raw, 0, HEADER_LEN, "header")
    version, key_type, _reserved, qe_svn, pce_svn, vendor, user_data = struct.unpack("<HHIHH16s20s", hdr)
    if version != QUOTE_VERSION_3:
        raise QuoteFormatError(f"unsupported quote version {version} (only SGX DCAP v3)")
    if key_type != ATT_KEY_TYPE_ECDSA_P256:
        raise QuoteFormatError(f"unsupported attestation key type {key_type} (only ECDSA P-256)")
    header = QuoteHeader(version, key_type, qe_svn, pce_svn, vendor, user_data)
    report = ReportBody.parse(_need(raw, HEADER_LEN, REPORT_BODY_LEN, "report body"))
    off = HEADER_LEN + REPORT_BODY_LEN
    (sig_len,) = struct.unpack("<I", _need(raw, off, 4, "signature length"))
    off += 4
    if off + sig_len != len(raw):
        raise QuoteFormatError(f"signature data length {sig_len} does not match the quote size {len(raw)}")
    signature = _need(raw, off, ECDSA_SIG_LEN, "quote signature")
    off += ECDSA_SIG_LEN
    att_key = _need(raw, off, ATT_KEY_LEN, "attestation key")
    off += ATT_KEY_LEN
    qe_report = ReportBody.parse(_need(raw, off, REPORT_BODY_LEN, "QE report"))
    off += REPORT_BODY_LEN
    qe_sig = _need(raw, off, ECDSA_SIG_LEN, "QE report signature")
    off += ECDSA_SIG_LEN
    (auth_len,) = struct.unpack("<H", _need(raw, off, 2, "QE auth data length"))
    off += 2
    qe_auth = _need(raw, off, auth_len, "QE auth data")
    off += auth_len
    cert_type, cert_len = struct.unpack("<HI", _need(raw, off, 6, "certification data header"))
    off += 6
    cert_data = _need(raw, off, cert_len, "certification data")
    off += cert_len
    if off != len(raw):
        raise QuoteFormatError(f"{len(raw) - off} trailing bytes after the certification data")
    return Quote(header, report, signature, att_key, qe_report, qe_sig, qe_auth, cert_type, cert_data, raw)


def assemble_quote(
    header: QuoteHeader,
    report: ReportBody,
    signature: bytes,
    attestation_key: bytes,
    qe_report: ReportBody,
    qe_report_signature: bytes,
    qe_auth_data: bytes,
    cert_data: bytes,
    cert_type: int = CERT_TYPE_PCK_CHAIN,
) -> bytes:
    """Serialize the parts into the v3 wire layout (inverse of parse_quote)."""
    sig_data = (
        signature
        + attestation_key
        + qe_report.to_bytes()
        + qe_report_signature
        + struct.pack("<H", len(qe_auth_data))
        + qe_auth_data
        + struct.pack("<HI", cert_type, len(cert_data))
        + cert_data
    )
    return header.to_bytes() + report.to_bytes() + struct.pack("<I", len(sig_data)) + sig_data
