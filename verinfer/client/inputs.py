"""Turning what a user types (`--input …`) into a model input vector and its tensor payload.

Why here and not in the CLI: the SDK, the demo, the benchmarks and the tests take the same input
forms, and the client must reject a malformed input *before* paying a fee for it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from verinfer.errors import ConfigError, VerinferError
from verinfer.inference.lm import LanguageModelSpec, lm_files
from verinfer.inference.runtime import Model
from verinfer.models.errors import InvalidInputError
from verinfer.models.gguf import LlmSpec
from verinfer.models.tensor import decode_input, encode_tensor
from verinfer.storage.base import ContentStore

DIGITS_SAMPLES = "digits-samples.json"
_SAMPLE_RE = re.compile(r"^digits-sample:(\d+)$")


@dataclass(frozen=True)
class PreparedInput:
    """An input ready to store: the vector, its canonical payload, and the label when known."""

    vector: list[int]
    payload: bytes
    label: int | None = None
    source: str = ""


@lru_cache(maxsize=1)
def digits_samples() -> list[dict[str, Any]]:
    """The held-out digits samples shipped with the package (input vectors + true labels)."""
    try:
        text = resources.files("verinfer.models").joinpath("data", DIGITS_SAMPLES).read_text()
    except (FileNotFoundError, OSError):
        raise ConfigError(f"the package has no verinfer/models/data/{DIGITS_SAMPLES}") from None
    data = json.loads(text)
    samples = data.get("samples", data) if isinstance(data, dict) else data
    out: list[dict[str, Any]] = []
    for s in samples:
        vec = s.get("pixels", s.get("input"))
        out.append({"input": [int(v) for v in vec], "label": int(s["label"]) if "label" in s else None})
    return out


def digits_sample(index: int) -> tuple[list[int], int | None]:
    """Held-out sample `index` (its model input vector and true label)."""
    samples = digits_samples()
    if not 0 <= index < len(samples):
        raise ConfigError(f"digits-sample:{index} does not exist (there are {len(samples)} samples, 0..{len(samples) - 1})")
    s = samples[index]
    return list(s["input"]), s["label"]


def _ids_or_file(text: str) -> bool:
    """`--input` names a file or raw ids rather than prompt text."""
    if text.startswith("text:"):
        return False
    return text.endswith(".json") or Path(text).is_file() or bool(re.fullmatch(r"[\s\d,\[\]]+", text.strip() or "x"))


def encode_payload(vector: Sequence[int], spec: Model) -> bytes:
    """The verinfer.tensor.v1 payload of an input vector for `spec` (§1.3); an LM prompt is [n] int32 ids."""
    shape = [len(vector)] if isinstance(spec, (LanguageModelSpec, LlmSpec)) else spec.input_shape
    try:
        return encode_tensor(list(vector), spec.input_dtype, shape)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid input for model {spec.name}: {exc}") from None


def validate_payload(payload: bytes, spec: Model) -> list[int]:
    """Decode a payload exactly as the nodes will; a ConfigError here saves the requester a fee."""
    try:
        return [int(v) for v in decode_input(payload, spec)]
    except InvalidInputError as exc:
        raise ConfigError(f"invalid input for model {spec.name}: {exc}") from None


def _parse_ints(text: str) -> list[int]:
    parts = [p for p in re.split(r"[\s,]+", text.strip().strip("[]")) if p]
    try:
        return [int(p, 0) for p in parts]
    except ValueError:
        raise ConfigError(f"input {text[:40]!r} is neither a file, digits-sample:N, nor a list of integers") from None


def load_vocab(spec: LanguageModelSpec, store: ContentStore | None = None) -> dict[str, int]:
    """The LM's character vocabulary (char -> id): by its CID from the store, sha256-checked; else shipped."""
    raw: bytes | None = None
    if spec.vocab_cid and store is not None:
        raw = store.cat(spec.vocab_cid, max_bytes=16 << 20)
        if hashlib.sha256(raw).hexdigest() != spec.vocab_sha256:
            raise ConfigError(f"vocabulary {spec.vocab_cid} does not have the spec's sha256")
    if raw is None:
        try:
            raw = lm_files(spec)["vocab"]
        except VerinferError as exc:
            raise ConfigError(f"vocabulary of {spec.name} unavailable: {exc}") from None
    vocab = json.loads(raw)
    if not isinstance(vocab, dict):
        raise ConfigError(f"vocabulary of {spec.name} is not a JSON object")
    return {str(k): int(v) for k, v in vocab.items()}


def encode_prompt(text: str, spec: LanguageModelSpec, store: ContentStore | None = None) -> list[int]:
    """Prompt text -> token ids as textgenrnn does: the meta token first, one id per character."""
    if not text:
        raise ConfigError("the prompt is empty")
    vocab = load_vocab(spec, store)
    unknown = sorted({c for c in text if c not in vocab})
    if unknown:
        raise ConfigError(f"prompt characters {''.join(unknown)!r} are not in {spec.name}'s vocabulary")
    ids = [spec.stop_token] + [vocab[c] for c in text]
    if len(ids) > spec.max_prompt_tokens:
        raise ConfigError(f"prompt is {len(ids) - 1} characters; {spec.name} takes at most {spec.max_prompt_tokens - 1}")
    return ids


def decode_tokens(spec: LanguageModelSpec, ids: Sequence[int], store: ContentStore | None = None) -> str:
    """Generated ids -> text (the meta/stop token and padding dropped)."""
    by_id = {i: c for c, i in load_vocab(spec, store).items()}
    return "".join(by_id.get(int(i), "") for i in ids if int(i) not in (0, spec.stop_token))


def prepare_input(text: str, spec: Model, store: ContentStore | None = None) -> PreparedInput:
    """Parse `--input`: a JSON file (a tensor payload or a plain list), `digits-sample:N`, raw ints,
    or — for a language model — `text:PROMPT` / any other text as the prompt."""
    if isinstance(spec, LlmSpec) and not _ids_or_file(text):
        from verinfer.client.llm import encode_prompt as encode_llm_prompt

        if store is None:
            raise ConfigError(f"model {spec.name}: the tokenizer is read from the content store; none was given")
        prompt = text[5:] if text.startswith("text:") else text
        ids = encode_llm_prompt(prompt, spec, store)
        return PreparedInput(ids, encode_payload(ids, spec), None, f"prompt {prompt!r}")
    if isinstance(spec, LanguageModelSpec):
        prompt = text[5:] if text.startswith("text:") else text
        if not text.startswith("text:") and (text.endswith(".json") or Path(text).is_file()):
            pass  # a file: tensor payload or list of ids, below
        elif not text.startswith("text:") and re.fullmatch(r"[\s\d,\[\]]+", text.strip() or "x"):
            pass  # raw ids, below
        else:
            ids = encode_prompt(prompt, spec, store)
            return PreparedInput(ids, encode_payload(ids, spec), None, f"prompt {prompt!r}")
    elif text.startswith("text:"):
        raise ConfigError(f"model {spec.name} is a classifier: a text prompt needs a language model "
                          "(e.g. --model textgenrnn); give digits-sample:N, a JSON file or integers")
    m = _SAMPLE_RE.match(text.strip())
    if m:
        vec, label = digits_sample(int(m.group(1)))
        return PreparedInput(vec, encode_payload(vec, spec), label, text.strip())
    path = Path(text)
    if text.endswith(".json") or path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read input file {text}: {exc.strerror}") from None
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"input file {text} is not JSON") from None
        label = None
        if isinstance(doc, dict) and doc.get("format") == "verinfer.tensor.v1":
            vec = validate_payload(raw, spec)
            return PreparedInput(vec, raw, None, text)
        if isinstance(doc, dict) and "input" in doc:
            label = doc.get("label")
            doc = doc["input"]
        if not isinstance(doc, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in doc):
            raise ConfigError(f"input file {text} must hold a tensor payload or a list of integers")
        payload = encode_payload(doc, spec)
        return PreparedInput(validate_payload(payload, spec), payload, label, text)
    vec = _parse_ints(text)
    payload = encode_payload(vec, spec)
    return PreparedInput(validate_payload(payload, spec), payload, None, "raw")
