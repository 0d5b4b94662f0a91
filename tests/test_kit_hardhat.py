"""The kit builds with Hardhat offline: Hardhat 2 + the repository's solc-js, `verinfer/` remapped (hardhat/)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HH = REPO / "hardhat"


def test_hardhat_builds_the_kit_offline() -> None:
    cli = HH / "node_modules" / ".bin" / "hardhat"
    if not cli.exists():
        pytest.fail("Hardhat is not installed: run `npm ci --prefix hardhat` (pinned in hardhat/package-lock.json)")
    t0 = time.monotonic()
    proc = subprocess.run([str(cli), "--config", "hardhat.config.cjs", "compile", "--force"], cwd=HH,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Downloading" not in proc.stdout + proc.stderr, "Hardhat must not download a compiler"
    print(f"hardhat compile --force: {time.monotonic() - t0:.1f}s")
    built = json.loads((HH / "artifacts" / "verinfer" / "kit" / "examples" / "DigitGate.sol" / "DigitGate.json").read_text())
    exported = json.loads((REPO / "abi" / "DigitGate.json").read_text())
    def entries(abi: list) -> list[str]:
        return sorted(json.dumps(e, sort_keys=True) for e in abi)

    assert entries(built["abi"]) == entries(exported["abi"]), "Hardhat and Foundry builds expose the same ABI"
    poseidon = json.loads((HH / "artifacts" / "verinfer" / "kit" / "poseidon" / "Poseidon4.sol" / "Poseidon4.json").read_text())
    runtime = json.loads((REPO / "abi" / "Poseidon4.json").read_text())["deployedBytecode"]
    assert runtime[2:] in poseidon["bytecode"], "the circomlibjs runtime is embedded byte for byte"
