"""Turn a request (model + input CID + on-chain input hash) into the output hash the node commits.

Every way an input can be bad — missing after retries, too large, not a tensor payload, wrong
shape, out-of-range values, hash differing from the on-chain `inputHash` — yields the
INVALID_INPUT outcome (architecture §1.1/§1.3) rather than an exception, because honest nodes
must agree on it for the requester to be refunded and no node should stall on garbage.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from verinfer.constants import INVALID_INPUT_HASH
from verinfer.inference import runtime
from verinfer.models import spec as model_spec
from verinfer.models.hashing import hash_vector
from verinfer.models.tensor import encode_output
from verinfer.storage.errors import ContentMismatchError, ContentNotFoundError, ContentTooLargeError, InvalidCidError

log = logging.getLogger("verinfer.node")

MAX_INPUT_BYTES = 1 << 20  # architecture §1.3


@dataclass(frozen=True)
class Outcome:
    """What the node will commit: a field element (or INVALID_INPUT) and the output payload's CID."""

    output_hash: int
    output_cid: str
    outputs: list[int] | None = None
    invalid_reason: str | None = None
    inference_seconds: float = 0.0

    @property
    def is_invalid(self) -> bool:
        return self.output_hash == INVALID_INPUT_HASH

    @classmethod
    def invalid(cls, reason: str) -> "Outcome":
        """The INVALID_INPUT outcome with the reason the node logs (nothing is stored for it)."""
        return cls(output_hash=INVALID_INPUT_HASH, output_cid="", invalid_reason=reason)


class ModelCache:
    """Models by weights CID: memory, then `<state-dir>/models/<cid>.json`, then the store.

    A CID names immutable content, so a cached spec never goes stale; the disk copy lets a
    restarted node serve immediately even if the store is slow. Any kind the runtime knows
    (integer MLPs, language models) loads; an LM's weight files are fetched by CID next to it.
    """

    def __init__(self, store: Any, directory: Path) -> None:
        self.store = store
        self.directory = Path(directory)
        self._mem: dict[str, Any] = {}
        self._lm_dirs: dict[str, Path] = {}
        self._lock = threading.RLock()  # requests advance in parallel threads; load each model once

    def get(self, weights_cid: str) -> Any:
        with self._lock:
            return self._get(weights_cid)

    def _get(self, weights_cid: str) -> Any:
        if weights_cid in self._mem:
            return self._mem[weights_cid]
        path = self.directory / f"{_safe(weights_cid)}.json"
        raw: bytes | None = None
        if path.exists():
            raw = path.read_bytes()
        if raw is None:
            raw = self.store.cat(weights_cid, max_bytes=model_spec.MAX_SPEC_BYTES)
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(raw)
            tmp.replace(path)
        model = _load_model(raw)
        self._mem[weights_cid] = model
        return model

    def lm_files(self, weights_cid: str) -> Path | None:
        """Directory with a language model's weight files (fetched by CID, sha256-checked); None for MLPs."""
        model = self.get(weights_cid)
        if getattr(model, "kind", None) != "lm":
            return None
        with self._lock:
            return self._lm_dir(model, weights_cid)

    def _lm_dir(self, model: Any, weights_cid: str) -> Path:
        if weights_cid not in self._lm_dirs:
            from verinfer.inference.lm import fetch_lm_files

            self._lm_dirs[weights_cid] = fetch_lm_files(model, self.store, self.directory / f"lm-{_safe(weights_cid)}")
        return self._lm_dirs[weights_cid]


def _load_model(raw: bytes) -> Any:
    """Any model kind via the inference runtime (the one loader node and auditor share)."""
    return runtime.load_model(raw)


def profile_hash(model: Any) -> bytes:
    """The execution profile this node runs for `model` (what the registry's profile hash must name)."""
    return runtime.profile_hash(model)


#: id(spec) -> (spec, run): the node's output-preserving MetaInf selection (installed by verinfer.node.profile)
_LOCAL_RUNS: dict[int, tuple[Any, Callable[[Sequence[int]], Sequence[int]]]] = {}


def use_local_run(spec: Any, run: Callable[[Sequence[int]], Sequence[int]] | None) -> None:
    """Execute `spec` with `run` (proved output-preserving by the caller); None: back to the reference."""
    if run is None:
        _LOCAL_RUNS.pop(id(spec), None)
    else:
        _LOCAL_RUNS[id(spec)] = (spec, run)  # holding spec keeps its id from being reused


def _safe(cid: str) -> str:
    return "".join(c for c in cid if c.isalnum())[:128] or "cid"


def fetch_input(store: Any, cid: str, *, timeout_s: float, sleep: Callable[[float], None] = time.sleep) -> bytes:
    """`cat` the input with a size guard, retrying "not found" until `timeout_s` (content may still be propagating).

    Raises the store's ContentNotFoundError after the timeout, ContentTooLargeError / ContentMismatchError at once.
    """
    deadline = time.monotonic() + max(timeout_s, 0.0)
    delay = 0.2
    while True:
        try:
            return store.cat(cid, max_bytes=MAX_INPUT_BYTES)
        except ContentNotFoundError:
            if time.monotonic() + delay > deadline:
                raise
            sleep(delay)
            delay = min(delay * 2, 2.0)


def fetch_payload(store: Any, input_cid: str, fetch_timeout_s: float) -> bytes | Outcome:
    """The input payload, or the INVALID_INPUT outcome for a defect found before a payload exists.

    Not found within the budget, too large, content not matching its CID, malformed CID: every model kind
    (the MLP path here, the LLM head in `verinfer.node.lmstage`) turns these into the same outcome.
    """
    try:
        return fetch_input(store, input_cid, timeout_s=fetch_timeout_s)
    except ContentNotFoundError:
        return Outcome.invalid(f"input {input_cid} not found within {fetch_timeout_s:.0f}s")
    except ContentTooLargeError:
        return Outcome.invalid(f"input {input_cid} exceeds {MAX_INPUT_BYTES} bytes")
    except ContentMismatchError:
        return Outcome.invalid(f"input {input_cid} content does not match its CID")
    except (InvalidCidError, ValueError) as exc:  # malformed CID string
        return Outcome.invalid(f"input CID {input_cid!r} is malformed: {exc}")


def compute(
    store: Any,
    spec: Any,
    input_cid: str,
    input_hash: int,
    *,
    fetch_timeout_s: float = 10.0,
    corrupt_output: bool = False,
    lm_files: Path | None = None,
    model_id: bytes | None = None,
    request_id: int | None = None,
) -> Outcome:
    """Fetch, then `runtime.decide` (the one input→outcome rule), then store the output payload.

    Defects found before a payload exists (not found, too large, CID mismatch) are INVALID_INPUT here;
    every other defect is decided by `runtime.decide`, the function the auditor re-runs.

    `model_id` / `request_id` are unused here: `verinfer.node.lmstage.LlmHead.compute`, which wraps this
    function, needs them to find an LLM's stage nodes on-chain and to label stage-fault evidence.

    `corrupt_output` is the `--fault wrong-output` injector: the node computes honestly, then
    perturbs one logit before hashing, like a buggy or lazy node would.
    """

    payload = fetch_payload(store, input_cid, fetch_timeout_s)
    if isinstance(payload, Outcome):
        return payload
    local = _LOCAL_RUNS.get(id(spec))
    outcome = runtime.decide(spec, lm_files, payload, input_hash, run=local[1] if local and local[0] is spec else None)
    if outcome.is_invalid:
        return Outcome.invalid(outcome.invalid_reason or "input rejected")
    outputs = list(outcome.outputs or [])
    out_hash, out_payload = outcome.output_hash, outcome.output_payload
    if corrupt_output:
        outputs[0] = outputs[0] + 1 if outputs[0] < (1 << (spec.output_bits - 1)) - 1 else outputs[0] - 1
        out_hash, out_payload = hash_vector(outputs, spec.output_bits), encode_output(outputs, spec.output_bits)
    assert out_payload is not None  # a valid outcome always carries its encoded output
    cid = store.add(out_payload)
    return Outcome(output_hash=out_hash, output_cid=cid, outputs=outputs, inference_seconds=outcome.inference_seconds)
