"""The generated circuits compute exactly the integer reference (§1.4) and hash per §1.1."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from verinfer.models import reference
from verinfer.models.hashing import FIELD, hash_vector
from verinfer.models.spec import load, load_builtin, weights_commitment
from verinfer.prover import toolchain
from verinfer.prover.artifacts import compile_circuit
from verinfer.prover.circuitgen import generate
from verinfer.prover.commitment import commitment as prover_commitment
from verinfer.prover.errors import ProverError, ProverInputError
from verinfer.prover.spec import view
from verinfer.devnet.samples import random_spec
from verinfer.prover.witness import (
    circuit_inputs,
    compute_witnesses,
    read_wtns,
    signal_values,
    signed,
)

SAMPLES = Path(reference.__file__).parent / "data" / "digits-samples.json"


def _digits_inputs(n: int, seed: int) -> list[list[int]]:
    samples = [s["pixels"] for s in json.loads(SAMPLES.read_text())["samples"]]
    rng = random.Random(seed)
    rand = [[rng.randint(-128, 127) for _ in range(64)] for _ in range(n)]
    return samples + rand + [[-128] * 64, [127] * 64, [0] * 64]


def _check_against_reference(spec, mode: str, xs: list[list[int]], tmp: Path) -> None:
    sv = view(spec)
    cc = compile_circuit(spec, mode)
    wtns = compute_witnesses(cc, [circuit_inputs(sv, mode, x, 12345) for x in xs], tmp)
    off = 1 if mode == "private" else 0
    for x, wpath in zip(xs, wtns):
        w = read_wtns(wpath)
        pub = w[1: 1 + len(cc.public_signal_names)]
        trace = reference.trace(spec, x)
        assert pub[off] == hash_vector(x, sv.input_bits), "inputHash differs from §1.1"
        assert pub[off + 1] == hash_vector(reference.run(spec, x), sv.output_bits), "outputHash differs"
        assert pub[-1] == 12345
        if mode == "private":
            assert pub[0] == weights_commitment(spec)
        for li, layer in enumerate(trace[:-1]):
            vals = signal_values(cc, w, f"h{li}[")
            # --O2 drops signals it proves constant (e.g. a neuron whose window is below 2^shift):
            # compare every kept one; the outputHash above covers the rest bit for bit
            kept = [i for i in range(len(layer.out)) if f"h{li}[{i}]" in vals]
            assert len(kept) >= 0.9 * len(layer.out)
            got = [signed(vals[f"h{li}[{i}]"]) for i in kept]
            assert got == [layer.out[i] for i in kept], f"layer {li} activations differ for x={x}"


def test_digits_public_matches_reference(tmp_path: Path) -> None:
    spec = load_builtin("digits-mlp")
    cc = compile_circuit(spec, "public")
    assert cc.n_constraints < 2000, cc.n_constraints
    assert cc.public_signal_names == ("inputHash", "outputHash", "requestBinding")
    _check_against_reference(spec, "public", _digits_inputs(60, 1), tmp_path)


def test_digits_private_matches_reference_and_commitment(tmp_path: Path) -> None:
    spec = load_builtin("digits-mlp")
    cc = compile_circuit(spec, "private")
    assert cc.public_signal_names == ("modelCommitment", "inputHash", "outputHash", "requestBinding")
    assert prover_commitment(spec) == weights_commitment(spec)
    _check_against_reference(spec, "private", _digits_inputs(0, 2)[:4], tmp_path)


@pytest.mark.parametrize("mode", ["public", pytest.param("private", marks=pytest.mark.slow)])
def test_every_requant_variant_matches_reference(mode: str, tmp_path: Path) -> None:
    """relu+clamp, clamp only, shift only, relu only: both clamp sides and signs are hit."""
    spec = load(random_spec(7, sizes=(6, 5, 4, 4, 3, 3)))
    rng = random.Random(3)
    xs = [[rng.randint(-128, 127) for _ in range(6)] for _ in range(60)] + [[-128] * 6, [127] * 6]
    traces = [reference.trace(spec, x) for x in xs]
    # the sample must actually exercise the clamps (else the test proves little)
    l1 = [v for t in traces for v in t[1].out]
    assert min(l1) == -32 and max(l1) == 31
    _check_against_reference(spec, mode, xs, tmp_path)


def test_out_of_range_input_is_rejected_before_proving() -> None:
    sv = view(load_builtin("digits-mlp"))
    with pytest.raises(ProverInputError, match=r"input\[3\] = 128"):
        circuit_inputs(sv, "public", [0, 0, 0, 128] + [0] * 60, 1)
    with pytest.raises(ProverInputError, match="64"):
        circuit_inputs(sv, "public", [0] * 63, 1)
    with pytest.raises(ProverInputError):
        circuit_inputs(sv, "public", [0] * 64, FIELD)
    assert issubclass(ProverInputError, ProverError)


def test_circuit_rejects_out_of_range_witness(tmp_path: Path) -> None:
    """The range checks are real constraints: the wasm calculator refuses an input outside 8 bits."""
    spec = load_builtin("digits-mlp")
    cc = compile_circuit(spec, "public")
    bad = {"x": ["300"] + ["0"] * 63, "requestBinding": "1"}
    with pytest.raises(ProverError, match="witness"):
        compute_witnesses(cc, [bad], tmp_path)


def test_tampered_activation_violates_constraints(tmp_path: Path) -> None:
    """Changing one hidden activation in a valid witness makes `snarkjs wtns check` fail."""
    spec = load_builtin("digits-mlp")
    sv = view(spec)
    cc = compile_circuit(spec, "public")
    (w,) = compute_witnesses(cc, [circuit_inputs(sv, "public", _digits_inputs(0, 0)[0], 9)], tmp_path)
    toolchain.run(toolchain.snarkjs_cmd() + ["wtns", "check", str(cc.r1cs_path), str(w)], what="wtns check")
    idx = None
    for line in cc.sym_path.read_text().splitlines():
        parts = line.split(",")
        if parts[3] == "main.h0[0]":
            idx = int(parts[1])
    assert idx is not None and idx > 0
    data = bytearray(w.read_bytes())
    values = read_wtns(w)
    # locate section 2 and overwrite value idx with value+1
    n_sections = struct.unpack_from("<I", data, 8)[0]
    off = 12
    for _ in range(n_sections):
        stype, size = struct.unpack_from("<IQ", data, off)
        off += 12
        if stype == 2:
            n8 = 32
            data[off + idx * n8: off + (idx + 1) * n8] = ((values[idx] + 1) % FIELD).to_bytes(32, "little")
        off += size
    bad = tmp_path / "bad.wtns"
    bad.write_bytes(bytes(data))
    with pytest.raises(ProverError):
        toolchain.run(toolchain.snarkjs_cmd() + ["wtns", "check", str(cc.r1cs_path), str(bad)], what="wtns check")


def test_generation_is_deterministic_and_cache_keyed() -> None:
    spec = load_builtin("digits-mlp")
    assert generate(spec, "public").source == generate(spec, "public").source
    a = compile_circuit(spec, "public")
    b = compile_circuit(spec, "public")
    assert a.dir == b.dir and a.circuit_hash == b.circuit_hash
    assert a.manifest["r1cs_sha256"] == toolchain.sha256_file(a.r1cs_path)
    other = compile_circuit(load(random_spec(1)), "public")
    assert other.circuit_hash != a.circuit_hash
    with pytest.raises(ProverError, match="proof mode"):
        generate(spec, "semi")


@pytest.mark.slow
def test_large_model_public_matches_reference(tmp_path: Path) -> None:
    spec = load_builtin("digits-mlp-large")
    _check_against_reference(spec, "public", _digits_inputs(10, 5), tmp_path)
