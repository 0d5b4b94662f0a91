"""Devnet process management: start/stop, accounts, persistence at the Python level, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from verinfer.chain.devnet import ANVIL_MNEMONIC, Devnet, DevnetError, dev_accounts, find_anvil, find_free_port, mine
from verinfer.chain.errors import RpcError
from verinfer.chain.protocol import Protocol


def test_dev_accounts_are_anvils(devnet: Devnet) -> None:
    accts = devnet.accounts
    assert accts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's well-known account 0
    assert [a.address for a in accts] == devnet.w3.eth.accounts  # same keys as the node's unlocked accounts
    Account.enable_unaudited_hdwallet_features()
    assert Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/3").address == dev_accounts(4)[3].address


def test_mine_advances_blocks(w3) -> None:
    before = w3.eth.block_number
    assert mine(w3, 7) >= before + 7


def test_persisted_state_survives_restart(tmp_path: Path) -> None:
    port = find_free_port()
    d = Devnet(port=port, state_dir=tmp_path, block_time=None, persist=True).start()
    acct = Account.create()
    d.w3.provider.make_request("anvil_setBalance", [acct.address, hex(123456789)])
    mine(d.w3, 5)
    block = d.w3.eth.block_number
    d.stop()
    assert d.state_file.exists()
    d2 = Devnet(port=port, state_dir=tmp_path, block_time=None, persist=True).start()
    try:
        assert d2.w3.eth.get_balance(acct.address) == 123456789
        assert d2.w3.eth.block_number >= block
    finally:
        d2.stop()


def test_missing_anvil_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VERINFER_ANVIL", str(tmp_path / "nope"))
    with pytest.raises(DevnetError, match="does not exist"):
        find_anvil()
    with pytest.raises(DevnetError):
        Devnet(port=find_free_port(), state_dir=tmp_path).start()


def test_connect_to_dead_rpc_is_rpc_error(tmp_path: Path) -> None:
    with pytest.raises(RpcError, match="cannot reach RPC at http://127.0.0.1:"):
        Protocol.connect(f"http://127.0.0.1:{find_free_port()}", tmp_path / "m.json")


def test_attached_devnet_dies_with_its_parent(tmp_path: Path) -> None:
    """A crashed test session (parent killed -9) must not leave an orphan anvil behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from verinfer.chain.devnet import pid_alive

    code = (
        "import sys, time\n"
        "from verinfer.chain.devnet import Devnet, find_free_port\n"
        f"d = Devnet(port=find_free_port(), state_dir={str(tmp_path)!r}, block_time=None, persist=False).start()\n"
        "print(d.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    anvil_pid = int(parent.stdout.readline())
    assert pid_alive(anvil_pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while pid_alive(anvil_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(anvil_pid)
