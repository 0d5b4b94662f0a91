"""The node's SQLite state: what makes kill -9 safe (salt written once, phases, cursor, durability)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from verinfer.node.state import NodeState, Phase, RequestRecord


def _rec(rid: int = 7) -> RequestRecord:
    return RequestRecord(request_id=rid, model_id="0x" + "11" * 32, input_cid="bafk", input_hash="0x" + "22" * 32,
                         fee=10**16, committee=["0xA", "0xB"], commit_deadline=10, reveal_deadline=20, seen_block=5)


def test_requests_are_stored_once_and_salt_is_never_replaced(tmp_path: Path) -> None:
    st = NodeState(tmp_path / "node.db")
    assert st.add_request(_rec())
    assert not st.add_request(_rec())  # a re-delivered event is ignored
    st.set_output(7, "0x" + "33" * 32, "bafyout", "0x" + "44" * 32, None)
    # a second computation (e.g. replayed after a crash) must not change what may already be committed
    st.set_output(7, "0x" + "55" * 32, "bafyother", "0x" + "66" * 32, None)
    r = st.get_request(7)
    assert r is not None and r.phase == Phase.READY
    assert (r.output_hash, r.output_cid, r.salt) == ("0x" + "33" * 32, "bafyout", "0x" + "44" * 32)
    st.record_tx(7, "commit", "0xabc")
    st.record_error(7, "boom")
    st.set_phase(7, Phase.COMMITTED)
    r = st.get_request(7)
    assert r.txs == {"commit": "0xabc"} and r.last_error is None and r.attempts == 1
    assert [x.request_id for x in st.active()] == [7]
    st.set_phase(7, Phase.DONE)
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
        "st.add_request(RequestRecord(1, '0x', 'c', '0x', 1, [], 10, 20, 1))\n"
        "st.set_output(1, '0xaa', 'bafy', '0xsalt', None)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    res = subprocess.run([sys.executable, "-c", code])
    assert res.returncode == -9
    r = NodeState(db).get_request(1)
    assert r is not None and r.salt == "0xsalt" and r.phase == Phase.READY


def test_node_state_command_prints_persisted_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`verinfer node state --json` reads the DB without touching the chain (what an operator inspects)."""
    import json

    from verinfer import cli

    st = NodeState(tmp_path / "node.db")
    st.add_request(_rec(3))
    st.set_output(3, "0x" + "ff" * 32, "", "0x" + "01" * 32, "input hash mismatch")
    st.save("InferenceRequested", 99)
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
                                "invalid_reason": "input hash mismatch", "txs": {}, "last_error": None}]
    sys.argv = ["verinfer", "node", "state", "--state-dir", str(tmp_path / "nowhere")]
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        sys.argv = old
    assert exc.value.code == 1
    assert capsys.readouterr().err.startswith("error: no node state at")
