"""Storage test helpers: one real js-ipfs daemon per test session, a tampering HTTP proxy, data makers.

Owned by the storage part; import from test modules (`from storage_fixtures import ...`).
"""

from __future__ import annotations

import http.server
import json
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from verinfer.storage.jsipfs import JsIpfsDaemon

CHUNK = 262144

_daemon: JsIpfsDaemon | None = None


def shared_daemon() -> JsIpfsDaemon:
    """Start the session's js-ipfs daemon once (also when several modules import the fixture)."""
    global _daemon
    if _daemon is None:
        daemon = JsIpfsDaemon()
        daemon.start()  # fails loudly (JsIpfsError with the log tail) if js-ipfs cannot run
        _daemon = daemon
    return _daemon


@pytest.fixture(scope="session")
def jsipfs() -> Iterator[JsIpfsDaemon]:
    """A running js-ipfs daemon (`jsipfs daemon --offline`) on 127.0.0.1; stopped at session end."""
    global _daemon
    daemon = shared_daemon()
    yield daemon
    daemon.stop()
    _daemon = None


def rand_bytes(n: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (reproducible failures, incompressible like weights)."""
    return random.Random(seed).randbytes(n)


def daemon_add(api_url: str, data: bytes, **params: str) -> str:
    """`ipfs add` straight over HTTP (not through KuboStore), returning the daemon's own CID string."""
    query = {"pin": "false", "progress": "false", **params}
    resp = httpx.post(
        f"{api_url}/api/v0/add", params=query, files={"file": ("f", data, "application/octet-stream")}, timeout=300
    )
    resp.raise_for_status()
    return str([json.loads(line) for line in resp.text.splitlines() if line.strip()][-1]["Hash"])


V1_PARAMS = {"cid-version": "1", "raw-leaves": "true", "chunker": f"size-{CHUNK}", "cid-base": "base32"}
V0_PARAMS = {"cid-version": "0", "raw-leaves": "false", "chunker": f"size-{CHUNK}"}

Rewrite = Callable[[str, bytes], bytes]


class TamperingProxy:
    """A tiny HTTP server on 127.0.0.1 that forwards /api/v0 calls to a real daemon and can rewrite answers.

    `rewrite(path, body) -> body` sees each upstream answer (path without query); tests use it to
    flip bytes of `cat` output or lie in `add`, which is what a malicious or broken daemon does.
    """

    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        self.upstream = upstream
        self.rewrite = rewrite
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type",)}
                up = httpx.post(proxy.upstream + self.path, content=body, headers=headers, timeout=60)
                out = proxy.rewrite(self.path.split("?")[0], up.content)
                self.send_response(up.status_code)
                self.send_header("Content-Type", up.headers.get("content-type", "application/octet-stream"))
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TamperingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
