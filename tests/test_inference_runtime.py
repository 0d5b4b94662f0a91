"""The node-facing runtime: dispatch by kind, plans for split inference, payload → committed hash."""

from __future__ import annotations

import json

import pytest

from verinfer.errors import VerinferError
from verinfer.inference.runtime import (
    ExecutionError,
    ExecutionPlan,
    commitment,
    decide,
    execute,
    load_model,
    profile_hash,
)
from verinfer.models import reference
from verinfer.models.digits import load_split
from verinfer.models.hashing import INVALID_INPUT_HASH, hash_vector
from verinfer.models.spec import ModelSpec, ModelSpecError, builtin_path, reference_profile_hash, weights_commitment
from verinfer.models.tensor import encode_tensor


@pytest.fixture(scope="module")
def large() -> ModelSpec:
    return load_model(builtin_path("digits-mlp-large"))


def test_load_model_dispatches_on_format(tmp_path):
    mlp = load_model(builtin_path("digits-mlp").read_bytes())
    assert isinstance(mlp, ModelSpec) and mlp.kind == "mlp"
    lm = load_model(builtin_path("digits-mlp").parent / "textgenrnn-lm.json")
    assert lm.kind == "lm"
    with pytest.raises(ModelSpecError, match="unknown model format"):
        load_model(b'{"format": "onnx"}')
    with pytest.raises(ModelSpecError, match="JSON"):
        load_model(b"\x00")
    with pytest.raises(ModelSpecError, match="cannot read"):
        load_model(tmp_path / "absent.json")
    assert profile_hash(mlp) == reference_profile_hash() != profile_hash(lm)
    assert commitment(mlp) == weights_commitment(mlp)


def test_split_plans_equal_whole_execution(large):
    split = load_split()
    plans = [ExecutionPlan.whole(large), ExecutionPlan.split(large, [1]), ExecutionPlan.split(large, [2]),
             ExecutionPlan.split(large, [1, 2])]
    assert [p.layer_ranges for p in plans][-1] == ((0, 1), (1, 2), (2, 3))
    for x in split.x_test[:10]:
        want = reference.run(large, x.tolist())
        for plan in plans:
            assert execute(large, x.tolist(), plan) == want


def test_bad_plans_rejected(large):
    for ranges in (((0, 1), (2, 3)), ((0, 2),), ((0, 1), (1, 1), (1, 3)), ((1, 3),)):
        with pytest.raises(ExecutionError):
            execute(large, [0] * 64, ExecutionPlan(ranges))
    assert issubclass(ExecutionError, VerinferError)


def test_execute_payload_valid_and_invalid():
    spec = load_model(builtin_path("digits-mlp"))
    samples = json.loads((builtin_path("digits-mlp").parent / "digits-samples.json").read_text())["samples"]
    pixels = samples[0]["pixels"]
    payload = encode_tensor(pixels, "int8", [64])
    in_hash = hash_vector(pixels, 8)
    ok = decide(spec, None, payload, in_hash)
    assert not ok.is_invalid and ok.input_hash == in_hash
    assert ok.outputs == reference.run(spec, pixels)
    assert ok.output_hash == hash_vector(ok.outputs, 32)
    assert ok.output_payload == encode_tensor(ok.outputs, "int32", [10])
    assert ok.profile_hash == reference_profile_hash()

    mismatch = decide(spec, None, payload, in_hash + 1)
    assert mismatch.is_invalid and mismatch.output_hash == INVALID_INPUT_HASH and "mismatch" in mismatch.invalid_reason
    bad = decide(spec, None, b'{"format":"verinfer.tensor.v1"}', in_hash)
    assert bad.is_invalid and bad.outputs is None and bad.output_payload is None and "rejected" in bad.invalid_reason
    edge = [100] * 63 + [-128]
    out_of_range = decide(spec, None, encode_tensor(edge, "int8", [64]), hash_vector(edge, 8))
    assert not out_of_range.is_invalid  # any int8 input is valid for an input_bits=8 model


def test_lm_through_runtime():
    lm = load_model(builtin_path("digits-mlp").parent / "textgenrnn-lm.json")
    prompt = [lm.stop_token] + [7, 8]
    res = decide(lm, None, encode_tensor(prompt, "int32"), hash_vector(prompt, 32))
    assert not res.is_invalid and res.outputs == execute(lm, prompt)
    assert res.output_hash == hash_vector(res.outputs, 32)
    outside = [lm.stop_token, 10**6]
    rejected = decide(lm, None, encode_tensor(outside, "int32"), hash_vector(outside, 32))
    assert rejected.is_invalid and "rejected" in rejected.invalid_reason
    with pytest.raises(ExecutionError):
        execute(lm, prompt, ExecutionPlan(((0, 1),)))
