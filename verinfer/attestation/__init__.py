"""TEE attestation: verify Intel SGX/TDX quotes (dcap-qvl) and AMD SEV-SNP reports as of a given time, bind them
to a node key and a deployment, and describe the result for the registry and auditors.

Entry points: `verify_evidence` / `check_evidence` (evidence.py), `binding_report_data` (binding.py).
The labelled, INSECURE test PKI (testpki.py) issues real-format SGX quotes and collateral for devnets.
"""

from verinfer.attestation.binding import binding_report_data, check_binding
from verinfer.attestation.evidence import (
    Evidence,
    check_evidence,
    read_collateral_file,
    read_quote_file,
    verify_evidence,
)
from verinfer.attestation.quote import QuoteFormatError, parse_quote
from verinfer.attestation.record import (
    AttestationRecord,
    TeeType,
    VerifiedBy,
    make_mock_record,
)
from verinfer.attestation.verify import (
    AttestationError,
    VerifiedQuote,
    report_data_for,
    verify_quote,
)

__all__ = [
    "AttestationError",
    "AttestationRecord",
    "Evidence",
    "QuoteFormatError",
    "TeeType",
    "VerifiedBy",
    "VerifiedQuote",
    "binding_report_data",
    "check_binding",
    "check_evidence",
    "make_mock_record",
    "parse_quote",
    "read_collateral_file",
    "read_quote_file",
    "report_data_for",
    "verify_evidence",
    "verify_quote",
]
