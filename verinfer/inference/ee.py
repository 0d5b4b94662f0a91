"""Equivariant encryption (EE) for integer MLPs and CNNs: secret permutations of every dimension.

CNNs: channels are permuted at every CHW boundary (pooling and residual convolutions keep the
same permutation on both sides); pixels keep their places, which a convolution needs. For the
1-channel digits input that means the input itself is not permuted: only hidden channels and the
classes are hidden from the node.


The key holder permutes the input features (P0), each hidden layer's units (P1, …) and the output
classes (Pn). Layer i's weights become `P_{i+1} W P_i^T` and its bias `P_{i+1} b`; shift, ReLU and
clamp act element-wise and so commute with permutations. A node that runs the encrypted spec
on the permuted input computes exactly the permuted output, bit for bit, and the key holder
un-permutes it. What it hides: which input feature / hidden unit / class is which, from a node that
sees only the encrypted model and permuted vectors. What it does not: values themselves (a
permutation preserves the multiset of values), and anyone holding the plaintext model can match
weights back. It is obfuscation of the node's view, not encryption in the cryptographic sense.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from typing import Any, Sequence

from verinfer.errors import VerinferError
from verinfer.models.spec import AvgPool2dLayer, Conv2dLayer, ModelSpec

EE_KEY_FORMAT = "verinfer.ee-key.v1"
#: the name suffix `encrypt_model` gives an encrypted spec: how a requester tells its output is permuted
EE_NAME_SUFFIX = ".ee"


class EEKeyError(VerinferError):
    """The EE key does not match the model or is malformed."""


def _boundaries(spec: ModelSpec) -> list[tuple[int, int]]:
    """(permutation length, elements per permuted unit) at each layer boundary.

    Flat boundaries (dense layers) permute every element; CHW boundaries (conv2d / avgpool2d)
    permute channels only, because a convolution is equivariant to channel permutations but not to
    moving pixels. An MLP's key is therefore exactly the per-element key it always was.
    """
    in_shape = getattr(spec.layers[0], "in_shape", None)
    if in_shape is not None:
        c, h, w = in_shape
        out = [(c, h * w)]
    else:
        out = [(spec.input_size, 1)]
    for layer in spec.layers:
        shape = getattr(layer, "out_shape", None)
        out.append((shape[0], shape[1] * shape[2]) if shape is not None else (layer.out, 1))
    return out


def _tied(spec: ModelSpec) -> list[bool]:
    """tied[i+1]: boundary i+1 must reuse boundary i's permutation (pooling, residual conv)."""
    tied = [False]
    for layer in spec.layers:
        t = getattr(layer, "type", "dense")
        tied.append(t == "avgpool2d" or (t == "conv2d" and getattr(layer, "residual_shift", None) is not None))
    return tied


def _expand(perm: Sequence[int], unit: int) -> list[int]:
    """A channel permutation as a permutation of CHW elements."""
    return [c * unit + k for c in perm for k in range(unit)]


@dataclass(frozen=True)
class EEKey:
    """One permutation per layer boundary: perms[0] on inputs, perms[i+1] on layer i's outputs."""

    perms: tuple[tuple[int, ...], ...]

    @classmethod
    def generate(cls, spec: ModelSpec, seed: int | None = None) -> "EEKey":
        """Fresh random permutations (from `secrets` unless a seed is given for reproducible tests)."""
        rng = random.Random(seed if seed is not None else secrets.randbits(128))
        perms: list[tuple[int, ...]] = []
        for (n, _), tied in zip(_boundaries(spec), _tied(spec), strict=True):
            if tied:
                perms.append(perms[-1])
                continue
            p = list(range(n))
            rng.shuffle(p)
            perms.append(tuple(p))
        return cls(tuple(perms))

    def check(self, spec: ModelSpec) -> None:
        sizes = [n for n, _ in _boundaries(spec)]
        if [len(p) for p in self.perms] != sizes:
            raise EEKeyError(f"key permutes sizes {[len(p) for p in self.perms]}, model has {sizes}")
        for p in self.perms:
            if sorted(p) != list(range(len(p))):
                raise EEKeyError("key holds something that is not a permutation")
        for i, tied in enumerate(_tied(spec)):
            if tied and self.perms[i] != self.perms[i - 1]:
                raise EEKeyError(f"layer {i - 1} (pooling or residual) needs the same channel permutation on both sides")

    def element_perm(self, spec: ModelSpec, boundary: int) -> list[int]:
        """The permutation of the flattened activation vector at a boundary."""
        _, unit = _boundaries(spec)[boundary]
        return _expand(self.perms[boundary], unit)

    def to_json(self) -> str:
        return json.dumps({"format": EE_KEY_FORMAT, "perms": [list(p) for p in self.perms]})

    @classmethod
    def from_json(cls, text: str) -> "EEKey":
        try:
            obj: Any = json.loads(text)
            if obj.get("format") != EE_KEY_FORMAT:
                raise ValueError("wrong format")
            return cls(tuple(tuple(int(v) for v in p) for p in obj["perms"]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EEKeyError(f"not an EE key: {exc}") from None


def _permute(values: Sequence[Any], perm: Sequence[int]) -> list[Any]:
    """Position j of the result holds values[perm[j]]."""
    return [values[i] for i in perm]


def _unpermute(values: Sequence[Any], perm: Sequence[int]) -> list[Any]:
    out: list[Any] = [None] * len(perm)
    for j, i in enumerate(perm):
        out[i] = values[j]
    return out


def encrypt_model(spec: ModelSpec, key: EEKey) -> ModelSpec:
    """The spec the nodes receive: same architecture, permuted weights (name gets an `.ee` suffix)."""
    key.check(spec)
    layers = []
    for i, layer in enumerate(spec.layers):
        obj = layer.model_dump(by_alias=True)
        if isinstance(layer, AvgPool2dLayer):
            layers.append(obj)  # per-channel: commutes with the (tied) channel permutation
            continue
        if isinstance(layer, Conv2dLayer):
            p_out = key.perms[i + 1]
            obj.update(weight=[_permute(layer.weight[o], key.perms[i]) for o in p_out], bias=_permute(layer.bias, p_out))
            layers.append(obj)
            continue
        p_in, p_out = key.element_perm(spec, i), key.perms[i + 1]
        weight = [_permute(layer.weight[r], p_in) for r in p_out]
        obj.update(weight=weight, bias=_permute(layer.bias, p_out))
        layers.append(obj)
    data = spec.model_dump(by_alias=True)
    data.update(name=(spec.name[:128 - len(EE_NAME_SUFFIX)] + EE_NAME_SUFFIX), layers=layers)
    return ModelSpec.model_validate(data)


def is_encrypted_spec(spec: object) -> bool:
    """The spec is an `encrypt_model` output (its name carries the suffix; the stored spec is what nodes run)."""
    return isinstance(spec, ModelSpec) and spec.name.endswith(EE_NAME_SUFFIX)


def encrypt_input(x: Sequence[int], key: EEKey) -> list[int]:
    """Permute the input features with P0 (what the requester uploads)."""
    if len(x) != len(key.perms[0]):
        raise EEKeyError(f"input has {len(x)} values, key expects {len(key.perms[0])}")
    return _permute(list(x), key.perms[0])


def encrypt_input_for(spec: ModelSpec, x: Sequence[int], key: EEKey) -> list[int]:
    """Permute an input for `spec` (channels for a CNN, features for an MLP)."""
    perm = key.element_perm(spec, 0)
    if len(x) != len(perm):
        raise EEKeyError(f"input has {len(x)} values, key expects {len(perm)}")
    return _permute(list(x), perm)


def decrypt_output(y: Sequence[int], key: EEKey) -> list[int]:
    """Undo the output permutation: exactly the plaintext model's output."""
    if len(y) != len(key.perms[-1]):
        raise EEKeyError(f"output has {len(y)} values, key expects {len(key.perms[-1])}")
    return _unpermute(list(y), key.perms[-1])


def decrypt_activations(h: Sequence[int], key: EEKey, boundary: int) -> list[int]:
    """Undo the permutation at a layer boundary (for debugging split + EE pipelines)."""
    return _unpermute(list(h), key.perms[boundary])
