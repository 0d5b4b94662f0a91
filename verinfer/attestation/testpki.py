"""A TEST PKI that issues SGX DCAP v3 quotes in Intel's byte format — no TEE hardware exists here.

INSECURE BY DESIGN: whoever holds these keys can "attest" any measurement. It exists so the whole
attestation path (quote bytes → content store → on-chain record → verifier → audit) runs for real
with the real data format; only the root of trust differs from Intel's. Records made with it are
marked `verifiedBy = MOCK_PKI (255)` on-chain, and the root's subject says TEST.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

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


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "verinfer TEST PKI (INSECURE)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          ca: bool, days: int = 3650) -> x509.Certificate:
    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


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

    __test__ = False  # not a pytest class

    @classmethod
    def generate(cls) -> "TestPKI":
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _cert("verinfer TEST SGX Root CA", root_key, "verinfer TEST SGX Root CA", root_key, ca=True)
        platform_key = ec.generate_private_key(ec.SECP256R1())
        platform = _cert("verinfer TEST SGX Platform CA", platform_key, "verinfer TEST SGX Root CA", root_key, ca=True)
        pck_key = ec.generate_private_key(ec.SECP256R1())
        pck = _cert("verinfer TEST SGX PCK Certificate", pck_key, "verinfer TEST SGX Platform CA", platform_key, ca=False)
        return cls(root_key, root, platform_key, platform, pck_key, pck, ec.generate_private_key(ec.SECP256R1()))

    @property
    def root_pem(self) -> bytes:
        return _pem(self.root)

    def chain_pem(self) -> bytes:
        return _pem(self.pck) + _pem(self.platform) + _pem(self.root)

    def quote(self, report_data: bytes, mr_enclave: bytes = MOCK_WORKER_MR_ENCLAVE,
              mr_signer: bytes = MOCK_MR_SIGNER, isv_svn: int = 1) -> bytes:
        """Issue a v3 quote over an enclave report carrying `report_data` (64 bytes)."""
        if len(report_data) != 64:
            raise ValueError("report data must be 64 bytes")
        att_point = self.att_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]
        qe_auth = hashlib.sha256(b"verinfer.qe-auth").digest()
        qe_report = ReportBody(
            cpu_svn=bytes(16), misc_select=0, attributes=bytes(16), mr_enclave=MOCK_QE_MR_ENCLAVE,
            mr_signer=MOCK_MR_SIGNER, isv_prod_id=1, isv_svn=1,
            report_data=hashlib.sha256(att_point + qe_auth).digest() + bytes(32),
        )
        header = QuoteHeader(QUOTE_VERSION_3, ATT_KEY_TYPE_ECDSA_P256, 1, 1, INTEL_QE_VENDOR_ID, bytes(20))
        report = ReportBody(
            cpu_svn=bytes(16), misc_select=0, attributes=bytes(16), mr_enclave=mr_enclave,
            mr_signer=mr_signer, isv_prod_id=1, isv_svn=isv_svn, report_data=report_data,
        )
        signed = header.to_bytes() + report.to_bytes()
        return assemble_quote(
            header, report, _raw_sig(self.att_key, signed), att_point, qe_report,
            _raw_sig(self.pck_key, qe_report.to_bytes()), qe_auth, self.chain_pem(),
        )

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
        }, indent=1))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> "TestPKI":
        d = json.loads(path.read_text())

        def key(s: str) -> ec.EllipticCurvePrivateKey:
            k = serialization.load_pem_private_key(s.encode(), password=None)
            assert isinstance(k, ec.EllipticCurvePrivateKey)
            return k
        return cls(key(d["root_key"]), x509.load_pem_x509_certificate(d["root"].encode()),
                   key(d["platform_key"]), x509.load_pem_x509_certificate(d["platform"].encode()),
                   key(d["pck_key"]), x509.load_pem_x509_certificate(d["pck"].encode()), key(d["att_key"]))

    @classmethod
    def load_or_create(cls, path: Path) -> "TestPKI":
        if path.exists():
            return cls.load(path)
        pki = cls.generate()
        pki.save(path)
        return pki
