"""The node's proving policy: who proves a request, and from which block (issue 7, proofs under load).

A Groth16 proof only changes a request's outcome when the reveals disagree: an honest minority's
proof beats a wrong majority, slashes the liars and earns the prover reward (docs/contracts.md,
attacks 5 and 10). When every reveal equals ours, the settled output is ours whether proven or not,
so one proof is enough and the other members' proving CPU is waste. The contract accepts one proof
per request (`AlreadyProven`), so the rule below only decides who spends the CPU, never what settles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class ProofPlan:
    """When this node should prove: `start` is the first block worth proving at (None: not decided yet)."""

    start: int | None
    reason: str  # "dissent" | "designated" | "fallback" | "waiting" (for logs and tests)


def proof_plan(
    *,
    me: str,
    my_output: int,
    committee: Sequence[str],
    reveals: Mapping[str, int],
    block: int,
    reveal_deadline: int,
    proof_blocks: int,
) -> ProofPlan:
    """Decide when this node proves its revealed output, from the reveals seen so far (the one definition).

    * any revealed output differs from ours → prove now (an honest minority must not wait: its proof
      is what beats a wrong majority);
    * every revealed output equals ours, once all members revealed (or the reveal window closed) → the
      designated prover, the lowest committee index among the members that revealed, proves now; the
      others prove only from the fallback block (half the proof window, `proof_blocks` after the reveal
      deadline) and only if no proof landed by then (the caller checks), so a crashed or lazy designated
      prover cannot leave the request unproven;
    * some members have not revealed yet and all reveals so far agree → wait (a later reveal may
      disagree, or complete the set that picks the designated prover).

    `reveals` maps member → revealed output hash; our own reveal counts even if its event is not seen yet.
    """
    seen = {**reveals, me: my_output}
    if any(out != my_output for out in seen.values()):
        return ProofPlan(block, "dissent")
    revealed = [i for i, member in enumerate(committee) if member in seen]
    if len(revealed) < len(committee) and block <= reveal_deadline:
        return ProofPlan(None, "waiting")
    if not revealed or committee[min(revealed)] == me:  # not a member (cannot happen on-chain): prove as before
        return ProofPlan(block, "designated")
    return ProofPlan(max(block, reveal_deadline + max(1, proof_blocks // 2)), "fallback")
