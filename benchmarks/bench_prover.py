#!/usr/bin/env python3
"""verinfer prover benchmark: one run, one table (docs/prover.md).

For each model (digits-mlp, digits-mlp-large) and proof mode (public, private): constraints,
compile time, dev setup time, witness time, prove time with groth16py and snarkjs on the SAME
zkey (median of --repeats; each prover keeps its key in memory, as a serving node would), verify
time, peak RSS of the proving process (a child process each: os.wait4 ru_maxrss), proof size and
verifyProof gas on a fresh anvil. Plus the EZKL column (benchmarks/ezkl_digits.py) when present.

    python benchmarks/bench_prover.py                   # everything it can (see --help)
    python benchmarks/bench_prover.py --models digits-mlp --modes public --no-ezkl

snarkjs needs a zkey, i.e. a prepared phase-1 ptau of 2^k >= constraints: the run looks for
INSECURE local ptau files `insecure_dev_<k>_final.ptau` in --ptau-dir (make one with
`verinfer prover ceremony new-ptau --power k --out …`; 2^15 takes ~20 CPU-min). Without one the
snarkjs columns say why they are empty. All keys here are INSECURE (timing only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SNARKJS_BENCH_JS = r"""
const fs = require("fs");
const snarkjs = require(process.argv[2]);
const [zkeyPath, wtnsPath, vkPath, repeats] = process.argv.slice(3);
(async () => {
  const zkey = new Uint8Array(fs.readFileSync(zkeyPath));
  const wtns = new Uint8Array(fs.readFileSync(wtnsPath));
  const vk = JSON.parse(fs.readFileSync(vkPath, "utf8"));
  const prove = [], verify = [];
  let res;
  for (let i = 0; i < Number(repeats); i++) {
    let t = process.hrtime.bigint();
    res = await snarkjs.groth16.prove(zkey, wtns);
    prove.push(Number(process.hrtime.bigint() - t) / 1e9);
    t = process.hrtime.bigint();
    const ok = await snarkjs.groth16.verify(vk, res.publicSignals, res.proof);
    verify.push(Number(process.hrtime.bigint() - t) / 1e9);
    if (!ok) throw new Error("snarkjs proof does not verify");
  }
  console.log(JSON.stringify({prove, verify, proof: res.proof, publicSignals: res.publicSignals,
                              proofJsonBytes: JSON.stringify(res.proof).length}));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
"""

G16_CHILD = r"""
import json, sys, time, groth16py
kind, key, wtns, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = time.perf_counter()
pk = groth16py.ProvingKey.load(key) if kind == "g16" else groth16py.import_zkey(key)[0]
load_s = time.perf_counter() - t
times = []
for _ in range(repeats):
    t = time.perf_counter()
    blob = groth16py.prove_wtns(pk, wtns)
    times.append(time.perf_counter() - t)
print(json.dumps({"prove": times, "load_s": load_s, "proof_hex": bytes(blob).hex()}))
"""


def child(cmd: list[str]) -> tuple[dict[str, Any], float]:
    """Run a child, return (its JSON stdout, its peak RSS in MiB).

    The child runs under `/usr/bin/time -f %M`: Linux's ru_maxrss survives exec, so a child forked
    straight from this (large) process would report the parent's RSS; time's own child is forked
    from a small process and reports the prover's real peak.
    """
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-800:]}")
        rss_kb = int(rss_file.read_text().strip().splitlines()[-1])
        return json.loads(proc.stdout.strip().splitlines()[-1]), rss_kb / 1024


def find_ptau(ptau_dir: Path, needed: int) -> Path | None:
    for k in range(needed, 29):
        p = ptau_dir / f"insecure_dev_{k}_final.ptau"
        if p.exists():
            return p
    return None


def bench_one(model: str, mode: str, args: argparse.Namespace, chain: Any, log) -> dict[str, Any]:
    from verinfer.chain.verifier import deploy_verifier, verify_gas, verify_onchain
    from verinfer.models.spec import load_builtin
    from verinfer.prover import keys, pipeline, toolchain
    from verinfer.prover.artifacts import compile_circuit
    from verinfer.prover.backends import Groth16pyBackend
    from verinfer.prover.types import Proof
    from verinfer.prover.witness import circuit_inputs, compute_witness, public_signals

    row: dict[str, Any] = {"model": model, "mode": mode}
    spec = load_builtin(model)
    samples = json.loads((ROOT / "verinfer/models/data/digits-samples.json").read_text())["samples"]
    x = samples[0]["pixels"]
    log(f"[{model}/{mode}] compile")
    t = time.perf_counter()
    cc = compile_circuit(spec, mode)
    row["compile_s"] = time.perf_counter() - t
    row["constraints"] = cc.n_constraints
    log(f"  {cc.n_constraints} constraints, {row['compile_s']:.1f} s; dev setup")
    t = time.perf_counter()
    km = keys.dev_setup(cc)
    row["setup_s"] = time.perf_counter() - t
    binding = pipeline.request_binding(1, "0x" + "11" * 20)
    inputs = circuit_inputs(pipeline.view(spec), mode, x, binding)
    wt = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        wtns = compute_witness(cc, inputs)
        wt.append(time.perf_counter() - t)
    row["witness_s"] = statistics.median(wt)
    pub = public_signals(cc, wtns)

    # groth16py with the dev key (the default path)
    res, rss = child([sys.executable, "-c", G16_CHILD, "g16", str(km.g16_pk_path), str(wtns), str(args.repeats)])
    row["g16_dev_prove_s"] = statistics.median(res["prove"])
    row["g16_dev_rss_mb"] = rss
    proof = Proof.from_bytes(bytes.fromhex(res["proof_hex"]), pub)
    be = Groth16pyBackend()
    vt = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ok = be.verify(km.vk, proof)
        vt.append(time.perf_counter() - t)
    assert ok, "groth16py proof does not verify"
    row["g16_verify_s"] = statistics.median(vt)
    row["proof_bytes"] = len(proof.to_bytes())

    row["_ctx"] = (cc, wtns, pub)
    if chain is not None:
        from verinfer.prover.types import CircuitArtifacts

        w3, acct = chain
        sol = km.vk_path.parent / f"{pipeline.verifier_contract_name(spec.name, mode)}.sol"
        if not sol.exists():
            pipeline.export_verifier(cc, km, sol.stem, sol)
        arts = CircuitArtifacts(cc, km, 0, sol, sol.stem)
        addr = deploy_verifier(w3, acct, arts)
        assert verify_onchain(w3, addr, proof)
        row["gas"] = verify_gas(w3, acct, addr, proof)
    return row


def bench_snarkjs(row: dict[str, Any], args: argparse.Namespace, log) -> None:
    """snarkjs vs groth16py on the same zkey (second pass: waits up to --wait-ptau for a ptau)."""
    from verinfer.prover import toolchain
    from verinfer.prover.backends import Groth16pyBackend
    from verinfer.prover.types import Proof

    cc, wtns, pub = row.pop("_ctx")
    be = Groth16pyBackend()
    need = math.ceil(math.log2(cc.n_constraints + len(pub) + 1))
    deadline = time.time() + args.wait_ptau
    ptau = find_ptau(Path(args.ptau_dir), need)
    while ptau is None and time.time() < deadline:
        log(f"  waiting for a 2^{need} ptau in {args.ptau_dir} …")
        time.sleep(20)
        ptau = find_ptau(Path(args.ptau_dir), need)
    row["ptau"] = f"2^{need} needed" + (f", used {ptau.name}" if ptau else " (none found: snarkjs n/a)")
    if ptau is None:
        return
    model, mode = row["model"], row["mode"]
    log(f"[{model}/{mode}] snarkjs groth16 setup with {ptau.name}")
    zkey = cc.dir / "bench.INSECURE.zkey"
    t = time.perf_counter()
    if not zkey.exists():
        toolchain.run(toolchain.snarkjs_cmd() + ["groth16", "setup", str(cc.r1cs_path), str(ptau), str(zkey)],
                      what="snarkjs groth16 setup")
    row["zkey_setup_s"] = time.perf_counter() - t
    vk_path = cc.dir / "bench.vk.json"
    toolchain.run(toolchain.snarkjs_cmd() + ["zkey", "export", "verificationkey", str(zkey), str(vk_path)],
                  what="export vk")
    log("  snarkjs prove")
    js = cc.dir / "bench_snarkjs.js"
    js.write_text(SNARKJS_BENCH_JS)
    sres, srss = child([toolchain.node_binary(), str(js), str(toolchain.node_modules() / "snarkjs"),
                        str(zkey), str(wtns), str(vk_path), str(args.repeats)])
    row["snarkjs_prove_s"] = statistics.median(sres["prove"])
    row["snarkjs_verify_s"] = statistics.median(sres["verify"])
    row["snarkjs_rss_mb"] = srss
    row["snarkjs_proof_json_bytes"] = sres["proofJsonBytes"]
    log("  groth16py prove (same zkey)")
    gres, grss = child([sys.executable, "-c", G16_CHILD, "zkey", str(zkey), str(wtns), str(args.repeats)])
    row["g16_prove_s"] = statistics.median(gres["prove"])
    row["g16_rss_mb"] = grss
    row["ratio"] = row["snarkjs_prove_s"] / row["g16_prove_s"]
    vk = json.loads(vk_path.read_text())
    sp = Proof.from_snarkjs(sres["proof"], sres["publicSignals"])
    gp = Proof.from_bytes(bytes.fromhex(gres["proof_hex"]), pub)
    assert be.verify(vk, sp) and be.verify(vk, gp), "cross-verification failed"



def fmt(v: Any, spec: str = ".2f", unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:{spec}}{unit}"
    return f"{v}{unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["digits-mlp", "digits-mlp-large"])
    ap.add_argument("--modes", nargs="+", default=["public", "private"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ptau-dir", default=str(ROOT / ".verinfer" / "ptau"))
    ap.add_argument("--skip", nargs="*", default=["digits-mlp-large/private"],
                    help="model/mode pairs to skip (default: the ~510k-constraint large private circuit)")
    ap.add_argument("--no-snarkjs", action="store_true")
    ap.add_argument("--wait-ptau", type=float, default=0.0,
                    help="seconds to wait for a big enough ptau to appear (a prepare phase2 still running)")
    ap.add_argument("--no-chain", action="store_true")
    ap.add_argument("--no-ezkl", action="store_true")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--keep-cache", action="store_true",
                    help="reuse the artifact cache (compile/setup times then measure cache hits)")
    args = ap.parse_args()
    if not args.keep_cache:
        os.environ["VERINFER_CIRCUIT_CACHE"] = tempfile.mkdtemp(prefix="verinfer-bench-circuits-")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows = []
    chain = None
    devnet = None
    if not args.no_chain:
        from verinfer.chain.devnet import Devnet, find_free_port

        devnet = Devnet(port=find_free_port(), state_dir=Path(tempfile.mkdtemp()), block_time=None, persist=False).start()
        chain = (devnet.w3(), devnet.accounts()[0]) if callable(getattr(devnet, "w3", None)) else (devnet.w3, devnet.accounts[0])
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for model in args.models:
            for mode in args.modes:
                if f"{model}/{mode}" in args.skip:
                    rows.append({"model": model, "mode": mode, "skipped": True})
                    continue
                try:
                    rows.append(bench_one(model, mode, args, chain, log))
                except Exception as exc:  # record and continue: one table per run
                    log(f"  FAILED: {exc}")
                    rows.append({"model": model, "mode": mode, "error": str(exc)[:200]})
    finally:
        if devnet is not None:
            devnet.stop()
    ezkl_rows = []
    if not args.no_ezkl and (ROOT / "benchmarks" / "ezkl_digits.py").exists():
        try:
            from ezkl_digits import run_ezkl

            ezkl_rows = run_ezkl(str(ROOT / "verinfer/models/data/digits-mlp.json"), modes=("fixed", "hashed"),
                                 repeats=args.repeats, log=log)
        except Exception as exc:
            log(f"EZKL column unavailable: {exc}")

    for r in rows:
        if "_ctx" in r:
            if args.no_snarkjs:
                r.pop("_ctx")
                continue
            try:
                bench_snarkjs(r, args, log)
            except Exception as exc:
                log(f"  snarkjs pass FAILED: {exc}")
                r["ptau"] = f"snarkjs failed: {str(exc)[:120]}"

    cols = ["model", "mode", "constraints", "compile", "setup (dev)", "witness", "prove g16py",
            "prove snarkjs", "snarkjs/g16py", "verify g16py", "verify snarkjs", "RSS g16py", "RSS snarkjs",
            "proof", "verify gas"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if r.get("skipped") or r.get("error"):
            why = "skipped (--skip)" if r.get("skipped") else f"error: {r['error']}"
            lines.append(f"| {r['model']} | {r['mode']} | " + " | ".join([why] + [""] * (len(cols) - 3)) + " |")
            continue
        g16 = r.get("g16_prove_s", r.get("g16_dev_prove_s"))
        lines.append("| " + " | ".join([
            r["model"], r["mode"], f"{r['constraints']:,}", fmt(r["compile_s"], ".1f", " s"),
            fmt(r["setup_s"], ".2f", " s"), fmt(r["witness_s"], ".2f", " s"), fmt(g16, ".3f", " s"),
            fmt(r.get("snarkjs_prove_s"), ".3f", " s"), fmt(r.get("ratio"), ".2f", "×"),
            fmt(r["g16_verify_s"] * 1000, ".1f", " ms"),
            fmt(r["snarkjs_verify_s"] * 1000 if "snarkjs_verify_s" in r else None, ".1f", " ms"),
            fmt(r.get("g16_rss_mb", r.get("g16_dev_rss_mb")), ".0f", " MB"), fmt(r.get("snarkjs_rss_mb"), ".0f", " MB"),
            f"{r['proof_bytes']} B", fmt(r.get("gas"), ",", ""),
        ]) + " |")
    for e in ezkl_rows:
        if e.get("error"):
            lines.append(f"| {e.get('model', 'digits-mlp')} | EZKL {e['mode']} | error: {e['error'][:80]} |" + " |" * (len(cols) - 3))
            continue
        lines.append("| " + " | ".join([
            e["model"], f"EZKL {e['mode']} (Halo2, logrows {e.get('logrows')})", "n/a", "n/a", fmt(e.get("setup_s"), ".1f", " s"),
            "n/a", fmt(e.get("prove_s"), ".2f", " s"), "n/a", "n/a", fmt((e.get("verify_s") or 0) * 1000, ".0f", " ms"), "n/a",
            fmt(e.get("peak_rss_mb"), ".0f", " MB"), "n/a", f"{e.get('proof_bytes')} B", "n/a",
        ]) + " |")
    print(f"verinfer prover benchmark — {started}; {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load avg {os.getloadavg()[0]:.1f}; repeats {args.repeats}")
    print("All keys INSECURE (dev setup / local ptau). g16py and snarkjs prove the same witness with the same zkey"
          " where a ptau exists (otherwise g16py uses the dev key). Gas = verifyProof transaction on anvil.")
    print("\n".join(lines))
    for r in rows:
        if "ptau" in r:
            print(f"  {r['model']}/{r['mode']}: ptau {r['ptau']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ezkl": ezkl_rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
