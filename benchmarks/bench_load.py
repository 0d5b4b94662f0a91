#!/usr/bin/env python3
"""Load benchmark (issue 7 attack 13): a burst of requests to a 3-node devnet with proofs on.

    python benchmarks/bench_load.py                       # 200 requests within ~10 s (issue 7 target)
    python benchmarks/bench_load.py --requests 40 --spread 5
    python benchmarks/bench_load.py --markdown docs/benchmarks-network.md   # also write the table

Setup: fresh anvil (0.5 s blocks), protocol V2 devnet defaults, digits-mlp published with proof mode
public (Groth16 verifier deployed before registerModel), 3 `python -m verinfer.node` processes with
capacity 64, the SDK's default windows for this chain (`Client.params`: 15 s of blocks, at least 10; 30 at
0.5 s blocks) unless --commit-blocks / --reveal-blocks are given; proof window 20 blocks.
Requests are spread evenly over `--spread` seconds from 4 requester accounts. Then the script waits
until every request settled (or `--timeout`), and reports: settled / Accepted / InvalidInput /
NoQuorum / Expired, penalties by reason (no-show, dissent), p50/p95 request→settled latency,
accepted per minute (first submission → last settlement), proofs verified, and whether the
network still accepts a request afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from verinfer.chain.errors import ContractError  # noqa: E402
from verinfer.chain.protocol import FINAL_STATUSES, Status  # noqa: E402
from verinfer.devnet.network import LocalNetwork  # noqa: E402
from verinfer.devnet.samples import sample_input  # noqa: E402
from verinfer.models.hashing import hash_vector  # noqa: E402
from verinfer.models.tensor import encode_tensor  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_startup_work(nodes: list[Any], timeout: float = 180.0) -> list[float]:
    """Wait until every node finished its one-time start-up work; returns each node's CPU seconds so far.

    A node picks its MetaInf execution method in the background after it starts listening (training the
    selector: ~6 CPU-s per node on the 2-core box, node/profile.py). Started next to the burst it competed
    with the requests and was counted in the burst's CPU; the load benchmark measures steady-state serving.
    """
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            done = all(p.get("selected") is not None or p.get("selection_note") is not None
                       for n in nodes for p in n.health().get("profiles", []) if p.get("serving"))
        except Exception:  # noqa: BLE001 - a node busy with start-up may miss the 3 s health timeout: ask again
            done = False
        if done:
            break
        time.sleep(0.5)
    return [cpu_seconds(n.proc.pid) for n in nodes]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--spread", type=float, default=10.0, help="seconds over which requests are submitted")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--block-time", type=float, default=0.5)
    ap.add_argument("--capacity", type=int, default=64)
    ap.add_argument("--no-proof", action="store_true")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--markdown", type=Path, default=None, help="append the result table to this markdown file")
    ap.add_argument("--root", type=Path, default=None,
                    help="keep the devnet here (node logs <root>/<operator>.log); default: a temp dir, removed")
    ap.add_argument("--commit-blocks", type=int, default=None, help="default: the SDK's default for this chain")
    ap.add_argument("--reveal-blocks", type=int, default=None, help="default: the SDK's default for this chain")
    ap.add_argument("--queue-blocks", type=int, default=None,
                    help="queue for seats (RequestParams.queueBlocks); default: the SDK's; 0 = no queue (before the queue)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="sample every node thread's CPU by call site into DIR/node-<pid>.txt "
                         "(benchmarks/nodeprof/sitecustomize.py)")
    args = ap.parse_args()
    if args.root is not None and args.root.exists() and any(args.root.iterdir()):
        ap.error(f"--root {args.root} is not empty: a run needs a fresh directory (its nodes would refuse the old state)")
    console = Console()
    if args.profile is not None:  # the nodes inherit this environment (devnet.processes.launch_node)
        args.profile.mkdir(parents=True, exist_ok=True)
        os.environ["VERINFER_NODE_CPU_PROFILE"] = str(args.profile.resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "benchmarks" / "nodeprof"), *filter(None, [os.environ.get("PYTHONPATH")])])

    with LocalNetwork(args.root, n_nodes=args.nodes, block_time=args.block_time, proof=not args.no_proof, capacity=args.capacity,
                      log=lambda m: console.print(f"[dim]{m}[/dim]")) as net:
        assert net.model is not None
        model_id = net.model.model_id
        # the SDK's default windows on this chain (Client.params), unless given
        params = net.client(1).params(3, 2, args.commit_blocks, args.reveal_blocks, queue_blocks=args.queue_blocks)
        console.print(f"windows: commit {params.commit_blocks}, reveal {params.reveal_blocks}, "
                      f"queue {params.queue_blocks} blocks")
        requesters = [net.protocol(i) for i in (1, 2, 3, 4)]
        for r in requesters:  # the load generator must not eat the nodes' CPU polling receipts every 50 ms
            assert r.sender is not None
            r.sender.poll_interval = 0.25
        reader = net.protocol()
        stakes0 = [reader.nodes.stake_of(a.address) for a in net.operator_accounts]
        store = net.store()
        items = []
        for i in range(args.requests):
            x = sample_input(i)
            items.append((store.add(encode_tensor(x, "int8", [64])), hash_vector(x, 8)))
        fee = reader.market.quote(model_id, params)[0]
        start_block = reader.block_number()
        console.print(f"submitting {args.requests} requests over {args.spread:g}s "
                      f"({args.nodes} nodes, proofs {'off' if args.no_proof else 'on'}, capacity {args.capacity})")
        startup_cpu = wait_for_startup_work(net.nodes)
        console.print(f"node start-up work done (CPU s each: {', '.join(f'{c:.1f}' for c in startup_cpu)})")
        cpu0 = [cpu_seconds(n.proc.pid) for n in net.nodes]
        if args.profile is not None:
            (args.profile / "mark").touch()  # the nodes' samplers count RPCs from here
        anvil_pid = next((p for p in net.pids() if p not in {n.proc.pid for n in net.nodes}), 0)
        anvil_cpu0 = cpu_seconds(anvil_pid) if anvil_pid else 0.0
        bench_cpu0 = time.process_time()
        t0 = time.time()
        sent_at: dict[int, float] = {}
        created: dict[int, int] = {}

        def submit(i: int) -> int:
            delay = t0 + args.spread * i / max(1, args.requests) - time.time()
            if delay > 0:
                time.sleep(delay)
            p = requesters[i % len(requesters)]
            t = time.time()
            receipt, rid = p.market.request_inference(model_id, items[i][0], items[i][1], params, fee)
            sent_at[rid] = t
            created[rid] = int(receipt["blockNumber"])
            return rid

        with ThreadPoolExecutor(max_workers=32) as pool:
            rids = list(pool.map(submit, range(args.requests)))
        submit_s = time.time() - t0
        console.print(f"submitted in {submit_s:.1f}s; waiting for settlement…")

        settled_at: dict[int, float] = {}
        final: dict[int, Any] = {}
        deadline = time.time() + args.timeout
        finalizer = requesters[0]
        proof_blocks = reader.market.proof_blocks()
        pending = set(rids)
        cursor = start_block
        tried: dict[int, int] = {}
        # follow Finalized events (one eth_getLogs per pass) instead of reading 200 requests every half second
        while pending and time.time() < deadline:
            head = reader.block_number()
            for e in reader.events("Finalized", from_block=cursor, to_block=head):
                rid = int(e.args["requestId"])
                if rid in pending:
                    pending.discard(rid)
                    settled_at[rid] = time.time()
            cursor = head + 1
            for rid in sorted(pending):
                # what the SDK's `wait` does: a request nobody settles is finalized by the requester (never drawn →
                # Expired, full refund; nodes finalize everything else themselves); at most once every 4 blocks
                c = created[rid]
                if head > c + 1 + params.commit_blocks + params.reveal_blocks + proof_blocks + 2 or \
                        (head > c + 1 + params.commit_blocks and tried.get(rid, 0) == 0):
                    if head - tried.get(rid, -100) < 4:
                        continue
                    tried[rid] = head
                    try:
                        finalizer.market.finalize(rid)
                    except ContractError:
                        pass
            time.sleep(0.5)
        for rid in rids:
            if rid not in pending:
                final[rid] = reader.market.get_request(rid)
        end = time.time()

        counts = {s.name: 0 for s in (Status.ACCEPTED, Status.INVALID_INPUT, Status.NO_QUORUM, Status.EXPIRED)}
        proven = 0
        for r in final.values():
            counts[r.status.name] = counts.get(r.status.name, 0) + 1
            proven += bool(r.proven)
        penalties: dict[str, int] = {"no-show": 0, "dissent": 0}
        slashed_wei = 0
        for e in reader.events("NodePenalized", from_block=start_block):
            rid, node = int(e.args["requestId"]), e.args["node"]
            slashed_wei += int(e.args["slashed"])
            reveal = reader.market.get_reveal(rid, node)
            penalties["dissent" if reveal.revealed else "no-show"] += 1
        # where the time goes: blocks from the request to each member's commit and reveal (chain events)
        lags: dict[str, list[float]] = {"Committed": [], "Revealed": []}
        for e in reader.events("Committed", from_block=start_block):
            rid = int(e.args["requestId"])
            if rid in created:
                lags["Committed"].append(float(e.block_number - created[rid]))
        for e in reader.events("Revealed", from_block=start_block):
            rid = int(e.args["requestId"])
            if rid in created:
                lags["Revealed"].append(float(e.block_number - created[rid]))
        # latency from the chain itself (request block → Finalized block timestamps), not from this loop's polling
        fin_block = {int(e.args["requestId"]): e.block_number for e in reader.events("Finalized", from_block=start_block)}
        ts: dict[int, int] = {}

        def stamp(n: int) -> int:
            if n not in ts:
                ts[n] = int(reader.w3.eth.get_block(n)["timestamp"])
            return ts[n]

        latencies = [float(stamp(fin_block[rid]) - stamp(r.created_block)) for rid, r in final.items() if rid in fin_block]
        accepted_lat = [float(stamp(fin_block[rid]) - stamp(r.created_block)) for rid, r in final.items()
                        if rid in fin_block and r.status == Status.ACCEPTED]
        accepted = counts["ACCEPTED"]
        last_fin = max(fin_block.values(), default=start_block)
        span_min = (stamp(last_fin) - stamp(start_block)) / 60 if fin_block else float("nan")
        stakes1 = [reader.nodes.stake_of(a.address) for a in net.operator_accounts]
        node_cpu = [cpu_seconds(n.proc.pid) - c for n, c in zip(net.nodes, cpu0, strict=True)]
        # proofs each node computed (the proving policy: one prover per unanimous request) vs proofs that landed
        computed = [int(n.metrics().get("verinfer_node_proof_seconds_count", 0)) for n in net.nodes]
        landed = len([e for e in reader.events("ProofVerified", from_block=start_block)
                      if int(e.args["requestId"]) in created])
        anvil_cpu = cpu_seconds(anvil_pid) - anvil_cpu0 if anvil_pid else 0.0
        bench_cpu = time.process_time() - bench_cpu0

        # does the network still accept work?
        x = sample_input(999)
        _, after = requesters[0].market.request_inference(model_id, store.add(encode_tensor(x, "int8", [64])),
                                                         hash_vector(x, 8), params, fee)
        t_after = time.time()
        while time.time() - t_after < 120:
            ra = reader.market.get_request(after)
            if ra.status in FINAL_STATUSES:
                break
            time.sleep(0.5)
        still = ra.status.name

    rows = [
        ("requests submitted", f"{args.requests} in {submit_s:.1f} s"),
        ("settled", f"{len(final)}/{args.requests}"),
        ("Accepted", str(accepted)),
        ("  of which proven on-chain", str(proven)),
        ("InvalidInput", str(counts["INVALID_INPUT"])),
        ("NoQuorum", str(counts["NO_QUORUM"])),
        ("Expired (never drawn, refunded)", str(counts["EXPIRED"])),
        ("penalties: no-show", str(penalties["no-show"])),
        ("penalties: dissent", str(penalties["dissent"])),
        ("honest stake lost", f"{(sum(stakes0) - sum(stakes1)) / 1e18:g} ETH"),
        ("latency p50, request → Finalized block (all)", f"{statistics.median(latencies):.0f} s" if latencies else "-"),
        ("latency p95 (all)", f"{pct(latencies, 95):.0f} s" if latencies else "-"),
        ("latency p50 / p95 (Accepted only)",
         f"{statistics.median(accepted_lat):.0f} / {pct(accepted_lat, 95):.0f} s" if accepted_lat else "-"),
        ("commits / reveals on-chain", f"{len(lags['Committed'])} / {len(lags['Revealed'])}"),
        ("commit lag p50 / p95 (blocks after the request)",
         f"{statistics.median(lags['Committed']):.0f} / {pct(lags['Committed'], 95):.0f}" if lags["Committed"] else "-"),
        ("reveal lag p50 / p95 (blocks after the request)",
         f"{statistics.median(lags['Revealed']):.0f} / {pct(lags['Revealed'], 95):.0f}" if lags["Revealed"] else "-"),
        ("accepted / min", f"{accepted / span_min:.0f}" if accepted else "0"),
        ("proofs computed by the nodes (each) / landed on-chain",
         f"{' + '.join(str(c) for c in computed)} = {sum(computed)} / {landed}"),
        ("CPU s during the run: nodes (each) / anvil / this script",
         f"{' + '.join(f'{c:.0f}' for c in node_cpu)} / {anvil_cpu:.0f} / {bench_cpu:.0f}"),
        ("node CPU s per settled request (all nodes)", f"{sum(node_cpu) / max(1, len(final)):.3f}"),
        ("node start-up CPU s before the burst (each, not counted above)", ' + '.join(f'{c:.1f}' for c in startup_cpu)),
        ("request after the burst", still),
        ("wall time (submit → last settled)", f"{end - t0:.0f} s"),
    ]
    t = Table(title=f"load: {args.requests} requests / {args.spread:g} s, {args.nodes} nodes, "
                    f"proofs {'off' if args.no_proof else 'on'}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    if args.markdown is not None:
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        machine = f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), Python {platform.python_version()}"
        md = [f"\n### Load: {args.requests} requests in {args.spread:g} s, {args.nodes} nodes, proofs "
              f"{'off' if args.no_proof else 'on'} — {when}\n",
              f"Machine: {machine}. Command: `python benchmarks/bench_load.py --requests {args.requests} --spread "
              f"{args.spread:g} --block-time {args.block_time:g} --capacity {args.capacity}"
              f"{' --no-proof' if args.no_proof else ''}`. Windows: commit "
              f"{params.commit_blocks}, reveal {params.reveal_blocks} blocks "
              f"({'SDK defaults' if args.commit_blocks is None else 'given'}), proof window {proof_blocks} blocks, "
              f"{args.block_time:g} s blocks, node capacity {args.capacity}. "
              f"Load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n",
              "| metric | value |", "|---|---:|"]
        md += [f"| {k} | {v} |" for k, v in rows]
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        with args.markdown.open("a") as f:
            f.write("\n".join(md) + "\n")
        console.print(f"appended to {args.markdown}")


if __name__ == "__main__":
    main()
