"""The node's SQLite state: what makes kill -9 safe (salt written once, phases, cursor, durability)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from verinfer.errors import ConfigError
from verinfer.node.chainio import NodeChain
from verinfer.node.state import NodeState, Phase, RequestRecord


def _rec(rid: int = 7) -> RequestRecord:
    return RequestRecord(request_id=rid, model_id=b"\x11" * 32, input_cid="bafk", input_hash=0x22, fee=10**16, replicas=2,
                         draw_block=6, commit_deadline=16, reveal_deadline=26, seen_block=5, committee=["0xA", "0xB"])


def test_requests_are_stored_once_and_salt_is_never_replaced(tmp_path: Path) -> None:
    st = NodeState(tmp_path / "node.db")
    assert st.add_request(_rec())
    assert not st.add_request(_rec())  # a re-delivered event is ignored
    st.transition(7, Phase.READY, expect=Phase.SEEN, output_hash=0x33, output_cid="bafyout", salt=b"\x44" * 32)
    # a second computation (e.g. replayed after a crash) must not change what may already be committed
    assert st.transition(7, Phase.READY, expect=Phase.SEEN, output_hash=0x55, salt=b"\x66" * 32) is None
    r = st.transition(7, Phase.READY, expect=Phase.READY, output_hash=0x55, output_cid="bafyother", salt=b"\x66" * 32)
    assert r is not None and r.phase == Phase.READY
    assert (r.output_hash, r.output_cid, r.salt) == (0x33, "bafyout", b"\x44" * 32)
    st.record_tx(7, "commit", "0xabc")
    st.record_error(7, "boom")
    r = st.transition(7, Phase.COMMITTED, expect=Phase.READY)
    assert r.txs == {"commit": "0xabc"} and r.last_error is None and r.attempts == 1
    assert [x.request_id for x in st.active()] == [7]
    st.transition(7, Phase.DONE)
    assert st.active() == [] and st.count_by_phase() == {"done": 1}


def test_cursor_store_protocol(tmp_path: Path) -> None:
    from verinfer.chain.events import CursorStore

    st = NodeState(tmp_path / "node.db")
    assert isinstance(st, CursorStore)
    assert st.load("InferenceRequested") is None
    st.save("InferenceRequested", 42)
    assert NodeState(tmp_path / "node.db").load("InferenceRequested") == 42


def test_writes_survive_sigkill_of_the_writer(tmp_path: Path) -> None:
    """Each write is committed before the call returns: a process killed right after keeps it."""
    db = tmp_path / "node.db"
    code = (
        "import os, signal, sys\n"
        "from verinfer.node.state import NodeState, RequestRecord\n"
        f"st = NodeState({str(db)!r})\n"
        "from verinfer.node.state import Phase\n"
        "st.add_request(RequestRecord(1, b'\\x00' * 32, 'c', 1, 1, 1, 2, 10, 20, 1))\n"
        "st.transition(1, Phase.READY, output_hash=0xaa, output_cid='bafy', salt=b'\\x05' * 32)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    res = subprocess.run([sys.executable, "-c", code])
    assert res.returncode == -9
    r = NodeState(db).get_request(1)
    assert r is not None and r.salt == b"\x05" * 32 and r.phase == Phase.READY


def test_node_state_command_prints_persisted_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`verinfer node state --json` reads the DB without touching the chain (what an operator inspects)."""
    import json

    from verinfer import cli

    st = NodeState(tmp_path / "node.db")
    st.add_request(_rec(3))
    st.transition(3, Phase.READY, output_hash=(1 << 256) - 1, output_cid="", salt=b"\x01" * 32,
                  invalid_reason="input hash mismatch")
    st.save("market-v2", 99)
    st.close()
    old = sys.argv
    sys.argv = ["verinfer", "node", "state", "--state-dir", str(tmp_path), "--json"]
    try:
        cli.main()
    finally:
        sys.argv = old
    doc = json.loads(capsys.readouterr().out)
    assert doc["cursor"] == 99
    assert doc["requests"] == [{"request_id": 3, "phase": "ready", "output_hash": "0x" + "ff" * 32, "output_cid": "",
                                "invalid_reason": "input hash mismatch", "txs": {}, "proof": None, "last_error": None}]
    sys.argv = ["verinfer", "node", "state", "--state-dir", str(tmp_path / "nowhere")]
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        sys.argv = old
    assert exc.value.code == 1
    assert capsys.readouterr().err.startswith("error: no node state at")


def test_a_state_dir_belongs_to_one_deployment(tmp_path: Path) -> None:
    """A fresh devnet redeploys the same addresses on the same chain id; a node restarted on it with the old state
    dir took request 1..n for ones it had handled (and trusted the old event cursor): 200/200 requests Expired."""
    st = NodeState(tmp_path / "node.db")
    st.bind_deployment("31337:0xMarket:aa")
    st.bind_deployment("31337:0xMarket:aa")  # the same deployment: a plain restart
    st.close()
    again = NodeState(tmp_path / "node.db")
    with pytest.raises(ConfigError, match="belongs to another deployment") as err:
        again.bind_deployment("31337:0xMarket:bb")
    assert "\n" not in str(err.value) and "--state-dir" in str(err.value)


def test_the_deployment_id_names_the_chain_instance(w3, protocol_manifest, accounts) -> None:  # type: ignore[no-untyped-def]
    """chain id + market + deploy-block hash: a new anvil with the same deploy script repeats the first two."""
    chain = NodeChain.connect(str(w3.provider.endpoint_uri), protocol_manifest, accounts[0])
    did = chain.deployment_id()
    block_hash = bytes(w3.eth.get_block(protocol_manifest.deploy_block)["hash"]).hex()
    assert did == f"{protocol_manifest.chain_id}:{protocol_manifest.address('InferenceMarket')}:{block_hash}"
    assert chain.deployment_id() == did
