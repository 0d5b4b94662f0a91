"""`python -m verinfer.node --key NAME …`: the node daemon's own entry point (no CLI framework involved)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verinfer.amounts import AmountError, parse_amount
from verinfer.errors import VerinferError
from verinfer.node.daemon import NodeOptions, run_node


def _ether(text: str) -> int:
    try:
        return parse_amount(text, "--withdraw-threshold")
    except AmountError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse(argv: list[str]) -> NodeOptions:
    p = argparse.ArgumentParser(prog="python -m verinfer.node", description="verinfer worker node daemon (docs/node.md)")
    p.add_argument("--key", required=True, help="keystore name under $VERINFER_HOME/keys/")
    p.add_argument("--rpc-url", default=None, help="JSON-RPC endpoint (default: the manifest's rpc_url)")
    p.add_argument("--manifest", type=Path, default=None, help="deployment manifest (default: $VERINFER_MANIFEST)")
    p.add_argument("--state-dir", type=Path, default=None, help="default: $VERINFER_HOME/nodes/<key>")
    p.add_argument("--metrics-port", type=int, default=0, help="/health and /metrics port on 127.0.0.1 (0 = any)")
    p.add_argument("--poll-interval", type=float, default=0.25, help="seconds between scheduler/discovery passes")
    p.add_argument("--fault", default=None, help="TEST/DEMO ONLY: wrong-output | no-reveal | crash-after-commit")
    p.add_argument("--password-file", type=Path, default=None)
    p.add_argument("--ipfs-api", default=None, help="Kubo RPC URL (default: embedded store)")
    p.add_argument("--auto-withdraw", action="store_true")
    p.add_argument("--withdraw-threshold", type=_ether, default=10**16, help="ether (default 0.01)")
    p.add_argument("--fetch-timeout", type=float, default=8.0, help="max seconds for an input fetch (also bounded by the commit window)")
    p.add_argument("--start-block", type=int, default=None)
    p.add_argument("--no-prove", dest="prove", action="store_false", help="do not post Groth16 proofs")
    p.add_argument("--prover-setup", default="auto", help="auto | shipped | ceremony | dev")
    p.add_argument("--provers", type=int, default=1, help="proving threads (separate from request handling)")
    p.add_argument("--parallel", type=int, default=64, help="requests handled concurrently")
    p.add_argument("--block-time", type=float, default=None, help="seconds per block (default: measured)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--exec-method", default=None, help="METHOD[:THREADS[:BATCH]] to run (default: the reference run)")
    p.add_argument("--hardware-class", default=None, help="hardware class for the MetaInf selection (default: this CPU's)")
    p.add_argument("--metainf-select", action=argparse.BooleanOptionalAction, default=None,
                   help="compute and run the node's own MetaInf selection (default: on, or $VERINFER_NODE_METAINF_SELECT)")
    p.add_argument("--stage", default=None, help="MODEL:LO:HI: serve this registered LLM layer range on the registered tcp:// endpoint")
    p.add_argument("--stage-fault", default=None, help="TEST/DEMO ONLY: misbehaving stage, KIND[:N] (lie | swap | garbage | stall | die)")
    p.add_argument("--lm-replicas", type=int, default=2, help="LLM head: stage endpoints compared per step (default 2)")
    p.add_argument("--lm-stage-timeout", type=float, default=20.0, help="LLM head: seconds per stage call before failover")
    p.add_argument("--no-lm-disputes", dest="lm_disputes", action="store_false",
                   help="LLM head: do not open StageCourt disputes against stages caught lying (default: dispute)")
    a = p.parse_args(argv)
    return NodeOptions(
        key=a.key, rpc_url=a.rpc_url, manifest=a.manifest, state_dir=a.state_dir, metrics_port=a.metrics_port,
        poll_interval=a.poll_interval, fault=a.fault, password_file=a.password_file, ipfs_api=a.ipfs_api,
        auto_withdraw=a.auto_withdraw, withdraw_threshold_wei=a.withdraw_threshold, fetch_timeout=a.fetch_timeout,
        start_block=a.start_block, prove=a.prove, prover_setup=a.prover_setup, provers=a.provers, parallel=a.parallel,
        block_time=a.block_time, log_level=a.log_level, exec_method=a.exec_method, hardware_class=a.hardware_class,
        stage=a.stage, stage_fault=a.stage_fault, lm_replicas=a.lm_replicas, lm_stage_timeout=a.lm_stage_timeout,
        metainf_select=a.metainf_select,
        lm_disputes=a.lm_disputes,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    try:
        run_node(opts)
    except VerinferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
