"""`verinfer demo --keep`: anvil and the node processes outlive the demo, and the network still serves requests.

Before the fix only anvil survived: the nodes were started with a parent-death signal and died with the demo.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from verinfer.chain.devnet import pid_alive

REPO = Path(__file__).resolve().parent.parent


def test_demo_keep_leaves_anvil_and_nodes_serving(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    env = dict(os.environ, COLUMNS="200", PYTHONPATH=str(REPO))
    for var in ("VERINFER_MANIFEST", "VERINFER_STORE", "VERINFER_HOME", "VERINFER_RPC_URL"):
        env.pop(var, None)
    pids: list[int] = []
    try:
        p = subprocess.run([sys.executable, "-m", "verinfer.cli", "demo", "--requests", "1", "--no-proof", "--keep",
                            "--state-dir", str(state)], capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
        out = p.stdout
        m = re.search(r"network left running \(pids ([\d, ]+)\)", out)
        if m:
            pids = [int(x) for x in m.group(1).split(",")]
        assert p.returncode == 0, out[-3000:] + p.stderr[-3000:]
        assert m is not None, out[-3000:]
        assert len(pids) == 4, out[-3000:]  # anvil + 3 nodes
        time.sleep(2.0)  # a parent-death SIGTERM would have arrived by now
        assert [pid for pid in pids if not pid_alive(pid)] == [], out[-3000:]
        # the kept network still works: the command the demo prints, from another process
        exported = re.search(r"export (.+?)\n\s+verinfer request", out, re.S)  # rich may wrap the line
        assert exported is not None, out[-3000:]
        exports = dict(kv.split("=", 1) for kv in exported.group(1).split())
        assert set(exports) == {"VERINFER_MANIFEST", "VERINFER_STORE", "VERINFER_HOME"}
        r = subprocess.run([sys.executable, "-m", "verinfer.cli", "request", "--model", "digits-mlp", "--input",
                            "digits-sample:5", "--dev-account", "1", "--timeout", "120"],
                           capture_output=True, text=True, timeout=200, env={**env, **exports}, cwd=tmp_path)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "Accepted" in r.stdout, r.stdout[-3000:]
        # (without the fix the nodes exit a few seconds after the demo; the request above then expires undrawn)
        assert [pid for pid in pids if not pid_alive(pid)] == []
    finally:
        for pid in pids:  # the demo's own "stop: kill …" line
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert [pid for pid in pids if pid_alive(pid)] == []
