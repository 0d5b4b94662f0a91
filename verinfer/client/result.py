"""What a requester gets back: one immutable record per request, built only from chain + store data.

Why a plain dataclass: the CLI, the demo, the benchmarks and the tests all render or assert on the
same fields, and none of them should need to know how events and views were stitched together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from verinfer.chain.types import FINAL_STATUSES as _FINAL
from verinfer.chain.types import status_label
from verinfer.constants import INVALID_INPUT_HASH

#: Solidity names of the settled statuses (chain.types.RequestStatus is the one enum).
FINAL_STATUSES = frozenset(s.label for s in _FINAL)

#: Lifecycle steps whose gas the result reports (one list per step: several nodes commit/reveal).
GAS_STEPS = ("request", "commit", "reveal", "finalize", "submitProof", "withdraw")


def predicted_class(output: list[int] | None) -> int | None:
    """A classifier's answer: the index of the largest logit (first on ties); none for a single output."""
    if output is None or len(output) < 2:
        return None
    return max(range(len(output)), key=lambda i: output[i])


def status_name(code: int) -> str:
    """Map the on-chain enum value to its Solidity name (unknown values stay visible, not hidden)."""
    return status_label(code)


@dataclass(frozen=True)
class MemberResult:
    """One committee member's part in a request: did it commit, reveal, agree, get paid or slashed."""

    node: str
    committed: bool
    revealed: bool
    output_hash: int | None
    output_cid: str
    agrees: bool
    slashed: bool
    paid: bool


@dataclass(frozen=True)
class RequestResult:
    """Everything public about one request, with the output fetched from the store and re-hashed."""

    request_id: int
    model_id: str
    requester: str
    status: str
    fee: int
    input_cid: str
    input_hash: int
    created_block: int
    commit_deadline: int
    reveal_deadline: int
    output_hash: int | None
    output_cid: str
    output: list[int] | None
    output_verified: bool
    prediction: int | None
    committee: list[MemberResult]
    proven: bool
    proof_contradicted: bool
    proof_mode: int
    refunded: int
    slashed_total: int
    gas: dict[str, list[int]] = field(default_factory=dict)
    finalized_block: int | None = None
    error: str | None = None
    #: "mlp" (classifier: `prediction` is the argmax) or "lm" (language model: `text` is the decoded output)
    model_kind: str = "mlp"
    text: str | None = None
    #: "plain"; "permuted" (an encrypted model's output, no key given: `prediction` is None, the class
    #: order is secret); "decrypted" (un-permuted with the owner's EE key, see client.ee)
    output_space: str = "plain"
    #: with output_space "decrypted": the settled output as the chain and the store hold it
    permuted_output: list[int] | None = None

    @property
    def final(self) -> bool:
        """Settled on-chain (Accepted, InvalidInput or NoQuorum)."""
        return self.status in FINAL_STATUSES

    @property
    def invalid_input(self) -> bool:
        """The committee agreed the input was invalid (outputHash = 0xff…ff, fee refunded)."""
        return self.status == "InvalidInput" or self.output_hash == INVALID_INPUT_HASH

    @property
    def display_status(self) -> str:
        """The settled on-chain status; Accepted with an agreeing proof reads as Proven.

        A proof that contradicts the settlement never reads as Proven (attack 10): the headline
        is the settled status with the contradiction spelled out."""
        if self.status == "Accepted" and self.proof_contradicted:
            return "Accepted (contradicted by a proof)"
        if self.status == "Accepted" and self.proven:
            return "Proven"
        return self.status

    @property
    def agreeing(self) -> list[MemberResult]:
        return [m for m in self.committee if m.agrees]

    @property
    def dissenting(self) -> list[MemberResult]:
        """Members that revealed something other than the settled output."""
        return [m for m in self.committee if m.revealed and not m.agrees]

    @property
    def no_shows(self) -> list[MemberResult]:
        return [m for m in self.committee if not m.revealed]

    @property
    def consensus(self) -> str:
        """`agreeing/committee`, the figure the demo table shows."""
        return f"{len(self.agreeing)}/{len(self.committee)}"

    def gas_total(self, step: str) -> int:
        return sum(self.gas.get(step, []))

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (hashes as 0x hex) for `--json` output and logs."""
        def h(x: int | None) -> str | None:
            return None if x is None else "0x" + x.to_bytes(32, "big").hex()

        return {
            "requestId": self.request_id,
            "modelId": self.model_id,
            "requester": self.requester,
            "status": self.display_status,
            "fee": self.fee,
            "inputCid": self.input_cid,
            "inputHash": h(self.input_hash),
            "outputHash": h(self.output_hash),
            "outputCid": self.output_cid,
            "output": self.output,
            "outputVerified": self.output_verified,
            "prediction": self.prediction,
            "text": self.text,
            "modelKind": self.model_kind,
            "outputSpace": self.output_space,
            "permutedOutput": self.permuted_output,
            "consensus": self.consensus,
            "committee": [
                {
                    "node": m.node,
                    "committed": m.committed,
                    "revealed": m.revealed,
                    "outputHash": h(m.output_hash),
                    "agrees": m.agrees,
                    "slashed": m.slashed,
                    "paid": m.paid,
                }
                for m in self.committee
            ],
            "proven": self.proven,
            "proofContradicted": self.proof_contradicted,
            "refunded": self.refunded,
            "slashed": self.slashed_total,
            "gas": self.gas,
            "createdBlock": self.created_block,
            "finalizedBlock": self.finalized_block,
            "error": self.error,
        }


@dataclass(frozen=True)
class WaitUpdate:
    """A progress snapshot handed to `Client.wait(progress=…)` each poll."""

    request_id: int
    phase: str  # Committing | Revealing | Finalizing | Proving | <final status>
    block: int
    commits: int
    reveals: int
    committee_size: int
    commit_deadline: int
    reveal_deadline: int
    created_block: int
    done: bool = False
