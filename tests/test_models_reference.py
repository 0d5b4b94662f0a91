"""The integer reference executor: bit-exact semantics, split execution, input checks, accuracy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verinfer.models import reference
from verinfer.models.digits import load_split
from verinfer.models.errors import InvalidInputError
from verinfer.models.spec import builtin_path, load, load_builtin

ROOT = Path(__file__).resolve().parent.parent


def python_reference(spec_obj: dict, x: list[int]) -> list[int]:
    """§1.4 transcribed with Python ints only (no numpy), as an independent oracle."""
    for layer in spec_obj["layers"]:
        out = []
        for row, b in zip(layer["weight"], layer["bias"]):
            acc = sum(w * v for w, v in zip(row, x)) + b
            if layer["shift"]:
                acc = acc // (2 ** layer["shift"])  # floor division
            if layer["relu"]:
                acc = max(acc, 0)
            if layer["clamp_bits"]:
                half = 2 ** (layer["clamp_bits"] - 1)
                acc = min(max(acc, -half), half - 1)
            out.append(acc)
        x = out
    return x


def test_hand_computed_example_floor_shift_relu_clamp():
    spec = load({
        "format": "verinfer.model.v1", "name": "hand", "kind": "mlp", "input_shape": [2],
        "input_bits": 8, "output_bits": 32,
        "layers": [
            {"in": 2, "out": 4, "weight": [[1, 0], [-1, 0], [100, 100], [-100, -100]], "bias": [0, 0, 0, 0],
             "shift": 1, "relu": False, "clamp_bits": 8},
            {"in": 4, "out": 4, "weight": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
             "bias": [0, 0, 0, 0], "shift": 0, "relu": True, "clamp_bits": None},
        ],
    })
    # x = (3, 1): layer0 acc = (3, -3, 400, -400); >>1 = (1, -2, 200, -200) (floor, not truncation);
    # clamp 8 -> (1, -2, 127, -128); layer1 relu -> (1, 0, 127, 0)
    assert reference.run_layers(spec, [3, 1], 0, 1) == [1, -2, 127, -128]
    assert reference.run(spec, [3, 1]) == [1, 0, 127, 0]
    tr = reference.trace(spec, [3, 1])
    assert tr[0].acc == [3, -3, 400, -400] and tr[1].out == [1, 0, 127, 0]


def test_digits_models_match_python_oracle():
    split = load_split()
    for name in ("digits-mlp", "digits-mlp-large"):
        raw = json.loads(builtin_path(name).read_bytes())
        spec = load(raw)
        for x in split.x_test[:15]:
            assert reference.run(spec, x.tolist()) == python_reference(raw, x.tolist())


@st.composite
def random_model(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    layers = []
    for i in range(len(sizes) - 1):
        n_in, n_out = sizes[i], sizes[i + 1]
        last = i == len(sizes) - 2
        layers.append({
            "in": n_in, "out": n_out,
            "weight": draw(st.lists(st.lists(st.integers(-128, 127), min_size=n_in, max_size=n_in),
                                    min_size=n_out, max_size=n_out)),
            "bias": draw(st.lists(st.integers(-(2**20), 2**20), min_size=n_out, max_size=n_out)),
            "shift": 0 if last else draw(st.integers(0, 12)),
            "relu": False if last else draw(st.booleans()),
            "clamp_bits": None if last else draw(st.sampled_from([None, 4, 8, 16])),
        })
    obj = {"format": "verinfer.model.v1", "name": "h", "kind": "mlp", "input_shape": [sizes[0]],
           "input_bits": 8, "output_bits": 64, "layers": layers}
    x = draw(st.lists(st.integers(-128, 127), min_size=sizes[0], max_size=sizes[0]))
    return obj, x


@settings(max_examples=150, deadline=None)
@given(random_model())
def test_numpy_executor_equals_python_oracle(case):
    obj, x = case
    spec = load(obj)
    out = reference.run(spec, x)
    assert out == python_reference(obj, x)
    # split execution at every boundary composes to the same result
    for k in range(1, spec.num_layers):
        mid = reference.run_layers(spec, x, 0, k)
        assert reference.run_layers(spec, mid, k) == out


def test_invalid_inputs_rejected():
    spec = load_builtin("digits-mlp")
    for bad in ([0] * 63, [0] * 65, [128] + [0] * 63, [-129] + [0] * 63, [0.5] * 64, [True] * 64, [2**70] * 64):
        with pytest.raises(InvalidInputError):
            reference.run(spec, bad)
    with pytest.raises(InvalidInputError):
        reference.run_layers(spec, [0] * 64, 1, 1)
    # a mid-model slice enforces the slice's own input width
    with pytest.raises(InvalidInputError):
        reference.run_layers(spec, [200] * 32, 1, 2)


def test_predict_breaks_ties_to_lowest_index():
    spec = load({"format": "verinfer.model.v1", "name": "t", "kind": "mlp", "input_shape": [1], "input_bits": 8,
                 "output_bits": 32, "layers": [{"in": 1, "out": 3, "weight": [[0], [1], [1]], "bias": [5, 0, 0]}]})
    assert reference.predict(spec, [5]) == 0  # (5, 5, 5)
    assert reference.predict(spec, [6]) == 1  # (5, 6, 6)
    assert reference.predict(spec, [-1]) == 0


def test_shipped_int8_models_accuracy_on_held_out_split():
    split = load_split()
    assert len(split.y_test) == 540 and split.x_test.max() == 16
    for name in ("digits-mlp", "digits-mlp-large"):
        spec = load_builtin(name)
        acc = float((reference.run_batch(spec, split.x_test).argmax(axis=1) == split.y_test).mean())
        assert acc >= 0.96, (name, acc)


def test_samples_file_holds_held_out_digits():
    split = load_split()
    data = json.loads((ROOT / "verinfer/models/data/digits-samples.json").read_text())
    spec = load_builtin("digits-mlp")
    assert sorted(s["label"] for s in data["samples"]) == list(range(10))
    correct = 0
    for s in data["samples"]:
        assert split.x_test[s["test_index"]].tolist() == s["pixels"]
        assert split.y_test[s["test_index"]] == s["label"]
        correct += reference.predict(spec, s["pixels"]) == s["label"]
    assert correct >= 9


def test_training_script_reproduces_shipped_small_model():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_digits
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    split = load_split()
    clf = train_digits.train_float(train_digits.MODELS["digits-mlp"], split.x_train, split.y_train)
    spec = train_digits.quantize("digits-mlp", clf, split.x_train)
    assert spec.canonical_json() == builtin_path("digits-mlp").read_bytes()
