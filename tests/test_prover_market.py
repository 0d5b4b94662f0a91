"""Integration on the devnet: request -> commit/reveal by a committee node -> finalize ->
submitProof with a groth16py proof (shipped digits verifier) -> request PROVEN; the same proof
replayed by another account is rejected (requestBinding names the prover)."""

from __future__ import annotations

import secrets

import pytest
from web3 import Web3

from verinfer.chain.deploy import deploy_contract
from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.errors import ContractError
from verinfer.chain.protocol import (
    ModelInput,
    ModelShard,
    Protocol,
    RequestParams,
    Status,
    commitment_hash,
)
from verinfer.chain.verifier import deploy_verifier, verify_onchain
from verinfer.constants import ETHER
from verinfer.models import reference
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin
from verinfer.prover import pipeline


def _funded(w3: Web3):
    return funded_account(w3)


def test_request_proven_through_the_market_and_replay_rejected(w3: Web3, protocol: Protocol) -> None:
    spec = load_builtin("digits-mlp")
    arts = pipeline.prepare(spec, "public", setup="shipped")
    publisher, node, requester, thief = (_funded(w3) for _ in range(4))
    verifier = deploy_verifier(w3, publisher, arts)
    _, model_id = protocol.as_account(publisher).models.register_model(ModelInput(
        name=f"digits-prover-{secrets.token_hex(4)}", weights_cid="bafkreidigitsproverintegrationtest",
        commitment=arts.commitment, verifier=verifier, proof_mode=1, num_layers=spec.num_layers,
        input_bits=spec.input_bits, output_bits=spec.output_bits))
    protocol.as_account(node).nodes.register("http://127.0.0.1", [ModelShard(model_id)], 2 * ETHER)

    epoch = protocol.nodes.epoch_length()
    mine(w3, epoch - w3.eth.block_number % epoch)  # the stake counts from the next epoch's snapshot

    x = [int(v) for v in reference.check_input(spec, [(i * 7) % 17 for i in range(64)])]
    market = protocol.as_account(requester).market
    params = RequestParams(replicas=1, quorum=1, commit_blocks=20, reveal_blocks=20)
    fee = market.quote(model_id, params)[0]
    _, rid = market.request_inference(model_id, "bafkreiinput", hash_vector(x, 8), params, fee)
    mine(w3, 2)
    assert market.preview_committee(rid) == [node.address]

    out_hash = hash_vector(reference.run(spec, x), 32)
    salt = secrets.token_bytes(32)
    nm = protocol.as_account(node).market
    nm.commit(rid, commitment_hash(rid, out_hash, salt, node.address))  # draws, then commits
    assert market.get_committee(rid) == [node.address]
    nm.reveal(rid, out_hash, salt, "bafkreioutput")  # every member committed: reveal is open
    # V2: a proven model cannot be finalized before its proof window unless a proof landed
    with pytest.raises(ContractError) as ei:
        market.finalize(rid)
    assert ei.value.error_name == "TooEarlyToFinalize"

    proof_hash, calldata = pipeline.prove_request(arts, spec, x, rid, node.address)
    assert int.from_bytes(proof_hash, "big") == out_hash
    # the thief cannot take credit with the node's proof: the binding is to (requestId, node)
    with pytest.raises(ContractError):
        protocol.as_account(thief).market.submit_proof(rid, proof_hash, calldata)
    nm.submit_proof(rid, proof_hash, calldata)
    r = market.get_request(rid)
    assert r.proven and r.status != Status.ACCEPTED
    # a replay, by anyone, is rejected too
    with pytest.raises(ContractError):
        nm.submit_proof(rid, proof_hash, calldata)
    market.finalize(rid)  # proven and every member revealed: settles at once
    r = market.get_request(rid)
    assert r.status == Status.ACCEPTED and r.proven and int.from_bytes(r.output_hash, "big") == out_hash
    with pytest.raises(ContractError) as ei:  # after settlement the proof window is over (documented)
        nm.submit_proof(rid, proof_hash, calldata)
    assert ei.value.error_name in ("AlreadyFinalized", "AlreadyProven")
    assert market.request_binding(rid, node.address) == pipeline.request_binding(rid, node.address)
    # the auditor's view: everything rebuilt from public data
    out = reference.run(spec, x)
    audit = pipeline.check_request_proof(arts, spec, x, out, rid, node.address, calldata)
    assert audit["local"] and verify_onchain(w3, verifier, audit["proof"])
    audit = pipeline.check_request_proof(arts, spec, x, out, rid, thief.address, calldata)
    assert not audit["local"] and not verify_onchain(w3, verifier, audit["proof"])


def test_batch_of_real_proofs_settles_in_one_transaction(w3: Web3, protocol: Protocol) -> None:
    """Three groth16py proofs of three requests in one submitProofBatch through the model version's batch verifier
    (fixed at registration); a batch with one tampered proof names it and accepts nothing."""
    spec = load_builtin("digits-mlp")
    arts = pipeline.prepare(spec, "public", setup="shipped")
    publisher, node, requester, prover = (_funded(w3) for _ in range(4))
    verifier = deploy_contract(w3, publisher, "BatchGroth16VerifierDigitsMlp")
    _, model_id = protocol.as_account(publisher).models.register_model(ModelInput(
        name=f"digits-batch-{secrets.token_hex(4)}", weights_cid="bafkreidigitsbatchintegrationtest",
        commitment=arts.commitment, verifier=verifier, proof_mode=1, num_layers=spec.num_layers,
        input_bits=spec.input_bits, output_bits=spec.output_bits))
    protocol.as_account(node).nodes.register("http://127.0.0.1", [ModelShard(model_id)], 2 * ETHER)
    epoch = protocol.nodes.epoch_length()
    mine(w3, epoch - w3.eth.block_number % epoch)

    market = protocol.as_account(requester).market
    params = RequestParams(replicas=1, quorum=1, commit_blocks=20, reveal_blocks=20)
    fee = market.quote(model_id, params)[0]
    xs = [[int(v) for v in reference.check_input(spec, [(i * k) % 17 for i in range(64)])] for k in (3, 5, 7)]
    rids = [market.request_inference(model_id, "bafkreiinput", hash_vector(x, 8), params, fee)[1] for x in xs]
    mine(w3, 2)
    for rid in rids:
        market.draw(rid)
    proven = [pipeline.prove_request(arts, spec, x, rid, prover.address) for x, rid in zip(xs, rids, strict=True)]
    outs, proofs = [o for o, _ in proven], [list(p) for _, p in proven]

    pm = protocol.as_account(prover).market
    bad = [list(p) for p in proofs]
    bad[1][7] ^= 1
    with pytest.raises(ContractError) as ei:
        pm.submit_proof_batch(rids, outs, bad)
    assert ei.value.error_name == "InvalidProofAt" and ei.value.error_args["index"] == 1
    assert not any(market.get_request(r).proven for r in rids)

    receipt = pm.submit_proof_batch(rids, outs, proofs)
    assert receipt["status"] == 1
    verified = market.contract.events.ProofVerified().process_receipt(receipt)
    assert sorted(int(e["args"]["requestId"]) for e in verified) == sorted(rids)
    for rid in rids:
        r = market.get_request(rid)
        assert r.proven and r.status != Status.ACCEPTED
    # the proven output settles each request once its window is over (no member revealed: NoQuorum would refund)
    last = max(market.get_request(r).finalize_after for r in rids)
    mine(w3, last + 1 - w3.eth.block_number)
    for rid, out in zip(rids, outs, strict=True):
        market.finalize(rid)
        r = market.get_request(rid)
        assert r.status == Status.ACCEPTED and r.output_hash == out
