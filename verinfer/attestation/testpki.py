"""A TEST PKI that issues SGX DCAP v3 quotes and their full collateral in Intel's formats — no TEE hardware here.

INSECURE BY DESIGN: whoever holds these keys can "attest" any measurement. It exists so the whole
attestation path (quote bytes → content store → on-chain record → verifier → audit) runs for real
with the real data format; only the root of trust differs from Intel's. Records made with it are
marked `verifiedBy = MOCK_PKI (255)` on-chain, and the root's subject says TEST.

The PKI also issues the collateral a relying party fetches from Intel's PCS (TCB info and QE identity,
signed by a TCB signing certificate, and the root / PCK CRLs), and its PCK certificate carries Intel's SGX
extension (FMSPC, PCE id, CPU SVN, PCE SVN), so its quotes are verified by the same dcap-qvl code as
production quotes (`verinfer.attestation.dcap.verify_dcap(..., root_ca_der=pki.root_der)`).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID, ObjectIdentifier

from verinfer.attestation.quote import (
    ATT_KEY_TYPE_ECDSA_P256,
    INTEL_QE_VENDOR_ID,
    QUOTE_VERSION_3,
    QuoteHeader,
    ReportBody,
    assemble_quote,
)

# The measurement of the (simulated) verinfer worker enclave: a hash of a name, stable across runs,
# so governance can allow-list it on the devnet.
MOCK_WORKER_MR_ENCLAVE = hashlib.sha256(b"verinfer.mock-enclave.worker.v1").digest()
MOCK_MR_SIGNER = hashlib.sha256(b"verinfer.mock-enclave.signer.v1").digest()
MOCK_QE_MR_ENCLAVE = hashlib.sha256(b"verinfer.mock-enclave.qe.v1").digest()
# The simulated TDX worker VM: MRTD and RTMR0..3 (48 bytes each), stable so governance can allow-list it.
MOCK_TD_MRTD = hashlib.sha384(b"verinfer.mock-td.worker.v1").digest()
MOCK_TD_RTMRS = tuple(hashlib.sha384(b"verinfer.mock-td.rtmr%d" % i).digest() for i in range(4))
TDX_TEE_TYPE = 0x81
# TD attributes with SEPT_VE_DISABLE (bit 28) and no DEBUG; XFAM as on a typical TDX host.
_TD_ATTRIBUTES = bytes.fromhex("0000001000000000")
_TD_XFAM = bytes.fromhex("e702060000000000")

# The simulated platform, as its PCK certificate's Intel SGX extension states it.
TEST_FMSPC = bytes.fromhex("00906ED50000")
TEST_PCE_ID = bytes(2)
TEST_CPU_SVN = bytes([2] * 16)
TEST_PCE_SVN = 13
TEST_QE_ISV_SVN = 8
SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
COLLATERAL_DAYS = 30

# --- minimal DER encoding for the SGX extension (cryptography has no generic ASN.1 writer)


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(nb)]) + nb
    return bytes([tag]) + length + content


def _der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, bytes(out))


def _der_int(v: int) -> bytes:
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return _der(0x02, b)


def _entry(oid: str, value: bytes) -> bytes:
    return _der(0x30, _der_oid(oid) + value)


def sgx_extension(ppid: bytes, cpu_svn: bytes, pce_svn: int, pce_id: bytes, fmspc: bytes) -> bytes:
    """DER of Intel's SGX extension (OID 1.2.840.113741.1.13.1) as found in PCK certificates."""
    base = SGX_EXTENSION_OID
    tcb = b"".join(_entry(f"{base}.2.{i + 1}", _der_int(cpu_svn[i])) for i in range(16))
    tcb += _entry(f"{base}.2.17", _der_int(pce_svn)) + _entry(f"{base}.2.18", _der(0x04, cpu_svn))
    return _der(0x30, _entry(f"{base}.1", _der(0x04, ppid)) + _entry(f"{base}.2", _der(0x30, tcb))
                + _entry(f"{base}.3", _der(0x04, pce_id)) + _entry(f"{base}.4", _der(0x04, fmspc))
                + _entry(f"{base}.5", _der(0x0A, b"\x00")))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Attributes of the simulated enclaves: INIT | MODE64BIT (no DEBUG bit: dcap-qvl refuses debug enclaves).
_ENCLAVE_ATTRIBUTES = bytes([0x05]) + bytes(7) + bytes([0x03]) + bytes(7)
_QE_ATTRIBUTES = bytes([0x11]) + bytes(7) + bytes([0xE7]) + bytes(7)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "verinfer TEST PKI (INSECURE)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          ca: bool, days: int = 3650, sgx_ext: bytes | None = None) -> x509.Certificate:
    now = datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=not ca, content_commitment=not ca, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
        ), critical=True)
    )
    if sgx_ext is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(ObjectIdentifier(SGX_EXTENSION_OID), sgx_ext),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pck_cert(pck_key: ec.EllipticCurvePrivateKey, platform_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    ext = sgx_extension(hashlib.sha256(b"verinfer.test-ppid").digest()[:16], TEST_CPU_SVN, TEST_PCE_SVN,
                        TEST_PCE_ID, TEST_FMSPC)
    return _cert("verinfer TEST SGX PCK Certificate", pck_key, "verinfer TEST SGX Platform CA", platform_key,
                 ca=False, sgx_ext=ext)


def _tcb_cert(tcb_key: ec.EllipticCurvePrivateKey, root_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return _cert("verinfer TEST SGX TCB Signing", tcb_key, "verinfer TEST SGX Root CA", root_key, ca=False)


def _raw_sig(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _pem(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.PEM)


@dataclass
class TestPKI:
    """Root CA → platform CA → PCK leaf, plus a quoting enclave's attestation key."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    platform_key: ec.EllipticCurvePrivateKey
    platform: x509.Certificate
    pck_key: ec.EllipticCurvePrivateKey
    pck: x509.Certificate
    att_key: ec.EllipticCurvePrivateKey
    tcb_key: ec.EllipticCurvePrivateKey
    tcb: x509.Certificate

    __test__ = False  # not a pytest class

    @classmethod
    def generate(cls) -> TestPKI:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _cert("verinfer TEST SGX Root CA", root_key, "verinfer TEST SGX Root CA", root_key, ca=True)
        platform_key = ec.generate_private_key(ec.SECP256R1())
        platform = _cert("verinfer TEST SGX Platform CA", platform_key, "verinfer TEST SGX Root CA", root_key, ca=True)
        pck_key = ec.generate_private_key(ec.SECP256R1())
        pck = _pck_cert(pck_key, platform_key)
        tcb_key = ec.generate_private_key(ec.SECP256R1())
        return cls(root_key, root, platform_key, platform, pck_key, pck, ec.generate_private_key(ec.SECP256R1()),
                   tcb_key, _tcb_cert(tcb_key, root_key))

    @property
    def root_pem(self) -> bytes:
        return _pem(self.root)

    @property
    def root_der(self) -> bytes:
        """The trust anchor dcap-qvl takes (`verify_with_root_ca`)."""
        return self.root.public_bytes(serialization.Encoding.DER)

    def _crl(self, issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, issued_at: datetime,
             next_update: datetime, revoked: list[x509.Certificate]) -> bytes:
        b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
             .last_update(issued_at).next_update(next_update).add_extension(x509.CRLNumber(1), critical=False))
        for c in revoked:
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(c.serial_number)
                                          .revocation_date(issued_at).build())
        return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def collateral(self, issued_at: datetime, *, days: int = COLLATERAL_DAYS, tcb_status: str = "UpToDate",
                   advisory_ids: tuple[str, ...] = (), revoke_pck: bool = False, tee: str = "SGX") -> dict[str, str]:
        """Full DCAP collateral (PCS field names, byte fields hex) valid from `issued_at` for `days`.

        `tcb_status` / `advisory_ids` set the one TCB level the platform matches; `revoke_pck` lists the PCK
        certificate in the PCK CRL (what Intel does for a compromised platform); `tee` is "SGX" or "TDX".
        """
        if tee not in ("SGX", "TDX"):
            raise ValueError(f"tee must be SGX or TDX, not {tee}")
        issued_at = issued_at.astimezone(UTC).replace(microsecond=0)
        nxt = issued_at + timedelta(days=days)
        level: dict[str, object] = {
            "tcb": {"sgxtcbcomponents": [{"svn": v} for v in TEST_CPU_SVN], "pcesvn": TEST_PCE_SVN,
                    **({"tdxtcbcomponents": [{"svn": 0}] * 16} if tee == "TDX" else {})},
            "tcbDate": _iso(issued_at - timedelta(days=30)), "tcbStatus": tcb_status,
        }
        if advisory_ids:
            level["advisoryIDs"] = list(advisory_ids)
        tdx_module = {"tdxModule": {"mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8}}
        tcb_info = json.dumps({
            "id": tee, "version": 3, "issueDate": _iso(issued_at), "nextUpdate": _iso(nxt),
            "fmspc": TEST_FMSPC.hex().upper(), "pceId": TEST_PCE_ID.hex().upper(), "tcbType": 0,
            "tcbEvaluationDataNumber": 1, **(tdx_module if tee == "TDX" else {}), "tcbLevels": [level],
        }, separators=(",", ":"))
        qe_identity = json.dumps({
            "id": "QE" if tee == "SGX" else "TD_QE", "version": 2, "issueDate": _iso(issued_at), "nextUpdate": _iso(nxt),
            "tcbEvaluationDataNumber": 1, "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": _QE_ATTRIBUTES.hex().upper(), "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": MOCK_MR_SIGNER.hex().upper(), "isvprodid": 1,
            "tcbLevels": [{"tcb": {"isvsvn": TEST_QE_ISV_SVN}, "tcbDate": _iso(issued_at - timedelta(days=30)),
                           "tcbStatus": "UpToDate"}],
        }, separators=(",", ":"))
        signer_chain = (_pem(self.tcb) + _pem(self.root)).decode()
        return {
            "pck_crl_issuer_chain": (_pem(self.platform) + _pem(self.root)).decode(),
            "root_ca_crl": self._crl(self.root, self.root_key, issued_at, nxt, []).hex(),
            "pck_crl": self._crl(self.platform, self.platform_key, issued_at, nxt,
                                 [self.pck] if revoke_pck else []).hex(),
            "tcb_info_issuer_chain": signer_chain,
            "tcb_info": tcb_info,
            "tcb_info_signature": _raw_sig(self.tcb_key, tcb_info.encode()).hex(),
            "qe_identity_issuer_chain": signer_chain,
            "qe_identity": qe_identity,
            "qe_identity_signature": _raw_sig(self.tcb_key, qe_identity.encode()).hex(),
        }

    def chain_pem(self) -> bytes:
        return _pem(self.pck) + _pem(self.platform) + _pem(self.root)

    def quote(self, report_data: bytes, mr_enclave: bytes = MOCK_WORKER_MR_ENCLAVE,
              mr_signer: bytes = MOCK_MR_SIGNER, isv_svn: int = 1) -> bytes:
        """Issue a v3 quote over an enclave report carrying `report_data` (64 bytes)."""
        if len(report_data) != 64:
            raise ValueError("report data must be 64 bytes")
        att_point = self.att_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]
        qe_report, qe_sig, qe_auth = self._qe_part(att_point)
        header = QuoteHeader(QUOTE_VERSION_3, ATT_KEY_TYPE_ECDSA_P256, TEST_QE_ISV_SVN, TEST_PCE_SVN,
                             INTEL_QE_VENDOR_ID, bytes(20))
        report = ReportBody(
            cpu_svn=TEST_CPU_SVN, misc_select=0, attributes=_ENCLAVE_ATTRIBUTES, mr_enclave=mr_enclave,
            mr_signer=mr_signer, isv_prod_id=1, isv_svn=isv_svn, report_data=report_data,
        )
        signed = header.to_bytes() + report.to_bytes()
        return assemble_quote(
            header, report, _raw_sig(self.att_key, signed), att_point, qe_report, qe_sig, qe_auth, self.chain_pem(),
        )

    def _qe_part(self, att_point: bytes) -> tuple[ReportBody, bytes, bytes]:
        qe_auth = hashlib.sha256(b"verinfer.qe-auth").digest()
        qe_report = ReportBody(
            cpu_svn=TEST_CPU_SVN, misc_select=0, attributes=_QE_ATTRIBUTES, mr_enclave=MOCK_QE_MR_ENCLAVE,
            mr_signer=MOCK_MR_SIGNER, isv_prod_id=1, isv_svn=TEST_QE_ISV_SVN,
            report_data=hashlib.sha256(att_point + qe_auth).digest() + bytes(32),
        )
        return qe_report, _raw_sig(self.pck_key, qe_report.to_bytes()), qe_auth

    def tdx_quote(self, report_data: bytes, mr_td: bytes = MOCK_TD_MRTD,
                  rtmrs: tuple[bytes, ...] = MOCK_TD_RTMRS) -> bytes:
        """Issue a TDX v4 quote (TD10 report body, certification data type 6) carrying `report_data`."""
        if len(report_data) != 64 or len(mr_td) != 48 or len(rtmrs) != 4 or any(len(r) != 48 for r in rtmrs):
            raise ValueError("report data must be 64 bytes; MRTD and each of 4 RTMRs 48 bytes")
        att_point = self.att_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]
        header = struct.pack("<HHIHH16s20s", 4, ATT_KEY_TYPE_ECDSA_P256, TDX_TEE_TYPE, 0, 0, INTEL_QE_VENDOR_ID,
                             bytes(20))
        body = (bytes(16) + hashlib.sha384(b"verinfer.mock-seam").digest() + bytes(48) + bytes(8) + _TD_ATTRIBUTES
                + _TD_XFAM + mr_td + bytes(48 * 3) + b"".join(rtmrs) + report_data)
        assert len(body) == 584
        qe_report, qe_sig, qe_auth = self._qe_part(att_point)
        chain = self.chain_pem()
        inner = (qe_report.to_bytes() + qe_sig + struct.pack("<H", len(qe_auth)) + qe_auth
                 + struct.pack("<HI", 5, len(chain)) + chain)
        sig_data = (_raw_sig(self.att_key, header + body) + att_point + struct.pack("<HI", 6, len(inner)) + inner)
        return header + body + struct.pack("<I", len(sig_data)) + sig_data

    def save(self, path: Path) -> None:
        """Persist (INSECURE: private keys in clear) so a devnet's nodes and auditors share one root."""
        def key_pem(k: ec.EllipticCurvePrivateKey) -> str:
            return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()).decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "warning": "INSECURE TEST PKI — never trust quotes from it outside a devnet",
            "root_key": key_pem(self.root_key), "root": _pem(self.root).decode(),
            "platform_key": key_pem(self.platform_key), "platform": _pem(self.platform).decode(),
            "pck_key": key_pem(self.pck_key), "pck": _pem(self.pck).decode(),
            "att_key": key_pem(self.att_key),
            "tcb_key": key_pem(self.tcb_key), "tcb": _pem(self.tcb).decode(),
        }, indent=1))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> TestPKI:
        d = json.loads(path.read_text())

        def key(s: str) -> ec.EllipticCurvePrivateKey:
            k = serialization.load_pem_private_key(s.encode(), password=None)
            assert isinstance(k, ec.EllipticCurvePrivateKey)
            return k
        root_key, platform_key, pck_key = key(d["root_key"]), key(d["platform_key"]), key(d["pck_key"])
        pck = x509.load_pem_x509_certificate(d["pck"].encode())
        if "tcb_key" in d:
            tcb_key, tcb = key(d["tcb_key"]), x509.load_pem_x509_certificate(d["tcb"].encode())
        else:  # a PKI saved before collateral existed: same root, a PCK with the SGX extension, a TCB signer
            pck = _pck_cert(pck_key, platform_key)
            tcb_key = ec.generate_private_key(ec.SECP256R1())
            tcb = _tcb_cert(tcb_key, root_key)
        return cls(root_key, x509.load_pem_x509_certificate(d["root"].encode()),
                   platform_key, x509.load_pem_x509_certificate(d["platform"].encode()),
                   pck_key, pck, key(d["att_key"]), tcb_key, tcb)

    @classmethod
    def load_or_create(cls, path: Path) -> TestPKI:
        if path.exists():
            return cls.load(path)
        pki = cls.generate()
        pki.save(path)
        return pki
