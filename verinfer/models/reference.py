"""The integer reference executor (§1.4): the bit-exact semantics every node and circuit matches.

Arithmetic is int64 numpy. That is exact, not approximate: `ModelSpec` validation proves by
interval analysis that no accumulator can leave ±2^62 for any input inside `input_bits`, and
inputs are range-checked here before use. `>>` on int64 is an arithmetic shift, i.e. floor
division by 2^shift, exactly as the circuits compute it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from verinfer.models.errors import InvalidInputError
from verinfer.models.spec import AvgPool2dLayer, Conv2dLayer, DenseLayer, ModelSpec


@dataclass(frozen=True)
class LayerTrace:
    """One layer's intermediate values (for witness generation and debugging)."""

    index: int
    acc: list[int]  # W·x + b, before the shift
    out: list[int]  # after shift, relu, clamp


def _as_int_array(x: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "iub":
        raise InvalidInputError(f"input must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "b":
        raise InvalidInputError("input must be integers, got booleans")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= 1 << 62:
        raise InvalidInputError("input value out of range")
    return arr.astype(np.int64)


def check_input(spec: ModelSpec, x: Sequence[int] | np.ndarray, bits: int | None = None) -> np.ndarray:
    """Validate shape and range of an input vector (or a batch in the last axis)."""
    try:
        arr = _as_int_array(x)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError("input must be a vector of integers") from None
    if arr.ndim == 0 or arr.shape[-1] != spec.input_size:
        raise InvalidInputError(f"input has shape {arr.shape}, model takes {spec.input_size} values")
    bits = spec.input_bits if bits is None else bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise InvalidInputError(f"input values must lie in [{lo}, {hi}] (input_bits={bits})")
    return arr


def _apply(layer: DenseLayer | Conv2dLayer | AvgPool2dLayer, w: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    acc = x @ w.T + b
    out = acc >> layer.shift if layer.shift else acc
    if layer.relu:
        out = np.maximum(out, 0)
    if layer.clamp_bits is not None:
        half = 1 << (layer.clamp_bits - 1)
        out = np.clip(out, -half, half - 1)
    return acc, out


def _range(spec: ModelSpec, start: int, end: int | None) -> tuple[int, int]:
    end = spec.num_layers if end is None else end
    if not 0 <= start < end <= spec.num_layers:
        raise InvalidInputError(f"layer range [{start}, {end}) is not inside 0..{spec.num_layers}")
    return start, end


def run_layers_batch(spec: ModelSpec, xs: np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
    """Layers [start, end) on a batch of activation vectors (rows); returns int64 rows."""
    start, end = _range(spec, start, end)
    sub = spec.layer_range(start, end)
    arr = check_input(sub, xs)
    arrays = spec.arrays()
    for i in range(start, end):
        w, b = arrays[i]
        _, arr = _apply(spec.layers[i], w, b, arr)
    return arr


def run_layers(spec: ModelSpec, x: Sequence[int], start: int = 0, end: int | None = None) -> list[int]:
    """Activations after layers [start, end) given the activations entering layer `start`."""
    return [int(v) for v in run_layers_batch(spec, np.asarray(x).reshape(-1), start, end)]


def run(spec: ModelSpec, x: Sequence[int]) -> list[int]:
    """The model's integer output vector (logits) for one input: what consensus hashes."""
    return run_layers(spec, x)


def run_batch(spec: ModelSpec, xs: np.ndarray) -> np.ndarray:
    """Outputs for a batch of inputs (rows), for evaluation."""
    return run_layers_batch(spec, np.asarray(xs))


def predict(spec: ModelSpec, x: Sequence[int]) -> int:
    """Predicted class: argmax of the logits, lowest index on ties."""
    out = run(spec, x)
    return max(range(len(out)), key=lambda i: (out[i], -i))


def trace(spec: ModelSpec, x: Sequence[int]) -> list[LayerTrace]:
    """Every layer's accumulator and output for one input (the circuit witness's values)."""
    arr = check_input(spec, np.asarray(x).reshape(-1))
    traces = []
    for i, (layer, (w, b)) in enumerate(zip(spec.layers, spec.arrays(), strict=True)):
        acc, arr = _apply(layer, w, b, arr)
        traces.append(LayerTrace(i, [int(v) for v in acc], [int(v) for v in arr]))
    return traces
