"""Protocol constants and wire encodings, defined once for every layer (issue 8 item 3).

Everything that must agree bit for bit with the contracts (field order, the INVALID_INPUT
sentinel, proof modes, CID cap, commitment and proof-binding hashes) lives here so that node,
client, auditor, prover and explorer cannot drift apart. No chain access, no heavy imports.
"""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

#: BN254 scalar field order (Poseidon hashes, public signals, request binding).
FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: outputHash of the "invalid input" outcome: type(uint256).max, never a field element.
INVALID_INPUT_HASH = (1 << 256) - 1
#: The same sentinel as on-chain bytes32.
INVALID_INPUT = INVALID_INPUT_HASH.to_bytes(32, "big")

#: ModelRegistry proof modes, fixed at model registration (V2: no setVerifier).
PROOF_NONE, PROOF_PUBLIC_WEIGHTS, PROOF_PRIVATE_WEIGHTS = 0, 1, 2
#: CLI / manifest names of the proof modes.
PROOF_MODES = {"none": PROOF_NONE, "public": PROOF_PUBLIC_WEIGHTS, "private": PROOF_PRIVATE_WEIGHTS}
#: Human-readable descriptions (explorer, `model show`).
PROOF_MODE_NAMES = {
    PROOF_NONE: "none (consensus only)",
    PROOF_PUBLIC_WEIGHTS: "public weights (Groth16)",
    PROOF_PRIVATE_WEIGHTS: "private weights (Groth16)",
}

#: 1 ether in wei.
ETHER = 10**18
#: 1 gwei in wei.
GWEI = 10**9
#: anvil's chain id; development keys and test PKI are only accepted on this chain.
DEVNET_CHAIN_ID = 31337
#: Longest input/output CID (UTF-8 bytes) the market accepts (PROTOCOL_V2 "References bounded").
MAX_CID_BYTES = 128


def to_bytes32(value: bytes | str | int) -> bytes:
    """bytes32 from raw bytes, 0x-hex, or an integer (big-endian, e.g. a field element)."""
    if isinstance(value, bool):
        raise ValueError("a bool is not a bytes32 value")
    if isinstance(value, int):
        if not 0 <= value < 1 << 256:
            raise ValueError(f"{value} does not fit in bytes32")
        return value.to_bytes(32, "big")
    if isinstance(value, str):
        value = bytes.fromhex(value[2:] if value.startswith("0x") else value)
    value = bytes(value)
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return value


def from_bytes32(value: bytes) -> int:
    """Inverse of `to_bytes32` for integers (hashes read back from events)."""
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return int.from_bytes(value, "big")


def request_binding(request_id: int, prover: str) -> int:
    """uint256(keccak256(abi.encode(uint256 requestId, address prover))) % FIELD — binds a proof to its submitter."""
    digest = keccak(abi_encode(["uint256", "address"], [int(request_id), to_checksum_address(prover)]))
    return int.from_bytes(digest, "big") % FIELD


def commitment_hash(request_id: int, output_hash: bytes | str | int, salt: bytes | str | int, node: str) -> bytes:
    """keccak256(abi.encode(uint256 requestId, bytes32 outputHash, bytes32 salt, address node)) — the commit."""
    return keccak(
        abi_encode(
            ["uint256", "bytes32", "bytes32", "address"],
            [int(request_id), to_bytes32(output_hash), to_bytes32(salt), to_checksum_address(node)],
        )
    )


def check_cid(cid: str, *, allow_empty: bool = False) -> str:
    """Refuse a CID the market would refuse (empty, or longer than MAX_CID_BYTES in UTF-8)."""
    n = len(cid.encode())
    if n == 0 and not allow_empty:
        raise ValueError("CID must not be empty")
    if n > MAX_CID_BYTES:
        raise ValueError(f"CID is {n} bytes, the market accepts at most {MAX_CID_BYTES}")
    return cid
