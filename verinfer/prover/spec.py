"""A plain view of a model spec (§1.4) plus the integer bounds the circuit generator needs.

The models package owns `ModelSpec`; the prover accepts that pydantic model, a dict of the same
JSON, or a path, and reads only the §1.4 fields, so it keeps working whichever form a caller has.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from verinfer.prover.errors import ProverError, ProverInputError

WEIGHT_BITS = 8
BIAS_BITS = 32


@dataclass(frozen=True)
class Layer:
    """One dense layer with the reference requantisation of §1.4."""

    n_in: int
    n_out: int
    weight: tuple[tuple[int, ...], ...]
    bias: tuple[int, ...]
    shift: int
    relu: bool
    clamp_bits: int | None
    # conv2d / avgpool2d (weight/bias above are their exact dense expansion, used in public mode)
    kind: str = "dense"
    params: tuple[int, ...] | None = None          # conv kernel, flat [oc][ic][k][k] (private inputs)
    channel_bias: tuple[int, ...] | None = None    # conv bias per output channel (private inputs)
    uses: tuple[tuple[tuple[int, int], ...], ...] | None = None  # per output: (input, kernel index)
    residual_shift: int | None = None
    fixed: bool = False                            # weights are architecture constants (pooling)

    @property
    def kernel(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(flat kernel, per-channel bias): a conv layer's private inputs; None for dense and pooling layers."""
        if self.params is None or self.channel_bias is None:
            return None
        return self.params, self.channel_bias

    @property
    def bias_channel(self) -> tuple[int, ...]:
        """Output index -> conv output channel."""
        per = self.n_out // len(self.channel_bias or (0,))
        return tuple(i // per for i in range(self.n_out))


@dataclass(frozen=True)
class SpecView:
    """The fields of a §1.4 model spec that determine the circuit."""

    name: str
    input_len: int
    input_bits: int
    output_bits: int
    layers: tuple[Layer, ...]
    canonical_json: str

    @property
    def output_len(self) -> int:
        return self.layers[-1].n_out

    @property
    def n_weights(self) -> int:
        return sum(layer.n_in * layer.n_out for layer in self.layers)


def _as_dict(spec: Any) -> dict[str, Any]:
    if isinstance(spec, (str, Path)):
        try:
            return json.loads(Path(spec).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ProverError(f"cannot read model spec {spec}: {exc}") from None
    if isinstance(spec, dict):
        return spec
    if hasattr(spec, "model_dump"):
        return spec.model_dump(mode="json", by_alias=True, exclude_none=False)
    raise ProverError(f"not a model spec: {type(spec).__name__}")


def view(spec: Any) -> SpecView:
    """Normalise any accepted spec form; rejects specs the circuit cannot express."""
    if isinstance(spec, SpecView):
        return spec
    d = _as_dict(spec)
    try:
        shape = list(d["input_shape"])
        n_in = 1
        for s in shape:
            n_in *= int(s)
        layers = []
        for i, ld in enumerate(d["layers"]):
            if ld.get("type", "dense") in ("conv2d", "avgpool2d"):
                layers.append(_conv_or_pool(i, ld))
                continue
            if ld.get("type", "dense") != "dense":
                raise ProverError(f"layer {i}: only dense, conv2d and avgpool2d layers can be proven, "
                                  f"got {ld.get('type')!r}")
            weight = tuple(tuple(int(w) for w in row) for row in ld["weight"])
            bias = tuple(int(b) for b in ld["bias"])
            lin, lout = int(ld["in"]), int(ld["out"])
            if len(weight) != lout or any(len(r) != lin for r in weight) or len(bias) != lout:
                raise ProverError(f"layer {i}: weight/bias shapes do not match in={lin} out={lout}")
            clamp = ld.get("clamp_bits")
            layers.append(
                Layer(lin, lout, weight, bias, int(ld.get("shift", 0)), bool(ld.get("relu", False)),
                      None if clamp in (None, 0) else int(clamp))
            )
        sv = SpecView(
            name=str(d.get("name", "model")),
            input_len=n_in,
            input_bits=int(d["input_bits"]),
            output_bits=int(d["output_bits"]),
            layers=tuple(layers),
            canonical_json=json.dumps(d, sort_keys=True, separators=(",", ":")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProverError(f"malformed model spec: {exc!r}") from None
    if not sv.layers:
        raise ProverError("model spec has no layers")
    prev = sv.input_len
    for i, layer in enumerate(sv.layers):
        if layer.n_in != prev:
            raise ProverError(f"layer {i} takes {layer.n_in} inputs but receives {prev}")
        if layer.shift < 0:
            raise ProverError(f"layer {i}: negative shift")
        prev = layer.n_out
    return sv


def _conv_or_pool(i: int, ld: dict[str, Any]) -> Layer:
    """A conv2d/avgpool2d layer as its dense expansion plus what private mode needs."""
    from pydantic import ValidationError

    from verinfer.models.spec import AvgPool2dLayer, Conv2dLayer

    cls = Conv2dLayer if ld["type"] == "conv2d" else AvgPool2dLayer
    try:
        layer = cls.model_validate(ld)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProverError(f"layer {i} ({ld['type']}): {first['msg'].removeprefix('Value error, ')}") from None
    w, b = layer.dense()
    weight = tuple(tuple(int(v) for v in row) for row in w.tolist())
    bias = tuple(int(v) for v in b.tolist())
    if isinstance(layer, AvgPool2dLayer):
        return Layer(layer.in_, layer.out, weight, bias, layer.shift, False, None, kind="avgpool2d", fixed=True)
    return Layer(layer.in_, layer.out, weight, bias, layer.shift, layer.relu, layer.clamp_bits, kind="conv2d",
                 params=tuple(layer.flat_weights()), channel_bias=tuple(layer.bias),
                 uses=tuple(tuple(p) for p in layer.uses()), residual_shift=layer.residual_shift)


def spec_hash(sv: SpecView) -> str:
    """sha256 of the canonical spec JSON (the bytes behind weightsCid)."""
    return hashlib.sha256(sv.canonical_json.encode()).hexdigest()


def check_vector(xs: Sequence[int], n: int, bits: int, what: str = "input") -> list[int]:
    """Ints of the right length within signed `bits`, else a ProverInputError naming the culprit."""
    try:
        vals = [int(v) for v in xs]
    except (TypeError, ValueError):
        raise ProverInputError(f"{what} must be a sequence of integers") from None
    if any(isinstance(v, float) and not float(v).is_integer() for v in xs):
        raise ProverInputError(f"{what} must contain integers only")
    if len(vals) != n:
        raise ProverInputError(f"{what} has {len(vals)} values, the model takes {n}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for i, v in enumerate(vals):
        if not lo <= v <= hi:
            raise ProverInputError(f"{what}[{i}] = {v} is outside the {bits}-bit range [{lo}, {hi}]")
    return vals


def requant(acc: int, layer: Layer) -> int:
    """Reference requantisation of one accumulator (§1.4)."""
    if layer.shift > 0:
        acc >>= layer.shift
    if layer.relu:
        acc = max(acc, 0)
    if layer.clamp_bits:
        c = layer.clamp_bits
        acc = min(max(acc, -(1 << (c - 1))), (1 << (c - 1)) - 1)
    return acc


def run_layers(sv: SpecView, x: Sequence[int]) -> list[list[int]]:
    """Integer reference execution: the activations after every layer (last = outputs).

    The models package's `reference.run` is the protocol's definition; this copy exists so the
    prover can compute witnesses' expected values without importing it, and the tests check the
    two agree.
    """
    acts: list[list[int]] = []
    cur = list(x)
    for layer in sv.layers:
        nxt = []
        for row, b in zip(layer.weight, layer.bias, strict=True):
            nxt.append(requant(b + sum(w * v for w, v in zip(row, cur, strict=True)), layer))
        acts.append(nxt)
        cur = nxt
    return acts


def interval_after(lo: int, hi: int, layer: Layer) -> tuple[int, int]:
    """Range of requant(acc) when acc ranges over [lo, hi] (requant is monotone)."""
    return requant(lo, layer), requant(hi, layer)
