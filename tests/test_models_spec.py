"""ModelSpec validation, canonical form, layer slicing, commitment and execution profiles."""

from __future__ import annotations

import copy
import json

import pytest
from eth_utils import keccak

from verinfer.errors import VerinferError
from verinfer.models.hashing import FIELD, hash_vector, poseidon
from verinfer.models.spec import (
    REFERENCE_KERNELS,
    REFERENCE_RUNTIME,
    ModelSpec,
    ModelSpecError,
    builtin_path,
    execution_profile_hash,
    load,
    load_builtin,
    reference_profile_hash,
    weights_commitment,
)


def tiny_obj() -> dict:
    return {
        "format": "verinfer.model.v1",
        "name": "tiny",
        "kind": "mlp",
        "input_shape": [2, 2],
        "input_bits": 8,
        "output_bits": 32,
        "layers": [
            {"type": "dense", "in": 4, "out": 3, "weight": [[1, -2, 3, 4], [-128, 127, 0, 5], [7, 7, 7, 7]],
             "bias": [10, -20, 3], "shift": 2, "relu": True, "clamp_bits": 8},
            {"type": "dense", "in": 3, "out": 2, "weight": [[1, 2, 3], [-3, -2, -1]], "bias": [0, 1],
             "shift": 0, "relu": False, "clamp_bits": None},
        ],
    }


def test_builtin_models_load_and_are_canonical():
    for name in ("digits-mlp", "digits-mlp-large"):
        raw = builtin_path(name).read_bytes()
        spec = load(raw)
        assert spec.canonical_json() == raw  # shipped files are stored canonically
        assert load(builtin_path(name)) == spec
        assert spec.input_shape == [64] and spec.output_size == 10
    small, large = load_builtin("digits-mlp"), load_builtin("digits-mlp-large")
    assert [(l.in_, l.out) for l in small.layers] == [(64, 32), (32, 10)]
    assert large.num_parameters >= 10 * small.num_parameters


def test_canonical_json_is_sorted_compact_and_round_trips():
    spec = ModelSpec.model_validate(tiny_obj())
    raw = spec.canonical_json()
    obj = json.loads(raw)
    assert raw == json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    assert "in" in obj["layers"][0] and "in_" not in obj["layers"][0]
    assert load(raw) == spec and load(raw).canonical_json() == raw
    # key order and whitespace in the source do not change the canonical bytes
    assert load(json.dumps(tiny_obj(), indent=3).encode()).canonical_json() == raw


def _mutated(path, value):
    obj = tiny_obj()
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    "path,value,needle",
    [
        (("layers", 0, "weight", 0, 0), 128, "int8"),
        (("layers", 0, "weight", 1, 0), -129, "int8"),
        (("layers", 0, "bias", 0), 1 << 31, "int32"),
        (("layers", 0, "weight", 0, 0), 1.0, "integer"),
        (("layers", 0, "weight", 0, 0), True, "integer"),
        (("layers", 0, "weight", 0), [1, 2, 3], "row 0"),
        (("layers", 0, "bias"), [1, 2], "bias"),
        (("layers", 1, "in"), 4, "layers.1"),
        (("layers", 1), {"in": 4, "out": 1, "weight": [[1, 1, 1, 1]], "bias": [0]}, "layer 1 takes 4 inputs"),
        (("input_shape",), [5], "input_shape"),
        (("format",), "verinfer.model.v0", "format"),
        (("kind",), "conv", "kind"),
        (("layers", 0, "extra"), 1, "extra"),
        (("layers", 0, "shift"), -1, "shift"),
        (("layers", 0, "clamp_bits"), 1, "clamp_bits"),
        (("output_bits",), 8, "output_bits"),  # logits can exceed int8: static range check
        (("layers",), [], "layers"),
        (("name",), KeyError, "name"),
    ],
)
def test_validation_rejects(path, value, needle):
    with pytest.raises(ModelSpecError) as exc:
        load(_mutated(path, value))
    assert needle in str(exc.value)
    assert isinstance(exc.value, VerinferError)


def test_accumulator_overflow_bound_rejected():
    obj = tiny_obj()
    obj["input_bits"] = 32
    obj["layers"][0]["clamp_bits"] = None
    obj["layers"][0]["shift"] = 0
    obj["layers"][1]["weight"] = [[127, 127, 127]] * 2
    obj["output_bits"] = 64
    load(obj)  # fine: bounded well below 2^62
    obj["layers"] = [obj["layers"][0]] + [
        {"in": 3, "out": 3, "weight": [[127] * 3] * 3, "bias": [0] * 3, "shift": 0, "relu": False} for _ in range(4)
    ] + [obj["layers"][1]]
    with pytest.raises(ModelSpecError, match="2\\^62"):
        load(obj)


def test_load_errors_are_user_errors(tmp_path):
    with pytest.raises(ModelSpecError, match="cannot read"):
        load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ModelSpecError, match="UTF-8 JSON"):
        load(tmp_path / "bad.json")
    with pytest.raises(ModelSpecError, match="object"):
        load(b"[1, 2]")
    with pytest.raises(ModelSpecError, match="unknown built-in"):
        load_builtin("nope")


def test_layer_range_slices():
    spec = load_builtin("digits-mlp-large")
    assert spec.layer_range(0, spec.num_layers) is spec
    first, middle, last = spec.layer_range(0, 1), spec.layer_range(1, 2), spec.layer_range(2, 3)
    assert first.input_bits == 8 and first.output_bits == 8  # relu + clamp 8 -> [0, 127]
    assert middle.input_shape == [256] and middle.output_bits == 8
    assert last.output_bits == spec.output_bits and last.layers[0] == spec.layers[2]
    assert first.name == "digits-mlp-large[0:1]"
    for bad in ((1, 1), (-1, 2), (0, 4), (2, 1)):
        with pytest.raises(ModelSpecError):
            spec.layer_range(*bad)


def _commitment_by_definition(obj: dict) -> int:
    """docs/models.md's definition, written out independently of the implementation's loop."""
    c = poseidon([len(obj["layers"]), obj["input_bits"], obj["output_bits"]])
    for layer in obj["layers"]:
        flat = sum(layer["weight"], [])
        c = poseidon([c, hash_vector(flat, 8), hash_vector(layer["bias"], 32), layer["in"], layer["out"],
                      layer["shift"], 1 if layer["relu"] else 0, layer["clamp_bits"] or 0])
    return c


def test_weights_commitment_definition_and_sensitivity():
    obj = tiny_obj()
    spec = load(obj)
    c = weights_commitment(spec)
    assert 0 <= c < FIELD
    assert c == _commitment_by_definition(obj)
    seen = {c}
    for path, value in [
        (("layers", 0, "weight", 2, 3), 6),
        (("layers", 1, "bias", 1), 2),
        (("layers", 0, "shift"), 3),
        (("layers", 0, "relu"), False),
        (("layers", 0, "clamp_bits"), 9),
        (("input_bits",), 7),
    ]:
        variant = weights_commitment(load(_mutated(path, value)))
        assert variant not in seen, path
        seen.add(variant)
    # the name is not part of the commitment (the same weights commit the same way)
    renamed = copy.deepcopy(obj)
    renamed["name"] = "other"
    assert weights_commitment(load(renamed)) == c


def test_shipped_commitment_matches_definition():
    raw = builtin_path("digits-mlp").read_bytes()
    assert weights_commitment(load(raw)) == _commitment_by_definition(json.loads(raw))


def test_execution_profile_hash():
    h = reference_profile_hash()
    assert len(h) == 32
    expected = keccak(json.dumps({"kind": "mlp", "runtime": REFERENCE_RUNTIME, "kernels": list(REFERENCE_KERNELS)},
                                 sort_keys=True, separators=(",", ":")).encode())
    assert h == expected
    assert execution_profile_hash("mlp", REFERENCE_RUNTIME, ["x"]) != h
    assert execution_profile_hash("mlp", "other.v1", REFERENCE_KERNELS) != h
    assert execution_profile_hash("lm", "t", ["k"], torch="2.13.0") != execution_profile_hash("lm", "t", ["k"], torch="2.12.0")
    with pytest.raises(ValueError):
        execution_profile_hash("mlp", "r", [], kind="x")


def test_hostile_nesting_is_refused_without_recursing():
    from verinfer.inference.runtime import load_model
    from verinfer.models.spec import json_nesting

    for bad in (b"[" * 200000 + b"]" * 200000, b'{"a":' * 100000 + b"1" + b"}" * 100000):
        with pytest.raises(ModelSpecError, match="nests deeper"):
            load(bad)
        with pytest.raises(ModelSpecError, match="nests deeper"):
            load_model(bad)
    # brackets inside strings (with escaped quotes) do not count
    assert json_nesting('{"k": "[[[\\"[[[", "l": [[1]]}') == 3
    assert json_nesting(builtin_path("digits-mlp").read_text()) == 5  # spec > layers > layer > weight > row
