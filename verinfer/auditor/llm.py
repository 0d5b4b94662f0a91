"""Claims specific to a sharded LLM (`verinfer.llm.v1`): the registered shard layout, the tensors behind the
spec, the single-process re-execution, and what each committee head revealed.

A sharded request is executed by heads that drive stage nodes; the chain records only each head's
revealed tokens hash. The integer profile is bit-exact wherever a layer runs, so the auditor re-runs
the whole model in one process (`pipeline.run_local`, the same decoding loop as the heads'
`run_pipeline`) under the nodes' own consensus rule (`runtime.decide`: `admit` + `tokens_hash`) and
judges every head's reveal against it. Stage faults (a lying or stalled stage) are not on-chain:
heads keep them in their node logs and `lm-faults.jsonl`; the audit says so rather than guessing.
"""

from __future__ import annotations

import struct
import time
from typing import Any, Callable, Sequence

import numpy as np
from web3 import Web3

from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import MAX_OUTPUT_BYTES, AuditContext, AuditEnv, short
from verinfer.chain import court
from verinfer.chain.protocol import Status
from verinfer.errors import VerinferError
from verinfer.inference.llama_int import IntModel
from verinfer.inference.pipeline import StageCheck, replay_stage_check, run_local, stage_output_hash
from verinfer.models import gguf
from verinfer.models.errors import InvalidInputError
from verinfer.models.hashing import INVALID_INPUT_HASH
from verinfer.models.tensor import decode_tensor
from verinfer.storage.errors import StorageError, StoreUnavailableError

STAGE_FAULTS_NOTE = ("stage faults a head saw are in its node log and <state-dir>/lm-faults.jsonl; only a signed lie "
                     "it disputed reaches the chain (a StageCourt jury request, auditable like this one); the audit "
                     "judges each head by its reveal")
STAGE_CHECK_NOTE = "stage check re-run in one process:"


def is_llm(spec: Any) -> bool:
    return isinstance(spec, gguf.LlmSpec)


class _NamingStore:
    """Pass-through store that remembers the last CID read, so a failed fetch names its tensor."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.last = ""

    def cat(self, cid: str, max_bytes: int | None = None) -> bytes:
        self.last = cid
        return self.store.cat(cid, max_bytes=max_bytes)

    def cat_json(self, cid: str, max_bytes: int | None = None) -> Any:
        self.last = cid
        return self.store.cat_json(cid, max_bytes=max_bytes)


def check_llm_model(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    """model.layout (artifactsCid document = shardLayoutHash, per-shard commitments from the spec) and
    model.tensors (every tensor and the tokenizer fetched by CID, each tensor's sha256 = the spec's)."""
    spec: gguf.LlmSpec = ctx.spec
    m = ctx.model
    ctx.notes.append(STAGE_FAULTS_NOTE)
    try:
        cid = env.protocol.models.artifacts_cid(m.model_id)
        layout = gguf.registered_layout(cid, env.store, m.shard_layout_hash, spec)
    except StoreUnavailableError:
        raise
    except (VerinferError, StorageError, ValueError) as exc:
        layout_claim = Claim("model", "model.layout", Verdict.FAIL, f"shard layout: {exc}")
    else:
        layout_claim = Claim("model", "model.layout", Verdict.PASS,
                             f"layout {cid} hashes to shardLayoutHash {short(m.shard_layout_hash)}; stages "
                             + ", ".join(f"{a}:{b}" for a, b in layout.layer_ranges)
                             + " with shard commitments re-derived from the spec's tensors")
    src = _NamingStore(env.store)
    names = {e.cid: e.name for e in spec.tensors}
    names[spec.tokenizer_cid or ""] = "tokenizer"
    t0 = time.perf_counter()
    try:
        ck = gguf.fetch(spec, src)
    except StoreUnavailableError:
        raise
    except (StorageError, VerinferError, ValueError) as exc:
        what = f"{names.get(src.last, 'object')} ({src.last})" if src.last else "a tensor"
        ctx.llm_unavailable = f"model tensors unavailable: {what}: {exc}"
        tensors = Claim("model", "model.tensors", Verdict.FAIL, f"{what}: {exc}")
    else:
        ctx.llm_checkpoint = ck
        size = sum(len(t.data) for t in ck.tensors.values())
        tensors = Claim("model", "model.tensors", Verdict.PASS,
                        f"{len(ck.tensors)} tensors ({size / 1e6:.1f} MB) and the tokenizer fetched by CID; each "
                        f"tensor's sha256 = the spec's ({time.perf_counter() - t0:.1f}s)")
    return [layout_claim, tensors]


def runner(ctx: AuditContext) -> Callable[[Sequence[int]], Sequence[int]] | None:
    """The single-process executor `runtime.decide` runs for an admitted prompt (None: tensors unavailable).

    The IntModel (every layer, ~1 GB of prepared operands) is built only once an input is admitted."""
    ck = ctx.llm_checkpoint
    if ck is None:
        return None
    spec = ctx.spec

    def run(ids: Sequence[int]) -> list[int]:
        t0 = time.perf_counter()
        model = IntModel(ck)
        t1 = time.perf_counter()
        tokens = run_local(spec, model, ids)
        ctx.llm_timing = (t1 - t0, time.perf_counter() - t1, len(ids))
        return tokens

    return run


def stage_runner(ctx: AuditContext) -> Callable[[StageCheck], np.ndarray] | None:
    """The executor `runtime.decide` runs for a stage-check payload (a StageCourt jury request): layers lo..hi of the
    fetched checkpoint over the transcript, `pipeline.replay_stage_check` — the function the jury heads run."""
    ck = ctx.llm_checkpoint
    if ck is None:
        return None

    def run(check: StageCheck) -> np.ndarray:
        lo, hi = check.context.lo, check.context.hi
        t0 = time.perf_counter()
        model = IntModel(ck, (lo, hi), globals_=False)
        t1 = time.perf_counter()
        rows = replay_stage_check(model, check)
        ctx.notes.append(f"{STAGE_CHECK_NOTE} layers {lo}:{hi} over {len(check.frames)} FORWARD(s), "
                         f"{sum(r.shape[0] for _, r in check.frames)} positions (built in {t1 - t0:.1f}s, re-run in "
                         f"{time.perf_counter() - t1:.1f}s)")
        return rows

    return run


def describe_tokens(ctx: AuditContext, tokens: Sequence[int]) -> str:
    """Token ids and, when the tokenizer was fetched, their text (for the report)."""
    ck = ctx.llm_checkpoint
    ids = f"{len(tokens)} token(s) {list(tokens)}"
    if ck is None or not ck.tokenizer:
        return ids
    try:
        return f"{ids} = {gguf.BpeTokenizer(ck.tokenizer).decode(list(tokens))!r}"
    except (VerinferError, ValueError, KeyError):
        return ids


def _tokens_of(env: AuditEnv, cid: str) -> list[int] | str:
    try:
        return [int(v) for v in decode_tensor(env.store.cat(cid, max_bytes=MAX_OUTPUT_BYTES)).data]
    except StoreUnavailableError:
        raise
    except (StorageError, InvalidInputError, ValueError) as exc:
        return f"payload {cid} unreadable ({exc})"


def check_reveals(env: AuditEnv, ctx: AuditContext) -> Claim:
    """output.reveals: each head's revealed tokens hash against the re-derived one, and the market's verdict on it.

    FAIL when the market slashed a head that revealed the re-derived result, or (settled outcomes) paid one
    that revealed something else. Each wrong reveal's tokens are fetched by CID and the first difference named."""
    r = ctx.request
    if ctx.outcome is None:
        return Claim("output", "output.reveals", Verdict.NA,
                     ctx.llm_unavailable or ctx.input_defect or "nothing re-derived to judge the reveals against")
    want = ctx.outcome.output_hash
    ref = ctx.outcome.outputs
    market = env.protocol.market
    revealed: dict[str, tuple[int, str]] = {}
    for e in ctx.events["Revealed"]:
        revealed[Web3.to_checksum_address(e.args["node"])] = (int.from_bytes(bytes(e.args["outputHash"]), "big"),
                                                               str(e.args["outputCid"]))
    settled = r.status in (Status.ACCEPTED, Status.INVALID_INPUT)
    rows, problems = [], []
    for n in market.get_committee(r.request_id, ctx.view_block):
        n = Web3.to_checksum_address(n)
        s = market.get_member_settlement(r.request_id, n, ctx.view_block)
        fate = "slashed" if s.slashed else "paid" if s.paid else "neither paid nor slashed"
        if n not in revealed:
            rows.append(f"{short(n)} did not reveal ({fate})")
            continue
        h, cid = revealed[n]
        right = h == want
        if right:
            what = "INVALID_INPUT" if h == INVALID_INPUT_HASH else f"{short(h)}"
            rows.append(f"{short(n)} revealed {what} = re-executed: right ({fate})")
        else:
            rows.append(f"{short(n)} revealed {_wrong(env, ctx, h, cid, ref)}: WRONG ({fate})")
        if right and s.slashed:
            problems.append(f"{short(n)} revealed the re-executed result but was slashed")
        if settled and not right and s.paid:
            problems.append(f"{short(n)} revealed another result but was paid")
    detail = "; ".join(rows)
    if problems:
        return Claim("output", "output.reveals", Verdict.FAIL, "; ".join(problems) + f" — {detail}")
    return Claim("output", "output.reveals", Verdict.PASS, detail)


def _wrong(env: AuditEnv, ctx: AuditContext, h: int, cid: str, ref: list[int] | None) -> str:
    if h == INVALID_INPUT_HASH:
        return "INVALID_INPUT"
    if not cid:
        return f"{short(h)} (no output CID)"
    got = _tokens_of(env, cid)
    if isinstance(got, str):
        return f"{short(h)}, {got}"
    if ref is None:
        return f"{short(h)}, {describe_tokens(ctx, got)}"
    i = next((i for i, (a, b) in enumerate(zip(got, ref, strict=False)) if a != b), min(len(got), len(ref)))
    at = f"token {i}: {got[i] if i < len(got) else 'end'} instead of {ref[i] if i < len(ref) else 'end'}"
    return f"{short(h)}, {describe_tokens(ctx, got)}, differs at {at}"


# ------------------------------------------------------------------ StageCourt jury requests (stage checks)

def is_stage_check(ctx: AuditContext) -> bool:
    """The request's input was a stage-check transcript (a StageCourt jury request), admitted and re-run."""
    o = ctx.outcome
    return is_llm(ctx.spec) and o is not None and not o.is_invalid and o.outputs is None


def check_stage_check_output(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    """output.payload (the settled rows hash to outputHash by `stage_output_hash`), output.reexecution (the
    auditor's replay of layers lo..hi, `replay_stage_check` under `runtime.decide`, gives the settled hash),
    output.reveals (each juror's reveal judged), court.verdict (the StageCourt's ruling matches the settled hash)."""
    r = ctx.request
    want = int.from_bytes(bytes(r.output_hash), "big")
    got = ctx.outcome.output_hash
    try:
        raw = env.store.cat(ctx.output_cid, max_bytes=MAX_OUTPUT_BYTES) if ctx.output_cid else b""
        T, d = struct.unpack_from(">4xII", raw)
        if len(raw) != 12 + 8 * T * d:
            raise ValueError(f"{len(raw)} bytes for {T} x {d} rows")
        h = stage_output_hash(np.frombuffer(raw, dtype="<i8", offset=12).reshape(T, d))
    except StoreUnavailableError:
        raise
    except (StorageError, ValueError, struct.error) as exc:
        payload = Claim("output", "output.payload", Verdict.FAIL, f"settled output {ctx.output_cid or '(none)'}: {exc}")
    else:
        payload = Claim("output", "output.payload", Verdict.PASS if h == want else Verdict.FAIL,
                        f"{ctx.output_cid}: {T} x {d} stage output rows hash to {short(h)}; outputHash {short(want)}")
    reexec = Claim("output", "output.reexecution", Verdict.PASS if got == want else Verdict.FAIL,
                   f"{next((n for n in ctx.notes if n.startswith(STAGE_CHECK_NOTE)), STAGE_CHECK_NOTE)} (the jury heads' "
                   f"replay): {short(got)} {'=' if got == want else '≠'} settled {short(want)}")
    return [payload, reexec, check_reveals(env, ctx), _court_verdict(env, ctx, want)]


def _court_verdict(env: AuditEnv, ctx: AuditContext, settled: int) -> Claim:
    if "StageCourt" not in env.protocol.manifest.addresses:
        return Claim("output", "court.verdict", Verdict.NA, "this deployment has no StageCourt")
    c = court.court_for(env.protocol)
    did = c.dispute_of_request(ctx.request.request_id)
    if did == 0:
        return Claim("output", "court.verdict", Verdict.NA, "a stage check nobody disputed through the StageCourt")
    d = c.get_dispute(did)
    claimed = int.from_bytes(d.claimed_output_hash, "big")
    expect = court.Verdict.STAGE_RIGHT if claimed == settled else court.Verdict.STAGE_WRONG
    ok = d.state == expect
    return Claim("output", "court.verdict", Verdict.PASS if ok else Verdict.FAIL,
                 f"dispute {did} against {short(d.stage)} (layers {d.lo}:{d.hi}): receipt claimed {short(claimed)}, "
                 f"jury settled {short(settled)} → {d.state.name}" + ("" if ok else f", expected {expect.name}"))
