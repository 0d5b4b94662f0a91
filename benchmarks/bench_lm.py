"""SmolLM2-135M sharded / encrypted inference benchmarks (docs/lm.md has the committed tables).

    python benchmarks/bench_lm.py pipeline --prompts 100 --tokens 16   # agreement, hops, throughput, EE, RSS
    python benchmarks/bench_lm.py agree --start 20 --prompts 100     # float vs integer only, one line per prompt
    python benchmarks/bench_lm.py hop                                   # transport-only loopback hop, receipts off / on
    python benchmarks/bench_lm.py attacks                               # recovery rates + a defence's cost
    python benchmarks/bench_lm.py netns                                 # 3 stages in network namespaces + added RTT sweep (root)
    python benchmarks/bench_lm.py pipeline --start 20 --no-float      # single / 3 stages / + EE on prompts 20..99
    python benchmarks/bench_lm.py failover                              # kill / stall the middle stage: recovery time
    python benchmarks/bench_lm.py builds --python /tmp/np22/bin/python # hashes across numpy builds x BLAS threads

Medians from one run, ratios side by side; stage servers are separate processes (peak RSS from
/proc/<pid>/status VmHWM). numpy only (no torch). Single-threaded BLAS is pinned for every process.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verinfer.inference import attacks as A
from verinfer.inference.ee_llm import EEKey, encrypt_model, rekey_cost
from verinfer.inference.llama_int import IntCache, IntModel
from verinfer.inference.llama_ref import FloatModel
from verinfer.inference.pipeline import run_pipeline, shard_bytes
from verinfer.models import gguf as g

SPLIT = [(0, 10), (10, 20), (20, 30)]
SUBJECTS = ["the moon", "bread", "rivers", "a bicycle", "honey bees", "volcanoes", "chess", "the ocean", "coffee",
            "trains", "snow", "a library", "music", "gravity", "forests", "the internet", "clocks", "rain", "cats",
            "mountains"]
TEMPLATES = ["What is {}?", "Write one sentence about {}.", "Give me a fun fact about {}.",
             "Why do people like {}?", "Describe {} to a child."]


def prompts(n: int) -> list[str]:
    return [t.format(s) for t in TEMPLATES for s in SUBJECTS][:n]


def table(title: str, head: list[str], rows: list[list[object]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stages(shards: list[bytes], tmp: Path, host: str = "127.0.0.1", ns: list[str] | None = None,
                 ports: list[int] | None = None, signed: bool = False) -> tuple[list[subprocess.Popen], list[str]]:
    procs, eps = [], []
    for i, data in enumerate(shards):
        f = tmp / f"stage{i}{'s' if signed else ''}.npz"
        f.write_bytes(data)
        port = ports[i] if ports else free_port()
        h = host if ns is None else f"10.77.{i}.2"
        cmd = [sys.executable, "-m", "verinfer.inference.pipeline", "--shard", str(f), "--host", h, "--port", str(port)]
        if signed:
            cmd = [sys.executable, str(REPO / "benchmarks" / "bench_lm.py"), "stage", "--signed", "--shard", str(f),
                   "--host", h, "--port", str(port)]
        if ns is not None:
            cmd = ["ip", "netns", "exec", ns[i]] + cmd
        p = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
        procs.append(p)
        eps.append(f"{h}:{port}")
    for p in procs:
        if "listening" not in (p.stdout.readline() if p.stdout else ""):
            raise RuntimeError("a stage did not start")
    return procs, eps


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def agreement_rows(rows: dict[str, list[list[int]]], base: str) -> list[list[str]]:
    """Per run: sequences and tokens (position by position) identical to the `base` run's."""
    ref = rows[base]
    out = []
    for k, v in rows.items():
        seqs = sum(a == b for a, b in zip(v, ref, strict=True))
        toks = sum(x == y for a, b in zip(v, ref, strict=True) for x, y in zip(a, b, strict=True))
        out.append([k, f"{seqs}/{len(ref)}", f"{toks}/{sum(len(b) for b in ref)}"])
    return out


def decode_tps(res, n: int) -> float:
    return (n - 1) / max(res.total_s - res.ttft_s, 1e-9)


def bench_pipeline(args: argparse.Namespace) -> None:
    ck = g.read_gguf()
    tok = g.BpeTokenizer(ck.tokenizer)
    head = IntModel(ck)
    ref = None if args.no_float else FloatModel(ck)
    start = args.start
    texts = prompts(args.prompts)[start:]
    n = args.tokens
    t_begin = time.monotonic()
    key = EEKey.generate(ck.config, seed=42)
    parts = [IntModel(ck, r, globals_=False) for r in SPLIT]
    t0 = time.perf_counter()
    enc_parts = [encrypt_model(p, key) for p in parts]
    rekey_s = time.perf_counter() - t0
    rk = rekey_cost(parts[1], 7)
    plain_sh = [shard_bytes(p) for p in parts]
    enc_sh = [shard_bytes(p) for p in enc_parts]
    del parts, enc_parts
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        (tmp / "p").mkdir()
        (tmp / "e").mkdir()
        pp, peps = start_stages(plain_sh, tmp / "p")
        ep, eeps = start_stages(enc_sh, tmp / "e")
        rows: dict[str, list[list[int]]] = {"single": [], "stage3": [], "stage3ee": []}
        if not args.no_float:
            rows = {"float": [], **rows}
        t_single, t_s3, t_ee, hops, ttft = [], [], [], [], {"single": [], "stage3": [], "stage3ee": []}
        try:
            for i, text in enumerate(texts, start=start):
                if args.stop_after and time.monotonic() - t_begin > args.stop_after:
                    print(f"stopping before prompt {i}: --stop-after {args.stop_after} s reached", file=sys.stderr)
                    break
                ids = tok.chat(text)
                if ref is not None:
                    rows["float"].append(ref.generate(ids, n))
                ts = time.perf_counter()
                c = IntCache()
                h = head.forward(head.embed(ids), c, 0)
                ttft["single"].append(time.perf_counter() - ts)
                out, pos = [], len(ids)
                td = time.perf_counter()
                for k in range(n):
                    out.append(head.next_token(h[-1]))
                    if k < n - 1:
                        h = head.forward(head.embed([out[-1]], pos), c, pos)
                        pos += 1
                t_single.append((n - 1) / (time.perf_counter() - td))
                rows["single"].append(out)
                r3 = run_pipeline(head, ids, [[e] for e in peps], n)
                re_ = run_pipeline(head, ids, [[e] for e in eeps], n, key=key)
                rows["stage3"].append(r3.tokens)
                rows["stage3ee"].append(re_.tokens)
                t_s3.append(decode_tps(r3, n))
                t_ee.append(decode_tps(re_, n))
                ttft["stage3"].append(r3.ttft_s)
                ttft["stage3ee"].append(re_.ttft_s)
                hops += r3.hop_overhead_us()
                same = " ".join(f"{k} {sum(x == y for x, y in zip(v[-1], out, strict=True))}/{n}" for k, v in rows.items()
                                if k != "single")
                print(f"prompt {i}: {same} {tok.decode(out)[:50]!r}", flush=True)
            rss_p = [peak_rss_mb(p.pid) for p in pp]
            rss_e = [peak_rss_mb(p.pid) for p in ep]
        finally:
            stop(pp + ep)
    done = len(rows["single"])
    table(f"Greedy tokens vs the integer single process (prompts {start}..{start + done - 1} x {n} tokens)",
          ["run", "identical sequences", "identical tokens"], agreement_rows(rows, "single"))
    med = statistics.median
    table("Decode throughput and latency (medians over prompts)",
          ["run", "decode tok/s", "ratio vs single", "TTFT s"],
          [["single process (int)", f"{med(t_single):.2f}", "1.00", f"{med(ttft['single']):.2f}"],
           ["3 stages (int)", f"{med(t_s3):.2f}", f"{med(t_s3) / med(t_single):.2f}", f"{med(ttft['stage3']):.2f}"],
           ["3 stages + EE (int)", f"{med(t_ee):.2f}", f"{med(t_ee) / med(t_single):.2f}", f"{med(ttft['stage3ee']):.2f}"]])
    table("Per-hop overhead on loopback (decode steps; round trip minus stage compute)",
          ["hops", "p50 ms", "p90 ms"],
          [[len(hops), f"{np.percentile(hops, 50) / 1e3:.3f}", f"{np.percentile(hops, 90) / 1e3:.3f}"]])
    table("EE cost", ["what", "value"],
          [["runtime overhead (3 stages + EE vs 3 stages, decode tok/s)", f"{(med(t_s3) / med(t_ee) - 1) * 100:+.2f}%"],
           ["one-time transform of all 30 layers", f"{rekey_s:.1f} s"],
           ["re-key one 10-layer shard: keygen / transform / weights", f"{rk['keygen_s']:.3f} s / {rk['transform_s']:.1f} s / {rk['weights_mb']:.0f} MB"],
           ["key size (whole model)", f"{key.nbytes() / 1024:.0f} KiB"]])
    table("Peak RSS per stage process (MB)", ["stage", "layers", "plain", "EE"],
          [[i, f"{lo}:{hi}", f"{rss_p[i]:.0f}", f"{rss_e[i]:.0f}"] for i, (lo, hi) in enumerate(SPLIT)])


def bench_agree(args: argparse.Namespace) -> None:
    """Float reference vs integer profile only (one process), prompts [start, prompts): one line per prompt."""
    ck = g.read_gguf()
    tok = g.BpeTokenizer(ck.tokenizer)
    im, fm = IntModel(ck), FloatModel(ck)
    same_seq = same_tok = done = 0
    for i, text in enumerate(prompts(args.prompts)[args.start:], start=args.start):
        ids = tok.chat(text)
        a, b = fm.generate(ids, args.tokens), im.generate(ids, args.tokens)
        done += 1
        same_seq += a == b
        same_tok += sum(x == y for x, y in zip(a, b))
        print(f"prompt {i}: float == int: {a == b} ({sum(x == y for x, y in zip(a, b))}/{args.tokens})", flush=True)
    table(f"Float reference vs integer profile, prompts {args.start}..{args.start + done - 1} x {args.tokens} tokens",
          ["identical sequences", "identical tokens"], [[f"{same_seq}/{done}", f"{same_tok}/{done * args.tokens}"]])


# ------------------------------------------------------------------ bit-exactness across numpy builds

def blas_identity() -> dict[str, str]:
    """Which numpy, which BLAS it links (numpy.show_config), which SIMD extensions it found on this CPU."""
    cfg = np.show_config(mode="dicts")
    blas = cfg.get("Build Dependencies", {}).get("blas", {})
    simd = cfg.get("SIMD Extensions", {})
    ob = str(blas.get("openblas configuration", ""))
    from threadpoolctl import threadpool_info  # what is loaded at run time: kernel architecture, thread count

    rt = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} threads={i.get('num_threads')}"
          for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"numpy": np.__version__, "blas": f"{blas.get('name', '?')} {blas.get('version', '?')}",
            "blas_config": ob, "simd": " ".join(str(x) for x in simd.get("found", []) or []),
            "blas_runtime": "; ".join(rt), "python": sys.version.split()[0]}


def builds_run(args: argparse.Namespace) -> None:
    """`bench_lm.py builds-run` (the child of `builds`): per prompt, the greedy tokens' `tokens_hash` and the sha256
    of the last hidden state (the rows the last token was chosen from), as one JSON line. Imports only the integer
    runtime (numpy, gguf, the tokenizer), so it runs in a throwaway venv with another numpy."""
    import hashlib
    import json

    from verinfer.inference.pipeline import greedy_tokens, tokens_hash

    t0 = time.perf_counter()
    ck = g.read_gguf(args.gguf or None)
    tok = g.BpeTokenizer(ck.tokenizer)
    model = IntModel(ck)
    out: dict[str, object] = {**blas_identity(), "threads": os.environ.get("OPENBLAS_NUM_THREADS", "")}
    rows = []
    for text in prompts(args.prompts):
        ids = tok.chat(text)
        cache, last = IntCache(), {}

        def through(h: np.ndarray, pos: int, decode: bool, cache: IntCache = cache, last: dict = last) -> np.ndarray:
            last["h"] = model.forward(h, cache, pos)
            return last["h"]

        toks = list(greedy_tokens(model, ids, args.tokens, through, False))
        rows.append({"tokens": toks, "tokens_hash": f"{tokens_hash(toks):064x}",
                     "hidden_sha256": hashlib.sha256(np.ascontiguousarray(last["h"], dtype="<i8").tobytes()).hexdigest()})
        print(f"prompt {len(rows) - 1} done", file=sys.stderr, flush=True)
    out["prompts"] = rows
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


def compare_hashes(runs: list[dict]) -> tuple[list[list[object]], bool]:
    """Per prompt: is `tokens_hash` and the final hidden sha256 the same in every run? (rows, all identical)."""
    n = {len(r["prompts"]) for r in runs}
    if len(n) != 1:
        raise ValueError(f"runs cover different numbers of prompts: {sorted(n)}")
    rows, ok = [], True
    for i in range(n.pop()):
        th = {r["prompts"][i]["tokens_hash"] for r in runs}
        hs = {r["prompts"][i]["hidden_sha256"] for r in runs}
        same = len(th) == 1 and len(hs) == 1
        ok &= same
        rows.append([i, runs[0]["prompts"][i]["tokens_hash"][:16], runs[0]["prompts"][i]["hidden_sha256"][:16],
                     f"{len(runs) - 1 if len(th) == 1 else 'no'}", "yes" if same else f"no ({len(th)} / {len(hs)})"])
    return rows, ok


def bench_builds(args: argparse.Namespace) -> None:
    """Run `builds-run` under each python (this venv first) x each BLAS thread count; compare every hash."""
    import json

    gguf_path = str(g.smollm_path())
    runs = []
    # every python x thread count; then this venv, 1 thread, with each forced OpenBLAS kernel family (DYNAMIC_ARCH
    # builds honour OPENBLAS_CORETYPE): other SIMD code paths in the same build
    plan = [(py, th, "") for py in [sys.executable, *args.python] for th in args.threads]
    plan += [(sys.executable, 1, c) for c in args.coretypes]
    for py, th, core in plan:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": str(th), "OMP_NUM_THREADS": str(th),
               "MKL_NUM_THREADS": str(th)}
        env.pop("OPENBLAS_CORETYPE", None)
        if core:
            env["OPENBLAS_CORETYPE"] = core
        out = subprocess.run([py, str(Path(__file__).resolve()), "builds-run", "--prompts", str(args.prompts),
                              "--tokens", str(args.tokens), "--gguf", gguf_path], env=env, capture_output=True,
                             text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{py} (threads {th}) failed: {out.stderr[-1500:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["exe"] = py
        runs.append(r)
        print(f"{py} threads {th} {core}: numpy {r['numpy']}, {r['blas']}, {r['wall_s']} s", file=sys.stderr, flush=True)
    table("Builds and thread counts compared", ["python", "numpy", "BLAS (numpy.show_config)", "OpenBLAS build config",
                                               "SIMD found", "BLAS loaded (threadpoolctl)", "wall s"],
          [[r["exe"], r["numpy"], r["blas"], r["blas_config"] or "-", r["simd"] or "-", r["blas_runtime"], r["wall_s"]]
           for r in runs])
    rows, ok = compare_hashes(runs)
    table(f"Per prompt, {len(runs)} runs ({args.prompts} prompts x {args.tokens} tokens)",
          ["prompt", "tokens_hash (first run)", "final hidden sha256 (first run)", "runs agreeing with the first",
           "all identical"], rows)
    print(f"\nall {len(rows)} prompts bit-identical across {len(runs)} runs: {ok}")


# ------------------------------------------------------------------ failover: kill / stall the middle stage

@dataclass
class Call:
    """One `StageConn.forward` as the head saw it (monotonic seconds)."""

    endpoint: str
    pos: int
    rows: int
    t0: float
    t1: float
    fault: str | None = None


def failover_timing(calls: list[Call], t_kill: float, token_times: list[float], victim: str, spare: str,
                    recovery_s: float) -> dict[str, float]:
    """Split kill -> next token: detection (the first call to the victim that fails after the kill, from the kill
    or from that call's start, whichever is later), the spare's replay of the recorded prefix (its pos-0 FORWARD),
    reconnect (the rest of the head's `replace`, measured by `RunResult.recoveries_s`)."""
    bad = next(c for c in calls if c.endpoint == victim and c.fault is not None and c.t1 >= t_kill)
    rep = next(c for c in calls if c.endpoint == spare and c.pos == 0 and c.t0 >= bad.t1)
    nxt = next(t for t in token_times if t > rep.t1)
    total = nxt - t_kill
    replay = rep.t1 - rep.t0
    return {"detect_s": bad.t1 - max(t_kill, bad.t0), "replay_s": replay, "reconnect_s": recovery_s - replay,
            "prefix": rep.rows, "kill_to_token_s": total, "replay_share": replay / total}


def _start_stage(shard: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "verinfer.inference.pipeline", "--shard", str(shard), "--port",
                          str(port)], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    if "listening" not in (p.stdout.readline() if p.stdout else ""):
        raise RuntimeError("a stage did not start")
    return p, f"127.0.0.1:{port}"


def bench_failover(args: argparse.Namespace) -> None:
    """3 stage processes + a spare for 10:20; per prompt a no-failure run, then per kill point a run whose middle
    stage (a fresh process) is SIGKILLed `--kill-delay` s after the head sent it the FORWARD for the token after
    `k` emitted tokens; then `--stall-prompts` runs where it is SIGSTOPped instead (a stall: socket open, no
    answer, detected only by the per-call timeout)."""
    import signal
    import threading

    from verinfer.inference import pipeline as P

    ck = g.read_gguf()
    tok = g.BpeTokenizer(ck.tokenizer)
    head = IntModel(ck)
    shards = [shard_bytes(IntModel(ck, r, globals_=False)) for r in SPLIT]
    calls: list[Call] = []
    token_times: list[float] = []
    trigger: dict[str, object] = {}
    orig_forward = P.StageConn.forward

    def forward(conn: P.StageConn, sid: bytes, pos: int, h: np.ndarray) -> tuple[np.ndarray, int]:
        if trigger and conn.endpoint == trigger["endpoint"] and pos == trigger["pos"] and "t" not in trigger:
            def fire() -> None:
                trigger["t"] = time.monotonic()
                os.kill(int(trigger["pid"]), int(trigger["sig"]))  # type: ignore[arg-type]
            threading.Timer(args.kill_delay, fire).start()
        t0 = time.monotonic()
        try:
            out = orig_forward(conn, sid, pos, h)
        except P.StageFault as exc:
            calls.append(Call(conn.endpoint, pos, h.shape[0], t0, time.monotonic(), exc.kind))
            raise
        calls.append(Call(conn.endpoint, pos, h.shape[0], t0, time.monotonic()))
        return out

    def next_token(h_last: np.ndarray) -> int:
        t = IntModel.next_token(head, h_last)
        token_times.append(time.monotonic())
        return t

    P.StageConn.forward = forward  # type: ignore[method-assign]
    head.next_token = next_token  # type: ignore[method-assign]
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        files = []
        for i, data in enumerate(shards):
            files.append(tmp / f"stage{i}.npz")
            files[-1].write_bytes(data)
        procs, eps = [], []
        for f in (files[0], files[1], files[2]):  # first, spare middle, last
            pr, ep = _start_stage(f)
            procs.append(pr)
            eps.append(ep)
        s0, spare, s2 = eps
        plan = [(i, k, "kill") for i in range(args.prompts) for k in args.kill_at]
        plan += [(i, args.kill_at[len(args.kill_at) // 2], "stall") for i in range(args.stall_prompts)]
        base: dict[int, tuple[list[int], float]] = {}
        try:
            for i, k, mode in plan:
                ids = tok.chat(prompts(args.prompts)[i])
                if i not in base:
                    token_times.clear()
                    r = run_pipeline(head, ids, [[s0], [spare], [s2]], args.tokens, timeout=args.timeout)
                    base[i] = (r.tokens, statistics.median(np.diff(token_times)))
                victim, vep = _start_stage(files[1])
                calls.clear()
                token_times.clear()
                trigger.clear()
                trigger.update(endpoint=vep, pos=len(ids) + k - 1, pid=victim.pid,
                               sig=signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
                try:
                    r = run_pipeline(head, ids, [[s0], [vep, spare], [s2]], args.tokens, timeout=args.timeout)
                finally:
                    victim.kill()
                    victim.wait()
                if "t" not in trigger or len(r.recoveries_s) != 1:
                    raise RuntimeError(f"prompt {i} k={k} {mode}: no failover happened ({r.faults})")
                t = failover_timing(calls, float(trigger["t"]), token_times, vep, spare,  # type: ignore[arg-type]
                                    r.recoveries_s[0])
                same = r.tokens == base[i][0]
                kinds = ",".join(f.kind for f in r.faults)
                results.append((mode, k, same, t, base[i][1]))
                rows.append([i, k, mode, kinds, "yes" if same else "NO", t["prefix"], f"{t['detect_s'] * 1e3:.0f}",
                             f"{t['reconnect_s'] * 1e3:.1f}", f"{t['replay_s'] * 1e3:.0f}",
                             f"{t['kill_to_token_s'] * 1e3:.0f}", f"{t['replay_share'] * 100:.0f}%",
                             f"{base[i][1] * 1e3:.0f}"])
                print("| " + " | ".join(str(x) for x in rows[-1]) + " |", file=sys.stderr, flush=True)
        finally:
            P.StageConn.forward = orig_forward  # type: ignore[method-assign]
            del head.next_token
            stop(procs)
    table(f"Failover runs (SmolLM2 integer profile, 3 stages + 1 spare for 10:20, {args.tokens} tokens, per-call "
          f"timeout {args.timeout:g} s, kill {args.kill_delay * 1e3:.0f} ms after the FORWARD was sent)",
          ["prompt", "killed after k tokens", "mode", "fault", "tokens identical", "prefix replayed (rows)",
           "detect ms", "reconnect ms", "replay ms", "kill -> next token ms", "replay share", "normal step ms"], rows)
    med = statistics.median
    summary = []
    for mode in ("kill", "stall"):
        for k in sorted({r[1] for r in results if r[0] == mode}):
            sel = [r for r in results if r[0] == mode and r[1] == k]
            summary.append([mode, k, len(sel), f"{sum(r[2] for r in sel)}/{len(sel)}",
                            f"{med(r[3]['prefix'] for r in sel):.0f}",
                            *[f"{med(r[3][x] for r in sel) * 1e3:.0f}" for x in ("detect_s", "replay_s",
                                                                                   "kill_to_token_s")],
                            f"{med(r[3]['replay_share'] for r in sel) * 100:.0f}%",
                            f"{med(r[4] for r in sel) * 1e3:.0f}"])
    table("Failover medians", ["mode", "k", "runs", "tokens identical", "prefix rows", "detect ms", "replay ms",
                               "kill -> next token ms", "replay share", "normal step ms"], summary)


HOP_CHAIN_ID, HOP_REGISTRY = 31337, "0x" + "ab" * 20
HOP_KEY = "0x" + "11" * 32  # a throwaway signing key for the benchmark's signed stage


def hop_context(model: IntModel):  # noqa: ANN201 - the signed stage's receipt context (no chain here)
    from verinfer.inference.pipeline import StageContext

    return StageContext(b"\x01" * 32, model.lo, model.hi, b"\x02" * 32)


def bench_hop(args: argparse.Namespace) -> None:
    """Transport cost alone: a stage process serving zero layers, one 576-wide decode frame per call.

    Two stage processes, one without receipts (all-zero receipt field) and one signing every answer (transcript
    hash, output hash, coincurve EIP-191 signature); the head checks the signed one's receipts (hashes + signature
    recovery) as `LlmHead` does. Calls alternate between the two, so load drift hits both equally."""
    from eth_account import Account

    from verinfer.inference.pipeline import StageConn
    from verinfer.node.lmstage import recover_receipt_signer

    ck = g.random_model("llama", seed=0, n_layers=1, d_model=576, n_heads=9, n_kv_heads=3, d_ff=64,
                        context_length=4096)
    model = IntModel(ck, (0, 0), globals_=False)
    ctx = hop_context(model)
    op = Account.from_key(HOP_KEY).address
    with tempfile.TemporaryDirectory() as tmpd:
        procs, eps = start_stages([shard_bytes(model)], Path(tmpd))
        signed_procs, signed_eps = start_stages([shard_bytes(model)], Path(tmpd), signed=True)
        procs += signed_procs
        try:
            plain = StageConn(eps[0], 10)
            signed = StageConn(signed_eps[0], 10, context=ctx, verify=lambda ep, c, r: recover_receipt_signer(
                HOP_CHAIN_ID, HOP_REGISTRY, c, r) == op.lower())
            h = np.arange(576, dtype=np.int64)[None, :]
            rtt: dict[str, list[float]] = {"off": [], "on": []}
            sids = {"off": os.urandom(16), "on": os.urandom(16)}
            for i in range(args.calls):
                for mode, conn in (("off", plain), ("on", signed)) if i % 2 else (("on", signed), ("off", plain)):
                    t0 = time.perf_counter()
                    conn.forward(sids[mode], i, h)
                    rtt[mode].append((time.perf_counter() - t0) * 1e6)
            plain.close()
            signed.close()
        finally:
            stop(procs)
    p50 = {m: float(np.percentile(v, 50)) for m, v in rtt.items()}
    table(f"Loopback hop, transport only ({args.calls} decode frames of 576 int64 to a separate process, "
          "alternating)", ["receipts", "p50 ms", "p90 ms", "p99 ms"],
          [[m, *[f"{np.percentile(rtt[m], q) / 1e3:.3f}" for q in (50, 90, 99)]] for m in ("off", "on")])
    print(f"\nreceipt overhead per hop (p50 on - p50 off): {(p50['on'] - p50['off']) / 1e3:.3f} ms")


def serve_stage(args: argparse.Namespace) -> None:
    """`bench_lm.py stage --shard F --port P [--signed]`: a stage process; signed: receipts with HOP_KEY."""
    from verinfer.inference.pipeline import StageServer, load_shard
    from verinfer.node.lmstage import receipt_signer

    with open(args.shard, "rb") as f:
        model = load_shard(f.read())
    signer = receipt_signer(bytes.fromhex(HOP_KEY[2:]), HOP_CHAIN_ID, HOP_REGISTRY)(hop_context(model)) \
        if args.signed else None
    srv = StageServer(model, args.host, args.port, signer=signer)
    print(f"stage layers {model.lo}:{model.hi} listening on {args.host}:{srv.port}", flush=True)
    srv.tcp.serve_forever()


def bench_attacks(args: argparse.Namespace) -> None:
    ck = g.read_gguf()
    tok = g.BpeTokenizer(ck.tokenizer)
    im, fm = IntModel(ck), FloatModel(ck)
    key = EEKey.generate(ck.config, seed=42)
    enc = encrypt_model(im, key)
    rows = A.match_embedding_rows(im, enc, key.vocab_perm)
    base = A._dequant_emb(im) / 2**24
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(ck.config.d_model, ck.config.d_model)))
    vp = rng.permutation(ck.config.vocab_size)
    orth = A.match_embedding_orthogonal(base, base[vp] @ q, vp)
    vm_rows = []
    template = sorted(set(tok.chat("")))  # the public chat template's tokens: tried first at every position
    for text in prompts(100)[::7][:args.prompts]:
        ids = tok.chat(text)
        h = im.embed(ids)
        c = IntCache()
        for i in range(args.boundary):
            h = im._block(i, h, c, 0)
        got, res = A.vocab_matching(im, fm, args.boundary, key.encrypt_hidden(h), batch=args.batch,
                                    max_candidates=args.max_candidates, prefer=template)
        vm_rows.append((sum(a == b for a, b in zip(got, ids)), len(ids), res.seconds, res.candidates_tried))
    rec = sum(r[0] for r in vm_rows)
    tot = sum(r[1] for r in vm_rows)
    # defence: embedding + head stay with the requester (split inference); its cost per token
    ids = tok.chat(prompts(1)[0])
    h = im.forward(im.embed(ids), IntCache(), 0)
    t0 = time.perf_counter()
    for _ in range(10):
        im.next_token(h[-1])
        im.embed([5], len(ids))
    client_ms = (time.perf_counter() - t0) / 10 * 1e3
    client_mb = (im.emb_q.nbytes + im.emb_d.nbytes + im.head.q.nbytes + im.head.d.nbytes) / 2**20
    table("Attack recovery rates on SmolLM2-135M (adversary holds the public base model)",
          ["deployment / attack", "recovered", "rate", "time"],
          [["int EE (vocab perm + block hidden perm + signs): embedding-row matching by sorted absolute values",
            f"{rows.recovered}/{rows.total}", f"{rows.rate * 100:.2f}%", f"{rows.seconds:.1f} s"],
           ["float EE with orthogonal hidden mixing: norms + Procrustes + nearest neighbour",
            f"{orth.recovered}/{orth.total}", f"{orth.rate * 100:.2f}%", f"{orth.seconds:.1f} s"],
           [f"int EE, split inference: vocabulary matching on the hidden states entering layer {args.boundary} "
            f"({len(vm_rows)} prompts, <= {args.max_candidates} candidates per position, prior-ranked)", f"{rec}/{tot}", f"{rec / tot * 100:.2f}%",
            f"{statistics.median(r[2] / r[1] for r in vm_rows):.1f} s/token"]])
    table("Defence: keep embedding and head with the requester (stages never see token ids or the embedding)",
          ["what", "value"],
          [["embedding-row matching possible", "no (stages hold no embedding)"],
           ["vocabulary matching on a middle stage", f"still {rec / tot * 100:.2f}% (defence does not help)"],
           ["requester cost per token (embed + final norm + head)", f"{client_ms:.1f} ms"],
           ["requester memory for embedding + head", f"{client_mb:.0f} MB"]])


class DelayLine:
    """TCP relay adding `rtt_ms` per round trip (rtt/2 each way, a delay line: chunks keep their spacing).

    Used because `tc qdisc ... netem` is unavailable in this kernel ("Specified qdisc kind is unknown").
    """

    def __init__(self, upstream: str, rtt_ms: float, port: int | None = None) -> None:
        import asyncio
        import threading

        self.delay = rtt_ms / 2000
        self.host, uport = upstream.rsplit(":", 1)
        self.uport = int(uport)
        self.loop = asyncio.new_event_loop()
        self.port = port or free_port()
        ready = threading.Event()

        async def pipe(reader, writer):
            q: asyncio.Queue = asyncio.Queue()

            async def pump():
                while True:
                    t, data = await q.get()
                    if data is None:
                        writer.close()
                        return
                    wait = t + self.delay - self.loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    writer.write(data)
                    await writer.drain()

            task = asyncio.ensure_future(pump())
            while True:
                data = await reader.read(1 << 20)
                await q.put((self.loop.time(), data or None))
                if not data:
                    break
            await task

        async def handle(r1, w1):
            import socket as _s

            w1.get_extra_info("socket").setsockopt(_s.IPPROTO_TCP, _s.TCP_NODELAY, 1)
            r2, w2 = await asyncio.open_connection(self.host, self.uport)
            w2.get_extra_info("socket").setsockopt(_s.IPPROTO_TCP, _s.TCP_NODELAY, 1)
            await asyncio.gather(pipe(r1, w2), pipe(r2, w1), return_exceptions=True)

        async def serve():
            await asyncio.start_server(handle, "127.0.0.1", self.port)
            ready.set()

        threading.Thread(target=lambda: (self.loop.run_until_complete(serve()), self.loop.run_forever()),
                         daemon=True).start()
        ready.wait()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


def _sh(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True)


def bench_netns(args: argparse.Namespace) -> None:
    ck = g.read_gguf()
    tok = g.BpeTokenizer(ck.tokenizer)
    head = IntModel(ck)
    shards = [shard_bytes(IntModel(ck, r, globals_=False)) for r in SPLIT]
    ns = [f"vilm{i}" for i in range(3)]
    try:
        for i, n in enumerate(ns):
            _sh(f"ip netns add {n}")
            _sh(f"ip link add vilm{i}h type veth peer name vilm{i}s")
            _sh(f"ip link set vilm{i}s netns {n}")
            _sh(f"ip addr add 10.77.{i}.1/24 dev vilm{i}h && ip link set vilm{i}h up")
            _sh(f"ip netns exec {n} ip addr add 10.77.{i}.2/24 dev vilm{i}s")
            _sh(f"ip netns exec {n} ip link set vilm{i}s up && ip netns exec {n} ip link set lo up")
        rows = []
        with tempfile.TemporaryDirectory() as tmpd:
            procs, eps = start_stages(shards, Path(tmpd), ns=ns, ports=[8810, 8811, 8812])
            try:
                acc: dict[int, tuple[list[float], list[float]]] = {r: ([], []) for r in args.rtts}
                for rep in range(args.reps):  # RTTs interleaved, so load drift hits all of them alike
                    for rtt in args.rtts:
                        ttft, per_tok = acc[rtt]
                        # stages in their netns over veth; the RTT is added by relay processes (no netem here)
                        rports = [free_port() for _ in eps]
                        relays = [subprocess.Popen([sys.executable, __file__, "relay", "--upstream", e, "--rtt",
                                                    str(rtt), "--port", str(rp)], stdout=subprocess.PIPE, text=True)
                                  for e, rp in zip(eps, rports)]
                        for rl in relays:
                            rl.stdout.readline()
                        stages = [[f"127.0.0.1:{rp}"] for rp in rports]
                        run_pipeline(head, tok.chat("Hi"), stages, 2, timeout=120)  # warm-up
                        for text in prompts(args.prompts):
                            r = run_pipeline(head, tok.chat(text), stages, args.tokens, timeout=120)
                            ttft.append(r.ttft_s)
                            per_tok.append((r.total_s - r.ttft_s) / (args.tokens - 1))
                        stop(relays)
                        print(f"rep {rep} rtt {rtt} ms done", file=sys.stderr, flush=True)
                for rtt in args.rtts:
                    ttft, per_tok = acc[rtt]
                    rows.append([rtt, f"{statistics.median(ttft) * 1e3:.0f}", f"{statistics.median(per_tok) * 1e3:.0f}"])
            finally:
                stop(procs)
        base = float(rows[0][2])
        table(f"3 stages in network namespaces (veth), added RTT per hop ({args.reps} interleaved sweeps x "
              f"{args.prompts} prompts x {args.tokens} tokens; medians)",
              ["RTT ms", "TTFT ms", "per-token ms", "per-token vs 0 ms", "star lower bound: + 3 x RTT"],
              [r + [f"{float(r[2]) / base:.2f}x", f"{base + 3 * r[0]:.0f} ms"] for r in rows])
    finally:
        for i, n in enumerate(ns):
            subprocess.run(f"ip link del vilm{i}h 2>/dev/null; ip netns del {n} 2>/dev/null", shell=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pipeline")
    p.add_argument("--prompts", type=int, default=100)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--start", type=int, default=0, help="first prompt index (prompts start..prompts-1)")
    p.add_argument("--no-float", action="store_true", help="skip the float reference (measured by `agree`)")
    p.add_argument("--stop-after", type=float, default=0, help="start no new prompt after this many seconds")
    a = sub.add_parser("attacks")
    a.add_argument("--prompts", type=int, default=3)
    a.add_argument("--boundary", type=int, default=10)
    a.add_argument("--batch", type=int, default=128)
    a.add_argument("--max-candidates", type=int, default=1024)
    n = sub.add_parser("netns")
    n.add_argument("--prompts", type=int, default=2)
    n.add_argument("--tokens", type=int, default=8)
    n.add_argument("--rtts", type=int, nargs="+", default=[0, 1, 5, 20])
    n.add_argument("--reps", type=int, default=3)
    ag = sub.add_parser("agree")
    ag.add_argument("--start", type=int, default=20)
    ag.add_argument("--prompts", type=int, default=100)
    ag.add_argument("--tokens", type=int, default=16)
    hp = sub.add_parser("hop")
    hp.add_argument("--calls", type=int, default=2000)
    sp = sub.add_parser("stage")
    sp.add_argument("--shard", required=True)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument("--signed", action="store_true")
    fo = sub.add_parser("failover")
    fo.add_argument("--prompts", type=int, default=5)
    fo.add_argument("--tokens", type=int, default=12)
    fo.add_argument("--kill-at", type=int, nargs="+", default=[2, 6, 10], help="kill after k emitted tokens")
    fo.add_argument("--kill-delay", type=float, default=0.02, help="s after the FORWARD to the victim was sent")
    fo.add_argument("--timeout", type=float, default=20.0, help="per-call socket timeout (the node default)")
    fo.add_argument("--stall-prompts", type=int, default=2)
    bu = sub.add_parser("builds")
    bu.add_argument("--python", nargs="*", default=[], help="other interpreters (venvs with another numpy)")
    bu.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    bu.add_argument("--coretypes", nargs="*", default=[], help="OPENBLAS_CORETYPE values to force (this venv)")
    bu.add_argument("--prompts", type=int, default=10)
    bu.add_argument("--tokens", type=int, default=16)
    br = sub.add_parser("builds-run")
    br.add_argument("--prompts", type=int, default=10)
    br.add_argument("--tokens", type=int, default=16)
    br.add_argument("--gguf", default="")
    r = sub.add_parser("relay")
    r.add_argument("--upstream", required=True)
    r.add_argument("--rtt", type=float, required=True)
    r.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    {"pipeline": bench_pipeline, "attacks": bench_attacks, "netns": bench_netns, "relay": relay, "hop": bench_hop, "stage": serve_stage,
     "agree": bench_agree, "failover": bench_failover, "builds": bench_builds, "builds-run": builds_run}[args.cmd](args)


def relay(args: argparse.Namespace) -> None:
    DelayLine(args.upstream, args.rtt, args.port)
    print("relay ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
