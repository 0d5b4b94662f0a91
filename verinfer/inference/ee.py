"""Equivariant encryption (EE) for integer MLPs: secret permutations of every dimension.

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
from verinfer.models.spec import ModelSpec

EE_KEY_FORMAT = "verinfer.ee-key.v1"


class EEKeyError(VerinferError):
    """The EE key does not match the model or is malformed."""


@dataclass(frozen=True)
class EEKey:
    """One permutation per layer boundary: perms[0] on inputs, perms[i+1] on layer i's outputs."""

    perms: tuple[tuple[int, ...], ...]

    @classmethod
    def generate(cls, spec: ModelSpec, seed: int | None = None) -> "EEKey":
        """Fresh random permutations (from `secrets` unless a seed is given for reproducible tests)."""
        rng = random.Random(seed if seed is not None else secrets.randbits(128))
        sizes = [spec.input_size] + [layer.out for layer in spec.layers]
        perms = []
        for n in sizes:
            p = list(range(n))
            rng.shuffle(p)
            perms.append(tuple(p))
        return cls(tuple(perms))

    def check(self, spec: ModelSpec) -> None:
        sizes = [spec.input_size] + [layer.out for layer in spec.layers]
        if [len(p) for p in self.perms] != sizes:
            raise EEKeyError(f"key permutes sizes {[len(p) for p in self.perms]}, model has {sizes}")
        for p in self.perms:
            if sorted(p) != list(range(len(p))):
                raise EEKeyError("key holds something that is not a permutation")

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
        p_in, p_out = key.perms[i], key.perms[i + 1]
        weight = [_permute(layer.weight[r], p_in) for r in p_out]
        obj = layer.model_dump(by_alias=True)
        obj.update(weight=weight, bias=_permute(layer.bias, p_out))
        layers.append(obj)
    data = spec.model_dump(by_alias=True)
    data.update(name=f"{spec.name}.ee"[:128], layers=layers)
    return ModelSpec.model_validate(data)


def encrypt_input(x: Sequence[int], key: EEKey) -> list[int]:
    """Permute the input features with P0 (what the requester uploads)."""
    if len(x) != len(key.perms[0]):
        raise EEKeyError(f"input has {len(x)} values, key expects {len(key.perms[0])}")
    return _permute(list(x), key.perms[0])


def decrypt_output(y: Sequence[int], key: EEKey) -> list[int]:
    """Undo the output permutation: exactly the plaintext model's output."""
    if len(y) != len(key.perms[-1]):
        raise EEKeyError(f"output has {len(y)} values, key expects {len(key.perms[-1])}")
    return _unpermute(list(y), key.perms[-1])


def decrypt_activations(h: Sequence[int], key: EEKey, boundary: int) -> list[int]:
    """Undo the permutation at a layer boundary (for debugging split + EE pipelines)."""
    return _unpermute(list(h), key.perms[boundary])
