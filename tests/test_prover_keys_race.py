"""Nodes sharing one machine share the prover cache: racing dev setups must still pair pk with vk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from verinfer.prover import pipeline
from verinfer.prover.backends import Groth16pyBackend
from verinfer.devnet.samples import random_spec

_CHILD = r"""
import json, sys
from verinfer.prover import pipeline
spec = json.loads(sys.argv[1])
arts = pipeline.prepare(spec, "public", setup="dev")
print(arts.commitment)
"""


def test_concurrent_dev_setups_leave_one_consistent_key(tmp_path: Path, monkeypatch) -> None:
    spec = random_spec(seed=11, name="race-tiny")
    env = {**os.environ, "VERINFER_CIRCUIT_CACHE": str(tmp_path / "cache")}
    # compile once so the children race on key creation and export, not on the circuit build
    subprocess.run([sys.executable, "-c", "import json,sys; from verinfer.prover.artifacts import compile_circuit; "
                    "from verinfer.prover.spec import view; compile_circuit(view(json.loads(sys.argv[1])), 'public')",
                    json.dumps(spec)], env=env, check=True, timeout=300, capture_output=True)
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(spec)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    commitments = {o[0].strip() for o in outs}
    assert len(commitments) == 1, "racing processes ended with different verification keys"

    monkeypatch.setenv("VERINFER_CIRCUIT_CACHE", env["VERINFER_CIRCUIT_CACHE"])
    arts = pipeline.prepare(spec, "public", setup="dev")
    assert str(arts.commitment) in commitments
    proof = pipeline.prove_for_request(arts, spec, [1, 2, 3, 4, 5, 6], 7, "0x" + "11" * 20)
    assert Groth16pyBackend().verify(arts.vk, proof), "proving key does not belong to the verification key"
    assert "vk sha256 " + arts.keys.record["vk_sha256"] in arts.verifier_sol.read_text()
