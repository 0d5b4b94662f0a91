"""Real node processes on the session anvil: serve a request end to end, and out-vote a faulty node.

Each module publishes its own copy of digits-mlp (a fresh model id), so only the nodes started
here are eligible for it and a 3-replica committee is exactly these three nodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from web3 import Web3

from verinfer.chain.devnet import mine
from verinfer.chain.protocol import Protocol, RequestParams, Status, decode_event
from verinfer.models.hashing import INVALID_INPUT_HASH, hash_vector
from verinfer.models.reference import run as reference_run
from verinfer.models.tensor import encode_tensor
from verinfer.constants import ETHER
from verinfer.devnet.cluster import NodeCluster
from verinfer.devnet.processes import wait_for
from verinfer.devnet.samples import sample_input
from verinfer.storage import cid_of


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, w3: Web3, protocol: Protocol, protocol_manifest_path: Path) -> Iterator[NodeCluster]:
    n = NodeCluster(tmp_path_factory.mktemp("node-e2e"), w3, protocol, protocol_manifest_path)
    yield n
    n.stop_all()


def test_three_nodes_serve_a_request_and_faulty_node_is_slashed(net: NodeCluster) -> None:
    """Honest majority wins; the wrong-output node is slashed and unpaid; proof metrics and health are live."""
    nodes = net.start_many({
        0: ["--fetch-timeout", "2"],
        1: ["--fetch-timeout", "2", "--auto-withdraw", "--withdraw-threshold", "0.001"],
        2: ["--fetch-timeout", "2", "--fault", "wrong-output"],
    })
    x = sample_input(0)
    expected = reference_run(net.spec, x)
    expected_hash = hash_vector(expected, net.spec.output_bits)
    stake_before = [net.requester.nodes.stake_of(a) for a in net.addresses]

    rid = net.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8))
    r = net.wait_final(rid)

    assert r.status == Status.ACCEPTED
    assert int.from_bytes(r.output_hash, "big") == expected_hash
    reveals = [decode_event(e) for e in net.requester.events("Revealed", from_block=r.created_block)]
    reveals = [e for e in reveals if e.request_id == rid]
    assert sum(e.output_hash == r.output_hash for e in reveals) == 2
    # the accepted output payload in the store (its CID lives only in the Revealed event) is the reference output
    out = json.loads(net.store.cat(next(e.output_cid for e in reveals if e.output_hash == r.output_hash)))
    assert out["data"] == expected
    honest0 = net.requester.market.get_member_settlement(rid, net.addresses[0])
    faulty = net.requester.market.get_member_settlement(rid, net.addresses[2])
    assert honest0.paid and not honest0.slashed
    assert faulty.slashed and not faulty.paid
    assert net.requester.nodes.stake_of(net.addresses[2]) < stake_before[2]
    assert net.requester.nodes.stake_of(net.addresses[0]) == stake_before[0]
    # every node saw it through to settlement: metrics and health tell the same story
    for p in nodes:
        wait_for(lambda: p.metrics().get("verinfer_node_requests_finalized_total", 0) >= 1, 20, what=f"{p.key} finalized metric")
        m = p.metrics()
        assert m["verinfer_node_requests_seen_total"] >= 1
        assert m["verinfer_node_requests_revealed_total"] >= 1
        h = p.health()
        assert h["address"] == p.address
        assert h["last_block"] >= r.created_block
        wait_for(lambda: not p.health()["pending_requests"], 20, what=f"{p.key} to have nothing pending")
    assert "[fault: wrong-output]" in nodes[2].log()
    # node 1 pulled its fee share by itself (--auto-withdraw); node 0's share waits for the operator
    share = r.fee // 3
    wait_for(lambda: nodes[1].metrics().get("verinfer_node_withdrawn_wei_total", 0) >= share, 30, what="auto-withdraw")
    assert net.requester.market.withdrawable(net.addresses[1]) == 0
    assert net.requester.market.withdrawable(net.addresses[0]) >= share
    res = subprocess.run(
        [sys.executable, "-m", "verinfer.cli", "operator", "withdraw", "--what", "earnings", "--key", net.keys[0],
         "--rpc-url", net.rpc_url, "--manifest", str(net.manifest_path)],
        capture_output=True, text=True, env=dict(os.environ, VERINFER_HOME=str(net.home), VERINFER_PASSWORD=net.password),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("withdrew earnings")
    assert net.requester.market.withdrawable(net.addresses[0]) == 0
    assert "Traceback" not in "".join(p.log() for p in nodes)


def test_invalid_inputs_are_revealed_as_invalid_and_paid(net: NodeCluster) -> None:
    """Garbage, hash mismatch, wrong shape, oversize and a CID nobody stored all settle as INVALID_INPUT;
    V2: the requester pays the committee for the check (nothing refunded), nobody is slashed, nodes keep running."""
    # the nodes of the previous test keep running (node 2's wrong-output fault does not touch invalid inputs)
    nodes = list(net.procs) or net.start_many({i: ["--fetch-timeout", "2"] for i in range(3)})
    before = net.requester.market.withdrawable(net.requester.address)
    x = sample_input(1)
    cases = {
        "garbage": net.request(b"\x00\xffnot json at all", 12345),
        "mismatch": net.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8) ^ 1),
        "shape": net.request(encode_tensor(x[:63], "int8", [63]), hash_vector(x[:63], 8)),
        "oversize": net.request(b" " * (1 << 20) + encode_tensor(x, "int8", [64]), hash_vector(x, 8)),
    }
    missing = cid_of(b"never stored " + os.urandom(8))
    params = RequestParams(replicas=3, quorum=2, commit_blocks=90, reveal_blocks=90)
    _, cases["missing"] = net.requester.market.request_inference(net.model_id, missing, hash_vector(x, 8), params, ETHER // 100)
    stakes = [net.requester.nodes.stake_of(a) for a in net.addresses]
    for name, rid in cases.items():
        r = net.wait_final(rid, timeout=90)
        assert r.status == Status.INVALID_INPUT, name
        assert int.from_bytes(r.output_hash, "big") == INVALID_INPUT_HASH, name
        for a in net.addresses:
            rv = net.requester.market.get_reveal(rid, a)
            assert rv.revealed and int.from_bytes(rv.output_hash, "big") == INVALID_INPUT_HASH, (name, a)
    # the requester paid for every check; no honest node lost stake
    assert net.requester.market.withdrawable(net.requester.address) - before < len(cases) * 3  # division dust only
    assert [net.requester.nodes.stake_of(a) for a in net.addresses] == stakes
    assert all(p.alive() for p in nodes)
    log = nodes[0].log()
    for reason in ("input payload rejected", "input hash mismatch", "exceeds 1048576 bytes", "not found within"):
        assert reason in log, reason
    assert nodes[0].metrics()["verinfer_node_invalid_inputs_total"] >= len(cases)
    # graceful stop on SIGTERM
    assert nodes[0].terminate() == 0
    assert "stopped at block" in nodes[0].log()
    net.procs.remove(nodes[0])


def test_model_with_another_execution_profile_is_not_served(net: NodeCluster) -> None:
    """Nodes refuse (and say why once) a model whose registered profile is not what they run."""
    from concurrent.futures import ThreadPoolExecutor

    from verinfer.chain.protocol import ModelInput, ModelShard
    from verinfer.inference import runtime

    running = {p.key for p in net.procs if p.alive()}
    net.start_many({i: [] for i, k in enumerate(net.keys) if k not in running})
    nodes = [p for p in net.procs if p.alive()]
    _, other = net.protocol.as_account(net.accounts[0]).models.register_model(ModelInput(
        name="digits-other-profile", weights_cid=net.store.add(net.spec.canonical_json()),
        commitment=runtime.commitment(net.spec), execution_profile_hash=b"\x01" * 32,
        num_layers=net.spec.num_layers, input_bits=8, output_bits=32,
    ))
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda a: net.protocol.as_account(a).nodes.set_shards([ModelShard(net.model_id), ModelShard(other)]),
                      net.accounts))
    epoch = net.protocol.nodes.epoch_length()
    mine(net.w3, epoch - net.w3.eth.block_number % epoch)  # the new shard counts from the next epoch's snapshot
    x = sample_input(6)
    params = RequestParams(replicas=3, quorum=2, commit_blocks=10, reveal_blocks=10)
    _, rid = net.requester.market.request_inference(other, net.store.add(encode_tensor(x, "int8", [64])),
                                                    hash_vector(x, 8), params, ETHER // 100)
    for p in nodes:
        wait_for(lambda: f"request {rid}: model's execution profile 0101" in p.log(), 30, what=f"{p.key} to refuse")
    assert all(not net.requester.market.get_reveal(rid, a).committed for a in net.addresses)
    r = net.requester.market.get_request(rid)
    mine(net.w3, max(0, r.commit_deadline - net.w3.eth.block_number + 1))  # the commit window closes unserved
    for p in nodes:
        wait_for(lambda: f"request {rid}: missed" in p.log(), 30, what=f"{p.key} to give the request up")
    for p in nodes:
        assert p.log().count(f"request {rid}: model's execution profile") == 1  # said once, not every tick
        assert p.alive()
