"""Start a node daemon from options: unlock the key, open store + state, serve /health, run the worker.

Both entry points call `run_node`: `python -m verinfer.node …` (what the devnet module and operators'
process managers start) and `verinfer node run …` (the CLI, which only parses flags).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from verinfer.chain.manifest import Manifest
from verinfer.chain.tx import TRANSPORT_ERRORS
from verinfer.errors import ConfigError, VerinferError
from verinfer.node import lmstage
from verinfer.node.chainio import NodeChain
from verinfer.node.keystore import unlock, verinfer_home
from verinfer.node.metrics import NodeMetrics, StackSampler, StatusServer
from verinfer.node.profile import ProfileGuard, parse_method
from verinfer.node.provekeys import SETUPS
from verinfer.node.state import NodeState
from verinfer.node.worker import FAULTS, Worker, WorkerConfig
from verinfer.storage import open_store

#: A start-up profile check that fails on a project error or an unreachable RPC is deferred to first use.
_DEFERRED: tuple[type[BaseException], ...] = (VerinferError, *TRANSPORT_ERRORS)
#: env default of `--[no-]metainf-select` (0 = off); the test suite sets 0 (tests/conftest.py)
METAINF_SELECT_ENV = "VERINFER_NODE_METAINF_SELECT"


@dataclass
class NodeOptions:
    """Every flag of the node daemon (docs/node.md)."""

    key: str
    rpc_url: str | None = None  # None: the manifest's rpc_url
    manifest: Path | None = None
    state_dir: Path | None = None
    metrics_port: int = 0
    poll_interval: float = 0.25
    fault: str | None = None
    password_file: Path | None = None
    ipfs_api: str | None = None
    auto_withdraw: bool = False
    withdraw_threshold_wei: int = 10**16
    fetch_timeout: float = 8.0
    start_block: int | None = None
    prove: bool = True
    prover_setup: str = "auto"
    provers: int = 1
    parallel: int = 64
    block_time: float | None = None
    log_level: str = "info"
    exec_method: str | None = None  # METHOD[:THREADS[:BATCH]] the operator wants to run (None: the reference run)
    hardware_class: str | None = None  # for the node's own MetaInf selection (None: this CPU's)
    stage: str | None = None  # MODEL:LO:HI: serve this registered LLM layer range (verinfer.node.lmstage)
    stage_fault: str | None = None  # TEST/DEMO ONLY: KIND[:N] misbehaving stage (lmstage.STAGE_FAULTS)
    lm_replicas: int = 2  # as an LLM committee head: stage endpoints compared bit for bit per step
    lm_stage_timeout: float = 20.0  # seconds a stage may take per call before failover
    lm_disputes: bool = True  # as an LLM head: open a StageCourt dispute against a stage caught lying
    metainf_select: bool | None = None  # the node's own MetaInf selection (None: on unless $VERINFER_NODE_METAINF_SELECT=0)

    def selection_on(self) -> bool:
        """`--[no-]metainf-select`, else $VERINFER_NODE_METAINF_SELECT (0/1), else on. Test clusters turn it off:
        ~7 s of CPU and ~325 MB of RSS per node that only tests/test_metainf_integration.py looks at."""
        if self.metainf_select is not None:
            return self.metainf_select
        env = os.environ.get(METAINF_SELECT_ENV, "1").strip().lower()
        if env not in ("0", "1"):
            raise ConfigError(f"{METAINF_SELECT_ENV} must be 0 or 1, got {env!r}")
        return env == "1"

    def check(self) -> None:
        """One-line errors for bad flags, before anything is unlocked or opened."""
        if self.fault is not None and self.fault not in FAULTS:
            raise ConfigError(f"unknown --fault {self.fault!r} (choose from {', '.join(FAULTS)})")
        if not 0 < self.poll_interval <= 60:
            raise ConfigError(f"--poll-interval must be in (0, 60] seconds, got {self.poll_interval}")
        if not 1 <= self.parallel <= 256:
            raise ConfigError(f"--parallel must be 1..256, got {self.parallel}")
        if not 1 <= self.provers <= 16:
            raise ConfigError(f"--provers must be 1..16, got {self.provers}")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be 0..65535, got {self.metrics_port}")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"--log-level must be debug, info, warning or error, got {self.log_level!r}")
        if self.prover_setup not in SETUPS:
            raise ConfigError(f"--prover-setup must be one of {', '.join(SETUPS)}, got {self.prover_setup!r}")
        if self.fetch_timeout <= 0:
            raise ConfigError(f"--fetch-timeout must be positive, got {self.fetch_timeout}")
        if self.block_time is not None and self.block_time <= 0:
            raise ConfigError(f"--block-time must be positive, got {self.block_time}")
        if self.exec_method is not None:
            parse_method(self.exec_method)
        self.selection_on()
        lmstage.check_options(self.stage, self.stage_fault, self.lm_replicas, self.lm_stage_timeout)


class _UtcFormatter(logging.Formatter):
    """`2026-11-25T21:03:04.123Z INFO node=0xAbCd… message` — grep-able, one event per line."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = f"{ts} {record.levelname:<7} node={self.node} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(address: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter(address[:10]))
    root = logging.getLogger("verinfer")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def run_node(opts: NodeOptions) -> None:
    """Run the worker until SIGTERM/SIGINT. Prints one JSON line (address, status port, pid) once listening."""
    opts.check()
    manifest = Manifest.load(opts.manifest)
    account = unlock(opts.key, opts.password_file)
    state_dir = opts.state_dir or verinfer_home() / "nodes" / opts.key
    state_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(account.address, opts.log_level)
    store = open_store(ipfs_api=opts.ipfs_api)
    chain = NodeChain.connect(opts.rpc_url or manifest.rpc_url, manifest, account)
    state = NodeState(state_dir / "node.db")
    metrics = NodeMetrics()
    cfg = WorkerConfig(
        state_dir=state_dir, poll_interval=opts.poll_interval, fault=opts.fault, auto_withdraw=opts.auto_withdraw,
        withdraw_threshold_wei=opts.withdraw_threshold_wei, fetch_timeout_s=opts.fetch_timeout, prove=opts.prove,
        prover_setup=opts.prover_setup, provers=opts.provers, parallel=opts.parallel, start_block=opts.start_block,
        block_time_s=opts.block_time,
    )
    # LLM requests run through stage nodes (verinfer.node.lmstage); every other model as before
    head = lmstage.LlmHead(chain, state_dir, replicas=opts.lm_replicas, timeout_s=opts.lm_stage_timeout,
                           disputes=opts.lm_disputes)
    stage = lmstage.start_stage(chain, store, opts.stage, opts.stage_fault) if opts.stage else None
    head.local_stage = stage  # a stage check on this node's own range re-runs on the layers it already holds
    worker = Worker(chain, store, state, cfg, metrics, compute_fn=head.compute)
    # apply each served model's registered execution profile; models this node would run differently are dropped
    guard = ProfileGuard(chain, worker.models, store, parse_method(opts.exec_method) if opts.exec_method else None,
                         opts.hardware_class, select=opts.selection_on())
    served = chain.served_models
    try:
        guard.check(served())
    except _DEFERRED as exc:  # the RPC may be down at start: checked on first use
        logging.getLogger("verinfer.node").warning("start-up profile check deferred: %s", str(exc).splitlines()[0])
    chain.served_models = guard.wrap(served)  # type: ignore[method-assign]
    try:
        server = StatusServer(metrics, lambda: {**worker.health(), "profiles": guard.health(), **head.health(stage)},
                              opts.metrics_port).start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{opts.metrics_port}: {exc.strerror}") from None
    info = {
        "address": account.address,
        "metrics_port": server.port,
        "health": f"http://127.0.0.1:{server.port}/health",
        "metrics": f"http://127.0.0.1:{server.port}/metrics",
        "state_dir": str(state_dir),
        "pid": os.getpid(),
        "fault": opts.fault,
        "stage": stage.describe() if stage else None,
    }
    tmp = state_dir / "node.json.tmp"
    tmp.write_text(json.dumps(info) + "\n")
    tmp.replace(state_dir / "node.json")  # atomic: watchers never read half a file
    print(json.dumps(info), flush=True)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    sampler = StackSampler(os.environ["VERINFER_NODE_SAMPLE"] + f".{account.address[:10]}").start() \
        if os.environ.get("VERINFER_NODE_SAMPLE") else None
    try:
        worker.run()
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()
        if stage is not None:
            stage.close()
        state.close()
