"""Where a digits-MLP proof's time goes (issue 14 target: witness + prove <= 20 ms).

    python benchmarks/profile_prove.py [--repeats 21] [--json out.json]

1. The phases of `pipeline.prove_for_request` on the shipped digits zkey (the node's path), each
   timed alone (median wall and process-CPU milliseconds).
2. groth16py's `prove_wtns` alone on public-weight circuits of growing size (INSECURE dev keys on the
   direct r1cs), single-threaded and with the default pool (each in its own process, RAYON_NUM_THREADS),
   with a least-squares fit `cpu = fixed + per_constraint * n`, and again with a witness of zeros
   (wire 0 = 1): what is left then does not depend on the witness values (the H-polynomial MSM over
   the FFT domain, the FFTs, the proof's randomisers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROVER = "0x" + "cd" * 20


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of `fn`."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


def phases(repeats: int) -> dict[str, tuple[float, float]]:
    import groth16py

    from verinfer.models.spec import load_builtin
    from verinfer.prover import direct, pipeline
    from verinfer.prover.backends import Groth16pyBackend
    from verinfer.prover.spec import view
    from verinfer.prover.types import Proof
    from verinfer.prover.witness import circuit_inputs, public_signals

    spec = load_builtin("digits-mlp")
    sv = view(spec)
    arts = pipeline.prepare(spec, "public", setup="shipped")
    be = Groth16pyBackend()
    pk = be._pk(arts)
    x = [(i * 7) % 17 for i in range(64)]
    b = pipeline.request_binding(1, PROVER)
    vals = direct.witness_for(arts.compiled, x, b, sv)
    out: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        w = Path(d) / "w.wtns"
        direct.write_wtns(vals, w)
        blob = bytes(groth16py.prove_wtns(pk, str(w)))
        out["input checks (circuit_inputs)"] = _time(lambda: circuit_inputs(sv, "public", x, b), repeats)
        out["witness (direct, circom layout)"] = _time(lambda: direct.witness_for(arts.compiled, x, b, sv), repeats)
        out["write .wtns"] = _time(lambda: direct.write_wtns(vals, w), repeats)
        out["groth16py.prove_wtns"] = _time(lambda: groth16py.prove_wtns(pk, str(w)), repeats)
        out["public signals read back"] = _time(lambda: public_signals(arts.compiled, w), repeats)
        out["Proof.from_bytes"] = _time(lambda: Proof.from_bytes(blob, [1, 2, 3]), repeats)
        out["prove_for_request (all)"] = _time(
            lambda: pipeline.prove_for_request(arts, spec, x, 1, PROVER, be), repeats)
    return out


_SCALING_CHILD = r"""
import json, statistics, sys, time
from pathlib import Path
import groth16py
from verinfer.devnet.samples import random_spec
from verinfer.models.spec import load, load_builtin
from verinfer.prover import direct
from verinfer.prover.spec import view
repeats = int(sys.argv[1])
rows = []
for name, spec in [("random 4-3-2", load(random_spec(1, sizes=(4, 3, 2), name="p1"))),
                   ("random 16-8-4", load(random_spec(2, sizes=(16, 8, 4), name="p2"))),
                   ("digits-mlp", load_builtin("digits-mlp")), ("digits-cnn", load_builtin("digits-cnn")),
                   ("digits-mlp-large", load_builtin("digits-mlp-large"))]:
    sv = view(spec)
    dc = direct.generate_r1cs(sv, "public")
    pk, _ = direct.dev_setup(dc)
    vals, _ = direct.witness_values(sv, "public", [i % 5 for i in range(sv.input_len)], 7)
    w = Path(sys.argv[2]) / f"{name.replace(' ', '_')}.wtns"
    direct.write_wtns(vals, w)
    groth16py.prove_wtns(pk, str(w))
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        groth16py.prove_wtns(pk, str(w))
        walls.append(time.perf_counter() - w0); cpus.append(time.process_time() - c0)
    bits = sum(1 for v in vals if v in (0, 1))
    # the same key with a witness of zeros (wire 0 = 1): the witness-dependent MSMs (A, B, C) have nothing
    # to add, so what remains is the work that does not depend on the witness values
    z = Path(sys.argv[2]) / "zero.wtns"
    direct.write_wtns([1] + [0] * (len(vals) - 1), z)
    zc = []
    for _ in range(repeats):
        c0 = time.process_time()
        groth16py.prove_wtns(pk, str(z))
        zc.append(time.process_time() - c0)
    need = dc.n_constraints + len(dc.public_signal_names) + 1
    domain = 1 << (need - 1).bit_length()
    rows.append({"model": name, "constraints": dc.n_constraints, "wires": dc.n_wires, "bit_wires": bits,
                 "domain": domain, "wall_ms": statistics.median(walls) * 1e3, "cpu_ms": statistics.median(cpus) * 1e3,
                 "zero_witness_cpu_ms": statistics.median(zc) * 1e3})
print(json.dumps(rows))
"""


def scaling(repeats: int, threads: str | None) -> list[dict[str, Any]]:
    env = dict(os.environ)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = threads
    with tempfile.TemporaryDirectory() as d:
        res = subprocess.run([sys.executable, "-c", _SCALING_CHILD, str(repeats), d], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def fit(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Least squares `key = a + b * constraints` -> (a ms, b us per constraint)."""
    xs = [r["constraints"] for r in rows]
    ys = [r[key] for r in rows]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"profile_prove — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}; load avg {load:.1f}; median of {a.repeats}\n")
    ph = phases(a.repeats)
    print("| phase (digits-mlp public, shipped zkey) | wall ms | CPU ms |\n|---|---|---|")
    for k, (w, c) in ph.items():
        print(f"| {k} | {w:.2f} | {c:.2f} |")
    report: dict[str, Any] = {"load": load, "phases": ph, "scaling": {}}
    for label, threads in (("1 thread", "1"), ("default pool", None)):
        rows = scaling(a.repeats, threads)
        report["scaling"][label] = rows
        print(f"\ngroth16py.prove_wtns alone, {label} (RAYON_NUM_THREADS={threads or 'unset'})\n"
              "| circuit | constraints | wires | 0/1 wires | FFT domain | wall ms | CPU ms | CPU ms, zero witness |"
              " zero-witness CPU per domain element |\n|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['model']} | {r['constraints']:,} | {r['wires']:,} | {r['bit_wires']:,} | {r['domain']:,} | "
                  f"{r['wall_ms']:.1f} | {r['cpu_ms']:.1f} | {r['zero_witness_cpu_ms']:.1f} | "
                  f"{r['zero_witness_cpu_ms'] / r['domain'] * 1e3:.1f} us |")
        fa, fb = fit(rows, "cpu_ms")
        wa, wb = fit(rows, "wall_ms")
        report["scaling"][label + " fit"] = {"cpu_fixed_ms": fa, "cpu_us_per_constraint": fb,
                                             "wall_fixed_ms": wa, "wall_us_per_constraint": wb}
        print(f"fit: CPU {fa:.1f} ms + {fb:.1f} us/constraint; wall {wa:.1f} ms + {wb:.1f} us/constraint")
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
