"""Quorum claims (protocol V2): the committee draw, commits and reveals, the outcome the contract's rule
gives, and who was paid, slashed, refunded and rewarded."""

from __future__ import annotations

from web3 import Web3

from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import AuditContext, AuditEnv, short
from verinfer.chain.draw import draw_seed
from verinfer.chain.protocol import Status
from verinfer.constants import INVALID_INPUT

#: share of a contradicted revealer's slash that goes to the prover (InferenceMarket.PROVER_REWARD_BPS)
PROVER_REWARD_BPS = 5_000


def check_quorum(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    r = ctx.request
    market = env.protocol.market
    ev = ctx.events
    committee: list[str] = [Web3.to_checksum_address(a) for a in market.get_committee(r.request_id, ctx.view_block)]
    out = [_committee_claim(env, ctx, committee)]
    members = set(committee)
    reveals = {n: market.get_reveal(r.request_id, n, ctx.view_block) for n in committee}
    commit_by = [Web3.to_checksum_address(e.args["node"]) for e in ev["Committed"]]
    problems = []
    if len(set(commit_by)) != len(commit_by):
        problems.append("a node committed twice")
    if set(commit_by) - members:
        problems.append(f"commits by non-members {sorted(set(commit_by) - members)}")
    for n in committee:
        if reveals[n].committed != (n in commit_by):
            problems.append(f"{short(n)}: getReveal.committed={reveals[n].committed} but "
                            f"{'a' if n in commit_by else 'no'} Committed event")
    if len(commit_by) != r.commit_count:
        problems.append(f"{len(commit_by)} Committed events, commitCount {r.commit_count}")
    revealed: dict[str, bytes] = {}
    for e in ev["Revealed"]:
        n = Web3.to_checksum_address(e.args["node"])
        if n in revealed:
            problems.append(f"{short(n)} revealed twice")
        revealed[n] = bytes(e.args["outputHash"])
        rv = reveals.get(n)
        if rv is None:
            problems.append(f"reveal by non-member {n}")
        elif not rv.revealed or bytes(rv.output_hash) != revealed[n]:
            problems.append(f"{short(n)}: Revealed event differs from getReveal")
    for n in committee:
        if reveals[n].revealed and n not in revealed:
            problems.append(f"{short(n)}: getReveal says revealed but no Revealed event")
    if len(revealed) != r.reveal_count:
        problems.append(f"{len(revealed)} Revealed events, revealCount {r.reveal_count}")
    out.append(Claim("quorum", "quorum.reveals", Verdict.FAIL if problems else Verdict.PASS,
                     "; ".join(problems) if problems else
                     f"{len(commit_by)} commit(s) and {len(revealed)} reveal(s) in events = getReveal / counters"))
    out += _outcome_claims(env, ctx, committee, revealed)
    return out


def _committee_claim(env: AuditEnv, ctx: AuditContext, committee: list[str]) -> Claim:
    """InferenceRequested matches the stored request; CommitteeDrawn = getCommittee; the draw re-derived from
    blockhash(drawBlock) and the epoch snapshot (eth_call of drawCommittee on the state before the draw)."""
    r = ctx.request
    ev = ctx.events
    req_evs = ev["InferenceRequested"]
    if len(req_evs) != 1:
        return Claim("quorum", "quorum.committee", Verdict.FAIL,
                     f"{len(req_evs)} InferenceRequested events for this request (expected 1)")
    a = req_evs[0].args
    problems = []
    if bytes(a["inputHash"]) != bytes(r.input_hash) or bytes(a["modelId"]) != bytes(r.model_id) or int(a["fee"]) != r.fee:
        problems.append("InferenceRequested model/input hash/fee differ from the stored request")
    if int(a["drawBlock"]) != r.draw_block or int(a["replicas"]) != r.params.replicas:
        problems.append("InferenceRequested drawBlock/replicas differ from the stored request")
    drawn_evs = ev["CommitteeDrawn"]
    if r.status == Status.EXPIRED and not drawn_evs:
        return Claim("quorum", "quorum.committee", Verdict.FAIL if problems else Verdict.NA,
                     "; ".join(problems) or "expired before a committee was drawn (full refund)")
    if r.status == Status.PENDING:
        return Claim("quorum", "quorum.committee", Verdict.FAIL if problems else Verdict.NA,
                     "; ".join(problems) or f"not drawn yet (draw from block {r.draw_block + 1})")
    if len(drawn_evs) != 1:
        problems.append(f"{len(drawn_evs)} CommitteeDrawn events (expected 1)")
        return Claim("quorum", "quorum.committee", Verdict.FAIL, "; ".join(problems))
    drawn_ev = drawn_evs[0]
    drawn = [Web3.to_checksum_address(x) for x in drawn_ev.args["committee"]]
    if drawn != committee:
        problems.append(f"CommitteeDrawn {drawn} != getCommittee {committee}")
    if len(committee) != r.params.replicas:
        problems.append(f"{len(committee)} members for {r.params.replicas} replicas")
    how = "draw not re-derived"
    try:
        nodes = env.protocol.nodes
        seed = draw_seed(bytes(env.w3.eth.get_block(r.draw_block)["hash"]), r.request_id)
        epoch = r.created_block // nodes.epoch_length()
        # the market draws with waitForSeats: a busy seed member is waited for (or ends the draw), never skipped
        again = nodes.contract.functions.drawCommittee(r.model_id, seed, epoch, r.params.replicas,
                                                       ctx.model.requires_tee, True).call(
            block_identifier=drawn_ev.block_number - 1)
        again = [Web3.to_checksum_address(x) for x in again]
        if again != committee:
            problems.append(f"re-drawn from blockhash({r.draw_block}) and epoch {epoch}: {again}, chain has {committee}")
        how = f"re-drawn from blockhash({r.draw_block}) on the epoch-{epoch} snapshot: same members"
    except (ValueError, KeyError) as exc:  # state pruned (non-archive RPC): the draw cannot be replayed here
        how = f"draw not re-derived ({exc})"
    return Claim("quorum", "quorum.committee", Verdict.FAIL if problems else Verdict.PASS,
                 "; ".join(problems) if problems else
                 f"{len(committee)} members, CommitteeDrawn = getCommittee (quorum {r.params.quorum} of "
                 f"{r.params.replicas}); {how}")


def expected_outcome(committee: list[str], revealed: dict[str, bytes], quorum: int,
                     proven_hash: bytes | None) -> tuple[Status, bytes | None]:
    """InferenceMarket._outcome: INVALID_INPUT with >= quorum reveals wins (a proof cannot overturn it); else a
    proof decides; else the hash with >= quorum reveals (unique: quorum > replicas/2); else NoQuorum."""
    vals = [revealed[n] for n in committee if n in revealed]
    if sum(1 for v in vals if v == INVALID_INPUT) >= quorum:
        return Status.INVALID_INPUT, INVALID_INPUT
    if proven_hash is not None:
        return Status.ACCEPTED, proven_hash
    for v in vals:
        if sum(1 for w in vals if w == v) >= quorum:
            return Status.ACCEPTED, v
    return Status.NO_QUORUM, None


def _outcome_claims(env: AuditEnv, ctx: AuditContext, committee: list[str], revealed: dict[str, bytes]) -> list[Claim]:
    r = ctx.request
    ev = ctx.events
    if r.status in (Status.PENDING, Status.COMMITTING, Status.REVEALING):
        why = f"not finalized yet ({r.status.name})"
        return [Claim("quorum", "quorum.outcome", Verdict.NA, why), Claim("quorum", "quorum.settlement", Verdict.NA, why)]
    fin = ev["Finalized"]
    if len(fin) != 1:
        return [Claim("quorum", "quorum.outcome", Verdict.FAIL, f"{len(fin)} Finalized events (expected 1)"),
                Claim("quorum", "quorum.settlement", Verdict.NA, "no single settlement to check")]
    fin_ev = fin[0]
    if r.status == Status.EXPIRED:
        return _expired_claims(ctx, committee, fin_ev)
    proofs_before = [p for p in ev["ProofVerified"] if p.position < fin_ev.position]
    proven_hash = bytes(proofs_before[0].args["outputHash"]) if proofs_before else None
    expected, winner = expected_outcome(committee, revealed, r.params.quorum, proven_hash)
    agreeing = [n for n in committee if winner is not None and revealed.get(n) == winner]
    problems = []
    if r.status != expected:
        problems.append(f"reveals give {expected.name}, chain says {r.status.name}")
    if int(fin_ev.args["status"]) != int(r.status):
        problems.append("Finalized event status differs from the request")
    if winner is not None and bytes(r.output_hash) != winner:
        problems.append(f"settled outputHash {short(r.output_hash)} is not the outcome's {short(winner)}")
    if bytes(fin_ev.args["outputHash"]) != bytes(r.output_hash):
        problems.append("Finalized event outputHash differs from the request")
    if len(proofs_before) > 1:
        problems.append(f"{len(proofs_before)} ProofVerified events (a request is proven once)")
    ctx.winner = winner
    if problems:
        outcome = Claim("quorum", "quorum.outcome", Verdict.FAIL, "; ".join(problems))
    else:
        agree = f"{len(agreeing)} of {len(committee)} revealed it (quorum {r.params.quorum})"
        if expected == Status.INVALID_INPUT:
            how = f"INVALID_INPUT reached quorum ({agree}); a proof cannot overturn it"
        elif proven_hash is not None:
            how = f"a valid proof decided before finalize; {agree}"
        elif expected == Status.NO_QUORUM:
            how = f"no output reached quorum {r.params.quorum} ({len(revealed)} reveal(s))"
        else:
            how = agree
        outcome = Claim("quorum", "quorum.outcome", Verdict.PASS, f"{r.status.name}: {how}")
    return [outcome, _settlement_claim(env, ctx, committee, revealed, winner, expected, proven_hash is not None)]


def _expired_claims(ctx: AuditContext, committee: list[str], fin_ev: object) -> list[Claim]:
    r = ctx.request
    ev = ctx.events
    problems = []
    if committee:
        problems.append(f"expired with a committee of {len(committee)}")
    refund = sum(int(e.args["amount"]) for e in ev["Refunded"])
    if refund != r.fee + r.callback_deposit:
        problems.append(f"refunded {refund} wei, fee + callback deposit is {r.fee + r.callback_deposit}")
    if ev["NodePenalized"]:
        problems.append("a node was penalized on an expired request")
    verdict = Verdict.FAIL if problems else Verdict.PASS
    return [Claim("quorum", "quorum.outcome", verdict, "; ".join(problems) or
                  "EXPIRED: no committee could be drawn in the draw window"),
            Claim("quorum", "quorum.settlement", verdict, "; ".join(problems) or
                  "fee and callback deposit refunded in full; nobody paid or slashed")]


def _settlement_claim(env: AuditEnv, ctx: AuditContext, committee: list[str], revealed: dict[str, bytes],
                      winner: bytes | None, expected: Status, proven: bool) -> Claim:
    """Who is paid (revealers of the settled hash, `fee / payees` each, the dust to the first; every in-time
    revealer `fee / replicas` on NoQuorum), the refund, who is slashed (non-revealers and dissenters, never on
    NoQuorum) and the prover's reward."""
    r = ctx.request
    ev = ctx.events
    market = env.protocol.market
    penalty: dict[str, int] = {Web3.to_checksum_address(e.args["node"]): int(e.args["slashed"]) for e in ev["NodePenalized"]}
    credited: dict[str, int] = {}
    for e in ev["Credited"]:
        a = Web3.to_checksum_address(e.args["account"])
        credited[a] = credited.get(a, 0) + int(e.args["amount"])
    no_quorum = expected == Status.NO_QUORUM
    want_paid = {n for n in committee if n in revealed and (no_quorum or revealed[n] == winner)}
    want_slashed = set() if no_quorum else set(committee) - want_paid
    share = 0
    if want_paid:
        share = r.fee // r.params.replicas if no_quorum else r.fee // len(want_paid)
    problems = []
    for n in committee:
        s = market.get_member_settlement(r.request_id, n, ctx.view_block)
        if s.paid != (n in want_paid):
            problems.append(f"{short(n)}: paid={s.paid}, reveals say {n in want_paid}")
        if s.slashed != (n in want_slashed):
            problems.append(f"{short(n)}: slashed={s.slashed}, reveals say {n in want_slashed}")
        if s.slashed != (n in penalty):
            problems.append(f"{short(n)}: slashed={s.slashed} but {'a' if n in penalty else 'no'} NodePenalized event")
        if s.paid and credited.get(n, 0) < share:
            problems.append(f"{short(n)}: paid but credited {credited.get(n, 0)} wei < share {share}")
    # settled outcomes: the division dust goes to the first payee (committee order); NoQuorum: the rest is refunded
    refund_want = r.fee - share * len(want_paid) if no_quorum or not want_paid else 0
    refund = sum(int(e.args["amount"]) for e in ev["Refunded"])
    if refund != refund_want:
        problems.append(f"refunded {refund} wei, the rule gives {refund_want}")
    rewarded = sum(int(e.args["amount"]) for e in ev["ProverRewarded"])
    reward_want = 0
    if proven and expected == Status.ACCEPTED:
        reward_want = sum(penalty.get(n, 0) * PROVER_REWARD_BPS // 10_000 for n in want_slashed if n in revealed)
    if rewarded != reward_want:
        problems.append(f"prover rewarded {rewarded} wei, the rule gives {reward_want}")
    if problems:
        return Claim("quorum", "quorum.settlement", Verdict.FAIL, "; ".join(problems))
    slashed = sum(penalty.values())
    return Claim("quorum", "quorum.settlement", Verdict.PASS,
                 f"{len(want_paid)} paid {share} wei each, {len(want_slashed)} slashed ({slashed} wei"
                 + (f", {rewarded} to the prover, the rest burned" if rewarded else ", burned") + ")"
                 + (f", {refund} wei refunded" if refund else "") + ", as the reveals require")
