"""Attack 10 (issue 7) at the SDK: a wrong majority must not settle through verinfer's own client.

Before the fix `Client.wait` finalized one block after the last reveal, before the honest proof landed, and
the CLI headline read "Proven" for the wrong output. Here two of three committee members reveal the same
wrong output of a proven (mode 2) model and the third the true one. `Client.wait` must not finalize inside
the proof window; once the honest member's proof lands it settles on the true output, shows "Proven" for
that output only, the liars are slashed and the prover rewarded. Real anvil, real Groth16 proof (a tiny
private-weights model with dev keys), the chain flow driven as nodes would.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from web3 import Web3

from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.protocol import ModelInput, ModelShard, Protocol, commitment_hash
from verinfer.chain.verifier import deploy_verifier
from verinfer.client import Client, RequestTimeout
from verinfer.constants import ETHER
from verinfer.devnet.samples import random_spec
from verinfer.models import reference
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load as load_spec
from verinfer.models.spec import reference_profile_hash
from verinfer.models.tensor import encode_output
from verinfer.prover import pipeline
from verinfer.storage import open_store

FEE = 3 * 10**16


def test_wrong_majority_never_settles_through_the_sdk(w3: Web3, protocol: Protocol, protocol_manifest_path: Path,
                                                     tmp_path: Path) -> None:
    spec_obj = random_spec(11)
    spec = load_spec(spec_obj)
    arts = pipeline.prepare(spec_obj, "private", setup="dev")
    publisher, requester = funded_account(w3), funded_account(w3)
    nodes = [funded_account(w3) for _ in range(3)]
    store = open_store(root=tmp_path / "store")
    verifier = deploy_verifier(w3, publisher, arts)
    _, model_id = protocol.as_account(publisher).models.register_model(ModelInput(
        name=f"tiny-attack10-{secrets.token_hex(4)}", weights_cid=store.add(spec.canonical_json()),
        commitment=arts.commitment, verifier=verifier, proof_mode=2, execution_profile_hash=reference_profile_hash(),
        num_layers=spec.num_layers, input_bits=spec.input_bits, output_bits=spec.output_bits))
    for n in nodes:
        protocol.as_account(n).nodes.register("http://127.0.0.1", [ModelShard(model_id)], 2 * ETHER)
    epoch = protocol.nodes.epoch_length()
    mine(w3, epoch - w3.eth.block_number % epoch)  # stake counts for draws from the next epoch's snapshot

    client = Client(protocol.manifest.rpc_url, protocol_manifest_path, requester, store, poll_interval=0.1)
    x = [5, -7, 100, -128, 0, 42]
    rid = client.submit(model_id, x, FEE, replicas=3, quorum=2, commit_blocks=10, reveal_blocks=10)
    truth = reference.run(spec, x)
    wrong = list(truth)
    wrong[0] += 1
    outputs = {nodes[0].address: wrong, nodes[1].address: wrong, nodes[2].address: truth}
    mine(w3, max(0, client.protocol.market.get_request(rid).draw_block + 1 - w3.eth.block_number))
    salts = {n.address: secrets.token_bytes(32) for n in nodes}
    for n in nodes:  # the first commit draws; 3 of 3 staked nodes form the committee
        h = hash_vector(outputs[n.address], 32)
        protocol.as_account(n).market.commit(rid, commitment_hash(rid, h, salts[n.address], n.address))
    assert sorted(client.protocol.market.get_committee(rid)) == sorted(n.address for n in nodes)
    for n in nodes:
        out = outputs[n.address]
        protocol.as_account(n).market.reveal(rid, hash_vector(out, 32), salts[n.address],
                                             store.add(encode_output(out, 32)))

    # everyone revealed, a 2-of-3 majority agrees on the wrong output: the SDK must not settle it now
    r = client.protocol.market.get_request(rid)
    info = client.model_info(model_id)
    assert r.reveal_count == 3 and not r.proven and info.provable
    assert not client.may_finalize(r, info, w3.eth.block_number)
    with pytest.raises(RequestTimeout):
        client.wait(rid, timeout=3)
    assert not client.protocol.market.get_request(rid).is_final  # nobody finalized inside the proof window

    # the honest member proves the true output inside the window; the SDK then settles on it
    honest = nodes[2]
    proof_hash, words = pipeline.prove_request(arts, spec, x, rid, honest.address)
    assert int.from_bytes(proof_hash, "big") == hash_vector(truth, 32)
    protocol.as_account(honest).market.submit_proof(rid, proof_hash, words)
    res = client.wait(rid, timeout=60)
    assert res.status == "Accepted" and res.proven and res.display_status == "Proven"
    assert res.output_hash == hash_vector(truth, 32) and res.output == truth and res.output_verified
    by = {m.node: m for m in res.committee}
    assert by[honest.address].paid and not by[honest.address].slashed
    assert all(by[n.address].slashed and not by[n.address].paid for n in nodes[:2])
    rewarded = [e for e in client.events(rid) if e.name == "ProverRewarded"]
    assert rewarded and rewarded[0].args["prover"] == honest.address and int(rewarded[0].args["amount"]) > 0
