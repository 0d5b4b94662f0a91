"""Turning what a user types (`--input …`) into a model input vector and its tensor payload.

Why here and not in the CLI: the SDK, the demo, the benchmarks and the tests take the same input
forms, and the client must reject a malformed input *before* paying a fee for it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from verinfer.errors import ConfigError
from verinfer.models.spec import ModelSpec

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


def encode_payload(vector: Sequence[int], spec: ModelSpec) -> bytes:
    """The verinfer.tensor.v1 payload of an input vector for `spec` (§1.3)."""
    from verinfer.models.tensor import encode_tensor

    try:
        return encode_tensor(list(vector), spec.input_dtype, spec.input_shape)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid input for model {spec.name}: {exc}") from None


def validate_payload(payload: bytes, spec: ModelSpec) -> list[int]:
    """Decode a payload exactly as the nodes will; a ConfigError here saves the requester a fee."""
    from verinfer.models.errors import InvalidInputError
    from verinfer.models.tensor import decode_input

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


def prepare_input(text: str, spec: ModelSpec) -> PreparedInput:
    """Parse `--input`: a JSON file (a tensor payload or a plain list), `digits-sample:N`, or raw ints."""
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
