"""Node-side faults with real node processes: crash right after commit, withheld reveal, RPC outage."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator

import pytest
from web3 import Web3

from verinfer.chain.deploy import deploy_protocol
from verinfer.chain.devnet import Devnet, find_free_port, mine
from verinfer.chain.protocol import Protocol, Status
from verinfer.models.hashing import hash_vector
from verinfer.models.reference import run as reference_run
from verinfer.models.tensor import encode_tensor
from verinfer.devnet.cluster import NodeCluster
from verinfer.devnet.processes import wait_for
from verinfer.devnet.samples import sample_input


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, w3: Web3, protocol: Protocol, protocol_manifest_path: Path) -> Iterator[NodeCluster]:
    c = NodeCluster(tmp_path_factory.mktemp("node-faults"), w3, protocol, protocol_manifest_path)
    yield c
    c.stop_all()


def _committed_events(c: NodeCluster, rid: int, node: str) -> int:
    evs = c.requester.market.events("Committed")
    return sum(1 for e in evs if int(e.args["requestId"]) == rid and Web3.to_checksum_address(e.args["node"]) == node)


def _db_phase(state_dir: Path, rid: int) -> str:
    with sqlite3.connect(state_dir / "node.db") as db:
        return db.execute("SELECT phase FROM requests_v2 WHERE request_id = ?", (rid,)).fetchone()[0]


def test_sigkill_after_commit_then_restart_reveals_without_double_commit(cluster: NodeCluster) -> None:
    """The crashing node's salt survives kill -9; after restart it reveals and is paid like the others."""
    c = cluster
    *honest, crasher = c.start_many({0: [], 1: [], 2: ["--fault", "crash-after-commit"]})
    x = sample_input(2)
    rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=90, reveal_blocks=90)

    wait_for(lambda: not crasher.alive(), 40, what="the crash-after-commit node to kill itself")
    assert crasher.proc.returncode == -9
    assert c.requester.market.get_reveal(rid, c.addresses[2]).committed
    # it died after the commit was mined but before it recorded the phase: the DB still says READY
    assert _db_phase(c.state_dir(2), rid) == "ready"
    c.procs.remove(crasher)

    restarted = c.start(2)  # same state dir, no fault
    r = c.wait_final(rid, timeout=90)
    assert r.status == Status.ACCEPTED
    assert r.reveal_count == 3
    assert int.from_bytes(r.output_hash, "big") == hash_vector(reference_run(c.spec, x), 32)
    rv = c.requester.market.get_reveal(rid, c.addresses[2])
    assert rv.revealed and rv.output_hash == r.output_hash
    assert c.requester.market.get_member_settlement(rid, c.addresses[2]).paid
    assert _committed_events(c, rid, c.addresses[2]) == 1
    log = restarted.log()
    assert "commitment already on-chain (recovered)" in log
    assert log.count(f"request {rid}: committed (tx") == 1  # only the pre-crash commit
    assert "AlreadyCommitted" not in log
    wait_for(lambda: _db_phase(c.state_dir(2), rid) == "done", 20, what="restarted node to reach done")
    assert all(p.alive() for p in honest + [restarted])


def test_no_reveal_node_is_slashed_and_others_settle(cluster: NodeCluster) -> None:
    """A node that commits and withholds its reveal is penalized at finalize after the reveal deadline."""
    c = cluster
    # nodes 0 and 1 keep running from the previous test (or start now); node 2 comes back as the silent one
    for p in [p for p in c.procs if p.key == c.keys[2]] + ([] if len(c.procs) >= 2 else list(c.procs)):
        p.terminate()
        c.procs.remove(p)
    if not c.procs:
        c.start_many({0: [], 1: []})
    silent = c.start(2, "--fault", "no-reveal")
    stake_before = c.requester.nodes.stake_of(c.addresses[2])
    x = sample_input(3)
    rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=40, reveal_blocks=10)
    # all three commit, only the honest two reveal; then skip to the reveal deadline instead of waiting it out
    req = wait_for(lambda: (v := c.requester.market.get_request(rid)).commit_count == 3 and v.reveal_count == 2 and v,
                   60, what="3 commits and 2 reveals")
    mine(c.w3, req.reveal_deadline - c.w3.eth.block_number + 1)
    r = c.wait_final(rid, timeout=60)
    assert r.status == Status.ACCEPTED and r.reveal_count == 2
    rv = c.requester.market.get_reveal(rid, c.addresses[2])
    assert rv.committed and not rv.revealed
    assert c.requester.market.get_member_settlement(rid, c.addresses[2]).slashed
    assert c.requester.nodes.stake_of(c.addresses[2]) < stake_before
    # "missed: fault no-reveal: withheld the reveal" when its task passes the deadline first, "missed: settled as
    # ACCEPTED before we revealed" when the Finalized event comes first (a race between two correct logs)
    wait_for(lambda: f"request {rid}: missed:" in silent.log(), 60, what="the silent node to log its missed reveal")


@pytest.fixture
def own_devnet(tmp_path: Path) -> Iterator[Devnet]:
    """A private, persisted anvil this test may stop and restart (state survives via --state)."""
    d = Devnet(port=find_free_port(), state_dir=tmp_path / "chain", block_time=1.0, persist=True, n_accounts=2,
               state_interval=1, mixed_mining=True).start()
    yield d
    d.stop()


def test_node_survives_rpc_outage_and_serves_after_recovery(own_devnet: Devnet, tmp_path: Path) -> None:
    """anvil stops for several seconds mid-request; nodes log one line per retry, never crash, then settle it."""
    d = own_devnet
    manifest = deploy_protocol(d.w3, d.accounts[0])
    manifest_path = manifest.save(tmp_path / "manifest.json")
    c = NodeCluster(tmp_path / "cluster", d.w3, Protocol(d.w3, manifest, d.accounts[0]), manifest_path)
    try:
        procs = c.start_many({i: [] for i in range(3)})
        x = sample_input(4)
        rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=90, reveal_blocks=90)
        d.stop()  # SIGTERM: anvil dumps its state (including the request) and goes away
        wait_for(lambda: all("rpc unavailable" in p.log() for p in procs), 30, what="every node to notice the outage")
        assert all(p.alive() for p in procs)
        assert all(p.health()["last_error"].startswith("rpc") for p in procs)
        # a node (re)started while the chain is unreachable comes up and waits instead of exiting
        procs[2].terminate()
        c.procs.remove(procs[2])
        procs[2] = c.start(2)
        wait_for(lambda: "rpc unavailable" in procs[2].log().split("started:")[-1], 30, what="restarted node to wait for RPC")
        assert procs[2].alive()
        d.start()  # same port, state reloaded
        r = c.wait_final(rid, timeout=90)
        assert r.status == Status.ACCEPTED and r.reveal_count == 3
        for p in procs:
            assert p.alive()
            wait_for(lambda: "rpc reachable again" in p.log(), 20, what=f"{p.key} to log recovery")
            assert p.metrics()['verinfer_node_errors_total{kind="rpc"}'] >= 1
            assert "Traceback" not in p.log()
    finally:
        c.stop_all()
