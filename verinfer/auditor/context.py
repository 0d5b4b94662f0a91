"""What every claim module shares: the audit's inputs (`AuditEnv`), the values re-derived so far
(`AuditContext`, later claims build on earlier ones) and small formatting helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from verinfer.chain.protocol import Protocol, RequestView
from verinfer.chain.types import ModelInfo
from verinfer.constants import PROOF_PRIVATE_WEIGHTS, PROOF_PUBLIC_WEIGHTS
from verinfer.errors import VerinferError
from verinfer.storage.base import ContentStore

MAX_INPUT_BYTES = 1 << 20  # architecture §1.3
MAX_OUTPUT_BYTES = 16 << 20
MAX_QUOTE_BYTES = 1 << 20
BACKENDS = ("groth16py", "snarkjs")
_MODE_NAMES = {PROOF_PUBLIC_WEIGHTS: "public", PROOF_PRIVATE_WEIGHTS: "private"}


class AuditError(VerinferError):
    """The audit cannot start (unknown request, unreadable option); individual claims never raise it."""


@dataclass
class VkCandidate:
    """A verification key the auditor can use, and where it came from (reported with every verdict)."""

    source: str
    vk: dict[str, Any]
    insecure: bool


@dataclass(frozen=True)
class AuditEnv:
    """The auditor's sources and options: the chain, the content store, trust anchors, verifier backends."""

    protocol: Protocol
    w3: Web3
    store: ContentStore
    trusted_root_pem: bytes | None
    trusted_root_label: str
    vk_path: Path | None
    backends: tuple[str, ...]


@dataclass
class AuditContext:
    """Values re-derived while auditing (later checks build on earlier ones; tests inspect them)."""

    request: RequestView
    model: ModelInfo
    chain_id: int
    #: the block every market view is read at: "latest", or for a pruned request (its record recycled by a later
    #: request) the last block holding it (InferenceMarket.history_block; needs an archive node)
    view_block: int | str = "latest"
    spec: Any = None
    outcome: Any = None
    #: CIDs live only in events (V2): the input's in InferenceRequested, the settled output's in Revealed
    input_cid: str = ""
    output_cid: str = ""
    input_defect: str | None = None
    reference_output: list[int] | None = None
    payload_output: list[int] | None = None
    vk: VkCandidate | None = None
    vk_tried: list[str] = field(default_factory=list)
    vk_candidates: list[VkCandidate] | None = None
    events: dict[str, list[Any]] = field(default_factory=dict)
    winner: bytes | None = None
    proof_words: list[int] | None = None
    proven_hash: bytes | None = None
    prover: str | None = None
    #: sharded LLMs (auditor/llm.py): the fetched checkpoint, why re-execution is impossible, re-run seconds
    llm_checkpoint: Any = None
    llm_unavailable: str | None = None
    llm_timing: tuple[float, float, int] | None = None  # (model build s, prompt + generation s, prompt tokens)
    notes: list[str] = field(default_factory=list)


def hex32(b: bytes | int) -> str:
    if isinstance(b, int):
        b = b.to_bytes(32, "big")
    return "0x" + bytes(b).hex()


def short(b: bytes | int | str) -> str:
    s = b if isinstance(b, str) else hex32(b)
    return s if len(s) <= 18 else f"{s[:10]}…{s[-6:]}"


def vk_constants(vk: dict[str, Any]) -> list[int]:
    """Every curve coordinate of a snarkjs vk (alpha, beta, gamma, delta, IC): what its verifier embeds."""
    vals: list[int] = []
    vals += [int(v) for v in vk["vk_alpha_1"][:2]]
    for key in ("vk_beta_2", "vk_gamma_2", "vk_delta_2"):
        for pair in vk[key][:2]:
            vals += [int(v) for v in pair]
    for point in vk["IC"]:
        vals += [int(v) for v in point[:2]]
    return vals


def missing_vk_constants(code: bytes, vk: dict[str, Any]) -> list[int]:
    """The vk's coordinates that do not appear as PUSH immediates in `code` (the snarkjs verifier
    declares them as `uint256 constant`, which solc inlines as PUSHn of the minimal big-endian bytes)."""
    missing = []
    for v in vk_constants(vk):
        raw = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
        if bytes([0x5F + len(raw)]) + raw not in code:
            missing.append(v)
    return missing


