"""Float reference executor for `verinfer.models.gguf` checkpoints (numpy, float32 weights).

This is what the integer profile (llama_int) is measured against: greedy-token agreement over a
prompt set. It is not a consensus profile: its bits depend on BLAS, SIMD width and thread count.
Supports Llama (RMSNorm, interleaved-pair RoPE as ggml's "normal" mode, GQA, SwiGLU, optional QKV
bias) and GPT-2 (LayerNorm with bias, learned positions, GELU-tanh, biases), tied output head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from verinfer.models.gguf import Checkpoint, LlmConfig, dequantize


@dataclass
class FloatCache:
    """Per-session keys/values of each layer (post-RoPE keys)."""

    k: dict[int, np.ndarray] = field(default_factory=dict)
    v: dict[int, np.ndarray] = field(default_factory=dict)
    length: int = 0


class FloatModel:
    """Layers lo..hi-1 of a checkpoint (and embedding/head when `globals_`), in float32."""

    def __init__(self, ck: Checkpoint, layers: tuple[int, int] | None = None, globals_: bool = True) -> None:
        self.cfg: LlmConfig = ck.config
        self.lo, self.hi = layers if layers is not None else (0, ck.config.n_layers)
        self.w: dict[str, np.ndarray] = {}
        for name, t in ck.tensors.items():
            if name.startswith("blk."):
                if self.lo <= int(name.split(".")[1]) < self.hi:
                    self.w[name] = dequantize(t)
            elif globals_:
                self.w[name] = dequantize(t)
        if globals_ and "output.weight" not in self.w:
            self.w["output.weight"] = self.w["token_embd.weight"]
        c = self.cfg
        half = c.head_dim // 2
        self.inv_freq = (c.rope_base ** (-np.arange(half, dtype=np.float64) * 2 / c.head_dim))

    # -- pieces
    def embed(self, ids: Sequence[int], pos0: int = 0) -> np.ndarray:
        h = self.w["token_embd.weight"][np.asarray(ids)].astype(np.float32)
        if self.cfg.arch == "gpt2":
            h = h + self.w["position_embd.weight"][pos0:pos0 + len(ids)]
        return h

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        g = self.w[name + ".weight"]
        x64 = x.astype(np.float64)
        if self.cfg.arch == "gpt2":
            mu = x64.mean(-1, keepdims=True)
            var = ((x64 - mu) ** 2).mean(-1, keepdims=True)
            y = (x64 - mu) / np.sqrt(var + self.cfg.norm_eps) * g + self.w[name + ".bias"]
        else:
            y = x64 / np.sqrt((x64 * x64).mean(-1, keepdims=True) + self.cfg.norm_eps) * g
        return y.astype(np.float32)

    def _lin(self, x: np.ndarray, name: str) -> np.ndarray:
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        return y if b is None else y + b

    def _rope(self, x: np.ndarray, pos0: int, branch: bool = False) -> np.ndarray:
        t = x.shape[0]
        ang = np.arange(pos0, pos0 + (1 if branch else t), dtype=np.float64)[:, None] * self.inv_freq[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., 0::2].astype(np.float64), x[..., 1::2].astype(np.float64)
        out = np.empty(x.shape, dtype=np.float64)
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out.astype(np.float32)

    def _block(self, i: int, h: np.ndarray, cache: FloatCache, pos0: int, branch: bool = False) -> np.ndarray:
        c = self.cfg
        p = f"blk.{i}."
        T, hd = h.shape[0], c.head_dim
        x = self._norm(h, p + "attn_norm")
        q = self._lin(x, p + "attn_q").reshape(T, c.n_heads, hd)
        k = self._lin(x, p + "attn_k").reshape(T, c.n_kv_heads, hd)
        v = self._lin(x, p + "attn_v").reshape(T, c.n_kv_heads, hd)
        if c.arch == "llama":
            q, k = self._rope(q, pos0, branch), self._rope(k, pos0, branch)
        if branch:  # T alternative tokens at one position: each attends to the cache and itself
            kc = cache.k.get(i, np.zeros((0,) + k.shape[1:], np.float32))
            vc = cache.v.get(i, np.zeros((0,) + v.shape[1:], np.float32))
            kk = np.repeat(kc, c.group, axis=1).transpose(1, 2, 0)
            qh = q.transpose(1, 0, 2).astype(np.float64)  # (H, T, hd)
            ks = np.repeat(k, c.group, axis=1).transpose(1, 0, 2)
            sc = np.concatenate([qh @ kk, (qh * ks).sum(-1, keepdims=True)], axis=2) / np.sqrt(hd)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            vs = np.repeat(v, c.group, axis=1).transpose(1, 0, 2)
            o = sc[..., :-1] @ np.repeat(vc, c.group, axis=1).transpose(1, 0, 2) + sc[..., -1:] * vs
            o = o.transpose(1, 0, 2).reshape(T, c.n_heads * hd).astype(np.float32)
            return self._mlp(i, h + self._lin(o, p + "attn_output"))
        if i in cache.k:
            k = np.concatenate([cache.k[i], k])
            v = np.concatenate([cache.v[i], v])
        cache.k[i], cache.v[i] = k, v
        S = k.shape[0]
        kk = np.repeat(k, c.group, axis=1).transpose(1, 2, 0)  # (H, hd, S)
        vv = np.repeat(v, c.group, axis=1).transpose(1, 0, 2)  # (H, S, hd)
        sc = (q.transpose(1, 0, 2).astype(np.float64) @ kk) / np.sqrt(hd)  # (H, T, S)
        mask = np.arange(S)[None, :] > (np.arange(T)[:, None] + pos0)
        sc = np.where(mask[None], -np.inf, sc)
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        sc = sc / sc.sum(-1, keepdims=True)
        o = (sc @ vv).transpose(1, 0, 2).reshape(T, c.n_heads * hd).astype(np.float32)
        return self._mlp(i, h + self._lin(o, p + "attn_output"))

    def _mlp(self, i: int, h: np.ndarray) -> np.ndarray:
        c, p = self.cfg, f"blk.{i}."
        x = self._norm(h, p + "ffn_norm")
        if c.arch == "llama":
            g = self._lin(x, p + "ffn_gate").astype(np.float64)
            a = (g / (1 + np.exp(-g)) * self._lin(x, p + "ffn_up")).astype(np.float32)
        else:
            u = self._lin(x, p + "ffn_up").astype(np.float64)
            a = (0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3)))).astype(np.float32)
        return h + self._lin(a, p + "ffn_down")

    def embed_at(self, ids: Sequence[int] | np.ndarray, pos: int) -> np.ndarray:
        """Embeddings of alternative tokens all at position `pos` (for `branch`)."""
        h = self.w["token_embd.weight"][np.asarray(ids)].astype(np.float32)
        return h + self.w["position_embd.weight"][pos] if self.cfg.arch == "gpt2" else h

    def branch(self, h: np.ndarray, cache: FloatCache, pos: int, upto: int) -> np.ndarray:
        """Hidden states after layers lo..upto-1 for alternative tokens at `pos` (cache untouched)."""
        for i in range(self.lo, upto):
            h = self._block(i, h, cache, pos, branch=True)
        return h

    def forward(self, h: np.ndarray, cache: FloatCache, pos0: int) -> np.ndarray:
        """Run this model's layers on hidden states of positions pos0..pos0+T-1."""
        for i in range(self.lo, self.hi):
            h = self._block(i, h, cache, pos0)
        cache.length = pos0 + h.shape[0]
        return h

    def logits(self, h: np.ndarray) -> np.ndarray:
        return self._norm(h, "output_norm") @ self.w["output.weight"].T

    def generate(self, ids: Sequence[int], n: int) -> list[int]:
        """Greedy decoding (ties to the lowest id)."""
        cache = FloatCache()
        h = self.forward(self.embed(ids, 0), cache, 0)
        out: list[int] = []
        pos = len(ids)
        for _ in range(n):
            tok = int(np.argmax(self.logits(h[-1:])[0]))
            out.append(tok)
            h = self.forward(self.embed([tok], pos), cache, pos)
            pos += 1
        return out
