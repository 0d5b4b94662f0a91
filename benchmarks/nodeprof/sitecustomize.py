"""CPU profile of a `python -m verinfer.node` process, every thread (a diagnosis aid for the load benchmark).

`benchmarks/bench_load.py --profile DIR` puts this directory on the nodes' PYTHONPATH and sets
VERINFER_NODE_CPU_PROFILE=DIR. Each thread gets its own cProfile.Profile timed by `time.thread_time`
(CPU seconds, not wall time: a thread waiting on an RPC or a lock costs nothing), and at exit the merged
stats go to DIR/node-<pid>.prof (read with `python -m pstats` or benchmarks/nodeprof/report.py).
The profiler roughly doubles the CPU a node uses: compare shares, not absolute seconds, with a plain run.
"""

from __future__ import annotations

import atexit
import cProfile
import os
import sys
import threading
import time

_DIR = os.environ.get("VERINFER_NODE_CPU_PROFILE")
if _DIR and "--key" in sys.argv:  # only the node daemon (`python -m verinfer.node --key …`), not tools it spawns
    _profiles: list[cProfile.Profile] = []
    _lock = threading.Lock()

    def _start(*_: object) -> None:
        """First profile event in a new thread: replace this hook with the thread's own profiler."""
        pr = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append(pr)
        pr.enable()

    def _dump() -> None:
        import pstats  # noqa: PLC0415

        with _lock:
            profiles = list(_profiles)
        stats = None
        for pr in profiles:
            try:
                pr.disable()
            except Exception:  # noqa: BLE001 - another thread's profiler: snapshot as is
                pass
            try:
                pr.create_stats()
            except Exception:  # noqa: BLE001
                continue
            if not getattr(pr, "stats", None):
                continue
            stats = pstats.Stats(pr) if stats is None else (stats.add(pr) or stats)
        if stats is not None:
            stats.dump_stats(os.path.join(_DIR, f"node-{os.getpid()}.prof"))

    threading.setprofile(_start)
    _main = cProfile.Profile(time.thread_time)
    _profiles.append(_main)
    _main.enable()
    atexit.register(_dump)
