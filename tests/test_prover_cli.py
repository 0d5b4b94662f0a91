"""`verinfer prover …` prints INSECURE for dev keys and turns bad input into one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verinfer.cli", "prover", *args], capture_output=True, text=True,
                          timeout=600)


def test_dev_setup_prove_verify_roundtrip(tmp_path: Path) -> None:
    r = _cli("setup", "--model", "digits-mlp", "--dev")
    assert r.returncode == 0, r.stderr
    assert "INSECURE" in r.stdout and "commitment:" in r.stdout
    x = tmp_path / "x.json"
    x.write_text(json.dumps({"format": "verinfer.tensor.v1", "dtype": "int8", "shape": [64],
                             "data": [(i * 5) % 17 for i in range(64)]}))
    out = tmp_path / "proof.json"
    r = _cli("prove", "--model", "digits-mlp", "--input", str(x), "--request-id", "9",
             "--prover", "0x00000000000000000000000000000000000000aa", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "INSECURE" in r.stdout and "outputHash:  0x" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["insecure"] is True and len(doc["calldata"]) == 8
    r = _cli("verify", str(out), "--model", "digits-mlp", "--backend", "snarkjs")
    assert r.returncode == 0 and "proof OK" in r.stdout
    doc["publicSignals"][1] = str(int(doc["publicSignals"][1]) + 1)
    out.write_text(json.dumps(doc))
    r = _cli("verify", str(out), "--model", "digits-mlp")
    assert r.returncode == 1 and "INVALID" in r.stdout


def test_out_of_range_input_is_a_one_line_error(tmp_path: Path) -> None:
    x = tmp_path / "x.json"
    x.write_text(json.dumps([200] + [0] * 63))
    r = _cli("prove", "--model", "digits-mlp", "--input", str(x), "--request-id", "1",
             "--prover", "0x00000000000000000000000000000000000000aa")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["error: input[0] = 200 is outside the 8-bit range [-128, 127]"]


def test_setup_without_dev_points_to_the_ceremony() -> None:
    r = _cli("setup", "--model", "digits-mlp")
    assert r.returncode == 1 and "ceremony" in r.stderr
