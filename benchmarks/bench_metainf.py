#!/usr/bin/env python3
"""MetaInf harness: measure the (model, workload, method, threads, batch) grid, write the raw table.

    nice -n 10 python benchmarks/bench_metainf.py                 # default grid -> benchmarks/data/metainf_raw.csv
    python benchmarks/bench_metainf.py --grid tiny --out /tmp/t.csv
    python benchmarks/bench_metainf.py --models digits-mlp,gpt-64x2

Per task, every method is built and warmed, then timed runs are interleaved round-robin (p50 over
--reps runs after warm-up), so ratios within a task survive a noisy shared machine. The table and
how it is used: docs/metainf.md. Evaluate with benchmarks/bench_metainf_eval.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from verinfer.metainf import harness, zoo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", choices=["default", "tiny"], default="default")
    ap.add_argument("--models", help="comma-separated subset of: " + ",".join(zoo.ZOO))
    ap.add_argument("--reps", type=int, help="timed runs per method (default 30; tiny 5)")
    ap.add_argument("--lm-threads", help="comma-separated thread counts for language models (default 1,2)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data" / "metainf_raw.csv")
    ap.add_argument("--nice", type=int, default=10, help="niceness increment for this process (shared machine)")
    args = ap.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    grid = harness.DEFAULT_GRID if args.grid == "default" else harness.TINY_GRID
    if args.models:
        unknown = [m for m in args.models.split(",") if m not in zoo.ZOO]
        if unknown:
            print(f"error: unknown model(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
        grid = dataclasses.replace(grid, models=tuple(args.models.split(",")))
    if args.lm_threads:
        grid = dataclasses.replace(grid, lm_threads=tuple(int(t) for t in args.lm_threads.split(",")))
    if args.reps:
        grid = dataclasses.replace(grid, reps=args.reps)
    warnings.filterwarnings("ignore")
    t0 = time.time()
    load0 = os.getloadavg()[0]
    log = lambda s: print(f"[{time.time() - t0:7.1f} s] {s}", file=sys.stderr, flush=True)  # noqa: E731
    n = harness.write_table(harness.run_grid(grid, log), args.out)
    print(f"{n} rows -> {args.out} in {time.time() - t0:.0f} s (load average {load0:.2f} -> {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
