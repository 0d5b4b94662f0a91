"""Integration on the devnet: request -> commit/reveal by a committee node -> finalize ->
submitProof with a groth16py proof (shipped digits verifier) -> request PROVEN; the same proof
replayed by another account is rejected (requestBinding names the prover)."""

from __future__ import annotations

import secrets

import pytest
from web3 import Web3

from verinfer.chain.devnet import mine
from verinfer.chain.errors import ContractError
from verinfer.chain.devnet import funded_account
from verinfer.chain.protocol import (
    ModelInput,
    ModelShard,
    Protocol,
    RequestParams,
    Status,
    commitment_hash,
)
from verinfer.models import reference
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin
from verinfer.prover import pipeline

ETHER = 10**18


def _funded(w3: Web3):
    return funded_account(w3)


def test_request_proven_through_the_market_and_replay_rejected(w3: Web3, protocol: Protocol) -> None:
    spec = load_builtin("digits-mlp")
    arts = pipeline.prepare(spec, "public", setup="shipped")
    publisher, node, requester, thief = (_funded(w3) for _ in range(4))
    verifier = pipeline.deploy_verifier(w3, publisher, arts)
    _, model_id = protocol.as_account(publisher).models.register_model(ModelInput(
        name=f"digits-prover-{secrets.token_hex(4)}", weights_cid="bafkreidigitsproverintegrationtest",
        commitment=arts.commitment, verifier=verifier, proof_mode=1, num_layers=spec.num_layers,
        input_bits=spec.input_bits, output_bits=spec.output_bits))
    protocol.as_account(node).nodes.register("http://127.0.0.1", [ModelShard(model_id)], 2 * ETHER)

    x = [int(v) for v in reference.check_input(spec, [(i * 7) % 17 for i in range(64)])]
    market = protocol.as_account(requester).market
    params = RequestParams(replicas=1, quorum=1, commit_blocks=20, reveal_blocks=20)
    _, rid = market.request_inference(model_id, "bafkreiinput", hash_vector(x, 8), params, ETHER // 100)
    assert market.get_committee(rid) == [node.address]

    out_hash = hash_vector(reference.run(spec, x), 32)
    salt = secrets.token_bytes(32)
    nm = protocol.as_account(node).market
    nm.commit(rid, commitment_hash(rid, out_hash, salt, node.address))
    try:
        nm.reveal(rid, out_hash, salt, "bafkreioutput")
    except ContractError:
        mine(w3, params.commit_blocks + 1)  # reveal opens only after the commit window
        nm.reveal(rid, out_hash, salt, "bafkreioutput")
    try:
        nm.finalize(rid)
    except ContractError:
        mine(w3, params.reveal_blocks + 1)
        nm.finalize(rid)
    assert market.get_request(rid).status == Status.ACCEPTED

    proof_hash, calldata = pipeline.prove_request(arts, spec, x, rid, node.address)
    assert int.from_bytes(proof_hash, "big") == out_hash
    # the thief cannot take credit with the node's proof: the binding is to (requestId, node)
    with pytest.raises(ContractError):
        protocol.as_account(thief).market.submit_proof(rid, proof_hash, calldata)
    nm.submit_proof(rid, proof_hash, calldata)
    r = market.get_request(rid)
    assert r.proven and r.proven_output_hash == out_hash and not r.contradicted
    # and a replay after success, by anyone, is rejected too
    with pytest.raises(ContractError):
        nm.submit_proof(rid, proof_hash, calldata)
    assert market.request_binding(rid, node.address) == pipeline.request_binding(rid, node.address)
    # the auditor's view: everything rebuilt from public data
    out = reference.run(spec, x)
    audit = pipeline.check_request_proof(arts, spec, x, out, rid, node.address, calldata, w3=w3,
                                         verifier_address=verifier)
    assert audit["local"] and audit["onchain"]
    audit = pipeline.check_request_proof(arts, spec, x, out, rid, thief.address, calldata, w3=w3,
                                         verifier_address=verifier)
    assert not audit["local"] and audit["onchain"] is False
