"""TxSender on a real anvil: concurrent nonces, safe re-broadcast after a lost answer, and every
kind of revert (custom error pre-flight and mined, Error(string), Panic) decoded."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from web3 import Web3

from verinfer.chain.errors import ContractError, RpcError, extra_error_abis
from verinfer.chain.tx import TxSender, name_contract

REPO = Path(__file__).resolve().parent.parent

PROBE = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Probe {
    error TooBig(uint256 value, address caller);
    event Bumped(address indexed who, uint256 value, uint256 total);
    uint256 public total;
    mapping(address => uint256) public paid;
    function bump(uint256 v) external payable {
        if (v > 100) revert TooBig(v, msg.sender);
        total += v;
        paid[msg.sender] += msg.value;
        emit Bumped(msg.sender, v, total);
    }
    function fail(string calldata why) external pure { revert(why); }
    function divide(uint256 a, uint256 b) external returns (uint256) { total = a / b; return total; }
}
"""


@pytest.fixture(scope="module")
def probe_artifact() -> dict[str, Any]:
    """Compile the probe with the repo's solc-js shim (the same compiler forge uses)."""
    std_in = {
        "language": "Solidity",
        "sources": {"Probe.sol": {"content": PROBE}},
        "settings": {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun",
                     "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }
    out = subprocess.run([str(REPO / "scripts" / "solc"), "--standard-json"], input=json.dumps(std_in),
                         capture_output=True, text=True, check=True, cwd=REPO)
    c = json.loads(out.stdout)["contracts"]["Probe.sol"]["Probe"]
    extra_error_abis(c["abi"], "Probe")
    return {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}


def _deploy(w3: Web3, sender: TxSender, art: dict[str, Any]):
    receipt = sender.send(w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(), contract="Probe")
    address = receipt["contractAddress"]
    name_contract(address, "Probe")
    return w3.eth.contract(address=address, abi=art["abi"])


def test_concurrent_sends_share_one_nonce_sequence(automine_devnet, probe_artifact) -> None:
    w3 = automine_devnet.w3
    acct = Account.create()
    w3.provider.make_request("anvil_setBalance", [acct.address, hex(10**20)])
    sender = TxSender(w3, acct)
    probe = _deploy(w3, sender, probe_artifact)
    start_nonce = w3.eth.get_transaction_count(acct.address)
    receipts, errors = [], []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(10):
            try:
                r = sender.send(probe.functions.bump(1), value=k + 1)
                with lock:
                    receipts.append(r)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(receipts) == 30 and all(r["status"] == 1 for r in receipts)
    nonces = sorted(w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts)
    assert nonces == list(range(start_nonce, start_nonce + 30))  # no gaps, no reuse
    assert w3.eth.get_transaction_count(acct.address) == start_nonce + 30
    assert probe.functions.total().call() == 30
    assert probe.functions.paid(acct.address).call() == 10 * (1 + 2 + 3)


def test_nonce_resync_after_another_process_used_the_key(automine_devnet, probe_artifact) -> None:
    w3 = automine_devnet.w3
    acct = Account.create()
    w3.provider.make_request("anvil_setBalance", [acct.address, hex(10**20)])
    a, b = TxSender(w3, acct), TxSender(w3, acct)  # two independent counters for one key
    probe = _deploy(w3, a, probe_artifact)
    b.send(probe.functions.bump(2))
    b.send(probe.functions.bump(3))
    r = a.send(probe.functions.bump(4))  # a's counter is stale: must resync, not fail
    assert r["status"] == 1 and probe.functions.total().call() == 9


class FlakyProvider(Web3.HTTPProvider):
    """Forwards every request, but loses the *answer* to the first N eth_sendRawTransaction calls —
    the node did get the transaction, the client just never hears back."""

    def __init__(self, url: str, drop: int) -> None:
        super().__init__(url)
        self.drop = drop
        self.raw_sends = 0

    def make_request(self, method, params):  # type: ignore[override]
        response = super().make_request(method, params)
        if method == "eth_sendRawTransaction":
            self.raw_sends += 1
            if self.drop > 0:
                self.drop -= 1
                raise requests.ConnectionError("connection reset by peer (simulated)")
        return response


@pytest.fixture(scope="module")
def interval_devnet(tmp_path_factory):
    """Interval mining only: a re-broadcast hits the mempool ("already known"), not a mined nonce."""
    from verinfer.chain.devnet import Devnet, find_free_port

    d = Devnet(port=find_free_port(), state_dir=tmp_path_factory.mktemp("interval"), block_time=0.5, persist=False)
    d.start()
    yield d
    d.stop()


@pytest.mark.parametrize("devnet_name", ["automine_devnet", "interval_devnet"])
def test_lost_broadcast_answer_is_retried_without_double_spend(devnet_name, request, probe_artifact) -> None:
    dn = request.getfixturevalue(devnet_name)
    flaky = FlakyProvider(dn.rpc_url, drop=2)
    w3 = Web3(flaky)
    acct = Account.create()
    w3.provider.make_request("anvil_setBalance", [acct.address, hex(10**20)])
    probe = _deploy(w3, TxSender(w3, acct), probe_artifact)
    sender = TxSender(w3, acct)
    flaky.drop, flaky.raw_sends = 2, 0
    nonce0 = w3.eth.get_transaction_count(acct.address)
    receipt = sender.send(probe.functions.bump(5), value=12345)
    assert receipt["status"] == 1
    assert flaky.raw_sends == 3  # the same signed tx, broadcast three times
    assert w3.eth.get_transaction_count(acct.address) == nonce0 + 1  # exactly one tx mined
    assert probe.functions.paid(acct.address).call() == 12345  # paid once
    # The next send continues the sequence.
    r2 = sender.send(probe.functions.bump(1))
    assert w3.eth.get_transaction(r2["transactionHash"])["nonce"] == nonce0 + 1


def test_preflight_custom_error(automine_devnet, probe_artifact) -> None:
    w3 = automine_devnet.w3
    acct = automine_devnet.accounts[1]
    sender = TxSender(w3, acct)
    probe = _deploy(w3, sender, probe_artifact)
    nonce = w3.eth.get_transaction_count(acct.address)
    with pytest.raises(ContractError) as ei:
        sender.send(probe.functions.bump(101))
    assert ei.value.error_name == "TooBig" and ei.value.error_args == {"value": 101, "caller": acct.address}
    assert ei.value.contract == "Probe" and ei.value.tx_hash is None
    assert w3.eth.get_transaction_count(acct.address) == nonce  # nothing sent, no nonce burnt
    assert sender.send(probe.functions.bump(1))["status"] == 1  # and the counter is still right


def test_mined_revert_is_replayed_and_decoded(automine_devnet, probe_artifact) -> None:
    w3 = automine_devnet.w3
    sender = TxSender(w3, automine_devnet.accounts[2])
    probe = _deploy(w3, sender, probe_artifact)
    with pytest.raises(ContractError) as ei:
        sender.send(probe.functions.bump(500), gas=200_000, preflight=False)
    err = ei.value
    assert err.error_name == "TooBig" and err.error_args["value"] == 500
    assert err.tx_hash is not None
    assert w3.eth.get_transaction_receipt(err.tx_hash)["status"] == 0


def test_error_string_and_panic(automine_devnet, probe_artifact) -> None:
    w3 = automine_devnet.w3
    sender = TxSender(w3, automine_devnet.accounts[3])
    probe = _deploy(w3, sender, probe_artifact)
    with pytest.raises(ContractError) as ei:
        sender.send(probe.functions.fail("no way"))
    assert ei.value.error_name == "Error" and ei.value.error_args == {"reason": "no way"}
    assert str(ei.value) == 'Probe reverted in fail: Error("no way")'
    with pytest.raises(ContractError) as ei:
        sender.send(probe.functions.divide(1, 0))
    assert ei.value.error_name == "Panic" and ei.value.error_args["code"] == 0x12
    assert "division or modulo by zero" in str(ei.value)
    with pytest.raises(ContractError) as ei:  # mined panic too
        sender.send(probe.functions.divide(1, 0), gas=100_000, preflight=False)
    assert ei.value.error_name == "Panic" and ei.value.tx_hash


def test_unreachable_rpc_is_rpc_error(probe_artifact) -> None:
    from verinfer.chain.devnet import find_free_port

    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{find_free_port()}", request_kwargs={"timeout": 2}))
    w3.provider.exception_retry_configuration = None
    sender = TxSender(w3, Account.create(), max_retries=2)
    probe = w3.eth.contract(address="0x" + "11" * 20, abi=probe_artifact["abi"])
    with pytest.raises(RpcError, match="cannot reach RPC at http://127.0.0.1"):
        sender.send(probe.functions.bump(1))
