#!/usr/bin/env python3
"""A dApp contract requests inference: ExampleConsumer.ask → nodes serve it → the market's callback
stores the result in ExampleConsumer.results[requestId], which this script prints.

    python scripts/consumer_demo.py                     # brings up its own devnet + 3 nodes, then tears down
    python scripts/consumer_demo.py --manifest .verinfer/devnet/manifest.json --dev-account 1 --sample 3
                                                        # against a running network (`verinfer devnet up` + nodes)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from verinfer.constants import ETHER
from verinfer.errors import VerinferError


def run(client, model: str, sample: int, fee: int, console: Console) -> int:  # noqa: ANN001
    """Ask through the consumer contract, wait for settlement, print what the contract received."""
    from verinfer.chain.types import RequestStatus
    from verinfer.client.consumer import ExampleConsumerApp
    from verinfer.client.inputs import digits_sample
    from verinfer.client.render import RequestProgress, hex32

    app = ExampleConsumerApp(client)
    vec, label = digits_sample(sample)
    rid = app.ask(model, vec, fee, replicas=3, quorum=2, commit_blocks=12, reveal_blocks=12)
    console.print(f"ExampleConsumer {app.address} called ask(): request [bold]{rid}[/] "
                  f"(digits-sample:{sample}, true label {label}); the consumer contract is the requester")
    with RequestProgress(console) as progress:
        progress.add(rid, f"request {rid}")
        res = client.wait(rid, timeout=120, progress=progress.update)
    cb = app.wait_callback(rid)
    t = Table(title=f"ExampleConsumer.results({rid}) — written by the market's callback")
    t.add_column("field")
    t.add_column("value")
    t.add_row("received", str(cb.received))
    t.add_row("status", cb.status.label)
    t.add_row("outputHash", hex32(cb.output_hash))
    t.add_row("outputCid (from the market's events; the consumer stores no CID)", res.output_cid or "—")
    t.add_row("prediction (output fetched by CID, re-hashed)", "—" if res.prediction is None else str(res.prediction))
    t.add_row("true label", str(label))
    t.add_row("matches settled request", str(cb.output_hash == (res.output_hash or 0)))
    console.print(t)
    return 0 if cb.received and cb.status == RequestStatus.ACCEPTED else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, help="use a running deployment (default: start a fresh local network)")
    ap.add_argument("--rpc-url", help="RPC URL (default: the manifest's)")
    ap.add_argument("--dev-account", type=int, default=1, help="anvil dev account that calls ask() (devnet only)")
    ap.add_argument("--model", default="digits-mlp", help="model name or 0x id")
    ap.add_argument("--sample", type=int, default=0, help="held-out digits sample index")
    ap.add_argument("--fee", type=float, default=0.01, help="fee in ether")
    args = ap.parse_args()
    console = Console()
    fee = int(args.fee * ETHER)
    try:
        if args.manifest is not None:
            from verinfer.commands.request import open_client

            client = open_client(args.rpc_url, args.manifest, None, None, args.dev_account)
            return run(client, args.model, args.sample, fee, console)
        from verinfer.devnet.network import LocalNetwork

        with LocalNetwork(log=lambda m: console.print(f"[green]✓[/] {m}"), proof=False) as net:
            assert net.model_id is not None
            return run(net.client(args.dev_account), net.model_id, args.sample, fee, console)
    except VerinferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
