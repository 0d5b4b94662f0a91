"""TEE attestation: quote format, verification, and the record a node anchors on-chain.

Only a test PKI exists here (no TEE hardware); it emits Intel's SGX DCAP v3 byte format so that
everything downstream (content store, NodeRegistry record, auditor) handles real-format data.
"""

from verinfer.attestation.quote import QuoteFormatError, parse_quote
from verinfer.attestation.record import AttestationRecord, TeeType, VerifiedBy, make_mock_record
from verinfer.attestation.verify import AttestationError, VerifiedQuote, report_data_for, verify_quote

__all__ = [
    "AttestationError",
    "AttestationRecord",
    "QuoteFormatError",
    "TeeType",
    "VerifiedBy",
    "VerifiedQuote",
    "make_mock_record",
    "parse_quote",
    "report_data_for",
    "verify_quote",
]
