"""The node-facing inference entry point: one `execute` for every model kind.

A node loads whatever a `weightsCid` names with `load_model`, checks the request's payload with
`decide` (the consensus rule: every input defect is the INVALID_INPUT outcome), and commits
its `output_hash`. The `profile_hash` names the computation so that nodes that could legitimately
differ (another runtime, another torch) are never compared as if they were the same.

Split inference is expressed by an `ExecutionPlan` of contiguous layer ranges; each range is the
unit one node runs (`run_stage`). Equivariant encryption (`verinfer.inference.ee`) needs no
runtime support: an encrypted spec is an ordinary spec, executed by the same stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from verinfer.errors import VerinferError
from verinfer.inference.lm import LanguageModelSpec, generate, lm_commitment, lm_profile_hash, load_lm_spec
from verinfer.inference.pipeline import (
    StageCheck,
    is_stage_check,
    parse_stage_check,
    rows_payload,
    stage_output_hash,
    tokens_hash,
)
from verinfer.models import reference
from verinfer.models.errors import InvalidInputError
from verinfer.models.gguf import LLM_FORMAT, LlmSpec, llm_commitment, llm_profile_hash, shard_commitment
from verinfer.models.gguf import load_spec as load_llm_spec
from verinfer.models.hashing import INVALID_INPUT_HASH, hash_vector
from verinfer.models.spec import (
    LM_FORMAT,
    MODEL_FORMAT,
    ModelSpec,
    ModelSpecError,
    parse_json_document,
    reference_profile_hash,
    weights_commitment,
)
from verinfer.models.spec import load as load_spec
from verinfer.models.tensor import decode_input, encode_output

Model = Union[ModelSpec, LanguageModelSpec, LlmSpec]


class ExecutionError(VerinferError):
    """The execution plan does not fit the model."""


@dataclass(frozen=True)
class ExecutionPlan:
    """How a model's layers are cut into stages for split inference (contiguous, covering all)."""

    layer_ranges: tuple[tuple[int, int], ...]

    @classmethod
    def whole(cls, spec: ModelSpec) -> "ExecutionPlan":
        """One stage with every layer (no split)."""
        return cls(((0, spec.num_layers),))

    @classmethod
    def split(cls, spec: ModelSpec, cuts: Sequence[int]) -> "ExecutionPlan":
        """Stages cut before each layer index in `cuts` (e.g. cuts=[1] -> [0,1), [1,n))."""
        bounds = [0, *sorted(set(cuts)), spec.num_layers]
        plan = cls(tuple((bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)))
        plan.validate(spec)
        return plan

    def validate(self, spec: ModelSpec) -> None:
        """Stages must be non-empty, contiguous, in order, and cover layers 0..n."""
        expected = 0
        for start, end in self.layer_ranges:
            if start != expected or end <= start:
                raise ExecutionError(f"plan {list(self.layer_ranges)} is not a contiguous cover of the layers")
            expected = end
        if expected != spec.num_layers:
            raise ExecutionError(f"plan covers layers 0..{expected}, model has {spec.num_layers}")


@dataclass(frozen=True)
class Outcome:
    """What an honest committee member commits to for one request (and what an auditor re-derives).

    `output_payload` is the encoded output tensor (None for INVALID_INPUT): its CID is what a node
    reveals and what an auditor/client fetches and re-hashes.
    """

    output_hash: int
    output_payload: bytes | None
    outputs: list[int] | None
    input_hash: int | None
    profile_hash: bytes
    invalid_reason: str | None = None
    inference_seconds: float = 0.0

    @property
    def is_invalid(self) -> bool:
        return self.output_hash == INVALID_INPUT_HASH

    @classmethod
    def invalid(cls, reason: str, profile: bytes = b"", input_hash: int | None = None) -> "Outcome":
        """The INVALID_INPUT outcome (also for defects found before decoding: missing or oversized input)."""
        return cls(INVALID_INPUT_HASH, None, None, input_hash, profile, reason)


def load_model(source: str | Path | bytes | Mapping[str, Any]) -> Model:
    """Load a model spec of any kind (`verinfer.model.v1` or `verinfer.lm.v1`) by its format tag."""
    if isinstance(source, Mapping):
        obj: Any = source
    else:
        if isinstance(source, (str, Path)):
            try:
                raw = Path(source).read_bytes()
            except OSError as exc:
                raise ModelSpecError(f"cannot read model spec {source}: {exc.strerror or exc}") from None
        else:
            raw = bytes(source)
        obj = parse_json_document(raw)
    fmt = obj.get("format") if isinstance(obj, Mapping) else None
    if fmt == LM_FORMAT:
        return load_lm_spec(obj)
    if fmt == LLM_FORMAT:  # sharded transformer LMs: executed through verinfer.inference.pipeline stages
        return load_llm_spec(obj)
    if fmt != MODEL_FORMAT:
        raise ModelSpecError(f"unknown model format {fmt!r} (expected {MODEL_FORMAT!r}, {LM_FORMAT!r} or {LLM_FORMAT!r})")
    return load_spec(obj)


def is_lm(model: Model) -> bool:
    return getattr(model, "kind", None) == "lm"


def profile_hash(model: Model) -> bytes:
    """The bytes32 execution profile registered with the model."""
    if is_lm(model):
        return lm_profile_hash(model)  # type: ignore[arg-type]
    if isinstance(model, LlmSpec):
        return llm_profile_hash(model)
    return reference_profile_hash()


def commitment(model: Model) -> int:
    """The registry commitment: Poseidon weights commitment for MLPs, keccak-based for LMs."""
    if is_lm(model):
        return lm_commitment(model)  # type: ignore[arg-type]
    if isinstance(model, LlmSpec):
        return llm_commitment(model)
    return weights_commitment(model)  # type: ignore[arg-type]


def run_stage(spec: ModelSpec, x: Sequence[int], layer_range: tuple[int, int]) -> list[int]:
    """One split-inference stage: the activations after layers [start, end)."""
    return reference.run_layers(spec, x, layer_range[0], layer_range[1])


def execute(model: Model, x: Sequence[int], plan: ExecutionPlan | None = None,
            lm_files: Path | None = None) -> list[int]:
    """The output vector that gets hashed: integer logits for MLPs, greedy token ids for LMs.

    `lm_files`: directory holding an LM's weight files (see `lm.fetch_lm_files`); default: shipped.
    """
    if isinstance(model, LlmSpec):
        raise ExecutionError(f"{model.name} is a sharded LLM: its layers run on stage nodes "
                             "(verinfer.inference.pipeline.run_request, driven by verinfer.node.lmstage)")
    if is_lm(model):
        if plan is not None:
            raise ExecutionError("language models run as one stage")
        return generate(model, x, lm_files)  # type: ignore[arg-type]
    spec: ModelSpec = model  # type: ignore[assignment]
    if plan is None:
        return reference.run(spec, x)
    plan.validate(spec)
    acts = list(x)
    for layer_range in plan.layer_ranges:
        acts = run_stage(spec, acts, layer_range)
    return acts


def admit(model: Model, payload: bytes, input_hash: int, *,
          model_id: bytes | None = None) -> list[int] | StageCheck | Outcome:
    """The input half of `decide`: the decoded input vector, or the INVALID_INPUT outcome with the reason.

    Also what a sharded LLM's head applies before driving its stages (`verinfer.node.lmstage`), so every
    model kind shares one input rule. For a sharded LLM a stage-check payload (a dispute's jury request,
    `pipeline.encode_stage_check`) is admitted as a `StageCheck` (`admit_stage_check`; needs `model_id`).
    """
    profile = profile_hash(model)
    if isinstance(model, LlmSpec) and is_stage_check(payload):
        return admit_stage_check(model, payload, input_hash, model_id)
    try:
        x = decode_input(payload, model)
        got_hash = hash_vector(x, model.input_bits)
    except (InvalidInputError, ValueError) as exc:
        return Outcome.invalid(f"input payload rejected: {exc}", profile)
    if got_hash != input_hash:
        return Outcome.invalid(
            f"input hash mismatch: payload hashes to {got_hash:#066x}, on-chain inputHash is {input_hash:#066x}",
            profile, got_hash,
        )
    return x


def admit_stage_check(spec: LlmSpec, payload: bytes, input_hash: int, model_id: bytes | None) -> StageCheck | Outcome:
    """THE stage-check input rule: a well-formed transcript (`pipeline.parse_stage_check`) of this model id, whose
    shard commitment is the spec's for its layers and whose transcript hash is the on-chain inputHash."""
    profile = profile_hash(spec)
    if model_id is None:
        raise ExecutionError("a stage-check payload is judged against the request's model id; none was given")
    try:
        check = parse_stage_check(payload, int(spec.config["d_model"]), spec.num_layers, spec.max_context)
    except InvalidInputError as exc:
        return Outcome.invalid(f"stage-check payload rejected: {exc}", profile)
    ctx = check.context
    if ctx.model_id != bytes(model_id):
        return Outcome.invalid(f"stage check names model 0x{ctx.model_id.hex()[:16]}…, the request is for "
                               f"0x{bytes(model_id).hex()[:16]}…", profile, check.input_hash)
    want = shard_commitment(spec, ctx.lo, ctx.hi)
    if ctx.shard != want:
        return Outcome.invalid(f"stage check names shard 0x{ctx.shard.hex()[:16]}… for layers {ctx.lo}:{ctx.hi}, "
                               f"the spec's is 0x{want.hex()[:16]}…", profile, check.input_hash)
    if check.input_hash != input_hash:
        return Outcome.invalid(f"input hash mismatch: stage-check transcript hashes to {check.input_hash:#066x}, "
                               f"on-chain inputHash is {input_hash:#066x}", profile, check.input_hash)
    return check


def decide(model: Model, weights: Path | None, payload: bytes, input_hash: int, *,
           run: Callable[[Sequence[int]], Sequence[int]] | None = None, model_id: bytes | None = None,
           stage_run: Callable[[StageCheck], Any] | None = None) -> Outcome:
    """THE consensus rule: input payload -> INVALID_INPUT or (output hash, output payload).

    Nodes commit what this returns and auditors re-derive it; it is the only place the rule lives.
    Any defect of the payload (not a tensor, wrong dtype/shape, values out of range, hash differing
    from the on-chain `input_hash`, rejected by the model such as a token id outside the vocabulary)
    gives INVALID_INPUT. `weights`: directory with an LM's weight files (None: MLPs / shipped files).
    Defects found before a payload exists (not retrievable, too large, CID mismatch) are the caller's:
    it reports them with `Outcome.invalid`. `run`: an output-preserving executor for `model` (a node's
    MetaInf selection, `verinfer.node.profile`; for a sharded LLM, which `execute` cannot run, the
    auditor's single-process `pipeline.run_local`) used instead of the reference `execute`.
    A sharded LLM's stage-check payload (`admit_stage_check`) is re-run by `stage_run` (layers lo..hi over the
    transcript, `pipeline.replay_stage_check`); its output hash is `pipeline.stage_output_hash` of the rows.
    """
    profile = profile_hash(model)
    admitted = admit(model, payload, input_hash, model_id=model_id)
    if isinstance(admitted, Outcome):
        return admitted
    if isinstance(admitted, StageCheck):
        if stage_run is None:
            raise ExecutionError("a stage-check payload needs an executor for its layers (stage_run)")
        t0 = time.perf_counter()
        rows = stage_run(admitted)
        return Outcome(stage_output_hash(rows), rows_payload(rows), None, admitted.input_hash, profile, None,
                       time.perf_counter() - t0)
    x = admitted
    got_hash = hash_vector(x, model.input_bits)
    t0 = time.perf_counter()
    try:
        outputs = [int(v) for v in (run(x) if run is not None else execute(model, x, None, weights))]
    except InvalidInputError as exc:
        return Outcome.invalid(f"input rejected by the model: {exc}", profile, got_hash)
    seconds = time.perf_counter() - t0
    return Outcome(output_hash(model, outputs), encode_output(outputs, model.output_bits), outputs,
                   got_hash, profile, None, seconds)


def output_hash(model: Model, outputs: Sequence[int]) -> int:
    """The hash a committee reveals for `outputs`: a sharded LLM's is `pipeline.tokens_hash` (what its heads
    reveal), every other model's `hash_vector(outputs, output_bits)`."""
    if isinstance(model, LlmSpec):
        return tokens_hash(outputs)
    return hash_vector(outputs, model.output_bits)
