"""Convolutional models: format, reference semantics, circuits (direct and circom), EE, proofs.

Keys are INSECURE groth16py dev keys. The CNN is the shipped digits-cnn (verinfer.models.digits_cnn).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verinfer.inference import ee
from verinfer.models import reference
from verinfer.models import spec as mspec
from verinfer.models.digits import load_split
from verinfer.prover import commitment, direct, pipeline
from verinfer.prover.artifacts import compile_circuit
from verinfer.prover.backends import Groth16pyBackend
from verinfer.prover.spec import view
from verinfer.prover.witness import circuit_inputs, compute_witness, read_wtns

CNN = mspec.load_builtin("digits-cnn")


def _naive_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """An independent convolution (loops over a padded CHW array) to check the dense expansion."""
    c, h, wd = x.shape
    oc, _, k, _ = w.shape
    xp = np.zeros((c, h + 2 * pad, wd + 2 * pad), dtype=np.int64)
    xp[:, pad:pad + h, pad:pad + wd] = x
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((oc, oh, ow), dtype=np.int64)
    for o in range(oc):
        for y in range(oh):
            for z in range(ow):
                out[o, y, z] = (xp[:, y * stride:y * stride + k, z * stride:z * stride + k] * w[o]).sum() + b[o]
    return out


@pytest.mark.parametrize("stride,pad,res", [(1, 1, None), (2, 1, None), (1, 0, None), (1, 1, 2)])
def test_conv_layer_matches_an_independent_convolution(stride: int, pad: int, res: int | None) -> None:
    rng = np.random.default_rng(stride * 10 + pad)
    c, oc = 2, (2 if res is not None else 3)
    w = rng.integers(-128, 128, size=(oc, c, 3, 3))
    b = rng.integers(-1000, 1000, size=oc)
    layer = mspec.Conv2dLayer.model_validate({"type": "conv2d", "in_shape": [c, 6, 5], "out_channels": oc,
                                               "kernel": 3, "stride": stride, "padding": pad,
                                               "weight": w.tolist(), "bias": b.tolist(), "residual_shift": res})
    x = rng.integers(-128, 128, size=(c, 6, 5))
    wd, bd = layer.dense()
    got = (wd @ x.ravel() + bd).reshape(layer.out_shape)
    want = _naive_conv(x, w, b, stride, pad)
    if res is not None:
        want = want + (x << res)
    assert (got == want).all()


def test_avgpool_is_floor_of_the_window_mean() -> None:
    layer = mspec.AvgPool2dLayer.model_validate({"type": "avgpool2d", "in_shape": [2, 4, 4], "kernel": 2})
    x = np.arange(-16, 16).reshape(2, 4, 4)
    wd, _ = layer.dense()
    got = (wd @ x.ravel()) >> layer.shift
    want = np.floor(x.reshape(2, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(2, 2, 2, 4).mean(-1)).astype(int)
    assert (got == want.ravel()).all()


def test_bad_cnn_specs_get_one_line_reasons() -> None:
    base = CNN.to_json_obj()
    bad_pool = json.loads(json.dumps(base))
    bad_pool["layers"][1]["kernel"] = 3
    bad_pool["layers"][1]["in_shape"] = [4, 8, 8]
    with pytest.raises(mspec.ModelSpecError, match="window size 9 must be a power of two"):
        mspec.load(bad_pool)
    bad_res = json.loads(json.dumps(base))
    bad_res["layers"][0]["residual_shift"] = 1  # 1 -> 4 channels: shapes differ
    with pytest.raises(mspec.ModelSpecError, match="residual needs equal shapes"):
        mspec.load(bad_res)
    bad_type = json.loads(json.dumps(base))
    bad_type["layers"][1]["type"] = "maxpool2d"
    with pytest.raises(mspec.ModelSpecError) as ei:
        mspec.load(bad_type)
    assert "maxpool2d" in str(ei.value) and "\n" not in str(ei.value)
    from verinfer.prover.errors import ProverError
    with pytest.raises(ProverError, match="only dense, conv2d and avgpool2d"):
        view(bad_type)


def test_shipped_cnn_held_out_accuracy() -> None:
    split = load_split()
    acc = float((np.argmax(reference.run_batch(CNN, split.x_test), axis=1) == split.y_test).mean())
    assert acc >= 0.93, acc  # 94.3% measured (float model 93.7%)
    assert CNN.num_parameters == 838


@pytest.mark.parametrize("mode", ["public", "private"])
def test_cnn_direct_circuit_proves(mode: str) -> None:
    sv = view(CNN.to_json_obj())
    dc = direct.generate_r1cs(sv, mode)
    x = [int(v) for v in load_split().x_test[0]]
    vals, outs = direct.witness_values(sv, mode, x, 11)
    assert outs == reference.run(CNN, x)
    assert direct.check_r1cs(dc.r1cs_path, vals) is None
    if mode == "private":
        assert vals[1] == mspec.weights_commitment(CNN) == commitment.commitment(sv)
    bad = list(vals)
    bad[len(dc.public_signal_names) + 70] += 1  # a private input / early wire
    assert direct.check_r1cs(dc.r1cs_path, bad) is not None
    pk, vk = direct.dev_setup(dc)  # INSECURE
    proof = direct.prove_values(pk, vals, len(dc.public_signal_names))
    assert Groth16pyBackend().verify(vk, proof)


def test_cnn_circom_public_circuit_equals_direct_witness(tmp_path: Path) -> None:
    sv = view(CNN.to_json_obj())
    cc = compile_circuit(sv, "public")
    x = [int(v) for v in load_split().x_test[1]]
    wasm = read_wtns(compute_witness(cc, circuit_inputs(sv, "public", x, 3), tmp_path / "w.wtns"))
    assert direct.circom_witness(cc, x, 3) == wasm
    assert abs(cc.n_constraints - direct.generate_r1cs(sv, "public").n_constraints) / cc.n_constraints < 0.01


@pytest.mark.parametrize("model", ["digits-cnn", "digits-mlp"])
def test_encrypted_model_is_proven_and_decrypts(model: str) -> None:
    """EE + proof: the node proves the permuted computation with the encrypted model's own key."""
    plain = mspec.load_builtin(model)
    key = ee.EEKey.generate(plain, seed=7)
    enc = ee.encrypt_model(plain, key)
    x = [int(v) for v in load_split().x_test[2]]
    xe = ee.encrypt_input_for(plain, x, key)
    sv_e, sv_p = view(enc.to_json_obj()), view(plain.to_json_obj())
    dc_e, dc_p = direct.generate_r1cs(sv_e, "public"), direct.generate_r1cs(sv_p, "public")
    assert dc_e.manifest["circuit_id"] != dc_p.manifest["circuit_id"]
    pk, vk = direct.dev_setup(dc_e)  # the encrypted model's own verifier
    b = pipeline.request_binding(1, "0x" + "cd" * 20)
    vals, out_e = direct.witness_values(sv_e, "public", xe, b)
    proof = direct.prove_values(pk, vals, 3)
    assert Groth16pyBackend().verify(vk, proof)
    assert ee.decrypt_output(out_e, key) == reference.run(plain, x)
    # permutations keep every per-neuron weight set: the same circuit size as the plaintext model
    assert dc_e.n_constraints == dc_p.n_constraints


@pytest.mark.slow
def test_cnn_circom_private_circuit_equals_direct_witness(tmp_path: Path) -> None:
    """conv kernels as shared private inputs in circom too (circuits/lib/conv.circom); ~70 s compile."""
    sv = view(CNN.to_json_obj())
    cc = compile_circuit(sv, "private")
    x = [int(v) for v in load_split().x_test[3]]
    wasm = read_wtns(compute_witness(cc, circuit_inputs(sv, "private", x, 9), tmp_path / "w.wtns"))
    assert direct.circom_witness(cc, x, 9) == wasm
    assert wasm[1] == mspec.weights_commitment(CNN)


def test_pipeline_proves_a_cnn_request_through_the_direct_path() -> None:
    """What a node calls: prepare (direct r1cs, INSECURE dev key, exported verifier) -> prove -> audit check."""
    arts = pipeline.prepare(CNN.to_json_obj(), "private", setup="dev", circuit="direct")
    assert arts.insecure and arts.commitment == mspec.weights_commitment(CNN)
    assert "WARNING: INSECURE" in arts.verifier_sol.read_text()
    x = [int(v) for v in load_split().x_test[4]]
    prover = "0x" + "12" * 20
    proof = pipeline.prove_for_request(arts, CNN.to_json_obj(), x, 42, prover)
    out = reference.run(CNN, x)
    res = pipeline.check_request_proof(arts, CNN.to_json_obj(), x, out, 42, prover, proof.to_calldata())
    assert res["local"] is True
    wrong = pipeline.check_request_proof(arts, CNN.to_json_obj(), x, out, 43, prover, proof.to_calldata())
    assert wrong["local"] is False
    from verinfer.prover.errors import ProverError
    with pytest.raises(ProverError, match="dev .*keys only"):
        pipeline.prepare(CNN.to_json_obj(), "private", setup="shipped", circuit="direct")
