"""Equivariant encryption (EE) of transformer LMs under the integer profile, and what it does not hide.

The key holder (the requester, or the publisher for a deployment key) rewrites the weights once so a
stage computes on transformed activations and the key holder recovers the plaintext result exactly:
for every layer, `stage'(T h) = T stage(h)` bit for bit, where T is the hidden transform below.

Transforms that stay exact in the integer profile (`verinfer.llama.int.v1`), all implemented here:

* vocabulary permutation (embedding and head rows; only matters when a node holds them);
* hidden-dimension permutation, block-structured (the 32-element GGML blocks are permuted and the
  elements within each block are permuted): a Q4_1/Q8_0 scale belongs to 32 consecutive inputs, so
  an arbitrary permutation would not be representable; RMSNorm's gain is permuted with it;
* sign flips per 32-block of the hidden dimension (RMSNorm models only: LayerNorm's mean is not
  sign-invariant); a negated Q4_1 input block is re-encoded exactly as q' = 15 - q, m' = -m - 15 d;
* attention heads: KV groups permuted, query heads permuted within their group, the two coordinates
  of each RoPE pair negated together (same signs on q and k; R(-x) = -R(x)), value dimensions
  permuted per 32-block within a head with per-block signs, and o_proj's inputs permuted to match;
* SwiGLU: gate/up rows permuted together (block-structured), up rows and down inputs sign-flipped
  per 32-block (SiLU is not odd, so the gate is not flipped); GPT-2's GELU MLP: permutation only.

Not exact in integers (hence not offered under this profile; they would need a float profile,
which cannot carry consensus): per-RoPE-pair rotations with reciprocal q/k scales, general
invertible V/O mixing, diagonal scales on the up projection, orthogonal hidden mixing.

What this buys: a passive observer of one stage's traffic sees permuted, sign-flipped activations.
What it does not buy: a stage that holds the public base model recovers the permutation from the
weights it is given and the tokens from its inputs (verinfer.inference.attacks; docs/lm.md).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from verinfer.inference.llama_int import IntBlock, IntLinear, IntModel, IntNorm
from verinfer.inference.llama_ref import FloatModel
from verinfer.models.gguf import QK, Checkpoint, LlmConfig, LlmError, RawTensor, decode_q4_1, decode_q8_0


def block_perm(rng: np.random.Generator, n: int) -> np.ndarray:
    """A permutation of range(n) that maps 32-blocks onto 32-blocks: new i ← old perm[i]."""
    nb = n // QK
    order = rng.permutation(nb)
    return np.concatenate([order[b] * QK + rng.permutation(QK) for b in range(nb)])


def block_signs(rng: np.random.Generator, n: int, enabled: bool = True) -> np.ndarray:
    """±1 per element, constant on each 32-block."""
    if not enabled:
        return np.ones(n, dtype=np.int64)
    return np.repeat(rng.choice(np.array([-1, 1], dtype=np.int64), n // QK), QK)


@dataclass
class LayerKey:
    """Per-layer secrets: q/k head order and pair signs, value order/signs, FFN order/signs."""

    q_perm: np.ndarray  # rows of q (n_heads*hd): new ← old
    q_sign: np.ndarray
    k_perm: np.ndarray
    k_sign: np.ndarray
    v_perm: np.ndarray  # rows of v (n_kv*hd); o_proj inputs use o_perm/o_sign
    v_sign: np.ndarray
    o_perm: np.ndarray
    o_sign: np.ndarray
    f_perm: np.ndarray  # d_ff
    f_sign: np.ndarray


@dataclass
class EEKey:
    """A deployment or session key: hidden transform, vocabulary permutation, per-layer secrets."""

    h_perm: np.ndarray
    h_sign: np.ndarray
    vocab_perm: np.ndarray  # new id i ← old id vocab_perm[i]
    layers: dict[int, LayerKey]

    @staticmethod
    def generate(cfg: LlmConfig, seed: int | None = None, *, layers: tuple[int, int] | None = None) -> EEKey:
        rng = np.random.default_rng(seed)
        signs = cfg.arch == "llama"  # LayerNorm is not sign-invariant
        hd, G = cfg.head_dim, cfg.group
        lo, hi = layers if layers is not None else (0, cfg.n_layers)
        out: dict[int, LayerKey] = {}
        for i in range(lo, hi):
            kv_order = rng.permutation(cfg.n_kv_heads)
            q_heads = np.concatenate([g * G + rng.permutation(G) for g in kv_order])
            pair = rng.choice(np.array([-1, 1], dtype=np.int64), (cfg.n_kv_heads, hd // 2))
            if cfg.arch != "llama":
                pair[:] = 1  # no RoPE pairs to flip in GPT-2 (signs would still be exact; keep the key small)
            pair_el = np.repeat(pair, 2, axis=1)  # (kv, hd) for the *old* kv head index
            q_perm = np.concatenate([h * hd + np.arange(hd) for h in q_heads])
            q_sign = np.concatenate([pair_el[h // G] for h in q_heads])
            k_perm = np.concatenate([g * hd + np.arange(hd) for g in kv_order])
            k_sign = np.concatenate([pair_el[g] for g in kv_order])
            within = [block_perm(rng, hd) for _ in range(cfg.n_kv_heads)]  # per new kv head
            vsig = [block_signs(rng, hd, signs) for _ in range(cfg.n_kv_heads)]
            v_perm = np.concatenate([kv_order[j] * hd + within[j] for j in range(cfg.n_kv_heads)])
            v_sign = np.concatenate(vsig)
            o_perm = np.concatenate([q_heads[h] * hd + within[h // G] for h in range(cfg.n_heads)])
            o_sign = np.concatenate([vsig[h // G] for h in range(cfg.n_heads)])
            out[i] = LayerKey(q_perm, q_sign, k_perm, k_sign, v_perm, v_sign, o_perm, o_sign,
                              block_perm(rng, cfg.d_ff), block_signs(rng, cfg.d_ff, signs))
        return EEKey(block_perm(rng, cfg.d_model), block_signs(rng, cfg.d_model, signs),
                     rng.permutation(cfg.vocab_size), out)

    def nbytes(self) -> int:
        n = self.h_perm.nbytes + self.h_sign.nbytes + self.vocab_perm.nbytes
        for lk in self.layers.values():
            n += sum(getattr(lk, f).nbytes for f in lk.__dataclass_fields__)
        return n

    # -- the requester's side
    def encrypt_hidden(self, h: np.ndarray) -> np.ndarray:
        return h[:, self.h_perm] * self.h_sign

    def decrypt_hidden(self, h: np.ndarray) -> np.ndarray:
        out = np.empty_like(h)
        out[:, self.h_perm] = h * self.h_sign
        return out

    def encrypt_ids(self, ids: np.ndarray) -> np.ndarray:
        inv = np.empty_like(self.vocab_perm)
        inv[self.vocab_perm] = np.arange(len(self.vocab_perm))
        return inv[np.asarray(ids)]

    def decrypt_id(self, i: int) -> int:
        return int(self.vocab_perm[i])


# ------------------------------------------------------------------ weight rewriting (exact)

def rows(lin: IntLinear, perm: np.ndarray, sign: np.ndarray) -> IntLinear:
    """Output side: new row i = sign_i · old row perm[i] (D, M and bias negated; q unchanged)."""
    return IntLinear(
        np.ascontiguousarray(lin.q[:, perm, :]),
        lin.d[:, perm] * sign,
        None if lin.m is None else lin.m[:, perm] * sign,
        None if lin.bias is None else lin.bias[perm] * sign,
    )


def cols(lin: IntLinear, perm: np.ndarray, sign: np.ndarray) -> IntLinear:
    """Input side: new column i = sign_i · old column perm[i]; perm and sign must be block-structured."""
    nb = lin.q.shape[0]
    pb = perm.reshape(nb, QK)
    src = pb[:, 0] // QK
    if not np.all(pb // QK == src[:, None]):
        raise LlmError("input permutation is not block-structured")
    sb = sign.reshape(nb, QK)
    if not np.all(sb == sb[:, :1]):
        raise LlmError("input sign flips must be constant on each 32-block")
    neg = sb[:, 0] < 0
    q = lin.q[src[:, None], :, (pb % QK)]  # (nb, 32, out)
    q = np.ascontiguousarray(q.transpose(0, 2, 1))
    d = lin.d[src].copy()
    m = None if lin.m is None else lin.m[src].copy()
    if neg.any():
        if m is not None:  # Q4_1: -(d q + m) = d (15 - q) + (-m - 15 d)
            q[neg] = 15 - q[neg]
            m[neg] = -m[neg] - 15 * d[neg]
        else:  # Q8_0: -(d q) = d (-q)
            q[neg] = -q[neg]
    return IntLinear(q, d, m, None if lin.bias is None else lin.bias.copy())


def _norm(n: IntNorm, perm: np.ndarray) -> IntNorm:
    return IntNorm(n.g[perm], None if n.b is None else n.b[perm], n.eps_q60, n.layer)


def encrypt_model(model: IntModel, key: EEKey, *, vocab: bool = True) -> IntModel:
    """A transformed copy: layers computing on `key.encrypt_hidden(h)`; globals too if present."""
    hp, hs = key.h_perm, key.h_sign
    out = copy.copy(model)
    out.blocks = {}
    for i, b in model.blocks.items():
        lk = key.layers[i]
        out.blocks[i] = IntBlock(
            attn_norm=_norm(b.attn_norm, hp), ffn_norm=_norm(b.ffn_norm, hp),
            q=rows(cols(b.q, hp, hs), lk.q_perm, lk.q_sign),
            k=rows(cols(b.k, hp, hs), lk.k_perm, lk.k_sign),
            v=rows(cols(b.v, hp, hs), lk.v_perm, lk.v_sign),
            o=rows(cols(b.o, lk.o_perm, lk.o_sign), hp, hs),
            up=rows(cols(b.up, hp, hs), lk.f_perm, lk.f_sign),
            down=rows(cols(b.down, lk.f_perm, lk.f_sign), hp, hs),
            gate=None if b.gate is None else rows(cols(b.gate, hp, hs), lk.f_perm, np.ones_like(lk.f_sign)),
        )
    if model.has_globals:
        vp = key.vocab_perm if vocab else np.arange(model.cfg.vocab_size)
        nbk = model.emb_d.shape[1]
        src = hp.reshape(nbk, QK)[:, 0] // QK
        out.emb_q = (model.emb_q[vp][:, hp].astype(np.int16) * hs.astype(np.int16))
        out.emb_d = model.emb_d[vp][:, src]
        head = cols(model.head, hp, hs)
        out.head = rows(head, vp, np.ones(len(vp), dtype=np.int64))
        out.out_norm = _norm(model.out_norm, hp)
        if model.pos is not None:
            out.pos = model.pos[:, hp] * hs
    return out


def rekey_cost(model: IntModel, seed: int) -> dict[str, float]:
    """Seconds to generate a key and rewrite `model`, and the MB of transformed weights produced."""
    t0 = time.perf_counter()
    key = EEKey.generate(model.cfg, seed, layers=(model.lo, model.hi))
    t1 = time.perf_counter()
    enc = encrypt_model(model, key)
    t2 = time.perf_counter()
    mb = sum(a.nbytes for b in enc.blocks.values() for lin in (b.q, b.k, b.v, b.o, b.up, b.down, b.gate)
             if lin is not None for a in (lin.q, lin.d, lin.m) if a is not None) / 2**20
    return {"keygen_s": t1 - t0, "transform_s": t2 - t1, "weights_mb": mb, "key_kb": key.nbytes() / 1024}


# ------------------------------------------------------------------ float-profile transforms (no consensus)

def _rot(phi: np.ndarray) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (..., 2, 2)


def encrypt_float(model: FloatModel, seed: int) -> tuple[FloatModel, np.ndarray]:
    """The richer transforms a float profile allows (exact up to float rounding, so no consensus).

    Hidden: orthogonal mixing Q with RMSNorm gains folded into the next linear layers (Llama only);
    attention: per-KV-group, per-RoPE-pair rotation R(phi) with reciprocal scales s (q) and 1/s (k) —
    2-D rotations commute with RoPE's, so q'.k' = q.k; values mixed by an invertible matrix per KV group
    and o_proj's inputs by its inverse; SwiGLU: up rows scaled by c, down inputs by 1/c.
    Returns the transformed model and Q (the requester sends h @ Q.T and reads back h' @ Q).
    """
    c = model.cfg
    if c.arch != "llama":
        raise LlmError("float EE transforms are implemented for RMSNorm (Llama) models")
    rng = np.random.default_rng(seed)
    d, hd, G = c.d_model, c.head_dim, c.group
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    out = copy.copy(model)
    w = dict(model.w)
    f32 = np.float32

    def fold(name: str, norm: str) -> np.ndarray:  # W diag(g) Q^T: the input is Q x / rms
        return (w[name] * w[norm][None, :]) @ Q.T

    for i in range(model.lo, model.hi):
        p = f"blk.{i}."
        q = fold(p + "attn_q.weight", p + "attn_norm.weight").reshape(c.n_heads, hd // 2, 2, d)
        k = fold(p + "attn_k.weight", p + "attn_norm.weight").reshape(c.n_kv_heads, hd // 2, 2, d)
        rot = _rot(rng.uniform(0, 2 * np.pi, (c.n_kv_heads, hd // 2)))
        s = np.exp(rng.uniform(-0.5, 0.5, (c.n_kv_heads, hd // 2)))[..., None, None]
        rq = np.repeat(rot * s, G, axis=0)  # a q head uses its KV group's rotation
        w[p + "attn_q.weight"] = np.einsum("hpij,hpjd->hpid", rq, q).reshape(-1, d).astype(f32)
        w[p + "attn_k.weight"] = np.einsum("hpij,hpjd->hpid", rot / s, k).reshape(-1, d).astype(f32)
        for name, r in ((p + "attn_q.bias", rq), (p + "attn_k.bias", rot / s)):
            if name in w:
                w[name] = np.einsum("hpij,hpj->hpi", r, w[name].reshape(r.shape[0], hd // 2, 2)).reshape(-1).astype(f32)
        mix = rng.normal(size=(c.n_kv_heads, hd, hd)) / np.sqrt(hd) + np.eye(hd)
        v = fold(p + "attn_v.weight", p + "attn_norm.weight").reshape(c.n_kv_heads, hd, d)
        w[p + "attn_v.weight"] = np.einsum("gij,gjd->gid", mix, v).reshape(-1, d).astype(f32)
        if p + "attn_v.bias" in w:
            w[p + "attn_v.bias"] = np.einsum("gij,gj->gi", mix, w[p + "attn_v.bias"].reshape(-1, hd)).reshape(-1).astype(f32)
        inv = np.repeat(np.linalg.inv(mix), G, axis=0)  # (H, hd, hd)
        o = w[p + "attn_output.weight"].reshape(d, c.n_heads, hd)
        w[p + "attn_output.weight"] = (Q @ np.einsum("dhj,hji->dhi", o, inv).reshape(d, -1)).astype(f32)
        scale = np.exp(rng.uniform(-0.5, 0.5, c.d_ff))
        fp = rng.permutation(c.d_ff)
        w[p + "ffn_gate.weight"] = fold(p + "ffn_gate.weight", p + "ffn_norm.weight")[fp].astype(f32)
        w[p + "ffn_up.weight"] = (fold(p + "ffn_up.weight", p + "ffn_norm.weight") * scale[:, None])[fp].astype(f32)
        w[p + "ffn_down.weight"] = (Q @ (w[p + "ffn_down.weight"] / scale[None, :])[:, fp]).astype(f32)
        w[p + "attn_norm.weight"] = np.ones(d, f32)
        w[p + "ffn_norm.weight"] = np.ones(d, f32)
    out.w = w
    return out, Q


# ------------------------------------------------------------------ what to tell the user (CLI / demo)

ADVERSARY_LINES = {
    "plain": "no privacy: every stage operator sees activations in clear",
    "split": "split: stages never see token ids or the embedding; a stage holding the public model still "
             "recovers the tokens by vocabulary matching (docs/lm.md)",
    "split+ee": "split + EE: hides activations from passive observers without the base model only; a stage "
                "holding the public model recovers the tokens (measured, docs/lm.md)",
    "ee-deployment": "encrypted deployment (publisher's key; heads hold the permuted embedding, stages the rewritten "
                     "layers): hides prompt and tokens from the chain, the store and passive observers of stage "
                     "traffic; NOT from a head or stage holding the public model: a head recovers the vocabulary "
                     "permutation by embedding-row matching (99.98% of ids in seconds), a stage recovers tokens by "
                     "vocabulary matching (docs/lm.md)",
    "ee-full": "EE with embedding at the node: the vocabulary permutation is recovered from the weights in "
               "seconds (99.98% of ids, docs/lm.md): no privacy against the node",
}


def adversary_line(deployment: str) -> str:
    """One line for CLI/demo output: which adversary a deployment resists and which it does not."""
    try:
        return ADVERSARY_LINES[deployment]
    except KeyError:
        raise LlmError(f"unknown deployment {deployment!r} (one of {', '.join(ADVERSARY_LINES)})") from None


# ------------------------------------------------------------------ a publishable encrypted checkpoint (the market path)

#: name suffix of an encrypted version (the MLP's `inference.ee.EE_NAME_SUFFIX`): one marker for both kinds
EE_LLM_SUFFIX = ".ee"


def is_encrypted_llm(spec: object) -> bool:
    """The spec is a published `encrypt_checkpoint` output: an LLM whose name carries the EE suffix."""
    return getattr(spec, "kind", "") == "llm" and str(getattr(spec, "name", "")).endswith(EE_LLM_SUFFIX)


def _q4_1_bytes(q: np.ndarray, d: np.ndarray, m: np.ndarray) -> bytes:
    """(rows, nb, 32) nibbles + fp16 d, m → GGML Q4_1 block bytes (inverse of `gguf.decode_q4_1`)."""
    q = q.astype(np.uint8)
    qs = q[:, :, :16] | (q[:, :, 16:] << 4)
    return np.concatenate([d.astype(np.float16)[..., None].view(np.uint8),
                           m.astype(np.float16)[..., None].view(np.uint8), qs], axis=2).tobytes()


def _q8_0_bytes(q: np.ndarray, d: np.ndarray) -> bytes:
    """(rows, nb, 32) int8 + fp16 d → GGML Q8_0 block bytes (inverse of `gguf.decode_q8_0`)."""
    return np.concatenate([d.astype(np.float16)[..., None].view(np.uint8), q.astype(np.int8).view(np.uint8)],
                          axis=2).tobytes()


def transform_tensor(t: RawTensor, row_perm: np.ndarray | None = None, row_sign: np.ndarray | None = None,
                     col_perm: np.ndarray | None = None, col_sign: np.ndarray | None = None) -> RawTensor:
    """GGML block bytes of `sign_r · W[row_perm][:, col_perm] · sign_c`, exact: blocks and elements are moved, and a
    negated block gets d' = -d (and m' = -m for Q4_1): fp16 negation is exact, and the integer kernel then computes
    -(d·q·a + m·Σa) — bit for bit what `encrypt_model`'s (15 - q, -m - 15 d) re-encoding computes, without needing
    -m - 15 d to be an fp16 value (it often is not). F32 vectors (norm gains, biases) and F32 matrices (GPT-2
    positions) are permuted / sign-flipped directly."""
    if t.ggml_type == "F32":
        v = np.frombuffer(t.data, dtype=np.float32).reshape(t.shape).copy()
        if v.ndim == 1:
            if col_perm is not None:  # a gain indexed by the hidden dimension
                v = v[col_perm]
            if row_perm is not None:  # a bias of the output rows
                v = v[row_perm] * (1 if row_sign is None else row_sign.astype(np.float32))
        else:
            if col_perm is not None:
                v = v[:, col_perm] * (1 if col_sign is None else col_sign.astype(np.float32)[None, :])
        return RawTensor(t.name, "F32", t.shape, np.ascontiguousarray(v, dtype=np.float32).tobytes())
    rows, cols = t.shape
    nb = cols // QK
    if t.ggml_type == "Q4_1":
        q, d, m = decode_q4_1(t.data, rows, cols)
    elif t.ggml_type == "Q8_0":
        q, d = decode_q8_0(t.data, rows, cols)
        m = None
    else:
        raise LlmError(f"{t.name}: cannot encrypt a {t.ggml_type} tensor exactly")
    q = q.reshape(rows, nb, QK)
    sign = np.ones((rows, nb), dtype=np.int64)
    if col_perm is not None:
        pb = col_perm.reshape(nb, QK)
        src = pb[:, 0] // QK
        if not np.all(pb // QK == src[:, None]):
            raise LlmError("input permutation is not block-structured")
        q, d = q[:, src[:, None], pb % QK], d[:, src]
        m = None if m is None else m[:, src]
        if col_sign is not None:
            sb = col_sign.reshape(nb, QK)
            if not np.all(sb == sb[:, :1]):
                raise LlmError("input sign flips must be constant on each 32-block")
            sign = sign * sb[:, 0][None, :]
    if row_perm is not None:
        q, d = q[row_perm], d[row_perm]
        m = None if m is None else m[row_perm]
        if row_sign is not None:
            sign = sign * row_sign[:, None]
    neg = sign < 0
    d = np.where(neg, -d, d).astype(np.float16)
    if m is not None:
        m = np.where(neg, -m, m).astype(np.float16)
        return RawTensor(t.name, "Q4_1", t.shape, _q4_1_bytes(q, d, m))
    return RawTensor(t.name, "Q8_0", t.shape, _q8_0_bytes(q, d))


def encrypt_checkpoint(ck: Checkpoint, key: EEKey) -> Checkpoint:
    """The whole checkpoint rewritten with `key`, as GGML tensors a node loads like any other (`gguf.publish`).

    Layers compute on `key.encrypt_hidden(h)`; the embedding and head rows are permuted by the vocabulary
    permutation, so an unmodified head embeds encrypted ids and its greedy argmax yields encrypted ids. The
    config's bos/eos become their encrypted ids (the heads stop at EOS: that one entry of π is public).
    Bit-exact with `encrypt_model` (tests/test_lm_ee_market.py::test_encrypted_checkpoint_equals_encrypt_model)."""
    c = ck.config
    hp, hs = key.h_perm, key.h_sign
    if len(key.vocab_perm) != c.vocab_size or len(hp) != c.d_model or set(key.layers) != set(range(c.n_layers)):
        raise LlmError("EE key does not match the checkpoint's dimensions")
    T = ck.tensors
    out: dict[str, RawTensor] = {}

    def put(name: str, **kw: np.ndarray | None) -> None:
        if name in T:
            out[name] = transform_tensor(T[name], **kw)

    for i in range(c.n_layers):
        lk, p = key.layers[i], f"blk.{i}."
        for norm in ("attn_norm", "ffn_norm"):
            put(p + norm + ".weight", col_perm=hp)
            put(p + norm + ".bias", col_perm=hp)
        for name, rp, rs, cp, cs in (
            ("attn_q", lk.q_perm, lk.q_sign, hp, hs), ("attn_k", lk.k_perm, lk.k_sign, hp, hs),
            ("attn_v", lk.v_perm, lk.v_sign, hp, hs), ("attn_output", hp, hs, lk.o_perm, lk.o_sign),
            ("ffn_up", lk.f_perm, lk.f_sign, hp, hs), ("ffn_down", hp, hs, lk.f_perm, lk.f_sign),
            ("ffn_gate", lk.f_perm, np.ones_like(lk.f_sign), hp, hs),
        ):
            put(p + name + ".weight", row_perm=rp, row_sign=rs, col_perm=cp, col_sign=cs)
            put(p + name + ".bias", row_perm=rp, row_sign=rs)
    vp = key.vocab_perm
    ones = np.ones(len(vp), dtype=np.int64)
    put("token_embd.weight", row_perm=vp, row_sign=ones, col_perm=hp, col_sign=hs)
    put("output.weight", row_perm=vp, row_sign=ones, col_perm=hp, col_sign=hs)
    put("output_norm.weight", col_perm=hp)
    put("output_norm.bias", col_perm=hp)
    put("position_embd.weight", col_perm=hp, col_sign=hs)
    missing = sorted(set(T) - set(out))
    if missing:
        raise LlmError(f"encrypt_checkpoint does not know how to transform {missing[0]}")
    inv = np.empty_like(vp)
    inv[vp] = np.arange(len(vp))
    cfg = replace(c, bos_id=int(inv[c.bos_id]), eos_id=int(inv[c.eos_id]))
    return Checkpoint(cfg, out, dict(ck.tokenizer))


@dataclass(frozen=True)
class VocabKey:
    """What the requester of an encrypted LLM deployment holds: the vocabulary permutation π only.

    `perm[i]` is the plaintext id of encrypted id i (`EEKey.vocab_perm`). The hidden transform is not needed
    after publishing (heads and stages compute on the rewritten weights without it), so it is not kept."""

    perm: np.ndarray

    @staticmethod
    def of(key: EEKey) -> VocabKey:
        return VocabKey(np.asarray(key.vocab_perm, dtype=np.int64))

    def encrypt_ids(self, ids: Sequence[int]) -> list[int]:
        """Plaintext token ids → the ids the encrypted model is asked with (π⁻¹ in `EEKey` terms)."""
        inv = np.empty_like(self.perm)
        inv[self.perm] = np.arange(len(self.perm))
        return [int(inv[int(i)]) for i in ids]

    def decrypt_ids(self, ids: Sequence[int]) -> list[int]:
        """Settled (encrypted) ids → plaintext token ids."""
        n = len(self.perm)
        bad = [int(i) for i in ids if not 0 <= int(i) < n]
        if bad:
            raise LlmError(f"token id {bad[0]} is outside the key's vocabulary of {n}")
        return [int(self.perm[int(i)]) for i in ids]
