"""The worker's state machine without a chain (issue 8 item 8): a fake market drives every phase,
restart point and failure; a fake compute records the fetch budget it was given."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from verinfer.chain.errors import ContractError, RequestPrunedError
from verinfer.chain.protocol import Status
from verinfer.chain.types import ModelInfo
from verinfer.constants import INVALID_INPUT_HASH, commitment_hash
from verinfer.errors import ConfigError
from verinfer.node.compute import Outcome
from verinfer.node.state import NodeState, Phase
from verinfer.node.worker import BlockClock, Worker, WorkerConfig

ME = "0x1111111111111111111111111111111111111111"
B = "0x2222222222222222222222222222222222222222"
C = "0x3333333333333333333333333333333333333333"
MODEL = b"\x07" * 32
OTHER_MODEL = b"\x08" * 32


@dataclass
class FakeRequest:
    rid: int
    committee: list[str]
    draw_block: int
    commit_deadline: int
    reveal_deadline: int
    proof_blocks: int = 20
    draw_deadline: int = 0  # 0: the commit deadline
    drawn: bool = False
    commits: dict[str, bytes] = field(default_factory=dict)
    reveals: dict[str, int] = field(default_factory=dict)
    status: Status = Status.COMMITTING
    proven: bool = False
    output: int = 0

    @property
    def finalize_after(self) -> int:
        return self.reveal_deadline + self.proof_blocks


class FakeCursor:
    def __init__(self, chain: "FakeChain") -> None:
        self.chain = chain
        self.next_block = 0
        self._pending = 0

    def poll(self, max_blocks: int, commit: bool = True) -> list[Any]:
        evs = [e for e in self.chain.events if self.next_block <= e.block_number <= self.chain.block]
        self._pending = self.chain.block + 1
        return evs

    def commit(self) -> None:
        self.next_block = self._pending


class FakeChain:
    """A tiny in-memory InferenceMarket with the V2 rules the worker relies on."""

    def __init__(self, proof_mode: int = 0) -> None:
        self.address = ME
        self.manifest = SimpleNamespace(deploy_block=0, chain_id=31337)
        self.block = 1
        self.requests: dict[int, FakeRequest] = {}
        self.events: list[Any] = []
        self.proof_mode = proof_mode
        self.sent: list[tuple[str, int]] = []
        self.pruned: set[int] = set()  # ids whose record a later request recycled (every read reverts)

    # test helpers
    def request(self, rid: int, committee: list[str], *, model: bytes = MODEL, commit_blocks: int = 10,
                reveal_blocks: int = 10, cid: str = "bafyinput") -> FakeRequest:
        self.block += 1  # the request tx is mined in a new block
        created = self.block
        r = FakeRequest(rid, committee, created + 1, created + 1 + commit_blocks, created + 1 + commit_blocks + reveal_blocks)
        self.requests[rid] = r
        self.events.append(SimpleNamespace(name="InferenceRequested", block_number=created, args={
            "requestId": rid, "modelId": model, "inputCid": cid, "inputHash": (5).to_bytes(32, "big"), "fee": 10**15,
            "replicas": len(committee), "drawBlock": r.draw_block, "commitDeadline": r.commit_deadline,
            "revealDeadline": r.reveal_deadline}))
        return r

    def mine(self, n: int = 1) -> int:
        self.block += n
        return self.block

    def _err(self, name: str) -> ContractError:
        return ContractError("InferenceMarket", name)

    def _live(self, rid: int) -> FakeRequest:
        if rid in self.pruned:
            raise RequestPrunedError("InferenceMarket", "RequestPruned", {"requestId": rid, "recycledBy": max(self.pruned) + 2})
        return self.requests[rid]

    # NodeChain surface
    def chain_id(self) -> int:
        return 31337

    def deployment_id(self) -> str:
        return "31337:0xfake:genesis"

    def block_number(self) -> int:
        return self.block

    def event_cursor(self, names: list[str], store: Any, start: int, key: str) -> FakeCursor:
        return FakeCursor(self)

    def served_models(self) -> set[bytes]:
        return {MODEL}

    def eligibility(self, served: set[bytes]) -> dict[str, Any]:
        return {"eligible": True, "reason": ""}

    def preview_committee(self, rid: int, block: int | None = None) -> list[str]:
        r = self._live(rid)
        if self.block <= r.draw_block:
            raise self._err("DrawNotReady")
        return list(r.committee)[: self.drawable]

    drawable = 7  # how many members a draw could find now (capacity)

    def get_committee(self, rid: int) -> list[str]:
        return list(self._live(rid).committee) if self.requests[rid].drawn else []

    def get_request(self, rid: int) -> Any:
        r = self._live(rid)
        status = r.status if (r.drawn or r.status.final) else Status.PENDING
        return SimpleNamespace(status=status, draw_deadline=r.draw_deadline or r.commit_deadline, commit_count=len(r.commits), reveal_count=len(r.reveals),
                               reveal_deadline=r.reveal_deadline, finalize_after=r.finalize_after, proven=r.proven,
                               output_hash=r.output.to_bytes(32, "big"))

    def get_reveal(self, rid: int, node: str | None = None) -> Any:
        r = self._live(rid)
        who = node or ME
        return SimpleNamespace(committed=who in r.commits, revealed=who in r.reveals)

    def model(self, model_id: bytes) -> ModelInfo:
        return ModelInfo(model_id=model_id, publisher=B, name="m", version=1, weights_cid="bafyweights", commitment=1,
                         verifier="0x" + ("99" if self.proof_mode else "00") * 20, proof_mode=self.proof_mode,
                         execution_profile_hash=b"\x00" * 32, shard_layout_hash=b"\x00" * 32, num_layers=2, input_bits=8,
                         output_bits=32, requires_tee=False, deprecated=False, registered_at=1)

    def artifacts_cid(self, model_id: bytes) -> str:
        return ""

    def salt_for(self, rid: int) -> bytes:
        return rid.to_bytes(32, "big")

    def proof_blocks(self) -> int:
        return 20

    def draw(self, rid: int) -> str:
        r = self.requests[rid]
        if r.drawn:
            raise self._err("AlreadyDrawn")
        r.drawn = True
        self.sent.append(("draw", rid))
        return "0xd0"

    def commit(self, rid: int, c: bytes) -> str:
        r = self._live(rid)
        if r.status.final:
            raise self._err("AlreadyFinalized")
        if self.block > r.commit_deadline:
            raise self._err("CommitPhaseOver")
        r.drawn = True
        if ME not in r.committee:
            raise self._err("NotCommitteeMember")
        if ME in r.commits:
            raise self._err("AlreadyCommitted")
        r.commits[ME] = c
        self.sent.append(("commit", rid))
        return "0xc0"

    def reveal(self, rid: int, out: int, salt: bytes, cid: str) -> str:
        r = self._live(rid)
        if ME not in r.commits:
            raise self._err("NotCommitted")
        if ME in r.reveals:
            raise self._err("AlreadyRevealed")
        if self.block > r.reveal_deadline:
            raise self._err("RevealPhaseOver")
        if len(r.commits) < len(r.committee) and self.block <= r.commit_deadline:
            raise self._err("RevealPhaseNotStarted")
        assert commitment_hash(rid, out, salt, ME) == r.commits[ME]
        r.reveals[ME] = out
        self.sent.append(("reveal", rid))
        return "0xre"

    def finalize(self, rid: int) -> str:
        r = self._live(rid)
        if r.status.final:
            raise self._err("AlreadyFinalized")
        all_in = len(r.reveals) == len(r.committee)
        if not (all_in or self.block > r.reveal_deadline):
            raise self._err("TooEarlyToFinalize")
        if self.proof_mode and not r.proven and self.block <= r.finalize_after:
            raise self._err("TooEarlyToFinalize")
        r.status = Status.ACCEPTED
        r.output = next(iter(r.reveals.values()), 0)
        self.sent.append(("finalize", rid))
        return "0xf1"

    def submit_proof(self, rid: int, out: int, proof: list[int]) -> str:
        r = self.requests[rid]
        if r.status.final:
            raise self._err("AlreadyFinalized")
        r.proven = True
        self.sent.append(("proof", rid))
        return "0xpf"

    def withdrawable(self) -> int:
        return 0

    def withdraw(self) -> str:
        raise self._err("NothingToWithdraw")

    def resync_nonce(self) -> None:
        pass

    # non-blocking writes: this fake mines at once, so the worker's first receipt look-up finds the receipt
    def _pending(self, kind: str, apply: Any) -> Any:
        tx_hash = apply()
        return SimpleNamespace(tx_hash=tx_hash, sent_at=time.monotonic(), kind=kind,
                               receipt={"transactionHash": bytes.fromhex("ab" * 32), "blockNumber": self.block, "status": 1})

    def send_draw(self, rid: int) -> Any:
        return self._pending("draw", lambda: self.draw(rid))

    def send_commit(self, rid: int, c: bytes) -> Any:
        return self._pending("commit", lambda: self.commit(rid, c))

    def send_reveal(self, rid: int, out: int, salt: bytes, cid: str) -> Any:
        return self._pending("reveal", lambda: self.reveal(rid, out, salt, cid))

    def send_finalize(self, rid: int) -> Any:
        return self._pending("finalize", lambda: self.finalize(rid))

    def send_proof(self, rid: int, out: int, proof: list[int]) -> Any:
        return SimpleNamespace(tx_hash=self.submit_proof(rid, out, proof), sent_at=time.monotonic(), kind="proof")

    def poll_tx(self, pending: Any) -> Any:
        return pending.receipt

    def tx_known(self, pending: Any) -> bool:
        return True


class FakeModels:
    def get(self, cid: str) -> Any:
        return SimpleNamespace(kind="mlp")

    def lm_files(self, cid: str) -> None:
        return None


def make_worker(tmp_path: Path, chain: FakeChain, *, outcome: Outcome | None = None, budgets: list[float] | None = None,
                proofs: list[int] | None = None, **cfg: Any) -> Worker:
    def fake_compute(store: Any, spec: Any, cid: str, input_hash: int, *, fetch_timeout_s: float, **_: Any) -> Outcome:
        if budgets is not None:
            budgets.append(fetch_timeout_s)
        if cid == "missing":
            return Outcome(INVALID_INPUT_HASH, "", invalid_reason="not found")
        return outcome or Outcome(42, "bafyout")

    def fake_prove(rec: Any, model: Any) -> tuple[int, list[int]]:
        if proofs is not None:
            proofs.append(rec.request_id)
        return rec.output_hash, [0] * 8

    w = Worker(chain, store=None, state=NodeState(tmp_path / "node.db"),
               config=WorkerConfig(state_dir=tmp_path, block_time_s=0.5, **{"receipt_after_blocks": 0, "follow_events": False, **cfg}),
               compute_fn=fake_compute, prove_fn=fake_prove)
    w.models = FakeModels()  # type: ignore[assignment]
    return w


def phase(w: Worker, rid: int) -> Phase:
    rec = w.state.get_request(rid)
    assert rec is not None
    return rec.phase


def test_full_lifecycle_consensus_only(tmp_path: Path) -> None:
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME])
    w.discover()
    assert phase(w, 1) == Phase.SEEN
    w.step(chain.block)  # block == createdBlock: drawBlock not mined yet → wait
    assert phase(w, 1) == Phase.SEEN and chain.sent == []
    chain.mine(2)
    w.step(chain.block)  # preview says member → compute → commit → (all committed) reveal → finalize (all revealed)
    assert [k for k, _ in chain.sent] == ["commit", "reveal", "finalize"]  # the commit draws: no separate draw tx
    assert phase(w, 1) == Phase.DONE
    rec = w.state.get_request(1)
    assert rec.committee == [ME] and rec.output_hash == 42 and set(rec.txs) == {"commit", "reveal", "finalize"}


def test_not_member_then_redrawn_into_the_committee(tmp_path: Path) -> None:
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [B, C])
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    assert phase(w, 1) == Phase.NOT_MEMBER and chain.sent == []
    # the actual draw differed from the preview (e.g. a capacity change): CommitteeDrawn names us
    chain.requests[1].committee = [ME, B]
    chain.mine()
    chain.events.append(SimpleNamespace(name="CommitteeDrawn", block_number=chain.block, args={"requestId": 1, "committee": [ME, B]}))
    w.discover()
    assert phase(w, 1) == Phase.SEEN
    w.step(chain.block)
    assert phase(w, 1) == Phase.COMMITTED  # waits for B's commit before revealing


def test_incomplete_preview_waits_instead_of_drawing(tmp_path: Path) -> None:
    """Nodes at capacity: a draw now would expire the request, so nobody draws; once seats free up, it proceeds."""
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME, B, C])
    chain.mine(2)
    w.discover()
    chain.drawable = 2
    w.step(chain.block)
    assert phase(w, 1) == Phase.SEEN and chain.sent == []
    chain.drawable = 7
    chain.mine()
    w.step(chain.block)
    assert phase(w, 1) == Phase.COMMITTED and [k for k, _ in chain.sent] == ["commit"]


def test_unserved_models_are_ignored(tmp_path: Path) -> None:
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME], model=OTHER_MODEL)
    w.discover()
    assert w.state.get_request(1) is None


def test_fetch_budget_never_outlasts_the_commit_window(tmp_path: Path) -> None:
    """Attack 11: the budget is min(fetch timeout, blocks left minus the tx margin); a missing input → INVALID_INPUT in time."""
    chain = FakeChain()
    budgets: list[float] = []
    w = make_worker(tmp_path, chain, budgets=budgets, fetch_timeout_s=8.0)
    chain.request(1, [B, ME], cid="missing", commit_blocks=10)
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    # commit deadline = created(2)+11 = 13; block 4; (13 - 4 - 2 margin) * 0.5 s = 3.5 s < 8 s
    assert budgets == [pytest.approx(3.5)]
    rec = w.state.get_request(1)
    assert rec.phase == Phase.COMMITTED and rec.output_hash == INVALID_INPUT_HASH
    assert ("draw", 1) not in chain.sent  # second member, draw window outlasts the budget: the commit draws
    # a request whose draw window closes before a worst-case fetch could end is drawn first
    r3 = chain.request(3, [B, ME], cid="missing", commit_blocks=10)
    r3.draw_deadline = r3.draw_block + 4
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    assert chain.sent.index(("draw", 3)) < chain.sent.index(("commit", 3))
    # a second, valid request right after is unaffected (own task, own budget)
    chain.request(2, [ME], commit_blocks=10)
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    assert phase(w, 2) == Phase.DONE


def test_restart_after_commit_recovers_without_double_commit(tmp_path: Path) -> None:
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME, B])
    chain.mine(2)
    w.discover()
    w.advance(1, chain.block)
    assert phase(w, 1) == Phase.COMMITTED
    # simulate a crash between the commit receipt and the phase write: back to READY (salt kept)
    rec = w.state.transition(1, Phase.READY, expect=Phase.COMMITTED)
    assert rec is not None and rec.salt is not None
    w2 = make_worker(tmp_path, chain)
    w2.step(chain.block)
    assert phase(w2, 1) == Phase.COMMITTED and [k for k, _ in chain.sent] == ["commit"]
    # B never commits; after the commit deadline we reveal alone, then finalize after the reveal window
    chain.block = chain.requests[1].commit_deadline + 1
    w2.step(chain.block)
    assert phase(w2, 1) == Phase.REVEALED
    chain.block = chain.requests[1].reveal_deadline + 1
    w2.step(chain.block)
    assert phase(w2, 1) == Phase.DONE


def test_closed_commit_window_is_a_miss(tmp_path: Path) -> None:
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    r = chain.request(1, [ME])
    w.discover()
    chain.block = r.commit_deadline + 1
    w.step(chain.block)
    rec = w.state.get_request(1)
    assert rec.phase == Phase.MISSED and "commit window closed" in (rec.last_error or "")


def test_proven_model_waits_for_the_proof_and_proving_never_blocks_commits(tmp_path: Path) -> None:
    chain = FakeChain(proof_mode=1)
    proofs: list[int] = []
    w = make_worker(tmp_path, chain, proofs=proofs)
    chain.request(1, [ME])
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    # revealed; finalize refused before finalizeAfter (no proof yet); step() itself never proves
    assert phase(w, 1) == Phase.REVEALED and proofs == [] and ("finalize", 1) not in chain.sent
    rec = w.state.get_request(1)
    assert rec.proof == "queued"
    # a new request commits while the proof is still queued
    chain.request(2, [ME, B])
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    assert ("commit", 2) in chain.sent and proofs == []
    # the prover pool proves request 1 before finalizeAfter; then finalize goes through early (proven + all revealed)
    assert w.prove_pending(chain.block) == 1
    assert proofs == [1] and ("proof", 1) in chain.sent
    w.step(chain.block)
    assert phase(w, 1) == Phase.DONE


def test_late_proof_is_skipped(tmp_path: Path) -> None:
    chain = FakeChain(proof_mode=1)
    proofs: list[int] = []
    w = make_worker(tmp_path, chain, proofs=proofs)
    r = chain.request(1, [ME])
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    chain.block = r.finalize_after - 1
    w.prove_pending(chain.block)
    assert proofs == [] and w.state.get_request(1).proof == "skipped:late"
    chain.block = r.finalize_after + 1
    w.step(chain.block)
    assert phase(w, 1) == Phase.DONE


def test_pruned_request_is_finished_never_retried(tmp_path: Path) -> None:
    """A record recycled by a later request (RequestPruned, e.g. after downtime) means the request settled: the
    node files it as finished (MISSED if we had committed without revealing) and never reads it again."""
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME, B])  # we commit, B does not: waiting to reveal
    chain.request(2, [ME, B])  # both commit, we reveal, B does not: waiting to finalize
    chain.request(3, [ME])  # settles at once
    w.discover()
    chain.mine(2)
    chain.requests[2].commits[B] = b"x"
    w.step(chain.block)
    assert (phase(w, 1), phase(w, 2), phase(w, 3)) == (Phase.COMMITTED, Phase.REVEALED, Phase.DONE)
    chain.request(4, [ME])  # seen, never computed (we were down): its seed block is mined, so the node reads it
    w.discover()
    chain.mine(2)
    sent = list(chain.sent)
    chain.pruned |= {1, 2, 4}
    w.step(chain.block)
    assert (phase(w, 1), phase(w, 2), phase(w, 4)) == (Phase.MISSED, Phase.DONE, Phase.DONE)
    for rid in (1, 2, 4):
        assert "request pruned" in (w.state.get_request(rid).last_error or "")
    assert chain.sent == sent and not w.state.active()  # nothing sent, nothing left to retry
    chain.mine(30)
    w.step(chain.block)
    assert chain.sent == sent


def test_faulty_no_reveal_node_withholds(tmp_path: Path) -> None:
    chain = FakeChain()
    w = make_worker(tmp_path, chain, fault="no-reveal")
    r = chain.request(1, [ME])
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    assert phase(w, 1) == Phase.COMMITTED and ("reveal", 1) not in chain.sent
    chain.block = r.reveal_deadline + 1
    w.step(chain.block)
    assert phase(w, 1) == Phase.MISSED


def test_transition_is_guarded_and_returns_the_stored_record(tmp_path: Path) -> None:
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME])
    w.discover()
    assert w.state.transition(1, Phase.COMMITTED, expect=Phase.READY) is None  # not READY: refused
    rec = w.state.transition(1, Phase.READY, expect=Phase.SEEN, output_hash=7, output_cid="x", salt=b"\x01" * 32)
    assert rec is not None and (rec.phase, rec.output_hash, rec.salt) == (Phase.READY, 7, b"\x01" * 32)
    # salt and output are never overwritten once set
    rec = w.state.transition(1, Phase.READY, expect=Phase.READY, output_hash=9, salt=b"\x02" * 32)
    assert rec is not None and (rec.output_hash, rec.salt) == (7, b"\x01" * 32)


def test_block_clock_measures_seconds_per_block() -> None:
    clock = BlockClock()
    t = time.monotonic()
    for i in range(10):
        clock.observe(100 + i, t + 0.5 * i)
    assert clock.seconds_per_block == pytest.approx(0.5)
    assert BlockClock(fixed=2.0).seconds_per_block == 2.0


class MiningChain(FakeChain):
    """Transactions are mined one block after they are sent (receipt and event only then); counts reads."""

    def __init__(self, proof_mode: int = 0) -> None:
        super().__init__(proof_mode)
        self.polls = 0
        self.reads = 0
        self.drop_next = False

    def get_request(self, rid: int) -> Any:
        self.reads += 1
        return super().get_request(rid)

    def _pending(self, kind: str, apply: Any) -> Any:
        if self.drop_next:  # the RPC node accepted the tx, then lost it: never mined, unknown later
            self.drop_next = False
            return SimpleNamespace(tx_hash="0xdead", sent_at=time.monotonic(), kind=kind, block=self.block, dropped=True)
        apply()
        p = SimpleNamespace(tx_hash=f"0x{kind}", sent_at=time.monotonic(), kind=kind, block=self.block, dropped=False)
        rid = self.sent[-1][1]
        if kind == "draw":
            return p
        name = {"commit": "Committed", "reveal": "Revealed", "finalize": "Finalized"}[kind]
        args: dict[str, Any] = {"requestId": rid, "node": ME}
        if kind == "reveal":
            args["outputHash"] = self.requests[rid].reveals[ME].to_bytes(32, "big")
        if kind == "finalize":
            args = {"requestId": rid, "status": int(Status.ACCEPTED), "outputHash": (42).to_bytes(32, "big")}
        self.events.append(SimpleNamespace(name=name, block_number=self.block + 1, args=args, tx_hash=p.tx_hash))
        return p

    def peer(self, name: str, rid: int, who: str, output: int = 42) -> None:
        """Another member's commit / reveal (of `output`), mined in the next block."""
        r = self.requests[rid]
        (r.commits if name == "Committed" else r.reveals)[who] = b"x" if name == "Committed" else output
        args: dict[str, Any] = {"requestId": rid, "node": who}
        if name == "Revealed":
            args["outputHash"] = output.to_bytes(32, "big")
        self.events.append(SimpleNamespace(name=name, block_number=self.block + 1, args=args, tx_hash="0xpeer"))

    def submit_proof(self, rid: int, out: int, proof: list[int]) -> str:
        tx = super().submit_proof(rid, out, proof)
        self.prove_event(rid, ME)
        return tx

    def prove_event(self, rid: int, who: str) -> None:
        """A proof by `who` lands (ProofVerified in the next block)."""
        self.requests[rid].proven = True
        self.events.append(SimpleNamespace(name="ProofVerified", block_number=self.block + 1,
                                           args={"requestId": rid, "prover": who}, tx_hash="0xproof"))

    def poll_tx(self, pending: Any) -> Any:
        self.polls += 1
        if pending.dropped or self.block <= pending.block:
            return None
        return {"transactionHash": pending.tx_hash, "blockNumber": pending.block + 1, "status": 1}

    def tx_known(self, pending: Any) -> bool:
        return not pending.dropped


def test_events_confirm_txs_and_drive_the_request_without_reads_or_receipt_polls(tmp_path: Path) -> None:
    """Issue 7 attack 13: a sent tx does not park the task, its event confirms it, peers' events move the request."""
    chain = MiningChain()
    w = make_worker(tmp_path, chain, follow_events=True, receipt_after_blocks=1)
    chain.request(1, [ME, B, C])
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    assert phase(w, 1) == Phase.READY and [k for k, _ in chain.sent] == ["commit"]  # sent, not waited for
    reads_after_commit = chain.reads
    chain.peer("Committed", 1, B)
    chain.peer("Committed", 1, C)
    chain.mine()
    w.discover()
    w.step(chain.block)  # our Committed event confirms the commit; all three committed → reveal sent at once
    assert phase(w, 1) == Phase.COMMITTED and [k for k, _ in chain.sent] == ["commit", "reveal"]
    chain.peer("Revealed", 1, B)
    chain.peer("Revealed", 1, C)
    chain.mine()
    w.discover()
    w.step(chain.block)  # reveal confirmed by its event; all revealed (consensus-only model) → finalize sent
    assert [k for k, _ in chain.sent] == ["commit", "reveal", "finalize"]
    chain.mine()
    w.discover()
    w.step(chain.block)
    assert phase(w, 1) == Phase.DONE
    assert chain.polls == 0  # every tx was confirmed by its event
    assert chain.reads - reads_after_commit <= 1  # at most the draw-window check; no per-block getRequest polling


def test_a_dropped_transaction_is_sent_again(tmp_path: Path) -> None:
    chain = MiningChain()
    w = make_worker(tmp_path, chain, follow_events=True, receipt_after_blocks=1)
    chain.request(1, [ME])
    chain.mine(2)
    w.discover()
    chain.drop_next = True
    w.step(chain.block)
    assert phase(w, 1) == Phase.READY and chain.sent == []
    chain.mine(3)
    w.step(chain.block)
    assert phase(w, 1) == Phase.READY and chain.sent == []  # still pending: not yet given up on
    chain.mine(5)
    w.step(chain.block)  # unknown to the RPC node 8 blocks later: forgotten
    w.step(chain.block)  # … and sent again
    assert [k for k, _ in chain.sent] == ["commit"]
    chain.mine()
    w.discover()
    w.step(chain.block)
    assert phase(w, 1) in (Phase.COMMITTED, Phase.REVEALED, Phase.DONE)


def test_first_member_draws_at_once_when_the_draw_window_ends_before_the_commit_window(tmp_path: Path) -> None:
    """Epoch-limited draw window (commit window 90 blocks): blocks can outrun the clock (automine), so the first
    previewed member draws before fetching; the others and a draw window that ends with the commit window do not."""
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    r1 = chain.request(1, [ME, B], commit_blocks=90)
    r1.draw_deadline = r1.draw_block + 30
    r2 = chain.request(2, [B, ME], commit_blocks=90)
    r2.draw_deadline = r2.draw_block + 30
    chain.request(3, [ME, B], commit_blocks=90)
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    assert chain.sent.index(("draw", 1)) < chain.sent.index(("commit", 1))
    assert ("draw", 2) not in chain.sent and ("commit", 2) in chain.sent
    assert ("draw", 3) not in chain.sent and ("commit", 3) in chain.sent


def test_committee_drawn_sets_the_real_deadlines(tmp_path: Path) -> None:
    """Queue (issue 7 load): the windows count from the draw; InferenceRequested gave upper bounds, CommitteeDrawn
    carries the real deadlines and the record follows them (the node must not wait past the real reveal window)."""
    chain = FakeChain()
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME, B])
    chain.mine(2)
    w.discover()
    before = w.state.get_request(1)
    assert before is not None
    chain.mine()
    real_commit, real_reveal = chain.block + 3, chain.block + 6
    assert (real_commit, real_reveal) != (before.commit_deadline, before.reveal_deadline)
    chain.events.append(SimpleNamespace(name="CommitteeDrawn", block_number=chain.block,
                                        args={"requestId": 1, "committee": [ME, B], "commitDeadline": real_commit,
                                              "revealDeadline": real_reveal, "finalizeAfter": real_reveal}))
    w.discover()
    rec = w.state.get_request(1)
    assert rec is not None and (rec.commit_deadline, rec.reveal_deadline) == (real_commit, real_reveal)


# --- who proves (verinfer.node.proving.proof_plan, wired into the worker) ---------------------------------------


def _revealed_by_all(tmp_path: Path, committee: list[str], outputs: dict[str, int]) -> tuple[MiningChain, Worker, list[int]]:
    """A proven-model request with `committee`; we (ME, output 42) and the peers in `outputs` reveal."""
    chain = MiningChain(proof_mode=1)
    proofs: list[int] = []
    w = make_worker(tmp_path, chain, follow_events=True, receipt_after_blocks=1, proofs=proofs)
    chain.request(1, committee)
    chain.mine(2)
    w.discover()
    w.step(chain.block)
    peers = [m for m in committee if m != ME]
    for m in peers:
        chain.peer("Committed", 1, m)
    chain.mine()
    w.discover()
    w.step(chain.block)  # all committed: our reveal goes out
    for m, out in outputs.items():
        chain.peer("Revealed", 1, m, out)
    chain.mine()
    w.discover()
    w.step(chain.block)  # our Revealed event confirms the reveal, the peers' reveals arrive with it
    assert phase(w, 1) == Phase.REVEALED
    return chain, w, proofs


def test_unanimous_request_is_proven_by_the_designated_member_only(tmp_path: Path) -> None:
    chain, w, proofs = _revealed_by_all(tmp_path, [ME, B, C], {B: 42, C: 42})
    assert w.prove_pending(chain.block) == 1 and proofs == [1]  # lowest committee index: we prove at once


def test_unanimous_request_others_wait_for_the_fallback_and_skip_a_landed_proof(tmp_path: Path) -> None:
    chain, w, proofs = _revealed_by_all(tmp_path, [B, ME, C], {B: 42, C: 42})
    r = chain.requests[1]
    fallback = r.reveal_deadline + r.proof_blocks // 2
    assert w.prove_pending(chain.block) == 0 and proofs == []  # B is designated: we do not prove now
    chain.prove_event(1, B)  # B's proof lands
    chain.mine()
    w.discover()
    w.step(chain.block)  # proven + all revealed: finalize goes out, no proof of ours
    chain.block = fallback
    assert w.prove_pending(chain.block) <= 1 and proofs == [] and ("proof", 1) not in chain.sent


def test_crashed_designated_prover_is_replaced_at_the_fallback(tmp_path: Path) -> None:
    chain, w, proofs = _revealed_by_all(tmp_path, [B, ME, C], {B: 42, C: 42})
    r = chain.requests[1]
    fallback = r.reveal_deadline + r.proof_blocks // 2
    chain.block = fallback - 1
    assert w.prove_pending(chain.block) == 0 and proofs == []
    chain.block = fallback  # B revealed, then died: no proof by half the proof window → we prove
    assert w.prove_pending(chain.block) == 1 and proofs == [1] and ("proof", 1) in chain.sent


def test_dissent_makes_us_prove_at_once_even_when_not_designated(tmp_path: Path) -> None:
    chain, w, proofs = _revealed_by_all(tmp_path, [B, C, ME], {B: 41, C: 41})  # a wrong majority
    assert w.prove_pending(chain.block) == 1 and proofs == [1]


def test_a_member_that_never_reveals_is_not_waited_for_past_the_reveal_deadline(tmp_path: Path) -> None:
    chain, w, proofs = _revealed_by_all(tmp_path, [B, ME, C], {C: 42})  # B (designated by index) never reveals
    assert w.prove_pending(chain.block) == 0 and proofs == []  # B may still reveal: wait
    chain.block = chain.requests[1].reveal_deadline + 1
    w.step(chain.block)  # the reveal deadline wakes the task: of the revealers, we have the lowest index
    assert w.prove_pending(chain.block) == 1 and proofs == [1]


def test_a_state_dir_from_another_deployment_stops_the_worker_before_any_work(tmp_path: Path) -> None:
    """The worker binds its state dir to the deployment before trusting the stored cursor and request ids."""
    chain = FakeChain()
    NodeState(tmp_path / "node.db").bind_deployment("31337:0xfake:an-earlier-devnet")
    w = make_worker(tmp_path, chain)
    chain.request(1, [ME])
    with pytest.raises(ConfigError, match="belongs to another deployment"):
        w.discover()
    assert w.state.get_request(1) is None and chain.sent == []
    ok = make_worker(tmp_path / "fresh", chain)
    ok.discover()  # a fresh state dir records this deployment and serves
    assert ok.state.get("deployment") == chain.deployment_id() and phase(ok, 1) == Phase.SEEN
