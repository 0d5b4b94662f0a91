"""`verinfer node …`: run the worker daemon and inspect its local state.

`verinfer node run` and `python -m verinfer.node` (what the devnet module starts) take the same
flags and both call `verinfer.node.daemon.run_node` (documented in docs/node.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from verinfer.amounts import AmountError, parse_amount
from verinfer.errors import ConfigError

app = typer.Typer(help="Run a worker node (watch → infer → commit → reveal → prove → finalize).", no_args_is_help=True)


def _eth(value: str, what: str) -> int:
    try:
        return parse_amount(value, what)
    except AmountError as exc:
        raise ConfigError(str(exc)) from None


@app.command("run")
def run(
    key: str = typer.Option(..., "--key", help="Keystore name under $VERINFER_HOME/keys/."),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL",
                                          help="JSON-RPC endpoint (default: the manifest's rpc_url)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST", help="Deployment manifest."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="Default: $VERINFER_HOME/nodes/<key>."),
    metrics_port: int = typer.Option(0, "--metrics-port", help="Port for /health and /metrics on 127.0.0.1 (0 = any free)."),
    poll_interval: float = typer.Option(0.25, "--poll-interval", help="Seconds between scheduler/discovery passes."),
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
    parallel: int = typer.Option(64, "--parallel", help="Requests handled concurrently (each with its own budget)."),
    provers: int = typer.Option(1, "--provers", help="Proving threads (separate from commits and reveals)."),
    block_time: Optional[float] = typer.Option(None, "--block-time", help="Seconds per block (default: measured)."),
    log_level: str = typer.Option("info", "--log-level", help="debug | info | warning."),
    exec_method: Optional[str] = typer.Option(
        None, "--exec-method", help="METHOD[:THREADS[:BATCH]] to run; a model whose registered profile it would change is refused."
    ),
    hardware_class: Optional[str] = typer.Option(None, "--hardware-class", help="For the MetaInf selection (default: this CPU's)."),
    stage: Optional[str] = typer.Option(
        None, "--stage", "--shard", help="MODEL:LO:HI — serve this registered LLM layer range on the node's registered tcp://HOST:PORT endpoint."
    ),
    stage_fault: Optional[str] = typer.Option(None, "--stage-fault", help="TEST/DEMO ONLY misbehaving stage: KIND[:N] (lie, swap, garbage, stall, die)."),
    lm_replicas: int = typer.Option(2, "--lm-replicas", help="As an LLM committee head: stage endpoints compared bit for bit per step."),
    lm_stage_timeout: float = typer.Option(20.0, "--lm-stage-timeout", help="As an LLM committee head: seconds per stage call before failover."),
    lm_disputes: bool = typer.Option(True, "--lm-disputes/--no-lm-disputes",
                                     help="As an LLM committee head: dispute a stage caught signing a wrong answer in the StageCourt "
                                          "(bond + jury fee from this account)."),
) -> None:
    """Run the worker until SIGTERM/SIGINT (same as `python -m verinfer.node`). Prints one JSON line on start."""
    from verinfer.node.daemon import NodeOptions, run_node

    run_node(NodeOptions(
        key=key, rpc_url=rpc_url, manifest=manifest, state_dir=state_dir, metrics_port=metrics_port,
        poll_interval=poll_interval, fault=fault, password_file=password_file, ipfs_api=ipfs_api,
        auto_withdraw=auto_withdraw, withdraw_threshold_wei=_eth(withdraw_threshold, "--withdraw-threshold"),
        fetch_timeout=fetch_timeout, start_block=start_block, prove=prove, prover_setup=prover_setup, provers=provers,
        parallel=parallel, block_time=block_time, log_level=log_level, exec_method=exec_method,
        hardware_class=hardware_class, stage=stage, stage_fault=stage_fault, lm_replicas=lm_replicas,
        lm_stage_timeout=lm_stage_timeout, lm_disputes=lm_disputes,
    ))


@app.command("bench")
def bench_cmd(
    model_ref: str = typer.Option(..., "--model", help="built-in name, spec file, weights CID, or registered 0x model id"),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL", help="For a 0x model id."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST", help="Deployment manifest."),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", envvar="VERINFER_IPFS_API", help="Kubo RPC URL."),
    exec_method: Optional[str] = typer.Option(None, "--exec-method", help="METHOD[:THREADS[:BATCH]] the node would run."),
    threads: int = typer.Option(1, "--threads", help="Intra-op threads of the workload."),
    batch: int = typer.Option(1, "--batch", help="Batch size of the workload."),
    hardware_class: Optional[str] = typer.Option(None, "--hardware-class", help="Default: this CPU's."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What this node would run for a model under its registered profile, and why (MetaInf, docs/metainf.md)."""
    from rich.console import Console
    from rich.table import Table

    from verinfer.node.profile import bench_model, parse_method

    if threads < 1 or batch < 1:
        raise ConfigError("--threads and --batch must be >= 1")
    rep = bench_model(model_ref, rpc_url=rpc_url, manifest=manifest, ipfs_api=ipfs_api,
                      run=parse_method(exec_method) if exec_method else None, threads=threads, batch=batch,
                      hardware_class=hardware_class)
    plan = rep.plan
    profile_hash = "0x" + rep.registered_hash.hex()
    doc = {"profile_hash": profile_hash, "profile": rep.profile,
           "run": plan.candidate.method if plan else None, "local_choice": bool(plan and plan.local),
           "notice": plan.notice if plan else None, "refused": rep.refused, "candidates": rep.rows}
    if as_json:
        print(json.dumps(doc, indent=2, default=str))
        return
    table = Table(title=f"execution methods (registered profile {profile_hash[:18]}…)")
    for col in ("method", "predicted / torch_fp32", "output-preserving", "who chooses", "why"):
        table.add_column(col)
    for r in rep.rows:
        ratio = r["predicted_ratio"]
        table.add_row(r["method"], "-" if ratio != ratio else f"{ratio:.3f}", "yes" if r["preserving"] else "no",
                      r["scope"], r["reason"] or "")
    out = Console(width=160)
    out.print(table)
    print(f"node would run: {doc['run']} ({'its own output-preserving choice' if doc['local_choice'] else 'the registered profile'})")
    if doc["notice"]:
        print(f"notice: {doc['notice']}")
    if rep.refused:
        print(f"refused: {rep.refused}")


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
        cursor = st.load("market-v2")
    finally:
        st.close()
    if as_json:
        print(json.dumps({"cursor": cursor, "requests": [
            {"request_id": r.request_id, "phase": r.phase.value, "output_hash": r.output_hash_hex or None,
             "output_cid": r.output_cid, "invalid_reason": r.invalid_reason, "txs": r.txs, "proof": r.proof or None,
             "last_error": r.last_error} for r in recs]}, indent=2))
        return
    table = Table(title=f"node state {db} (next block {cursor})")
    for col in ("request", "phase", "output hash", "output cid", "txs", "last error"):
        table.add_column(col)
    for r in recs:
        table.add_row(
            str(r.request_id), r.phase.value, r.output_hash_hex[:18], r.output_cid or "",
            ", ".join(sorted(r.txs)), (r.last_error or "")[:60],
        )
    Console().print(table)
