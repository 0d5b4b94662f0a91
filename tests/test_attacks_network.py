"""Issue 7 attacks 10-13 on a running devnet with real `python -m verinfer.node` processes (protocol V2).

One LocalNetwork (fresh anvil, V2 devnet defaults, digits-mlp with proof mode public) serves the module.
Blocks are 1 s (the devnet default) rather than the 0.5 s of the original report: windows are in
blocks, and the 2-core test machine is shared, so 1 s blocks keep the test about the protocol and the
node, not about CPU starvation (benchmarks/bench_load.py measures 0.5 s blocks); each test performs the attack the way it was seen on the V1 devnet and asserts
that it now fails: honest stake is never lost, the honest proof wins, the network keeps accepting.
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import pytest
from web3 import Web3

from verinfer.chain.errors import ContractError
from verinfer.chain.protocol import FINAL_STATUSES, Protocol, RequestParams, RequestView, Status, decode_event
from verinfer.constants import PROOF_PUBLIC_WEIGHTS
from verinfer.devnet.load import submit_burst
from verinfer.devnet.network import LocalNetwork
from verinfer.devnet.processes import launch_node, wait_for
from verinfer.devnet.samples import prover_available, sample_input
from verinfer.inference import runtime
from verinfer.models.hashing import hash_vector
from verinfer.models.tensor import encode_tensor
from verinfer.storage import cid_of

#: the SDK's default windows (blocks) — what a dApp gets without tuning anything
WINDOWS = RequestParams(replicas=3, quorum=2, commit_blocks=10, reveal_blocks=10)

pytestmark = pytest.mark.skipif(not prover_available(), reason="needs the circom/snarkjs toolchain (npm ci)")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    n = LocalNetwork(tmp_path_factory.mktemp("attacks-net"), n_nodes=3, block_time=1.0, proof=True, stake_ether=10,
                     capacity=64)
    with n:
        assert n.proof_mode == PROOF_PUBLIC_WEIGHTS
        yield n


def _requester(net: LocalNetwork, i: int = 1) -> Protocol:
    return net.protocol(i)


def _payload(i: int) -> tuple[bytes, int]:
    x = sample_input(i)
    return encode_tensor(x, "int8", [64]), hash_vector(x, 8)


def _request(net: LocalNetwork, p: Protocol, i: int, *, cid: str | None = None, gas: int | None = None) -> int:
    payload, h = _payload(i)
    cid = cid or net.store().add(payload)
    fee = p.market.quote(net.model.model_id, WINDOWS)[0]  # type: ignore[union-attr]
    _, rid = p.market.request_inference(net.model.model_id, cid, h, WINDOWS, fee, gas=gas)  # type: ignore[union-attr]
    return rid


def _wait_final(p: Protocol, rid: int, timeout: float = 120.0, net: LocalNetwork | None = None) -> RequestView:
    """Wait for settlement; on timeout the error carries the request's state and the nodes' last log lines."""
    try:
        return wait_for(lambda: (r := p.market.get_request(rid)).status in FINAL_STATUSES and r, timeout,
                        what=f"request {rid} to settle")
    except TimeoutError as exc:
        logs = "".join(f"\n--- {n.name}:\n{n.log_tail(8)}" for n in net.nodes) if net is not None else ""
        raise TimeoutError(f"{exc}; request now: {p.market.get_request(rid)}{logs}") from None


def _stakes(net: LocalNetwork) -> list[int]:
    p = net.protocol()
    return [p.nodes.stake_of(a.address) for a in net.operator_accounts]


def _penalties(p: Protocol, from_block: int) -> list[dict]:
    return [dict(e.args) for e in p.events("NodePenalized", from_block=from_block)]


def _restart(net: LocalNetwork, nodes: list[int], *flags: str) -> None:
    """Replace these nodes' processes (same keys and state) with ones started with `flags`: stop all, start all,
    then wait for all (the start-ups overlap instead of queueing)."""
    for i in nodes:
        net.nodes[i].terminate(10.0)
    launched = {i: launch_node(net.nodes[i].key, rpc_url=net.rpc_url, manifest=net.manifest_path,
                               state_dir=net.nodes[i].state_dir, home=net.home, password="verinfer-localnet",
                               store_dir=net.store_dir, extra_args=list(flags), log_path=net.nodes[i].log_path)
                for i in nodes}
    for i, proc in launched.items():
        net.nodes[i] = proc.wait_ready(60)


def test_attack10_wrong_majority_loses_to_the_honest_proof(net: LocalNetwork) -> None:
    """2 of 3 nodes reveal the same wrong output; nobody can finalize before the proof window, the honest
    node's proof settles the request on the true output, the liars are slashed and the prover rewarded."""
    p = _requester(net)
    liars = [0, 1]
    _restart(net, liars, "--fault", "wrong-output")
    try:
        start = net.devnet.w3.eth.block_number  # type: ignore[union-attr]
        rid = _request(net, p, 3)
        # as soon as all three revealed, the requester (or anyone) tries to settle at once
        r = wait_for(lambda: (v := p.market.get_request(rid)).reveal_count == 3 and v, 60, what="three reveals")
        if not r.proven:
            with pytest.raises(ContractError) as ei:
                p.market.finalize(rid)
            assert ei.value.error_name == "TooEarlyToFinalize"
        r = _wait_final(p, rid)
    finally:
        _restart(net, liars)
    spec = runtime.load_model(net.store().cat(net.model.weights_cid))  # type: ignore[union-attr]
    truth = hash_vector([int(v) for v in runtime.execute(spec, sample_input(3), None, None)], spec.output_bits)
    assert r.status == Status.ACCEPTED and r.proven
    assert int.from_bytes(r.output_hash, "big") == truth
    honest = net.operator_accounts[2].address
    for i in liars:
        s = p.market.get_member_settlement(rid, net.operator_accounts[i].address)
        assert s.slashed and not s.paid
    assert p.market.get_member_settlement(rid, honest).paid
    verified = [decode_event(e) for e in p.events("ProofVerified", from_block=start)]
    assert any(e.args["requestId"] == rid for e in verified)
    rewards = [e.args for e in p.events("ProverRewarded", from_block=start) if e.args["requestId"] == rid]
    assert rewards and rewards[0]["prover"] == honest and rewards[0]["amount"] > 0
    penalized = {e["node"] for e in _penalties(p, start) if e["requestId"] == rid}
    assert penalized == {net.operator_accounts[i].address for i in liars}


def test_attack11_missing_input_then_valid_request_no_honest_slash(net: LocalNetwork) -> None:
    """A missing input CID followed at once by a valid request: both settle, no honest node is slashed."""
    p = _requester(net, 2)
    before = _stakes(net)
    start = net.devnet.w3.eth.block_number  # type: ignore[union-attr]
    missing = cid_of(b"never stored " + os.urandom(8))
    bad = _request(net, p, 4, cid=missing)
    good = _request(net, p, 5)
    r_bad, r_good = _wait_final(p, bad), _wait_final(p, good)
    assert r_bad.status == Status.INVALID_INPUT
    assert r_good.status == Status.ACCEPTED
    assert _stakes(net) == before
    assert [e for e in _penalties(p, start) if e["requestId"] in (bad, good)] == []
    for a in net.operator_accounts:  # the committee was paid for checking the missing input
        assert p.market.get_member_settlement(bad, a.address).paid


def test_attack12_web3_gas_estimate_suffices_under_traffic(net: LocalNetwork) -> None:
    """requestInference sent with exactly web3's eth_estimateGas succeeds while other requests are drawn."""
    p = _requester(net, 3)
    w3: Web3 = net.devnet.w3  # type: ignore[union-attr]
    rids = []
    for i in range(5):
        payload, h = _payload(10 + i)
        cid = net.store().add(payload)
        fee = p.market.quote(net.model.model_id, WINDOWS)[0]  # type: ignore[union-attr]
        fn = p.market.contract.functions.requestInference(net.model.model_id, cid, h.to_bytes(32, "big"),  # type: ignore[union-attr]
                                                          WINDOWS.to_abi())
        est = fn.estimate_gas({"from": p.address, "value": fee})
        at = w3.eth.block_number  # a block (and draws of the previous requests) happens between estimate and inclusion
        wait_for(lambda at=at: w3.eth.block_number > at, 30, interval=0.05, what="the next block")
        receipt, rid = p.market.request_inference(net.model.model_id, cid, h, WINDOWS, fee, gas=est)  # type: ignore[union-attr]
        assert receipt["status"] == 1 and receipt["gasUsed"] <= est
        rids.append(rid)
    assert w3.eth.block_number > 0
    for rid in rids:
        assert _wait_final(p, rid).status == Status.ACCEPTED


def test_attack13_load_burst_no_honest_penalty_and_network_keeps_accepting(net: LocalNetwork) -> None:
    """40 requests within ~5 s to 3 nodes with proofs on: all accepted, no penalty, and a request afterwards settles."""
    requesters = [_requester(net, i) for i in (4, 5, 6, 7)]
    p = requesters[0]
    before = _stakes(net)
    start = net.devnet.w3.eth.block_number  # type: ignore[union-attr]
    store = net.store()
    items = [(store.add(payload), h) for payload, h in (_payload(20 + i) for i in range(40))]
    t0 = time.monotonic()
    sent = submit_burst(requesters, net.model.model_id, items, WINDOWS)  # type: ignore[union-attr]
    submit_s = time.monotonic() - t0
    # a sanity bound on the submitter, not a speed target (benchmarks/bench_load.py measures the burst): meant as ~5 s; it took
    # 8.6 s once at load 20 with 3 test workers; much longer would mean the burst no longer overlaps the windows
    assert submit_s < 20, f"submitting took {submit_s:.1f}s"
    rids = [s.request_id for s in sent]
    finals = [_wait_final(p, rid, timeout=240, net=net) for rid in rids]
    by_status: dict[str, int] = {}
    for r in finals:
        by_status[r.status.name] = by_status.get(r.status.name, 0) + 1
    assert by_status == {"ACCEPTED": 40}, by_status
    assert _penalties(p, start) == []
    assert _stakes(net) == before
    after = _request(net, p, 99)
    assert _wait_final(p, after).status == Status.ACCEPTED
    for node in net.nodes:
        assert node.alive() and "Traceback" not in node.log()
