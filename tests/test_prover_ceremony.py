"""snarkjs phase-2 ceremony end to end on a tiny circuit, from the committed INSECURE 2^10 ptau.

import-ptau (hash-checked) -> two named contributions -> verify (snarkjs + transcript) -> finalize
-> export vk + Solidity verifier; snarkjs and groth16py proofs each verify with the other tool and
on the exported verifier deployed to anvil. Corrupt ptau/zkey/transcript are detected.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from verinfer.chain.verifier import deploy_verifier, verify_onchain
from verinfer.devnet.samples import random_spec
from verinfer.models.spec import load
from verinfer.prover import keys, pipeline, toolchain
from verinfer.prover.artifacts import compile_circuit
from verinfer.prover.backends import Groth16pyBackend, SnarkjsBackend
from verinfer.prover.errors import ArtifactError, CeremonyError

PTAU_DIR = Path(keys.__file__).parent / "data" / "ptau"
PTAU = PTAU_DIR / "INSECURE_test_phase1_bn128_2e10.ptau"
PTAU_SHA = json.loads((PTAU_DIR / "INSECURE_test_phase1_bn128_2e10.json").read_text())["sha256"]
PROVER = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A finished 2-contributor ceremony in a private artifact cache."""
    old = os.environ.get("VERINFER_CIRCUIT_CACHE")
    os.environ["VERINFER_CIRCUIT_CACHE"] = str(tmp_path_factory.mktemp("circuits"))
    try:
        spec = load(random_spec(11, sizes=(5, 4, 3), name="tiny-ceremony"))
        cc = compile_circuit(spec, "public")
        t = keys.import_ptau(cc, PTAU, expected_sha256=PTAU_SHA)
        assert t["insecure"] is True and t["ptau"]["sha256"] == PTAU_SHA
        a = keys.contribute(cc, "alice", "alice's dice rolls")
        b = keys.contribute(cc, "bob")
        km = keys.finalize(cc)
        yield {"spec": spec, "cc": cc, "contribs": [a, b], "km": km}
    finally:
        if old is None:
            os.environ.pop("VERINFER_CIRCUIT_CACHE", None)
        else:
            os.environ["VERINFER_CIRCUIT_CACHE"] = old


def test_transcript_records_named_contributions(ceremony: dict) -> None:
    cc = ceremony["cc"]
    t = json.loads((cc.dir / "keys" / "ceremony" / "transcript.json").read_text())
    assert [c["name"] for c in t["contributions"]] == ["alice", "bob"]
    assert all(len(c["contribution_hash"]) == 128 and c["time"] for c in t["contributions"])
    assert t["contributions"][0]["contribution_hash"] != t["contributions"][1]["contribution_hash"]
    assert t["finalized"] and t["final_zkey"]["sha256"] == toolchain.sha256_file(cc.dir / "keys" / "ceremony" / t["final_zkey"]["file"])
    km = ceremony["km"]
    assert km.insecure and "INSECURE" in km.zkey_path.name and "INSECURE" in km.vk_path.name


def test_cross_verification_and_onchain(ceremony: dict, w3, accounts) -> None:
    spec = ceremony["spec"]
    arts = pipeline.prepare(spec, "public", setup="ceremony")
    assert arts.zkey_path is not None and arts.insecure
    assert "INSECURE" in arts.verifier_sol.read_text()
    x = [3, -7, 127, -128, 0]
    g = Groth16pyBackend()
    s = SnarkjsBackend()
    p_snark = pipeline.prove_for_request(arts, spec, x, 1, PROVER, backend=s)
    p_g16 = pipeline.prove_for_request(arts, spec, x, 1, PROVER, backend=g)
    assert p_snark.public_signals == p_g16.public_signals
    for verifier in (g, s):
        assert verifier.verify(arts.vk, p_snark)
        assert verifier.verify(arts.vk, p_g16)
    address = deploy_verifier(w3, accounts[0], arts)
    assert verify_onchain(w3, address, p_snark)
    assert verify_onchain(w3, address, p_g16)
    forged = p_g16.with_public_signals([p_g16.public_signals[0], p_g16.public_signals[1] ^ 1, p_g16.public_signals[2]])
    assert not verify_onchain(w3, address, forged)
    assert not g.verify(arts.vk, forged) and not s.verify(arts.vk, forged)


def test_corrupt_ptau_is_rejected_before_use(ceremony: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ptau"
    data = bytearray(PTAU.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        keys.import_ptau(ceremony["cc"], bad, expected_sha256=PTAU_SHA)


def test_corrupt_zkey_is_detected(ceremony: dict, tmp_path: Path) -> None:
    km = ceremony["km"]
    backup = tmp_path / "zkey.bak"
    shutil.copyfile(km.zkey_path, backup)
    try:
        data = bytearray(km.zkey_path.read_bytes())
        data[-100] ^= 0x01
        km.zkey_path.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="corrupt"):
            keys.ceremony_keys(ceremony["cc"])
        with pytest.raises(ArtifactError):
            SnarkjsBackend().prove_wtns(_arts_without_check(ceremony), tmp_path / "unused.wtns")
    finally:
        shutil.copyfile(backup, km.zkey_path)
    keys.ceremony_keys(ceremony["cc"])  # intact again


def _arts_without_check(ceremony: dict):
    from verinfer.prover.types import CircuitArtifacts

    return CircuitArtifacts(ceremony["cc"], ceremony["km"], 0, Path("unused.sol"), "X")


def test_tampered_transcript_fails_verification(ceremony: dict) -> None:
    d = ceremony["cc"].dir / "keys" / "ceremony"
    tp = d / "transcript.json"
    original = tp.read_text()
    try:
        t = json.loads(original)
        t["contributions"][0]["contribution_hash"] = "00" * 64
        tp.write_text(json.dumps(t))
        with pytest.raises(CeremonyError, match="alice"):
            keys.verify_ceremony(ceremony["cc"], fresh=False)  # snarkjs output of finalize, same files
    finally:
        tp.write_text(original)


def test_ptau_too_small_for_the_circuit_is_one_line(tmp_path: Path) -> None:
    """import-ptau refuses a ptau smaller than the circuit needs, naming both powers, before snarkjs runs."""
    spec = load(random_spec(12, sizes=(40, 30, 10), name="too-big-for-2e10"))
    cc = compile_circuit(spec, "public")  # 40 x 8 input range bits + 30 requants + two hashes
    assert cc.n_constraints > 1024
    with pytest.raises(CeremonyError) as ei:
        keys.import_ptau(cc, PTAU, expected_sha256=PTAU_SHA)
    msg = str(ei.value)
    assert "needs a 2^11 ptau" in msg and "is 2^10" in msg and "\n" not in msg, msg
    assert not (cc.dir / "keys" / "ceremony").exists()  # nothing half-made
