"""Committed artifacts are what the sources compile to, and load as the API promises."""

from __future__ import annotations

from pathlib import Path

from scripts import build_contracts
from verinfer.chain import artifacts


def test_committed_artifacts_match_a_fresh_forge_build(tmp_path: Path) -> None:
    fresh = build_contracts.build(tmp_path / "out")
    assert set(artifacts.PROTOCOL_CONTRACTS) <= set(fresh)
    stale = build_contracts.stale(fresh)
    assert stale == [], f"stale artifacts {stale}: run `python scripts/build_contracts.py` and commit"
    for name, art in fresh.items():
        loaded = artifacts.load(name)
        assert loaded.bytecode.removeprefix("0x") == art["bytecode"].removeprefix("0x")
        assert loaded.abi == art["abi"]


def test_load_shape() -> None:
    art = artifacts.load("InferenceMarket")
    assert art.name == "InferenceMarket" and art.bytecode.startswith("0x") and len(art.bytecode) > 1000
    assert any(e.get("name") == "requestInference" for e in art.abi)
    assert art.source_hash.startswith("0x")
