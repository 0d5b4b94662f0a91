"""Integer profile on small random architectures: kernels, agreement with float, exact EE, branch, bad input.

Random weights are enough for exactness (no privacy claim is made on them): a Llama/Qwen-style
config (RMSNorm, RoPE, GQA 4:2, SwiGLU, QKV bias) and a GPT-2 config (LayerNorm, learned
positions, GELU, biases), both in the same Q4_1/Q8_0 block formats as SmolLM2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from verinfer.inference import llama_int as L
from verinfer.inference.ee_llm import EEKey, cols, encrypt_model
from verinfer.inference.llama_int import IntCache, IntModel
from verinfer.inference.llama_ref import FloatCache, FloatModel
from verinfer.models import gguf as g
from verinfer.models.errors import InvalidInputError

ARCHS = {
    "llama-gqa-rope": dict(arch="llama", n_heads=4, n_kv_heads=2, d_model=128, d_ff=256, qkv_bias=True),
    "gpt2-layernorm": dict(arch="gpt2", n_heads=4, d_model=128, d_ff=256),
}
IDS = [3, 17, 42, 5, 9, 60, 1]


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    kw = dict(ARCHS[request.param])
    ck = g.random_model(kw.pop("arch"), seed=3, n_layers=3, **kw)
    return request.param, ck, IntModel(ck), FloatModel(ck)


def test_primitives_are_exact_integer_kernels():
    x = np.array([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, (1 << 40) + 1], dtype=np.int64)
    assert L.rshift(x, 1).tolist() == [-3, -2, -2, -1, -1, 0, 1, 1, 2, 2, 3, (1 << 39) + 1]
    assert np.array_equal(L.rshift(-x, 3), -L.rshift(x, 3))  # odd-symmetric: sign flips commute
    vals = np.array([0, 1, 2, 3, 2**15, 2**15 - 1, 2**53 + 1, 2**62], dtype=np.int64)
    assert L.bitlen(vals).tolist() == [int(v).bit_length() for v in vals.tolist()]
    xs = -np.arange(0, 20 << 16, 977, dtype=np.int64)
    approx = L.iexp(xs) / 2**30
    assert np.max(np.abs(approx - np.exp(xs / 2**16))) < 2e-5
    cos, sin = L.rope_table(10000.0, 8, 64)
    p = np.arange(64)[:, None] * 10000.0 ** (-np.arange(4) * 2 / 8)
    assert np.max(np.abs(cos / 2**24 - np.cos(p))) < 1e-6 and np.max(np.abs(sin / 2**24 - np.sin(p))) < 1e-6


def test_integer_profile_tracks_float_reference(arch):
    name, ck, im, fm = arch
    hi = im.logits(im.forward(im.embed(IDS), IntCache(), 0)) / 2**16
    hf = fm.logits(fm.forward(fm.embed(IDS), FloatCache(), 0))
    rel = np.abs(hi - hf).max() / np.abs(hf).max()
    assert rel < 0.02, (name, rel)
    assert np.argmax(hi[-1]) == np.argmax(hf[-1])
    assert im.generate(IDS, 4) == fm.generate(IDS, 4)


def test_prefill_equals_incremental_decode(arch):
    _, _, im, _ = arch
    full = im.forward(im.embed(IDS), IntCache(), 0)
    c = IntCache()
    im.forward(im.embed(IDS[:4]), c, 0)
    rest = im.forward(im.embed(IDS[4:], 4), c, 4)
    assert np.array_equal(full[4:], rest)


def test_equivariant_encryption_is_bit_exact(arch):
    name, ck, im, _ = arch
    key = EEKey.generate(ck.config, 7)
    enc = encrypt_model(im, key)
    plain = im.forward(im.embed(IDS), IntCache(), 0)
    cipher = enc.forward(key.encrypt_hidden(im.embed(IDS)), IntCache(), 0)
    assert not np.array_equal(cipher, plain)
    assert np.array_equal(key.decrypt_hidden(cipher), plain)
    # the node-side embedding/head with the vocabulary permutation: same logits, permuted
    enc_h = enc.forward(enc.embed(key.encrypt_ids(IDS)), IntCache(), 0)
    assert np.array_equal(enc_h, cipher)
    assert np.array_equal(enc.logits(enc_h), im.logits(plain)[:, key.vocab_perm])
    if name.startswith("llama"):
        assert (key.h_sign < 0).any()  # sign flips are part of the RMSNorm key
    else:
        assert (key.h_sign > 0).all()  # LayerNorm: permutations only


def test_non_block_permutation_is_refused(arch):
    _, ck, im, _ = arch
    perm = np.arange(ck.config.d_model)
    perm[[0, 40]] = perm[[40, 0]]  # crosses two GGML blocks
    with pytest.raises(g.LlmError, match="block-structured"):
        cols(im.blocks[0].q, perm, np.ones_like(perm))


def test_branch_equals_forward(arch):
    _, _, im, _ = arch
    c = IntCache()
    im.forward(im.embed(IDS[:3]), c, 0)
    cands = [5, 6, 7]
    hb = im.branch(im.embed(cands, 3, branch=True), c, 3)
    for j, t in enumerate(cands):
        assert np.array_equal(hb[j], im.forward(im.embed(IDS[:3] + [t]), IntCache(), 0)[-1])


def test_spec_validates_prompts():
    ck = g.random_model("llama", seed=1, n_layers=1, d_model=64, n_heads=2, d_ff=64, context_length=16)
    spec = g.spec_from_checkpoint(ck, "tiny", max_new_tokens=8)
    spec.check_prompt([1, 2, 3], 4)
    for bad, n, msg in [([], 1, "at least one"), ([1] * 10, 8, "context limit"), ([1, 96], 1, "outside the vocabulary"),
                        ([1, -1], 1, "outside"), ([1], 9, "max_new_tokens")]:
        with pytest.raises(InvalidInputError, match=msg):
            spec.check_prompt(bad, n)
    m = IntModel(ck)
    with pytest.raises(g.LlmError, match="context length"):
        m.forward(np.zeros((17, 64), dtype=np.int64), IntCache(), 0)
    with pytest.raises(g.LlmError, match="does not continue"):
        m.forward(m.embed([1]), IntCache(), 3)


def test_commitment_and_profile_pin_the_weights():
    ck = g.random_model("llama", seed=1, n_layers=2, d_model=64, n_heads=2, d_ff=64)
    a = g.spec_from_checkpoint(ck, "tiny")
    assert g.llm_commitment(a) == g.llm_commitment(g.spec_from_checkpoint(ck, "tiny"))
    assert len(g.llm_profile_hash(a)) == 32
    t = ck.tensors["blk.1.ffn_up.weight"]
    ck.tensors[t.name] = g.RawTensor(t.name, t.ggml_type, t.shape, bytes([t.data[0] ^ 1]) + t.data[1:])
    b = g.spec_from_checkpoint(ck, "tiny")
    assert g.llm_commitment(a) != g.llm_commitment(b)
    assert g.shard_commitment(a, 0, 1) == g.shard_commitment(b, 0, 1)
    assert g.shard_commitment(a, 1, 2) != g.shard_commitment(b, 1, 2)
    assert math.isfinite(float(g.llm_commitment(a)))


def test_attacks_defeat_ee_on_a_random_model():
    """The mechanism check (the SmolLM2 recovery rates are in benchmarks/bench_lm_attacks.py)."""
    from verinfer.inference import attacks as A

    ck = g.random_model("llama", seed=5, n_layers=3, n_heads=4, n_kv_heads=2, d_model=128, d_ff=256, vocab_size=160)
    im, fm = IntModel(ck), FloatModel(ck)
    key = EEKey.generate(ck.config, 9)
    enc = encrypt_model(im, key)
    rows = A.match_embedding_rows(im, enc, key.vocab_perm)
    assert rows.rate > 0.95
    ids = [3, 17, 42, 5, 9, 60]
    h = im.embed(ids)
    c = IntCache()
    for i in range(2):
        h = im._block(i, h, c, 0)
    observed = key.encrypt_hidden(h)  # what the stage serving layers 2.. receives
    got, res = A.vocab_matching(im, fm, 2, observed, batch=64)
    assert got == ids and res.candidates_tried > 0


def test_float_profile_transforms_are_exact_up_to_rounding_only():
    """Rotations/scales/mixing (float profile): equivariant to ~1e-6, not bit-exact: no consensus on them."""
    from verinfer.inference.ee_llm import encrypt_float

    ck = g.random_model("llama", seed=2, n_layers=3, n_heads=4, n_kv_heads=2, d_model=128, d_ff=256, qkv_bias=True)
    layers, full = FloatModel(ck, globals_=False), FloatModel(ck)
    enc, q = encrypt_float(layers, 3)
    h = full.embed(IDS)
    plain = layers.forward(h, FloatCache(), 0)
    back = enc.forward((h.astype(np.float64) @ q.T).astype(np.float32), FloatCache(), 0) @ q
    rel = np.abs(plain - back).max() / np.abs(plain).max()
    assert 0 < rel < 1e-4
    with pytest.raises(g.LlmError, match="RMSNorm"):
        encrypt_float(FloatModel(g.random_model("gpt2", seed=1, n_layers=1, d_model=64, n_heads=2, d_ff=64)), 1)


def test_pipeline_faults_stall_garbage_and_exhaustion():
    """Stalling / wrong-shape stages are replaced (same tokens); with no endpoint left the request fails fast."""
    from verinfer.inference.pipeline import PipelineError, StageServer, run_pipeline

    ck = g.random_model("llama", seed=4, n_layers=3, n_heads=4, n_kv_heads=2, d_model=64, d_ff=128)
    head = IntModel(ck)
    want = head.generate(IDS, 4)
    part = [IntModel(ck, (i, i + 1), globals_=False) for i in range(3)]
    servers = [StageServer(p).start() for p in part]
    bad = [StageServer(part[1], adversary="stall:2").start(), StageServer(part[1], adversary="garbage:1").start()]
    ep = [f"127.0.0.1:{s.port}" for s in servers]
    try:
        for b, kind in zip(bad, ["stall", "garbage"], strict=True):
            res = run_pipeline(head, IDS, [[ep[0]], [f"127.0.0.1:{b.port}", ep[1]], [ep[2]]], 4, timeout=1.0)
            assert res.tokens == want
            assert [(f.stage, f.kind) for f in res.faults] == [(1, kind)]
        with pytest.raises(PipelineError, match="stage 1: every endpoint failed"):
            run_pipeline(head, IDS, [[ep[0]], [f"127.0.0.1:{bad[1].port}"], [ep[2]]], 4, timeout=1.0)
        with pytest.raises(PipelineError, match="no reachable endpoint"):
            run_pipeline(head, IDS, [[ep[0]], ["127.0.0.1:1"], [ep[2]]], 4, timeout=1.0)
    finally:
        for s in servers + bad:
            s.close()


def test_adversary_lines_are_honest():
    from verinfer.inference.ee_llm import adversary_line

    assert "recovers the tokens" in adversary_line("split+ee")
    assert "no privacy" in adversary_line("ee-full")
    with pytest.raises(g.LlmError, match="unknown deployment"):
        adversary_line("homomorphic")
