"""Digits MLP (public weights, INSECURE dev key): groth16py proofs on snarkjs's Solidity verifier.

Covers the calldata layout (vs `snarkjs zkey export soliditycalldata` semantics), gas with explicit
limits, and every way a proof can be replayed or altered: other request id, prover, input, output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verinfer.chain.verifier import deploy_verifier, verify_gas, verify_onchain
from verinfer.models import reference
from verinfer.models.hashing import FIELD, hash_vector
from verinfer.models.spec import load_builtin
from verinfer.prover import pipeline
from verinfer.prover.backends import Groth16pyBackend, SnarkjsBackend, best_backend
from verinfer.prover.errors import ArtifactError, ProverError
from verinfer.prover.types import Proof

SAMPLES = Path(reference.__file__).parent / "data" / "digits-samples.json"
PROVER = "0x00000000000000000000000000000000000C0FFE"
GAS_TARGET = 230_000


@pytest.fixture(scope="module")
def digits() -> dict:
    spec = load_builtin("digits-mlp")
    arts = pipeline.prepare(spec, "public", setup="dev")
    xs = [s["pixels"] for s in json.loads(SAMPLES.read_text())["samples"][:3]]
    proof = pipeline.prove_for_request(arts, spec, xs[0], 42, PROVER)
    return {"spec": spec, "arts": arts, "xs": xs, "proof": proof}


@pytest.fixture(scope="module")
def verifier(digits: dict, w3, accounts) -> str:
    return deploy_verifier(w3, accounts[0], digits["arts"])


def test_dev_artifacts_are_labelled_insecure(digits: dict) -> None:
    arts = digits["arts"]
    assert arts.insecure and arts.keys.kind == "dev"
    assert "INSECURE" in arts.keys.g16_pk_path.name and "INSECURE" in arts.vk_path.name
    assert "INSECURE" in arts.verifier_sol.read_text()
    assert arts.keys.record["insecure"] is True and "INSECURE" in arts.keys.record["warning"]
    assert arts.public_signal_names == ("inputHash", "outputHash", "requestBinding")
    assert arts.commitment == pipeline.vk_commitment(arts.vk) and 0 < arts.commitment < FIELD


def test_public_signals_and_calldata(digits: dict) -> None:
    spec, arts, x, proof = digits["spec"], digits["arts"], digits["xs"][0], digits["proof"]
    assert list(proof.public_signals) == pipeline.expected_public_signals(
        arts, spec, x, reference.run(spec, x), 42, PROVER)
    out_hash, calldata = pipeline.prove_request(arts, spec, x, 42, PROVER)
    assert out_hash == hash_vector(reference.run(spec, x), 32).to_bytes(32, "big")
    assert len(calldata) == 8 and all(0 <= v < 2**256 for v in calldata)
    # layout: b's pairs swapped relative to snarkjs proof.json, as exportsoliditycalldata does
    p = Proof.from_calldata(calldata, proof.public_signals)
    sj, _ = p.to_snarkjs()
    assert [int(sj["pi_b"][0][1]), int(sj["pi_b"][0][0])] == calldata[2:4]
    assert Proof.from_bytes(p.to_bytes(), p.public_signals) == p


def test_groth16py_proof_verifies_with_snarkjs(digits: dict) -> None:
    arts, proof = digits["arts"], digits["proof"]
    assert SnarkjsBackend().verify(arts.vk, proof)
    assert Groth16pyBackend().verify(arts.vk, proof)
    assert isinstance(best_backend(), Groth16pyBackend)


def test_snarkjs_cannot_prove_with_a_dev_key(digits: dict) -> None:
    from verinfer.prover.witness import circuit_inputs

    sv_inputs = circuit_inputs(pipeline.view(digits["spec"]), "public", digits["xs"][0], 1)
    with pytest.raises(ProverError, match="zkey"):
        SnarkjsBackend().prove(digits["arts"], sv_inputs)


def test_onchain_verification_and_gas(digits: dict, verifier: str, w3, accounts) -> None:
    proof = digits["proof"]
    assert verify_onchain(w3, verifier, proof)
    gas = verify_gas(w3, accounts[0], verifier, proof)
    assert gas <= GAS_TARGET, gas
    # eth_call with too little gas returns false instead of reverting: why callers pass explicit gas
    assert not verify_onchain(w3, verifier, proof, gas=60_000)


def test_replays_and_tampering_fail_onchain(digits: dict, verifier: str, w3) -> None:
    spec, arts, xs, proof = digits["spec"], digits["arts"], digits["xs"], digits["proof"]
    inp, out, binding = proof.public_signals
    other_request = pipeline.request_binding(43, PROVER)
    other_prover = pipeline.request_binding(42, "0x000000000000000000000000000000000000dEaD")
    other_input = hash_vector(xs[1], 8)
    other_output = hash_vector(reference.run(spec, xs[1]), 32)
    for pub in ([inp, out, other_request], [inp, out, other_prover], [other_input, out, binding],
                [inp, other_output, binding], [inp, out, (FIELD - binding) % FIELD]):
        forged = proof.with_public_signals(pub)
        assert not verify_onchain(w3, verifier, forged), pub
        assert not Groth16pyBackend().verify(arts.vk, forged)
    words = proof.to_calldata()
    for i in (0, 3, 7):
        bad = list(words)
        bad[i] = (bad[i] + 1) % (2**256)
        assert not verify_onchain(w3, verifier, Proof.from_calldata(bad, proof.public_signals))
    # a real proof for another request verifies only with its own binding
    p2 = pipeline.prove_for_request(arts, spec, xs[1], 43, PROVER)
    assert verify_onchain(w3, verifier, p2)
    assert not verify_onchain(w3, verifier, p2.with_public_signals([p2.public_signals[0], p2.public_signals[1], binding]))


def test_corrupt_dev_key_is_detected(digits: dict, tmp_path: Path) -> None:
    import shutil

    km = digits["arts"].keys
    backup = tmp_path / "pk.bak"
    shutil.copyfile(km.g16_pk_path, backup)
    try:
        data = bytearray(km.g16_pk_path.read_bytes())
        data[1000] ^= 0xFF
        km.g16_pk_path.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="corrupt"):
            km.check()
    finally:
        shutil.copyfile(backup, km.g16_pk_path)
    km.check()


def test_shipped_digits_keys_match_the_committed_verifier(w3, accounts) -> None:
    """The committed contracts/src/verifiers/DigitsMlpVerifier.sol is the export of the shipped zkey,
    and proofs from both backends with that zkey verify on it."""
    spec = load_builtin("digits-mlp")
    arts = pipeline.prepare(spec, "public", setup="shipped")
    assert arts.insecure and arts.zkey_path is not None
    committed = Path(__file__).resolve().parents[1] / "contracts" / "src" / "verifiers" / "DigitsMlpVerifier.sol"
    assert committed.read_text() == arts.verifier_sol.read_text()
    assert "contract Groth16VerifierDigitsMlp {" in committed.read_text()
    x = json.loads(SAMPLES.read_text())["samples"][3]["pixels"]
    address = deploy_verifier(w3, accounts[0], arts)
    for backend in (Groth16pyBackend(), SnarkjsBackend()):
        proof = pipeline.prove_for_request(arts, spec, x, 7, PROVER, backend=backend)
        assert verify_onchain(w3, address, proof), backend.name
        other = Groth16pyBackend() if backend.name == "snarkjs" else SnarkjsBackend()
        assert other.verify(arts.vk, proof)
