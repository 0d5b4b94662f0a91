"""The integer execution profile `verinfer.llama.int.v1`: bit-exact on any CPU, any BLAS, any thread count.

Why: consensus compares token hashes across operators, so nothing may depend on float rounding order.
Every tensor here is int64 fixed point (hidden states Q16 = value·2^16, weight scales Q24):

* matmul on the GGML blocks: activations are quantized per block of 32 to |a| <= 2^15 with a
  power-of-two shift (round half away from zero, so sign flips commute with it); the per-block
  integer dot products q·a are computed by BLAS in float32 (Q4_1: |sum| < 15·2^15·32 < 2^24) or float64
  (Q8_0: < 2^27): every partial sum is an integer below the mantissa limit, so the result is exact
  whatever the summation order, SIMD width or thread count. Scales d, m are fp16, which are exact in
  Q24; the block results d·(q·a) + m·Σa are combined in int64 and rounded once per block to Q16.
* RMSNorm / LayerNorm: integer mean of squares, `math.isqrt`, integer division.
* RoPE: cos/sin tables in Q24 computed with `decimal` (software, correctly rounded) and an exact
  big-integer angle-addition recurrence, so no libm is involved.
* softmax, SiLU, GELU: exp(x) = 2^(x·log2 e) with a 257-entry Q30 table of 2^(-i/256) and linear
  interpolation (I-BERT-style range reduction), integer division for the normalisation.
* greedy argmax over integer logits, ties to the lowest id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import cache, lru_cache

import numpy as np

from verinfer.models.gguf import (
    QK,
    Checkpoint,
    LlmConfig,
    LlmError,
    RawTensor,
    decode_q4_1,
    decode_q8_0,
)

F = 16  # hidden-state fractional bits
WF = 24  # weight-scale fractional bits (exact for every fp16 value)
ACT_BITS = 15  # |activation| <= 2^15 per block
TRIG_F = 24
EXP_F = 30
PROB_F = 24
_EXP_CLIP = 64 << F  # exp(-64) is 0 in Q30
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")


# ------------------------------------------------------------------ integer primitives

def bitlen(m: np.ndarray) -> np.ndarray:
    """Exact bit length of non-negative int64 values (frexp, then corrected for float rounding)."""
    m = np.asarray(m, dtype=np.int64)
    e = np.frexp(m.astype(np.float64))[1].astype(np.int64)
    e = np.where((e > 0) & ((m >> np.maximum(e - 1, 0)) == 0), e - 1, e)
    e = np.where((e < 63) & ((m >> np.minimum(e, 62)) > 0) & (m > 0), e + 1, e)
    return np.where(m == 0, 0, e)


def rshift(x: np.ndarray, s: np.ndarray | int) -> np.ndarray:
    """x / 2^s rounded half away from zero (s may be negative: left shift); odd-symmetric in x."""
    s = np.asarray(s, dtype=np.int64)
    ax = np.abs(x)
    sp = np.maximum(s, 0)
    half = np.where(sp > 0, np.left_shift(np.int64(1), np.maximum(sp - 1, 0)), 0)
    r = np.where(s >= 0, (ax + half) >> sp, ax << np.maximum(-s, 0))
    return np.where(x < 0, -r, r)


def rdiv(num: np.ndarray, den: np.ndarray | np.int64) -> np.ndarray:
    """num / den (den > 0) rounded half away from zero."""
    a = np.abs(num)
    r = (a + den // 2) // den
    return np.where(num < 0, -r, r)


def quant_blocks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q16 (T, n) → (a (T, n/32, 32) with |a| <= 2^15, shift r (T, n/32)); x ≈ a·2^r."""
    T, n = x.shape
    xb = x.reshape(T, n // QK, QK)
    r = np.maximum(bitlen(np.abs(xb).max(axis=2)) - ACT_BITS, 0)
    return rshift(xb, r[..., None]), r


def _fix(value: Decimal, bits: int) -> int:
    """round(value · 2^bits) to an int, in decimal arithmetic (deterministic everywhere)."""
    return int((value * (1 << bits)).to_integral_value())


@cache
def _exp2_table() -> np.ndarray:
    with localcontext() as ctx:
        ctx.prec = 50
        ln2 = Decimal(2).ln()
        vals = [_fix((-(ln2 * i) / 256).exp(), EXP_F) for i in range(257)]
    return np.array(vals, dtype=np.int64)


@cache
def _log2e_q30() -> int:
    with localcontext() as ctx:
        ctx.prec = 50
        return _fix(Decimal(1) / Decimal(2).ln(), 30)


def iexp(x: np.ndarray) -> np.ndarray:
    """exp(x) in Q30 for Q16 x <= 0: 2^-(z + f) with z integer and 2^-f from the table."""
    t = ((-np.maximum(x, -_EXP_CLIP)) * _log2e_q30()) >> 30  # Q16 of -x·log2(e), >= 0
    z = t >> F
    f = t & ((1 << F) - 1)
    i, fr = f >> 8, f & 0xFF
    tab = _exp2_table()
    lo, hi = tab[i], tab[i + 1]
    val = lo - (((lo - hi) * fr) >> 8)
    return val >> np.minimum(z, 62)


def isigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) in Q30 for Q16 x."""
    e = iexp(-np.abs(x))
    pos = (np.int64(1) << 60) // ((np.int64(1) << 30) + e)
    return np.where(x >= 0, pos, (np.int64(1) << 30) - pos)


def isilu(x: np.ndarray) -> np.ndarray:
    return rshift(x * isigmoid(x), 30)


@cache
def _gelu_consts() -> tuple[int, int]:
    with localcontext() as ctx:
        ctx.prec = 50
        c1 = 2 * (Decimal(2) / _PI).sqrt()
        return _fix(c1, F), _fix(Decimal("0.044715"), F)


def igelu(x: np.ndarray) -> np.ndarray:
    """GELU-tanh: x·sigmoid(2·sqrt(2/pi)·(x + 0.044715 x^3)), all Q16."""
    c1, c2 = _gelu_consts()
    xc = np.clip(x, -_EXP_CLIP, _EXP_CLIP)
    x3 = rshift(rshift(xc * xc, F) * xc, F)
    z = rshift(c1 * (xc + rshift(c2 * x3, F)), F)
    return rshift(x * isigmoid(z), 30)


@cache
def _inv_sqrt_q16(hd: int) -> int:
    with localcontext() as ctx:
        ctx.prec = 50
        return _fix(Decimal(1) / Decimal(hd).sqrt(), F)


def _dec_sin_cos(x: Decimal) -> tuple[Decimal, Decimal]:
    """Taylor series (|x| < 1), exact decimal arithmetic at the context precision."""
    s, c, term_s, term_c = Decimal(0), Decimal(0), x, Decimal(1)
    for n in range(1, 60):
        s += term_s
        c += term_c
        term_s = -term_s * x * x / ((2 * n) * (2 * n + 1))
        term_c = -term_c * x * x / ((2 * n - 1) * (2 * n))
    return s, c


@lru_cache(maxsize=8)
def rope_table(base: float, head_dim: int, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin(p·base^(-2i/hd)) in Q24 for p < n_pos: decimal for the step, exact integer recurrence after."""
    half = head_dim // 2
    one = 1 << 120
    cs, ss = [], []
    with localcontext() as ctx:
        ctx.prec = 60
        lnb = Decimal(repr(float(base))).ln()
        for i in range(half):
            th = (-(lnb * 2 * i) / head_dim).exp()
            sin_th, cos_th = _dec_sin_cos(th)
            cs.append(_fix(cos_th, 120))
            ss.append(_fix(sin_th, 120))
    cos = np.zeros((n_pos, half), dtype=np.int64)
    sin = np.zeros((n_pos, half), dtype=np.int64)
    shift = 120 - TRIG_F
    rnd = 1 << (shift - 1)
    for i in range(half):
        c1, s1 = cs[i], ss[i]
        c, s = one, 0
        col_c, col_s = [], []
        for _p in range(n_pos):
            col_c.append((c + rnd) >> shift)
            col_s.append((s + rnd) >> shift)
            c, s = (c * c1 - s * s1) >> 120, (s * c1 + c * s1) >> 120
        cos[:, i], sin[:, i] = col_c, col_s
    return cos, sin


# ------------------------------------------------------------------ weights

@dataclass
class IntLinear:
    """A GGML-block linear layer prepared for exact integer execution (out × in)."""

    q: np.ndarray  # (nb, out, 32) float32 (Q4_1 0..15) or float64 (Q8_0 int8 values): exact BLAS operands
    d: np.ndarray  # (nb, out) int64, Q24
    m: np.ndarray | None  # (nb, out) int64, Q24 (Q4_1 only)
    bias: np.ndarray | None  # (out,) int64, Q16

    @property
    def out(self) -> int:
        return self.q.shape[1]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Q16 (T, in) → Q16 (T, out)."""
        a, r = quant_blocks(x)  # (T, nb, 32), (T, nb)
        if r.max(initial=0) >= WF:
            raise LlmError("activation out of the integer profile's range (>= 2^23)")
        at = a.transpose(1, 2, 0).astype(self.q.dtype)  # (nb, 32, T)
        c = np.matmul(self.q, at).astype(np.int64)  # (nb, out, T): exact integer block dot products
        c *= self.d[..., None]
        if self.m is not None:
            sa = a.sum(axis=2).T  # (nb, T)
            c += self.m[..., None] * sa[:, None, :]
        s = (WF - r.T)[:, None, :]  # (nb, 1, T), >= 1
        c += (np.int64(1) << (s - 1)) - (c < 0)  # round half away from zero, then floor-shift
        c >>= s
        y = c.sum(axis=0).T  # (T, out)
        return y if self.bias is None else y + self.bias


def _fp16_q24(v: np.ndarray) -> np.ndarray:
    out = (v.astype(np.float64) * (1 << WF)).astype(np.int64)  # exact: fp16 values are multiples of 2^-24
    if np.abs(out).max(initial=0) >= 1 << 30:
        raise LlmError("a block scale is >= 64: outside the integer profile's range")
    return out


def _f32_q16(t: RawTensor) -> np.ndarray:
    v = np.frombuffer(t.data, dtype=np.float32).astype(np.float64)
    if np.abs(v).max(initial=0) >= 2.0 ** 20:
        raise LlmError(f"{t.name} has values >= 2^20: outside the integer profile's range")
    return np.rint(v * (1 << F)).astype(np.int64)


def prepare_linear(t: RawTensor, bias: RawTensor | None = None) -> IntLinear:
    rows, cols = t.shape
    nb = cols // QK
    if t.ggml_type == "Q4_1":
        q, d, m = decode_q4_1(t.data, rows, cols)
        qf = np.ascontiguousarray(q.reshape(rows, nb, QK).transpose(1, 0, 2), dtype=np.float32)
        return IntLinear(qf, _fp16_q24(d).T.copy(), _fp16_q24(m).T.copy(), None if bias is None else _f32_q16(bias))
    if t.ggml_type == "Q8_0":
        q, d = decode_q8_0(t.data, rows, cols)
        qf = np.ascontiguousarray(q.reshape(rows, nb, QK).transpose(1, 0, 2), dtype=np.float64)
        return IntLinear(qf, _fp16_q24(d).T.copy(), None, None if bias is None else _f32_q16(bias))
    raise LlmError(f"{t.name}: the integer profile needs Q4_1/Q8_0 matrices, got {t.ggml_type}")


@dataclass
class IntNorm:
    g: np.ndarray  # Q16 gain
    b: np.ndarray | None  # Q16 bias (LayerNorm)
    eps_q60: int
    layer: bool  # LayerNorm (True) or RMSNorm

    def __call__(self, x: np.ndarray) -> np.ndarray:
        T, d = x.shape
        s = np.maximum(bitlen(np.abs(x).max(axis=1)) - 20, 0)[:, None]  # |x'| < 2^20
        xs = rshift(x, s)
        if self.layer:
            mu = rdiv(xs.sum(axis=1, keepdims=True) << 4, np.int64(d))
            xs = (xs << 4) - mu
            s = s - 4
        ms = (xs * xs).sum(axis=1) // d
        out = np.empty_like(xs)
        for t in range(T):  # per-token scalar: Python ints, exact
            sh = 60 - 2 * F + 2 * int(s[t, 0])
            eps = self.eps_q60 >> sh if sh >= 0 else self.eps_q60 << -sh
            root = math.isqrt((int(ms[t]) + eps) << 32)
            out[t] = rdiv(xs[t] * self.g << F, np.int64(max(root, 1)))
        return out if self.b is None else out + self.b


# ------------------------------------------------------------------ the model

@dataclass
class IntCache:
    """Per-session cache of each layer: quantized keys (a, shift) and Q16 values."""

    ka: dict[int, np.ndarray] = field(default_factory=dict)
    kr: dict[int, np.ndarray] = field(default_factory=dict)
    v: dict[int, np.ndarray] = field(default_factory=dict)
    length: int = 0


@dataclass
class IntBlock:
    attn_norm: IntNorm
    ffn_norm: IntNorm
    q: IntLinear
    k: IntLinear
    v: IntLinear
    o: IntLinear
    up: IntLinear
    down: IntLinear
    gate: IntLinear | None


class IntModel:
    """Layers lo..hi-1 (a stage's shard) and, with `globals_`, embedding, final norm and head."""

    def __init__(self, ck: Checkpoint, layers: tuple[int, int] | None = None, globals_: bool = True) -> None:
        self.cfg: LlmConfig = ck.config
        c = self.cfg
        self.lo, self.hi = layers if layers is not None else (0, c.n_layers)
        if not 0 <= self.lo <= self.hi <= c.n_layers:
            raise LlmError(f"layer range {self.lo}:{self.hi} is outside 0:{c.n_layers}")
        if c.d_model % QK or c.d_ff % QK or c.head_dim % 2:
            raise LlmError("dimensions must be multiples of 32 (and head_dim even)")
        eps = int(round(c.norm_eps * 2.0 ** 60))
        T = ck.tensors
        layer = c.arch == "gpt2"

        def norm(name: str) -> IntNorm:
            return IntNorm(_f32_q16(T[name + ".weight"]), _f32_q16(T[name + ".bias"]) if layer else None, eps, layer)

        def lin(name: str) -> IntLinear:
            return prepare_linear(T[name + ".weight"], T.get(name + ".bias"))

        self.blocks: dict[int, IntBlock] = {}
        for i in range(self.lo, self.hi):
            p = f"blk.{i}."
            self.blocks[i] = IntBlock(
                norm(p + "attn_norm"), norm(p + "ffn_norm"), lin(p + "attn_q"), lin(p + "attn_k"), lin(p + "attn_v"),
                lin(p + "attn_output"), lin(p + "ffn_up"), lin(p + "ffn_down"),
                lin(p + "ffn_gate") if c.arch == "llama" else None)
        self.has_globals = globals_
        if globals_:
            emb = T["token_embd.weight"]
            if emb.ggml_type != "Q8_0":
                raise LlmError("the integer profile expects a Q8_0 token embedding")
            q, d = decode_q8_0(emb.data, *emb.shape)
            self.emb_q = q  # (vocab, d) int8
            self.emb_d = _fp16_q24(d)  # (vocab, nb)
            self.head = prepare_linear(T.get("output.weight", emb))
            self.out_norm = norm("output_norm")
            self.pos = _f32_q16(T["position_embd.weight"]).reshape(-1, c.d_model) if c.arch == "gpt2" else None
        if c.arch == "llama" and self.blocks:
            self.cos, self.sin = rope_table(c.rope_base, c.head_dim, c.context_length)

    # -- globals (held by the requester in split inference)
    def embed(self, ids: Sequence[int] | np.ndarray, pos0: int = 0, branch: bool = False) -> np.ndarray:
        """Q16 embeddings of ids at positions pos0.. (all at pos0 when `branch`)."""
        idx = np.asarray(ids, dtype=np.int64)
        q = self.emb_q[idx].reshape(len(idx), -1, QK).astype(np.int64)
        h = rshift(q * self.emb_d[idx][..., None], WF - F).reshape(len(idx), -1)
        if self.pos is not None:
            h = h + (self.pos[pos0] if branch else self.pos[pos0:pos0 + len(idx)])
        return h

    def logits(self, h: np.ndarray) -> np.ndarray:
        return self.head(self.out_norm(h))

    def next_token(self, h_last: np.ndarray) -> int:
        return int(np.argmax(self.logits(h_last.reshape(1, -1))[0]))

    # -- layers
    def _rope(self, x: np.ndarray, pos0: int, branch: bool = False) -> np.ndarray:
        T = x.shape[0]
        sl = slice(pos0, pos0 + 1) if branch else slice(pos0, pos0 + T)
        c, s = self.cos[sl][:, None, :], self.sin[sl][:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = rshift(x0 * c - x1 * s, TRIG_F)
        out[..., 1::2] = rshift(x0 * s + x1 * c, TRIG_F)
        return out

    @staticmethod
    def _qhead(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.maximum(bitlen(np.abs(x).max(axis=2)) - ACT_BITS, 0)  # per (token, head)
        return rshift(x, r[..., None]), r

    def _block(self, i: int, h: np.ndarray, cache: IntCache, pos0: int, branch: bool = False) -> np.ndarray:
        c, b = self.cfg, self.blocks[i]
        T, hd, H, G = h.shape[0], c.head_dim, c.n_heads, c.group
        x = b.attn_norm(h)
        q = b.q(x).reshape(T, H, hd)
        k = b.k(x).reshape(T, c.n_kv_heads, hd)
        v = b.v(x).reshape(T, c.n_kv_heads, hd)
        if c.arch == "llama":
            q, k = self._rope(q, pos0, branch), self._rope(k, pos0, branch)
        qa, qr = self._qhead(q)
        ka, kr = self._qhead(k)
        if branch:
            return self._branch_rest(b, h, qa, qr, ka, kr, v, cache.ka.get(i), cache.kr.get(i), cache.v.get(i))
        if i in cache.ka:
            ka, kr, v = (np.concatenate([cache.ka[i], ka]), np.concatenate([cache.kr[i], kr]),
                         np.concatenate([cache.v[i], v]))
        cache.ka[i], cache.kr[i], cache.v[i] = ka, kr, v
        S = ka.shape[0]
        kk = np.repeat(ka, G, axis=1).transpose(1, 2, 0)  # (H, hd, S)
        dot = np.matmul(qa.transpose(1, 0, 2), kk)  # (H, T, S) int64, exact
        sh = (2 * F - qr.T[:, :, None] - np.repeat(kr, G, axis=1).T[:, None, :])  # (H, T, S)
        score = rshift(dot * _inv_sqrt_q16(hd), sh)  # Q16
        mask = np.arange(S)[None, :] > (np.arange(T)[:, None] + pos0)
        score = np.where(mask[None], np.int64(-(1 << 40)), score)
        e = iexp(score - score.max(axis=2, keepdims=True))  # Q30
        p = (e << PROB_F) // e.sum(axis=2, keepdims=True)  # Q24
        vv = np.repeat(v, G, axis=1).transpose(1, 0, 2)  # (H, S, hd)
        o = rshift(np.matmul(p, vv), PROB_F).transpose(1, 0, 2).reshape(T, H * hd)
        h = h + b.o(o)
        x = b.ffn_norm(h)
        if b.gate is not None:
            a = rshift(isilu(b.gate(x)) * b.up(x), F)
        else:
            a = igelu(b.up(x))
        return h + b.down(a)

    def _branch_rest(self, b: IntBlock, h, qa, qr, ka, kr, v, cka, ckr, cv) -> np.ndarray:
        """Attention for T alternative tokens at one position: each sees the cache and itself only."""
        c = self.cfg
        T, hd, H, G = h.shape[0], c.head_dim, c.n_heads, c.group
        kfull = np.repeat(ka, G, axis=1)  # (T, H, hd)
        self_dot = np.einsum("thd,thd->ht", qa, kfull)[:, :, None]  # (H, T, 1)
        self_sh = (2 * F - qr.T - np.repeat(kr, G, axis=1).T)[:, :, None]
        dots, shs, vals = [self_dot], [self_sh], [np.repeat(v, G, axis=1).transpose(1, 0, 2)[:, :, None, :]]
        if cka is not None:
            kk = np.repeat(cka, G, axis=1).transpose(1, 2, 0)
            dots.insert(0, np.matmul(qa.transpose(1, 0, 2), kk))
            shs.insert(0, 2 * F - qr.T[:, :, None] - np.repeat(ckr, G, axis=1).T[:, None, :])
            vc = np.repeat(cv, G, axis=1).transpose(1, 0, 2)  # (H, S, hd)
            vals.insert(0, np.broadcast_to(vc[:, None, :, :], (H, T) + vc.shape[1:]))
        score = rshift(np.concatenate(dots, axis=2) * _inv_sqrt_q16(hd), np.concatenate(shs, axis=2))
        e = iexp(score - score.max(axis=2, keepdims=True))
        p = (e << PROB_F) // e.sum(axis=2, keepdims=True)  # (H, T, S+1)
        vv = np.concatenate(vals, axis=2)  # (H, T, S+1, hd)
        o = rshift(np.einsum("hts,htsd->htd", p, vv), PROB_F).transpose(1, 0, 2).reshape(T, H * hd)
        h = h + b.o(o)
        x = b.ffn_norm(h)
        a = rshift(isilu(b.gate(x)) * b.up(x), F) if b.gate is not None else igelu(b.up(x))
        return h + b.down(a)

    def branch(self, h: np.ndarray, cache: IntCache, pos: int, upto: int | None = None) -> np.ndarray:
        """Hidden states after layers lo..upto-1 for T alternative tokens at position `pos` (cache untouched).

        Used by the vocabulary-matching attack: each row equals what `forward` would give that token.
        """
        for i in range(self.lo, upto if upto is not None else self.hi):
            h = self._block(i, h, cache, pos, branch=True)
        return h

    def forward(self, h: np.ndarray, cache: IntCache, pos0: int) -> np.ndarray:
        """Run layers lo..hi-1 on Q16 hidden states of positions pos0..pos0+T-1 (appends to the cache)."""
        if pos0 != cache.length:
            raise LlmError(f"position {pos0} does not continue the session cache (length {cache.length})")
        if pos0 + h.shape[0] > self.cfg.context_length:
            raise LlmError(f"positions up to {pos0 + h.shape[0]} exceed the context length {self.cfg.context_length}")
        for i in range(self.lo, self.hi):
            h = self._block(i, h, cache, pos0)
        cache.length = pos0 + h.shape[0]
        return h

    def generate(self, ids: Sequence[int], n: int) -> list[int]:
        """Greedy decoding in one process (the plaintext single-process baseline)."""
        cache = IntCache()
        h = self.forward(self.embed(ids, 0), cache, 0)
        out: list[int] = []
        pos = len(ids)
        for _ in range(n):
            tok = self.next_token(h[-1])
            out.append(tok)
            h = self.forward(self.embed([tok], pos), cache, pos)
            pos += 1
        return out
