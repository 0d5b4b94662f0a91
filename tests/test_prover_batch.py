"""The committed batch verifier is the rendering of the shipped digits key; renderer input checks.

The on-chain behaviour (1/4/16 real proofs, InvalidProofAt(i), gas) is tested by forge:
contracts/test/BatchGroth16Verifier.t.sol.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verinfer.prover import batch
from verinfer.prover.errors import ProverError
from verinfer.prover.types import Proof

ROOT = Path(__file__).resolve().parents[1]
VK = ROOT / "verinfer" / "prover" / "data" / "keys" / "digits-mlp.public" / "verification_key.INSECURE.json"


def test_committed_batch_verifier_is_the_rendering_of_the_shipped_vk() -> None:
    vk = json.loads(VK.read_text())
    committed = (ROOT / "contracts" / "src" / "verifiers" / "BatchGroth16VerifierDigitsMlp.sol").read_text()
    key = json.loads((VK.parent / "key.json").read_text())
    rendered = batch.render_batch_verifier(vk, "BatchGroth16VerifierDigitsMlp",
                                           note=f"digits-mlp public; vk sha256 {key.get('vk_sha256', '')}")
    assert rendered == committed
    assert "WARNING: INSECURE" in committed
    # alpha and every IC point appear; G2 coordinates in precompile order (x.c1 first)
    assert vk["vk_beta_2"][0][1] + ";" in committed.split("g[2] = ")[1].split("\n")[0] + ";"


def test_render_rejects_bad_keys_and_batches() -> None:
    vk = json.loads(VK.read_text())
    with pytest.raises(ProverError, match="IC points"):
        batch.render_batch_verifier(dict(vk, IC=vk["IC"][:-1]), "X")
    with pytest.raises(ProverError, match="groth16/bn128"):
        batch.render_batch_verifier(dict(vk, curve="bls12381"), "X")
    p = Proof((1, 2), ((3, 4), (5, 6)), (7, 8), (1, 2, 3))
    q = Proof((1, 2), ((3, 4), (5, 6)), (7, 8), (1, 2))
    with pytest.raises(ProverError, match="same number of public signals"):
        batch.render_fixture("F", [p, q])
    with pytest.raises(ProverError, match="at least one proof"):
        batch.render_fixture("F", [])


def test_batch_args_layout() -> None:
    p = Proof((1, 2), ((3, 4), (5, 6)), (7, 8), (10, 11, 12))
    q = Proof((21, 22), ((23, 24), (25, 26)), (27, 28), (30, 31, 32))
    words, sigs = batch.batch_args([p, q])
    assert words == [p.to_calldata(), q.to_calldata()] and sigs == [10, 11, 12, 30, 31, 32]
    with pytest.raises(ProverError, match="one circuit"):
        batch.batch_args([p, Proof((1, 2), ((3, 4), (5, 6)), (7, 8), (1,))])
