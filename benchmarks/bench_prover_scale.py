#!/usr/bin/env python3
"""Prover scale benchmark: one command, one table (docs/prover.md "Scale").

Rows: digits MLP and the large MLP (64-256-128-10) in both proof modes through the direct
constraint path (verinfer.prover.direct), plus the shipped digits zkey row where groth16py and
snarkjs prove the same witness with the same key. Columns: constraints, direct generation time,
circom compile time (--circom; the large private circuit is not attempted: circom2 did not finish
in 10 minutes), INSECURE groth16py dev setup, witness (direct numpy; circom wasm for comparison),
prove (median of --repeats, key in memory), verify, peak RSS of the row's process, and on-chain
verify gas from the forge batch test (single snarkjs verifier; batch verifier per proof at n=16).
Every row runs in its own process under /usr/bin/time so the RSS is that row's peak.

    python benchmarks/bench_prover_scale.py [--repeats 3] [--circom] [--rows digits-mlp/public,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "verinfer" / "models" / "data"
ROWS = ["digits-mlp/public", "digits-mlp/private", "digits-mlp-large/public", "digits-mlp-large/private",
        "digits-cnn/public", "digits-cnn/private", "digits-mlp-ee/public", "digits-cnn-ee/public",
        "digits-cnn-ee/private", "digits-mlp/public-shipped-zkey"]
EZKL_ROWS = ["digits-mlp:fixed", "digits-cnn:fixed", "digits-cnn:hashed", "digits-mlp-large:fixed"]


def _inputs() -> list[int]:
    s = json.loads((DATA / "digits-samples.json").read_text())["samples"][0]["pixels"]
    return [p * 8 - 64 for p in s]


def run_row(row: str, repeats: int, circom: bool) -> dict[str, Any]:
    """Executed in a child process: everything for one table row."""
    import groth16py

    from verinfer.prover import direct, pipeline
    from verinfer.prover.backends import Groth16pyBackend, SnarkjsBackend

    model, mode = row.split("/")
    x = _inputs()
    if model.endswith("-ee"):  # equivariantly encrypted: the node's view (permuted model and input)
        from verinfer.inference import ee
        from verinfer.models import spec as mspec

        plain = mspec.load_builtin(model[:-3])
        key = ee.EEKey.generate(plain, seed=1)
        spec = ee.encrypt_model(plain, key).to_json_obj()
        x = ee.encrypt_input_for(plain, x, key)
    else:
        spec = json.loads((DATA / f"{model}.json").read_text())
    out: dict[str, Any] = {"row": row}
    med = statistics.median
    if mode == "public-shipped-zkey":
        arts = pipeline.prepare(spec, "public", setup="shipped")
        out["constraints"] = arts.compiled.n_constraints
        g16, sn = Groth16pyBackend(), SnarkjsBackend()
        pk = g16._pk(arts)
        tw, tp, ts, tcpu = [], [], [], []
        for i in range(repeats):
            t0 = time.perf_counter()
            vals = direct.circom_witness(arts.compiled, x, i + 1)
            tw.append(time.perf_counter() - t0)
            t0, c0 = time.perf_counter(), time.process_time()
            proof = direct.prove_values(pk, vals, 3)
            tp.append(time.perf_counter() - t0)
            tcpu.append(time.process_time() - c0)
            with tempfile.TemporaryDirectory() as d:
                w = direct.write_wtns(vals, Path(d) / "w.wtns")
                t0 = time.perf_counter()
                p2 = sn.prove_wtns(arts, w)
                ts.append(time.perf_counter() - t0)
        from verinfer.prover.witness import circuit_inputs, compute_witness
        tc = []
        for i in range(repeats):
            t0 = time.perf_counter()
            compute_witness(arts.compiled, circuit_inputs(arts.compiled.spec, "public", x, i + 1))
            tc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ok = g16.verify(arts.vk, proof) and g16.verify(arts.vk, p2)
        out.update(witness_s=med(tw), witness_wasm_s=med(tc), prove_g16_s=med(tp), prove_snarkjs_s=med(ts),
                   prove_g16_cpu_s=med(tcpu),
                   verify_s=(time.perf_counter() - t0) / 2, ok=ok, setup="shipped zkey (INSECURE ceremony)",
                   snarkjs_note="snarkjs CLI incl. Node start")
        return out
    t0 = time.perf_counter()
    dc = direct.generate_r1cs(spec, mode, force=True)
    out["generate_s"] = time.perf_counter() - t0
    out["constraints"] = dc.n_constraints
    if circom and not (model == "digits-mlp-large" and mode == "private") and not model.endswith("-ee"):
        from verinfer.prover.artifacts import compile_circuit
        t0 = time.perf_counter()
        cc = compile_circuit(spec, mode, force=True)
        out["circom_s"] = time.perf_counter() - t0
        out["circom_constraints"] = cc.n_constraints
    t0 = time.perf_counter()
    pk, vk = direct.dev_setup(dc)
    out["setup_s"] = time.perf_counter() - t0
    tw, tp, tc = [], [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        vals, _ = direct.witness_values(spec, mode, x, i + 1)
        tw.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        proof = direct.prove_values(pk, vals, len(dc.public_signal_names))
        tp.append(time.perf_counter() - t0)
        tc.append(time.process_time() - c0)
    out["prove_g16_cpu_s"] = med(tc)
    t0 = time.perf_counter()
    out["ok"] = Groth16pyBackend().verify(vk, proof)
    out["verify_s"] = time.perf_counter() - t0
    out.update(witness_s=med(tw), prove_g16_s=med(tp), setup="groth16py dev (INSECURE)",
               snarkjs_note="no zkey: needs a 2^%d ptau" % direct.required_ptau_power(dc.n_constraints, 4))
    del groth16py
    return out


def build_torch_any(spec: Any) -> Any:
    """A float torch module whose EZKL scale-0 quantisation computes the spec's integer semantics.

    Dense -> Linear, conv2d -> Conv2d (+ x * 2^residual_shift), avgpool2d -> a depthwise all-ones
    Conv2d. EZKL divides by a constant rounding to nearest, so `acc >> s` (floor) is exported as
    `(2 acc - (2^s - 1)) / 2^(s+1)`: weights and residual doubled, bias 2b - (2^s - 1); the quotient
    is then always within 0.5 of floor(acc / 2^s) and never a tie, so rounding gives the floor exactly
    (benchmarks/ezkl_digits.py's `bias - 2^(s-1)` leaves ties that a ReLU hides in an MLP, not in pooling).
    """
    import numpy as np
    import torch

    class IntegerNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ops = torch.nn.ModuleList()
            self.cfg = []
            ranges = spec.activation_ranges()[1:]
            for li, layer in enumerate(spec.layers):
                t = getattr(layer, "type", "dense")
                shift = layer.shift
                if t == "dense":
                    m = torch.nn.Linear(layer.in_, layer.out)
                    m.weight.data = torch.tensor(layer.weight, dtype=torch.float32)
                    bias = np.asarray(layer.bias, dtype=np.int64)
                    shape, rs = None, None
                elif t == "conv2d":
                    c = layer.in_shape[0]
                    m = torch.nn.Conv2d(c, layer.out_channels, layer.kernel, stride=layer.stride, padding=layer.padding)
                    m.weight.data = torch.tensor(layer.weight, dtype=torch.float32)
                    bias = np.asarray(layer.bias, dtype=np.int64)
                    shape, rs = layer.in_shape, layer.residual_shift
                else:
                    c = layer.in_shape[0]
                    m = torch.nn.Conv2d(c, c, layer.kernel, stride=layer.stride or layer.kernel, groups=c)
                    m.weight.data = torch.ones_like(m.weight.data)
                    bias = np.zeros(c, dtype=np.int64)
                    shape, rs = layer.in_shape, None
                if shift:
                    m.weight.data = m.weight.data * 2
                    bias = 2 * bias - ((1 << shift) - 1)
                m.bias.data = torch.tensor(bias, dtype=torch.float32)
                self.ops.append(m)
                # a clip to the static output range (a no-op on every valid input) makes EZKL
                # materialise the rounded quotient instead of carrying the division into the next layer
                rng = ranges[li] if shift and layer.clamp_bits is None else None
                self.cfg.append((shape, rs, shift, layer.relu, layer.clamp_bits, rng))

        def forward(self, x: Any) -> Any:
            for m, (shape, rs, shift, relu, clamp, rng) in zip(self.ops, self.cfg):
                if shape is not None:
                    x = x.reshape(x.shape[0], *shape)
                    y = m(x)
                    x = y + x * float((1 << rs) * (2 if shift else 1)) if rs is not None else y
                else:
                    x = m(x.reshape(x.shape[0], -1))
                if shift:
                    x = x / float(1 << (shift + 1))
                if relu:
                    x = torch.relu(x)
                if clamp is not None:
                    half = 1 << (clamp - 1)
                    x = torch.clamp(x, -half, half - 1)
                if rng is not None:
                    x = torch.clamp(x, float(rng[0]), float(rng[1]))
            return x.reshape(x.shape[0], -1)

    return IntegerNet().eval()


def ezkl_rows(which: list[str], repeats: int) -> list[dict[str, Any]]:
    """EZKL (Halo2/KZG, local INSECURE SRS) on the same integer models; reason rows when it cannot run."""
    try:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import ezkl_digits
    except ImportError as exc:
        return [{"row": f"EZKL {w}", "error": f"ezkl not installed ({exc}); pip install -e '.[bench]'"} for w in which]
    ezkl_digits.build_torch_model = build_torch_any  # the MLP builder, generalised to conv/pool
    out = []
    for w in which:
        model, mode = w.split(":")
        try:
            (r,) = ezkl_digits.run_ezkl(str(DATA / f"{model}.json"), modes=(mode,), repeats=repeats, samples=10,
                                        long_prove_s=600.0)
            r["row"] = f"EZKL {model} {mode}"
            out.append(r)
        except Exception as exc:  # one failing EZKL row is a finding, not the end of the table
            out.append({"row": f"EZKL {model} {mode}", "error": f"{type(exc).__name__}: {str(exc)[:120]}"})
    return out


def forge_gas() -> dict[str, int]:
    """Gas numbers logged by contracts/test/BatchGroth16Verifier.t.sol (same run)."""
    env = dict(os.environ, PATH=f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}")
    proc = subprocess.run(["npx", "forge", "test", "--match-path", "contracts/test/BatchGroth16Verifier.t.sol", "-vv"],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    gas = {}
    for key, val in re.findall(r"^\s+(.+?): (\d+)$", proc.stdout, re.M):
        gas[key.strip()] = int(val)
    if proc.returncode != 0:
        gas["error"] = 1
    return gas


def fmt_s(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--circom", action="store_true", help="also time the circom2 compile (minutes)")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--ezkl", default=",".join(EZKL_ROWS), help="EZKL rows model:mode ('' for none)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run_row(a.child, a.repeats, a.circom)))
        return
    print(f"verinfer prover scale benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load avg {os.getloadavg()[0]:.1f}; repeats {a.repeats}. All keys INSECURE.", flush=True)
    results = []
    for row in [r for r in a.rows.split(",") if r]:
        with tempfile.TemporaryDirectory() as tmp:
            rss_file = Path(tmp) / "rss"
            cmd = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), sys.executable, __file__, "--child", row,
                   "--repeats", str(a.repeats)] + (["--circom"] if a.circom else [])
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                results.append({"row": row, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:160]})
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["rss_mb"] = int(rss_file.read_text().split()[-1]) / 1024
            r["wall_s"] = time.perf_counter() - t0
            results.append(r)
            print(f"  {row}: done in {r['wall_s']:.0f} s", file=sys.stderr, flush=True)
    ez = ezkl_rows([w for w in a.ezkl.split(",") if w], 1) if a.ezkl else []
    gas = forge_gas()
    single, per16 = gas.get("single snarkjs verifier tx gas"), gas.get("n=16 tx gas per proof")
    cols = ["model / mode", "constraints", "generate (direct)", "circom compile", "setup", "witness",
            "prove groth16py (CPU)", "prove snarkjs", "verify", "peak RSS", "verify gas"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    by_row = {}
    for r in results:
        by_row[r["row"]] = r
        if "error" in r:
            print(f"| {r['row']} | error: {r['error']} |" + " |" * (len(cols) - 2))
            continue
        circ = fmt_s(r.get("circom_s")) if "circom_s" in r else (
            "not attempted (did not finish in 10 min)" if r["row"] == "digits-mlp-large/private" else "—")
        if "circom_constraints" in r:
            circ += f" ({r['circom_constraints']:,} c.)"
        wit = fmt_s(r["witness_s"]) + (f" (wasm {fmt_s(r['witness_wasm_s'])})" if "witness_wasm_s" in r else "")
        sn = fmt_s(r["prove_snarkjs_s"]) if "prove_snarkjs_s" in r else r["snarkjs_note"]
        n_pub = 4 if "private" in r["row"] else 3
        vg = (f"{single:,} single; {per16:,}/proof in a batch of 16" if single and per16 and n_pub == 3 else
              "4 signals: not in this run" if n_pub == 4 else "—")
        print("| " + " | ".join([r["row"], f"{r['constraints']:,}", fmt_s(r.get("generate_s")), circ,
                                 r["setup"] if "setup_s" not in r else f"{fmt_s(r['setup_s'])} (dev)", wit,
                                 f"{fmt_s(r['prove_g16_s'])} ({fmt_s(r.get('prove_g16_cpu_s'))})", sn,
                                 fmt_s(r["verify_s"]), f"{r['rss_mb']:.0f} MB",
                                 vg]) + " |")
    for r in ez:
        if r.get("error"):
            print(f"| {r['row']} | error: {r['error']} |" + " |" * (len(cols) - 2))
            continue
        print("| " + " | ".join([r["row"] + f" (Halo2, logrows {r.get('logrows')})", "—", "—", "—",
                                 fmt_s(r.get("setup_s")), "—", "—", "—", fmt_s(r.get("verify_s")),
                                 f"{r.get('peak_rss_mb') or 0:.0f} MB", f"prove {fmt_s(r.get('prove_s'))}; "
                                 f"proof {r.get('proof_bytes')} B; agree {r.get('agree_rate')}"]) + " |")
    print()
    for model in ("digits-mlp", "digits-cnn"):
        g = by_row.get(f"{model}/public", {})
        e = next((r for r in ez if r["row"] == f"EZKL {model} fixed" and not r.get("error")), None)
        if g.get("prove_g16_s") and e and e.get("prove_s"):
            print(f"* {model} public weights: EZKL fixed prove / groth16py prove = "
                  f"{e['prove_s'] / g['prove_g16_s']:.0f}x (target for the CNN: >= 100x)")
    for model in ("digits-mlp", "digits-cnn"):
        p, q = by_row.get(f"{model}/public", {}), by_row.get(f"{model}-ee/public", {})
        if p.get("prove_g16_s") and q.get("prove_g16_s"):
            print(f"* {model} encrypted (EE) vs plaintext, public weights: constraints {q['constraints']:,} vs "
                  f"{p['constraints']:,}; prove {q['prove_g16_s'] / p['prove_g16_s']:.2f}x")
    if gas:
        print("* forge (same run): " + "; ".join(f"{k} = {v:,}" for k, v in gas.items()))


if __name__ == "__main__":
    main()
