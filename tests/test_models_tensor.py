"""§1.3 tensor payloads: encoding, and every reason an input is INVALID_INPUT."""

from __future__ import annotations

import json

import pytest

from verinfer.errors import VerinferError
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin
from verinfer.models.tensor import (
    MAX_INPUT_BYTES,
    InvalidInputError,
    decode_input,
    decode_tensor,
    encode_output,
    encode_tensor,
)

SPEC = load_builtin("digits-mlp")
PIXELS = [(i * 7) % 17 for i in range(64)]


def payload(**over) -> bytes:
    obj = {"format": "verinfer.tensor.v1", "dtype": "int8", "shape": [64], "data": PIXELS}
    obj.update(over)
    return json.dumps(obj).encode()


def test_round_trip_and_canonical_bytes():
    raw = encode_tensor(PIXELS, "int8", [64])
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert decode_input(raw, SPEC) == PIXELS
    assert decode_input(payload(), SPEC) == PIXELS  # non-canonical spacing is still valid
    t = decode_tensor(encode_tensor([1, -2, 3, 4, 5, 6], "int32", [2, 3]))
    assert (t.dtype, t.shape, t.data) == ("int32", [2, 3], [1, -2, 3, 4, 5, 6])
    assert hash_vector(decode_input(raw, SPEC), SPEC.input_bits) == hash_vector(PIXELS, 8)
    out = decode_tensor(encode_output([-(2**31), 2**31 - 1], 32))
    assert out.dtype == "int32" and out.data == [-(2**31), 2**31 - 1]


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (payload(format="verinfer.tensor.v2"), "format"),
        (payload(dtype="float32"), "dtype"),
        (payload(dtype="int32"), "dtype must be int8"),
        (payload(shape=[8, 8]), "shape must be [64]"),
        (payload(shape=[65]), "does not match"),
        (payload(data=PIXELS[:-1]), "does not match"),
        (payload(data=[128] + PIXELS[1:]), "out of range"),
        (payload(data=[0.0] + PIXELS[1:]), "integers"),
        (payload(data=[True] + PIXELS[1:]), "integers"),
        (payload(data=[[0]] + PIXELS[1:]), "integers"),
        (payload(shape="64"), "shape"),
        (payload(extra=1), "keys"),
        (b'{"format":"verinfer.tensor.v1","dtype":"int8","dtype":"int8","shape":[1],"data":[1]}', "duplicate"),
        (b'{"format":"verinfer.tensor.v1","dtype":"int8","shape":[1],"data":[NaN]}', "NaN"),
    ],
)
def test_invalid_inputs(raw, reason):
    with pytest.raises(InvalidInputError) as exc:
        decode_input(raw, SPEC)
    assert reason in str(exc.value)
    assert isinstance(exc.value, VerinferError)


def test_deeply_nested_payload_is_invalid_not_a_crash():
    with pytest.raises(InvalidInputError):
        decode_input(b"[" * 100000 + b"]" * 100000, SPEC)


def test_size_limit():
    big = b" " * (MAX_INPUT_BYTES - len(payload())) + payload()
    assert len(big) == MAX_INPUT_BYTES and decode_input(big, SPEC) == PIXELS
    with pytest.raises(InvalidInputError, match="bytes"):
        decode_input(b" " + big, SPEC)


def test_range_uses_input_bits_not_just_dtype():
    narrow = SPEC.model_copy(update={"input_bits": 6})
    with pytest.raises(InvalidInputError, match="input_bits=6"):
        decode_input(payload(data=[32] + PIXELS[1:]), narrow)
    assert decode_input(payload(data=[31] + PIXELS[1:]), narrow)[0] == 31


def test_encode_rejects_bad_tensors():
    with pytest.raises(ValueError):
        encode_tensor([128], "int8")
    with pytest.raises(ValueError):
        encode_tensor([1, 2, 3], "int8", [2, 2])
    with pytest.raises(ValueError):
        encode_tensor([1], "float32")
