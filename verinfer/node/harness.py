"""Start and watch real `verinfer node run` processes (tests, demo, benchmarks).

Integration tests must exercise the real daemon — its CLI parsing, keystore unlock, SQLite,
signal handling — so this spawns `python -m verinfer.cli node run …` subprocesses and talks to
them only through their public surfaces: the JSON line printed on start, `/health`, `/metrics`,
their log file, and POSIX signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import httpx

from verinfer.errors import VerinferError


class NodeProcessError(VerinferError):
    """A spawned node did not start or answer in time."""


@dataclass
class NodeProcess:
    """A running `verinfer node run` child; logs go to `log_path`."""

    key: str
    state_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.info.get("address", ""))

    @property
    def port(self) -> int:
        return int(self.info["metrics_port"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self, timeout: float = 2.0) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=timeout).json()

    def metrics(self, timeout: float = 2.0) -> dict[str, float]:
        """Prometheus samples as {name{labels}: value} (enough for assertions)."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait (graceful path); SIGKILL if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL: the crash path (nothing gets flushed or cleaned up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def spawn_node(
    key: str,
    *,
    rpc_url: str,
    manifest: Path,
    state_dir: Path,
    home: Path | None = None,
    password: str | None = None,
    password_file: Path | None = None,
    store_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    poll_interval: float = 0.3,
    env: dict[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> NodeProcess:
    """Start a node and wait for its start line (address + status port)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "node.log"
    child_env = dict(os.environ)
    if home is not None:
        child_env["VERINFER_HOME"] = str(home)
    if password is not None:
        child_env["VERINFER_PASSWORD"] = password
    if store_dir is not None:
        child_env["VERINFER_STORE"] = str(store_dir)
    child_env.update(env or {})
    cmd = [
        sys.executable, "-m", "verinfer.cli", "node", "run",
        "--key", key, "--rpc-url", rpc_url, "--manifest", str(manifest),
        "--state-dir", str(state_dir), "--metrics-port", "0", "--poll-interval", str(poll_interval),
    ]
    if password_file is not None:
        cmd += ["--password-file", str(password_file)]
    cmd += list(extra_args)
    info_path = state_dir / "node.json"
    info_path.unlink(missing_ok=True)
    logf = open(log_path, "ab")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf, stdin=subprocess.DEVNULL, env=child_env)
    logf.close()
    node = NodeProcess(key=key, state_dir=state_dir, log_path=log_path, proc=proc)
    assert proc.stdout is not None
    deadline = time.monotonic() + ready_timeout
    line = b""
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        chunk = proc.stdout.readline()
        if chunk:
            line = chunk
            break
        if proc.poll() is not None:
            raise NodeProcessError(f"node {key} exited with {proc.returncode}: {node.log()[-2000:]}")
        time.sleep(0.05)
    if not line:
        proc.kill()
        raise NodeProcessError(f"node {key} printed no start line in {ready_timeout}s: {node.log()[-2000:]}")
    node.info = json.loads(line)
    return node


def wait_for(predicate: Any, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll `predicate()` until truthy; returns its value or raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # transient (node restarting, RPC blip)
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
