"""The models MetaInf measures: the shipped ones plus random-init variants of several sizes.

Shipped: the integer digits MLPs (`verinfer.models`, executed bit-exactly by the int64 reference)
and the pretrained textgenrnn char-LSTM (`verinfer.inference.lm`). No other weights can be
downloaded here, so leave-one-model-out needs *variants*: random-init integer MLPs, float MLPs,
LSTM language models and small GPT-style decoders of several widths and depths. Their timings
are real; their outputs are only compared with their own float32 reference (random weights say
nothing about accuracy, but a lot about how close to a tie the argmax is).

Every subject exposes one float torch module: for classifiers `forward(x[B, in]) -> logits`, for
language models `forward(ids[B, T]) -> next-token logits[B, V]`, and, where a state cache
applies, `prefill(ids) -> (logits, state)` / `step(ids[B, 1], state) -> (logits, state)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from verinfer.models.spec import DenseLayer, ModelSpec, ModelSpecError, load_builtin
from verinfer.models.spec import load as load_spec


def _torch() -> Any:
    import torch  # torch loads only when a torch subject is built

    return torch


@dataclass
class Subject:
    """One model under measurement, with the structural facts the features are made of."""

    name: str
    family: str  # int-mlp | mlp | lstm-lm | char-lstm | gpt-lm
    arch: str  # mlp | lstm | transformer
    origin: str  # shipped | random-init
    integer: bool  # integer semantics (bit-exact rule) vs float (top-1 rule)
    task: str  # classify | generate
    params: int
    width: int
    depth: int
    in_features: int  # classifier input width, or embedding width for LMs
    out_features: int  # classes or vocabulary
    module: Any  # torch.nn.Module (float32)
    kv: bool = False  # prefill/step with a state cache is available and exact in real arithmetic
    window: int | None = None  # fixed context window (textgenrnn: 40), else None
    exclude_zero: bool = False  # id 0 is padding, never generated (textgenrnn)
    spec: ModelSpec | None = None  # integer models: the spec the reference executes
    acc_bound: int | None = None  # integer models: worst-case |accumulator| over all inputs
    sample_inputs: Callable[[int, int], np.ndarray] | None = field(default=None, repr=False)


# ----------------------------------------------------------------------------- integer MLPs


def _dense_layers(spec: ModelSpec) -> list[DenseLayer]:
    """The layers of an integer MLP (these subjects are dense-only: a conv spec is refused by name)."""
    out = []
    for i, layer in enumerate(spec.layers):
        if not isinstance(layer, DenseLayer):
            raise ModelSpecError(f"{spec.name}: layer {i} is {layer.type}; integer MLP subjects take dense layers only")
        out.append(layer)
    return out


def acc_bound(spec: ModelSpec) -> int:
    """Largest |partial sum| any layer's accumulator can reach (interval analysis, like the spec's).

    Any partial sum of W·x + b is bounded by sum|w|·max|x| + |b|, so this bound also covers every
    summation order a float kernel might use: below 2^24 (2^53) float32 (float64) is exact.
    """
    lo, hi = -(1 << (spec.input_bits - 1)), (1 << (spec.input_bits - 1)) - 1
    worst = 0
    for layer in _dense_layers(spec):
        m = max(-lo, hi)
        w = np.abs(np.asarray(layer.weight, dtype=np.int64)).sum(axis=1)
        b = np.abs(np.asarray(layer.bias, dtype=np.int64))
        worst = max(worst, int((w * m + b).max()))
        lo, hi = layer.output_range(lo, hi)
    return worst


def int_mlp_module(spec: ModelSpec):
    """The spec's integer semantics in float32 torch ops: floor(acc * 2^-shift), relu, clamp.

    Exact whenever `acc_bound(spec) < 2^24`: every product and partial sum is an integer that
    float32 represents, and scaling by a power of two is exact.
    """
    torch = _torch()
    Module: Any = torch.nn.Module  # subclassed below; torch has no static types here

    class IntMLP(Module):
        def __init__(self) -> None:
            super().__init__()
            self.linears = torch.nn.ModuleList()
            self.ops: list[tuple[float, bool, int | None]] = []
            for layer in _dense_layers(spec):
                lin = torch.nn.Linear(layer.in_, layer.out)
                lin.weight.data = torch.tensor(layer.weight, dtype=torch.float32)
                lin.bias.data = torch.tensor(layer.bias, dtype=torch.float32)
                self.linears.append(lin)
                self.ops.append((2.0 ** -layer.shift, layer.relu, layer.clamp_bits))

        def forward(self, x):
            for lin, (scale, relu, clamp) in zip(self.linears, self.ops, strict=True):
                x = lin(x)
                if scale != 1.0:
                    x = torch.floor(x * scale)
                if relu:
                    x = torch.relu(x)
                if clamp is not None:
                    half = float(1 << (clamp - 1))
                    x = torch.clamp(x, -half, half - 1.0)
            return x

    return IntMLP().eval()


def random_int_spec(name: str, sizes: list[int], seed: int, w_std: float = 40.0) -> ModelSpec:
    """A valid random integer MLP spec (int8 weights, 8-bit clamped hidden layers)."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = np.clip(np.rint(rng.normal(0, w_std, size=(n_out, n_in))), -127, 127).astype(int)
        b = rng.integers(-1000, 1000, size=n_out)
        last = i == len(sizes) - 2
        # shift so a typical accumulator (std ~ 40*64*sqrt(n_in)) lands in the 8-bit clamp range
        typical = w_std * 64 * math.sqrt(n_in)
        shift = 0 if last else max(0, int(math.log2(typical)) - 6)
        layers.append({
            "in": n_in, "out": n_out, "weight": w.tolist(), "bias": b.tolist(), "shift": shift,
            "relu": not last, "clamp_bits": None if last else 8,
        })
    return load_spec({"format": "verinfer.model.v1", "name": name, "kind": "mlp", "input_shape": [sizes[0]],
                      "input_bits": 8, "output_bits": 48, "layers": layers})


def _int_subject(spec: ModelSpec, origin: str, samples: np.ndarray | None, seed: int) -> Subject:
    widths = [layer.out for layer in spec.layers[:-1]] or [spec.output_size]

    def sample(n: int, s: int) -> np.ndarray:
        if samples is not None:
            idx = np.random.default_rng(s).choice(len(samples), size=n, replace=len(samples) < n)
            return samples[idx].astype(np.int64)
        return np.random.default_rng(s + seed).integers(-128, 128, size=(n, spec.input_size))

    return Subject(
        name=spec.name, family="int-mlp", arch="mlp", origin=origin, integer=True, task="classify",
        params=spec.num_parameters, width=max(widths), depth=spec.num_layers, in_features=spec.input_size,
        out_features=spec.output_size, module=int_mlp_module(spec), spec=spec, acc_bound=acc_bound(spec),
        sample_inputs=sample,
    )


# ----------------------------------------------------------------------------- float MLPs


def float_mlp(name: str, n_in: int, width: int, depth: int, classes: int, seed: int) -> Subject:
    """A random-init float MLP classifier (depth Linear layers)."""
    torch = _torch()
    torch.manual_seed(seed)
    mods: list[Any] = []
    d = n_in
    for _ in range(depth - 1):
        mods += [torch.nn.Linear(d, width), torch.nn.ReLU()]
        d = width
    mods.append(torch.nn.Linear(d, classes))
    module = torch.nn.Sequential(*mods).eval()

    def sample(n: int, s: int) -> np.ndarray:
        return np.random.default_rng(s + seed).normal(size=(n, n_in)).astype(np.float32)

    params = sum(p.numel() for p in module.parameters())
    return Subject(name, "mlp", "mlp", "random-init", False, "classify", params, width, depth, n_in, classes,
                   module, sample_inputs=sample)


# ----------------------------------------------------------------------------- language models


def lstm_lm(name: str, vocab: int, emb: int, hidden: int, layers: int, seed: int) -> Subject:
    """A random-init LSTM language model; its (h, c) state is the cache (`kv`)."""
    torch = _torch()
    Module: Any = torch.nn.Module  # subclassed below; torch has no static types here
    torch.manual_seed(seed)

    class LSTMLM(Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, emb)
            self.lstm = torch.nn.LSTM(emb, hidden, num_layers=layers, batch_first=True)
            self.head = torch.nn.Linear(hidden, vocab)
            with torch.no_grad():  # sharper logits than default init, so argmax is not a coin toss
                self.head.weight.mul_(4.0)

        def forward(self, ids):
            out, _ = self.lstm(self.emb(ids))
            return self.head(out[:, -1])

        def prefill(self, ids):
            out, state = self.lstm(self.emb(ids))
            return self.head(out[:, -1]), state

        def step(self, ids, state):
            out, state = self.lstm(self.emb(ids), state)
            return self.head(out[:, -1]), state

    module = LSTMLM().eval()
    params = sum(p.numel() for p in module.parameters())
    return Subject(name, "lstm-lm", "lstm", "random-init", False, "generate", params, hidden, layers, emb, vocab,
                   module, kv=True)


def gpt_lm(name: str, vocab: int, d: int, layers: int, heads: int, seed: int, max_pos: int = 1024) -> Subject:
    """A random-init GPT-style decoder (pre-LN, causal attention, GELU MLP) with a KV cache."""
    torch = _torch()
    Module: Any = torch.nn.Module  # subclassed below; torch has no static types here
    torch.manual_seed(seed)
    hd = d // heads

    class Block(Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = torch.nn.LayerNorm(d)
            self.qkv = torch.nn.Linear(d, 3 * d)
            self.proj = torch.nn.Linear(d, d)
            self.ln2 = torch.nn.LayerNorm(d)
            self.fc = torch.nn.Linear(d, 4 * d)
            self.out = torch.nn.Linear(4 * d, d)

        def forward(self, x, mask, past_k=None, past_v=None):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            q = q.reshape(b, t, heads, hd).transpose(1, 2)
            k = k.reshape(b, t, heads, hd).transpose(1, 2)
            v = v.reshape(b, t, heads, hd).transpose(1, 2)
            if past_k is not None:
                k = torch.cat([past_k, k], dim=2)
                v = torch.cat([past_v, v], dim=2)
            att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            if mask is not None:
                att = att.masked_fill(mask, float("-inf"))
            y = (torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
            x = x + self.proj(y)
            x = x + self.out(torch.nn.functional.gelu(self.fc(self.ln2(x))))
            return x, k, v

    class GPT(Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = torch.nn.Embedding(vocab, d)
            self.pos = torch.nn.Embedding(max_pos, d)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(layers))
            self.ln = torch.nn.LayerNorm(d)
            self.head = torch.nn.Linear(d, vocab)
            with torch.no_grad():
                self.head.weight.mul_(4.0)
            self.register_buffer("causal", ~torch.tril(torch.ones(max_pos, max_pos, dtype=torch.bool)))

        def _run(self, ids, start: int, past):
            t = ids.shape[1]
            pos = torch.arange(start, start + t).unsqueeze(0)
            x = self.tok(ids) + self.pos(pos)
            mask = self.causal[start : start + t, : start + t] if t > 1 else None
            cache = []
            for i, blk in enumerate(self.blocks):
                pk, pv = past[i] if past is not None else (None, None)
                x, k, v = blk(x, mask, pk, pv)
                cache.append((k, v))
            return self.head(self.ln(x[:, -1])), cache

        def forward(self, ids):
            return self._run(ids, 0, None)[0]

        def prefill(self, ids):
            return self._run(ids, 0, None)

        def step(self, ids, state):
            return self._run(ids, state[0][0].shape[2], state)

    module = GPT().eval()
    params = sum(p.numel() for n, p in module.named_parameters())
    return Subject(name, "gpt-lm", "transformer", "random-init", False, "generate", params, d, layers, d, vocab,
                   module, kv=True)


def textgenrnn_subject(spec: Any = "textgenrnn", base: Any = None) -> Subject:
    """The shipped pretrained char-LSTM as a batched torch module (same computation as lm.TextgenRNN).

    Its attention pools over a sliding 40-token window that is re-run from scratch every step,
    so no state cache can reproduce it: `kv` is False.
    """
    torch = _torch()
    Module: Any = torch.nn.Module  # subclassed below; torch has no static types here
    from verinfer.inference.lm import _KERAS_EPSILON, load_lm

    lm = load_lm(spec, base)

    class CharLSTM(Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = lm.embedding
            self.lstms = torch.nn.ModuleList(lm.lstms)
            self.register_buffer("attention", lm.attention.clone())
            self.output = lm.output

        def forward(self, ids):
            x = self.embedding(ids)
            feats = [x]
            for lstm in self.lstms:
                x, _ = lstm(x)
                feats.append(x)
            seq = torch.cat(feats, dim=-1)
            scores = seq @ self.attention
            a = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
            a = a / (a.sum(dim=1, keepdim=True) + _KERAS_EPSILON)
            return self.output((seq * a.unsqueeze(-1)).sum(dim=1))

    module = CharLSTM().eval()
    spec = lm.spec
    params = sum(p.numel() for p in module.parameters()) + int(module.attention.numel())
    return Subject(spec.name, "char-lstm", "lstm", "shipped", False, "generate", params, spec.rnn_size,
                   spec.rnn_layers, spec.embedding_dim, spec.vocab_size, module, kv=False,
                   window=spec.context_length, exclude_zero=True)


# ----------------------------------------------------------------------------- the zoo

#: name -> builder. Sizes are chosen so the default grid runs in minutes on 2 shared cores.
def _digits(name: str) -> Subject:
    from verinfer.models.digits import load_split

    spec = load_builtin(name)
    return _int_subject(spec, "shipped", load_split().x_test, 0)


ZOO: dict[str, Callable[[], Subject]] = {
    "digits-mlp": lambda: _digits("digits-mlp"),
    "digits-mlp-large": lambda: _digits("digits-mlp-large"),
    "int-mlp-256": lambda: _int_subject(random_int_spec("int-mlp-256", [128, 256, 10], 1), "random-init", None, 1),
    "int-mlp-512x2": lambda: _int_subject(random_int_spec("int-mlp-512x2", [256, 512, 512, 10], 2), "random-init",
                                          None, 2),
    "int-mlp-wide": lambda: _int_subject(random_int_spec("int-mlp-wide", [2048, 512, 10], 3, 100.0), "random-init",
                                         None, 3),
    "int-mlp-64": lambda: _int_subject(random_int_spec("int-mlp-64", [64, 64, 10], 4), "random-init", None, 4),
    "int-mlp-1024x2": lambda: _int_subject(random_int_spec("int-mlp-1024x2", [512, 1024, 1024, 10], 5),
                                           "random-init", None, 5),
    "int-mlp-128x4": lambda: _int_subject(random_int_spec("int-mlp-128x4", [128, 128, 128, 128, 128, 10], 6),
                                          "random-init", None, 6),
    "mlp-32x2": lambda: float_mlp("mlp-32x2", 64, 32, 2, 10, 16),
    "mlp-128x2": lambda: float_mlp("mlp-128x2", 64, 128, 2, 10, 11),
    "mlp-512x3": lambda: float_mlp("mlp-512x3", 256, 512, 3, 10, 12),
    "mlp-1024x2": lambda: float_mlp("mlp-1024x2", 784, 1024, 2, 10, 13),
    "mlp-256x6": lambda: float_mlp("mlp-256x6", 128, 256, 6, 100, 14),
    "mlp-2048x2": lambda: float_mlp("mlp-2048x2", 1024, 2048, 2, 1000, 15),
    "mlp-768x4": lambda: float_mlp("mlp-768x4", 256, 768, 4, 100, 17),
    "mlp-4096x2": lambda: float_mlp("mlp-4096x2", 512, 4096, 2, 10, 18),
    "textgenrnn": textgenrnn_subject,
    "lstm-lm-64": lambda: lstm_lm("lstm-lm-64", 96, 32, 64, 1, 21),
    "lstm-lm-128": lambda: lstm_lm("lstm-lm-128", 128, 32, 128, 1, 23),
    "lstm-lm-256x2": lambda: lstm_lm("lstm-lm-256x2", 256, 64, 256, 2, 22),
    "gpt-32x1": lambda: gpt_lm("gpt-32x1", 128, 32, 1, 2, 34),
    "gpt-64x2": lambda: gpt_lm("gpt-64x2", 256, 64, 2, 4, 31),
    "gpt-128x4": lambda: gpt_lm("gpt-128x4", 512, 128, 4, 4, 32),
    "gpt-256x2": lambda: gpt_lm("gpt-256x2", 1024, 256, 2, 8, 33),
    "gpt-192x3": lambda: gpt_lm("gpt-192x3", 512, 192, 3, 6, 35),
}


def build(name: str) -> Subject:
    """Build one zoo model by name (KeyError names the known ones)."""
    try:
        builder = ZOO[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(ZOO)}") from None
    return builder()


def subject_for(model: Any) -> Subject | None:
    """A Subject for a verinfer model object (ModelSpec, textgenrnn LanguageModelSpec), else None."""
    if isinstance(model, ModelSpec):
        return _int_subject(model, "published", None, 0)
    if type(model).__name__ == "LanguageModelSpec" and getattr(model, "architecture", "") == "textgenrnn.char-lstm":
        return textgenrnn_subject(model)
    return None
