"""Audit of a private-weights (proof mode 2) request: the vk is chosen by the deployed verifier's
bytecode (the commitment names the weights, not the key), and the proof is checked with the
commitment as the first public signal. A tiny model keeps the private circuit cheap; the chain
flow (commit, reveal, finalize, submitProof) is driven directly by the test, as a node would."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from web3 import Web3

from verinfer.auditor import Auditor, Verdict
from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.errors import ContractError
from verinfer.chain.protocol import ModelInput, ModelShard, Protocol, RequestParams, Status, commitment_hash
from verinfer.chain.verifier import deploy_verifier
from verinfer.constants import ETHER
from verinfer.devnet.samples import random_spec
from verinfer.models import reference
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load as load_spec
from verinfer.models.spec import reference_profile_hash
from verinfer.models.tensor import encode_output, encode_tensor
from verinfer.prover import pipeline
from verinfer.storage import open_store


def _funded(w3: Web3):
    return funded_account(w3)


def test_private_mode_request_audits_with_the_verifier_matched_vk(w3: Web3, protocol: Protocol, tmp_path: Path) -> None:
    spec_obj = random_spec(7)
    spec = load_spec(spec_obj)
    arts = pipeline.prepare(spec_obj, "private", setup="dev")
    publisher, node, requester = _funded(w3), _funded(w3), _funded(w3)
    verifier = deploy_verifier(w3, publisher, arts)
    store = open_store(root=tmp_path / "store")
    _, model_id = protocol.as_account(publisher).models.register_model(ModelInput(
        name=f"tiny-private-{secrets.token_hex(4)}", weights_cid=store.add(spec.canonical_json()),
        commitment=arts.commitment, verifier=verifier, proof_mode=2, execution_profile_hash=reference_profile_hash(),
        num_layers=spec.num_layers, input_bits=spec.input_bits, output_bits=spec.output_bits))
    protocol.as_account(node).nodes.register("http://127.0.0.1", [ModelShard(model_id)], 2 * ETHER)
    n = protocol.nodes.epoch_length()
    mine(w3, n - w3.eth.block_number % n)  # stake counts for draws from the next epoch's snapshot
    from verinfer.prover.bundle import publish_bundle

    bundle_cid = publish_bundle(store, arts)  # the keys travel by CID, anchored in the registry
    protocol.as_account(publisher).models.set_artifacts(model_id, bundle_cid)

    x = [5, -7, 100, -128, 0, 42]
    params = RequestParams(replicas=1, quorum=1, commit_blocks=20, reveal_blocks=20)
    _, rid = protocol.as_account(requester).market.request_inference(
        model_id, store.add(encode_tensor(x, "int8", [6])), hash_vector(x, 8), params, ETHER // 100)
    out = reference.run(spec, x)
    out_hash, salt = hash_vector(out, 32), secrets.token_bytes(32)
    nm = protocol.as_account(node).market
    mine(w3, max(0, protocol.market.get_request(rid).draw_block + 1 - w3.eth.block_number))
    nm.commit(rid, commitment_hash(rid, out_hash, salt, node.address))  # the first commit draws the committee
    nm.reveal(rid, out_hash, salt, store.add(encode_output(out, 32)))  # everyone committed: reveal is open
    with pytest.raises(ContractError, match="TooEarlyToFinalize"):
        nm.finalize(rid)  # a proven model settles only after its proof window, or once proven
    proof_hash, words = pipeline.prove_request(arts, spec, x, rid, node.address)
    nm.submit_proof(rid, proof_hash, words)
    nm.finalize(rid)  # every member revealed and the proof landed: finalize is open at once
    assert protocol.market.get_request(rid).status == Status.ACCEPTED

    auditor = Auditor(protocol, store)
    report = auditor.audit(rid)
    assert report.ok, [c.to_json() for c in report.failures]
    assert "weights_commitment(spec)" in report.claim("model.commitment").detail
    # chosen because the deployed verifier embeds its constants (the mode-2 commitment names the weights)
    assert f"prover bundle {bundle_cid}" in report.claim("model.verifier").detail
    assert report.claim("proof.local").verdict is Verdict.PASS
    assert report.claim("proof.onchain").verdict is Verdict.PASS
    assert report.context.vk is not None and report.context.vk.insecure
    # the private-mode signals start with the commitment: without it the same proof fails
    ctx = report.context
    pub = auditor.public_signals(ctx, node.address, ctx.request.output_hash)
    assert pub[0] == arts.commitment and len(pub) == 4
    wrong = auditor.verify_proof(ctx, node.address, ctx.request.output_hash, words,
                                 public_signals=[pub[0] ^ 1] + pub[1:])
    assert [c.verdict for c in wrong] == [Verdict.FAIL, Verdict.FAIL]
