"""Explorer pieces without a chain: bytecode comparison, digit image, CLI argument errors."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from verinfer.explorer import content, sources

CBOR_A = bytes.fromhex("a2646970667358221220") + b"\x11" * 32 + bytes.fromhex("64736f6c6343000825") + b"\x00\x33"
CBOR_B = bytes.fromhex("a2646970667358221220") + b"\x22" * 32 + bytes.fromhex("64736f6c6343000825") + b"\x00\x33"
CODE = bytes.fromhex("6080604052") + b"\x00" * 20 + bytes.fromhex("5b00")


def test_compare_full_partial_mismatch_and_immutables() -> None:
    assert sources.compare(CODE + CBOR_A, CODE + CBOR_A)[0] == sources.FULL
    assert sources.compare(CODE + CBOR_A, CODE + CBOR_B)[0] == sources.PARTIAL
    other = bytes.fromhex("6080604053") + CODE[5:]
    assert sources.compare(other + CBOR_A, CODE + CBOR_A)[0] == sources.MISMATCH
    assert sources.compare(b"", CODE)[0] == sources.MISMATCH
    # an immutable written at deploy time is masked before comparing (as Sourcify does)
    deployed = bytearray(CODE + CBOR_A)
    deployed[6:10] = b"\xde\xad\xbe\xef"
    status, detail = sources.compare(bytes(deployed), CODE + CBOR_A, {"7": [{"start": 6, "length": 4}]})
    assert status == sources.FULL and "1 immutable" in detail
    assert sources.compare(bytes(deployed), CODE + CBOR_A)[0] == sources.MISMATCH


def test_split_metadata_needs_a_cbor_map() -> None:
    assert sources.split_metadata(CODE + CBOR_A) == (CODE, CBOR_A)
    assert sources.split_metadata(b"\x60\x80\x00\x01") == (b"\x60\x80\x00\x01", b"")


def test_collect_sources_follows_imports_and_remappings() -> None:
    got = sources.collect_sources("contracts/src/InferenceMarket.sol")
    assert "contracts/src/interfaces/IInferenceMarket.sol" in got
    assert any(k.startswith("node_modules/@openzeppelin/contracts/") for k in got)


def test_digit_svg_is_built_from_integers_only() -> None:
    svg = content.digit_svg(list(range(16)) * 4)
    assert svg.count("<rect") == 64 and "rgb(255,255,255)" in svg and "<script" not in svg


def test_cli_rejects_bad_arguments_with_one_line() -> None:
    from verinfer.commands import explorer

    app = typer.Typer()
    explorer.register(app)
    runner = CliRunner()
    r = runner.invoke(app, ["explorer", "--port", "0"])
    assert r.exit_code != 0 and "--port must be 1..65535" in str(r.exception)
    r = runner.invoke(app, ["explorer", "--host", "not a host"])
    assert "--host must be an IP address" in str(r.exception)


def test_cli_entry_prints_error_line(tmp_path: "pytest.TempPathFactory") -> None:
    import subprocess
    import sys

    code = ("import sys; from verinfer import cli; cli._GROUPS.append('explorer') if 'explorer' not in cli._GROUPS else None; "
            "sys.argv=['verinfer','explorer','--manifest',sys.argv[1]]; cli.main()")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.startswith("error: no deployment manifest") and "Traceback" not in p.stderr


def test_language_model_tokens_decode_to_text(tmp_path) -> None:
    import json

    from verinfer.models.tensor import encode_tensor
    from verinfer.storage import open_store

    store = open_store(root=tmp_path / "store")
    vocab = {"<": 5, "s": 6, ">": 7, "h": 8, "i": 9}
    spec_cid = store.add(json.dumps({"kind": "lm", "vocab_cid": store.add(json.dumps(vocab).encode()),
                                     "stop_token": 10}).encode())
    v = content.vocabulary(store, spec_cid)
    assert v is not None and v[8] == "h" and v[10] == "<s>"
    cid = store.add(encode_tensor([10, 5, 6, 7, 8, 9], "int32", [6]))
    d = content.decode(store, cid, vocab=v)
    assert d.kind == "tensor" and d.values == [10, 5, 6, 7, 8, 9] and d.text == "<s><s>hi" and d.argmax is None


def test_consumer_snippet_compiles_against_the_repository_interfaces(tmp_path) -> None:
    from verinfer.explorer.service import consumer_snippet

    snippet = consumer_snippet({"name": "digits-mlp", "version": 1, "model_id": "0x" + "ab" * 32},
                               "0x" + "12" * 20)
    key = "Consumer.sol"
    srcs = {key: snippet}
    remap: list[str] = []
    for dep in ("contracts/src/interfaces/IInferenceMarket.sol", "contracts/src/interfaces/IInferenceConsumer.sol"):
        srcs["verinfer/" + dep] = (sources.REPO_ROOT / dep).read_text()
    std = sources.standard_json(srcs, {key: "DigitsMlpConsumer"}, remappings=remap)
    res = sources.compile_standard_json(std, tmp_path)
    assert res["contracts"][key]["DigitsMlpConsumer"]["evm"]["deployedBytecode"]["object"]
