"""Signed stage receipts and the stage-check rule on a small random Llama (no chain, seconds).

A stage signs, for every FORWARD it answers, (transcript hash, output-rows hash); the transcript is the
stage-check payload a dispute puts on the market, and a jury head re-runs it with `replay_stage_check`
under `runtime.decide`. These tests pin the pieces the on-chain dispute test (tests/test_lm_market.py)
relies on: the payload hashes to the receipt's inputHash, replay on a fresh cache is bit-identical to the
honest stage's answer (and differs from a liar's), every defect is INVALID_INPUT, and heads refuse
answers whose receipt is not the operator's.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
from eth_account import Account

from verinfer.auditor.llm import stage_runner
from verinfer.inference import runtime
from verinfer.inference.llama_int import IntModel
from verinfer.inference.pipeline import (
    StageConn,
    StageServer,
    encode_stage_check,
    parse_stage_check,
    replay_stage_check,
    rows_payload,
    run_pipeline,
    stage_output_hash,
)
from verinfer.models import gguf
from verinfer.models.hashing import INVALID_INPUT_HASH
from verinfer.node import lmstage

CHAIN_ID = 31337
REGISTRY = "0x" + "ab" * 20
MODEL_ID = bytes(range(32))
IDS = [3, 17, 42, 5, 9]


@pytest.fixture(scope="module")
def ck() -> gguf.Checkpoint:
    return gguf.random_model("llama", seed=11, n_layers=3, n_heads=4, n_kv_heads=2, d_model=64, d_ff=128)


@pytest.fixture(scope="module")
def spec(ck):
    return gguf.spec_from_checkpoint(ck, "tiny", max_new_tokens=4)


def _ctx(spec, lo: int, hi: int):
    return lmstage.stage_context(MODEL_ID, lo, hi, "0x" + gguf.shard_commitment(spec, lo, hi).hex())


def _server(ck, spec, lo, hi, key=None, adversary=None) -> tuple[StageServer, str]:
    acct = Account.from_key(key) if key else Account.create()
    signer = lmstage.receipt_signer(acct.key, CHAIN_ID, REGISTRY)(_ctx(spec, lo, hi))
    srv = StageServer(IntModel(ck, (lo, hi), globals_=False), signer=signer, adversary=adversary).start()
    return srv, acct.address


def _verifier(operators: dict[str, str]):
    return lambda ep, ctx, r: lmstage.recover_receipt_signer(CHAIN_ID, REGISTRY, ctx, r) == operators[ep].lower()


def _drive(conn: StageConn, head: IntModel, ids: list[int], steps: int) -> list[np.ndarray]:
    """A prefill and `steps` decode FORWARDs (the inputs a head would send), answers collected."""
    sid = os.urandom(16)
    outs = [conn.forward(sid, 0, head.embed(ids, 0))[0]]
    for k in range(steps):
        outs.append(conn.forward(sid, len(ids) + k, head.embed([k + 1], len(ids) + k))[0])
    return outs


def test_receipts_hash_the_transcript_and_replay_is_bit_identical(ck, spec):
    head = IntModel(ck, (0, 0))
    honest, op = _server(ck, spec, 1, 3)
    liar, liar_op = _server(ck, spec, 1, 3, adversary="swap:2")  # honest for 2 FORWARDs, then lies
    ctx = _ctx(spec, 1, 3)
    try:
        receipts = {}
        for srv, who in ((honest, op), (liar, liar_op)):
            ep = f"127.0.0.1:{srv.port}"
            conn = StageConn(ep, 10, context=ctx, verify=_verifier({ep: who}))
            outs = _drive(conn, head, IDS, 3)
            receipt, frames = conn.evidence()
            conn.close()
            assert receipt is not None and len(frames) == 4
            assert lmstage.recover_receipt_signer(CHAIN_ID, REGISTRY, ctx, receipt) == who.lower()
            payload = encode_stage_check(ctx, frames)
            check = parse_stage_check(payload, 64, 3, spec.max_context)
            assert check.input_hash == receipt.input_hash  # the payload hash = the signed inputHash
            assert receipt.output_hash == stage_output_hash(outs[-1])
            receipts[who] = (receipt, payload, outs[-1])
        assert receipts[op][0].input_hash == receipts[liar_op][0].input_hash  # same transcript, same inputHash
        # a fresh cache replaying the transcript gives the honest answer bit for bit, twice; not the liar's
        sub = IntModel(ck, (1, 3), globals_=False)
        check = parse_stage_check(receipts[op][1], 64, 3, spec.max_context)
        a, b = replay_stage_check(sub, check), replay_stage_check(sub, check)
        assert np.array_equal(a, b) and np.array_equal(a, receipts[op][2])
        assert stage_output_hash(a) == receipts[op][0].output_hash != receipts[liar_op][0].output_hash
        # the jury's rule: runtime.decide with the replay executor
        out = runtime.decide(spec, None, receipts[liar_op][1], receipts[liar_op][0].input_hash, model_id=MODEL_ID,
                             stage_run=lambda c: replay_stage_check(sub, c))
        assert out.output_hash == receipts[op][0].output_hash and out.output_payload == rows_payload(a)
        # the auditor's executor (full checkpoint, layers lo..hi built from it) decides the same
        run = stage_runner(SimpleNamespace(llm_checkpoint=ck, notes=[]))  # type: ignore[arg-type]
        assert run is not None
        audited = runtime.decide(spec, None, receipts[liar_op][1], receipts[liar_op][0].input_hash, model_id=MODEL_ID,
                                 stage_run=run)
        assert audited.output_hash == out.output_hash
    finally:
        honest.close()
        liar.close()


def test_every_stage_check_defect_is_invalid_input(ck, spec):
    head = IntModel(ck, (0, 0))
    ctx = _ctx(spec, 1, 3)
    frames = [(0, head.embed(IDS, 0)), (5, head.embed([1], 5))]
    good = encode_stage_check(ctx, frames)
    h = parse_stage_check(good, 64, 3, spec.max_context).input_hash

    def rule(payload: bytes, input_hash: int = h, model_id: bytes = MODEL_ID) -> str:
        out = runtime.decide(spec, None, payload, input_hash, model_id=model_id,
                             stage_run=lambda c: replay_stage_check(IntModel(ck, (1, 3), globals_=False), c))
        assert out.output_hash == INVALID_INPUT_HASH, "accepted"
        assert "\n" not in (out.invalid_reason or "")
        return out.invalid_reason or ""

    other = lmstage.stage_context(MODEL_ID, 1, 3, "0x" + gguf.shard_commitment(spec, 0, 1).hex())
    assert "hash mismatch" in rule(good, h ^ 1)
    assert "shard" in rule(encode_stage_check(other, frames))
    assert "names model" in rule(good, model_id=bytes(32))
    assert "truncated" in rule(good[:-8])
    assert "trailing" in rule(good + b"\0")
    assert "does not continue" in rule(encode_stage_check(ctx, [frames[0], (6, frames[1][1])]))
    assert "does not continue" in rule(encode_stage_check(ctx, [(1, frames[0][1])]))
    assert "not a range" in rule(encode_stage_check(_ctx(spec, 1, 3).__class__(MODEL_ID, 2, 9, ctx.shard), frames))
    assert runtime.decide(spec, None, good, h, model_id=MODEL_ID,
                          stage_run=lambda c: replay_stage_check(IntModel(ck, (1, 3), globals_=False), c)).outputs is None


def test_heads_catch_a_signed_lie_and_refuse_unsigned_answers(ck, spec):
    """2 replicas: the liar (first) is outvoted by the spare; its Fault carries its signed receipt and transcript.
    A stage signing with a key other than its operator's is an `unsigned` fault and is failed over."""
    servers = [_server(ck, spec, 0, 1), _server(ck, spec, 1, 3, adversary="swap:0"), _server(ck, spec, 1, 3),
               _server(ck, spec, 1, 3), _server(ck, spec, 1, 3)]
    eps = [f"127.0.0.1:{s.port}" for s, _ in servers]
    ops = dict(zip(eps, [a for _, a in servers], strict=True))
    ops[eps[3]] = Account.create().address  # registry says another operator: its receipts are not the operator's
    try:
        want = IntModel(ck).generate(IDS, 3)
        res = run_pipeline(IntModel(ck, (0, 0)), IDS, [[eps[0]], eps[1:]], 3, replicas=2, timeout=10,
                           contexts=[_ctx(spec, 0, 1), _ctx(spec, 1, 3)], verify=_verifier(ops))
        assert res.tokens == want
        kinds = {(f.endpoint, f.kind) for f in res.faults}
        assert (eps[1], "lie") in kinds and (eps[3], "unsigned") in kinds, res.faults
        lie = next(f for f in res.faults if f.kind == "lie")
        assert lie.receipt is not None and lie.context == _ctx(spec, 1, 3)
        check = parse_stage_check(encode_stage_check(lie.context, lie.frames), 64, 3, spec.max_context)
        assert check.input_hash == lie.receipt.input_hash
        honest = stage_output_hash(replay_stage_check(IntModel(ck, (1, 3), globals_=False), check))
        assert honest != lie.receipt.output_hash  # the jury would find the liar's receipt wrong
    finally:
        for s, _ in servers:
            s.close()


def test_dispute_filing_is_on_by_default_and_can_be_turned_off():
    from typer.testing import CliRunner

    from verinfer.commands.node import app
    from verinfer.node.__main__ import parse

    assert parse(["--key", "k"]).lm_disputes is True
    assert parse(["--key", "k", "--no-lm-disputes"]).lm_disputes is False
    out = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "--no-lm-disputes" in out
