"""`GET /health` (JSON) and `GET /metrics` (Prometheus) on loopback, so operators and tests can watch a node.

A stdlib threading HTTP server is enough for two read-only endpoints and keeps the worker loop
free of an event loop; it always binds 127.0.0.1 (exposing it is the operator's explicit choice
via a reverse proxy, not ours).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class NodeMetrics:
    """The node's Prometheus series, on a private registry (several nodes may share a process in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests_seen = Counter("verinfer_node_requests_seen", "Requests assigned to this node", registry=r)
        self.requests_committed = Counter("verinfer_node_requests_committed", "Commitments sent", registry=r)
        self.requests_revealed = Counter("verinfer_node_requests_revealed", "Reveals sent", registry=r)
        self.requests_finalized = Counter("verinfer_node_requests_finalized", "Requests seen settled", registry=r)
        self.requests_proven = Counter("verinfer_node_requests_proven", "Proofs accepted on-chain", registry=r)
        self.requests_missed = Counter("verinfer_node_requests_missed", "Requests whose window closed first", registry=r)
        self.invalid_inputs = Counter("verinfer_node_invalid_inputs", "Inputs judged INVALID_INPUT", registry=r)
        self.errors = Counter("verinfer_node_errors", "Errors by kind", ["kind"], registry=r)
        self.last_block = Gauge("verinfer_node_last_block", "Latest block number seen", registry=r)
        self.pending = Gauge("verinfer_node_pending_requests", "Requests with work left", registry=r)
        self.withdrawn_wei = Counter("verinfer_node_withdrawn_wei", "Earnings withdrawn (wei)", registry=r)
        self.inference_seconds = Histogram(
            "verinfer_node_inference_seconds",
            "Model execution time",
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
            registry=r,
        )
        self.txs_sent = Counter("verinfer_node_txs_sent", "Transactions broadcast by kind", ["kind"], registry=r)
        self.tx_seconds = Histogram(
            "verinfer_node_tx_seconds", "Broadcast → receipt seen, by kind", ["kind"],
            buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32), registry=r,
        )
        self.task_wait_seconds = Histogram(
            "verinfer_node_task_wait_seconds", "Request task queued → started (pool saturation)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8), registry=r,
        )
        self.proof_seconds = Histogram(
            "verinfer_node_proof_seconds", "Proof generation time", buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 120), registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StatusServer:
    """Serves /health and /metrics on 127.0.0.1:`port` (0 = any free port) in a daemon thread."""

    def __init__(self, metrics: NodeMetrics, health: Callable[[], dict[str, Any]], port: int = 0) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    try:
                        body = json.dumps(outer.health(), default=str).encode()
                        self._send(200, "application/json", body)
                    except Exception as exc:  # never let a health probe kill the server thread
                        self._send(500, "application/json", json.dumps({"error": str(exc)}).encode())
                elif path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, outer.metrics.render())
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: probes are frequent
                pass

        self.metrics = metrics
        self.health = health
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="node-status", daemon=True)

    def start(self) -> "StatusServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StackSampler:
    """Where the node's threads spend wall time: samples every thread's stack and counts call sites.

    Enabled by `VERINFER_NODE_SAMPLE=<file>` (a diagnosis aid for load runs, not for production): every
    `interval` s each thread's innermost frame and its nearest verinfer caller are counted; `stop()` writes
    the top sites, so a load benchmark can show whether requests wait on RPCs, locks or the CPU.
    """

    def __init__(self, path: str, interval: float = 0.01) -> None:
        self.path = path
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> "StackSampler":
        self._thread.start()
        return self

    def _run(self) -> None:
        import sys  # noqa: PLC0415

        me = threading.get_ident()
        names = {}
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                leaf = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"
                f: Any = frame
                ours = ""
                while f is not None:
                    if "/verinfer/" in f.f_code.co_filename:
                        ours = f"{f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_code.co_name}:{f.f_lineno}"
                        break
                    f = f.f_back
                group = names.get(ident, "?").split("_")[0].rstrip("0123456789-")
                key = f"{group} | {ours} | {leaf}"
                self.counts[key] = self.counts.get(key, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:60]
        with open(self.path, "w") as fh:
            fh.write(f"samples {self.samples} every {self.interval}s\n")
            for k, n in top:
                fh.write(f"{n:8d}  {k}\n")
