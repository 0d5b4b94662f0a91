"""The language-model path: greedy decoding whose token ids are what consensus hashes.

The model is the real pretrained textgenrnn 2.0.0 char-level network (embedding 100, two
128-unit LSTMs, attention-weighted average over the 40-token window, softmax over 465 classes),
shipped in verinfer/models/data with its MIT notice. Its LSTMs were trained as cuDNN LSTMs, so the
weights are converted the way Keras converts CuDNNLSTM weights (see `_cudnn_gate_to_torch`).

Determinism: nodes must produce identical ids, so decoding is greedy (argmax, ties to the lowest
id), runs in float32 on one CPU thread with deterministic algorithms, and the profile hash pins
the torch version. The ids are hashed with `hash_vector(ids, 32)`.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from verinfer.errors import VerinferError
from verinfer.models.errors import InvalidInputError
from verinfer.models.hashing import FIELD
from verinfer.models.spec import (
    LM_FORMAT,
    ModelSpecError,
    execution_profile,
    execution_profile_hash,
    parse_json_document,
)

LM_RUNTIME = "verinfer.torch.greedy.v1"
LM_KERNELS = ("embedding", "lstm.sigmoid-tanh", "attention-weighted-average", "linear", "argmax.lowest-index")
TORCH_VERSION = "2.13.0"
BUILTIN_LMS = {"textgenrnn": "textgenrnn-lm.json"}
_KERAS_EPSILON = 1e-7


class LanguageModelError(VerinferError):
    """The language model cannot be loaded or run (missing torch, bad weights, bad spec)."""


class LanguageModelSpec(BaseModel):
    """A published language model: architecture, pinned weight files and decoding limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["verinfer.lm.v1"] = LM_FORMAT
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["lm"] = "lm"
    architecture: Literal["textgenrnn.char-lstm"] = "textgenrnn.char-lstm"
    weights_file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a bare file name
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    weights_cid: str | None = Field(default=None, max_length=128)  # set by `verinfer model publish`
    vocab_file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    vocab_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    vocab_cid: str | None = Field(default=None, max_length=128)
    vocab_size: StrictInt = Field(ge=2)
    context_length: StrictInt = Field(ge=1)
    embedding_dim: StrictInt = Field(ge=1)
    rnn_size: StrictInt = Field(ge=1)
    rnn_layers: StrictInt = Field(ge=1, le=8)
    stop_token: StrictInt = Field(ge=1)
    max_prompt_tokens: StrictInt = Field(ge=1, le=65536)
    max_new_tokens: StrictInt = Field(ge=1, le=4096)
    input_bits: Literal[32] = 32
    output_bits: Literal[32] = 32

    @property
    def input_dtype(self) -> str:
        return "int32"

    def check_input_tensor(self, shape: list[int], data: list[int]) -> None:
        """A prompt is 1..max_prompt_tokens ids in [0, vocab_size) with shape [len]."""
        if list(shape) != [len(data)]:
            raise InvalidInputError(f"prompt shape must be [{len(data)}], got {list(shape)}")
        if not 1 <= len(data) <= self.max_prompt_tokens:
            raise InvalidInputError(f"prompt must have 1..{self.max_prompt_tokens} tokens, got {len(data)}")
        for v in data:
            if not 0 <= v < self.vocab_size:
                raise InvalidInputError(f"token id {v} is outside the vocabulary [0, {self.vocab_size})")

    def canonical_json(self) -> bytes:
        """Canonical bytes (sorted keys, compact), as for model specs."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def lm_commitment(spec: LanguageModelSpec) -> int:
    """Registry commitment of an LM: keccak256(canonical spec JSON, which pins both files' sha256) mod FIELD."""
    return int.from_bytes(keccak(spec.canonical_json()), "big") % FIELD


def lm_profile(spec: LanguageModelSpec) -> dict[str, Any]:
    """The execution profile: runtime, kernels, torch version, dtype, threads, decoding."""
    return execution_profile(
        "lm",
        LM_RUNTIME,
        LM_KERNELS,
        torch=TORCH_VERSION,
        dtype="float32",
        threads=1,
        decoding="greedy",
        architecture=spec.architecture,
    )


def lm_profile_hash(spec: LanguageModelSpec) -> bytes:
    """bytes32 of `lm_profile`, as registered in ModelRegistry."""
    profile = lm_profile(spec)
    fixed = {k: v for k, v in profile.items() if k not in ("kind", "runtime", "kernels")}
    return execution_profile_hash(profile["kind"], profile["runtime"], profile["kernels"], **fixed)


def _data_dir() -> Path:
    return Path(str(resources.files("verinfer.models") / "data"))


def load_lm_spec(source: str | Path | bytes | Mapping[str, Any]) -> LanguageModelSpec:
    """Parse an LM spec from a path, JSON bytes, a mapping, or a built-in name (`textgenrnn`)."""
    if isinstance(source, str) and source in BUILTIN_LMS:
        source = _data_dir() / BUILTIN_LMS[source]
    try:
        if isinstance(source, Mapping):
            obj = dict(source)
        else:
            raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
            obj = parse_json_document(raw, "language model spec")
    except (OSError, ModelSpecError) as exc:
        raise LanguageModelError(f"cannot read language model spec: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != LM_FORMAT:
        raise LanguageModelError(f"language model spec format must be {LM_FORMAT!r}")
    try:
        return LanguageModelSpec.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise LanguageModelError(f"invalid language model spec at {where}: {first['msg']}") from None


def _resolve(name: str, sha256: str, base: Path | None) -> Path:
    """Find a pinned file (in `base` first, else shipped) and check its digest."""
    if Path(name).name != name or name.startswith("."):
        raise LanguageModelError(f"file name {name!r} must be a bare file name")
    candidates = [base / name] if base is not None else []
    candidates.append(_data_dir() / name)
    for path in candidates:
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != sha256:
                raise LanguageModelError(f"{path}: sha256 {digest} does not match the spec's {sha256}")
            return path
    raise LanguageModelError(f"weights file {name!r} not found (looked in {', '.join(map(str, candidates))})")


def lm_files(spec: LanguageModelSpec, base: Path | None = None) -> dict[str, bytes]:
    """The pinned weight and vocab bytes (digest-checked), e.g. to publish them content-addressed."""
    return {
        "weights": _resolve(spec.weights_file, spec.weights_sha256, base).read_bytes(),
        "vocab": _resolve(spec.vocab_file, spec.vocab_sha256, base).read_bytes(),
    }


def with_content_ids(spec: LanguageModelSpec, store: Any, base: Path | None = None) -> LanguageModelSpec:
    """Store the weight and vocab files and return the spec naming their CIDs (what gets published)."""
    files = lm_files(spec, base)
    return spec.model_copy(update={"weights_cid": store.add(files["weights"]), "vocab_cid": store.add(files["vocab"])})


def fetch_lm_files(spec: LanguageModelSpec, store: Any, directory: Path) -> Path:
    """Make the spec's files available in `directory` (fetched by CID, sha256-checked); use as `base`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, sha, cid in ((spec.weights_file, spec.weights_sha256, spec.weights_cid),
                           (spec.vocab_file, spec.vocab_sha256, spec.vocab_cid)):
        target = directory / name
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha:
            continue
        if cid is None:
            raise LanguageModelError(f"{name} has no CID in the spec and is not in {directory}")
        data = store.cat(cid, max_bytes=256 * 1024 * 1024)
        if hashlib.sha256(data).hexdigest() != sha:
            raise LanguageModelError(f"content {cid} does not have the spec's sha256 for {name}")
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return directory


def _import_torch():
    try:
        import torch
    except ModuleNotFoundError:  # not a fallback: the one-line instruction to install the extra
        raise LanguageModelError("the language-model runtime needs torch: pip install 'verinfer[lm]'") from None
    return torch


def _cudnn_gate_to_torch(block):
    """One gate's cuDNN-trained kernel block (in, H) -> torch weight (H, in).

    Keras' CuDNNLSTM flattened each (in, H) block row-major into cuDNN's canonical (H, in) matrix
    computing W·x; torch's weight_ih is exactly that matrix. (Keras' own CuDNNLSTM->LSTM conversion,
    `kernel.T.reshape(kernel.shape, order="F")`, is the transpose of the same thing.)
    """
    n_in, hidden = block.shape
    return block.reshape(-1).reshape(hidden, n_in)


class TextgenRNN:
    """The textgenrnn network in torch, with greedy decoding."""

    def __init__(self, spec: LanguageModelSpec, base: Path | None = None) -> None:
        torch = _import_torch()
        try:
            import h5py
        except ModuleNotFoundError:  # not a fallback: the one-line instruction to install the extra
            raise LanguageModelError("loading textgenrnn weights needs h5py: pip install 'verinfer[lm]'") from None
        import numpy as np

        self.spec = spec
        self.torch = torch
        torch.set_num_threads(1)
        weights_path = _resolve(spec.weights_file, spec.weights_sha256, base)
        vocab_path = _resolve(spec.vocab_file, spec.vocab_sha256, base)
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        if len(vocab) + 1 != spec.vocab_size or sorted(vocab.values()) != list(range(1, spec.vocab_size)):
            raise LanguageModelError("vocabulary does not match vocab_size (ids must be 1..vocab_size-1)")
        self.char_to_id: dict[str, int] = vocab
        self.id_to_char = {i: c for c, i in vocab.items()}

        h = spec.rnn_size
        with h5py.File(weights_path, "r") as f:
            def w(path: str):
                return np.asarray(f[path], dtype=np.float32)

            emb = w("embedding/embedding/embeddings:0")
            if emb.shape != (spec.vocab_size, spec.embedding_dim):
                raise LanguageModelError(f"embedding shape {emb.shape} does not match the spec")
            self.embedding = torch.nn.Embedding(spec.vocab_size, spec.embedding_dim)
            self.embedding.weight.data = torch.from_numpy(emb)
            self.lstms = []
            n_in = spec.embedding_dim
            for layer in range(1, spec.rnn_layers + 1):
                kernel = w(f"rnn_{layer}/rnn_{layer}/kernel:0")
                recurrent = w(f"rnn_{layer}/rnn_{layer}/recurrent_kernel:0")
                bias = w(f"rnn_{layer}/rnn_{layer}/bias:0")
                if kernel.shape != (n_in, 4 * h) or recurrent.shape != (h, 4 * h) or bias.shape != (8 * h,):
                    raise LanguageModelError(f"rnn_{layer} weights are not cuDNN-LSTM shaped for rnn_size={h}")
                lstm = torch.nn.LSTM(n_in, h, batch_first=True)
                gates = range(4)  # i, f, c(g), o in both cuDNN and torch order
                w_ih = np.concatenate([_cudnn_gate_to_torch(kernel[:, g * h : (g + 1) * h]) for g in gates])
                w_hh = np.concatenate([_cudnn_gate_to_torch(recurrent[:, g * h : (g + 1) * h]) for g in gates])
                lstm.weight_ih_l0.data = torch.from_numpy(np.ascontiguousarray(w_ih))
                lstm.weight_hh_l0.data = torch.from_numpy(np.ascontiguousarray(w_hh))
                lstm.bias_ih_l0.data = torch.from_numpy(bias[: 4 * h].copy())  # cuDNN input biases
                lstm.bias_hh_l0.data = torch.from_numpy(bias[4 * h :].copy())  # cuDNN recurrent biases
                self.lstms.append(lstm.eval())
                n_in = h
            width = spec.embedding_dim + spec.rnn_layers * h
            att = w("attention/attention/attention_W:0")
            out_kernel, out_bias = w("output/output/kernel:0"), w("output/output/bias:0")
            if att.shape != (width, 1) or out_kernel.shape != (width, spec.vocab_size):
                raise LanguageModelError("attention/output weights do not match the spec")
            self.attention = torch.from_numpy(att[:, 0].copy())
            self.output = torch.nn.Linear(width, spec.vocab_size)
            self.output.weight.data = torch.from_numpy(np.ascontiguousarray(out_kernel.T))
            self.output.bias.data = torch.from_numpy(out_bias)

    def logits(self, window: Sequence[int]):
        """Next-token logits for one context window (left-padded with id 0 to context_length)."""
        torch = self.torch
        n = self.spec.context_length
        ids = list(window)[-n:]
        ids = [0] * (n - len(ids)) + ids
        with torch.inference_mode():
            x = self.embedding(torch.tensor([ids], dtype=torch.long))
            feats = [x]
            for lstm in self.lstms:
                x, _ = lstm(x)
                feats.append(x)
            seq = torch.cat(feats, dim=-1)  # (1, T, width)
            scores = seq @ self.attention  # (1, T)
            a = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
            a = a / (a.sum(dim=1, keepdim=True) + _KERAS_EPSILON)
            pooled = (seq * a.unsqueeze(-1)).sum(dim=1)
            return self.output(pooled)[0]

    def generate(self, prompt_ids: Sequence[int]) -> list[int]:
        """Greedy decoding: up to max_new_tokens ids, stopping after the stop token (included)."""
        self.spec.check_input_tensor([len(prompt_ids)], list(prompt_ids))
        torch = self.torch
        torch.set_num_threads(1)
        context = list(prompt_ids)
        out: list[int] = []
        for _ in range(self.spec.max_new_tokens):
            logits = self.logits(context)[1:]  # id 0 is padding, never a token
            nxt = 1 + int(torch.argmax(logits).item())  # first maximal index on ties
            out.append(nxt)
            context.append(nxt)
            if nxt == self.spec.stop_token:
                break
        return out

    def encode(self, text: str) -> list[int]:
        """Prompt text -> ids: the stop/meta token `<s>` first, then one id per character (0 if unknown)."""
        return [self.spec.stop_token] + [self.char_to_id.get(c, 0) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text, dropping the meta token and padding."""
        return "".join(self.id_to_char.get(i, "") for i in ids if i not in (0, self.spec.stop_token))


@lru_cache(maxsize=4)
def _cached(canonical: bytes, base: str | None) -> TextgenRNN:
    return TextgenRNN(LanguageModelSpec.model_validate_json(canonical), Path(base) if base else None)


def load_lm(spec: LanguageModelSpec | str = "textgenrnn", base: Path | None = None) -> TextgenRNN:
    """A ready model for `spec` (cached per process: loading converts the weights once)."""
    if not isinstance(spec, LanguageModelSpec):
        spec = load_lm_spec(spec)
    return _cached(spec.canonical_json(), str(base) if base else None)


def generate(spec: LanguageModelSpec | str, prompt_ids: Sequence[int], base: Path | None = None) -> list[int]:
    """Greedy token ids for a prompt: the LM's output vector (hashed with 32 bits)."""
    return load_lm(spec, base).generate(prompt_ids)
