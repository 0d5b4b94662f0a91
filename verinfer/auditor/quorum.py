"""Quorum claims: the committee, its commits and reveals, the outcome the contract's rule gives, who was paid/slashed."""

from __future__ import annotations

from web3 import Web3

from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import AuditContext, AuditEnv, short
from verinfer.chain.protocol import Status
from verinfer.constants import INVALID_INPUT


def check_quorum(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    r = ctx.request
    market = env.protocol.market
    ev = ctx.events
    committee: list[str] = [Web3.to_checksum_address(a) for a in market.get_committee(r.request_id)]
    out: list[Claim] = []
    # committee
    req_evs = ev["InferenceRequested"]
    if len(req_evs) != 1:
        out.append(Claim("quorum", "quorum.committee", Verdict.FAIL,
                         f"{len(req_evs)} InferenceRequested events for this request (expected 1)"))
    else:
        a = req_evs[0].args
        drawn = [Web3.to_checksum_address(x) for x in a["committee"]]
        problems = []
        if drawn != committee:
            problems.append(f"event committee {drawn} != getCommittee {committee}")
        if a["inputCid"] != r.input_cid or bytes(a["inputHash"]) != bytes(r.input_hash):
            problems.append("event input CID/hash differ from the stored request")
        if bytes(a["modelId"]) != bytes(r.model_id) or int(a["fee"]) != r.fee:
            problems.append("event model/fee differ from the stored request")
        if len(committee) != r.params.replicas:
            problems.append(f"{len(committee)} members for {r.params.replicas} replicas")
        out.append(Claim("quorum", "quorum.committee", Verdict.FAIL if problems else Verdict.PASS,
                         "; ".join(problems) if problems else
                         f"{len(committee)} members from InferenceRequested = getCommittee "
                         f"(quorum {r.params.quorum} of {r.params.replicas})"))
    members = set(committee)
    reveals = {n: market.get_reveal(r.request_id, n) for n in committee}
    # commits
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
    # reveals
    revealed: dict[str, bytes] = {}
    for e in ev["Revealed"]:
        n = Web3.to_checksum_address(e.args["node"])
        if n in revealed:
            problems.append(f"{short(n)} revealed twice")
        revealed[n] = bytes(e.args["outputHash"])
        rv = reveals.get(n)
        if rv is None:
            problems.append(f"reveal by non-member {n}")
        elif not rv.revealed or bytes(rv.output_hash) != revealed[n] or rv.output_cid != e.args["outputCid"]:
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


def _outcome_claims(env: AuditEnv, ctx: AuditContext, committee: list[str], revealed: dict[str, bytes]) -> list[Claim]:
    r = ctx.request
    ev = ctx.events
    if r.status in (Status.COMMITTING, Status.REVEALING):
        why = f"not finalized yet ({r.status.name})"
        return [Claim("quorum", "quorum.outcome", Verdict.NA, why), Claim("quorum", "quorum.settlement", Verdict.NA, why)]
    fin = ev["Finalized"]
    if len(fin) != 1:
        return [Claim("quorum", "quorum.outcome", Verdict.FAIL, f"{len(fin)} Finalized events (expected 1)"),
                Claim("quorum", "quorum.settlement", Verdict.NA, "no single settlement to check")]
    fin_ev = fin[0]
    # the contract's rule: a proof landed before finalize decides; else the strict plurality reaching quorum
    proofs_before = [p for p in ev["ProofVerified"] if p.position < fin_ev.position]
    counts: dict[bytes, int] = {}
    for n in committee:  # committee order, like the contract's loop
        if n in revealed:
            counts[revealed[n]] = counts.get(revealed[n], 0) + 1
    if proofs_before:
        winner: bytes | None = bytes(proofs_before[0].args["outputHash"])
    else:
        best = max(counts.values(), default=0)
        tops = [h for h, c in counts.items() if c == best]
        winner = tops[0] if best > 0 and len(tops) == 1 and best >= r.params.quorum else None
    expected = Status.NO_QUORUM if winner is None else (
        Status.INVALID_INPUT if winner == INVALID_INPUT else Status.ACCEPTED)
    agreeing = [n for n in committee if winner is not None and revealed.get(n) == winner]
    problems = []
    if r.status != expected:
        problems.append(f"reveals give {expected.name}, chain says {r.status.name}")
    if int(fin_ev.args["status"]) != int(r.status):
        problems.append("Finalized event status differs from the request")
    if winner is not None and bytes(r.output_hash) != winner:
        problems.append(f"settled outputHash {short(r.output_hash)} is not the winning reveal {short(winner)}")
    if bytes(fin_ev.args["outputHash"]) != bytes(r.output_hash):
        problems.append("Finalized event outputHash differs from the request")
    n_agree = len(agreeing) if expected == Status.ACCEPTED else 0
    if int(fin_ev.args["agreeingCount"]) != n_agree or r.agreeing_count != n_agree:
        problems.append(f"{n_agree} agreeing reveal(s) but agreeingCount {r.agreeing_count}")
    if expected == Status.ACCEPTED and not proofs_before and n_agree < r.params.quorum:
        problems.append(f"accepted with {n_agree} agreeing < quorum {r.params.quorum}")
    ctx.winner = winner
    if problems:
        outcome = Claim("quorum", "quorum.outcome", Verdict.FAIL, "; ".join(problems))
    else:
        agree = f"{len(agreeing)} of {len(committee)} revealed the winner (quorum {r.params.quorum})"
        how = f"a proof landed before finalize and decided; {agree}" if proofs_before else agree
        outcome = Claim("quorum", "quorum.outcome", Verdict.PASS, f"{r.status.name}: {how}")
    return [outcome, _settlement_claim(env, ctx, committee, revealed, winner, expected)]


def _settlement_claim(env: AuditEnv, ctx: AuditContext, committee: list[str], revealed: dict[str, bytes],
                      winner: bytes | None, expected: Status) -> Claim:
    r = ctx.request
    ev = ctx.events
    market = env.protocol.market
    penalized = {Web3.to_checksum_address(e.args["node"]) for e in ev["NodePenalized"]}
    credited: dict[str, int] = {}
    for e in ev["Credited"]:
        a = Web3.to_checksum_address(e.args["account"])
        credited[a] = credited.get(a, 0) + int(e.args["amount"])
    problems = []
    n_paid = n_slashed = 0
    for n in committee:
        s = market.get_member_settlement(r.request_id, n)
        h = revealed.get(n)
        want_paid = expected == Status.ACCEPTED and h is not None and h == winner
        want_slashed = h is None or (winner is not None and h != winner)
        if s.paid != want_paid:
            problems.append(f"{short(n)}: paid={s.paid}, reveals say {want_paid}")
        if s.slashed != want_slashed:
            problems.append(f"{short(n)}: slashed={s.slashed}, reveals say {want_slashed}")
        if s.slashed != (n in penalized):
            problems.append(f"{short(n)}: slashed={s.slashed} but {'a' if n in penalized else 'no'} NodePenalized event")
        if s.paid and credited.get(n, 0) == 0:
            problems.append(f"{short(n)}: paid but no Credited event")
        n_paid += s.paid
        n_slashed += s.slashed
    if n_paid:
        total = sum(credited.get(n, 0) for n in committee)
        if total != r.fee:
            problems.append(f"members credited {total} wei of a {r.fee} wei fee")
    elif not ev["Refunded"] or int(ev["Refunded"][0].args["amount"]) != r.fee:
        problems.append("nobody paid but the requester was not refunded the fee")
    if problems:
        return Claim("quorum", "quorum.settlement", Verdict.FAIL, "; ".join(problems))
    return Claim("quorum", "quorum.settlement", Verdict.PASS,
                 f"{n_paid} paid, {n_slashed} slashed, as the reveals require"
                 + ("" if n_paid else "; fee refunded"))
