"""Model specs (docs/architecture.md §1.4): the quantized model every node and circuit agrees on.

A spec is validated when loaded so that a published model can never make honest nodes disagree:
shapes chain, weights are int8, biases int32, and a static worst-case bound proves that no
accumulator leaves int64 and that the outputs fit `output_bits` for *any* in-range input.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Mapping, Sequence, Union

import numpy as np
from eth_utils import keccak
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
    model_validator,
)

from verinfer.errors import VerinferError
from verinfer.models.errors import InvalidInputError
from verinfer.models.hashing import hash_vector, poseidon

MODEL_FORMAT: Final = "verinfer.model.v1"
LM_FORMAT: Final = "verinfer.lm.v1"  # language models: verinfer.inference.lm
INT8_MIN, INT8_MAX = -(1 << 7), (1 << 7) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
_ACC_LIMIT = 1 << 62  # accumulators stay well inside int64 (numpy executor) and the field
MAX_SPEC_BYTES = 64 * 1024 * 1024

REFERENCE_RUNTIME = "verinfer.reference.int.v1"
REFERENCE_KERNELS = ("dense.int8xint.acc-exact", "ashr.floor", "relu", "clamp.signed")
"""conv2d / avgpool2d / residual layers execute as their exact dense expansion (same kernels)."""

BUILTIN_MODELS = {"digits-mlp": "digits-mlp.json", "digits-mlp-large": "digits-mlp-large.json",
                  "digits-cnn": "digits-cnn.json"}


class ModelSpecError(VerinferError):
    """The model spec is malformed or unsafe to execute deterministically."""


class DenseLayer(BaseModel):
    """`acc = W·x + b; acc >>= shift; relu; clamp` — one integer dense layer (§1.4)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    type: Literal["dense"] = "dense"
    in_: StrictInt = Field(alias="in", ge=1)
    out: StrictInt = Field(ge=1)
    weight: list[list[StrictInt]]
    bias: list[StrictInt]
    shift: StrictInt = Field(default=0, ge=0, le=62)
    relu: StrictBool = False
    clamp_bits: StrictInt | None = Field(default=None, ge=2, le=32)

    @model_validator(mode="after")
    def _check(self) -> "DenseLayer":
        if len(self.weight) != self.out:
            raise ValueError(f"weight has {len(self.weight)} rows, expected out={self.out}")
        for r, row in enumerate(self.weight):
            if len(row) != self.in_:
                raise ValueError(f"weight row {r} has {len(row)} entries, expected in={self.in_}")
            for v in row:
                if not INT8_MIN <= v <= INT8_MAX:
                    raise ValueError(f"weight {v} in row {r} is not int8")
        if len(self.bias) != self.out:
            raise ValueError(f"bias has {len(self.bias)} entries, expected out={self.out}")
        for v in self.bias:
            if not INT32_MIN <= v <= INT32_MAX:
                raise ValueError(f"bias {v} is not int32")
        return self

    @property
    def n_params(self) -> int:
        return self.in_ * self.out + self.out

    def flat_weights(self) -> list[int]:
        """Weights in commitment order (row-major)."""
        return [w for row in self.weight for w in row]

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) as int64 arrays: the executor's view."""
        return np.asarray(self.weight, dtype=np.int64), np.asarray(self.bias, dtype=np.int64)

    def output_range(self, lo: int, hi: int) -> tuple[int, int]:
        """Worst-case [min, max] of the outputs for inputs in [lo, hi] (static overflow analysis)."""
        acc_lo = acc_hi = None
        for row, b in zip(self.weight, self.bias, strict=True):
            r_lo = r_hi = b
            for w in row:
                a, c = w * lo, w * hi
                if a < c:
                    r_lo += a
                    r_hi += c
                else:
                    r_lo += c
                    r_hi += a
            acc_lo = r_lo if acc_lo is None else min(acc_lo, r_lo)
            acc_hi = r_hi if acc_hi is None else max(acc_hi, r_hi)
        assert acc_lo is not None and acc_hi is not None
        if max(-acc_lo, acc_hi) >= _ACC_LIMIT:
            raise ValueError(f"accumulator can reach {max(-acc_lo, acc_hi)}, beyond 2^62")
        acc_lo, acc_hi = acc_lo >> self.shift, acc_hi >> self.shift
        if self.relu:
            acc_lo, acc_hi = max(acc_lo, 0), max(acc_hi, 0)
        if self.clamp_bits is not None:
            c_lo, c_hi = -(1 << (self.clamp_bits - 1)), (1 << (self.clamp_bits - 1)) - 1
            acc_lo, acc_hi = min(max(acc_lo, c_lo), c_hi), min(max(acc_hi, c_lo), c_hi)
        return acc_lo, acc_hi


def _requant_range(acc_lo: int, acc_hi: int, shift: int, relu: bool, clamp_bits: int | None) -> tuple[int, int]:
    if max(-acc_lo, acc_hi) >= _ACC_LIMIT:
        raise ValueError(f"accumulator can reach {max(-acc_lo, acc_hi)}, beyond 2^62")
    acc_lo, acc_hi = acc_lo >> shift, acc_hi >> shift
    if relu:
        acc_lo, acc_hi = max(acc_lo, 0), max(acc_hi, 0)
    if clamp_bits is not None:
        c_lo, c_hi = -(1 << (clamp_bits - 1)), (1 << (clamp_bits - 1)) - 1
        acc_lo, acc_hi = min(max(acc_lo, c_lo), c_hi), min(max(acc_hi, c_lo), c_hi)
    return acc_lo, acc_hi


def _dense_range(w: np.ndarray, b: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    a, c = w * lo, w * hi
    return int((np.minimum(a, c).sum(axis=1) + b).min()), int((np.maximum(a, c).sum(axis=1) + b).max())


def _out_hw(h: int, w: int, k: int, stride: int, pad: int) -> tuple[int, int]:
    return (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1


class Conv2dLayer(BaseModel):
    """`acc = conv2d(x; W, stride, padding) + b[c] (+ x << residual_shift); >>shift; relu; clamp`.

    x is CHW (flattened row-major), W is [out_channels][in_channels][k][k] int8, b per output
    channel. `residual_shift` (None = no residual) adds the layer's own input scaled by a power of
    two (the scale of the convolution's integer weights), so a residual block stays exact integers.
    Executes as its dense expansion, the same kernels as dense layers.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    type: Literal["conv2d"]
    in_shape: list[StrictInt] = Field(min_length=3, max_length=3)
    out_channels: StrictInt = Field(ge=1)
    kernel: StrictInt = Field(ge=1, le=15)
    stride: StrictInt = Field(default=1, ge=1)
    padding: StrictInt = Field(default=0, ge=0)
    weight: list[list[list[list[StrictInt]]]]
    bias: list[StrictInt]
    residual_shift: StrictInt | None = Field(default=None, ge=0, le=16)
    shift: StrictInt = Field(default=0, ge=0, le=62)
    relu: StrictBool = False
    clamp_bits: StrictInt | None = Field(default=None, ge=2, le=32)
    _dense: tuple[np.ndarray, np.ndarray] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> "Conv2dLayer":
        c, h, w = self.in_shape
        if min(c, h, w) < 1:
            raise ValueError(f"in_shape {self.in_shape} has a non-positive dimension")
        if h + 2 * self.padding < self.kernel or w + 2 * self.padding < self.kernel:
            raise ValueError(f"kernel {self.kernel} is larger than the padded input {self.in_shape}")
        k = self.kernel
        if len(self.weight) != self.out_channels or any(
                len(f) != c or any(len(r) != k or any(len(q) != k for q in r) for r in f) for f in self.weight):
            raise ValueError(f"conv weight must be [{self.out_channels}][{c}][{k}][{k}]")
        for v in self.flat_weights():
            if not INT8_MIN <= v <= INT8_MAX:
                raise ValueError(f"conv weight {v} is not int8")
        if len(self.bias) != self.out_channels or any(not INT32_MIN <= v <= INT32_MAX for v in self.bias):
            raise ValueError(f"conv bias must be {self.out_channels} int32 values")
        if self.residual_shift is not None and self.out_shape != list(self.in_shape):
            raise ValueError(f"residual needs equal shapes, got {self.in_shape} -> {self.out_shape}")
        return self

    @property
    def out_shape(self) -> list[int]:
        oh, ow = _out_hw(self.in_shape[1], self.in_shape[2], self.kernel, self.stride, self.padding)
        return [self.out_channels, oh, ow]

    @property
    def in_(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def n_params(self) -> int:
        return len(self.flat_weights()) + self.out_channels

    def flat_weights(self) -> list[int]:
        """Kernel weights in commitment order ([oc][ic][ky][kx] row-major)."""
        return [v for f in self.weight for r in f for q in r for v in q]

    def uses(self) -> list[list[tuple[int, int]]]:
        """For each output (CHW order): the (input index, flat weight index) pairs it sums."""
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        k, s, pad = self.kernel, self.stride, self.padding
        out = []
        for o in range(oc):
            for y in range(oh):
                for x in range(ow):
                    pairs = []
                    for ci in range(c):
                        for ky in range(k):
                            iy = y * s + ky - pad
                            if not 0 <= iy < h:
                                continue
                            for kx in range(k):
                                ix = x * s + kx - pad
                                if 0 <= ix < w:
                                    pairs.append(((ci * h + iy) * w + ix, ((o * c + ci) * k + ky) * k + kx))
                    out.append(pairs)
        return out

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact dense expansion (W: out x in, b: out), residual identity included."""
        if self._dense is None:
            flat = np.asarray(self.flat_weights(), dtype=np.int64)
            wd = np.zeros((self.out, self.in_), dtype=np.int64)
            for i, pairs in enumerate(self.uses()):
                for j, p in pairs:
                    wd[i, j] += flat[p]
            if self.residual_shift is not None:
                wd[np.arange(self.out), np.arange(self.out)] += 1 << self.residual_shift
            per = self.out // self.out_channels
            b = np.repeat(np.asarray(self.bias, dtype=np.int64), per)
            self._dense = (wd, b)
        return self._dense

    def output_range(self, lo: int, hi: int) -> tuple[int, int]:
        w, b = self.dense()
        return _requant_range(*_dense_range(w, b, lo, hi), self.shift, self.relu, self.clamp_bits)


class AvgPool2dLayer(BaseModel):
    """Average pooling: sum over a k x k window, then `>> log2(k*k)` (k*k a power of two: exact integers)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    type: Literal["avgpool2d"]
    in_shape: list[StrictInt] = Field(min_length=3, max_length=3)
    kernel: StrictInt = Field(ge=1, le=16)
    stride: StrictInt | None = Field(default=None, ge=1)
    _dense: tuple[np.ndarray, np.ndarray] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> "AvgPool2dLayer":
        kk = self.kernel * self.kernel
        if kk & (kk - 1):
            raise ValueError(f"average pooling {self.kernel}x{self.kernel}: the window size {kk} must be a power of two")
        if min(self.in_shape) < 1 or self.in_shape[1] < self.kernel or self.in_shape[2] < self.kernel:
            raise ValueError(f"pooling window {self.kernel} does not fit in_shape {self.in_shape}")
        return self

    @property
    def shift(self) -> int:
        return (self.kernel * self.kernel).bit_length() - 1

    relu: Literal[False] = False
    clamp_bits: None = None

    @property
    def out_shape(self) -> list[int]:
        s = self.stride or self.kernel
        oh, ow = _out_hw(self.in_shape[1], self.in_shape[2], self.kernel, s, 0)
        return [self.in_shape[0], oh, ow]

    @property
    def in_(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def n_params(self) -> int:
        return 0

    @property
    def bias(self) -> list[int]:
        return [0] * self.out

    def flat_weights(self) -> list[int]:
        return []

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        if self._dense is None:
            c, h, w = self.in_shape
            _, oh, ow = self.out_shape
            k, s = self.kernel, self.stride or self.kernel
            wd = np.zeros((self.out, self.in_), dtype=np.int64)
            for ch in range(c):
                for y in range(oh):
                    for x in range(ow):
                        i = (ch * oh + y) * ow + x
                        for ky in range(k):
                            for kx in range(k):
                                wd[i, (ch * h + y * s + ky) * w + x * s + kx] = 1
            self._dense = (wd, np.zeros(self.out, dtype=np.int64))
        return self._dense

    def output_range(self, lo: int, hi: int) -> tuple[int, int]:
        w, b = self.dense()
        return _requant_range(*_dense_range(w, b, lo, hi), self.shift, False, None)


def _layer_tag(v: Any) -> str:
    return v.get("type", "dense") if isinstance(v, Mapping) else getattr(v, "type", "dense")


AnyLayer = Annotated[
    Union[Annotated[DenseLayer, Tag("dense")], Annotated[Conv2dLayer, Tag("conv2d")],
          Annotated[AvgPool2dLayer, Tag("avgpool2d")]],
    Discriminator(_layer_tag),
]


def bits_for_range(lo: int, hi: int) -> int:
    """Smallest b such that [lo, hi] lies inside the signed range [-2^(b-1), 2^(b-1))."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi < (1 << (b - 1))):
        b += 1
    return b


class ModelSpec(BaseModel):
    """A quantized feed-forward model: the unit that is published, committed and proven."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    format: Literal["verinfer.model.v1"] = MODEL_FORMAT
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["mlp", "cnn"] = "mlp"
    input_shape: list[StrictInt] = Field(min_length=1)
    input_bits: StrictInt = Field(ge=2, le=32)
    output_bits: StrictInt = Field(ge=2, le=64)
    layers: list[AnyLayer] = Field(min_length=1)
    _arrays: list[tuple[np.ndarray, np.ndarray]] | None = PrivateAttr(default=None)
    _ranges: list[tuple[int, int]] | None = PrivateAttr(default=None)
    _slices: dict[tuple[int, int], "ModelSpec"] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "ModelSpec":
        if any(d < 1 for d in self.input_shape):
            raise ValueError(f"input_shape {self.input_shape} has a non-positive dimension")
        if math.prod(self.input_shape) != self.layers[0].in_:
            raise ValueError(
                f"input_shape {self.input_shape} has {math.prod(self.input_shape)} elements, "
                f"layer 0 takes {self.layers[0].in_}"
            )
        shapes = [list(self.input_shape)] + [getattr(layer, "out_shape", None) for layer in self.layers]
        for i, layer in enumerate(self.layers):
            want, got = getattr(layer, "in_shape", None), shapes[i]
            if want is not None and got is not None and list(want) != list(got) and (
                    i > 0 or len(self.input_shape) == 3):
                raise ValueError(f"layer {i} ({layer.type}) takes shape {list(want)}, gets {shapes[i]}")
        for i in range(1, len(self.layers)):
            if self.layers[i].in_ != self.layers[i - 1].out:
                raise ValueError(
                    f"layer {i} takes {self.layers[i].in_} inputs, layer {i - 1} gives {self.layers[i - 1].out}"
                )
        lo, hi = -(1 << (self.input_bits - 1)), (1 << (self.input_bits - 1)) - 1
        for i, layer in enumerate(self.layers):
            try:
                lo, hi = layer.output_range(lo, hi)
            except ValueError as exc:
                raise ValueError(f"layer {i}: {exc}") from None
        if bits_for_range(lo, hi) > self.output_bits:
            raise ValueError(f"outputs can reach [{lo}, {hi}], which does not fit output_bits={self.output_bits}")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "ModelSpec":
        """Copies re-validate (an updated copy must not inherit caches or skip the range analysis)."""
        data = self.model_dump(by_alias=True)
        data.update(update or {})
        return load(data)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def input_size(self) -> int:
        return self.layers[0].in_

    @property
    def output_size(self) -> int:
        return self.layers[-1].out

    @property
    def num_parameters(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    @property
    def input_dtype(self) -> str:
        """Payload dtype of inputs (§1.3): int8 up to 8 input bits, else int32."""
        return "int8" if self.input_bits <= 8 else "int32"

    def check_input_tensor(self, shape: list[int], data: list[int]) -> None:
        """Shape and range rules an input payload must satisfy (raises InvalidInputError)."""
        if list(shape) != list(self.input_shape):
            raise InvalidInputError(f"shape must be {self.input_shape}, got {list(shape)}")
        lo, hi = -(1 << (self.input_bits - 1)), (1 << (self.input_bits - 1)) - 1
        for v in data:
            if not lo <= v <= hi:
                raise InvalidInputError(f"value {v} is outside [{lo}, {hi}] (input_bits={self.input_bits})")

    def arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) per layer as int64 arrays, built once: the executor's view of the weights."""
        if self._arrays is None:
            self._arrays = [
                layer.dense() for layer in self.layers
            ]
        return self._arrays

    def to_json_obj(self) -> dict[str, Any]:
        """The spec as plain JSON types, with `in` spelled as on the wire."""
        return self.model_dump(by_alias=True, mode="json")

    def canonical_json(self) -> bytes:
        """Canonical bytes (sorted keys, no spaces): what is stored and whose CID is registered."""
        return json.dumps(self.to_json_obj(), sort_keys=True, separators=(",", ":")).encode()

    def activation_ranges(self) -> list[tuple[int, int]]:
        """Worst-case [min, max] entering each layer, plus the output range at the end."""
        if self._ranges is None:
            ranges = [(-(1 << (self.input_bits - 1)), (1 << (self.input_bits - 1)) - 1)]
            for layer in self.layers:
                ranges.append(layer.output_range(*ranges[-1]))
            self._ranges = ranges
        return list(self._ranges)

    def layer_range(self, start: int, end: int) -> "ModelSpec":
        """The sub-model of layers [start, end): what one node runs in split inference.

        Its input_bits/output_bits are the tightest signed widths the parent's static ranges
        guarantee at those boundaries, so each slice is itself a valid spec and slice k's output
        vector is exactly slice k+1's input vector (hashable with the same bits on both sides).
        """
        n = self.num_layers
        if not (0 <= start < end <= n):
            raise ModelSpecError(f"layer range [{start}, {end}) is not inside 0..{n}")
        if start == 0 and end == n:
            return self
        if (start, end) not in self._slices:
            self._slices[(start, end)] = self._slice(start, end)
        return self._slices[(start, end)]

    def _slice(self, start: int, end: int) -> "ModelSpec":
        n = self.num_layers
        ranges = self.activation_ranges()
        input_bits = self.input_bits if start == 0 else max(2, bits_for_range(*ranges[start]))
        # The slice is analysed on its own (its input range is the full input_bits range).
        lo, hi = -(1 << (input_bits - 1)), (1 << (input_bits - 1)) - 1
        for layer in self.layers[start:end]:
            lo, hi = layer.output_range(lo, hi)
        output_bits = max(2, bits_for_range(lo, hi))
        if end == n:
            output_bits = max(output_bits, self.output_bits)
        return ModelSpec(
            name=f"{self.name}[{start}:{end}]",
            kind=self.kind,
            input_shape=[self.layers[start].in_],
            input_bits=input_bits,
            output_bits=output_bits,
            layers=list(self.layers[start:end]),
        )


_JSON_SPECIAL = re.compile(r'[\[\]{}"\\]')
MAX_SPEC_NESTING = 16


def json_nesting(text: str, limit: int = MAX_SPEC_NESTING) -> int:
    """Bracket nesting depth outside strings, in linear time (stops early past `limit`).

    Checked before json.loads on content fetched from the network: the C scanner recurses once
    per level, so a hostile deeply nested document must be refused before it reaches it.
    """
    depth = deepest = 0
    in_string = False
    skip = -1
    for m in _JSON_SPECIAL.finditer(text):
        i = m.start()
        if i < skip:
            continue
        c = text[i]
        if in_string:
            if c == "\\":
                skip = i + 2
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif c in "]}":
            depth -= 1
    return deepest


def parse_json_document(raw: bytes, what: str = "model spec") -> Any:
    """UTF-8 JSON with a nesting cap; errors are ModelSpecError."""
    try:
        text = raw.decode("utf-8")
        if json_nesting(text) > MAX_SPEC_NESTING:
            raise ModelSpecError(f"{what} nests deeper than {MAX_SPEC_NESTING} levels")
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelSpecError(f"{what} is not UTF-8 JSON: {exc}") from None


def load(source: str | Path | bytes | Mapping[str, Any]) -> ModelSpec:
    """Parse and validate a spec from a path, raw JSON bytes, or an already-parsed object."""
    if isinstance(source, Mapping):
        obj: Any = source
    else:
        if isinstance(source, (str, Path)):
            path = Path(source)
            try:
                if path.stat().st_size > MAX_SPEC_BYTES:
                    raise ModelSpecError(f"{path}: larger than {MAX_SPEC_BYTES} bytes")
                raw = path.read_bytes()
            except OSError as exc:
                raise ModelSpecError(f"cannot read model spec {path}: {exc.strerror or exc}") from None
        else:
            raw = bytes(source)
        if len(raw) > MAX_SPEC_BYTES:
            raise ModelSpecError(f"model spec larger than {MAX_SPEC_BYTES} bytes")
        obj = parse_json_document(raw)
    if not isinstance(obj, Mapping):
        raise ModelSpecError("model spec must be a JSON object")
    if obj.get("format") != MODEL_FORMAT:
        raise ModelSpecError(f"model spec format must be {MODEL_FORMAT!r}, got {obj.get('format')!r}")
    try:
        return ModelSpec.model_validate(dict(obj))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise ModelSpecError(f"invalid model spec at {where}: {first['msg'].removeprefix('Value error, ')}") from None


def builtin_path(name: str) -> Path:
    """Path of a model shipped in verinfer/models/data (e.g. `digits-mlp`)."""
    try:
        filename = BUILTIN_MODELS[name]
    except KeyError:
        raise ModelSpecError(f"unknown built-in model {name!r}; known: {', '.join(BUILTIN_MODELS)}") from None
    return Path(str(resources.files("verinfer.models") / "data" / filename))


def load_builtin(name: str) -> ModelSpec:
    """Load a shipped model by name."""
    return load(builtin_path(name))


def weights_commitment(spec: ModelSpec) -> int:
    """The model commitment registered on-chain and exposed by private-weights proofs.

    Definition (docs/models.md): `c = Poseidon([num_layers, input_bits, output_bits])`, then for
    each layer in order `c = Poseidon([c, hash_vector(W row-major, 8), hash_vector(b, 32),
    in, out, shift, relu, clamp_bits or 0])`.
    """
    c = poseidon([spec.num_layers, spec.input_bits, spec.output_bits])
    for layer in spec.layers:
        flat = layer.flat_weights()
        c = poseidon(
            [
                c,
                hash_vector(flat, 8),
                hash_vector(layer.bias, 32),
                layer.in_,
                layer.out,
                layer.shift,
                int(layer.relu),
                layer.clamp_bits or 0,
            ]
        )
    return c


def execution_profile(kind: str, runtime: str, kernels: Sequence[str], /, **params: Any) -> dict[str, Any]:
    """What "the same computation" means: runtime id, kernel names, and runtime parameters."""
    profile: dict[str, Any] = {"kind": kind, "runtime": runtime, "kernels": list(kernels)}
    for key, value in params.items():
        if key in profile:
            raise ValueError(f"parameter {key!r} clashes with a profile field")
        profile[key] = value
    return profile


def execution_profile_hash(kind: str, runtime: str, kernels: Sequence[str], /, **params: Any) -> bytes:
    """keccak256 of the profile's canonical JSON: the bytes32 stored in ModelRegistry."""
    profile = execution_profile(kind, runtime, kernels, **params)
    return keccak(json.dumps(profile, sort_keys=True, separators=(",", ":")).encode())


def reference_profile_hash() -> bytes:
    """Profile of the integer reference executor (every `mlp` spec is executed this way)."""
    return execution_profile_hash("mlp", REFERENCE_RUNTIME, REFERENCE_KERNELS)
