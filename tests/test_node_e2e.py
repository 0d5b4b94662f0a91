"""Real node processes on the session anvil: serve a request end to end, and out-vote a faulty node.

Each module publishes its own copy of digits-mlp (a fresh model id), so only the nodes started
here are eligible for it and a 3-replica committee is exactly these three nodes.
"""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from eth_account import Account
from web3 import Web3

from verinfer.chain.protocol import ModelInput, ModelShard, Protocol, RequestParams, Status
from verinfer.models import spec as model_spec
from verinfer.models.hashing import INVALID_INPUT_HASH, hash_vector
from verinfer.models.reference import run as reference_run
from verinfer.models.tensor import encode_tensor
from verinfer.node.harness import NodeProcess, spawn_node, wait_for
from verinfer.node.keystore import create_keystore
from verinfer.storage import open_store

ETHER = 10**18
PASSWORD = "correct horse battery staple"


def sample_input(i: int = 0) -> list[int]:
    data = json.loads((Path(model_spec.builtin_path("digits-mlp")).parent / "digits-samples.json").read_text())
    sample = data["samples"][i]
    x = sample["pixels"]
    return [int(v) for v in x]


class Network:
    """Three registered node keys for a freshly published model, and a requester."""

    def __init__(self, root: Path, w3: Web3, protocol: Protocol, manifest_path: Path, n_nodes: int = 3) -> None:
        self.root = root
        self.w3 = w3
        self.manifest_path = manifest_path
        self.home = root / "home"
        self.store_dir = root / "store"
        self.store = open_store(root=self.store_dir)
        self.spec = model_spec.load_builtin("digits-mlp")
        weights_cid = self.store.add(self.spec.canonical_json())
        publisher = self._funded()
        _, self.model_id = protocol.as_account(publisher).models.register_model(
            ModelInput(
                name=f"digits-node-{uuid.uuid4().hex[:8]}",
                weights_cid=weights_cid,
                commitment=model_spec.weights_commitment(self.spec),
                num_layers=self.spec.num_layers,
                input_bits=self.spec.input_bits,
                output_bits=self.spec.output_bits,
            )
        )
        self.keys: list[str] = []
        self.addresses: list[str] = []
        for i in range(n_nodes):
            acct = self._funded()
            name = f"node{i}"
            create_keystore(name, PASSWORD, home=self.home, private_key=acct.key, scrypt_n=2**14)
            protocol.as_account(acct).nodes.register("http://127.0.0.1", [ModelShard(self.model_id)], 2 * ETHER)
            self.keys.append(name)
            self.addresses.append(acct.address)
        self.requester = protocol.as_account(self._funded())
        self.procs: list[NodeProcess] = []

    def _funded(self) -> Account:
        acct = Account.from_key(secrets.token_bytes(32))
        self.w3.provider.make_request("anvil_setBalance", [acct.address, hex(100 * ETHER)])
        return acct

    def start(self, i: int, *extra: str, fresh_log: bool = False) -> NodeProcess:
        state = self.root / f"state-{self.keys[i]}"
        if fresh_log:
            (state / "node.log").unlink(missing_ok=True)
        p = spawn_node(
            self.keys[i], rpc_url=self.rpc_url, manifest=self.manifest_path, state_dir=state,
            home=self.home, password=PASSWORD, store_dir=self.store_dir, extra_args=extra,
        )
        self.procs.append(p)
        return p

    @property
    def rpc_url(self) -> str:
        return str(self.w3.provider.endpoint_uri)

    def request(self, payload: bytes, input_hash: int, *, commit_blocks: int = 10, reveal_blocks: int = 10) -> int:
        cid = self.store.add(payload)
        params = RequestParams(replicas=3, quorum=2, commit_blocks=commit_blocks, reveal_blocks=reveal_blocks)
        _, rid = self.requester.market.request_inference(self.model_id, cid, input_hash, params, ETHER // 100)
        return rid

    def wait_final(self, rid: int, timeout: float = 60.0):
        return wait_for(
            lambda: (r := self.requester.market.get_request(rid)).status in (Status.ACCEPTED, Status.INVALID_INPUT, Status.NO_QUORUM) and r,
            timeout, what=f"request {rid} to finalize",
        )

    def stop_all(self) -> None:
        for p in self.procs:
            p.terminate()
        self.procs.clear()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, w3: Web3, protocol: Protocol, protocol_manifest_path: Path) -> Iterator[Network]:
    n = Network(tmp_path_factory.mktemp("node-e2e"), w3, protocol, protocol_manifest_path)
    yield n
    n.stop_all()


def test_three_nodes_serve_a_request_and_faulty_node_is_slashed(net: Network) -> None:
    """Honest majority wins; the wrong-output node is slashed and unpaid; proof metrics and health are live."""
    nodes = [net.start(0), net.start(1), net.start(2, "--fault", "wrong-output")]
    x = sample_input(0)
    expected = reference_run(net.spec, x)
    expected_hash = hash_vector(expected, net.spec.output_bits)
    stake_before = [net.requester.nodes.stake_of(a) for a in net.addresses]

    rid = net.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8))
    r = net.wait_final(rid)

    assert r.status == Status.ACCEPTED
    assert int.from_bytes(r.output_hash, "big") == expected_hash
    assert r.agreeing_count == 2
    # the accepted output payload in the store is the reference output
    out = json.loads(net.store.cat(r.output_cid))
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
    assert "Traceback" not in "".join(p.log() for p in nodes)


def test_invalid_inputs_are_revealed_as_invalid_and_refunded(net: Network) -> None:
    """Garbage bytes and a hash mismatch both settle as INVALID_INPUT; nodes keep running."""
    if len(net.procs) < 3:
        net.start(0), net.start(1), net.start(2)
    before = net.requester.market.withdrawable(net.requester.address)
    rid_garbage = net.request(b"\x00\xffnot json at all", 12345)
    x = sample_input(1)
    rid_mismatch = net.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8) ^ 1)
    for rid in (rid_garbage, rid_mismatch):
        r = net.wait_final(rid)
        assert r.status == Status.INVALID_INPUT
        assert int.from_bytes(r.output_hash, "big") == INVALID_INPUT_HASH
        for a in net.addresses[:2]:
            rv = net.requester.market.get_reveal(rid, a)
            assert rv.revealed and int.from_bytes(rv.output_hash, "big") == INVALID_INPUT_HASH
    # both fees refunded to the requester
    assert net.requester.market.withdrawable(net.requester.address) - before == 2 * (ETHER // 100)
    assert all(p.alive() for p in net.procs)
    assert any("input hash mismatch" in p.log() for p in net.procs)
