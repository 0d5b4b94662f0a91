"""The attestation record a node anchors in NodeRegistry, and how it is derived from a quote."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_utils import keccak

from verinfer.attestation.testpki import TestPKI
from verinfer.attestation.verify import report_data_for, verify_quote


class TeeType(IntEnum):
    NONE = 0
    SGX = 1
    TDX = 2
    SEV_SNP = 3
    MOCK = 255


class VerifiedBy(IntEnum):
    UNVERIFIED = 0
    OFFCHAIN_DCAP = 1
    ONCHAIN = 2
    MOCK_PKI = 255


@dataclass(frozen=True)
class AttestationRecord:
    """Mirrors NodeRegistry.Attestation field for field (same names, same order)."""

    teeType: int
    measurement: bytes
    quoteHash: bytes
    reportDataAddress: str
    expiresAt: int
    verifiedBy: int
    quoteCid: str

    def as_tuple(self) -> tuple:
        return (self.teeType, self.measurement, self.quoteHash, self.reportDataAddress,
                self.expiresAt, self.verifiedBy, self.quoteCid)


def quote_hash(quote: bytes) -> bytes:
    """keccak256 of the quote bytes: what the chain stores and the auditor re-derives from the CID."""
    return keccak(quote)


def make_mock_record(pki: TestPKI, address: str, chain_id: int, quote_cid_of, expires_at: int) -> tuple[AttestationRecord, bytes]:
    """Issue a test-PKI quote binding `address`, store it via `quote_cid_of(bytes) -> cid`, and build the record.

    The quote is verified before it is anchored, so a node never posts a record its own check rejects.
    """
    quote = pki.quote(report_data_for(address, chain_id))
    vq = verify_quote(quote, pki.root_pem, expected_address=address, expected_chain_id=chain_id)
    cid = quote_cid_of(quote)
    rec = AttestationRecord(
        teeType=int(TeeType.SGX), measurement=vq.mr_enclave, quoteHash=quote_hash(quote),
        reportDataAddress=address, expiresAt=expires_at, verifiedBy=int(VerifiedBy.MOCK_PKI), quoteCid=cid,
    )
    return rec, quote
