"""The consensus rule for execution methods: who may choose what, and the hash never moves.

Nodes agree on output hashes, and the registered execution profile (its keccak is the bytes32 in
ModelRegistry) names the computation. So:

- A method is *output-preserving* for a registered profile when it provably yields the same
  outputs bit for bit. For the integer reference runtime that is `numpy_int64` (the reference),
  and float kernels whose mantissa holds every partial sum: float32 (torch or ONNX Runtime) when
  the model's static accumulator bound is below 2^24, float64 below 2^53, at any thread count and
  batch size (integers below the mantissa limit add exactly in any order). For a float profile
  only the registered (method, threads, batch) itself is output-preserving: another summation
  order, a quantised kernel, ONNX Runtime, torch.compile or a state cache may flip an argmax.
- A node may pick any output-preserving method locally; the profile (and its hash) stays the
  registered one. Anything else is a publisher's choice at publish time (`publisher_profile`),
  registered as a new profile for a hardware class.
- A node asked to run a method that is not output-preserving refuses (`ProfileChangeRefused`):
  running it would mean serving under a profile whose hash differs from the registered one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from verinfer.errors import VerinferError
from verinfer.metainf.methods import METHODS, ORT_VERSION
from verinfer.models.spec import REFERENCE_RUNTIME, execution_profile_hash

#: float kernels that are exact on integers while every partial sum fits the mantissa (bits).
EXACT_FLOAT_MANTISSA = {"torch_fp32": 24, "ort_fp32": 24, "torch_fp64": 53}
METHOD_FIELDS = ("method", "kv_cache", "threads", "batch", "hardware_class", "onnxruntime")


class ProfileChangeRefused(VerinferError):
    """Running this method would change the registered execution profile's hash: the node refuses."""


@dataclass(frozen=True)
class Candidate:
    """An execution choice: method (with `+kv` for the state cache), intra-op threads, batch size."""

    method: str
    threads: int = 1
    batch: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        if self.threads < 1 or self.batch < 1:
            raise ValueError("threads and batch must be >= 1")


@dataclass(frozen=True)
class Verdict:
    """Whether a candidate is output-preserving for a profile, who may choose it, and why."""

    preserving: bool
    scope: str  # "node" (a node may choose it locally) or "publisher" (only at publish time)
    reason: str


def profile_hash(profile: Mapping[str, Any]) -> bytes:
    """bytes32 of a profile dict (same definition as `verinfer.models.spec.execution_profile_hash`)."""
    params = {k: v for k, v in profile.items() if k not in ("kind", "runtime", "kernels")}
    return execution_profile_hash(profile["kind"], profile["runtime"], profile["kernels"], **params)


def is_integer_profile(profile: Mapping[str, Any]) -> bool:
    """Profiles of the integer reference runtime (every `mlp` spec) fix integer semantics."""
    return profile.get("runtime") == REFERENCE_RUNTIME


def registered_candidate(profile: Mapping[str, Any]) -> Candidate:
    """The (method, threads, batch) a registered profile prescribes (defaults: the reference run)."""
    default = "numpy_int64" if is_integer_profile(profile) else "torch_fp32"
    method = str(profile.get("method", default)) + ("+kv" if profile.get("kv_cache") else "")
    return Candidate(method, int(profile.get("threads", 1)), int(profile.get("batch", 1)))


def output_preserving(profile: Mapping[str, Any], candidate: Candidate, acc_bound: int | None = None) -> Verdict:
    """Is `candidate` bit-exact with the registered profile? (`acc_bound`: integer models' static bound.)"""
    if is_integer_profile(profile):
        m = candidate.method
        if m == "numpy_int64":
            return Verdict(True, "node", "the int64 reference itself (exact at any threads/batch)")
        if m in EXACT_FLOAT_MANTISSA:
            bits = EXACT_FLOAT_MANTISSA[m]
            if acc_bound is None:
                return Verdict(False, "publisher", f"{m}: no accumulator bound known, exactness unproven")
            if acc_bound < 1 << bits:
                return Verdict(True, "node", f"{m}: every partial sum <= {acc_bound} < 2^{bits}, exact in any order")
            return Verdict(False, "publisher", f"{m}: accumulator bound {acc_bound} >= 2^{bits}, may round")
        return Verdict(False, "publisher", f"{m}: quantised/approximate kernel changes integer outputs")
    reg = registered_candidate(profile)
    if candidate == reg:
        return Verdict(True, "node", "the registered float profile itself")
    diffs = [f"{k} {getattr(candidate, k)} != registered {getattr(reg, k)}"
             for k in ("method", "threads", "batch") if getattr(candidate, k) != getattr(reg, k)]
    return Verdict(False, "publisher", "float numerics change: " + "; ".join(diffs))


def publisher_profile(base: Mapping[str, Any], candidate: Candidate, hardware_class: str) -> dict[str, Any]:
    """The profile a publisher registers for `candidate` on `hardware_class` (base if nothing changes).

    Integer profiles never change: their semantics are the integers, and exact fast kernels are a
    node's local choice. For float profiles the default run (torch_fp32, 1 thread, batch 1) keeps
    the base profile byte for byte, so existing registrations keep their hash.
    """
    if is_integer_profile(base) or candidate == registered_candidate(base):
        return dict(base)
    return _with_method(base, candidate, hardware_class)


def _with_method(base: Mapping[str, Any], candidate: Candidate, hardware_class: str) -> dict[str, Any]:
    profile = {k: v for k, v in base.items() if k not in METHOD_FIELDS}
    method = candidate.method.removesuffix("+kv")
    profile.update(method=method, kv_cache=candidate.method.endswith("+kv"), threads=candidate.threads,
                   batch=candidate.batch, hardware_class=hardware_class)
    if method.startswith("ort_"):
        profile["onnxruntime"] = ORT_VERSION
    return profile


def effective_profile(profile: Mapping[str, Any], candidate: Candidate, acc_bound: int | None = None) -> dict:
    """The profile a node would actually be executing if it ran `candidate`."""
    if output_preserving(profile, candidate, acc_bound).preserving:
        return dict(profile)
    return _with_method(profile, candidate, str(profile.get("hardware_class", "any")))


@dataclass(frozen=True)
class NodePlan:
    """What a node runs for a model: always under the registered profile hash."""

    candidate: Candidate
    profile_hash: bytes
    local: bool  # True: the node's own output-preserving choice; False: the registered profile's
    notice: str | None  # one line when the node fell back to the registered profile


def check_registered(profile: Mapping[str, Any], registered_hash: bytes) -> None:
    """The profile document must be the one registered (else the node cannot know what to run)."""
    if profile_hash(profile) != bytes(registered_hash):
        raise ProfileChangeRefused("the execution profile does not hash to the registered profile hash")


def plan_node(profile: Mapping[str, Any], registered_hash: bytes, selection: Candidate | None,
              acc_bound: int | None = None, notice: str | None = None) -> NodePlan:
    """Apply a node's local selection where it is output-preserving, else the registered profile.

    The returned plan's profile_hash is the registered hash in every case (tests assert it).
    """
    check_registered(profile, registered_hash)
    reg = registered_candidate(profile)
    if selection is None:
        return NodePlan(reg, bytes(registered_hash), False, notice or "no local selection: running the registered profile")
    verdict = output_preserving(profile, selection, acc_bound)
    if not verdict.preserving:
        return NodePlan(reg, bytes(registered_hash), False,
                        f"local choice {selection.method} is a publisher's choice ({verdict.reason}): "
                        "running the registered profile")
    return NodePlan(selection, bytes(registered_hash), selection != reg, notice)


def enforce(profile: Mapping[str, Any], registered_hash: bytes, run: Candidate, acc_bound: int | None = None) -> bytes:
    """A node about to serve with `run`: returns the (unchanged) registered hash, or refuses."""
    check_registered(profile, registered_hash)
    eff = profile_hash(effective_profile(profile, run, acc_bound))
    if eff != bytes(registered_hash):
        verdict = output_preserving(profile, run, acc_bound)
        raise ProfileChangeRefused(f"refusing to serve with {run.method} (threads {run.threads}, batch {run.batch}): "
                                   f"{verdict.reason}; it would change the registered profile hash")
    return eff
