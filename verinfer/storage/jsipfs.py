"""Run a real js-ipfs daemon (npm `ipfs@0.66.1`) on loopback, for tests and local devnets.

Why js-ipfs: no Kubo binary can be installed on these machines, and js-ipfs serves a
Kubo-compatible `/api/v0`. On Node 20 it needs a `Promise.withResolvers` polyfill
(scripts/ipfs/polyfill.cjs). The repo is configured offline and private: no swarm
listeners, no bootstrap peers, no gateway, no gRPC, API on 127.0.0.1 only.

    with JsIpfsDaemon() as daemon:
        store = KuboStore(daemon.api_url)

Command line (what scripts/ipfs-daemon.sh runs): `python -m verinfer.storage.jsipfs [--port N]`.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from verinfer.storage.errors import StorageError

READY_LINE = "Daemon is ready"


class JsIpfsError(StorageError):
    """js-ipfs is not installed here, or its daemon did not come up (the message has its log tail)."""


def find_checkout(start: Path | None = None) -> Path:
    """The directory holding node_modules/ipfs: `VERINFER_JSIPFS_ROOT`, else upward from cwd and this file."""
    env = os.environ.get("VERINFER_JSIPFS_ROOT")
    candidates = [Path(env)] if env else []
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        candidates.extend([base, *base.parents])
    for cand in candidates:
        if (cand / "node_modules" / "ipfs" / "src" / "cli.js").is_file():
            return cand
    raise JsIpfsError("node_modules/ipfs not found: run `npm ci` in the verinfer checkout (package.json pins ipfs@0.66.1)")


def free_port() -> int:
    """An unused 127.0.0.1 TCP port (the daemon is retried on a new one if it loses the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(port: int) -> dict[str, object]:
    return {
        "Addresses": {
            "Swarm": [],
            "Announce": [],
            "NoAnnounce": [],
            "API": f"/ip4/127.0.0.1/tcp/{port}",
            "Gateway": [],
            "RPC": "",
            "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
    }


class JsIpfsDaemon:
    """One `jsipfs daemon --offline` process with its own repo; start/stop or use as a context manager."""

    def __init__(self, repo: Path | None = None, port: int | None = None, start_timeout: float = 60) -> None:
        self.checkout = find_checkout()
        self.cli = self.checkout / "node_modules" / "ipfs" / "src" / "cli.js"
        self.polyfill = self.checkout / "scripts" / "ipfs" / "polyfill.cjs"
        node = os.environ.get("VERINFER_NODE") or shutil.which("node")
        if not node:
            raise JsIpfsError("`node` is not on PATH (Node 20+ is needed to run js-ipfs)")
        if not self.polyfill.is_file():
            raise JsIpfsError(f"missing {self.polyfill}")
        self.node = node
        self._owns_repo = repo is None
        self.repo = Path(repo) if repo is not None else Path(tempfile.mkdtemp(prefix="verinfer-jsipfs-"))
        self.port = port
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = self.repo.parent / f"{self.repo.name}.log"

    @property
    def api_url(self) -> str:
        """http://127.0.0.1:PORT — what KuboStore and `IPFS_API` take."""
        if self.port is None or self._proc is None:
            raise JsIpfsError("daemon not started")
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self, port: int) -> Path:
        """The config js-ipfs applies over the repo's on every start (and uses to init a new repo)."""
        path = self.repo.parent / f"{self.repo.name}.config.json"
        path.write_text(json.dumps(_config(port)))
        return path

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the daemon's stdout/stderr (for error messages)."""
        try:
            return self._log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> str:
        """Init the repo if needed, start the daemon, wait until /api/v0 answers; return the API URL."""
        last_error = ""
        for _attempt in range(3):
            port = self.port or free_port()
            config = self._write_config(port)
            log = open(self._log_path, "wb")  # noqa: SIM115 - handed to the child process
            env = {**os.environ, "IPFS_PATH": str(self.repo)}
            # one process: the daemon inits a missing repo itself, with this config on top
            cmd = [
                self.node, "--require", str(self.polyfill), str(self.cli),
                "daemon", "--offline", "--enable-preload=false", "--init-config", str(config),
            ]  # fmt: skip
            self._proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
            log.close()
            self.port = port
            atexit.register(self.stop)
            if self._wait_ready():
                return self.api_url
            last_error = self.log_tail()
            self._terminate()
            if "EADDRINUSE" not in last_error:
                break
            self.port = None
        raise JsIpfsError(f"js-ipfs daemon did not start: {last_error.strip()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if READY_LINE in self.log_tail(100_000):
                try:
                    resp = httpx.post(f"http://127.0.0.1:{self.port}/api/v0/version", timeout=5)
                    if resp.status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: only the daemon we started
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Stop the daemon and delete its repo if this object created it."""
        self._terminate()
        atexit.unregister(self.stop)
        (self.repo.parent / f"{self.repo.name}.config.json").unlink(missing_ok=True)
        if self._owns_repo:
            shutil.rmtree(self.repo, ignore_errors=True)
            self._log_path.unlink(missing_ok=True)

    def __enter__(self) -> JsIpfsDaemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a daemon in the foreground until interrupted; print its API URL."""
    parser = argparse.ArgumentParser(prog="python -m verinfer.storage.jsipfs", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, help="repo directory to use/keep (default: a temp dir, deleted on exit)")
    parser.add_argument("--port", type=int, help="API port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    try:
        daemon = JsIpfsDaemon(repo=args.repo, port=args.port)
        url = daemon.start()
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"js-ipfs API at {url}\nexport IPFS_API={url}", flush=True)
    stop = False

    def _handle(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    try:
        while not stop and daemon._proc is not None and daemon._proc.poll() is None:
            time.sleep(0.5)
    finally:
        daemon.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
