"""The operator's attestation flow: get a quote bound to the node key, store it, anchor the record.

No TEE hardware exists here, so on a devnet (chain id 31337) the quote comes from the devnet's
INSECURE test PKI, kept beside the deployment manifest so nodes and auditors share one root.
A quote file given by the operator is verified against that same root before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verinfer.attestation.record import AttestationRecord, TeeType, VerifiedBy, quote_hash
from verinfer.attestation.testpki import TestPKI
from verinfer.attestation.verify import AttestationError, VerifiedQuote, report_data_for, verify_quote
from verinfer.errors import ConfigError

DEVNET_CHAIN_ID = 31337
DEFAULT_TTL_BLOCKS = 100_000
PKI_FILENAME = "test-pki.json"


def pki_path_for(protocol: Any) -> Path:
    """The devnet test PKI lives next to the manifest (one root per deployment)."""
    import os

    from verinfer.chain.manifest import default_manifest_path

    if os.environ.get("VERINFER_TEST_PKI"):
        return Path(os.environ["VERINFER_TEST_PKI"])
    src = getattr(protocol.manifest, "path", None)
    base = Path(src).parent if src else default_manifest_path().parent
    return base / PKI_FILENAME


def devnet_pki(protocol: Any, path: Path | None = None) -> TestPKI:
    if protocol.w3.eth.chain_id != DEVNET_CHAIN_ID:
        raise ConfigError("the INSECURE test PKI is only for a local devnet (chain id 31337); give a real TEE quote")
    return TestPKI.load_or_create(path or pki_path_for(protocol))


def _to_record(protocol: Any, quote: bytes, vq: VerifiedQuote, cid: str, ttl_blocks: int) -> Any:
    from verinfer.chain.protocol import Attestation

    rec = AttestationRecord(
        teeType=int(TeeType.SGX), measurement=vq.mr_enclave, quoteHash=quote_hash(quote),
        reportDataAddress=protocol.account.address, expiresAt=protocol.w3.eth.block_number + ttl_blocks,
        verifiedBy=int(VerifiedBy.MOCK_PKI), quoteCid=cid,
    )
    return Attestation(rec.teeType, rec.measurement, rec.quoteHash, rec.reportDataAddress,
                       rec.expiresAt, rec.verifiedBy, rec.quoteCid)


def attest(protocol: Any, quote_path: Path | None = None, *, store: Any = None,
           pki_path: Path | None = None, ttl_blocks: int = DEFAULT_TTL_BLOCKS) -> Any:
    """Verify (or issue) a quote binding the operator's address, store it, submit the record; returns the receipt."""
    if protocol.account is None:
        raise ConfigError("attestation needs the node's key")
    from verinfer.storage import open_store

    store = store or open_store()
    pki = devnet_pki(protocol, pki_path)
    chain_id = protocol.w3.eth.chain_id
    address = protocol.account.address
    quote = quote_path.read_bytes() if quote_path else pki.quote(report_data_for(address, chain_id))
    try:
        vq = verify_quote(quote, pki.root_pem, expected_address=address, expected_chain_id=chain_id)
    except AttestationError as exc:
        raise ConfigError(f"quote rejected before anchoring: {exc}") from None
    cid = store.add(quote)
    return protocol.nodes.submit_attestation(_to_record(protocol, quote, vq, cid, ttl_blocks))


@dataclass(frozen=True)
class RecordCheck:
    """One node's on-chain record re-verified from public data."""

    node: str
    ok: bool
    reason: str
    measurement: str = ""


def check_record(protocol: Any, node: str, trusted_root_pem: bytes, *, store: Any = None,
                 block: int | None = None) -> RecordCheck:
    """Re-derive an attestation record: quote by CID → hash → DCAP chain → binding → allow-list → expiry."""
    from verinfer.storage import open_store

    store = store or open_store()
    rec = protocol.nodes.get_attestation(node)
    if rec.tee_type == 0:
        return RecordCheck(node, False, "no attestation record")
    try:
        quote = store.cat(rec.quote_cid, max_bytes=1 << 20)
    except Exception as exc:  # content-store errors carry their own readable message
        return RecordCheck(node, False, f"quote not retrievable: {exc}")
    if quote_hash(quote) != bytes(rec.quote_hash):
        return RecordCheck(node, False, "quote bytes do not hash to the recorded quoteHash")
    try:
        vq = verify_quote(quote, trusted_root_pem, expected_address=node,
                          expected_chain_id=protocol.w3.eth.chain_id)
    except AttestationError as exc:
        return RecordCheck(node, False, str(exc))
    if vq.mr_enclave != bytes(rec.measurement):
        return RecordCheck(node, False, "quote measurement differs from the recorded one")
    if not protocol.nodes.measurement_allowed(rec.measurement):
        return RecordCheck(node, False, "measurement no longer allow-listed")
    now = protocol.w3.eth.block_number if block is None else block
    if rec.expires_at <= now:
        return RecordCheck(node, False, f"expired at block {rec.expires_at}")
    how = "test PKI (INSECURE)" if rec.verified_by == int(VerifiedBy.MOCK_PKI) else f"verifiedBy={rec.verified_by}"
    return RecordCheck(node, True, f"valid until block {rec.expires_at}; {how}", vq.mr_enclave.hex())
