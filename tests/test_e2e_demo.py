"""README command 1 end to end: `verinfer demo --requests 2` as a user runs it, then nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from verinfer.chain.devnet import pid_alive


#: this checkout first on the path (an installed `verinfer` may belong to another checkout)
REPO = Path(__file__).resolve().parent.parent


def _procs_mentioning(text: str) -> list[int]:
    """pids whose command line mentions `text` (our demo's private state dir)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            out.append(int(d.name))
    return out


def test_demo_two_requests_prints_table_and_cleans_up(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    env = dict(os.environ, COLUMNS="120", PYTHONPATH=str(REPO))
    env.pop("VERINFER_MANIFEST", None)
    p = subprocess.run([sys.executable, "-m", "verinfer.cli", "demo", "--requests", "2", "--state-dir", str(state)],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    out = p.stdout
    assert p.returncode == 0, out[-3000:] + p.stderr[-3000:]
    # every step of the story, in order
    for needle in ("devnet: anvil pid", "deployed:", "model: digits-mlp", "operators: 3 keystores",
                   "nodes: 3 `python -m verinfer.node`", "proof mode:", "2 requests on digits-mlp",
                   "2/2 predictions match the true label", "stopped 4 processes"):
        assert needle in out, f"missing {needle!r} in:\n{out[-3000:]}"
    rows = [line for line in out.splitlines() if re.match(r"^│\s+\d+\s+│", line)]
    assert len(rows) == 2, out[-2000:]
    assert "dApp ✓cb" in rows[0] and "SDK" in rows[1]
    proven = "proof mode: public" in out
    for row in rows:
        cells = [c.strip() for c in row.strip("│").split("│")]
        _, _, pred, label, consensus, status, gas = cells
        assert pred == label and consensus in ("2/3", "3/3")
        assert status == ("Proven" if proven else "Accepted") and re.match(r"\d+/\d+/\d+/\d+/(\d+|—)$", gas)
    # no process it started survives it
    pids = [int(x) for x in re.findall(r"pid (\d+)", out)]
    assert len(pids) == 4, out[:2000]
    time.sleep(0.5)
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert _procs_mentioning(str(state)) == []


def test_demo_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """Ctrl-C while requests are in flight: the demo exits 130 and takes anvil and the nodes with it."""
    import select
    import signal

    state = tmp_path / "demo"
    env = dict(os.environ, COLUMNS="120", PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "verinfer.cli", "demo", "--requests", "6", "--no-proof",
                          "--state-dir", str(state)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env, cwd=tmp_path, start_new_session=True,
                         # a terminal delivers SIGINT; a background test runner may have it ignored (inherited)
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout is not None
    seen = ""
    deadline = time.monotonic() + 240
    try:
        while "requesting" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(p.stdout.fileno(), 65536).decode(errors="replace")
                if not chunk:
                    break
                seen += chunk
        assert "requesting" in seen, seen[-2000:]
        pids = [int(x) for x in re.findall(r"pid (\d+)", seen)]
        assert len(pids) == 4
        os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground group
        rest, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, (seen + rest.decode(errors="replace"))[-2000:]
    time.sleep(0.5)
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert _procs_mentioning(str(state)) == []
