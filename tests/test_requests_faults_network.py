"""Request-side faults and load against a real network: anvil + 3 `verinfer node run` processes.

Bad inputs must end on-chain as InvalidInput, the committee paid for the check (protocol V2: invalid input costs
the requester), without hurting any node;
50 concurrent requests from several requesters must all settle with the market's books balanced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Iterator

import pytest

from verinfer.client import Client
from verinfer.client.consumer import ExampleConsumerApp
from verinfer.client.inputs import digits_sample
from verinfer.client.result import FINAL_STATUSES
from verinfer.devnet.network import PASSWORD, LocalNetwork
from verinfer.models.hashing import INVALID_INPUT_HASH, hash_vector
from verinfer.models.tensor import MAX_INPUT_BYTES, encode_tensor
from verinfer.storage import cid_of

FEE = 10**16
WINDOW = 30  # blocks (15 s at 0.5 s/block): room for a node's 8 s fetch timeout on a missing CID


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """A fresh devnet with the digits model and 3 staked node processes, for this module only."""
    with LocalNetwork(tmp_path_factory.mktemp("net"), n_nodes=3, block_time=0.5, proof=False) as network:
        yield network


def _params(c: Client) -> tuple[int, int, int, int, int]:
    return c.params(3, 2, WINDOW, WINDOW, 0)


def _bad_inputs(c: Client, model_id: str) -> dict[str, tuple[str, int]]:
    """(input CID, on-chain inputHash) for each kind of invalid input; payloads really stored."""
    spec = c.model_info(model_id).spec
    good, _ = digits_sample(0)
    other, _ = digits_sample(1)
    good_payload = encode_tensor(good, "int8", [64])
    short = good[:63]
    cases = {
        "wrong-shape": (c.store.add(encode_tensor(short, "int8", [63])), hash_vector(short, spec.input_bits)),
        "wrong-hash": (c.store.add(good_payload), hash_vector(other, spec.input_bits)),
        # a well-formed CID of bytes nobody ever stored
        "missing-cid": (cid_of(b"never stored " + os.urandom(16)), hash_vector(good, spec.input_bits)),
        "oversize": (c.store.add(good_payload + b" " * (MAX_INPUT_BYTES + 1)), hash_vector(good, spec.input_bits)),
        "garbage": (c.store.add(os.urandom(300)), hash_vector(good, spec.input_bits)),
    }
    return cases


@pytest.fixture(scope="module")
def bad_requests(net: LocalNetwork) -> dict[str, object]:
    """Submit all invalid-input requests at once (requester: dev account 2) and wait for each."""
    c = net.client(2)
    assert net.model_id is not None
    cases = _bad_inputs(c, net.model_id)
    ids = {name: c.submit_raw(net.model_id, cid, h, FEE, _params(c)) for name, (cid, h) in cases.items()}
    results = {name: c.wait(rid, timeout=120) for name, rid in ids.items()}
    return {"client": c, "ids": ids, "results": results}


@pytest.mark.parametrize("case", ["wrong-shape", "wrong-hash", "missing-cid", "oversize", "garbage"])
def test_invalid_input_settles_as_invalid_and_pays_the_committee(bad_requests: dict, case: str) -> None:
    res = bad_requests["results"][case]
    assert res.status == "InvalidInput", f"{case}: {res.status} ({res.consensus})"
    assert res.output_hash == INVALID_INPUT_HASH
    assert res.refunded == 0  # V2: the requester pays the committee for checking its input (issue 7 attack 3)
    assert res.output is None and res.prediction is None
    # every honest member revealed the INVALID_INPUT outcome, was paid for it, and nobody was slashed
    assert len(res.agreeing) == 3 and res.slashed_total == 0
    assert all(m.paid is True and m.slashed is False for m in res.committee)


def test_checking_fees_are_withdrawable(bad_requests: dict, net: LocalNetwork) -> None:
    c: Client = bad_requests["client"]
    assert c.withdrawable() == 0  # nothing refunded for an invalid input
    for acct in net.operator_accounts:
        node = net.client(acct)
        w3 = node.w3
        owed = node.withdrawable()
        assert owed >= 5 * (FEE // 3)
        before = w3.eth.get_balance(node.address)
        amount = node.withdraw_refunds()
        r = node.last_withdraw_receipt
        after = w3.eth.get_balance(node.address)
        assert amount == owed
        assert after == before + amount - r["gasUsed"] * r["effectiveGasPrice"]
        assert node.withdrawable() == 0
        assert node.withdraw_refunds() == 0  # nothing left: no second payout


def test_nodes_survive_bad_inputs(bad_requests: dict, net: LocalNetwork) -> None:
    for node in net.nodes:
        assert node.alive(), f"{node.name} died:\n{node.log_tail()}"
        health = node.health()
        assert health["ok"] is True, health
        assert health.get("last_error") in (None, ""), health


def test_client_rejects_bad_input_before_paying(net: LocalNetwork) -> None:
    """The SDK validates like a node does, so a malformed input never costs a fee."""
    from verinfer.errors import ConfigError

    c = net.client(2)
    count = c.protocol.market.request_count()
    with pytest.raises(ConfigError, match="shape"):
        c.submit(net.model_id, list(range(10)), FEE)
    with pytest.raises(ConfigError):
        c.submit(net.model_id, b"\x00garbage", FEE)
    assert c.protocol.market.request_count() == count


def test_consumer_contract_receives_callback(net: LocalNetwork) -> None:
    c = net.client(9)
    app = ExampleConsumerApp(c)
    vec, label = digits_sample(4)
    rid = app.ask(net.model_id, vec, FEE, commit_blocks=WINDOW, reveal_blocks=WINDOW)
    res = c.wait(rid, timeout=90)
    assert res.status == "Accepted" and res.requester == app.address
    assert res.output_verified and res.prediction == label
    cb = app.wait_callback(rid)
    assert cb.received and cb.status.label == "Accepted"
    assert cb.output_hash == res.output_hash and res.output_cid  # the CID comes from Revealed events


def _cli(net: LocalNetwork, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VERINFER_MANIFEST": str(net.manifest_path), "VERINFER_STORE": str(net.store_dir),
           "VERINFER_HOME": str(net.home), "VERINFER_RPC_URL": net.rpc_url, "VERINFER_PASSWORD": PASSWORD}
    env.pop("IPFS_API", None)
    return subprocess.run([sys.executable, "-m", "verinfer.cli", *args], env=env, capture_output=True,
                          text=True, timeout=180)


def test_cli_request_and_show(net: LocalNetwork) -> None:
    vec, label = digits_sample(7)
    p = _cli(net, "request", "--model", "digits-mlp", "--input", "digits-sample:7", "--dev-account", "8",
             "--json", "--commit-blocks", str(WINDOW), "--reveal-blocks", str(WINDOW))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "Accepted" and out["prediction"] == label and out["outputVerified"]
    assert out["consensus"] == "3/3" and out["gas"]["request"][0] > 0
    s = _cli(net, "request", "show", str(out["requestId"]), "--json")
    assert s.returncode == 0, s.stderr
    assert json.loads(s.stdout)["outputHash"] == out["outputHash"]
    human = _cli(net, "request", "show", str(out["requestId"]))
    assert "prediction" in human.stdout and str(label) in human.stdout


@pytest.mark.parametrize("args, needle", [
    (["--input", "1,2,3"], "shape"),
    (["--input", "digits-sample:999"], "does not exist"),
    (["--input", "digits-sample:1", "--fee", "-1"], "fee"),
    (["--input", "digits-sample:1", "--quorum", "5"], "quorum"),
    (["--input", "digits-sample:1", "--until", "forever"], "--until"),
])
def test_cli_bad_request_input_is_one_line_error(net: LocalNetwork, args: list[str], needle: str) -> None:
    p = _cli(net, "request", "--model", "digits-mlp", "--dev-account", "8", *args)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_cli_show_unknown_request(net: LocalNetwork) -> None:
    p = _cli(net, "request", "show", "99999")
    assert p.returncode == 1 and p.stderr.startswith("error: ") and "does not exist" in p.stderr


def test_client_finalizes_when_nobody_does(net: LocalNetwork) -> None:
    """All nodes frozen (SIGSTOP): nobody commits, so the committee is never drawn; after the draw window `wait`
    finalizes itself, the request ends Expired and fee + deposit are refunded, nobody slashed (V2: no-shows are
    only slashed when the request reached a settled outcome), so nothing stays stuck."""
    import signal

    c = net.client(2)
    for node in net.nodes:
        os.kill(node.proc.pid, signal.SIGSTOP)
    try:
        rid = c.submit(net.model_id, digits_sample(0)[0], FEE, commit_blocks=10, reveal_blocks=10)
        res = c.wait(rid, timeout=90)
    finally:
        for node in net.nodes:
            os.kill(node.proc.pid, signal.SIGCONT)
    assert res.status == "Expired" and res.refunded == FEE, res
    assert res.finalized_block is not None and res.finalized_block > c.protocol.market.get_request(rid).draw_deadline
    fin = next(e for e in c.events(rid) if e.name == "Finalized")
    assert c.w3.eth.get_transaction(fin.tx_hash)["from"] == c.address
    assert res.committee == [] and res.slashed_total == 0
    assert c.withdrawable() >= FEE
    c.withdraw_refunds()
    for node in net.nodes:
        assert node.alive() and node.health(timeout=10)["ok"]


def test_fifty_concurrent_requests_settle_and_books_balance(net: LocalNetwork) -> None:
    requesters = [3, 4, 5, 6, 7]
    per = 10
    results: dict[int, object] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def run(acct: int) -> None:
        try:
            c = net.client(acct)
            ids = []
            for i in range(per):
                vec, _ = digits_sample((acct + i) % 10)
                ids.append(c.submit(net.model_id, vec, FEE, commit_blocks=120, reveal_blocks=120))
            for rid in ids:
                res = c.wait(rid, timeout=240)
                with lock:
                    results[rid] = res
        except Exception as exc:  # surfaced below with the thread's account
            failures.append(f"account {acct}: {exc!r}")

    threads = [threading.Thread(target=run, args=(a,)) for a in requesters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(results) == len(requesters) * per
    assert all(r.status in FINAL_STATUSES for r in results.values())
    accepted = [r for r in results.values() if r.status == "Accepted"]
    assert len(accepted) == len(results), {r.request_id: r.status for r in results.values() if r.status != "Accepted"}
    assert all(r.output_verified for r in accepted)

    c = net.client(0)
    market = c.protocol.market
    assert market.total_escrowed() == 0
    assert c.w3.eth.get_balance(market.address) == market.total_escrowed() + market.total_withdrawable()

    # every node can withdraw its earnings through the operator CLI, every requester its refunds
    for node in net.nodes:
        owed = c.withdrawable(node.address)
        assert owed > 0
        p = _cli(net, "operator", "withdraw", "--what", "earnings", "--key", node.name, "--rpc-url", net.rpc_url)
        assert p.returncode == 0, p.stderr
        assert c.withdrawable(node.address) == 0
    for acct in requesters:
        rc = net.client(acct)
        rc.withdraw_refunds()
        assert rc.withdrawable() == 0
    assert c.w3.eth.get_balance(market.address) == market.total_withdrawable()
    for node in net.nodes:
        assert node.alive() and node.health()["ok"]
