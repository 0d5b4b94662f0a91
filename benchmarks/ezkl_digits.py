"""EZKL (Halo2/KZG) on the same integer MLP that verinfer proves with Groth16.

Usage (see benchmarks/README.md and docs/ezkl.md):

    pip install -e '.[bench]'
    python benchmarks/ezkl_digits.py                       # digits-mlp, all four modes, 3 proofs each
    python benchmarks/ezkl_digits.py --modes fixed --repeats 1 --json out.json

Library use (benchmarks/bench_prover.py prints the combined table)::

    from ezkl_digits import run_ezkl
    rows = run_ezkl("verinfer/models/data/digits-mlp.json", modes=("fixed",), repeats=3)

How the integer model is expressed for EZKL
-------------------------------------------
EZKL quantizes an ONNX float graph to fixed point with `scale` = log2 of the multiplier. We run it
with input_scale = param_scale = 0, so int8 weights, int32 biases and integer inputs are represented
exactly, and each dense layer becomes `Gemm` (exact integer accumulate). The spec's arithmetic
right shift (floor division by 2^s) is exported as `Div` by the constant 2^s; EZKL's constant
division *rounds to nearest*, so the bias is lowered by 2^(s-1) to turn that into floor:
round((acc - 2^(s-1)) / 2^s) == floor(acc / 2^s) except at ties of negative values, which the
following ReLU maps to 0 either way (a layer with a shift and no ReLU could differ by one there —
`agree_rate` would show it). ReLU and the clamp (`Clip`) follow. The output logits are scale 0
integers, compared bit for bit against `verinfer.models.reference`.

Every setup, prove and verify runs in a fresh Python subprocess; its time is measured inside the
child around the single ezkl call (interpreter start-up excluded) and its peak RSS is the child's
`ru_maxrss` from `os.wait4`. The SRS is generated locally with `ezkl.gen_srs` — INSECURE (whoever
generated it knows the toxic waste and can forge proofs); fine for timing, never for deployment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / "verinfer" / "models" / "data" / "digits-mlp.json"
ALL_MODES = ("public", "fixed", "hashed", "private")
EZKL_VERSION = "23.0.5"

# What each EZKL param visibility means, next to verinfer's Groth16 modes (docs/ezkl.md).
MODE_NOTES = {
    "public": "weights are public instances (verifier supplies every weight)",
    "fixed": "weights baked into fixed columns; the vk pins them (~ verinfer public-weights)",
    "hashed": "weights private, Poseidon hash public (~ verinfer private-weights + commitment)",
    "private": "weights private, nothing public binds them (proof does not pin the model)",
}


# --------------------------------------------------------------------------------------------
# model and data


def _load_spec(spec_path: str | Path):
    sys.path.insert(0, str(ROOT)) if str(ROOT) not in sys.path else None
    from verinfer.models import spec as spec_mod

    return spec_mod.load(spec_path)


def _samples(spec, n: int) -> np.ndarray:
    """The first n held-out digits (raw pixels 0..16) of the project's fixed split."""
    from verinfer.models.digits import load_split

    x = load_split().x_test[:n]
    if x.shape[1] != spec.input_size:
        raise ValueError(f"model takes {spec.input_size} inputs; digits have {x.shape[1]}")
    return x


def _reference(spec, xs: np.ndarray) -> np.ndarray:
    from verinfer.models.reference import run_batch

    return run_batch(spec, xs)


def build_torch_model(spec):
    """A float torch module whose EZKL scale-0 quantization computes the spec's integer semantics."""
    import torch

    class IntegerMLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fcs = torch.nn.ModuleList()
            self.cfg = []
            for layer in spec.layers:
                fc = torch.nn.Linear(layer.in_, layer.out)
                bias = np.asarray(layer.bias, dtype=np.int64)
                if layer.shift:
                    bias = bias - (1 << (layer.shift - 1))  # round-to-nearest -> floor (see module doc)
                if int(np.abs(bias).max(initial=0)) >= 1 << 24:
                    raise ValueError("bias beyond 2^24 is not exact in float32; EZKL export would round it")
                fc.weight.data = torch.tensor(layer.weight, dtype=torch.float32)
                fc.bias.data = torch.tensor(bias, dtype=torch.float32)
                self.fcs.append(fc)
                self.cfg.append((layer.shift, layer.relu, layer.clamp_bits))

        def forward(self, x):
            for fc, (shift, relu, clamp_bits) in zip(self.fcs, self.cfg):
                x = fc(x)
                if shift:
                    x = x / float(1 << shift)
                if relu:
                    x = torch.relu(x)
                if clamp_bits is not None:
                    half = 1 << (clamp_bits - 1)
                    x = torch.clamp(x, -half, half - 1)
            return x

    return IntegerMLP().eval()


def export_onnx(spec, path: str | Path) -> None:
    import torch

    torch.set_num_threads(1)
    model = build_torch_model(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, spec.input_size),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=17,
            dynamo=False,  # the TorchScript exporter; the dynamo one needs onnxscript
        )


# --------------------------------------------------------------------------------------------
# subprocess runner: time inside the child, peak RSS from wait4


_CHILD = r"""
import json, sys, time
import ezkl
fn = getattr(ezkl, sys.argv[1]); kwargs = json.loads(sys.argv[2])
t = time.perf_counter(); res = fn(**kwargs); dt = time.perf_counter() - t
print("EZKL_RESULT " + json.dumps({"seconds": dt, "result": res if isinstance(res, (bool, int, float, str)) else None}))
"""


def _child_call(fn: str, env: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run `ezkl.<fn>(**kwargs)` in a fresh interpreter; return seconds, result, peak RSS (MB)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, fn, json.dumps(kwargs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = next((ln for ln in out.splitlines() if ln.startswith("EZKL_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = "\n".join(out.strip().splitlines()[-6:])
        raise RuntimeError(f"ezkl.{fn} failed (exit {proc.returncode}): {tail}")
    info = json.loads(line[len("EZKL_RESULT ") :])
    if info["result"] is False:
        raise RuntimeError(f"ezkl.{fn} returned False")
    info["peak_rss_mb"] = usage.ru_maxrss / 1024.0  # Linux: KiB
    info["cpu_s"] = usage.ru_utime + usage.ru_stime  # whole child, incl. interpreter start-up
    return info


# --------------------------------------------------------------------------------------------
# the benchmark


@contextlib.contextmanager
def _quiet():
    """Send fds 1 and 2 to /dev/null (ezkl's Rust code prints its calibration table there)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _proof_bytes(proof_path: Path) -> int:
    """Size of the raw Halo2 transcript (the `proof` field), not of the JSON wrapper."""
    obj = json.loads(proof_path.read_text())
    proof = obj.get("proof")
    if isinstance(proof, str):
        return len(bytes.fromhex(proof.removeprefix("0x")))
    if isinstance(proof, list):
        return len(proof)
    return proof_path.stat().st_size


def _num_instances(proof_path: Path) -> int:
    obj = json.loads(proof_path.read_text())
    return sum(len(col) for col in obj.get("instances", []))


def _run_mode(
    mode: str,
    onnx_path: Path,
    work: Path,
    xs: np.ndarray,
    ref: np.ndarray,
    repeats: int,
    io_visibility: str,
    srs_cache: dict[int, Path],
    srs_dir: Path,
    long_prove_s: float,
    log: Callable[[str], None],
    env: dict[str, str] | None,
) -> dict[str, Any]:
    import ezkl as _ezkl

    ezkl: Any = _ezkl  # ezkl 23's bundled type stubs lag its runtime API (PyRunArgs fields, defaults)

    d = work / mode
    d.mkdir()
    settings = d / "settings.json"
    compiled = d / "network.compiled"
    pk, vk = d / "pk.key", d / "vk.key"
    row: dict[str, Any] = {"mode": mode, "io": io_visibility}

    ra = ezkl.PyRunArgs()
    ra.input_scale = 0
    ra.param_scale = 0
    ra.input_visibility = io_visibility
    ra.output_visibility = io_visibility
    ra.param_visibility = mode
    if not ezkl.gen_settings(str(onnx_path), str(settings), py_run_args=ra):
        raise RuntimeError("gen_settings returned False")
    # calibrate only the layout (row count -> logrows): scales stay 0, the model is integer.
    cal = d / "calibration.json"
    cal.write_text(json.dumps({"input_data": [xs.reshape(-1).astype(int).tolist()]}))
    with _quiet():  # calibrate prints a float-vs-fixed-point fidelity table
        ok = ezkl.calibrate_settings(str(cal), str(onnx_path), str(settings), "resources", scales=[0])
    if not ok:
        raise RuntimeError("calibrate_settings returned False")
    s = json.loads(settings.read_text())
    if (s["run_args"]["input_scale"], s["run_args"]["param_scale"]) != (0, 0):
        raise RuntimeError(f"calibration moved the scales: {s['run_args']}")
    if not ezkl.compile_circuit(str(onnx_path), str(compiled), str(settings)):
        raise RuntimeError("compile_circuit returned False")
    logrows = int(s["run_args"]["logrows"])
    row["logrows"] = logrows
    row["num_rows"] = int(s["num_rows"])
    out_scale = int(s["model_output_scales"][0])

    if logrows not in srs_cache:
        srs = srs_dir / f"kzg{logrows}.srs"
        if not srs.exists():
            t = time.perf_counter()
            tmp_srs = srs.with_suffix(f".tmp{os.getpid()}")
            ezkl.gen_srs(str(tmp_srs), logrows)
            tmp_srs.replace(srs)
            row["srs_s"] = time.perf_counter() - t
            log(f"  gen_srs({logrows}) {row['srs_s']:.2f}s -> {srs} (local, INSECURE)")
        srs_cache[logrows] = srs
    srs = srs_cache[logrows]

    # witnesses: the outputs EZKL would prove, for every sample
    agree = argmax_agree = 0
    first_witness = d / "witness0.json"
    for i, x in enumerate(xs):
        data = d / "input.json"
        data.write_text(json.dumps({"input_data": [x.astype(int).tolist()]}))
        wpath = first_witness if i == 0 else d / "witness.json"
        w = ezkl.gen_witness(str(data), str(compiled), str(wpath))
        got = np.array([ezkl.felt_to_float(f, out_scale) for f in w["outputs"][0]])
        want = ref[i]
        agree += bool(np.array_equal(got, want))
        argmax_agree += int(np.argmax(got)) == int(np.argmax(want))
    row["agree_rate"] = agree / len(xs)
    row["argmax_agree_rate"] = argmax_agree / len(xs)
    row["samples"] = len(xs)

    r = _child_call("setup", env, model=str(compiled), vk_path=str(vk), pk_path=str(pk), srs_path=str(srs))
    row["setup_s"] = r["seconds"]
    row["setup_rss_mb"] = r["peak_rss_mb"]
    row["setup_cpu_s"] = r["cpu_s"]
    row["pk_bytes"] = pk.stat().st_size
    row["vk_bytes"] = vk.stat().st_size
    log(f"  setup {r['seconds']:.2f}s rss {r['peak_rss_mb']:.0f} MB pk {pk.stat().st_size / 2**20:.1f} MiB")

    proof = d / "proof.json"
    prove_s, prove_rss, prove_cpu, verify_s = [], [], [], []
    for k in range(repeats):
        proof.unlink(missing_ok=True)
        r = _child_call(
            "prove", env, witness=str(first_witness), model=str(compiled), pk_path=str(pk),
            proof_path=str(proof), srs_path=str(srs),
        )
        prove_s.append(r["seconds"])
        prove_rss.append(r["peak_rss_mb"])
        prove_cpu.append(r["cpu_s"])
        v = _child_call(
            "verify", env, proof_path=str(proof), settings_path=str(settings), vk_path=str(vk), srs_path=str(srs)
        )
        verify_s.append(v["seconds"])
        log(
            f"  prove #{k + 1} {r['seconds']:.2f}s (cpu {r['cpu_s']:.1f}s) rss {r['peak_rss_mb']:.0f} MB;"
            f" verify {v['seconds']:.3f}s"
        )
        if max(prove_s) > long_prove_s and k >= 1:
            break  # slow proofs: two runs are enough
    row["prove_s"] = statistics.median(prove_s)
    row["prove_runs_s"] = prove_s
    row["prove_cpu_s"] = statistics.median(prove_cpu)
    row["verify_s"] = statistics.median(verify_s)
    row["peak_rss_mb"] = max(prove_rss)
    row["proof_bytes"] = _proof_bytes(proof)
    row["proof_json_bytes"] = proof.stat().st_size
    row["instances"] = _num_instances(proof)
    shutil.rmtree(d, ignore_errors=True)  # pk is the big file
    return row


def run_ezkl(
    spec_path: str,
    modes: Sequence[str] = ALL_MODES,
    repeats: int = 3,
    *,
    samples: int = 20,
    io_visibility: str = "public",
    threads: int | None = None,
    srs_dir: str | None = None,
    long_prove_s: float = 60.0,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Benchmark EZKL on the spec's model in each param-visibility mode; one row per mode.

    Row keys: mode, io, model, logrows, num_rows, srs_s (only where this call generated the SRS),
    setup_s, setup_cpu_s, setup_rss_mb, prove_s (median of `repeats`, wall seconds of the ezkl call),
    prove_runs_s, prove_cpu_s (median user+sys of the proving process), verify_s (median),
    peak_rss_mb (max RSS over the proving processes), proof_bytes (raw transcript), proof_json_bytes,
    instances, pk_bytes, vk_bytes, agree_rate (fraction of `samples` held-out digits whose EZKL
    logits equal the integer reference exactly), argmax_agree_rate, samples, threads, wall_s,
    loadavg_1m, error (None, or why the mode failed: its numbers are then None or absent).
    `threads` sets RAYON_NUM_THREADS for the ezkl subprocesses (None: ezkl's default, all cores).
    Proving stops after two runs once one takes longer than `long_prove_s`.
    The locally generated (INSECURE) SRS files are small (2^k x 128 B) and cached in `srs_dir`
    (default $VERINFER_EZKL_SRS_DIR or ~/.cache/verinfer/ezkl-srs); everything else lives in a
    temporary directory that is deleted.
    """
    import ezkl  # noqa: F401  (fail early with ImportError: pip install -e '.[bench]')

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    for m in modes:
        if m not in ALL_MODES:
            raise ValueError(f"unknown mode {m!r}; EZKL param visibilities are {ALL_MODES}")
    spec = _load_spec(spec_path)
    xs = _samples(spec, samples)
    ref = _reference(spec, xs)
    srs_path = Path(srs_dir or os.environ.get("VERINFER_EZKL_SRS_DIR") or Path.home() / ".cache/verinfer/ezkl-srs")
    srs_path.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = str(threads)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="verinfer-ezkl-") as tmp:
        work = Path(tmp)
        onnx_path = work / "model.onnx"
        export_onnx(spec, onnx_path)
        srs_cache: dict[int, Path] = {}
        for mode in modes:
            log(f"[ezkl] {spec.name} mode={mode} io={io_visibility}")
            t0 = time.perf_counter()
            try:
                row = _run_mode(
                    mode, onnx_path, work, xs, ref, repeats, io_visibility, srs_cache, srs_path, long_prove_s, log, env
                )
                row["error"] = None
            except Exception as exc:  # a failing mode is a finding: record it, keep going
                shutil.rmtree(work / mode, ignore_errors=True)
                row = {"mode": mode, "io": io_visibility, "error": f"{type(exc).__name__}: {exc}"}
                for key in ("logrows", "setup_s", "prove_s", "verify_s", "peak_rss_mb", "proof_bytes", "agree_rate"):
                    row.setdefault(key, None)
                log(f"  FAILED: {row['error']}")
            row["model"] = spec.name
            row["threads"] = threads or os.cpu_count()
            row["wall_s"] = time.perf_counter() - t0
            row["loadavg_1m"] = os.getloadavg()[0]
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# CLI


def _fmt(v: Any, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def format_table(rows: Iterable[dict]) -> str:
    head = ("mode", "io", "logrows", "setup s", "prove s", "prove CPU s", "verify s", "peak RSS MB", "proof B", "agree")
    lines = [head]
    for r in rows:
        lines.append(
            (
                r["mode"],
                r.get("io", "public"),
                _fmt(r.get("logrows"), "d"),
                _fmt(r.get("setup_s"), ".2f"),
                _fmt(r.get("prove_s"), ".2f"),
                _fmt(r.get("prove_cpu_s"), ".2f"),
                _fmt(r.get("verify_s"), ".3f"),
                _fmt(r.get("peak_rss_mb"), ".0f"),
                _fmt(r.get("proof_bytes"), "d"),
                "FAILED" if r.get("error") else f"{r['agree_rate']:.0%}",
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        if r.get("error"):
            out.append(f"{r['mode']}: {r['error']}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="EZKL (Halo2) prover benchmark on a verinfer MLP spec")
    p.add_argument("--spec", default=str(DEFAULT_SPEC), help="verinfer.model.v1 JSON (default: digits-mlp)")
    p.add_argument("--modes", default=",".join(ALL_MODES), help="comma-separated param visibilities")
    p.add_argument("--repeats", type=int, default=3, help="proofs per mode (median reported)")
    p.add_argument("--samples", type=int, default=20, help="held-out digits checked against the reference")
    p.add_argument("--io", default="public", choices=("public", "hashed", "private"), help="input/output visibility")
    p.add_argument("--threads", type=int, default=None, help="RAYON_NUM_THREADS for ezkl (default: all cores)")
    p.add_argument("--srs-dir", default=None, help="cache for the locally generated (insecure) SRS files")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = run_ezkl(
        a.spec, modes=tuple(m for m in a.modes.split(",") if m), repeats=a.repeats,
        samples=a.samples, io_visibility=a.io, threads=a.threads, srs_dir=a.srs_dir,
    )
    total = time.perf_counter() - t0
    print(f"EZKL {EZKL_VERSION} on {Path(a.spec).name}; {platform.machine()}, {os.cpu_count()} cores; "
          f"SRS generated locally (insecure); total {total:.0f} s")
    print(format_table(rows))
    if a.json:
        Path(a.json).write_text(json.dumps({"total_s": total, "rows": rows}, indent=2))
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
