"""Tensor payloads in the content store (docs/architecture.md §1.3).

Nodes decode a request's input with `decode_input`; any reason it fails becomes the
INVALID_INPUT outcome, so the checks are strict and identical on every node (no floats, no
booleans, no NaN, no duplicate or extra keys, exact dtype and shape, in-range values).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from verinfer.models.errors import InvalidInputError

TENSOR_FORMAT = "verinfer.tensor.v1"
MAX_INPUT_BYTES = 1 << 20
DTYPE_BITS = {"int8": 8, "int32": 32}
_KEYS = {"format", "dtype", "shape", "data"}

__all__ = [
    "TENSOR_FORMAT",
    "MAX_INPUT_BYTES",
    "DTYPE_BITS",
    "InvalidInputError",
    "Tensor",
    "encode_tensor",
    "decode_tensor",
    "decode_input",
    "encode_output",
    "dtype_for_bits",
]


class InputContract(Protocol):
    """What a model declares about its inputs (ModelSpec and LanguageModelSpec both do)."""

    @property
    def input_dtype(self) -> str: ...

    def check_input_tensor(self, shape: list[int], data: list[int]) -> None: ...


@dataclass(frozen=True)
class Tensor:
    """A decoded payload: dtype name, shape, flattened row-major integer data."""

    dtype: str
    shape: list[int]
    data: list[int]


def dtype_for_bits(bits: int) -> str:
    """The narrowest payload dtype holding `bits`-wide signed values."""
    if bits <= 8:
        return "int8"
    if bits <= 32:
        return "int32"
    raise ValueError(f"no tensor dtype holds {bits}-bit values")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def encode_tensor(data: Sequence[int], dtype: str, shape: Sequence[int] | None = None) -> bytes:
    """Canonical payload bytes (sorted keys, compact) for a flattened integer tensor."""
    if dtype not in DTYPE_BITS:
        raise ValueError(f"dtype must be one of {sorted(DTYPE_BITS)}, got {dtype!r}")
    values = [int(v) for v in data]
    shape = [len(values)] if shape is None else [int(d) for d in shape]
    if any(d < 0 for d in shape) or math.prod(shape) != len(values):
        raise ValueError(f"shape {shape} does not hold {len(values)} values")
    half = 1 << (DTYPE_BITS[dtype] - 1)
    for v in values:
        if not -half <= v < half:
            raise ValueError(f"value {v} does not fit {dtype}")
    obj = {"format": TENSOR_FORMAT, "dtype": dtype, "shape": shape, "data": values}
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidInputError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _bad_constant(name: str) -> Any:
    raise InvalidInputError(f"{name} is not allowed")


MAX_BRACKETS = 8


def _bracket_count(text: str) -> int:
    """Opening brackets anywhere in the text. A valid payload has exactly 3 (the object, `shape`,
    `data`; no allowed string contains one), so a cap rejects nothing valid while keeping
    json.loads, whose C scanner recurses per nesting level, away from hostile deep nesting."""
    return text.count("[") + text.count("{")


def decode_tensor(payload: bytes) -> Tensor:
    """Parse and check a §1.3 payload without reference to a model."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise InvalidInputError("payload must be bytes")
    payload = bytes(payload)
    if len(payload) > MAX_INPUT_BYTES:
        raise InvalidInputError(f"payload is {len(payload)} bytes, more than {MAX_INPUT_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("payload is not UTF-8") from None
    if _bracket_count(text) > MAX_BRACKETS:
        raise InvalidInputError(f"payload has more than {MAX_BRACKETS} brackets; a tensor payload has 3")
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_bad_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"payload is not JSON: {exc.msg}") from None
    except RecursionError:
        raise InvalidInputError("payload nests too deeply") from None
    if not isinstance(obj, dict):
        raise InvalidInputError("payload must be a JSON object")
    if set(obj) != _KEYS:
        raise InvalidInputError(f"payload keys must be {sorted(_KEYS)}, got {sorted(obj)}")
    if obj["format"] != TENSOR_FORMAT:
        raise InvalidInputError(f"format must be {TENSOR_FORMAT!r}, got {obj['format']!r}")
    dtype = obj["dtype"]
    if dtype not in DTYPE_BITS:
        raise InvalidInputError(f"dtype must be one of {sorted(DTYPE_BITS)}, got {dtype!r}")
    shape = obj["shape"]
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise InvalidInputError("shape must be a list of non-negative integers")
    data = obj["data"]
    if not isinstance(data, list) or not all(_is_int(v) for v in data):
        raise InvalidInputError("data must be a flat list of integers")
    if math.prod(shape) != len(data):
        raise InvalidInputError(f"shape {shape} does not match {len(data)} values")
    half = 1 << (DTYPE_BITS[dtype] - 1)
    for v in data:
        if not -half <= v < half:
            raise InvalidInputError(f"value {v} is out of range for {dtype}")
    return Tensor(dtype, shape, data)


def decode_input(payload: bytes, spec: InputContract) -> list[int]:
    """The input vector a node executes and hashes, or InvalidInputError with the reason."""
    tensor = decode_tensor(payload)
    if tensor.dtype != spec.input_dtype:
        raise InvalidInputError(f"dtype must be {spec.input_dtype}, got {tensor.dtype}")
    spec.check_input_tensor(tensor.shape, tensor.data)
    return tensor.data


def encode_output(values: Sequence[int], output_bits: int) -> bytes:
    """Payload for an output vector (int32 logits or token ids)."""
    return encode_tensor(values, dtype_for_bits(output_bits), [len(values)])
