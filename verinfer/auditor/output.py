"""Output claims: the settled payload hashes to outputHash, and re-execution gives the same output."""

from __future__ import annotations

from verinfer.auditor import llm
from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import MAX_OUTPUT_BYTES, AuditContext, AuditEnv, short
from verinfer.chain.protocol import Status
from verinfer.constants import INVALID_INPUT
from verinfer.models.errors import InvalidInputError
from verinfer.models.hashing import hash_vector
from verinfer.models.tensor import decode_tensor, dtype_for_bits
from verinfer.storage.errors import StorageError, StoreUnavailableError


def check_output(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    r = ctx.request
    if r.status == Status.INVALID_INPUT:
        ok = bytes(r.output_hash) == INVALID_INPUT
        return [Claim("output", "output.payload", Verdict.PASS if ok else Verdict.FAIL,
                      "INVALID_INPUT outcome 0xff…ff: no output payload" if ok else
                      f"INVALID_INPUT but outputHash {short(r.output_hash)}"),
                Claim("output", "output.reexecution", Verdict.NA, "invalid input: nothing to execute")] \
            + ([llm.check_reveals(env, ctx)] if llm.is_llm(ctx.spec) else [])
    if r.status != Status.ACCEPTED:
        why = {Status.NO_QUORUM: "no quorum: no settled output",
               Status.EXPIRED: "expired: never drawn, nothing computed"}.get(r.status, f"not settled yet ({r.status.name})")
        return [Claim("output", "output.payload", Verdict.NA, why),
                Claim("output", "output.reexecution", Verdict.NA, why)] \
            + ([llm.check_reveals(env, ctx)] if llm.is_llm(ctx.spec) and r.status == Status.NO_QUORUM else [])
    if llm.is_stage_check(ctx):  # a StageCourt jury request: stage output rows, not tokens (auditor/llm.py)
        return llm.check_stage_check_output(env, ctx)
    claims = [_payload_claim(env, ctx), _reexec_claim(env, ctx)]
    if llm.is_llm(ctx.spec):
        claims.append(llm.check_reveals(env, ctx))
    return claims


def _payload_claim(env: AuditEnv, ctx: AuditContext) -> Claim:
    r = ctx.request
    want = int.from_bytes(bytes(r.output_hash), "big")
    if not ctx.output_cid:
        return Claim("output", "output.payload", Verdict.FAIL, "no Revealed event of the settled hash names an output CID")
    try:
        raw = env.store.cat(ctx.output_cid, max_bytes=MAX_OUTPUT_BYTES)
    except StoreUnavailableError:
        raise
    except (StorageError, ValueError) as exc:
        return Claim("output", "output.payload", Verdict.FAIL, f"winning output {ctx.output_cid}: {exc}")
    bits = ctx.model.output_bits
    try:
        t = decode_tensor(raw)
        if t.dtype != dtype_for_bits(bits):
            raise InvalidInputError(f"dtype {t.dtype}, expected {dtype_for_bits(bits)}")
        h = hash_vector(t.data, bits)
    except (InvalidInputError, ValueError) as exc:
        return Claim("output", "output.payload", Verdict.FAIL, f"{ctx.output_cid} is not an output tensor: {exc}")
    ctx.payload_output = list(t.data)
    if h != want:
        return Claim("output", "output.payload", Verdict.FAIL,
                     f"{ctx.output_cid} hashes to {short(h)}, on-chain outputHash is {short(want)}")
    return Claim("output", "output.payload", Verdict.PASS,
                 f"{ctx.output_cid} verified; {len(t.data)} values hash to outputHash {short(want)}")


def _reexec_claim(env: AuditEnv, ctx: AuditContext) -> Claim:

    r = ctx.request
    if ctx.reference_output is None:
        return Claim("output", "output.reexecution", Verdict.NA,
                     ctx.llm_unavailable or "no valid input to execute (see input)")
    want = int.from_bytes(bytes(r.output_hash), "big")
    h = hash_vector(ctx.reference_output, ctx.model.output_bits)
    if h != want:
        diff = ""
        if ctx.payload_output is not None and len(ctx.payload_output) == len(ctx.reference_output):
            idx = [i for i, (a, b) in enumerate(zip(ctx.payload_output, ctx.reference_output, strict=True)) if a != b]
            if idx:
                i = idx[0]
                diff = f"; {len(idx)} value(s) differ, first at [{i}]: settled {ctx.payload_output[i]}, " \
                       f"reference {ctx.reference_output[i]}"
        return Claim("output", "output.reexecution", Verdict.FAIL,
                     f"reference runtime output hashes to {short(h)}, not the settled {short(want)}{diff}")
    if ctx.payload_output is not None and ctx.payload_output != ctx.reference_output:
        return Claim("output", "output.reexecution", Verdict.FAIL, "hashes agree but the payload values differ")
    ref = ctx.reference_output
    if not ref:
        return Claim("output", "output.reexecution", Verdict.PASS, "re-executed: identical (empty) output")
    if getattr(ctx.spec, "kind", "") == "lm":
        what = f"{len(ref)} generated token id(s)"
    elif llm.is_llm(ctx.spec):
        t = ctx.llm_timing
        took = f" (model built in {t[0]:.1f}s; {t[2]} prompt + {len(ref)} new tokens in {t[1]:.1f}s)" if t else ""
        return Claim("output", "output.reexecution", Verdict.PASS,
                     f"re-executed all {ctx.spec.num_layers} layers in one process (integer profile, bit-exact "
                     f"with the stages){took}: tokens_hash = settled {short(want)}; {llm.describe_tokens(ctx, ref)}")
    else:
        what = f"{len(ref)} logits, class {max(range(len(ref)), key=ref.__getitem__)}"
    return Claim("output", "output.reexecution", Verdict.PASS,
                 f"re-executed with the reference runtime: identical output ({what})")
