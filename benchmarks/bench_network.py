#!/usr/bin/env python3
"""Network benchmark on a real local network (anvil + 3 `verinfer node run` processes).

Measures, side by side in one run on one chain:
  * request → finalized latency, in blocks and seconds (median, p95), for committees of 1 and of 3
    (requests alternate between the two sizes so both see the same load);
  * sustained throughput: a burst of requests from several requesters, settled requests per minute;
  * gas per lifecycle step: request, commit, reveal, finalize, submitProof, withdraw (from receipts).

    python benchmarks/bench_network.py                  # ~3-4 minutes on 2 cores
    python benchmarks/bench_network.py --requests 5 --burst 12 --no-proof
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.table import Table

from verinfer.client.inputs import digits_sample
from verinfer.devnet.network import LocalNetwork

FEE = 10**16


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 10 samples is the largest but one... honest for small n)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def latency_runs(net: LocalNetwork, n: int, window: int, console: Console) -> dict[int, dict[str, list[float]]]:
    """Sequential requests alternating committee 1 (quorum 1) and 3 (quorum 2); one requester."""
    c = net.client(1, poll_interval=0.05)
    out: dict[int, dict[str, list[float]]] = {1: {"blocks": [], "seconds": []}, 3: {"blocks": [], "seconds": []}}
    for i in range(2 * n):
        k = 1 if i % 2 == 0 else 3
        vec, _ = digits_sample(i % 10)
        t0 = time.monotonic()
        rid = c.submit(net.model_id, vec, FEE, replicas=k, quorum=1 if k == 1 else 2,
                       commit_blocks=window, reveal_blocks=window)
        res = c.wait(rid, timeout=120)
        dt = time.monotonic() - t0
        if res.status != "Accepted" or res.finalized_block is None:
            raise SystemExit(f"request {rid} (committee {k}) ended {res.status}")
        out[k]["blocks"].append(res.finalized_block - res.created_block)
        out[k]["seconds"].append(dt)
        console.print(f"  committee {k}: request {rid} finalized after {res.finalized_block - res.created_block} blocks, {dt:.2f}s")
    return out


def burst(net: LocalNetwork, total: int, window: int, requesters: list[int]) -> tuple[float, list[Any]]:
    """`total` requests submitted at once by several requester threads; seconds until all settled."""
    per = [total // len(requesters) + (1 if i < total % len(requesters) else 0) for i in range(len(requesters))]
    results: list[Any] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(requesters))

    def run(acct: int, count: int) -> None:
        try:
            c = net.client(acct, poll_interval=0.1)
            start.wait()
            ids = [c.submit(net.model_id, digits_sample((acct + j) % 10)[0], FEE, commit_blocks=window,
                            reveal_blocks=window) for j in range(count)]
            for rid in ids:
                r = c.wait(rid, timeout=600)
                with lock:
                    results.append(r)
        except Exception as exc:
            errors.append(f"account {acct}: {exc!r}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(a, n)) for a, n in zip(requesters, per)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("; ".join(errors))
    return time.monotonic() - t0, results


def withdraw_gas(net: LocalNetwork) -> list[int]:
    """Each node withdraws its earnings through `verinfer operator withdraw`; gas from the receipts."""
    c = net.client(0)
    gas = []
    for node in net.nodes:
        out = net.cli("operator", "withdraw", "--what", "earnings", "--key", node.name, "--rpc-url", net.rpc_url).stdout
        tx = out.split("(tx ")[1].split(")")[0]
        gas.append(int(c.w3.eth.get_transaction_receipt(tx)["gasUsed"]))
    return gas


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10, help="sequential requests per committee size")
    ap.add_argument("--burst", type=int, default=30, help="requests in the throughput burst")
    ap.add_argument("--block-time", type=float, default=0.5, help="devnet seconds per block")
    ap.add_argument("--window", type=int, default=40, help="commit and reveal windows (blocks) for the latency runs")
    ap.add_argument("--burst-window", type=int, default=200,
                    help="windows for the burst: wide enough that nodes working through a backlog miss nothing")
    ap.add_argument("--proof", action=argparse.BooleanOptionalAction, default=True,
                    help="publish with a Groth16 verifier so nodes post proofs (measures submitProof gas)")
    ap.add_argument("--json", action="store_true", help="also print the raw numbers as JSON")
    args = ap.parse_args()
    console = Console()
    console.rule("verinfer network benchmark")
    with LocalNetwork(block_time=args.block_time, proof=args.proof,
                      log=lambda m: console.print(f"[green]✓[/] {m}")) as net:
        console.print(f"latency: {args.requests} sequential requests per committee size, alternating")
        lat = latency_runs(net, args.requests, args.window, console)
        console.print(f"throughput: burst of {args.burst} requests from 5 requesters (committee 3, quorum 2)")
        elapsed, results = burst(net, args.burst, args.burst_window, [3, 4, 5, 6, 7])
        settled = [r for r in results if r.final]
        accepted = [r for r in results if r.status == "Accepted"]
        statuses: dict[str, int] = {}
        for r in results:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        console.print(f"  burst outcomes: {statuses}")
        if net.proof_mode:  # give the nodes' provers a moment to post the last proofs
            c = net.client(0)
            for r in accepted[-3:]:
                c.wait(r.request_id, timeout=120, until="proven")
            results = [c.result(r.request_id) for r in results]
        gas: dict[str, list[int]] = {}
        for r in results:
            for step, vals in r.gas.items():
                gas.setdefault(step, []).extend(vals)
        gas["withdraw"] = withdraw_gas(net)

    t = Table(title="request → finalized latency")
    for col in ("committee", "n", "blocks median", "blocks p95", "seconds median", "seconds p95"):
        t.add_column(col, justify="right")
    for k in (1, 3):
        b, s = lat[k]["blocks"], lat[k]["seconds"]
        t.add_row(f"{k} (quorum {1 if k == 1 else 2})", str(len(b)), f"{statistics.median(b):g}", f"{pct(b, 95):g}",
                  f"{statistics.median(s):.2f}", f"{pct(s, 95):.2f}")
    console.print(t)
    tp = Table(title="sustained throughput (committee 3, quorum 2)")
    for col in ("requests", "settled", "accepted", "wall s", "accepted / min"):
        tp.add_column(col, justify="right")
    tp.add_row(str(args.burst), str(len(settled)), str(len(accepted)), f"{elapsed:.1f}", f"{len(accepted) / elapsed * 60:.0f}")
    console.print(tp)
    tg = Table(title="gas per lifecycle step (from receipts)")
    for col in ("step", "n", "median", "min", "max"):
        tg.add_column(col, justify="right")
    for step in ("request", "commit", "reveal", "finalize", "submitProof", "withdraw"):
        v = gas.get(step, [])
        tg.add_row(step, str(len(v)), f"{int(statistics.median(v)):,}" if v else "—",
                   f"{min(v):,}" if v else "—", f"{max(v):,}" if v else "—")
    console.print(tg)
    console.print(f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
                  f"python {platform.python_version()}, {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}; block time {args.block_time}s; "
                  f"proof mode {'public' if args.proof else 'none'}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    if args.json:
        print(json.dumps({"latency": lat, "throughput": {"requests": args.burst, "settled": len(settled),
                                                         "seconds": elapsed}, "gas": gas}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
