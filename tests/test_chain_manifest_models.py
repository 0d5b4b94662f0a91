"""The manifest lists registered models by (publisher, name, version) (issue 9): ids without keccak or modelIdAt."""
from __future__ import annotations

import pytest

from verinfer.chain.manifest import Manifest, ManifestModel
from verinfer.errors import ConfigError

A = "0x" + "11" * 20
B = "0x" + "22" * 20


def entry(publisher: str, name: str, version: int, byte: str) -> ManifestModel:
    return ManifestModel(publisher=publisher, name=name, version=version, model_id="0x" + byte * 32,
                         proof_mode=1, input_bits=8, output_bits=32)


def manifest() -> Manifest:
    return Manifest(chain_id=31337, rpc_url="http://127.0.0.1:8545", deploy_block=1, addresses={})


def test_latest_version_and_exact_version(tmp_path) -> None:
    m = manifest()
    m.record_model(entry(A, "digits-mlp", 1, "aa"))
    m.record_model(entry(A, "digits-mlp", 2, "bb"))
    assert m.model_id("digits-mlp") == "0x" + "bb" * 32
    assert m.model_id("digits-mlp", version=1) == "0x" + "aa" * 32
    back = Manifest.load(m.save(tmp_path / "manifest.json"))
    assert [x.version for x in back.models] == [1, 2]
    assert back.model_id("digits-mlp", publisher=A.upper().replace("0X", "0x")) == "0x" + "bb" * 32


def test_recording_the_same_id_twice_keeps_one_row() -> None:
    m = manifest()
    m.record_model(entry(A, "digits-mlp", 1, "aa"))
    m.record_model(entry(A, "digits-mlp", 1, "aa"))
    assert len(m.models) == 1


def test_a_name_two_publishers_registered_is_refused_unless_one_is_named() -> None:
    m = manifest()
    m.record_model(entry(A, "digits-mlp", 1, "aa"))
    m.record_model(entry(B, "digits-mlp", 1, "cc"))
    with pytest.raises(ConfigError, match="2 publishers"):
        m.model_id("digits-mlp")
    assert m.model_id("digits-mlp", publisher=B) == "0x" + "cc" * 32


def test_unknown_name_says_what_is_listed() -> None:
    m = manifest()
    m.record_model(entry(A, "digits-mlp", 1, "aa"))
    with pytest.raises(ConfigError, match="listed: digits-mlp"):
        m.model_id("textgenrnn")
