"""The report-data binding: a quote is for this node, on this deployment, made after a recent block.

64-byte report data = BINDING_VERSION (1 byte) || keccak256(abi.encode(node, chain id, registry,
anchor block number, anchor block hash)) (32 bytes) || 31 zero bytes.
`AttestationRegistry.expectedReportData` computes the same bytes on-chain and refuses anything else;
the anchor block must be among the chain's last 256 blocks when the record is made (freshness).
"""

from __future__ import annotations

from eth_utils import keccak

from verinfer.attestation.verify import AttestationError

BINDING_VERSION = 1
REPORT_DATA_LEN = 64


def _word(b: bytes) -> bytes:
    return b.rjust(32, b"\x00")


def _addr(a: str) -> bytes:
    raw = bytes.fromhex(a.removeprefix("0x"))
    if len(raw) != 20:
        raise AttestationError(f"binding: not an address: {a}")
    return raw


def binding_hash(node: str, chain_id: int, registry: str, anchor_block: int, anchor_block_hash: bytes) -> bytes:
    """keccak256(abi.encode(node, chainId, registry, anchorBlock, blockhash(anchorBlock)))."""
    if len(anchor_block_hash) != 32:
        raise AttestationError("binding: anchor block hash must be 32 bytes")
    enc = (_word(_addr(node)) + chain_id.to_bytes(32, "big") + _word(_addr(registry))
           + anchor_block.to_bytes(32, "big") + anchor_block_hash)
    return keccak(enc)


def binding_report_data(node: str, chain_id: int, registry: str, anchor_block: int, anchor_block_hash: bytes) -> bytes:
    """The 64 bytes a TEE must put in its quote's report data to attest `node` on this registry."""
    return bytes([BINDING_VERSION]) + binding_hash(node, chain_id, registry, anchor_block, anchor_block_hash) + bytes(31)


def check_binding(report_data: bytes, node: str, chain_id: int, registry: str, anchor_block: int,
                  anchor_block_hash: bytes) -> None:
    """Raise `binding: …` unless `report_data` binds exactly this node, chain, registry and anchor block."""
    if len(report_data) != REPORT_DATA_LEN:
        raise AttestationError(f"binding: report data is {len(report_data)} bytes, expected {REPORT_DATA_LEN}")
    if report_data[0] != BINDING_VERSION:
        raise AttestationError(f"binding: report data version {report_data[0]}, expected {BINDING_VERSION}")
    want = binding_report_data(node, chain_id, registry, anchor_block, anchor_block_hash)
    if report_data != want:
        raise AttestationError(
            f"binding: report data does not bind node {node.lower()} on chain {chain_id}, registry {registry.lower()}, "
            f"anchor block {anchor_block}"
        )
