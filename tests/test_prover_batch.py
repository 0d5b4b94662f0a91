"""The committed batch verifier is the rendering of the shipped digits key; renderer input checks.

The on-chain behaviour (1/4/16 real proofs, InvalidProofAt(i), bad points and signals) is tested by forge:
contracts/test/BatchGroth16Verifier.t.sol; the gas per proof is checked here once more as a real anvil transaction.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from web3 import Web3

from verinfer.chain import artifacts
from verinfer.chain.deploy import deploy_contract
from verinfer.chain.devnet import funded_account
from verinfer.chain.tx import sender_for
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
    # the key blob: alpha, beta, gamma, delta with G2 coordinates in precompile order (x.c1 first), then IC
    words = re.findall(r'hex"([0-9a-f]{64})";? // (\S+)', committed)
    assert len(words) == 14 + 2 * len(vk["IC"])
    assert words[0] == (f'{int(vk["vk_alpha_1"][0]):064x}', "alpha.x")
    assert words[2] == (f'{int(vk["vk_beta_2"][0][1]):064x}', "beta.x.c1")
    assert words[-1] == (f'{int(vk["IC"][-1][1]):064x}', f"IC_{len(vk['IC']) - 1}.y")


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


def _fixture() -> tuple[list[list[int]], list[int]]:
    """The 16 real proofs and their signals from the committed forge fixture (rendered by render_fixture)."""
    src = (ROOT / "contracts" / "test" / "fixtures" / "batch" / "DigitsBatchFixture.sol").read_text()
    proofs = [[int(v) for v in re.findall(r"uint256\((\d+)\)", line)]
              for line in src.splitlines() if re.match(r"\s*p\[\d+\] = \[", line)]
    signals = [int(v) for v in re.findall(r"^\s*s\[\d+\] = (\d+);", src, re.M)]
    return proofs, signals


def test_batch_verifier_gas_as_a_transaction_on_anvil(w3: Web3) -> None:
    """Issue 14: <= 65k gas per proof at n = 16 as a transaction (receipt gasUsed: 21,000 + calldata + execution),
    with the committed artifact and the 16 real proofs of the forge fixture; a tampered batch returns false."""
    proofs, signals = _fixture()
    assert len(proofs) == 16 and len(signals) == 48 and all(len(p) == 8 for p in proofs)
    acct = funded_account(w3)
    address = deploy_contract(w3, acct, "BatchGroth16VerifierDigitsMlp")
    c = w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifacts.load("BatchGroth16VerifierDigitsMlp").abi)
    tx = sender_for(w3, acct)
    used = {}
    for n in (1, 4, 16):
        fn = c.functions.verifyBatch(proofs[:n], signals[: 3 * n])
        assert fn.call({"gas": 2_000_000}) is True
        used[n] = int(tx.send(fn, gas=2_000_000, contract="BatchGroth16VerifierDigitsMlp")["gasUsed"])
    print(f"batch verifier tx gas per proof: n=1 {used[1]}, n=4 {used[4] // 4}, n=16 {used[16] // 16}")
    assert used[16] / 16 <= 65_000
    assert used[4] / 4 < used[1]
    bad = [list(p) for p in proofs]
    bad[11][6], bad[11][7] = bad[10][6], bad[10][7]
    assert c.functions.verifyBatch(bad, signals).call({"gas": 2_000_000}) is False
