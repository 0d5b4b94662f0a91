"""The direct constraint path (verinfer.prover.direct) against the circom reference circuits.

Equivalence on the shipped digits MLP: the direct integer computation reproduces circom's wasm
witness bit for bit (every wire, via the .sym names), a proof made with the circom zkey from that
witness verifies (groth16py and snarkjs), the direct .r1cs is satisfied by its own witness and has
the same public signals, and proofs over the direct r1cs verify. Keys here are INSECURE.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verinfer.models.hashing import FIELD, hash_vector, poseidon
from verinfer.prover import commitment, direct, pipeline, poseidon_r1cs
from verinfer.prover.artifacts import compile_circuit
from verinfer.prover.backends import Groth16pyBackend, SnarkjsBackend
from verinfer.prover.errors import ProverError, ProverInputError
from verinfer.prover.spec import run_layers, view
from verinfer.prover.witness import circuit_inputs, compute_witness, read_wtns

DATA = Path(__file__).resolve().parents[1] / "verinfer" / "models" / "data"
SPEC = DATA / "digits-mlp.json"
PTAU = Path(__file__).resolve().parents[1] / "verinfer" / "prover" / "data" / "ptau" / "INSECURE_test_phase1_bn128_2e10.ptau"


def _inputs(n: int) -> list[list[int]]:
    samples = json.loads((DATA / "digits-samples.json").read_text())["samples"]
    return [[p * 8 - 64 for p in s["pixels"]] for s in samples[:n]]


@pytest.mark.parametrize("arity", [1, 2, 3, 4, 8, 15, 16])
def test_poseidon_trace_matches_reference(arity: int) -> None:
    xs = [(i * 7919 + arity) % FIELD for i in range(arity)]
    out, sig, rec = poseidon_r1cs.trace(xs, record=True)
    assert out == poseidon(xs)
    assert len(rec) == len(poseidon_r1cs.names(arity + 1))
    assert len(sig) == 3 * (8 * (arity + 1) + poseidon_r1cs.N_ROUNDS_P[arity - 1])


@pytest.mark.parametrize("mode", ["public", "private"])
def test_direct_r1cs_is_satisfied_and_hashes_match(mode: str) -> None:
    sv = view(SPEC)
    dc = direct.generate_r1cs(sv, mode)
    x = _inputs(1)[0]
    vals, outs = direct.witness_values(sv, mode, x, 99)
    assert outs == run_layers(sv, x)[-1]
    assert direct.check_r1cs(dc.r1cs_path, vals) is None
    pub = vals[1:1 + len(dc.public_signal_names)]
    expect = [hash_vector(x, sv.input_bits), hash_vector(outs, sv.output_bits), 99]
    if mode == "private":
        expect = [commitment.commitment(sv)] + expect
    assert pub == expect
    # a changed logit breaks a constraint (the witness is not free)
    bad = list(vals)
    bad[-1] = (bad[-1] + 1) % FIELD
    assert direct.check_r1cs(dc.r1cs_path, bad) is not None
    # constraint counts stay within 1% of circom --O2 (1,779 / 27,893 measured)
    ref = {"public": 1779, "private": 27893}[mode]
    assert abs(dc.n_constraints - ref) / ref < 0.01


def test_direct_witness_equals_circom_wasm_witness_and_proves_with_the_shipped_zkey(tmp_path: Path) -> None:
    arts = pipeline.prepare(json.loads(SPEC.read_text()), "public", setup="shipped")
    cc = arts.compiled
    g16, snark = Groth16pyBackend(), SnarkjsBackend()
    for i, x in enumerate(_inputs(3)):
        b = pipeline.request_binding(i + 1, "0x" + "11" * 20)
        wasm = read_wtns(compute_witness(cc, circuit_inputs(cc.spec, "public", x, b), tmp_path / f"w{i}.wtns"))
        mine = direct.circom_witness(cc, x, b)
        assert mine == wasm  # every wire, bit for bit
    path = direct.write_wtns(mine, tmp_path / "direct.wtns")
    assert read_wtns(path) == mine
    proof = g16.prove_wtns(arts, path)  # circom's key, the direct path's witness
    assert g16.verify(arts.vk, proof) and snark.verify(arts.vk, proof)
    proof2 = snark.prove_wtns(arts, path)
    assert g16.verify(arts.vk, proof2)


def test_direct_private_witness_equals_circom_wasm_witness(tmp_path: Path) -> None:
    sv = view(SPEC)
    cc = compile_circuit(sv, "private")  # cached after the first run (~100 s cold)
    x = _inputs(1)[0]
    wasm = read_wtns(compute_witness(cc, circuit_inputs(sv, "private", x, 5), tmp_path / "w.wtns"))
    assert direct.circom_witness(cc, x, 5) == wasm


def test_direct_r1cs_proves_and_verifies_with_both_tools(tmp_path: Path) -> None:
    sv = view(SPEC)
    dc = direct.generate_r1cs(sv, "public")
    pk, vk = direct.dev_setup(dc)  # INSECURE
    vals, _ = direct.witness_values(sv, "public", _inputs(1)[0], 7)
    proof = direct.prove_values(pk, vals, len(dc.public_signal_names))
    assert Groth16pyBackend().verify(vk, proof) and SnarkjsBackend().verify(vk, proof)
    forged = type(proof)(proof.a, proof.b, proof.c, (proof.public_signals[0], proof.public_signals[1] ^ 1, 7))
    assert not Groth16pyBackend().verify(vk, forged)
    # snarkjs reads the direct r1cs too
    from verinfer.prover import toolchain
    info = toolchain.run(toolchain.snarkjs_cmd() + ["r1cs", "info", str(dc.r1cs_path)], what="snarkjs r1cs info")
    assert f"# of Constraints: {dc.n_constraints}" in info.stdout + info.stderr


def test_bad_inputs_get_one_line_reasons(tmp_path: Path) -> None:
    spec = json.loads(SPEC.read_text())
    with pytest.raises(ProverInputError, match=r"input\[3\] = 999"):
        direct.witness_values(spec, "public", [0, 0, 0, 999] + [0] * 60, 1)
    bad = dict(spec, layers=[dict(spec["layers"][0], type="lstm")] + spec["layers"][1:])
    with pytest.raises(ProverError, match="layer 0: only dense") as ei:
        direct.generate_r1cs(bad, "public")
    assert "\n" not in str(ei.value)
    dc = direct.generate_r1cs(spec, "private")
    with pytest.raises(ProverError, match=r"needs a 2\^15 ptau; .* is 2\^10") as ei:
        direct.check_ptau(dc, PTAU)
    assert "\n" not in str(ei.value)
    tiny = dict(spec, input_shape=[4], layers=[{"type": "dense", "in": 4, "out": 2, "weight": [[1, 2, 3, 4], [0, -1, 5, 7]], "bias": [3, -2], "shift": 0, "relu": False, "clamp_bits": None}])
    assert direct.check_ptau(direct.generate_r1cs(tiny, "public"), PTAU) == 10


@pytest.mark.slow
def test_large_private_generation(tmp_path: Path) -> None:
    """~510k constraints generated directly (the circom compile does not finish in 10 minutes)."""
    large = DATA / "digits-mlp-large.json"
    sv = view(large)
    dc = direct.generate_r1cs(sv, "private", force=True)
    assert 500_000 < dc.n_constraints < 520_000
    vals, outs = direct.witness_values(sv, "private", _inputs(1)[0], 3)
    assert outs == run_layers(sv, _inputs(1)[0])[-1]
    assert vals[1] == commitment.commitment(sv)
