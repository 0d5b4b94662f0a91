"""The measurement harness: one raw-table row per (model, workload, threads, batch, method).

Noise control on a shared machine: for one task every method is built and warmed first, then the
timed runs are *interleaved* (round r runs each method once, in a rotated order), so load spikes
hit all methods of the task alike and their ratios stay meaningful. Latency is the p50 over
`reps` runs after `warmup` runs; p10/p90 are kept to show the spread. `cpu_p50_ms` is the p50 of the process CPU
time per run (all threads): unlike wall time it does not grow while the process waits for a core
on a loaded machine, so it is the contention-robust cost (equal to latency on an idle core for
one-thread methods; the sum over threads for two).

Agreement is measured on the task's own batch size and thread count against the reference:
integer models need bit-exact logits (the consensus rule), float classifiers top-1 equality,
language models greedy-token equality, with the reference = `numpy_int64` (integer models) or
`torch_fp32` eager on one thread (float models).
"""

from __future__ import annotations

import csv
import gc
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from verinfer.metainf import zoo
from verinfer.metainf.hardware import cpu_info
from verinfer.metainf.methods import METHODS, ORT_VERSION, Builder, MethodUnavailable, Runner, not_applicable

AGREEMENT_MIN = 0.99
_STRUCTURAL = ("integer models only", "no decoding loop")
COLUMNS = [
    "suite", "model", "family", "arch", "origin", "integer", "params", "width", "depth", "in_features", "out_features",
    "kv_capable", "window", "acc_bound", "task", "prompt_len", "gen_len", "batch", "threads", "method", "status",
    "reason", "reps", "p50_ms", "p10_ms", "p90_ms", "cpu_p50_ms", "build_s", "rss_delta_mb", "peak_rss_mb", "agreement",
    "agree_n", "rule", "valid", "cpu_model", "hardware_class", "torch", "onnxruntime", "run_id",
]


@dataclass(frozen=True)
class Grid:
    """What to measure. Classifier tasks: batch x threads; LM tasks: (prompt, gen) x batch x threads."""

    models: tuple[str, ...]
    batches: tuple[int, ...] = (1, 4, 16)
    threads: tuple[int, ...] = (1, 2)
    lm_batches: tuple[int, ...] = (1, 4)
    lm_threads: tuple[int, ...] = (1, 2)
    lm_workloads: tuple[tuple[int, int], ...] = ((16, 1), (128, 1), (16, 8))
    methods: tuple[str, ...] = tuple(m for m in METHODS if m != "torch_compile")
    compile_tasks: tuple[tuple[str, int], ...] = ()  # (model, batch) measured with torch_compile, 1 thread
    reps: int = 30
    warmup: int = 3
    agree_samples: int = 64  # classifier inputs checked for agreement
    agree_prompts: int = 8  # LM prompts checked for agreement


DEFAULT_GRID = Grid(
    models=tuple(zoo.ZOO),
    compile_tasks=(("mlp-128x2", 16), ("digits-mlp", 16)),
)
TINY_GRID = Grid(
    models=("digits-mlp", "mlp-128x2", "lstm-lm-64"),
    batches=(1, 4), threads=(1,), lm_batches=(1,), lm_workloads=((8, 1), (8, 4)),
    lm_threads=(1,), reps=5, warmup=1, agree_samples=16, agree_prompts=2,
)


@dataclass
class Task:
    """One workload of one model on one thread count."""

    model: str
    batch: int
    threads: int
    prompt_len: int = 0
    gen_len: int = 0
    methods: tuple[str, ...] = field(default_factory=tuple)
    suite: str = "grid"  # "compile": the torch.compile side table (not a selector candidate)


def tasks_for(subject: zoo.Subject, grid: Grid) -> list[Task]:
    """The grid's tasks for one subject."""
    out = []
    if subject.task == "classify":
        for t in grid.threads:
            for b in grid.batches:
                out.append(Task(subject.name, b, t, methods=grid.methods))
        for name, b in grid.compile_tasks:
            if name == subject.name:
                out.append(Task(subject.name, b, 1, methods=("torch_fp32", "torch_compile"), suite="compile"))
    else:
        for t in grid.lm_threads:
            for p, g in grid.lm_workloads:
                for b in grid.lm_batches:
                    out.append(Task(subject.name, b, t, p, g, methods=grid.methods))
    return out


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _inputs(subject: zoo.Subject, task: Task, n: int, seed: int) -> np.ndarray:
    if subject.task == "classify":
        assert subject.sample_inputs is not None
        return subject.sample_inputs(n, seed)
    lo = 1 if subject.exclude_zero else 0
    return np.random.default_rng(seed).integers(lo, subject.out_features, size=(n, task.prompt_len))


def _call(runner: Runner, x: np.ndarray, task: Task) -> np.ndarray:
    return runner.run(x, task.gen_len)


def _agreement(subject: zoo.Subject, out: np.ndarray, ref: np.ndarray) -> float:
    if subject.task == "generate":
        return float((out == ref).mean())
    if subject.integer:
        return float((out == ref).all(axis=1).mean())
    return float((out.argmax(axis=1) == ref.argmax(axis=1)).mean())


def _batched(runner: Runner, xs: np.ndarray, task: Task) -> np.ndarray:
    return np.concatenate([_call(runner, xs[i : i + task.batch], task) for i in range(0, len(xs), task.batch)])


def measure_task(builder: Builder, task: Task, grid: Grid, reference: Callable[[np.ndarray], np.ndarray]) -> list[dict]:
    """All of one task's rows: build + warm every method, then interleaved timed rounds."""
    import torch

    subject = builder.subject
    torch.set_num_threads(task.threads)
    x = _inputs(subject, task, task.batch, seed=1000 + task.batch)
    n_agree = grid.agree_samples if subject.task == "classify" else grid.agree_prompts
    n_agree = max(task.batch, (n_agree // task.batch) * task.batch)
    xa = _inputs(subject, task, n_agree, seed=7)
    ref_out = reference(xa)
    rule = "bit-exact" if subject.integer else ("token" if subject.task == "generate" else "top-1")
    rows: dict[str, dict] = {}
    runners: dict[str, Runner] = {}
    for method in task.methods:
        if not_applicable(subject, method) in _STRUCTURAL:
            continue  # e.g. numpy_int64 on a float model: not a measured fact, just noise in the table
        row: dict[str, Any] = {"method": method, "rule": rule}
        rows[method] = row
        rss0 = _rss_mb()
        try:
            runner = builder.build(method, task.threads)
            t0 = time.perf_counter()
            _call(runner, x, task)  # first call: torch.compile compiles here, so it counts as build time
            runner.build_s += time.perf_counter() - t0 if method == "torch_compile" else 0.0
            for _ in range(grid.warmup):
                _call(runner, x, task)
            agree = _agreement(subject, _batched(runner, xa, task), ref_out)
        except MethodUnavailable as exc:
            row.update(status="n/a", reason=str(exc))
            continue
        except Exception as exc:  # a method that crashes on this model is a measured fact, not a harness bug
            row.update(status="error", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            continue
        runners[method] = runner
        row.update(status="ok", reason="", build_s=round(runner.build_s, 4), agreement=round(agree, 4),
                   agree_n=int(np.asarray(ref_out).size if subject.task == "generate" else len(xa)),
                   valid=int(agree >= (1.0 if subject.integer else AGREEMENT_MIN)),
                   rss_delta_mb=round(_rss_mb() - rss0, 2))
    times: dict[str, list[float]] = {m: [] for m in runners}
    cpu: dict[str, list[float]] = {m: [] for m in runners}
    order = list(runners)
    for r in range(grid.reps):
        k = r % max(1, len(order))
        for method in order[k:] + order[:k]:
            c0, t0 = time.process_time_ns(), time.perf_counter_ns()
            _call(runners[method], x, task)
            times[method].append((time.perf_counter_ns() - t0) / 1e6)
            cpu[method].append((time.process_time_ns() - c0) / 1e6)
    for method, ts in times.items():
        arr = np.asarray(ts)
        rows[method].update(reps=len(ts), p50_ms=round(float(np.median(arr)), 5),
                            cpu_p50_ms=round(float(np.median(cpu[method])), 5),
                            p10_ms=round(float(np.percentile(arr, 10)), 5),
                            p90_ms=round(float(np.percentile(arr, 90)), 5), peak_rss_mb=round(_peak_mb(), 1))
    common = {
        "suite": task.suite, "model": subject.name, "family": subject.family, "arch": subject.arch, "origin": subject.origin,
        "integer": int(subject.integer), "params": subject.params, "width": subject.width, "depth": subject.depth,
        "in_features": subject.in_features, "out_features": subject.out_features, "kv_capable": int(subject.kv),
        "window": subject.window or 0, "acc_bound": subject.acc_bound if subject.acc_bound is not None else "",
        "task": subject.task, "prompt_len": task.prompt_len, "gen_len": task.gen_len, "batch": task.batch,
        "threads": task.threads,
    }
    return [{**common, **row} for row in rows.values()]


def _reference(builder: Builder) -> Callable[[Task], Callable[[np.ndarray], np.ndarray]]:
    """The task's reference outputs: numpy_int64 for integer models, torch_fp32 on one thread otherwise."""
    import torch

    method = "numpy_int64" if builder.subject.integer else "torch_fp32"
    runner = builder.build(method, 1)

    def for_task(task: Task) -> Callable[[np.ndarray], np.ndarray]:
        def ref(xs: np.ndarray) -> np.ndarray:
            torch.set_num_threads(1)
            out = _batched(runner, xs, task)
            torch.set_num_threads(task.threads)
            return out

        return ref

    return for_task


def run_grid(grid: Grid, log: Callable[[str], None] = lambda s: None) -> Iterator[dict]:
    """Measure the grid, yielding raw-table rows (model by model, so memory stays small)."""
    import onnxruntime
    import torch

    cpu = cpu_info()
    env = {"cpu_model": cpu.model, "hardware_class": cpu.hardware_class, "torch": torch.__version__,
           "onnxruntime": onnxruntime.__version__,
           "run_id": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}  # which invocation measured the row
    if onnxruntime.__version__ != ORT_VERSION:
        log(f"note: onnxruntime {onnxruntime.__version__} is not the pinned {ORT_VERSION}")
    for name in grid.models:
        t0 = time.perf_counter()
        subject = zoo.build(name)
        builder = Builder(subject)
        ref = _reference(builder)
        tasks = tasks_for(subject, grid)
        for task in tasks:
            for row in measure_task(builder, task, grid, ref(task)):
                yield {**{c: "" for c in COLUMNS}, **row, **env}
        log(f"{name}: {len(tasks)} tasks in {time.perf_counter() - t0:.1f} s")
        del builder, subject
        gc.collect()


def write_table(rows: Iterable[dict], path: Path) -> int:
    """Write rows as CSV (COLUMNS order); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)
            f.flush()
            n += 1
    return n


def read_table(path: Path) -> list[dict]:
    """The raw table as dicts with numbers parsed (empty cells stay '')."""
    def conv(v: str) -> Any:
        if v == "":
            return v
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v

    with Path(path).open(newline="") as f:
        return [{k: conv(v) for k, v in row.items()} for row in csv.DictReader(f)]
