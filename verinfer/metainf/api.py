"""What the CLI and the node call: publish-time profile selection, a node's plan, and `node bench`.

- `verinfer model publish --profile auto` -> `select_publish_profile(model, base_profile)`: the
  profile to register (dict + bytes32), the chosen method and why.
- `verinfer node run` -> `node_plan(model, registered_profile, registered_hash)`: the method the
  node runs; its `profile_hash` is the registered hash, always; `notice` is a one-line message when
  it fell back. Before serving, `consensus.enforce` refuses any non-output-preserving method.
- `verinfer node bench` -> `bench_rows(...)`: every candidate with its predicted latency ratio,
  who may choose it, and why.

The selector is trained (seconds) from the committed raw table; unknown hardware classes or
models without features fall back to the registered profile with a one-line notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from verinfer.metainf import consensus, features
from verinfer.metainf.consensus import Candidate, NodePlan
from verinfer.metainf.hardware import cpu_info
from verinfer.metainf.harness import AGREEMENT_MIN, read_table
from verinfer.metainf.selector import BASELINE, MetaInfSelector, tasks_from_rows, tuned_selector

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "metainf_raw.csv"


@lru_cache(maxsize=4)
def trained_selector(table: str | None = None, objective: str = "wall") -> MetaInfSelector:
    """The selector trained on every task of the raw table (cached per process; objective wall|cpu).

    Its regression target and switching margin are tuned by model-grouped CV on the table
    (`selector.tuned_selector`), the same procedure the leave-one-model-out evaluation runs per fold.
    """
    return tuned_selector(tasks_from_rows(read_table(Path(table) if table else DEFAULT_TABLE), objective))


def task_facts(model: Any, *, batch: int = 1, threads: int = 1, prompt_len: int = 16, gen_len: int = 16) -> dict | None:
    """Model facts + workload as a feature dict, or None when the selector has no features for the model."""
    facts = features.model_facts(model)
    if facts is None:
        return None
    generate = facts["family"] in ("char-lstm", "lstm-lm", "gpt-lm")
    return {**facts, "task": "generate" if generate else "classify", "prompt_len": prompt_len if generate else 0,
            "gen_len": gen_len if generate else 0, "batch": batch, "threads": threads}


def _fallback_reason(facts: Mapping[str, Any] | None, selector: MetaInfSelector, hardware_class: str) -> str | None:
    if facts is None:
        return "metainf: no features for this model type; running the registered profile"
    if hardware_class not in selector.hardware_classes:
        return (f"metainf: hardware class {hardware_class} was never measured "
                f"(known: {', '.join(sorted(selector.hardware_classes)) or 'none'}); running the registered profile")
    return None


def measure_agreement(model: Any, candidate: Candidate, samples: int = 32, prompt_len: int = 16,
                      gen_len: int = 4) -> float:
    """Share of outputs equal to the reference (bit-exact rows for integer models, greedy tokens for LMs)."""
    from verinfer.metainf import zoo
    from verinfer.metainf.harness import Task, _agreement, _batched, _inputs
    from verinfer.metainf.methods import Builder

    subject = zoo.subject_for(model)
    if subject is None:
        raise features.FeatureError(f"no executor for model type {type(model).__name__}")
    builder = Builder(subject)
    task = Task(subject.name, candidate.batch, candidate.threads, prompt_len if subject.task == "generate" else 0,
                gen_len if subject.task == "generate" else 0)
    n = max(candidate.batch, (samples // candidate.batch) * candidate.batch)
    xs = _inputs(subject, task, n, seed=11)
    ref = _batched(builder.build("numpy_int64" if subject.integer else BASELINE, 1), xs, task)
    out = _batched(builder.build(candidate.method, candidate.threads), xs, task)
    return _agreement(subject, out, ref)


@dataclass
class PublishChoice:
    """`--profile auto`'s answer: the profile to register and how it was chosen."""

    profile: dict[str, Any]
    profile_hash: bytes
    candidate: Candidate
    hardware_class: str
    predicted: dict[str, float] = field(default_factory=dict)  # method -> predicted latency / torch_fp32
    agreement: dict[str, float] = field(default_factory=dict)  # methods checked before choosing
    notice: str | None = None


def select_publish_profile(model: Any, base_profile: Mapping[str, Any], *, threads: int = 1, batch: int = 1,
                           prompt_len: int = 16, gen_len: int = 16, table: str | None = None,
                           hardware_class: str | None = None, check_agreement: bool = True) -> PublishChoice:
    """Choose the execution profile a publisher registers for this hardware class.

    Candidates are tried in order of predicted latency; the first whose agreement with the
    reference is >= 99% (bit-exact for integer models) wins. Integer models keep the reference
    profile (their fast exact kernels are each node's local choice).
    """
    hw = hardware_class or cpu_info().hardware_class
    selector = trained_selector(table)
    facts = task_facts(model, batch=batch, threads=threads, prompt_len=prompt_len, gen_len=gen_len)
    base = dict(base_profile)
    default = consensus.registered_candidate(base)
    notice = _fallback_reason(facts, selector, hw)
    if notice is not None or facts is None:
        return PublishChoice(base, consensus.profile_hash(base), default, hw, notice=notice)
    predicted = selector.predict(facts, hw)
    if consensus.is_integer_profile(base):
        return PublishChoice(base, consensus.profile_hash(base), default, hw, predicted,
                             notice="integer model: the reference profile is registered; nodes pick exact kernels locally")
    ranked = sorted((m for m in predicted if not m.startswith("numpy") and m != "torch_fp64"
                     and (facts.get("kv_capable") or not m.endswith("+kv"))), key=lambda m: (predicted[m], m))
    checked: dict[str, float] = {}
    for method in ranked:
        cand = Candidate(method, threads, batch)
        if cand == default:
            chosen = cand
            break
        if check_agreement:
            checked[method] = measure_agreement(model, cand, prompt_len=prompt_len)
            if checked[method] < AGREEMENT_MIN:
                continue
        chosen = cand
        break
    else:
        chosen = default
    profile = consensus.publisher_profile(base, chosen, hw)
    return PublishChoice(profile, consensus.profile_hash(profile), chosen, hw, predicted, checked)


def node_plan(model: Any, profile: Mapping[str, Any], registered_hash: bytes, *, threads: int = 1, batch: int = 1,
              prompt_len: int = 16, gen_len: int = 16, table: str | None = None,
              hardware_class: str | None = None) -> NodePlan:
    """The node's execution plan: its own output-preserving choice, or the registered profile.

    Raises consensus.ProfileChangeRefused if `profile` is not the registered one.
    """
    hw = hardware_class or cpu_info().hardware_class
    selector = trained_selector(table)
    facts = task_facts(model, batch=batch, threads=threads, prompt_len=prompt_len, gen_len=gen_len)
    notice = _fallback_reason(facts, selector, hw)
    if notice is not None or facts is None:
        return consensus.plan_node(profile, registered_hash, None, notice=notice)
    acc = facts.get("acc_bound")
    allowed = [m for m in selector.predict(facts, hw)
               if consensus.output_preserving(profile, Candidate(m, threads, batch), acc).preserving]
    if not allowed:
        return consensus.plan_node(profile, registered_hash, None,
                                   notice="metainf: no output-preserving alternative; running the registered profile")
    choice = selector.choose(facts, hw, allowed)
    return consensus.plan_node(profile, registered_hash, Candidate(choice.method, threads, batch), acc)


def bench_rows(model: Any, profile: Mapping[str, Any], *, threads: int = 1, batch: int = 1, prompt_len: int = 16,
               gen_len: int = 16, table: str | None = None, hardware_class: str | None = None) -> list[dict[str, Any]]:
    """`node bench`: every method with predicted ratio vs torch_fp32, scope (node/publisher) and reason."""
    hw = hardware_class or cpu_info().hardware_class
    selector = trained_selector(table)
    facts = task_facts(model, batch=batch, threads=threads, prompt_len=prompt_len, gen_len=gen_len)
    notice = _fallback_reason(facts, selector, hw)
    if notice is not None or facts is None:
        return [{"method": consensus.registered_candidate(profile).method, "predicted_ratio": float("nan"),
                 "scope": "registered", "reason": notice}]
    acc = facts.get("acc_bound")
    rows = []
    for method, ratio in sorted(selector.predict(facts, hw).items(), key=lambda kv: kv[1]):
        if method.endswith("+kv") and not facts.get("kv_capable"):
            continue
        if method in ("numpy_int64", "torch_fp64") and not facts.get("integer"):
            continue
        v = consensus.output_preserving(profile, Candidate(method, threads, batch), acc)
        rows.append({"method": method, "predicted_ratio": float(np.round(ratio, 3)), "scope": v.scope,
                     "reason": v.reason})
    return rows
