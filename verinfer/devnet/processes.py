"""Node daemons as child processes of `python -m verinfer.node` (the node's own entry point)."""

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
    """A running node child; stdout+stderr go to `log_path`, its start info to `<state_dir>/node.json`."""

    key: str
    state_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.key

    @property
    def address(self) -> str:
        return str(self.info.get("address", ""))

    @property
    def port(self) -> int:
        return int(self.info["metrics_port"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self, timeout: float = 3.0) -> dict[str, Any]:
        r = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=timeout)
        r.raise_for_status()
        return r.json()

    def metrics(self, timeout: float = 3.0) -> dict[str, float]:
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

    def log_tail(self, n: int = 15) -> str:
        return "\n".join(self.log().splitlines()[-n:]) or "(no log)"

    def wait_ready(self, timeout: float = 60.0) -> "NodeProcess":
        """Block until the node wrote its node.json (pid matches); NodeProcessError if it exits or stays silent."""
        info_file = self.state_dir / "node.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if info_file.exists():
                try:
                    info = json.loads(info_file.read_text())
                except json.JSONDecodeError:
                    info = {}
                if info.get("pid") == self.proc.pid:
                    self.info = info
                    return self
            if self.proc.poll() is not None:
                raise NodeProcessError(f"node {self.key} exited with {self.proc.returncode}: {self.log()[-2000:]}")
            time.sleep(0.05)
        self.kill()
        raise NodeProcessError(f"node {self.key} did not start in {timeout}s: {self.log()[-2000:]}")

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM the node's process group and wait (graceful path); SIGKILL if it does not exit."""
        terminate_group(self.proc, timeout)
        return int(self.proc.returncode if self.proc.returncode is not None else -9)

    def kill(self) -> None:
        """SIGKILL: the crash path (nothing gets flushed or cleaned up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _child_setup() -> None:
    """Own process group (stopped as a whole), and SIGTERM when the launching thread dies (Linux)."""
    os.setsid()
    try:
        import ctypes  # noqa: PLC0415  (Linux-only, best effort)

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


def _child_setup_detached() -> None:
    """Own session and process group, and no death signal: the node outlives its launcher (`demo --keep`)."""
    os.setsid()


def launch_node(
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
    poll_interval: float = 0.25,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    detach: bool = False,
) -> NodeProcess:
    """Start `python -m verinfer.node` without waiting (call `.wait_ready()`; lets several nodes boot in parallel).

    By default the node gets SIGTERM when the launching process dies; `detach` leaves it running (`demo --keep`)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or state_dir / "node.log"
    child_env = dict(os.environ)
    child_env["PYTHONUNBUFFERED"] = "1"
    if home is not None:
        child_env["VERINFER_HOME"] = str(home)
    if password is not None:
        child_env["VERINFER_PASSWORD"] = password
    if store_dir is not None:
        child_env["VERINFER_STORE"] = str(store_dir)
    child_env.update(env or {})
    cmd = [
        sys.executable, "-m", "verinfer.node",
        "--key", key, "--rpc-url", rpc_url, "--manifest", str(manifest),
        "--state-dir", str(state_dir), "--metrics-port", "0", "--poll-interval", str(poll_interval),
    ]
    if password_file is not None:
        cmd += ["--password-file", str(password_file)]
    cmd += list(extra_args)
    (state_dir / "node.json").unlink(missing_ok=True)
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env,
                                preexec_fn=_child_setup_detached if detach else _child_setup)
    return NodeProcess(key=key, state_dir=state_dir, log_path=log_path, proc=proc)


def spawn_node(key: str, *, ready_timeout: float = 60.0, **kwargs: Any) -> NodeProcess:
    """Start a node and wait until it listens. Same arguments as `launch_node`."""
    return launch_node(key, **kwargs).wait_ready(ready_timeout)


def terminate_group(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM the child's whole process group, wait, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def terminate_all(nodes: Sequence[NodeProcess], timeout: float = 15.0) -> None:
    """SIGTERM every node's process group first, then wait for each (SIGKILL what is left): the nodes shut down
    side by side, so stopping a cluster takes one node's shutdown, not the sum."""
    for node in nodes:
        if node.proc.poll() is None:
            try:
                os.killpg(node.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for node in nodes:  # one SIGTERM each (a second one would make the node exit at once, not gracefully)
        try:
            node.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(node.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.proc.wait(timeout=5)


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
