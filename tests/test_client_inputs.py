"""Client-side input handling: what `--input`, `--fee` and `--dev-account` accept and refuse (no chain needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verinfer.client.inputs import digits_sample, digits_samples, prepare_input
from verinfer.client.result import MemberResult, RequestResult, status_name
from verinfer.commands.request import load_account, parse_fee
from verinfer.errors import ConfigError
from verinfer.models import reference
from verinfer.models.hashing import INVALID_INPUT_HASH
from verinfer.models.spec import load_builtin
from verinfer.models.tensor import decode_input, encode_tensor


@pytest.fixture(scope="module")
def spec():
    return load_builtin("digits-mlp")


def test_digits_samples_are_held_out_pixels_with_labels(spec) -> None:
    samples = digits_samples()
    assert len(samples) >= 5
    for i in range(len(samples)):
        vec, label = digits_sample(i)
        assert len(vec) == 64 and all(0 <= v <= 16 for v in vec) and 0 <= label <= 9
    # the shipped model classifies most of them correctly (a smoke check that inputs are in model units)
    correct = sum(reference.predict(spec, digits_sample(i)[0]) == digits_sample(i)[1] for i in range(len(samples)))
    assert correct >= len(samples) - 1


def test_sample_input_encodes_canonical_payload(spec) -> None:
    p = prepare_input("digits-sample:3", spec)
    assert p.label == digits_sample(3)[1]
    assert decode_input(p.payload, spec) == p.vector == digits_sample(3)[0]
    assert p.payload == encode_tensor(p.vector, "int8", [64])


def test_raw_ints_and_json_files(spec, tmp_path: Path) -> None:
    vec = digits_sample(2)[0]
    assert prepare_input(",".join(map(str, vec)), spec).vector == vec
    assert prepare_input(" ".join(map(str, vec)), spec).vector == vec
    f = tmp_path / "x.json"
    f.write_text(json.dumps(vec))
    assert prepare_input(str(f), spec).vector == vec
    f.write_text(json.dumps({"input": vec, "label": 7}))
    assert prepare_input(str(f), spec).label == 7
    f.write_bytes(encode_tensor(vec, "int8", [64]))
    assert prepare_input(str(f), spec).payload == f.read_bytes()


@pytest.mark.parametrize("text, needle", [
    ("1,2,3", "shape"),
    ("digits-sample:10000", "does not exist"),
    ("hello", "neither a file"),
    (",".join(["300"] * 64), "int8"),
    ("/nonexistent/input.json", "cannot read"),
])
def test_bad_inputs_are_config_errors(spec, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        prepare_input(text, spec)


def test_tensor_file_with_wrong_shape_is_refused(spec, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(encode_tensor(list(range(32)), "int8", [32]))
    with pytest.raises(ConfigError, match="shape"):
        prepare_input(str(f), spec)
    f.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        prepare_input(str(f), spec)


@pytest.mark.parametrize("text, wei", [("0.01", 10**16), ("1", 10**18), ("1000wei", 1000), ("0.5eth", 5 * 10**17)])
def test_parse_fee(text: str, wei: int) -> None:
    assert parse_fee(text) == wei


@pytest.mark.parametrize("text", ["0", "-1", "abc", "0.0000000000000000001", ""])
def test_parse_fee_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_fee(text)


def test_dev_account_only_on_devnet_chain() -> None:
    acct = load_account(None, 1, 31337)
    assert acct is not None and acct.address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    with pytest.raises(ConfigError, match="31337"):
        load_account(None, 1, 1)
    with pytest.raises(ConfigError, match="0-9|0..9"):
        load_account(None, 12, 31337)
    with pytest.raises(ConfigError, match="not both"):
        load_account("alice", 1, 31337)
    assert load_account(None, None, 1) is None


def _result(status: str, proven: bool, reveals: list[int | None], settled: int | None) -> RequestResult:
    members = [MemberResult(f"0x{i:040x}", h is not None, h is not None, h, "", h is not None and h == settled, False, False)
               for i, h in enumerate(reveals)]
    return RequestResult(1, "0x" + "11" * 32, "0x" + "22" * 20, status, 10, "cid", 5, 1, 5, 9, settled, "", None,
                         False, None, members, proven, False, 1, 0, 0)


def test_result_views() -> None:
    r = _result("Accepted", True, [7, 7, 8], 7)
    assert r.display_status == "Proven" and r.consensus == "2/3"
    assert [m.output_hash for m in r.dissenting] == [8] and r.no_shows == []
    r = _result("InvalidInput", False, [INVALID_INPUT_HASH, INVALID_INPUT_HASH, None], INVALID_INPUT_HASH)
    assert r.invalid_input and r.display_status == "InvalidInput" and len(r.no_shows) == 1
    assert status_name(6) == "NoQuorum" and status_name(7) == "Expired" and status_name(9) == "Status(9)"
    assert r.to_json()["outputHash"] == "0x" + "ff" * 32
