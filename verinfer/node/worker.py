"""The worker: continuous discovery, one concurrent task per request, a separate proving pool.

Three independent loops (protocol V2, issue 7 attacks 11 and 13):

* discovery (its own thread) follows `InferenceRequested` and `CommitteeDrawn` with a cursor and
  never waits on request work, so a slow input fetch cannot hide a new request;
* the scheduler (the `run()` thread) hands every request with work left to a pool of request
  threads, at most one task per request at a time; each task moves its request as far as the
  chain allows: preview the committee → fetch + compute within a budget that never outlasts the
  commit window → commit (which draws) → reveal → finalize after `finalizeAfter`;
* provers (their own pool) prove revealed outputs of proven models and `submitProof` before
  `finalizeAfter`; a commit or reveal never waits for a proof. Who proves is `proving.proof_plan`:
  when every reveal equals ours only the designated member proves at once, the others only at the
  fallback block if no proof landed; on any disagreement every honest member proves at once.

A phase only moves forward after the chain confirms it (or shows it done), so replaying a step
after a crash is harmless: the persisted salt makes a re-sent commit identical, and the revert
`AlreadyCommitted` / `AlreadyRevealed` tells a restarted node what it already did.
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from web3 import Web3

from verinfer.chain.errors import ContractError, RequestPrunedError
from verinfer.chain.protocol import Status
from verinfer.chain.tx import RPC_FAILURES, TRANSPORT_ERRORS
from verinfer.constants import FIELD, INVALID_INPUT_HASH, PROOF_NONE, commitment_hash
from verinfer.errors import ConfigError, VerinferError
from verinfer.node.chainio import FINAL_STATUSES, ModelInfo, NodeChain, PendingTx
from verinfer.node.compute import ModelCache, Outcome, compute, profile_hash
from verinfer.node.metrics import NodeMetrics
from verinfer.node.proving import proof_plan
from verinfer.node.state import TERMINAL, NodeState, Phase, RequestRecord

log = logging.getLogger("verinfer.node")

#: a verinfer error or a lost RPC request: the loop logs it and carries on
_ERRORS_OR_TRANSPORT: tuple[type[BaseException], ...] = (VerinferError, *TRANSPORT_ERRORS)

FAULTS = ("wrong-output", "no-reveal", "crash-after-commit")

#: Revert names meaning "this window is over for us" (a miss, not a retry).
_COMMIT_OVER = ("CommitPhaseOver", "CommitWindowClosed", "AlreadyFinalized", "RequestExpired", "DrawExpired", "WrongStatus")
_REVEAL_OVER = ("RevealPhaseOver", "RevealWindowClosed", "AlreadyFinalized", "NotCommitted", "WrongStatus")
_NOT_MEMBER = ("NotCommitteeMember", "NotMember", "NotInCommittee")

#: A broadcast transaction neither mined nor known to the RPC node this many blocks later was dropped: send again.
TX_LOST_BLOCKS = 6


@dataclass
class WorkerConfig:
    """Tunables of one worker (the `python -m verinfer.node` flags map 1:1)."""

    state_dir: Path
    poll_interval: float = 0.25
    fault: str | None = None
    auto_withdraw: bool = False
    withdraw_threshold_wei: int = 10**16
    withdraw_every_blocks: int = 20
    fetch_timeout_s: float = 8.0
    prove: bool = True
    prover_setup: str = "auto"
    provers: int = 1
    max_log_range: int = 2000
    start_block: int | None = None
    parallel: int = 64
    block_time_s: float | None = None  # None: measured from the chain's progress
    tx_margin_blocks: int = 2  # blocks kept free at the end of a window for the tx to be mined
    prover_nice: int = 5  # the proving thread's (and its witness / prover threads') niceness above the node's
    prove_max_pending: int = 0  # prove only while at most this many requests wait to commit or reveal
    # blocks after a broadcast before its receipt is looked up: the tx's own event confirms it first (discovery follows
    # every block); at 1 block, 2.5 receipt look-ups per request and node went out under a burst because the event
    # had not been polled yet. A tx is still confirmed as soon as its event arrives.
    receipt_after_blocks: int = 3
    follow_events: bool = True  # commits / reveals / proofs / settlement from events (False: read the request each time)


@dataclass
class ChainView:
    """What the market's events told this process about one request (so the request path needs no polling).

    Filled by discovery from Committed / Revealed / ProofVerified / Finalized; absent for requests first seen
    before a restart, which fall back to reading the request.
    """

    commits: set[str] = field(default_factory=set)
    reveals: dict[str, int] = field(default_factory=dict)  # member → revealed output hash (the proving policy's input)
    proven: bool = False
    drawn: bool = False  # CommitteeDrawn seen: no draw of ours is needed
    final: Any = None  # Status once Finalized
    output_hash: bytes = b""
    mined: dict[str, tuple[str, int]] = field(default_factory=dict)  # our tx kind → (tx hash, block) seen in an event
    finalize_after: int | None = None


class BlockClock:
    """Seconds per block, measured from when this process saw each new head (or fixed)."""

    def __init__(self, fixed: float | None = None, default: float = 1.0) -> None:
        self.fixed = fixed
        self.default = default
        self._seen: deque[tuple[int, float]] = deque(maxlen=64)
        self._lock = threading.Lock()

    def observe(self, block: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if not self._seen or block > self._seen[-1][0]:
                self._seen.append((block, now))

    @property
    def seconds_per_block(self) -> float:
        if self.fixed is not None:
            return self.fixed
        with self._lock:
            if len(self._seen) < 4:
                return self.default
            (b0, t0), (b1, t1) = self._seen[0], self._seen[-1]
        return max(0.05, (t1 - t0) / max(1, b1 - b0))


class Worker:
    """One node's daemon; `run()` blocks until `stop()` (SIGTERM/SIGINT in the entry point).

    `step(block)` and `prove_pending(block)` run one synchronous pass (unit tests drive the state
    machine with them and a fake chain/store); `run()` runs the same code on threads.
    """

    def __init__(
        self,
        chain: NodeChain,
        store: Any,
        state: NodeState,
        config: WorkerConfig,
        metrics: NodeMetrics | None = None,
        *,
        compute_fn: Callable[..., Outcome] = compute,
        prove_fn: Callable[[RequestRecord, ModelInfo], tuple[int, list[int]] | None] | None = None,
    ) -> None:
        if config.fault is not None and config.fault not in FAULTS:
            raise VerinferError(f"unknown fault {config.fault!r} (choose from {', '.join(FAULTS)})")
        self.chain = chain
        self.store = store
        self.state = state
        self.cfg = config
        self.metrics = metrics or NodeMetrics()
        self.address: str = chain.address
        self.models = ModelCache(store, Path(config.state_dir) / "models")
        self.clock = BlockClock(config.block_time_s)
        self._compute_fn = compute_fn
        self._prove_fn = prove_fn or self._prove_with_local_keys
        self._keys: Any = None  # ProvingKeys, created on first proof (imports the prover stack)
        self._stop = threading.Event()
        self.last_block: int | None = None
        self.last_tick_ok: float | None = None
        self.last_error: str | None = None
        self.eligibility: dict[str, Any] = {}
        self._served: set[bytes] | None = None
        self._served_checked = -1
        self._last_withdraw_check = -(10**9)
        self._finalizable_since: dict[int, int] = {}
        self._running: set[int] = set()
        self._chain_checked = False
        self._wake: dict[int, int] = {}  # request id → first block worth looking at it again
        self._head_at = 0.0
        self._running_lock = threading.Lock()
        self._proofs: list[tuple[int, int, int]] = []  # heap of (not_before_block, reveal_deadline, request_id)
        self._proofs_lock = threading.Lock()
        self._proof_at: dict[int, int] = {}  # request id → its live heap entry's block (older entries are stale)
        self._proof_done: set[int] = set()  # requests the prover already handled (proved or skipped): never requeued
        self._proof_blocks: int | None = None  # the market's proof window (parameters().proofBlocks), read once
        # request id → (seconds to prove, tx) until its ProofVerified event (kept past settlement: the log line of a
        # proof whose event comes after the Finalized one still carries the proving time; a lost proof leaves one entry)
        self._proofs_sent: dict[int, tuple[float, str]] = {}
        self._prove_seconds = 3.0
        self._backoff = 0.0
        self._rpc_down = False
        self._kicked: set[int] = set()  # requests an event touched since their task last started: run them now
        self._views: dict[int, ChainView] = {}  # request id → what events said (discovery writes, tasks read)
        self._inflight: dict[tuple[int, str], tuple[PendingTx, int]] = {}  # (request, kind) → (tx, block sent)
        self._pool = ThreadPoolExecutor(max_workers=max(1, config.parallel), thread_name_prefix="request")
        start = config.start_block if config.start_block is not None else chain.manifest.deploy_block
        self.cursor = chain.event_cursor(["InferenceRequested", "CommitteeDrawn", "Committed", "Revealed", "ProofVerified",
                                          "Finalized"], state, start, key="market-v2")

    # --- lifecycle ---------------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        """First SIGTERM/SIGINT: finish the current steps and exit. Second: exit now (state is always consistent)."""
        if self._stop.is_set():
            os._exit(1)
        self._stop.set()

    def run(self) -> None:
        """Discovery and provers on their own threads; this thread schedules request tasks."""
        log.info("node %s started: state=%s fault=%s", self.address, self.state.path, self.cfg.fault or "none")
        threads = [threading.Thread(target=self._loop, args=("discovery", self.discover), name="discovery", daemon=True),
                   threading.Thread(target=self._status_loop, name="status", daemon=True)]
        if self.cfg.prove and self.cfg.fault is None:
            threads += [threading.Thread(target=self._prover_loop, name=f"prover-{i}", daemon=True) for i in range(max(1, self.cfg.provers))]
        for t in threads:
            t.start()
        self._loop("scheduler", self.schedule)
        self._pool.shutdown(wait=True)
        for t in threads:
            t.join(timeout=5)
        log.info("node %s stopped at block %s", self.address, self.last_block)

    def _loop(self, name: str, body: Callable[[], None]) -> None:
        """Run `body` every poll interval until stopped; RPC outages back off (0.5 s → 15 s), nothing exits."""
        backoff = 0.0
        while not self._stop.is_set():
            try:
                body()
                if name == "scheduler":
                    self.last_tick_ok = time.time()
                    if not self._rpc_down:
                        self.last_error = None
                elif name == "discovery" and self._rpc_down:
                    # only discovery reads the chain on every pass (the scheduler may reuse its head), so only
                    # its success proves the RPC is back; until then health keeps reporting the outage
                    self._rpc_down = False
                    self.last_error = None
                    log.info("rpc reachable again at block %s", self.last_block)
                    # a tx broadcast just before the outage may be gone: re-read the pending nonce
                    self.chain.resync_nonce()
                backoff = 0.0
                self._stop.wait(self.cfg.poll_interval)
            except RPC_FAILURES as exc:
                self._rpc_down = True
                backoff = min(max(backoff * 2, 0.5), 15.0)
                self.metrics.errors.labels("rpc").inc()
                self.last_error = f"rpc: {_one_line(exc)}"
                log.warning("%s: rpc unavailable (%s); retrying in %.1fs", name, _one_line(exc), backoff)
                self._stop.wait(backoff)
            except ConfigError as exc:  # wrong chain / manifest: retrying cannot help
                log.error("%s", exc)
                self._stop.set()
                raise
            except Exception as exc:  # a bug must not take the node down mid-request; log and keep going
                backoff = min(max(backoff * 2, 0.5), 15.0)
                self.metrics.errors.labels("internal" if not isinstance(exc, VerinferError) else type(exc).__name__).inc()
                self.last_error = f"{name}: {_one_line(exc)}"
                log.exception("%s: unexpected error; retrying in %.1fs", name, backoff)
                self._stop.wait(backoff)

    def _check_chain(self) -> None:
        """Once per process, before any work (retried like any RPC while the node is unreachable)."""
        if self._chain_checked:
            return
        chain_id = self.chain.chain_id()
        if chain_id != self.chain.manifest.chain_id:
            raise ConfigError(f"RPC serves chain {chain_id} but the manifest is for chain {self.chain.manifest.chain_id}")
        self.state.bind_deployment(self.chain.deployment_id())  # before the stored event cursor is trusted
        self._chain_checked = True

    def health(self) -> dict[str, Any]:
        """The /health document: ok only when ticking AND registered + eligible for some model."""
        pending = self.state.active()
        ticking = self.last_tick_ok is not None and time.time() - self.last_tick_ok < max(30.0, 10 * self.cfg.poll_interval)
        return {
            "address": self.address,
            "last_block": self.last_block,
            "seconds_per_block": round(self.clock.seconds_per_block, 3),
            "cursor": self.cursor.next_block if hasattr(self.cursor, "next_block") else None,
            "pending_requests": [
                {"request_id": r.request_id, "phase": r.phase.value, "last_error": r.last_error} for r in pending[:100]
            ],
            "pending_count": len(pending),
            "phases": self.state.count_by_phase(),
            "queued_proofs": len(self._proof_at),
            "fault": self.cfg.fault,
            "eligibility": self.eligibility,
            "last_error": self.last_error,
            "ticking": ticking,
            "ok": ticking and bool(self.eligibility.get("eligible", True)),
        }

    # --- discovery ---------------------------------------------------------------------------

    def served_models(self, block: int) -> set[bytes]:
        """Models with a full-model shard of ours (read once here; refreshed by the status loop)."""
        if self._served is None:
            self.refresh_status()
        assert self._served is not None
        return self._served

    def refresh_status(self) -> None:
        """Served models and eligibility (with the reason); off the discovery path: ~8 reads, every 10 s."""
        self._served = self.chain.served_models()
        eligibility = self.chain.eligibility(self._served)
        if not eligibility.get("eligible", False) and eligibility.get("reason") != self.eligibility.get("reason"):
            log.warning("node is not eligible to be drawn: %s", eligibility.get("reason"))
        self.eligibility = eligibility

    def _status_loop(self) -> None:
        while not self._stop.wait(10.0):
            try:
                self.refresh_status()
            except _ERRORS_OR_TRANSPORT as exc:
                log.debug("status refresh failed: %s", _one_line(exc))

    def discover(self) -> None:
        """Store every new request of a model we serve; apply CommitteeDrawn. Cursor advances after storing."""
        self._check_chain()
        head = self.chain.block_number()
        self._observe(head)  # the scheduler's pass right after reuses this head (one eth_blockNumber, not two)
        served = self.served_models(head)
        while not self._stop.is_set():
            events = self.cursor.poll(self.cfg.max_log_range, commit=False)
            for ev in events:
                if ev.name == "InferenceRequested":
                    self._on_request(ev, served)
                elif ev.name == "CommitteeDrawn":
                    self._on_drawn(ev)
                else:
                    self._on_progress(ev)
            self.cursor.commit()
            if self.cursor.next_block > head:
                return

    def _on_request(self, ev: Any, served: set[bytes]) -> None:
        a = ev.args
        model_id = bytes(a["modelId"])
        if model_id not in served and self._served_checked != ev.block_number:
            # our shards may have changed since the last status refresh: re-read them (once per block)
            self._served_checked = ev.block_number
            self._served = served = self.chain.served_models()
        if model_id not in served:
            return
        rec = RequestRecord(
            request_id=int(a["requestId"]),
            model_id=model_id,
            input_cid=str(a["inputCid"]),
            input_hash=int.from_bytes(bytes(a["inputHash"]), "big"),
            fee=int(a["fee"]),
            replicas=int(a["replicas"]),
            draw_block=int(a["drawBlock"]),
            commit_deadline=int(a["commitDeadline"]),
            reveal_deadline=int(a["revealDeadline"]),
            seen_block=ev.block_number,
        )
        if self.cfg.follow_events:
            self._views.setdefault(rec.request_id, ChainView())
        if self.state.add_request(rec):
            self.metrics.requests_seen.inc()
            log.info("request %d seen: model=%s input=%s draw@%d commit<=%d reveal<=%d", rec.request_id,
                     model_id.hex()[:8], rec.input_cid, rec.draw_block, rec.commit_deadline, rec.reveal_deadline)

    def _on_progress(self, ev: Any) -> None:
        """Committed / Revealed / ProofVerified / Finalized of a request we follow: note it, wake its task now."""
        rid = int(ev.args["requestId"])
        if ev.name == "ProofVerified" and Web3.to_checksum_address(ev.args["prover"]) == self.address:
            sent = self._proofs_sent.pop(rid, None)
            self.metrics.requests_proven.inc()
            log.info("request %d: proof verified on-chain (%s to prove, tx %s)", rid,
                     f"{sent[0]:.2f}s" if sent else "?", ev.tx_hash)
        view = self._views.get(rid)
        if view is None:
            return
        ours = Web3.to_checksum_address(ev.args["node"]) == self.address if "node" in ev.args else False
        if ev.name == "Committed":
            view.commits.add(ev.args["node"])
            if ours:
                view.mined["commit"] = (ev.tx_hash, ev.block_number)
        elif ev.name == "Revealed":
            view.reveals[Web3.to_checksum_address(ev.args["node"])] = int.from_bytes(bytes(ev.args["outputHash"]), "big")
            if ours:
                view.mined["reveal"] = (ev.tx_hash, ev.block_number)
        elif ev.name == "ProofVerified":
            view.proven = True
        elif ev.name == "Finalized":
            view.final = Status(int(ev.args["status"]))
            view.output_hash = bytes(ev.args["outputHash"])
            view.mined["finalize"] = (ev.tx_hash, ev.block_number)
        self._kicked.add(rid)

    def _on_drawn(self, ev: Any) -> None:
        rid = int(ev.args["requestId"])
        committee = [Web3.to_checksum_address(x) for x in ev.args["committee"]]
        rec = self.state.get_request(rid)
        if rec is None:
            return
        view = self._views.get(rid)
        if view is not None:
            view.drawn = True
        # --- queue (issue 7 load): the commit/reveal windows count from the draw; the event carries them. Until
        # then the record holds the latest they can be (InferenceRequested); here they become the real ones.
        if "commitDeadline" in ev.args and int(ev.args["commitDeadline"]) != rec.commit_deadline:
            rec = self.state.update(rid, commit_deadline=int(ev.args["commitDeadline"]),
                                    reveal_deadline=int(ev.args["revealDeadline"])) or rec
            self._kicked.add(rid)  # a task asleep until the old deadlines looks again now
        # --- end queue
        if self.address in committee:
            if rec.phase == Phase.NOT_MEMBER:
                log.info("request %d: drawn into the committee after all (preview differed)", rid)
                if self.cfg.follow_events:  # the draw comes before any commit: a fresh view sees them all
                    self._views.setdefault(rid, ChainView())
                self.state.transition(rid, Phase.SEEN, expect=Phase.NOT_MEMBER, committee=committee)
            elif rec.committee != committee:
                self.state.update(rid, committee=committee)
        else:
            self._views.pop(rid, None)  # not ours: stop following its events
            if rec.phase in (Phase.SEEN, Phase.READY):
                log.info("request %d: the drawn committee does not include us", rid)
                self.state.transition(rid, Phase.NOT_MEMBER, expect=(Phase.SEEN, Phase.READY), committee=committee)

    # --- scheduling --------------------------------------------------------------------------

    def schedule(self) -> None:
        """Hand every request with work left (and no task running) to the request pool."""
        self._check_chain()
        block = self._head(None)  # discovery's head when it read one within the poll interval
        for rec in self.state.active():
            if self._wake.get(rec.request_id, 0) > block and rec.request_id not in self._kicked:
                continue  # nothing can change for it before that block: no RPCs spent on it
            with self._running_lock:
                if rec.request_id in self._running:
                    continue
                self._running.add(rec.request_id)
            self._pool.submit(self._task, rec.request_id, time.monotonic())
        self._maybe_withdraw(block)

    def _task(self, request_id: int, queued_at: float) -> None:
        self.metrics.task_wait_seconds.observe(time.monotonic() - queued_at)
        try:
            self.advance(request_id)
        except RPC_FAILURES as exc:
            self._rpc_down = True
            self.last_error = f"rpc: {_one_line(exc)}"
            log.warning("request %d: rpc unavailable (%s); retried on the next pass", request_id, _one_line(exc))
        except Exception:
            log.exception("request %d: unexpected error; retried on the next pass", request_id)
        finally:
            with self._running_lock:
                self._running.discard(request_id)

    def step(self, block: int | None = None) -> None:
        """One synchronous pass over every active request (tests; the daemon uses `schedule`)."""
        if block is not None:
            self._observe(block)
        for rec in self.state.active():
            self.advance(rec.request_id, block)

    def _observe(self, block: int) -> None:
        self.last_block = block  # discovery, scheduler and tasks all report heads (a race may lag a block for a pass)
        self._head_at = time.monotonic()
        self.clock.observe(block)
        self.metrics.last_block.set(block)
        self.metrics.pending.set(len(self._running))

    # --- the state machine -------------------------------------------------------------------

    def advance(self, request_id: int, block: int | None = None) -> None:
        """Move one request as far as the chain allows right now; errors stay with the request."""
        rec = self.state.get_request(request_id)
        if rec is None:
            return
        before = rec.phase
        self._wake.pop(request_id, None)
        self._kicked.discard(request_id)
        view = self._views.get(request_id)
        if (view is not None and view.final is not None and rec.phase in (Phase.SEEN, Phase.READY, Phase.COMMITTED)
                and not any((request_id, k) in self._inflight for k in ("commit", "reveal"))):
            # settled (or expired) before we got to it: nothing left to do, no read needed
            if rec.phase == Phase.SEEN:
                self.state.transition(request_id, Phase.DONE, expect=Phase.SEEN,
                                      error=f"settled as {view.final.name} before we were drawn")
            else:
                self._gone(rec, view.final)
            self._views.pop(request_id, None)
            return
        try:
            if rec is not None and rec.phase == Phase.SEEN:
                rec = self._seen(rec, self._head(block))
            if rec is not None and rec.phase == Phase.READY:
                rec = self._commit(rec, self._head(block))
            if rec is not None and rec.phase == Phase.COMMITTED:
                rec = self._reveal(rec, self._head(block))
            if rec is not None and rec.phase == Phase.REVEALED:
                self._settle(rec, self._head(block))
        except RequestPrunedError:
            self._pruned(request_id)
        except ContractError as exc:
            self.metrics.errors.labels("revert").inc()
            self.state.record_error(request_id, str(exc))
            log.warning("request %d: %s", request_id, _one_line(exc))
        except RPC_FAILURES:
            raise
        except VerinferError as exc:  # chain (non-RPC), storage or model errors: retried on the next pass
            self.metrics.errors.labels(type(exc).__name__).inc()
            self.state.record_error(request_id, str(exc))
            log.warning("request %d: %s", request_id, _one_line(exc))
        after = self.state.get_request(request_id)
        if after is not None and after.phase in TERMINAL:
            self._views.pop(request_id, None)
        if after is not None and after.phase == before and request_id not in self._wake and self.last_block is not None:
            self._wake[request_id] = self.last_block + 1  # no progress: look again next block, not every poll

    def _head(self, block: int | None) -> int:
        """The given block (tests), else the chain's head now (work between steps takes time)."""
        if block is not None:
            return block
        if self.last_block is not None and time.monotonic() - self._head_at < self.cfg.poll_interval:
            return self.last_block  # the scheduler read it a moment ago
        head = self.chain.block_number()
        self._observe(head)
        return head

    def _seen(self, rec: RequestRecord, block: int) -> RequestRecord | None:
        if block > rec.commit_deadline:
            return self._miss(rec, f"commit window closed at block {rec.commit_deadline} before the output was computed")
        if not rec.committee:
            if block <= rec.draw_block:
                return None  # the seed block is not mined yet
            try:
                committee = self.chain.preview_committee(rec.request_id, block)  # the head we just acted on
            except ContractError as exc:
                if exc.error_name == "DrawNotReady":
                    return None
                status = self.chain.get_request(rec.request_id).status
                if status in FINAL_STATUSES:
                    return self.state.transition(rec.request_id, Phase.DONE, expect=Phase.SEEN,
                                                 error=f"settled as {status.name} before we were drawn")
                raise
            if len(committee) < rec.replicas:
                # Too few drawable nodes right now (e.g. all at capacity): drawing now would expire the request.
                # Wait and preview again; seats free up as other requests settle (until the draw window closes).
                why = f"waiting for seats: a draw now finds {len(committee)} of {rec.replicas} members"
                if rec.last_error != why:
                    log.info("request %d: %s", rec.request_id, why)
                    self.state.record_error(rec.request_id, why)
                return None
            if self.address not in committee:
                return self.state.transition(rec.request_id, Phase.NOT_MEMBER, expect=Phase.SEEN, committee=committee)
            rec = self.state.update(rec.request_id, committee=committee) or rec
        elif self.address not in rec.committee:
            return self.state.transition(rec.request_id, Phase.NOT_MEMBER, expect=Phase.SEEN)
        return self._compute(rec, block)

    def fetch_budget(self, rec: RequestRecord, block: int) -> float:
        """Seconds the input fetch may take: never past the commit window minus the time to mine the commit."""
        spb = self.clock.seconds_per_block
        left = (rec.commit_deadline - block - self.cfg.tx_margin_blocks) * spb
        return max(0.2, min(self.cfg.fetch_timeout_s, left))

    def _draw_if_late(self, rec: RequestRecord, block: int, budget: float) -> None:
        """Send `draw()` before fetching (without waiting for it) when our commit might come after the draw window.

        The first commit draws, and a commit can only count before the commit deadline, so when the draw window
        ends with the commit window no separate draw is needed (an extra tx per request on the critical path
        cost a block or more per request under a burst, issue 7 attack 13). The draw window can end earlier
        (the snapshot epoch's end, the blockhash horizon): then the previewed committee's first member draws at
        once, and anyone does when a worst-case fetch could end after it (blocks may come faster than the
        clock says, e.g. automine, so the first member does not wait for the clock to say so).
        """
        view = self._views.get(rec.request_id)
        if view is not None and (view.drawn or view.final is not None):
            return  # the CommitteeDrawn (or Finalized) event says there is nothing to draw: no read
        r = self.chain.get_request(rec.request_id)
        if r.status != Status.PENDING:
            return
        draw_left = (r.draw_deadline - block - self.cfg.tx_margin_blocks) * self.clock.seconds_per_block
        first = bool(rec.committee) and rec.committee[0] == self.address
        if draw_left >= budget and (r.draw_deadline >= rec.commit_deadline or not first):
            return
        try:
            pending = self.chain.send_draw(rec.request_id)
            log.info("request %d: drawing the committee now (draw window closes at block %d, commit window at %d; "
                     "tx %s)", rec.request_id, r.draw_deadline, rec.commit_deadline, pending.tx_hash)
        except ContractError as exc:
            if exc.error_name not in ("AlreadyDrawn", "AlreadyFinalized", "DrawWindowOver"):
                raise

    def _compute(self, rec: RequestRecord, block: int) -> RequestRecord | None:
        model = self.chain.model(rec.model_id)
        try:
            spec = self.models.get(model.weights_cid)
            lm_files = self.models.lm_files(model.weights_cid)
        except VerinferError as exc:
            # The model itself is unavailable: not the requester's fault, so do not claim INVALID_INPUT.
            self._cannot_serve(rec, f"cannot load model {model.weights_cid}: {exc}", "model")
            return None
        ours = profile_hash(spec) if any(model.execution_profile_hash) else model.execution_profile_hash
        if model.execution_profile_hash != ours:
            # Consensus compares hashes: running a computation other than the registered one would make an
            # honest node disagree. Refuse rather than guess.
            self._cannot_serve(rec, f"model's execution profile {model.execution_profile_hash.hex()[:16]}… is not this "
                                    f"node's {ours.hex()[:16]}…", "profile")
            return None
        budget = self.fetch_budget(rec, block)
        self._draw_if_late(rec, block, budget)
        outcome = self._compute_fn(self.store, spec, rec.input_cid, rec.input_hash, fetch_timeout_s=budget,
                                   corrupt_output=self.cfg.fault == "wrong-output", lm_files=lm_files,
                                   model_id=rec.model_id, request_id=rec.request_id)  # ids: LLM stage discovery (lmstage)
        if outcome.is_invalid:
            self.metrics.invalid_inputs.inc()
            log.info("request %d: INVALID_INPUT (%s)", rec.request_id, outcome.invalid_reason)
        else:
            self.metrics.inference_seconds.observe(outcome.inference_seconds)
            log.info("request %d: output %s (cid %s) in %.1f ms, %d block(s) after the request%s", rec.request_id,
                     f"{outcome.output_hash:#x}"[:14], outcome.output_cid, outcome.inference_seconds * 1e3,
                     self._head(None) - rec.seen_block,
                     " [fault: wrong-output]" if self.cfg.fault == "wrong-output" else "")
        # The salt is derived from the operator key (recomputable), so this write needs no fsync.
        return self.state.transition(rec.request_id, Phase.READY, expect=Phase.SEEN, output_hash=outcome.output_hash,
                                     output_cid=outcome.output_cid, salt=self.chain.salt_for(rec.request_id),
                                     invalid_reason=outcome.invalid_reason)

    def _tx(self, rec: RequestRecord, kind: str, send: Callable[[], PendingTx], block: int) -> Any | None:
        """Broadcast once, then look for the receipt on each later pass: the receipt once mined, None before.

        Why not wait: under a burst a node has hundreds of commits and reveals in flight; a thread parked on each
        receipt starved the pool (requests were first computed 2-21 blocks after they were seen, issue 7 attack
        13). Reverts, pre-flight or mined, raise ContractError; a transaction the RPC node dropped is sent again.
        """
        key = (rec.request_id, kind)
        entry = self._inflight.get(key)
        if entry is None:
            pending = send()
            entry = self._inflight[key] = (pending, block)
            self.state.record_tx(rec.request_id, kind, pending.tx_hash)
            self.metrics.txs_sent.labels(kind).inc()
        pending, sent_block = entry
        view = self._views.get(rec.request_id)
        mined = view.mined.get(kind) if view is not None else None
        if mined is None and kind == "finalize" and view is not None and view.final is not None:
            mined = ("", block)  # someone finalized: our transaction, if mined, reverted harmlessly
        if mined is not None:  # its event arrived: no receipt look-up needed
            self._inflight.pop(key, None)
            self.metrics.tx_seconds.labels(kind).observe(time.monotonic() - pending.sent_at)
            return {"transactionHash": mined[0] or pending.tx_hash, "blockNumber": mined[1], "status": 1}
        if block < sent_block + self.cfg.receipt_after_blocks:
            return None
        try:
            receipt = self.chain.poll_tx(pending)
        except ContractError:
            self._inflight.pop(key, None)
            raise
        if receipt is None:
            if block > sent_block + TX_LOST_BLOCKS and not self.chain.tx_known(pending):
                log.warning("request %d: %s tx %s was dropped by the RPC node; sending it again", rec.request_id, kind,
                            pending.tx_hash)
                self._inflight.pop(key, None)
                self.chain.resync_nonce()
            return None
        self._inflight.pop(key, None)
        self.metrics.tx_seconds.labels(kind).observe(time.monotonic() - pending.sent_at)
        return receipt

    def _commit(self, rec: RequestRecord, block: int) -> RequestRecord | None:
        if (rec.request_id, "commit") not in self._inflight and block > rec.commit_deadline:
            return self._miss(rec, f"commit window closed at block {rec.commit_deadline}")
        assert rec.output_hash is not None and rec.salt is not None
        c = commitment_hash(rec.request_id, rec.output_hash, rec.salt, self.address)
        try:
            receipt = self._tx(rec, "commit", lambda: self.chain.send_commit(rec.request_id, c), block)
        except ContractError as exc:
            if exc.error_name == "AlreadyCommitted":
                log.info("request %d: commitment already on-chain (recovered)", rec.request_id)
                return self.state.transition(rec.request_id, Phase.COMMITTED, expect=Phase.READY)
            if exc.error_name in _NOT_MEMBER:
                committee = self.chain.get_committee(rec.request_id)
                return self.state.transition(rec.request_id, Phase.NOT_MEMBER, expect=Phase.READY, committee=committee,
                                             error=f"not in the drawn committee ({exc.error_name})")
            if exc.error_name in _COMMIT_OVER:
                return self._miss(rec, str(exc))
            if exc.error_name == "NoSeatsYet":  # queue: our commit's draw found a seat taken since the preview
                self._wake[rec.request_id] = block + 1
                return None
            raise
        if receipt is None:
            return None
        self.metrics.requests_committed.inc()
        log.info("request %d: committed (tx %s, %d block(s) after the request)", rec.request_id,
                 _hex(receipt["transactionHash"]), int(receipt["blockNumber"]) - rec.seen_block)
        if self.cfg.fault == "crash-after-commit":
            log.warning("request %d: fault crash-after-commit: SIGKILL self before recording the phase", rec.request_id)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.state.transition(rec.request_id, Phase.COMMITTED, expect=Phase.READY)

    def _reveal(self, rec: RequestRecord, block: int) -> RequestRecord | None:
        if self.cfg.fault == "no-reveal":
            return self._miss(rec, "fault no-reveal: withheld the reveal") if block > rec.reveal_deadline else None
        sent = (rec.request_id, "reveal") in self._inflight
        if block > rec.reveal_deadline and not sent:
            if self.chain.get_reveal(rec.request_id).revealed:
                return self._revealed(rec)
            return self._miss(rec, f"reveal window closed at block {rec.reveal_deadline}")
        if block <= rec.commit_deadline and not sent:
            view = self._views.get(rec.request_id)
            if view is not None:  # events tell: no read; the last commit's event wakes this task
                if view.final is not None:
                    return self._gone(rec, view.final)
                if len(view.commits) < rec.replicas:
                    self._wake[rec.request_id] = rec.commit_deadline + 1
                    return None
            else:
                r = self.chain.get_request(rec.request_id)
                if r.status in FINAL_STATUSES:
                    return self._gone(rec, r.status)
                if r.commit_count < rec.replicas:
                    return None  # the reveal window opens when all committed or at the commit deadline
        assert rec.output_hash is not None and rec.salt is not None
        try:
            receipt = self._tx(rec, "reveal", lambda: self.chain.send_reveal(rec.request_id, rec.output_hash or 0,
                                                                             rec.salt or b"", rec.output_cid or ""), block)
        except ContractError as exc:
            if exc.error_name == "AlreadyRevealed":
                return self._revealed(rec)
            if exc.error_name in ("RevealPhaseNotStarted", "RevealNotOpen"):
                return None
            if exc.error_name == "AlreadyFinalized":
                return self._gone(rec, self.chain.get_request(rec.request_id).status)
            if exc.error_name in _REVEAL_OVER:
                return self._miss(rec, str(exc))
            raise
        if receipt is None:
            return None
        self.metrics.requests_revealed.inc()
        log.info("request %d: revealed %s (tx %s, %d block(s) after the request)", rec.request_id,
                 rec.output_hash_hex[:14], _hex(receipt["transactionHash"]),
                 int(receipt["blockNumber"]) - rec.seen_block)
        return self._revealed(rec)

    def _revealed(self, rec: RequestRecord) -> RequestRecord | None:
        new = self.state.transition(rec.request_id, Phase.REVEALED, expect=Phase.COMMITTED)
        if new is not None:
            self._queue_proof(new, self.last_block or 0)
        return new

    def _settle(self, rec: RequestRecord, block: int) -> None:
        """Finalize once allowed (after finalizeAfter for proven models unless proven); anyone may, so do we."""
        view = self._views.get(rec.request_id)
        if view is not None and view.final is None and not view.proven:
            self._queue_proof(rec, block)  # a Revealed event (or the reveal deadline) may have changed who proves
        if view is not None and view.final is not None:
            self._settled(rec, view.final, view.output_hash, view.proven)
            return
        if (rec.request_id, "finalize") not in self._inflight and not self._finalizable(rec, block, view):
            return
        try:
            receipt = self._tx(rec, "finalize", lambda: self.chain.send_finalize(rec.request_id), block)
            if receipt is None:
                return
            log.info("request %d: finalized (tx %s)", rec.request_id, _hex(receipt["transactionHash"]))
        except ContractError as exc:
            if exc.error_name in ("TooEarlyToFinalize", "TooEarly", "ProofWindowOpen", "NotFinalizable"):
                return
            if exc.error_name != "AlreadyFinalized":
                raise
        if view is not None and view.final is not None:
            self._settled(rec, view.final, view.output_hash, view.proven)
            return
        r = self.chain.get_request(rec.request_id)
        if r.status in FINAL_STATUSES:
            self._settled(rec, r.status, bytes(r.output_hash), bool(r.proven))

    def _finalizable(self, rec: RequestRecord, block: int, view: ChainView | None) -> bool:
        """Whether our finalize may go out now (events when we have them, else one read); sets the wake-up block."""
        model = self.chain.model(rec.model_id)
        if view is not None:
            all_revealed = len(view.reveals) >= rec.replicas
            proven = view.proven
            if not (all_revealed or block > rec.reveal_deadline):
                self._wake[rec.request_id] = rec.reveal_deadline + 1  # the last reveal's event wakes us earlier
                return False
            if model.proof_mode != PROOF_NONE and not proven and view.finalize_after is None:
                view.finalize_after = int(self.chain.get_request(rec.request_id).finalize_after)
            finalize_after = view.finalize_after if view.finalize_after is not None else 0
        else:
            r = self.chain.get_request(rec.request_id)
            if r.status in FINAL_STATUSES:
                self._settled(rec, r.status, bytes(r.output_hash), bool(r.proven))
                return False
            all_revealed, proven, finalize_after = r.reveal_count >= rec.replicas, bool(r.proven), int(r.finalize_after)
            if not (all_revealed or block > r.reveal_deadline):
                self._wake[rec.request_id] = min(r.reveal_deadline + 1, block + 2)
                return False
        proof_done = model.proof_mode == PROOF_NONE or proven or block > finalize_after
        invalid_all = all_revealed and rec.output_hash == INVALID_INPUT_HASH  # the contract decides; a preflight is free
        if not (proof_done or invalid_all):
            # only a proof (its event wakes us) or the end of the proof window can change this
            self._wake[rec.request_id] = finalize_after + 1 if view is not None else min(finalize_after + 1, block + 2)
            return False
        # Stagger by committee position so usually one member pays for the finalize.
        since = self._finalizable_since.setdefault(rec.request_id, block)
        idx = rec.committee.index(self.address) if self.address in rec.committee else 0
        if block < since + idx:
            self._wake[rec.request_id] = since + idx
            return False
        return True

    def _settled(self, rec: RequestRecord, status: Any, output_hash: bytes, proven: bool) -> None:
        self._finalizable_since.pop(rec.request_id, None)
        with self._proofs_lock:
            self._proof_at.pop(rec.request_id, None)  # a heap entry left behind is dropped as stale when popped
            self._proof_done.discard(rec.request_id)
        if self.state.transition(rec.request_id, Phase.DONE, expect=Phase.REVEALED) is None:
            return
        self._views.pop(rec.request_id, None)
        self.metrics.requests_finalized.inc()
        out = int.from_bytes(output_hash, "big")
        log.info("request %d: settled %s%s, winner %#x (ours %s)", rec.request_id, status.name,
                 " (proven)" if proven else "", out, "agrees" if out == rec.output_hash else "DIFFERS")

    # --- proving (separate pool) -------------------------------------------------------------

    def wants_proof(self, rec: RequestRecord, model: ModelInfo) -> bool:
        """Honest node, proofs on, a proven model, and our output is a field element (not INVALID_INPUT)."""
        return bool(self.cfg.prove and self.cfg.fault is None and model.proof_mode != PROOF_NONE
                    and rec.output_hash is not None and rec.output_hash < FIELD)

    def _queue_proof(self, rec: RequestRecord, block: int) -> None:
        """(Re)plan our proof of a revealed request with `proving.proof_plan`; an earlier start replaces a later one.

        Called when our reveal is confirmed and on every later pass of the request's task (each Revealed event and
        the reveal deadline wake it). Without events (a request first seen before a restart) the reveals are
        unknown: we prove at once, as a disagreement would require.
        """
        rid = rec.request_id
        if rid in self._proof_done or rec.output_hash is None:
            return
        model = self.chain.model(rec.model_id)
        if not self.wants_proof(rec, model):
            return
        view = self._views.get(rid)
        if view is None:
            start, reason = block, "reveals unknown"
        else:
            if self._proof_blocks is None:
                self._proof_blocks = self.chain.proof_blocks()
            plan = proof_plan(me=self.address, my_output=rec.output_hash, committee=rec.committee, reveals=view.reveals,
                              block=block, reveal_deadline=rec.reveal_deadline, proof_blocks=self._proof_blocks)
            if plan.start is None:
                return  # the next Revealed event or the reveal deadline wakes the task: planned then
            start, reason = plan.start, plan.reason
        with self._proofs_lock:
            if rid in self._proof_done or self._proof_at.get(rid, start + 1) <= start:
                return
            first = rid not in self._proof_at
            self._proof_at[rid] = start
            heapq.heappush(self._proofs, (start, rec.reveal_deadline, rid))
        if first:
            self.state.update(rid, proof="queued")
        log.debug("request %d: proof planned from block %d (%s)", rid, start, reason)

    def _prover_loop(self) -> None:
        """Proofs are optional work: a lower CPU priority, and none while requests wait to commit or reveal."""
        if self.cfg.prover_nice > 0:
            try:  # Linux: per-thread; the witness subprocess and the prover's own threads inherit it
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0)
                                                                                + self.cfg.prover_nice))
            except OSError as exc:
                log.warning("prover: cannot lower its priority (%s)", exc)
        while not self._stop.is_set():
            try:
                with self._proofs_lock:  # nothing due by the scheduler's last head: no RPC, no SQL
                    due = bool(self._proofs) and self._proofs[0][0] <= (self.last_block or 0)
                if not due or self._request_work_pending() > self.cfg.prove_max_pending:
                    self._stop.wait(self.cfg.poll_interval)
                    continue
                if not self.prove_pending(self._head(None), limit=1):
                    self._stop.wait(self.cfg.poll_interval)
            except RPC_FAILURES as exc:
                log.warning("prover: rpc unavailable (%s)", _one_line(exc))
                self._stop.wait(1.0)
            except Exception:
                log.exception("prover: unexpected error")
                self._stop.wait(1.0)

    def _request_work_pending(self) -> int:
        """Requests that still need a commit or reveal from us (proving waits for them: issue 7 attack 13)."""
        phases = self.state.count_by_phase()
        return sum(phases.get(p.value, 0) for p in (Phase.SEEN, Phase.READY, Phase.COMMITTED))

    def prove_pending(self, block: int, limit: int | None = None) -> int:
        """Prove queued requests whose turn has come (earliest first); returns how many were handled."""
        done = 0
        while limit is None or done < limit:
            with self._proofs_lock:
                if not self._proofs or self._proofs[0][0] > block:
                    return done
                start, _, rid = heapq.heappop(self._proofs)
                if self._proof_at.get(rid) != start:
                    continue  # replaced by an earlier plan, or the request settled: stale
                del self._proof_at[rid]
                self._proof_done.add(rid)
            self._prove_one(rid, block)
            done += 1
        return done

    def _prove_one(self, rid: int, block: int) -> None:
        rec = self.state.get_request(rid)
        if rec is None:
            return
        view = self._views.get(rid)
        if view is not None and (view.proven or view.final is not None):  # a proof landed (the fallback's case): no read
            self.state.update(rid, proof="skipped:" + ("proven" if view.proven else "settled"))
            return
        try:
            r = self.chain.get_request(rid)
        except RequestPrunedError:  # its record holds a later request: it settled long ago
            self.state.update(rid, proof="skipped:settled")
            return
        if r.status in FINAL_STATUSES or r.proven:
            self.state.update(rid, proof="skipped:" + ("proven" if r.proven else "settled"))
            return
        spb = self.clock.seconds_per_block
        need = int(self._prove_seconds / spb) + self.cfg.tx_margin_blocks
        if block + need >= r.finalize_after:
            log.info("request %d: not proving: %d blocks left before finalizeAfter %d, proving takes ~%d",
                     rid, r.finalize_after - block, r.finalize_after, need)
            self.state.update(rid, proof="skipped:late")
            return
        model = self.chain.model(rec.model_id)
        t0 = time.perf_counter()
        try:
            result = self._prove_fn(rec, model)
        except VerinferError as exc:
            self.metrics.errors.labels("prover").inc()
            self.state.update(rid, proof="skipped:error")
            log.warning("request %d: cannot prove: %s", rid, _one_line(exc))
            return
        seconds = time.perf_counter() - t0
        if result is None:
            self.state.update(rid, proof="skipped:no-key")
            return
        self._prove_seconds = 0.7 * self._prove_seconds + 0.3 * seconds
        self.metrics.proof_seconds.observe(seconds)
        out_hash, calldata = result
        # Broadcast without waiting for the receipt (the prover thread is free for the next proof at once); the
        # ProofVerified event confirms it (discovery logs it and counts it). A proof that fails to land is covered
        # like a crashed prover: the other members prove at the fallback block if no proof arrived.
        try:
            pending = self.chain.send_proof(rid, out_hash, calldata)
        except ContractError as exc:
            if exc.error_name in ("AlreadyProven", "AlreadyFinalized", "NothingToProve", "InvalidProof", "ProofWindowClosed"):
                self.state.update(rid, proof=f"skipped:{exc.error_name}")
                log.info("request %d: proof not accepted: %s", rid, exc.error_name)
                return
            raise
        self._proofs_sent[rid] = (seconds, pending.tx_hash)
        self.state.record_tx(rid, "proof", pending.tx_hash)
        self.state.update(rid, proof="submitted")
        log.info("request %d: proof sent (%.2fs to prove, tx %s)", rid, seconds, pending.tx_hash)

    def _prove_with_local_keys(self, rec: RequestRecord, model: ModelInfo) -> tuple[int, list[int]] | None:
        """Prove our output with the first local key matching the registry (None: no key fits)."""
        from verinfer.models.tensor import decode_input  # noqa: PLC0415  (the prover stack loads only on a node's first proof)
        from verinfer.node.provekeys import ProvingKeys  # noqa: PLC0415
        from verinfer.prover import pipeline  # noqa: PLC0415

        if self._keys is None:
            self._keys = ProvingKeys(self.store, self.models.get, self.cfg.prover_setup)
        candidates = self._keys.candidates(model.weights_cid, model.proof_mode, model.commitment,
                                           self.chain.artifacts_cid(rec.model_id))
        if not candidates:
            log.info("request %d: no local proving key matches this model's verifier; not proving", rec.request_id)
            return None
        spec = self.models.get(model.weights_cid)
        x = decode_input(self.store.cat(rec.input_cid, max_bytes=1 << 20), spec)
        setup, arts = candidates[0]
        log.info("request %d: proving with the %s key", rec.request_id, setup)
        out_hash, calldata = pipeline.prove_request(arts, spec, x, rec.request_id, self.address)
        return int.from_bytes(out_hash, "big"), [int(v) for v in calldata]

    # --- helpers -----------------------------------------------------------------------------

    def _cannot_serve(self, rec: RequestRecord, why: str, kind: str) -> None:
        """Record why a request cannot be served yet (logged once per reason; retried until the window closes)."""
        if rec.last_error != why[:500]:
            self.metrics.errors.labels(kind).inc()
            log.warning("request %d: %s", rec.request_id, why)
        self.state.record_error(rec.request_id, why)

    def _gone(self, rec: RequestRecord, status: Any) -> RequestRecord | None:
        """The request settled before our reveal: Expired (never drawn in time, nobody slashed) is not our miss."""
        if getattr(status, "name", "") == "EXPIRED":
            log.info("request %d: expired (the committee could not be drawn in time); nothing to do", rec.request_id)
            return self.state.transition(rec.request_id, Phase.DONE, expect=rec.phase, error="expired before the draw")
        return self._miss(rec, f"settled as {getattr(status, 'name', status)} before we revealed")

    def _pruned(self, request_id: int) -> None:
        """RequestPruned: the request's record was recycled by a later request, which the market allows only once it
        settled (e.g. we were down). Nothing is left to do: finished, never retried (its events keep the history)."""
        rec = self.state.get_request(request_id)
        if rec is None or rec.phase in TERMINAL:
            return
        why = "settled while we were away (its record was recycled: request pruned; see its events)"
        log.info("request %d: %s", request_id, why)
        self._views.pop(request_id, None)
        self._finalizable_since.pop(request_id, None)
        with self._proofs_lock:
            self._proof_at.pop(request_id, None)
            self._proof_done.discard(request_id)
        if rec.phase in (Phase.READY, Phase.COMMITTED):
            self._miss(rec, f"{why} before we revealed")
        else:  # SEEN: never drawn in (or not computed) while live; REVEALED: our part was done
            self.state.transition(request_id, Phase.DONE, expect=rec.phase, error=why)

    def _miss(self, rec: RequestRecord, why: str) -> RequestRecord | None:
        self.metrics.requests_missed.inc()
        log.warning("request %d: missed: %s", rec.request_id, why)
        return self.state.transition(rec.request_id, Phase.MISSED, expect=rec.phase, error=why)

    def _maybe_withdraw(self, block: int) -> None:
        """Pull earnings once they exceed the threshold (pull payments never arrive on their own)."""
        if not self.cfg.auto_withdraw or block - self._last_withdraw_check < self.cfg.withdraw_every_blocks:
            return
        self._last_withdraw_check = block
        amount = self.chain.withdrawable()
        if amount < max(self.cfg.withdraw_threshold_wei, 1):
            return
        try:
            tx = self.chain.withdraw()
        except ContractError as exc:
            if exc.error_name == "NothingToWithdraw":
                return
            raise
        self.metrics.withdrawn_wei.inc(amount)
        log.info("withdrew %s ETH of earnings (tx %s)", Web3.from_wei(amount, "ether"), tx)


def _hex(value: Any) -> str:
    """A tx hash from a receipt (bytes) or an event (hex string) as 0x-hex."""
    return value if isinstance(value, str) else Web3.to_hex(value)


def _one_line(exc: BaseException) -> str:
    s = str(exc) or type(exc).__name__
    return s.splitlines()[0][:300]
