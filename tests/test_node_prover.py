"""A node proves what it served: model with an on-chain Groth16 verifier → request ends PROVEN.

Who proves is `verinfer.node.proving.proof_plan`: one member (the designated one) when the committee
agrees, everyone honest at once when it does not, the others at half the proof window when the
designated member reveals but never proves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from web3 import Web3

from verinfer.chain.devnet import mine
from verinfer.chain.protocol import Protocol, Status
from verinfer.devnet.cluster import NodeCluster
from verinfer.devnet.processes import wait_for
from verinfer.devnet.samples import sample_input
from verinfer.models import spec as model_spec
from verinfer.models.hashing import hash_vector
from verinfer.models.reference import run as reference_run
from verinfer.models.tensor import encode_tensor


@pytest.fixture(scope="module")
def proven_cluster(tmp_path_factory: pytest.TempPathFactory, w3: Web3, protocol: Protocol,
                   protocol_manifest_path: Path) -> Iterator[NodeCluster]:
    from verinfer.chain.verifier import deploy_verifier
    from verinfer.prover import pipeline

    spec = model_spec.load_builtin("digits-mlp")
    arts = pipeline.prepare(spec, "public", setup="dev")  # cached per circuit: the nodes find the same key
    verifier = deploy_verifier(w3, protocol.account, arts)
    c = NodeCluster(tmp_path_factory.mktemp("node-prover"), w3, protocol, protocol_manifest_path,
                    verifier=verifier, proof_mode=1, commitment=int(arts.commitment))
    yield c
    c.stop_all()


def test_request_is_settled_and_proven_by_a_committee_node(proven_cluster: NodeCluster) -> None:
    c = proven_cluster
    nodes = c.start_many({i: [] for i in range(3)})
    x = sample_input(5)
    rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=90, reveal_blocks=10)
    r = c.wait_final(rid, timeout=120)
    # V2: finalize waits for the proof window, so the proof lands before settlement
    assert r.status == Status.ACCEPTED and r.proven
    ev = [e for e in c.requester.market.events("ProofVerified") if int(e.args["requestId"]) == rid]
    assert len(ev) == 1
    prover = Web3.to_checksum_address(ev[0].args["prover"])
    assert prover in c.addresses
    # a unanimous committee: only the designated member (the first in committee order) spent CPU on a proof
    committee = [Web3.to_checksum_address(a) for a in c.requester.market.get_committee(rid)]
    assert prover == committee[0]
    assert [n.metrics().get("verinfer_node_proof_seconds_count", 0) for n in nodes] == \
        [1 if a == prover else 0 for a in c.addresses]
    p = nodes[c.addresses.index(prover)]
    # the proof is broadcast without a receipt wait; the node counts it when its ProofVerified event arrives
    wait_for(lambda: p.metrics()["verinfer_node_requests_proven_total"] == 1, 30, what="the prover to see its proof")
    # --prover-setup auto skipped the shipped key (its vk commitment is not this model's) and used the dev key
    assert "with the dev key" in p.log()
    # everyone ends with nothing pending (the others saw AlreadyProven or the proven flag)
    for n in nodes:
        wait_for(lambda n=n: not n.health()["pending_requests"], 60, what=f"{n.key} to finish")


def test_honest_minority_with_a_proof_beats_a_wrong_majority(proven_cluster: NodeCluster) -> None:
    """Two nodes reveal the same wrong output; the honest one proves before settlement and wins."""
    c = proven_cluster
    c.stop_all()
    c.start_many({0: ["--fault", "wrong-output"], 1: ["--fault", "wrong-output"], 2: []})
    x = sample_input(7)
    expected = hash_vector(reference_run(c.spec, x), 32)
    stakes = [c.requester.nodes.stake_of(a) for a in c.addresses]
    rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=90, reveal_blocks=90)
    r = c.wait_final(rid, timeout=120)
    assert r.proven and r.status == Status.ACCEPTED
    assert int.from_bytes(r.output_hash, "big") == expected
    wrong = {c.requester.market.get_reveal(rid, a).output_hash for a in c.addresses[:2]}
    assert len(wrong) == 1 and int.from_bytes(wrong.pop(), "big") != expected  # a real colluding majority
    for i in (0, 1):
        assert c.requester.market.get_member_settlement(rid, c.addresses[i]).slashed
        assert c.requester.nodes.stake_of(c.addresses[i]) < stakes[i]
    honest = c.requester.market.get_member_settlement(rid, c.addresses[2])
    assert honest.paid and not honest.slashed
    assert r.reveal_deadline > c.w3.eth.block_number  # settled early, on the proof, not at the deadline
    ev = [e for e in c.requester.market.events("ProofVerified") if int(e.args["requestId"]) == rid]
    assert [Web3.to_checksum_address(e.args["prover"]) for e in ev] == [c.addresses[2]]  # the minority proved at once


def test_a_designated_prover_that_never_proves_is_replaced_at_the_fallback(proven_cluster: NodeCluster) -> None:
    """Two members reveal but never prove (as if they crashed after revealing); the third proves when it is
    designated, and otherwise at half the proof window: the request never settles unproven."""
    c = proven_cluster
    c.stop_all()
    # --block-time 1 (the devnet's): the jump to the fallback block below must not look like fast blocks to the
    # node's clock, which would make it judge that no proof fits before finalizeAfter
    nodes = c.start_many({0: ["--no-prove", "--block-time", "1"], 1: ["--no-prove", "--block-time", "1"],
                          2: ["--block-time", "1"]})
    honest = c.addresses[2]
    proof_blocks = c.requester.market.proof_blocks()
    for attempt in range(8):  # committee order is random: repeat until the proving node is not the designated one
        x = sample_input(20 + attempt)
        rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=30, reveal_blocks=10)
        wait_for(lambda rid=rid: len([e for e in c.requester.market.events("Revealed")
                                      if int(e.args["requestId"]) == rid]) == 3, 90, what=f"request {rid}'s three reveals")
        committee = [Web3.to_checksum_address(a) for a in c.requester.market.get_committee(rid)]
        if committee[0] == honest:  # designated: proves at once, before the fallback block
            r = c.wait_final(rid, timeout=60)
            assert r.proven and c.w3.eth.block_number < r.reveal_deadline + proof_blocks // 2
            continue
        fallback = c.requester.market.get_request(rid).reveal_deadline + proof_blocks // 2
        time.sleep(3)  # a few 1 s blocks after the reveals: the honest node must not prove yet
        assert not c.requester.market.get_request(rid).proven
        mine(c.w3, max(0, fallback - c.w3.eth.block_number))  # jump to the fallback block
        r = c.wait_final(rid, timeout=90)
        assert r.status == Status.ACCEPTED and r.proven
        ev = [e for e in c.requester.market.events("ProofVerified") if int(e.args["requestId"]) == rid]
        assert [Web3.to_checksum_address(e.args["prover"]) for e in ev] == [honest] and ev[0].block_number >= fallback
        assert nodes[2].metrics().get("verinfer_node_proof_seconds_count", 0) == 1 + attempt
        break
    else:
        raise AssertionError("the proving node was the designated member 8 times in a row (p = 3^-8)")
