"""The worker loop: chain events → fetch/infer → commit → reveal → finalize → prove → withdraw.

Each tick reads the block number, pulls new `InferenceRequested` events (cursor in SQLite),
then advances every unfinished request one phase at a time. A phase only moves forward after
the chain confirms it (or the chain already shows it done), so replaying a tick after a crash
is harmless: the persisted salt makes a re-sent commit identical, and `getReveal` tells a
restarted node what it already did. Errors are per request (logged, retried next tick) or,
for RPC outages, per tick (logged once, exponential backoff); nothing here exits the loop
except a stop request.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from verinfer.chain.errors import ContractError, RpcError
from verinfer.chain.events import DecodedEvent, EventCursor
from verinfer.chain.tx import TRANSPORT_ERRORS
from verinfer.chain.protocol import Status
from verinfer.models.hashing import FIELD
from verinfer.node.chainio import FINAL_STATUSES, NodeChain, commitment_hash
from verinfer.node.compute import ModelCache, compute, profile_hash
from verinfer.node.metrics import NodeMetrics
from verinfer.node.state import NodeState, Phase, RequestRecord
from verinfer.errors import ConfigError, VerinferError

log = logging.getLogger("verinfer.node")

FAULTS = ("wrong-output", "no-reveal", "crash-after-commit")


@dataclass
class WorkerConfig:
    """Tunables of one worker (CLI flags map 1:1)."""

    state_dir: Path
    poll_interval: float = 0.5
    fault: str | None = None
    auto_withdraw: bool = False
    withdraw_threshold_wei: int = 10**16
    withdraw_every_blocks: int = 20
    fetch_timeout_s: float = 8.0
    prove: bool = True
    prover_setup: str = "auto"
    max_log_range: int = 2000
    start_block: int | None = None
    parallel: int = 8


class Worker:
    """One node's daemon; `run()` blocks until `stop()` (SIGTERM/SIGINT in the CLI)."""

    def __init__(self, chain: NodeChain, store: Any, state: NodeState, config: WorkerConfig, metrics: NodeMetrics | None = None) -> None:
        if config.fault is not None and config.fault not in FAULTS:
            raise VerinferError(f"unknown fault {config.fault!r} (choose from {', '.join(FAULTS)})")
        self.chain = chain
        self.store = store
        self.state = state
        self.cfg = config
        self.metrics = metrics or NodeMetrics()
        self.address = chain.address
        self.models = ModelCache(store, Path(config.state_dir) / "models")
        self._stop = threading.Event()
        self.last_block: int | None = None
        self.last_tick_ok: float | None = None
        self.last_error: str | None = None
        self._last_withdraw_check = -(10**9)
        self._settled_since_withdraw = False
        self._chain_checked = False
        self._finalized_at: dict[int, int] = {}
        self._revealed_at: dict[int, int] = {}
        self._proof_settled: set[int] = set()
        self._backoff = 0.0
        self._rpc_down = False
        self._prover_artifacts: dict[tuple[str, int], Any] = {}
        self._prover_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, config.parallel), thread_name_prefix="request")
        start = config.start_block if config.start_block is not None else chain.manifest.deploy_block
        self.cursor = EventCursor(chain.w3, chain.market, ["InferenceRequested"], start, state, key="InferenceRequested")

    # --- lifecycle ---------------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        """First SIGTERM/SIGINT: finish the current step and exit. Second: exit now (state is always consistent)."""
        if self._stop.is_set():
            os._exit(1)
        self._stop.set()

    def run(self) -> None:
        """Tick until stopped; an RPC outage backs off (0.5 s → 15 s) and never ends the loop."""
        log.info("node %s started: state=%s fault=%s", self.address, self.state.path, self.cfg.fault or "none")
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_error = None  # health reports the current condition, not history (see /metrics)
                if self._rpc_down:
                    self._rpc_down = False
                    log.info("rpc reachable again at block %s", self.last_block)
                    # A tx broadcast just before the outage may be gone (e.g. chain restored from a
                    # snapshot): let the sender re-read the pending nonce instead of trusting its counter.
                    self.chain.p.sender.resync_nonce()
                self._backoff = 0.0
                self._stop.wait(self.cfg.poll_interval)
            except (RpcError, *TRANSPORT_ERRORS) as exc:
                self._rpc_down = True
                self._backoff = min(max(self._backoff * 2, 0.5), 15.0)
                self.metrics.errors.labels("rpc").inc()
                self.last_error = f"rpc: {exc}"
                log.warning("rpc unavailable (%s); retrying in %.1fs", _one_line(exc), self._backoff)
                self._stop.wait(self._backoff)
            except ConfigError as exc:  # wrong chain / manifest: retrying cannot help
                log.error("%s", exc)
                raise
            except VerinferError as exc:  # an understood failure (e.g. the node answered an RPC error): one line
                self._backoff = min(max(self._backoff * 2, 0.5), 15.0)
                self.metrics.errors.labels(type(exc).__name__).inc()
                self.last_error = str(exc)
                log.warning("tick failed: %s; retrying in %.1fs", _one_line(exc), self._backoff)
                self._stop.wait(self._backoff)
            except Exception as exc:  # a bug must not take the node down mid-request; log and keep going
                self._backoff = min(max(self._backoff * 2, 0.5), 15.0)
                self.metrics.errors.labels("internal").inc()
                self.last_error = f"internal: {exc}"
                log.exception("unexpected error in tick; retrying in %.1fs", self._backoff)
                self._stop.wait(self._backoff)
        self._pool.shutdown(wait=True)
        log.info("node %s stopped at block %s", self.address, self.last_block)

    def health(self) -> dict[str, Any]:
        """The /health document."""
        pending = self.state.active()
        return {
            "address": self.address,
            "last_block": self.last_block,
            "cursor": self.state.load("InferenceRequested"),
            "pending_requests": [
                {"request_id": r.request_id, "phase": r.phase.value, "last_error": r.last_error} for r in pending
            ],
            "phases": self.state.count_by_phase(),
            "fault": self.cfg.fault,
            "last_error": self.last_error,
            "ok": self.last_tick_ok is not None and time.time() - self.last_tick_ok < max(30.0, 10 * self.cfg.poll_interval),
        }

    # --- one tick ----------------------------------------------------------------------------

    def tick(self) -> None:
        if not self._chain_checked:
            chain_id = self.chain.chain_id()
            if chain_id != self.chain.manifest.chain_id:
                raise ConfigError(
                    f"RPC serves chain {chain_id} but the manifest is for chain {self.chain.manifest.chain_id}"
                )
            self._chain_checked = True
        block = self.chain.block_number()
        self.last_block = block
        self.metrics.last_block.set(block)
        self.poll_events(block)
        active = self.state.active()
        if len(active) <= 1 or self.cfg.parallel <= 1:
            for rec in active:
                if self._stop.is_set():
                    break
                self.advance(rec, block)
        else:
            # Requests are independent: advancing them concurrently lets one node's commits/reveals for
            # many requests land in the same block (TxSender hands out nonces thread-safely) instead of
            # one receipt wait per request per tick.
            futures = [self._pool.submit(self.advance, rec, block) for rec in active]
            errors: list[BaseException] = []
            for f in futures:  # wait for all: a request must never be advanced by two ticks at once
                try:
                    f.result()
                except BaseException as exc:  # RpcError and the like: the whole tick backs off
                    errors.append(exc)
            if errors:
                raise errors[0]
        due = block - self._last_withdraw_check >= self.cfg.withdraw_every_blocks
        if self.cfg.auto_withdraw and (due or self._settled_since_withdraw):
            self.maybe_withdraw()
            self._last_withdraw_check = block
            self._settled_since_withdraw = False
        self.metrics.pending.set(len(self.state.active()))
        self.last_tick_ok = time.time()

    def poll_events(self, head: int) -> None:
        """Store every new InferenceRequested naming us; the cursor advances only after the rows are stored."""
        while True:
            events = self.cursor.poll(self.cfg.max_log_range, commit=False)
            for ev in events:
                self._on_request(ev)
            self.cursor.commit()
            if self.cursor.next_block > head:
                return

    def _on_request(self, ev: DecodedEvent) -> None:
        a = ev.args
        committee = [Web3.to_checksum_address(x) for x in a["committee"]]
        if self.address not in committee:
            return
        rec = RequestRecord(
            request_id=int(a["requestId"]),
            model_id=_hex(a["modelId"]),
            input_cid=a["inputCid"],
            input_hash=_hex(a["inputHash"]),
            fee=int(a["fee"]),
            committee=committee,
            commit_deadline=int(a["commitDeadline"]),
            reveal_deadline=int(a["revealDeadline"]),
            seen_block=ev.block_number,
        )
        if self.state.add_request(rec):
            self.metrics.requests_seen.inc()
            log.info(
                "request %d assigned: model=%s input=%s commit<=%d reveal<=%d committee=%d",
                rec.request_id, rec.model_id[:10], rec.input_cid, rec.commit_deadline, rec.reveal_deadline, len(committee),
            )

    # --- the state machine -------------------------------------------------------------------

    def advance(self, rec: RequestRecord, block: int) -> None:
        """Move one request as far as the chain allows right now; errors stay with the request."""
        try:
            if rec.phase == Phase.SEEN:
                self._compute(rec, block)
                rec = self.state.get_request(rec.request_id) or rec
            if rec.phase == Phase.READY:
                self._commit(rec, block)
                rec = self.state.get_request(rec.request_id) or rec
            if rec.phase == Phase.COMMITTED:
                self._reveal(rec, block)
                rec = self.state.get_request(rec.request_id) or rec
            if rec.phase == Phase.REVEALED:
                self._finalize(rec, block)
                rec = self.state.get_request(rec.request_id) or rec
            if rec.phase == Phase.FINALIZED:
                self._prove(rec, block)
        except ContractError as exc:
            self.metrics.errors.labels("revert").inc()
            self.state.record_error(rec.request_id, str(exc))
            log.warning("request %d: %s", rec.request_id, _one_line(exc))
        except (RpcError, *TRANSPORT_ERRORS):
            raise  # the whole tick backs off
        except VerinferError as exc:  # chain (non-RPC), storage or model errors: retry next tick
            self.metrics.errors.labels(type(exc).__name__).inc()
            self.state.record_error(rec.request_id, str(exc))
            log.warning("request %d: %s", rec.request_id, _one_line(exc))

    def _compute(self, rec: RequestRecord, block: int) -> None:
        if block > rec.commit_deadline:
            self._miss(rec, f"commit window closed at block {rec.commit_deadline} before the output was computed")
            return
        model = self.chain.model(bytes.fromhex(rec.model_id[2:]))
        try:
            spec = self.models.get(model.weights_cid)
            lm_files = self.models.lm_files(model.weights_cid)
        except VerinferError as exc:
            # The model itself is unavailable: not the requester's fault, so do not claim INVALID_INPUT.
            self._cannot_serve(rec, f"cannot load model {model.weights_cid}: {exc}", "model")
            return
        ours = profile_hash(spec)
        if any(model.execution_profile_hash) and model.execution_profile_hash != ours:
            # Consensus compares hashes: running a different computation than the one registered
            # would make an honest node disagree. Refuse rather than guess.
            self._cannot_serve(
                rec,
                f"model's execution profile {model.execution_profile_hash.hex()[:16]}… is not this node's "
                f"{ours.hex()[:16]}…",
                "profile",
            )
            return
        # Leave room to commit before the window closes: roughly one poll per remaining block.
        budget = max(1.0, min(self.cfg.fetch_timeout_s, (rec.commit_deadline - block) * 0.8))
        outcome = compute(
            self.store,
            spec,
            rec.input_cid,
            int(rec.input_hash, 16),
            fetch_timeout_s=budget,
            corrupt_output=self.cfg.fault == "wrong-output",
            lm_files=lm_files,
        )
        if outcome.is_invalid:
            self.metrics.invalid_inputs.inc()
            log.info("request %d: INVALID_INPUT (%s)", rec.request_id, outcome.invalid_reason)
        else:
            self.metrics.inference_seconds.observe(outcome.inference_seconds)
            log.info(
                "request %d: output %s (cid %s) in %.1f ms%s",
                rec.request_id, f"{outcome.output_hash:#x}"[:14], outcome.output_cid, outcome.inference_seconds * 1e3,
                " [fault: wrong-output]" if self.cfg.fault == "wrong-output" else "",
            )
        salt = "0x" + secrets.token_bytes(32).hex()
        # Durable BEFORE the commit tx exists: a crash after sending can always be revealed.
        self.state.set_output(rec.request_id, f"{outcome.output_hash:#066x}", outcome.output_cid, salt, outcome.invalid_reason)

    def _commit(self, rec: RequestRecord, block: int) -> None:
        onchain = self.chain.get_reveal(rec.request_id)
        if onchain.committed:
            log.info("request %d: commitment already on-chain (recovered)", rec.request_id)
            self.state.set_phase(rec.request_id, Phase.REVEALED if onchain.revealed else Phase.COMMITTED)
            return
        if block > rec.commit_deadline:
            self._miss(rec, f"commit window closed at block {rec.commit_deadline}")
            return
        assert rec.output_hash and rec.salt
        c = commitment_hash(rec.request_id, int(rec.output_hash, 16), bytes.fromhex(rec.salt[2:]), self.address)
        try:
            tx = self.chain.commit(rec.request_id, c)
        except ContractError as exc:
            if exc.error_name == "AlreadyCommitted":
                self.state.set_phase(rec.request_id, Phase.COMMITTED)
                return
            if exc.error_name in ("CommitPhaseOver", "AlreadyFinalized"):
                self._miss(rec, str(exc))
                return
            raise
        self.state.record_tx(rec.request_id, "commit", tx)
        self.metrics.requests_committed.inc()
        log.info("request %d: committed (tx %s)", rec.request_id, tx)
        if self.cfg.fault == "crash-after-commit":
            log.warning("request %d: fault crash-after-commit: SIGKILL self before recording the phase", rec.request_id)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)
        self.state.set_phase(rec.request_id, Phase.COMMITTED)

    def _reveal(self, rec: RequestRecord, block: int) -> None:
        if self.cfg.fault == "no-reveal":
            if block > rec.reveal_deadline:
                self._miss(rec, "fault no-reveal: withheld the reveal")
            return
        if block > rec.reveal_deadline:
            onchain = self.chain.get_reveal(rec.request_id)
            if onchain.revealed:
                self.state.set_phase(rec.request_id, Phase.REVEALED)
            else:
                self._miss(rec, f"reveal window closed at block {rec.reveal_deadline}")
            return
        if block <= rec.commit_deadline:
            r = self.chain.get_request(rec.request_id)
            if r.status in FINAL_STATUSES:
                self._miss(rec, f"settled as {r.status.name} before we revealed")
                return
            if r.commit_count < len(rec.committee):
                return  # reveal window not open yet
        assert rec.output_hash and rec.salt
        try:
            tx = self.chain.reveal(rec.request_id, int(rec.output_hash, 16), bytes.fromhex(rec.salt[2:]), rec.output_cid or "")
        except ContractError as exc:
            if exc.error_name == "AlreadyRevealed":
                self.state.set_phase(rec.request_id, Phase.REVEALED)
                return
            if exc.error_name == "RevealPhaseNotStarted":
                return
            if exc.error_name in ("RevealPhaseOver", "AlreadyFinalized", "NotCommitted"):
                self._miss(rec, str(exc))
                return
            raise
        self.state.record_tx(rec.request_id, "reveal", tx)
        self.state.set_phase(rec.request_id, Phase.REVEALED)
        self.metrics.requests_revealed.inc()
        log.info("request %d: revealed %s (tx %s)", rec.request_id, rec.output_hash[:14], tx)

    def _finalize(self, rec: RequestRecord, block: int) -> None:
        """Prove our output if we can (a verified proof decides the outcome), then settle.

        With a verifier on the model, nodes do not settle early while a proof of their own
        (provable) output may still come: a proof submitted before finalize makes the proven
        output the winner and slashes contradicting revealers, so an honest minority with a proof
        beats a wrong majority. Without one, they settle at the reveal deadline.
        """
        r = self.chain.get_request(rec.request_id)
        if r.status not in FINAL_STATUSES:
            model = self.chain.model(bytes.fromhex(rec.model_id[2:]))
            if self._wants_proof(rec, model, r):
                since = self._revealed_at.setdefault(rec.request_id, block)
                if self._try_prove(rec, model, block, since):
                    self._proof_settled.add(rec.request_id)
                r = self.chain.get_request(rec.request_id)
            provable = model.has_verifier and int(rec.output_hash or "0x0", 16) < FIELD
            early = r.reveal_count >= len(rec.committee) and (r.proven or not provable or not self.cfg.prove)
            if block <= rec.reveal_deadline and not early:
                return
            try:
                tx = self.chain.finalize(rec.request_id)
                self.state.record_tx(rec.request_id, "finalize", tx)
                log.info("request %d: finalize sent (tx %s)", rec.request_id, tx)
            except ContractError as exc:
                if exc.error_name == "TooEarlyToFinalize":
                    return
                if exc.error_name != "AlreadyFinalized":
                    raise
            r = self.chain.get_request(rec.request_id)
            if r.status not in FINAL_STATUSES:
                return
        self.metrics.requests_finalized.inc()
        self._settled_since_withdraw = True
        self._finalized_at[rec.request_id] = block
        agreed = _hex(r.output_hash) == rec.output_hash
        log.info(
            "request %d: settled %s%s, winner %s (ours %s)",
            rec.request_id, r.status.name, " (proven)" if r.proven else "", _hex(r.output_hash)[:14],
            "agrees" if agreed else "DIFFERS",
        )
        self.state.set_phase(rec.request_id, Phase.FINALIZED)

    def _prove(self, rec: RequestRecord, block: int) -> None:
        """After settlement: prove an accepted request nobody proved yet (e.g. settled by someone else first)."""
        model = self.chain.model(bytes.fromhex(rec.model_id[2:]))
        r = self.chain.get_request(rec.request_id)
        if (
            rec.request_id in self._proof_settled
            or r.status != Status.ACCEPTED
            or not self._wants_proof(rec, model, r)
        ):
            self.state.set_phase(rec.request_id, Phase.DONE)
            return
        since = self._finalized_at.setdefault(rec.request_id, block)
        if self._try_prove(rec, model, block, since):
            self.state.set_phase(rec.request_id, Phase.DONE)

    def _wants_proof(self, rec: RequestRecord, model: Any, r: Any) -> bool:
        """Our output is provable, the model has a verifier, nobody proved yet, and we are honest."""
        out = int(rec.output_hash or "0x0", 16)
        return bool(self.cfg.prove and self.cfg.fault is None and model.has_verifier and not r.proven and out < FIELD)

    def _try_prove(self, rec: RequestRecord, model: Any, block: int, since: int) -> bool:
        """Prove our output and submit it; True when nothing is left to do (proven, by anyone, or impossible)."""
        # Stagger: committee member i waits i blocks, so usually only one node spends the proving time.
        idx = rec.committee.index(self.address) if self.address in rec.committee else 0
        if block < since + idx:
            return False
        try:
            candidates = self._prover_candidates(rec, model)
        except VerinferError as exc:
            self.metrics.errors.labels("prover").inc()
            self.state.record_error(rec.request_id, f"prover: {exc}")
            log.warning("request %d: cannot prepare the prover: %s", rec.request_id, _one_line(exc))
            return rec.attempts >= 3
        if not candidates:
            if rec.request_id not in self._proof_settled:
                log.info("request %d: no local proving key matches this model's verifier; not proving", rec.request_id)
            return True
        from verinfer.models.tensor import decode_input
        from verinfer.prover import pipeline

        spec = self.models.get(model.weights_cid)
        x = decode_input(self.store.cat(rec.input_cid, max_bytes=1 << 20), spec)
        for setup, arts in list(candidates):
            t0 = time.perf_counter()
            out_hash, calldata = pipeline.prove_request(arts, spec, x, rec.request_id, self.address)
            prove_s = time.perf_counter() - t0
            self.metrics.proof_seconds.observe(prove_s)
            proven = int.from_bytes(out_hash, "big") if isinstance(out_hash, (bytes, bytearray)) else int(out_hash)
            try:
                tx = self.chain.submit_proof(rec.request_id, proven, [int(v) for v in calldata])
            except ContractError as exc:
                if exc.error_name == "AlreadyProven":
                    return True
                if exc.error_name == "InvalidProof" and len(candidates) > 1:
                    # Only possible in proof mode 2, whose commitment does not identify the key: drop it, try the next.
                    log.info("request %d: %s key rejected by the verifier; trying the next", rec.request_id, setup)
                    candidates.remove((setup, arts))
                    continue
                if exc.error_name == "InvalidProof":  # our key does not fit the verifier: retrying cannot help
                    log.warning("request %d: verifier rejected our %s proof; not proving", rec.request_id, setup)
                    return True
                raise
            self.state.record_tx(rec.request_id, "proof", tx)
            self.metrics.requests_proven.inc()
            log.info("request %d: proof verified on-chain (%s key, %.2fs to prove, tx %s)", rec.request_id, setup, prove_s, tx)
            return True
        return True

    def _prover_candidates(self, rec: RequestRecord, model: Any) -> list[tuple[str, Any]]:
        """Locally available proving keys that can match the on-chain verifier, best first (cached per model).

        With `--prover-setup auto`, the publisher's prover bundle (ModelRegistry.artifactsCid, fetched
        from the content store by verinfer.prover.bundle) comes first; then the prover's local cache:
        shipped, then ceremony, then dev keys. A key is kept only if its commitment equals the
        ModelRegistry's (in proof mode 1 that is the verification key's hash, so a wrong key is
        excluded before any proving work). Cached per (model, bundle CID).
        """
        with self._prover_lock:  # one compile/setup per circuit, even with requests advancing in parallel
            return self._prover_candidates_locked(rec, model)

    def _artifacts_cid(self, rec: RequestRecord, model: Any) -> str:
        """The model's on-chain prover bundle CID ("" when none is published or it cannot be read)."""
        chain_protocol = getattr(self.chain, "p", None)
        if chain_protocol is None or getattr(model, "model_id", None) is None:
            return ""
        try:
            return str(self.chain.read(lambda: chain_protocol.models.artifacts_cid(model.model_id)) or "")
        except VerinferError as exc:  # e.g. a ModelRegistry deployed before setArtifacts existed
            log.debug("request %d: no prover bundle pointer: %s", rec.request_id, _one_line(exc))
            return ""

    def _prover_candidates_locked(self, rec: RequestRecord, model: Any) -> list[tuple[str, Any]]:
        bundle_cid = self._artifacts_cid(rec, model) if model.proof_mode in (1, 2) else ""
        key = (model.weights_cid, model.proof_mode, bundle_cid)
        if key in self._prover_artifacts:
            return self._prover_artifacts[key]
        mode = {1: "public", 2: "private"}.get(model.proof_mode)
        try:
            from verinfer.prover import pipeline
        except ImportError:
            mode = None
        found: list[tuple[str, Any]] = []
        if mode is not None:
            spec = self.models.get(model.weights_cid)
            if bundle_cid and self.cfg.prover_setup == "auto":
                # the publisher's keys, fetched through the protocol (ModelRegistry.artifactsCid → store)
                try:
                    from verinfer.prover.bundle import fetch_bundle

                    arts = fetch_bundle(self.store, bundle_cid, expected_commitment=model.commitment, spec=spec)
                    if arts.mode == mode:
                        found.append(("bundle", arts))
                    else:
                        log.warning("request %d: prover bundle %s is for proof mode %s, the model uses %s; ignoring it",
                                    rec.request_id, bundle_cid, arts.mode, mode)
                except ImportError:
                    pass
                except VerinferError as exc:
                    log.warning("request %d: cannot use the published prover bundle %s: %s; trying local keys",
                                rec.request_id, bundle_cid, _one_line(exc))
            setups = ("shipped", "ceremony", "dev") if self.cfg.prover_setup == "auto" else (self.cfg.prover_setup,)
            if found:
                setups = ()  # the publisher's bundle matches the registry: no local setup work needed
            for setup in setups:
                try:
                    arts = pipeline.prepare(spec, mode, setup=setup)
                except VerinferError as exc:
                    log.debug("request %d: no %s proving key: %s", rec.request_id, setup, _one_line(exc))
                    continue
                if int(arts.commitment) == model.commitment:
                    found.append((setup, arts))
        self._prover_artifacts[key] = found
        return found

    def _cannot_serve(self, rec: RequestRecord, why: str, kind: str) -> None:
        """Record why a request cannot be served yet (logged once per reason; retried until the window closes)."""
        if rec.last_error != why[:500]:
            self.metrics.errors.labels(kind).inc()
            log.warning("request %d: %s", rec.request_id, why)
        self.state.record_error(rec.request_id, why)

    def _miss(self, rec: RequestRecord, why: str) -> None:
        self.metrics.requests_missed.inc()
        self.state.set_phase(rec.request_id, Phase.MISSED)
        self.state.record_error(rec.request_id, why)
        log.warning("request %d: missed: %s", rec.request_id, why)

    def maybe_withdraw(self) -> None:
        """Pull earnings once they exceed the threshold (pull payments never arrive on their own)."""
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


def _one_line(exc: BaseException) -> str:
    s = str(exc) or type(exc).__name__
    return s.splitlines()[0][:300]


def _hex(v: Any) -> str:
    """bytes32 event/struct fields arrive as bytes or 0x-strings depending on the decoder."""
    return v.lower() if isinstance(v, str) else Web3.to_hex(v)
