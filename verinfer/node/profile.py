"""The node's side of MetaInf: apply each served model's registered execution profile, refuse the rest.

Why: nodes agree on output hashes, and the registry's `executionProfileHash` names the computation.
At start-up (and when a model is first seen) the node resolves the registered profile (the model's
reference profile, or the profile document `model publish --profile auto` anchored with
setArtifacts), checks that what it would run keeps that hash (`metainf.consensus.enforce`), and
computes its own output-preserving selection (`metainf.api.node_plan`). A model whose run would
change the hash is refused with a one-line log and /health reason (and, for an operator-chosen
`--exec-method`, dropped from the served set).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from verinfer.chain.tx import TRANSPORT_ERRORS
from verinfer.errors import ConfigError, VerinferError
from verinfer.metainf import api, consensus
from verinfer.metainf.consensus import Candidate, ProfileChangeRefused
from verinfer.metainf.hardware import cpu_info
from verinfer.metainf.methods import METHODS
from verinfer.metainf.profiles import MAX_PROFILE_BYTES, base_profile, parse_profile_document
from verinfer.node.compute import use_local_run

log = logging.getLogger("verinfer.node.profile")
#: A model or document that cannot be checked now (project error or lost RPC): retried later.
_DEFERRED: tuple[type[BaseException], ...] = (VerinferError, *TRANSPORT_ERRORS)

#: returns the model's stored profile document (None when none is anchored)
DocLoader = Callable[[], "bytes | None"]


def parse_method(text: str) -> Candidate:
    """`METHOD[:THREADS[:BATCH]]` (e.g. `ort_int8:1:4`) as a Candidate; one-line error otherwise."""
    parts = text.strip().split(":")
    if parts[0] not in METHODS or len(parts) > 3:
        raise ConfigError(f"--exec-method must be METHOD[:THREADS[:BATCH]] with METHOD one of {', '.join(METHODS)}, "
                          f"got {text!r}")
    try:
        nums = [int(p) for p in parts[1:]]
    except ValueError:
        raise ConfigError(f"--exec-method threads and batch must be integers, got {text!r}") from None
    if any(n < 1 for n in nums):
        raise ConfigError(f"--exec-method threads and batch must be >= 1, got {text!r}")
    return Candidate(parts[0], *nums)


def registered_profile(spec: Any, registered_hash: bytes, load_doc: DocLoader) -> dict[str, Any]:
    """The profile document whose hash is registered: the reference profile, else the anchored document."""
    base = base_profile(spec)
    if consensus.profile_hash(base) == bytes(registered_hash):
        return base
    doc = load_doc()
    if doc is None:
        raise ProfileChangeRefused("registered execution profile is not this model's reference profile and "
                                   "no profile document is anchored")
    try:
        profile = parse_profile_document(doc)
    except VerinferError as exc:  # a bad document is a verdict, not a transient failure
        raise ProfileChangeRefused(str(exc)) from None
    consensus.check_registered(profile, registered_hash)
    return profile


def node_run(spec: Any) -> Candidate:
    """What `verinfer.node.compute` executes for `spec`: the model's reference run."""
    return consensus.registered_candidate(base_profile(spec))


def _acc_bound(spec: Any) -> int | None:
    facts = api.task_facts(spec)
    return facts.get("acc_bound") if facts else None


@dataclass
class ProfileStatus:
    """One served model's verdict: serving under the registered hash, or refused (one-line reason)."""

    model_id: bytes
    serving: bool
    run: str  # the method the node executes
    reason: str
    selected: str | None = None  # the node's own output-preserving choice (None until computed)
    selection_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"model_id": "0x" + self.model_id.hex(), "serving": self.serving, "run": self.run,
                "reason": self.reason, "selected": self.selected, "selection_note": self.selection_note}


def check_model(model_id: bytes, spec: Any, registered_hash: bytes, load_doc: DocLoader,
                run: Candidate | None = None) -> tuple[ProfileStatus, dict[str, Any] | None]:
    """Would running `run` (default: the node's reference run) keep the registered hash?

    Raises only what `load_doc` raises (a document that cannot be fetched yet is no verdict).
    """
    cand = run or node_run(spec)
    try:
        profile = registered_profile(spec, registered_hash, load_doc)
        consensus.enforce(profile, registered_hash, cand, _acc_bound(spec))
    except ProfileChangeRefused as exc:
        return ProfileStatus(model_id, False, cand.method, f"refusing model 0x{model_id.hex()[:16]}…: {exc}"), None
    return ProfileStatus(model_id, True, cand.method, "runs under the registered execution profile"), profile


def select(spec: Any, profile: dict[str, Any], registered_hash: bytes, *, hardware_class: str | None = None,
           table: str | None = None) -> consensus.NodePlan:
    """The node's own choice: output-preserving only; the plan's hash is the registered one."""
    return api.node_plan(spec, profile, registered_hash, hardware_class=hardware_class, table=table)


LocalRun = Callable[[Sequence[int]], list[int]]
SELF_CHECK_INPUTS = 64


def local_executor(spec: Any, profile: dict[str, Any], plan: consensus.NodePlan) -> tuple[LocalRun | None, str | None]:
    """The executor for a node's own output-preserving choice, or (None, one-line notice) for the reference.

    Applied only when `consensus.output_preserving` proves the method bit-exact for the registered
    profile (re-checked here, not trusted from the plan) and a self-check on random in-range inputs
    matches the reference executor; anything else keeps the registered profile's run.
    """
    from verinfer.metainf import zoo
    from verinfer.metainf.methods import Builder, MethodUnavailable
    from verinfer.models import reference
    from verinfer.models.spec import ModelSpec, ModelSpecError

    cand = plan.candidate
    if not plan.local:
        return None, plan.notice
    verdict = consensus.output_preserving(profile, cand, _acc_bound(spec))
    if not verdict.preserving:
        return None, f"metainf: {cand.method} is not applied ({verdict.reason}); running the registered profile"
    if not isinstance(spec, ModelSpec) or cand.method == "numpy_int64":
        return None, None  # the reference executor is the registered run itself
    try:
        subject = zoo.subject_for(spec)
        runner = Builder(subject).build(cand.method, cand.threads) if subject is not None else None
    except (ModelSpecError, MethodUnavailable) as exc:
        return None, f"metainf: cannot build {cand.method} ({exc}); running the registered profile"
    if runner is None:
        return None, f"metainf: no executor for {spec.name}; running the registered profile"
    run_batch = runner.run

    def run(x: Sequence[int]) -> list[int]:
        arr = reference.check_input(spec, np.asarray(x).reshape(-1))  # same input rule as the reference
        return [int(v) for v in run_batch(arr[None, :])[0]]

    lo, hi = -(1 << (spec.input_bits - 1)), (1 << (spec.input_bits - 1))
    xs = np.random.default_rng(0).integers(lo, hi, size=(SELF_CHECK_INPUTS, spec.input_size))
    xs[0], xs[1] = lo, hi - 1  # the extremes the accumulator bound is computed from
    if any(run(x) != reference.run(spec, x) for x in xs):
        return None, f"metainf: {cand.method} failed the self-check against the reference; running the registered profile"
    return run, None


@dataclass
class BenchReport:
    """`verinfer node bench`: the candidates table, the plan and the profile it was made for."""

    rows: list[dict[str, Any]]
    plan: consensus.NodePlan | None
    refused: str | None
    profile: dict[str, Any]
    registered_hash: bytes


def bench(spec: Any, registered_hash: bytes | None = None, load_doc: DocLoader = lambda: None, *,
          run: Candidate | None = None, threads: int = 1, batch: int = 1, hardware_class: str | None = None,
          table: str | None = None) -> BenchReport:
    """Every method with predicted latency vs torch_fp32, whether it is output-preserving, and the plan."""
    reg = bytes(registered_hash) if registered_hash is not None else consensus.profile_hash(base_profile(spec))
    profile = registered_profile(spec, reg, load_doc)
    rows = api.bench_rows(spec, profile, threads=threads, batch=batch, hardware_class=hardware_class, table=table)
    for row in rows:
        row["preserving"] = row["scope"] in ("node", "registered")
    try:
        consensus.enforce(profile, reg, run or node_run(spec), _acc_bound(spec))
        refused = None
    except ProfileChangeRefused as exc:
        refused = str(exc)
    plan = api.node_plan(spec, profile, reg, threads=threads, batch=batch, hardware_class=hardware_class,
                         table=table)
    return BenchReport(rows, plan, refused, profile, reg)


def measured_hardware_classes(table: str | None = None) -> set[str]:
    """Hardware classes in the raw table (a CSV read, no training)."""
    import csv

    with open(table or api.DEFAULT_TABLE, newline="") as f:
        return {row["hardware_class"] for row in csv.DictReader(f) if row.get("hardware_class")}


#: /health `selection_note` of a node started with `--no-metainf-select` (or VERINFER_NODE_METAINF_SELECT=0)
SELECTION_OFF = "metainf: own selection off (--no-metainf-select); running the registered profile"


class ProfileGuard:
    """Wraps a node's served-model lookup: models whose run would change the registered hash are dropped.

    `check(ids)` runs at daemon start-up; `filter` checks models first seen later. The node's own
    selection is computed in the background (training the selector and building the executor take ~7 s of
    CPU and ~325 MB per node); `select=False` (`--no-metainf-select`) skips it and runs the registered profile.
    """

    def __init__(self, chain: Any, models: Any, store: Any, run: Candidate | None = None,
                 hardware_class: str | None = None, select_in_background: bool = True, select: bool = True) -> None:
        self.chain, self.models, self.store = chain, models, store
        self.run = run
        self.hardware_class = hardware_class
        self.background = select_in_background
        self.select = select
        self.status: dict[bytes, ProfileStatus] = {}
        self._lock = threading.Lock()

    def _doc_loader(self, model_id: bytes) -> DocLoader:
        def load() -> bytes | None:
            cid = self.chain.artifacts_cid(model_id)
            return bytes(self.store.cat(cid, max_bytes=MAX_PROFILE_BYTES)) if cid else None
        return load

    def check(self, model_ids: set[bytes]) -> None:
        """Decide every not-yet-checked model (a model that cannot be loaded now is retried later)."""
        for mid in sorted(model_ids - self.status.keys()):
            try:
                info = self.chain.model(mid)
                spec = self.models.get(info.weights_cid)
                status, profile = check_model(mid, spec, bytes(info.execution_profile_hash), self._doc_loader(mid),
                                              self.run)
            except _DEFERRED as exc:  # unreachable model or document: retried later
                log.debug("profile check of 0x%s deferred: %s", mid.hex()[:16], exc)
                continue
            with self._lock:
                self.status[mid] = status
            if not status.serving:
                log.warning("%s", status.reason)
                continue
            log.info("model 0x%s: running %s under the registered execution profile", mid.hex()[:16], status.run)
            if profile is not None and not self.select:
                status.selected = consensus.registered_candidate(profile).method
                status.selection_note = SELECTION_OFF
            elif profile is not None:
                args = (status, spec, profile, bytes(info.execution_profile_hash))
                if self.background:
                    threading.Thread(target=self._select, args=args, daemon=True, name="metainf-select").start()
                else:
                    self._select(*args)

    def _select(self, status: ProfileStatus, spec: Any, profile: dict[str, Any], registered_hash: bytes) -> None:
        hw = self.hardware_class or cpu_info().hardware_class
        if hw not in measured_hardware_classes():
            # no training (seconds of CPU next to the worker) when the selector would fall back anyway
            status.selected = consensus.registered_candidate(profile).method
            status.selection_note = f"metainf: hardware class {hw} was never measured; running the registered profile"
            return
        try:
            plan = select(spec, profile, registered_hash, hardware_class=self.hardware_class)
        except Exception as exc:  # a selection failure must never stop serving under the registered profile
            status.selection_note = f"selection failed: {type(exc).__name__}: {exc}".splitlines()[0]
            return
        status.selected = plan.candidate.method
        status.selection_note = plan.notice
        if self.run is None:  # an operator's --exec-method is checked, not overridden
            try:
                fn, note = local_executor(spec, profile, plan)
            except Exception as exc:  # never stop serving under the registered profile
                fn, note = None, f"metainf: local run not applied: {type(exc).__name__}: {exc}".splitlines()[0]
            use_local_run(spec, fn)
            if fn is not None:
                status.run = plan.candidate.method
            status.selection_note = note or plan.notice
        if status.selection_note:
            log.info("model 0x%s: %s", status.model_id.hex()[:16], status.selection_note)
        if status.run == plan.candidate.method and plan.local:
            log.info("model 0x%s: executing the node's selection %s (threads %d) under the registered hash",
                     status.model_id.hex()[:16], plan.candidate.method, plan.candidate.threads)

    def filter(self, served: set[bytes]) -> set[bytes]:
        """`served` minus the refused models (checking any new ones first).

        With the reference run (no `run` given) refused models stay in the set: the worker's own
        per-request profile check refuses each of their requests with the same reason, and its
        request log shows them (tests/test_node_e2e.py). An operator-chosen run is invisible to
        that check, so its refused models are dropped here.
        """
        self.check(served)
        if self.run is None:
            return served
        return {m for m in served if m not in self.status or self.status[m].serving}

    def wrap(self, served_models: Callable[[], set[bytes]]) -> Callable[[], set[bytes]]:
        return lambda: self.filter(served_models())

    def health(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.as_dict() for s in self.status.values()]


def bench_model(ref: str, *, rpc_url: str | None = None, manifest: Any = None, ipfs_api: str | None = None,
                run: Candidate | None = None, threads: int = 1, batch: int = 1,
                hardware_class: str | None = None, table: str | None = None) -> BenchReport:
    """`node bench --model REF`: a registered 0x id (its registered profile) or a local model (reference profile)."""
    import re

    from verinfer.client.publish import load_model_ref, registered_model
    from verinfer.storage import open_store

    store = open_store(ipfs_api)
    if not re.fullmatch(r"0x[0-9a-fA-F]{64}", ref.strip()):
        spec, _ = load_model_ref(ref, store)
        return bench(spec, run=run, threads=threads, batch=batch, hardware_class=hardware_class, table=table)
    from verinfer.chain.manifest import Manifest
    from verinfer.chain.protocol import Protocol

    man = Manifest.load(manifest)
    protocol = Protocol.connect(rpc_url or man.rpc_url, manifest)
    model_id = bytes.fromhex(ref.strip()[2:])
    info, _ = registered_model(protocol, store, model_id)

    def load_doc() -> bytes | None:
        cid = protocol.models.artifacts_cid(model_id)
        return bytes(store.cat(cid, max_bytes=MAX_PROFILE_BYTES)) if cid else None

    try:
        return bench(info.spec, bytes(info.execution_profile_hash), load_doc, run=run, threads=threads, batch=batch,
                     hardware_class=hardware_class, table=table)
    except ProfileChangeRefused as exc:
        raise ConfigError(f"model {ref}: {exc}") from None
