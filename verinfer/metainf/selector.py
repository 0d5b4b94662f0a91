"""The meta-learner and its leave-one-model-out evaluation against the baselines and the oracle.

MetaInf here = one gradient-boosted regressor on (hand-crafted task features, method one-hot)
(`features.handcrafted`), predicting log(latency / torch_fp32 eager latency); the selector picks
the method with the lowest prediction among the *allowed* methods, but keeps the training set's
best fixed method unless another is predicted to be more than `DEFAULT_MARGIN` (10%) faster:
timings on a shared machine are noisy, and small predicted gains are mostly noise. Which methods
are allowed is not learned: a method is allowed when it passed the agreement check (a publisher
runs that check before registering a profile) and, for a node's local choice, when the consensus
rule says it is output-preserving (`verinfer.metainf.consensus`).

Baselines (same allowed sets): random choice (expected value), the single best fixed method
(ranked on the training models), a gradient-boosting classifier of the best method on raw
features, and the oracle (the measured best). `torch_compile` is not a candidate: its compile
time (tens of seconds here) is reported separately with its break-even request count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from verinfer.metainf import features as F

BASELINE = "torch_fp32"
TASK_FIELDS = ("model", "task", "prompt_len", "gen_len", "batch", "threads")
EXCLUDED = ("torch_compile",)


@dataclass
class TaskRecord:
    """One task of the raw table: facts, and per method its p50 latency and agreement verdict."""

    model: str
    facts: dict[str, Any]
    hardware_class: str
    lat: dict[str, float] = field(default_factory=dict)
    valid: dict[str, bool] = field(default_factory=dict)

    def allowed(self, extra: Callable[["TaskRecord", str], bool] | None = None) -> list[str]:
        """Methods that ran, passed the agreement rule, and pass `extra` (e.g. the node-local rule)."""
        return sorted(m for m in self.lat if self.valid.get(m) and (extra is None or extra(self, m)))

    def oracle(self, allowed: Sequence[str]) -> str:
        return min(allowed, key=lambda m: (self.lat[m], m))

    def regret(self, method: str, allowed: Sequence[str]) -> float:
        return self.lat[method] / self.lat[self.oracle(allowed)] - 1.0


OBJECTIVES = {"wall": "p50_ms", "cpu": "cpu_p50_ms"}
DEFAULT_MARGIN = 0.10


def tasks_from_rows(rows: Iterable[Mapping[str, Any]], objective: str = "wall") -> list[TaskRecord]:
    """Group raw-table rows into tasks (compile-suite rows and non-ok rows are left out).

    `objective`: "wall" (p50 latency) or "cpu" (p50 process CPU time per request).
    """
    column = OBJECTIVES[objective]
    tasks: dict[tuple, TaskRecord] = {}
    for row in rows:
        if row.get("suite", "grid") not in ("grid", "") or row["method"] in EXCLUDED or row["status"] != "ok":
            continue
        key = (*(row[k] for k in TASK_FIELDS), row.get("hardware_class"))  # one task per hardware class
        rec = tasks.get(key)
        if rec is None:
            facts = {k: row[k] for k in (*F.FACT_KEYS, *F.TASK_KEYS)}
            rec = tasks[key] = TaskRecord(row["model"], facts, str(row["hardware_class"]))
        if row["method"] in rec.lat:
            continue
        if row.get(column) in ("", None):
            continue
        rec.lat[row["method"]] = max(float(row[column]), 1e-6)
        rec.valid[row["method"]] = bool(int(row["valid"]))
    return [t for t in tasks.values() if BASELINE in t.lat and t.lat[BASELINE] > 0]


def _gbr(pooled: bool = False) -> Any:
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(n_estimators=200 if pooled else 80, max_depth=4 if pooled else 3,
                                     learning_rate=0.1, subsample=0.8, random_state=0)


def _gbc() -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(n_estimators=50, max_depth=3, learning_rate=0.1, random_state=0)


@dataclass
class Choice:
    """The selector's answer for one task: the method, and every allowed method's predicted ratio."""

    method: str
    predicted: dict[str, float]  # predicted latency / torch_fp32 eager latency

    def explain(self) -> str:
        ranked = sorted(self.predicted.items(), key=lambda kv: kv[1])
        return ", ".join(f"{m} x{r:.2f}" for m, r in ranked)


class MetaInfSelector:
    """GB regression on hand-crafted features: predicted latency ratio vs torch_fp32 eager.

    `pooled=True` (the default) fits one model on (task features, method one-hot) so that methods
    share what they have in common (overhead vs compute); `pooled=False` fits one model per method.
    """

    def __init__(self, pooled: bool = True, target: str = "baseline", margin: float = DEFAULT_MARGIN) -> None:
        self.pooled = pooled
        self.target = target  # "baseline": log(lat / torch_fp32); "oracle": log(lat / task's best)
        self.margin = margin  # leave the training set's best fixed method only for a predicted gain > margin
        self.ranking: list[str] = []
        self.models: dict[str, Any] = {}
        self.methods: list[str] = []
        self.pooled_model: Any = None
        self.hardware_classes: set[str] = set()

    def fit(self, tasks: Sequence[TaskRecord]) -> "MetaInfSelector":
        if self.pooled:
            return self._fit_pooled(tasks)
        by_method: dict[str, tuple[list, list]] = {}
        for t in tasks:
            self.hardware_classes.add(t.hardware_class)
            x = F.handcrafted(t.facts, t.hardware_class)
            for m, lat in t.lat.items():
                if m == BASELINE:
                    continue
                xs, ys = by_method.setdefault(m, ([], []))
                xs.append(x)
                ys.append(math.log(lat / t.lat[BASELINE]))
        for m, (xs, ys) in by_method.items():
            if len(ys) >= 3:
                self.models[m] = _gbr().fit(np.array(xs), np.array(ys))
        return self

    def predict(self, facts: Mapping[str, Any], hardware_class: str) -> dict[str, float]:
        """Predicted latency ratio vs torch_fp32 eager for every method the selector knows."""
        return self.predict_many([facts], [hardware_class])[0]

    def _fit_pooled(self, tasks: Sequence[TaskRecord]) -> "MetaInfSelector":
        self.ranking = best_fixed_ranking(tasks)
        prior = self.ranking[0] if self.ranking else BASELINE
        relative = self.target == "prior"  # cost-sensitive: log(lat / the best fixed method's lat)
        self.methods = sorted({m for t in tasks for m in t.lat if relative or m != BASELINE})
        xs, ys = [], []
        for t in tasks:
            self.hardware_classes.add(t.hardware_class)
            x = F.handcrafted(t.facts, t.hardware_class)
            if relative:
                ref = t.lat.get(prior, t.lat[BASELINE])
            else:
                ref = t.lat[BASELINE] if self.target == "baseline" else min(t.lat.values())
            base = math.log(t.lat[BASELINE] / ref)
            for m, lat in t.lat.items():
                if relative or m != BASELINE:
                    xs.append(np.concatenate([x, self._onehot(m)]))
                    # "oracle" predictions are read as log(lat / torch_fp32): subtract the baseline's target
                    ys.append(math.log(lat / ref) - (base if self.target == "oracle" else 0.0))
        self.pooled_model = _gbr(pooled=True).fit(np.array(xs), np.array(ys))
        return self

    def _onehot(self, method: str) -> np.ndarray:
        return np.array([float(method == m) for m in self.methods])

    def predict_many(self, facts: Sequence[Mapping[str, Any]], hardware: Sequence[str]) -> list[dict[str, float]]:
        """`predict` for many tasks at once (one sklearn call per method)."""
        x = np.array([F.handcrafted(f, h) for f, h in zip(facts, hardware, strict=True)])
        if self.pooled:
            cols = {m: np.exp(self.pooled_model.predict(np.hstack([x, np.tile(self._onehot(m), (len(x), 1))])))
                    for m in self.methods}
        else:
            cols = {m: np.exp(model.predict(x)) for m, model in self.models.items()}
        norm = cols.pop(BASELINE, np.ones(len(x)))  # "prior" target: rescale so torch_fp32 reads 1.0
        return [{BASELINE: 1.0, **{m: float(v[i] / norm[i]) for m, v in cols.items()}} for i in range(len(x))]

    def choose(self, facts: Mapping[str, Any], hardware_class: str, allowed: Sequence[str],
               predicted: Mapping[str, float] | None = None) -> Choice:
        if predicted is None:
            predicted = self.predict(facts, hardware_class)
        pred = {m: r for m, r in predicted.items() if m in allowed}
        if not pred:
            fallback = BASELINE if BASELINE in allowed else sorted(allowed)[0]
            return Choice(fallback, {})
        best = min(pred, key=lambda m: (pred[m], m))
        prior = next((m for m in self.ranking if m in pred), None)
        if self.margin and prior is not None and pred[prior] <= pred[best] * (1.0 + self.margin):
            best = prior
        return Choice(best, pred)


class LabelClassifier:
    """Baseline: a GB classifier of the best method's label on raw (or hand-crafted) features."""

    def __init__(self, featurize: Callable[[TaskRecord], np.ndarray]) -> None:
        self.featurize = featurize
        self.model: Any = None
        self.only: str | None = None

    def fit(self, tasks: Sequence[TaskRecord]) -> "LabelClassifier":
        xs = np.array([self.featurize(t) for t in tasks])
        ys = np.array([t.oracle(t.allowed()) for t in tasks])
        if len(set(ys)) == 1:
            self.only = str(ys[0])
        else:
            self.model = _gbc().fit(xs, ys)
        return self

    def choose(self, task: TaskRecord, allowed: Sequence[str]) -> str:
        return self.choose_many([task])[0](allowed)

    def choose_many(self, tasks: Sequence[TaskRecord]) -> list[Callable[[Sequence[str]], str]]:
        """Per task, a function of the allowed set: the most probable allowed label."""
        def pick(ranked: list[str]) -> Callable[[Sequence[str]], str]:
            return lambda allowed: next((c for c in ranked if c in allowed),
                                        BASELINE if BASELINE in allowed else allowed[0])

        if self.model is None:
            return [pick([self.only] if self.only else []) for _ in tasks]
        proba = self.model.predict_proba(np.array([self.featurize(t) for t in tasks]))
        classes = [str(c) for c in self.model.classes_]
        return [pick([classes[j] for j in np.argsort(-p, kind="stable")]) for p in proba]


def best_fixed_ranking(tasks: Sequence[TaskRecord]) -> list[str]:
    """Methods ranked by mean regret over the tasks where each is allowed (penalising rarely-allowed ones)."""
    methods = sorted({m for t in tasks for m in t.lat})
    score = {}
    for m in methods:
        regrets = []
        for t in tasks:
            allowed = t.allowed()
            # a method that is not allowed on a task costs what the baseline costs there
            regrets.append(t.regret(m if m in allowed else BASELINE, allowed))
        score[m] = float(np.mean(regrets))
    return sorted(methods, key=lambda m: (score[m], m))


@dataclass
class PolicyResult:
    """Per-task regrets and hits of one policy over the held-out tasks."""

    name: str
    regrets: list[float] = field(default_factory=list)
    families: list[str] = field(default_factory=list)  # the held-out task's model family, per entry
    hits: list[float] = field(default_factory=list)  # 1 if the oracle's method (expected value for random)
    within5: list[float] = field(default_factory=list)

    def add(self, regret: float, hit: float, within5: float, family: str = "") -> None:
        self.families.append(family)
        self.regrets.append(regret)
        self.hits.append(hit)
        self.within5.append(within5)

    def summary(self, fixed_mean: float | None = None) -> dict[str, float]:
        r = np.array(self.regrets)
        mean = float(r.mean()) if len(r) else float("nan")
        out = {"tasks": len(r), "top1": float(np.mean(self.hits)), "within5": float(np.mean(self.within5)),
               "mean_regret": mean, "p90_regret": float(np.percentile(r, 90)) if len(r) else float("nan")}
        if fixed_mean is not None:
            out["gap_closed"] = 1.0 - mean / fixed_mean if fixed_mean > 0 else float("nan")
        return out


#: what the nested tuning chooses between: regression target and switching margin
TARGETS = ("baseline", "prior")
MARGINS = (0.0, 0.05, 0.10, 0.20)
INNER_FOLDS = 3
FitCache = dict  # (training models, target) -> fitted MetaInfSelector, shared across scopes of one run


def _fitted(train: Sequence[TaskRecord], target: str, cache: FitCache | None) -> MetaInfSelector:
    key = (tuple(sorted({t.model for t in train})), target)
    if cache is not None and key in cache:
        return cache[key]
    sel = MetaInfSelector(target=target).fit(train)
    if cache is not None:
        cache[key] = sel
    return sel


def tune(train: Sequence[TaskRecord], allowed_rule: Callable[[TaskRecord, str], bool] | None = None,
         cache: FitCache | None = None, folds: int = INNER_FOLDS) -> tuple[str, float]:
    """(target, margin) with the lowest mean regret in model-grouped K-fold CV on `train` only.

    Why: the margin and the target were first picked by looking at leave-one-model-out results;
    choosing them inside each training set keeps the held-out model out of every decision.
    Ties go to the earlier entry of TARGETS x MARGINS.
    """
    models = sorted({t.model for t in train})
    groups = [models[i::folds] for i in range(min(folds, len(models)))]
    regrets: dict[tuple[str, float], list[float]] = {(tg, mg): [] for tg in TARGETS for mg in MARGINS}
    for group in groups:
        inner_train = [t for t in train if t.model not in group]
        inner_test = [t for t in train if t.model in group]
        if not inner_train or not inner_test:
            continue
        for tg in TARGETS:
            sel = _fitted(inner_train, tg, cache)
            preds = sel.predict_many([t.facts for t in inner_test], [t.hardware_class for t in inner_test])
            for t, pred in zip(inner_test, preds, strict=True):
                allowed = t.allowed(allowed_rule)
                if not allowed:
                    continue
                for mg in MARGINS:
                    sel.margin = mg
                    regrets[(tg, mg)].append(t.regret(sel.choose(t.facts, t.hardware_class, allowed, pred).method,
                                                      allowed))
            sel.margin = DEFAULT_MARGIN
    order = list(regrets)
    return min(order, key=lambda k: (float(np.mean(regrets[k])) if regrets[k] else math.inf, order.index(k)))


def tuned_selector(tasks: Sequence[TaskRecord], cache: FitCache | None = None) -> MetaInfSelector:
    """The deployed selector: (target, margin) tuned by grouped CV over all measured models, then fitted on all."""
    target, margin = tune(tasks, cache=cache)
    sel = _fitted(tasks, target, cache)
    sel.margin = margin
    return sel


def leave_one_model_out(
    tasks: Sequence[TaskRecord],
    allowed_rule: Callable[[TaskRecord, str], bool] | None = None,
    test_filter: Callable[[TaskRecord], bool] | None = None,
    pooled: bool = True,
    cache: FitCache | None = None,
    chosen: list[tuple[str, str, float]] | None = None,
) -> dict[str, PolicyResult]:
    """Train on all models but one, test on that one's tasks; every model held out once.

    `allowed_rule` narrows the candidates (e.g. to output-preserving methods for a node's local
    choice); `test_filter` keeps only some held-out tasks (e.g. tasks with at least two choices).
    `metainf` tunes (target, margin) inside each training set (`tune`); `metainf v1` is the first
    design (baseline target, fixed 10% margin). `chosen` collects (held-out model, target, margin).
    """
    names = ("random", "best-fixed", "gb-raw", "gb-handcrafted", "metainf v1 (margin 10%)", "metainf", "oracle")
    results = {n: PolicyResult(n) for n in names}
    models = sorted({t.model for t in tasks})
    cache = {} if cache is None else cache
    for held in models:
        train = [t for t in tasks if t.model != held]
        test = [t for t in tasks if t.model == held and (test_filter is None or test_filter(t))]
        if not test or not train:
            continue
        v1 = _fitted(train, "baseline", cache) if pooled else MetaInfSelector(pooled).fit(train)
        target, margin = tune(train, allowed_rule, cache) if pooled else ("baseline", DEFAULT_MARGIN)
        if chosen is not None:
            chosen.append((held, target, margin))
        meta = _fitted(train, target, cache) if pooled else v1
        gb_raw = LabelClassifier(lambda t: F.raw(t.facts)).fit(train)
        gb_hc = LabelClassifier(lambda t: F.handcrafted(t.facts, t.hardware_class)).fit(train)
        ranking = best_fixed_ranking(train)
        v1_preds = v1.predict_many([t.facts for t in test], [t.hardware_class for t in test])
        preds = meta.predict_many([t.facts for t in test], [t.hardware_class for t in test])
        raw_choice = gb_raw.choose_many(test)
        hc_choice = gb_hc.choose_many(test)
        for i, t in enumerate(test):
            allowed = t.allowed(allowed_rule)
            if not allowed:
                continue
            best = t.oracle(allowed)

            # defaults bind this iteration's task (the closure is called only inside the iteration)
            def score(policy: str, method: str, t: TaskRecord = t, allowed: list[str] = allowed, best: str = best) -> None:
                reg = t.regret(method, allowed)
                results[policy].add(reg, float(method == best), float(reg <= 0.05), str(t.facts["family"]))

            regs = [t.regret(m, allowed) for m in allowed]
            results["random"].add(float(np.mean(regs)), 1.0 / len(allowed), float(np.mean([r <= 0.05 for r in regs])),
                                  str(t.facts["family"]))
            score("best-fixed", next((m for m in ranking if m in allowed), allowed[0]))
            score("gb-raw", raw_choice[i](allowed))
            score("gb-handcrafted", hc_choice[i](allowed))
            v1.margin = DEFAULT_MARGIN
            score("metainf v1 (margin 10%)", v1.choose(t.facts, t.hardware_class, allowed, v1_preds[i]).method)
            meta.margin = margin
            score("metainf", meta.choose(t.facts, t.hardware_class, allowed, preds[i]).method)
            meta.margin = DEFAULT_MARGIN
            score("oracle", best)
    return results


def summarize(results: Mapping[str, PolicyResult]) -> dict[str, dict[str, float]]:
    """Summary metrics per policy, with the share of the best-fixed-to-oracle gap closed."""
    fixed = results["best-fixed"].summary()["mean_regret"]
    return {name: res.summary(fixed) for name, res in results.items()}


def render_table(summary: Mapping[str, Mapping[str, float]]) -> str:
    """A markdown table of the summary (regrets in %)."""
    lines = ["| policy | tasks | top-1 acc | within 5% of oracle | mean regret | p90 regret | gap closed |",
             "|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        gap = s.get("gap_closed", float("nan"))
        gap_s = "—" if name in ("best-fixed",) or math.isnan(gap) else f"{100 * gap:.0f}%"
        lines.append(f"| {name} | {s['tasks']} | {100 * s['top1']:.1f}% | {100 * s['within5']:.1f}% | "
                     f"{100 * s['mean_regret']:.1f}% | {100 * s['p90_regret']:.1f}% | {gap_s} |")
    return "\n".join(lines)
