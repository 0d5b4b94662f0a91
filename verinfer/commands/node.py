"""`verinfer node …`: run the worker daemon and inspect its local state.

The demo and the request-side tests start nodes as `verinfer node run --key NAME …`
subprocesses, so these flags are a stable interface (documented in docs/node.md).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Optional

import typer

from verinfer.errors import ConfigError

app = typer.Typer(help="Run a worker node (watch → infer → commit → reveal → finalize → prove).", no_args_is_help=True)

DEFAULT_RPC = "http://127.0.0.1:8545"


class _UtcFormatter(logging.Formatter):
    """`2026-11-25T21:03:04.123Z INFO node=0xAbCd… message` — grep-able, one event per line."""

    converter = time.gmtime

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + f".{int(record.msecs):03d}Z"
        line = f"{ts} {record.levelname:<7} node={self.node} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _setup_logging(address: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter(address[:10]))
    root = logging.getLogger("verinfer")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _eth(value: str, what: str) -> int:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{what} must be an amount in ether like 0.05, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{what} must be a non-negative amount in ether, got {value!r}")
    return int(d * 10**18)


@app.command("run")
def run(
    key: str = typer.Option(..., "--key", help="Keystore name under $VERINFER_HOME/keys/."),
    rpc_url: str = typer.Option(DEFAULT_RPC, "--rpc-url", envvar="VERINFER_RPC_URL", help="JSON-RPC endpoint."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST", help="Deployment manifest."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="Default: $VERINFER_HOME/nodes/<key>."),
    metrics_port: int = typer.Option(0, "--metrics-port", help="Port for /health and /metrics on 127.0.0.1 (0 = any free)."),
    poll_interval: float = typer.Option(0.5, "--poll-interval", help="Seconds between ticks."),
    fault: Optional[str] = typer.Option(
        None, "--fault", help="TEST/DEMO ONLY fault injector: wrong-output | no-reveal | crash-after-commit."
    ),
    password_file: Optional[Path] = typer.Option(None, "--password-file", help="File holding the keystore password."),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", envvar="VERINFER_IPFS_API", help="Kubo RPC URL (default: embedded store)."),
    auto_withdraw: bool = typer.Option(False, "--auto-withdraw", help="Withdraw earnings when above --withdraw-threshold."),
    withdraw_threshold: str = typer.Option("0.01", "--withdraw-threshold", help="Ether."),
    fetch_timeout: float = typer.Option(8.0, "--fetch-timeout", help="Max seconds to wait for an input CID."),
    start_block: Optional[int] = typer.Option(None, "--start-block", help="First block to scan on a fresh state (default: deploy block)."),
    prove: bool = typer.Option(True, "--prove/--no-prove", help="Post Groth16 proofs for models with a verifier."),
    prover_setup: str = typer.Option(
        "auto", "--prover-setup", help="Locally cached proving key: auto (shipped, ceremony, dev — the one matching the chain) | shipped | ceremony | dev."
    ),
    parallel: int = typer.Option(8, "--parallel", help="Requests advanced concurrently per tick (1 = sequential)."),
    log_level: str = typer.Option("info", "--log-level", help="debug | info | warning."),
) -> None:
    """Run the worker until SIGTERM/SIGINT. Prints one JSON line with address and status port on start."""
    from verinfer.chain.manifest import Manifest
    from verinfer.node.chainio import NodeChain
    from verinfer.node.keystore import unlock, verinfer_home
    from verinfer.node.metrics import NodeMetrics, StatusServer
    from verinfer.node.state import NodeState
    from verinfer.node.worker import FAULTS, Worker, WorkerConfig

    if fault is not None and fault not in FAULTS:
        raise ConfigError(f"unknown --fault {fault!r} (choose from {', '.join(FAULTS)})")
    if poll_interval <= 0 or poll_interval > 60:
        raise ConfigError(f"--poll-interval must be in (0, 60] seconds, got {poll_interval}")
    if not 1 <= parallel <= 64:
        raise ConfigError(f"--parallel must be 1..64, got {parallel}")
    if not 0 <= metrics_port <= 65535:
        raise ConfigError(f"--metrics-port must be 0..65535, got {metrics_port}")
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level must be debug, info, warning or error, got {log_level!r}")
    if prover_setup not in ("auto", "dev", "ceremony", "shipped"):
        raise ConfigError(f"--prover-setup must be auto, shipped, ceremony or dev, got {prover_setup!r}")
    threshold = _eth(withdraw_threshold, "--withdraw-threshold")
    m = Manifest.load(manifest)
    account = unlock(key, password_file)
    state_dir = state_dir or verinfer_home() / "nodes" / key
    state_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(account.address, log_level)

    from verinfer.storage import open_store

    store = open_store(ipfs_api=ipfs_api)
    chain = NodeChain.connect(rpc_url, m, account)
    state = NodeState(state_dir / "node.db")
    metrics = NodeMetrics()
    cfg = WorkerConfig(
        state_dir=state_dir,
        poll_interval=poll_interval,
        fault=fault,
        auto_withdraw=auto_withdraw,
        withdraw_threshold_wei=threshold,
        fetch_timeout_s=fetch_timeout,
        prove=prove,
        prover_setup=prover_setup,
        parallel=parallel,
        start_block=start_block,
    )
    worker = Worker(chain, store, state, cfg, metrics)
    try:
        server = StatusServer(metrics, worker.health, metrics_port).start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{metrics_port}: {exc.strerror}") from None
    info = {
        "address": account.address,
        "metrics_port": server.port,
        "health": f"http://127.0.0.1:{server.port}/health",
        "metrics": f"http://127.0.0.1:{server.port}/metrics",
        "state_dir": str(state_dir),
        "pid": os.getpid(),
        "fault": fault,
    }
    tmp = state_dir / "node.json.tmp"
    tmp.write_text(json.dumps(info) + "\n")
    tmp.replace(state_dir / "node.json")  # atomic: watchers never read half a file
    print(json.dumps(info), flush=True)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    try:
        worker.run()
    finally:
        server.stop()
        state.close()


@app.command("state")
def show_state(
    key: Optional[str] = typer.Option(None, "--key", help="Node key name (state dir $VERINFER_HOME/nodes/<key>)."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the node's persisted requests (phase, output, txs) without touching the chain."""
    from rich.console import Console
    from rich.table import Table

    from verinfer.node.keystore import verinfer_home
    from verinfer.node.state import NodeState

    if state_dir is None:
        if key is None:
            raise ConfigError("pass --key or --state-dir")
        state_dir = verinfer_home() / "nodes" / key
    db = state_dir / "node.db"
    if not db.exists():
        raise ConfigError(f"no node state at {db}")
    st = NodeState(db)
    try:
        recs = list(st.all())
        cursor = st.load("InferenceRequested")
    finally:
        st.close()
    if as_json:
        print(json.dumps({"cursor": cursor, "requests": [
            {"request_id": r.request_id, "phase": r.phase.value, "output_hash": r.output_hash, "output_cid": r.output_cid,
             "invalid_reason": r.invalid_reason, "txs": r.txs, "last_error": r.last_error} for r in recs]}, indent=2))
        return
    table = Table(title=f"node state {db} (next block {cursor})")
    for col in ("request", "phase", "output hash", "output cid", "txs", "last error"):
        table.add_column(col)
    for r in recs:
        table.add_row(
            str(r.request_id), r.phase.value, (r.output_hash or "")[:18], r.output_cid or "",
            ", ".join(sorted(r.txs)), (r.last_error or "")[:60],
        )
    Console().print(table)
