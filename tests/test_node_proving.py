"""The proving policy (verinfer.node.proving.proof_plan): one prover per unanimous request, everyone on dissent."""

from __future__ import annotations

from verinfer.node.proving import proof_plan

A, B, C = ("0x" + c * 40 for c in "abc")
COMMITTEE = [A, B, C]
REVEAL_DEADLINE, PROOF_BLOCKS = 100, 20
FALLBACK = REVEAL_DEADLINE + PROOF_BLOCKS // 2


def plan(me: str, reveals: dict[str, int], block: int = 50, mine: int = 7, committee: list[str] = COMMITTEE) -> tuple[int | None, str]:
    p = proof_plan(me=me, my_output=mine, committee=committee, reveals=reveals, block=block,
                   reveal_deadline=REVEAL_DEADLINE, proof_blocks=PROOF_BLOCKS)
    return p.start, p.reason


def test_all_agree_the_lowest_committee_index_proves_now_the_others_at_the_fallback() -> None:
    reveals = {A: 7, B: 7, C: 7}
    assert plan(A, reveals) == (50, "designated")
    assert plan(B, reveals) == (FALLBACK, "fallback")
    assert plan(C, reveals) == (FALLBACK, "fallback")


def test_designation_follows_the_committee_order_not_the_address() -> None:
    reveals = {A: 7, B: 7, C: 7}
    assert plan(C, reveals, committee=[C, A, B]) == (50, "designated")
    assert plan(A, reveals, committee=[C, A, B]) == (FALLBACK, "fallback")


def test_any_disagreement_means_prove_now_whoever_is_designated() -> None:
    assert plan(C, {A: 9, B: 9, C: 7}) == (50, "dissent")  # honest minority against a wrong majority
    assert plan(B, {A: 9, B: 7}) == (50, "dissent")  # before all revealed: no waiting once anyone disagrees
    assert plan(A, {A: 7, B: 7, C: 9}) == (50, "dissent")  # a wrong minority: the majority proves too (as before)


def test_waits_while_members_may_still_reveal() -> None:
    assert plan(A, {A: 7}) == (None, "waiting")
    assert plan(B, {A: 7, B: 7}) == (None, "waiting")
    assert plan(B, {B: 7}, block=REVEAL_DEADLINE) == (None, "waiting")  # the deadline block still takes reveals


def test_our_own_reveal_counts_before_its_event_arrives() -> None:
    assert plan(A, {B: 7, C: 7}) == (50, "designated")


def test_a_designated_member_that_never_revealed_is_replaced_after_the_reveal_deadline() -> None:
    # A (index 0) crashed before revealing: once the window is over, the lowest index among the revealers proves
    after = REVEAL_DEADLINE + 1
    assert plan(B, {B: 7, C: 7}, block=after) == (after, "designated")
    assert plan(C, {B: 7, C: 7}, block=after) == (FALLBACK, "fallback")


def test_a_designated_member_that_revealed_then_crashed_is_covered_by_the_fallback() -> None:
    # A revealed and died: B and C prove from half the proof window (the worker skips if a proof landed)
    assert plan(B, {A: 7, B: 7, C: 7}) == (FALLBACK, "fallback")
    late = FALLBACK + 3  # re-planned after the fallback block: prove now
    assert plan(B, {A: 7, B: 7, C: 7}, block=late) == (late, "fallback")
    assert REVEAL_DEADLINE < FALLBACK < REVEAL_DEADLINE + PROOF_BLOCKS  # a proof still fits before finalizeAfter
