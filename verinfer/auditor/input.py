"""The input claim: the payload behind inputCid, judged by `runtime.decide` (the nodes' own consensus rule)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from verinfer.auditor import llm
from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import MAX_INPUT_BYTES, AuditContext, AuditEnv, short
from verinfer.chain.protocol import Status
from verinfer.inference.lm import fetch_lm_files
from verinfer.inference.runtime import Outcome, admit, decide, is_lm
from verinfer.storage.errors import ContentMismatchError, ContentNotFoundError, ContentTooLargeError, InvalidCidError


def _input_defect(env: AuditEnv, ctx: AuditContext) -> str | None:
    """None if the input is valid (and sets ctx.outcome / ctx.reference_output), else why it is invalid.

    The verdict comes from `runtime.decide`, the same function honest nodes commit from."""

    r = ctx.request
    try:
        payload = env.store.cat(ctx.input_cid, max_bytes=MAX_INPUT_BYTES)
    except ContentNotFoundError:
        return f"input {ctx.input_cid} is not retrievable from this store"
    except ContentTooLargeError:
        return f"input {ctx.input_cid} exceeds {MAX_INPUT_BYTES} bytes"
    except ContentMismatchError as exc:
        return f"input {ctx.input_cid}: content does not match its CID ({exc})"
    except (InvalidCidError, ValueError) as exc:
        return f"input CID {ctx.input_cid!r} is malformed: {exc}"
    want = int.from_bytes(bytes(r.input_hash), "big")
    if llm.is_llm(ctx.spec):  # sharded LLM: the whole model in one process (bit-exact with the heads' stages)
        run = llm.runner(ctx)
        model_id = bytes(ctx.model.model_id)  # a stage-check payload (StageCourt jury request) names its model
        if run is None:  # tensors unavailable: the input can still be judged, the output not re-derived
            admitted = admit(ctx.spec, payload, want, model_id=model_id)
            if isinstance(admitted, Outcome):
                ctx.outcome = admitted
                return admitted.invalid_reason or "invalid input"
            return None
        outcome = decide(ctx.spec, None, payload, want, run=run, model_id=model_id, stage_run=llm.stage_runner(ctx))
    elif is_lm(ctx.spec):

        with tempfile.TemporaryDirectory(prefix="verinfer-audit-lm-") as tmp:
            outcome = decide(ctx.spec, fetch_lm_files(ctx.spec, env.store, Path(tmp)), payload, want)
    else:
        outcome = decide(ctx.spec, None, payload, want)
    ctx.outcome = outcome
    if outcome.is_invalid:
        return outcome.invalid_reason or "invalid input"
    ctx.reference_output = outcome.outputs
    return None


def check_input(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    r = ctx.request
    if ctx.spec is None:
        return [Claim("input", "input", Verdict.NA, "model spec unavailable: cannot decode the input")]
    defect = ctx.input_defect = _input_defect(env, ctx)
    if r.status == Status.INVALID_INPUT:
        if defect is None:
            return [Claim("input", "input", Verdict.FAIL,
                          "settled INVALID_INPUT, but the input verifies, decodes and hashes to inputHash")]
        note = " (unavailability is observed here, not provable)" if "not retrievable" in defect else ""
        return [Claim("input", "input", Verdict.PASS, f"INVALID_INPUT outcome confirmed: {defect}{note}")]
    if defect is not None:
        return [Claim("input", "input", Verdict.FAIL, defect)]
    if llm.is_stage_check(ctx):  # a StageCourt jury request (auditor/llm.py)
        return [Claim("input", "input", Verdict.PASS, f"{ctx.input_cid} verified; a stage-check transcript of this "
                      f"model whose hash chain = inputHash {short(r.input_hash)} and shard = the spec's")]
    return [Claim("input", "input", Verdict.PASS,
                  f"{ctx.input_cid} verified; it decodes and hash_vector(x, "
                  f"{ctx.spec.input_bits}) = inputHash {short(r.input_hash)}")]
