"""Where a `python -m verinfer.node` process spends CPU, by thread and call site (a load-benchmark diagnosis aid).

`benchmarks/bench_load.py --profile DIR` puts this directory on the nodes' PYTHONPATH and sets
VERINFER_NODE_CPU_PROFILE=DIR. A sampler thread reads every thread's CPU time from /proc/self/task
every 50 ms and charges each thread's CPU since the last sample to its stack at that moment: once to
the innermost verinfer frame (self) and once to every verinfer function on the stack (inclusive).
Threads without Python frames (the Groth16 prover's native pool) are charged by thread name.
It also counts the JSON-RPC requests the node sends, by method (web3's HTTPProvider, patched once loaded),
in all and since DIR/mark appeared (bench_load.py creates it just before the burst).
The report, DIR/node-<pid>.txt, is rewritten every 5 s, so a node killed at the end still leaves one.
Overhead: a few ms of CPU per second (cProfile with a CPU timer slowed the nodes several-fold).
"""

from __future__ import annotations

import os
import sys
import threading
import time

_DIR = os.environ.get("VERINFER_NODE_CPU_PROFILE")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _task_cpu() -> dict[int, tuple[float, str]]:
    out: dict[int, tuple[float, str]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        f = raw.rsplit(")", 1)[1].split()
        out[int(tid)] = ((int(f[11]) + int(f[12])) / _TICK, comm)
    return out


def _sites(frame: object) -> tuple[str, list[str]]:
    """(innermost frame as file:function, verinfer functions on the stack, innermost first)."""
    f: object = frame
    leaf = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"  # type: ignore[attr-defined]
    ours: list[str] = []
    while f is not None:
        code = f.f_code  # type: ignore[attr-defined]
        if "/verinfer/" in code.co_filename or "/web3/" in code.co_filename or "/eth_abi/" in code.co_filename:
            site = f"{code.co_filename.split('/site-packages/')[-1].split('/verinfer/')[-1]}:{code.co_name}"
            if site not in ours:
                ours.append(site)
        f = f.f_back  # type: ignore[attr-defined]
    return leaf, ours


_RPCS: dict[str, int] = {}


def _count_rpcs() -> bool:
    """Wrap HTTPProvider.make_request once web3 is imported (counts every request the node sends)."""
    mod = sys.modules.get("web3.providers.rpc.rpc")
    if mod is None:
        return False
    cls = mod.HTTPProvider
    inner = cls.make_request

    def make_request(self: object, method: str, params: object) -> object:
        _RPCS[method] = _RPCS.get(method, 0) + 1
        return inner(self, method, params)

    cls.make_request = make_request
    return True


def _run(path: str) -> None:
    me = threading.get_native_id()
    patched = False
    mark: dict[str, int] | None = None
    mark_path = os.path.join(os.path.dirname(path), "mark")
    prev = _task_cpu()
    self_cpu: dict[str, float] = {}
    incl: dict[str, float] = {}
    by_thread: dict[str, float] = {}
    last_write = time.monotonic()
    start = time.monotonic()
    while True:
        time.sleep(0.05)
        patched = patched or _count_rpcs()
        if mark is None and os.path.exists(mark_path):
            mark = dict(_RPCS)
        now = _task_cpu()
        frames = sys._current_frames()
        idents = {t.native_id: (t.ident, t.name) for t in threading.enumerate()}
        for tid, (cpu, comm) in now.items():
            delta = cpu - prev.get(tid, (0.0, ""))[0]
            if delta <= 0:
                continue
            ident, name = idents.get(tid, (None, comm))
            group = ("sampler" if tid == me else name.split("_")[0].rstrip("0123456789-")) or comm
            by_thread[group] = by_thread.get(group, 0.0) + delta
            frame = frames.get(ident) if ident is not None else None
            if frame is None:
                key = f"[{group}] native"
                self_cpu[key] = self_cpu.get(key, 0.0) + delta
                continue
            leaf, ours = _sites(frame)
            key = f"[{group}] {ours[0] if ours else '-'} > {leaf}"
            self_cpu[key] = self_cpu.get(key, 0.0) + delta
            for site in ours:
                incl[site] = incl.get(site, 0.0) + delta
        prev = now
        if time.monotonic() - last_write > 5:
            last_write = time.monotonic()
            total = sum(by_thread.values())
            lines = [f"wall {last_write - start:.0f} s, CPU {total:.2f} s (sampled every 50 ms)", "", "by thread:"]
            lines += [f"{v:8.2f}  {k}" for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1])]
            rpcs = dict(_RPCS)
            lines += ["", f"JSON-RPC requests: {sum(rpcs.values())}"]
            lines += [f"{v:8d}  {k}" for k, v in sorted(rpcs.items(), key=lambda kv: -kv[1])]
            if mark is not None:
                since = {k: v - mark.get(k, 0) for k, v in rpcs.items() if v - mark.get(k, 0)}
                lines += ["", f"JSON-RPC requests since the burst started: {sum(since.values())}"]
                lines += [f"{v:8d}  {k}" for k, v in sorted(since.items(), key=lambda kv: -kv[1])]
            lines += ["", "self (innermost verinfer/web3 frame > leaf):"]
            lines += [f"{v:8.2f}  {k}" for k, v in sorted(self_cpu.items(), key=lambda kv: -kv[1])[:60]]
            lines += ["", "inclusive (verinfer/web3 functions):"]
            lines += [f"{v:8.2f}  {k}" for k, v in sorted(incl.items(), key=lambda kv: -kv[1])[:80]]
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                fh.write("\n".join(lines) + "\n")
            os.replace(tmp, path)


if _DIR and "--key" in sys.argv:  # only the node daemon (`python -m verinfer.node --key …`), not tools it spawns
    threading.Thread(target=_run, args=(os.path.join(_DIR, f"node-{os.getpid()}.txt"),), name="cpu-sampler",
                     daemon=True).start()
