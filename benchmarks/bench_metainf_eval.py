#!/usr/bin/env python3
"""MetaInf evaluation: leave-one-model-out selector vs random / best fixed / GB on raw features / oracle.

    python benchmarks/bench_metainf_eval.py                       # print the tables
    python benchmarks/bench_metainf_eval.py --write-docs          # and replace the block in docs/metainf.md
    python benchmarks/bench_metainf_eval.py --table /tmp/t.csv

Reads the committed raw table (benchmarks/data/metainf_raw.csv, written by bench_metainf.py), so
anyone can recompute every number in docs/metainf.md without re-measuring.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEGIN, END = "<!-- metainf-eval:begin -->", "<!-- metainf-eval:end -->"
TARGETS = {"mean_regret": 0.05, "p90_regret": 0.15, "gap_closed": 0.50}


def node_local_rule():
    """The consensus rule as a candidate filter: only output-preserving methods (vs the default profile)."""
    from verinfer.metainf import consensus
    from verinfer.models.spec import REFERENCE_KERNELS, REFERENCE_RUNTIME, execution_profile

    int_profile = execution_profile("mlp", REFERENCE_RUNTIME, REFERENCE_KERNELS)
    float_profile = execution_profile("lm", "verinfer.torch.greedy.v1", ["float32"], threads=1)

    def rule(task, method: str) -> bool:
        profile = int_profile if task.facts["integer"] else float_profile
        acc = task.facts.get("acc_bound")
        cand = consensus.Candidate(method, int(task.facts["threads"]), int(task.facts["batch"]))
        return consensus.output_preserving(profile, cand, int(acc) if acc not in ("", None) else None).preserving

    return rule


def evaluate(table: Path) -> str:
    from verinfer.metainf import selector as S
    from verinfer.metainf.harness import read_table

    rows = read_table(table)
    objectives = ["wall"] + (["cpu"] if any(r.get("cpu_p50_ms") not in ("", None) for r in rows) else [])
    tasks = S.tasks_from_rows(rows)
    models = sorted({t.model for t in tasks})
    out = []
    hw = sorted({str(r["hardware_class"]) for r in rows})
    cpu = sorted({str(r["cpu_model"]) for r in rows})
    out.append(f"Raw table: `{table.relative_to(ROOT) if table.is_relative_to(ROOT) else table}` — {len(rows)} rows, "
               f"{len(tasks)} tasks, {len(models)} models, hardware class {', '.join(hw)} ({', '.join(cpu)}).\n")
    titles = {"wall": "p50 wall-clock latency", "cpu": "p50 CPU time per request (contention-robust)"}
    for objective in objectives:
        tasks = S.tasks_from_rows(rows, objective)
        cache: dict = {}  # fits shared by the two scopes of this objective
        chosen: list = []
        res = S.leave_one_model_out(tasks, cache=cache, chosen=chosen)
        summ = S.summarize(res)
        out.append(f"### Objective: {titles[objective]} — publisher scope (all methods that keep agreement), "
                   "leave-one-model-out\n")
        out.append(S.render_table(summ) + "\n")
        m = summ["metainf"]
        verdict = []
        for k, target in TARGETS.items():
            ok = m[k] >= target if k == "gap_closed" else m[k] <= target
            verdict.append(f"{k.replace('_', ' ')} {100 * m[k]:.1f}% (target {'≥' if k == 'gap_closed' else '≤'} "
                           f"{100 * target:.0f}%): {'met' if ok else 'NOT met'}")
        out.append("Targets for `metainf`: " + "; ".join(verdict) + ".\n")
        picks = Counter(f"{tg} target, margin {100 * mg:.0f}%" for _, tg, mg in chosen)
        out.append("`metainf`'s (target, margin), tuned by grouped CV inside each training set, over the "
                   f"{len(chosen)} folds: " + ", ".join(f"{k} ×{v}" for k, v in picks.most_common()) + ".\n")
        out.append("Per family (mean regret, leave-one-model-out; oracle method counts):\n")
        out.append("| family | tasks | metainf | best-fixed | gb-raw | oracle picks |\n|---|---|---|---|---|---|")
        fams = sorted({str(t.facts["family"]) for t in tasks})
        for fam in fams:
            sub = [t for t in tasks if t.facts["family"] == fam]

            def mean_of(policy: str, fam: str = fam, res: dict = res) -> float:
                vals = [r for r, f in zip(res[policy].regrets, res[policy].families, strict=True) if f == fam]
                return 100 * statistics.mean(vals)

            picks = Counter(t.oracle(t.allowed()) for t in sub)
            out.append(f"| {fam} | {len(sub)} | {mean_of('metainf'):.1f}% | {mean_of('best-fixed'):.1f}% | "
                       f"{mean_of('gb-raw'):.1f}% | " + ", ".join(f"{k} {v}" for k, v in picks.most_common()) + " |")
        out.append("")
        rule = node_local_rule()
        res_n = S.leave_one_model_out(tasks, allowed_rule=rule, test_filter=lambda t, rule=rule: len(t.allowed(rule)) >= 2,
                                      cache=cache)
        out.append(f"### Objective: {titles[objective]} — node-local scope (only output-preserving methods: "
                   "integer models), leave-one-model-out\n")
        out.append(S.render_table(S.summarize(res_n)) + "\n")

    # 3. torch.compile side table
    comp = [r for r in rows if r["method"] == "torch_compile"]
    if comp:
        out.append("### torch.compile (not a selector candidate: compile time counted)\n")
        out.append("| model | batch | eager p50 | compiled p50 | compile time | break-even requests | agreement |\n"
                   "|---|---|---|---|---|---|---|")
        for r in comp:
            eager = next((e for e in rows if e["model"] == r["model"] and e["method"] == "torch_fp32"
                          and e["batch"] == r["batch"] and e["threads"] == 1 and e.get("suite") == r.get("suite")), None)
            if r["status"] != "ok" or eager is None:
                out.append(f"| {r['model']} | {r['batch']} | — | — | — | — | {r['status']}: {r['reason']} |")
                continue
            gain = float(eager["p50_ms"]) - float(r["p50_ms"])
            be = f"{math.ceil(float(r['build_s']) * 1000 / gain):,}" if gain > 0 else "never (not faster)"
            out.append(f"| {r['model']} | {r['batch']} | {float(eager['p50_ms']):.4f} ms | {float(r['p50_ms']):.4f} ms | "
                       f"{float(r['build_s']):.1f} s | {be} | {r['agreement']} |")
        out.append("")

    # 4. noise and validity facts
    ok = [r for r in rows if r["status"] == "ok" and r["p50_ms"] not in ("", 0)]
    spread = [(float(r["p90_ms"]) - float(r["p10_ms"])) / float(r["p50_ms"]) for r in ok]
    inval = Counter(r["method"] for r in ok if not int(r["valid"]))
    total = Counter(r["method"] for r in ok)
    out.append("### Noise and agreement\n")
    out.append(f"Spread of the timed runs, (p90 − p10) / p50 per row: median {100 * statistics.median(spread):.0f}%, "
               f"p90 {100 * sorted(spread)[int(0.9 * (len(spread) - 1))]:.0f}% over {len(spread)} rows.\n")
    out.append("Rows failing the agreement rule, per method: "
               + ", ".join(f"{m} {inval[m]}/{total[m]}" for m in sorted(total)) + ".\n")
    na = Counter((r["method"], r["reason"]) for r in rows if r["status"] != "ok")
    if na:
        out.append("Not measured: " + "; ".join(f"{m} ({reason}) ×{n}" for (m, reason), n in na.items()) + ".\n")
    return "\n".join(out)


def retest(table: Path, earlier: Path) -> str:
    """Test-retest: the same tasks measured twice. How often do the two runs' oracles agree, and what
    regret does the first run's oracle choice have on the second run's latencies? That regret is
    the noise floor: no selector can be expected to beat it on the second run."""
    import numpy as np

    from verinfer.metainf import selector as S
    from verinfer.metainf.harness import read_table

    out = [f"### Test-retest: `{earlier.name}` (earlier run) vs this table, on the tasks both measured\n",
           "| objective | common tasks | same oracle method | mean regret of the earlier oracle's pick | "
           "p90 | within 5% | best fixed (ranked on the earlier run): mean regret |", "|---|---|---|---|---|---|---|"]
    rows_then = read_table(earlier)
    earlier_runs = {str(r.get("run_id") or "") for r in rows_then}
    rows_now = [r for r in read_table(table) if str(r.get("run_id") or "") not in earlier_runs]  # re-measured only

    def task_key(r: dict) -> tuple:
        return tuple(r[k] for k in S.TASK_FIELDS)

    # a task counts only if it was measured again (rows copied from the earlier run share its run_id)
    run_now = {task_key(r): str(r.get("run_id") or "") for r in rows_now}
    run_then = {task_key(r): str(r.get("run_id") or "earlier") for r in rows_then}
    for objective in ("wall", "cpu"):
        now = {(t.model, *(t.facts[k] for k in S.TASK_FIELDS[1:])): t for t in S.tasks_from_rows(rows_now, objective)}
        then = {(t.model, *(t.facts[k] for k in S.TASK_FIELDS[1:])): t for t in S.tasks_from_rows(rows_then, objective)}
        ranking = S.best_fixed_ranking(list(then.values()))
        same, regs, fixed = [], [], []
        for k in sorted(now.keys() & then.keys(), key=str):
            if run_now.get(k) == run_then.get(k):
                continue
            a, b = then[k], now[k]
            allowed = [m for m in b.allowed() if m in a.allowed()]
            if not allowed:
                continue
            pick = a.oracle(allowed)
            same.append(pick == b.oracle(allowed))
            regs.append(b.regret(pick, allowed))
            fixed.append(b.regret(next(m for m in ranking + allowed if m in allowed), allowed))
        if regs:
            r = np.array(regs)
            out.append(f"| {objective} | {len(regs)} | {100 * np.mean(same):.0f}% | {100 * r.mean():.1f}% | "
                       f"{100 * np.percentile(r, 90):.1f}% | {100 * np.mean(r <= 0.05):.0f}% | "
                       f"{100 * np.mean(fixed):.1f}% |")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "data" / "metainf_raw.csv")
    ap.add_argument("--retest", type=Path, default=ROOT / "benchmarks" / "data" / "metainf_raw_run1.csv",
                    help="an earlier measurement of the same grid: adds the test-retest (noise floor) table")
    ap.add_argument("--write-docs", action="store_true", help="replace the generated block in docs/metainf.md")
    args = ap.parse_args(argv)
    if not args.table.is_file():
        print(f"error: no raw table at {args.table} (run benchmarks/bench_metainf.py)", file=sys.stderr)
        return 2
    text = evaluate(args.table.resolve())
    if args.retest and args.retest.is_file():
        text += "\n" + retest(args.table.resolve(), args.retest.resolve())
    print(text)
    if args.write_docs:
        doc = ROOT / "docs" / "metainf.md"
        body = doc.read_text()
        if BEGIN not in body or END not in body:
            print(f"error: {doc} lacks the {BEGIN} … {END} markers", file=sys.stderr)
            return 2
        head, rest = body.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        print(f"wrote {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
