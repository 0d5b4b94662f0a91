"""MetaInf selector: features, training and the leave-one-model-out evaluation path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verinfer.metainf import features as F
from verinfer.metainf import harness
from verinfer.metainf import selector as S
from verinfer.metainf.hardware import parse_cpuinfo

HW = "x86_64-avx2"


def synthetic_rows(n_models: int = 8) -> list[dict]:
    """A raw table with a known law: ONNX Runtime wins small calls, int8 wins big ones.

    Latency of torch_fp32 grows with work; ort_fp32 removes a fixed overhead; torch_int8dyn
    halves compute but adds overhead; ort_int8 is never valid (fails agreement).
    """
    rows = []
    for i in range(n_models):
        params = 2 ** (10 + 2 * i)
        for batch in (1, 4, 16):
            for threads in (1, 2):
                work = params * batch * 1e-6
                lat = {"torch_fp32": 0.1 + work, "ort_fp32": 0.02 + work, "torch_int8dyn": 0.3 + 0.4 * work,
                       "ort_int8": 0.01}
                for method, ms in lat.items():
                    rows.append({c: "" for c in harness.COLUMNS} | {
                        "suite": "grid", "model": f"m{i}", "family": "mlp", "arch": "mlp", "origin": "synthetic",
                        "integer": 0, "params": params, "width": int(math.sqrt(params)), "depth": 2,
                        "in_features": 64, "out_features": 10, "kv_capable": 0, "window": 0, "task": "classify",
                        "prompt_len": 0, "gen_len": 0, "batch": batch, "threads": threads, "method": method,
                        "status": "ok", "p50_ms": ms * (1 + 0.01 * threads), "valid": int(method != "ort_int8"),
                        "hardware_class": HW, "cpu_model": "synthetic"})
    return rows


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    path = tmp_path_factory.mktemp("sel") / "raw.csv"
    harness.write_table(synthetic_rows(), path)
    return S.tasks_from_rows(harness.read_table(path))


def test_tasks_group_rows_and_keep_agreement_verdicts(tasks):
    assert len(tasks) == 8 * 3 * 2
    t = tasks[0]
    assert set(t.lat) == {"torch_fp32", "ort_fp32", "torch_int8dyn", "ort_int8"}
    assert "ort_int8" not in t.allowed()  # fastest, but fails agreement: never a candidate
    assert t.regret(t.oracle(t.allowed()), t.allowed()) == 0.0


@pytest.fixture(scope="module")
def fits():
    """Fitted selectors shared by the tests below (keyed by training models and target)."""
    return {}


def test_leave_one_model_out_learns_the_law_and_beats_the_baselines(tasks, fits):
    chosen: list = []
    summary = S.summarize(S.leave_one_model_out(tasks, cache=fits, chosen=chosen))
    assert summary["oracle"]["mean_regret"] == 0.0 and summary["oracle"]["top1"] == 1.0
    meta, fixed, rand = summary["metainf"], summary["best-fixed"], summary["random"]
    assert fixed["mean_regret"] > 0.2  # no single method is right for both small and big models
    assert meta["mean_regret"] < 0.5 * fixed["mean_regret"]
    assert meta["gap_closed"] > 0.5
    assert rand["mean_regret"] > meta["mean_regret"]
    assert summary["gb-raw"]["tasks"] == meta["tasks"] == len(tasks)
    table = S.render_table(summary)
    assert table.count("\n") == 2 + len(summary) - 1 and "| metainf |" in table
    # the nested tuning chose (target, margin) once per held-out model, from the training models only
    assert sorted(c[0] for c in chosen) == sorted({t.model for t in tasks})
    assert all(tg in S.TARGETS and mg in S.MARGINS for _, tg, mg in chosen)


def test_tuning_never_sees_the_held_out_model(tasks, fits):
    """Poisoning the held-out model's latencies cannot change what was tuned for it (no leak)."""
    poisoned = [S.TaskRecord(t.model, t.facts, t.hardware_class, {m: 1e3 * (i + 1) for i, m in enumerate(t.lat)},
                             t.valid) if t.model == "m0" else t for t in tasks]
    only_m0 = lambda t: t.model == "m0"  # noqa: E731  (one outer fold: m0 held out)
    clean_choice: list = []
    poisoned_choice: list = []
    S.leave_one_model_out(tasks, test_filter=only_m0, cache=fits, chosen=clean_choice)
    S.leave_one_model_out(poisoned, test_filter=only_m0, chosen=poisoned_choice)
    assert len(clean_choice) == 1 and clean_choice == poisoned_choice


def test_prior_target_reads_as_ratio_to_torch_fp32(tasks, fits):
    sel = S.MetaInfSelector(target="prior").fit(tasks)
    pred = sel.predict(tasks[0].facts, HW)
    assert pred["torch_fp32"] == 1.0 and set(pred) == {"torch_fp32", "ort_fp32", "torch_int8dyn", "ort_int8"}
    assert pred["ort_fp32"] < 1.0  # ort_fp32 removes the fixed overhead on every synthetic task


def test_allowed_rule_restricts_every_policy(tasks, fits):
    no_ort = lambda t, m: not m.startswith("ort")  # noqa: E731
    res = S.leave_one_model_out(tasks, allowed_rule=no_ort, cache=fits)
    # with ort_fp32 excluded the choice is torch_fp32 vs torch_int8dyn; regrets are computed in that set
    assert all(r >= 0 for r in res["metainf"].regrets)
    assert S.summarize(res)["oracle"]["mean_regret"] == 0.0


def test_selector_fit_predict_choose(tasks):
    sel = S.MetaInfSelector().fit(tasks)
    small = dict(tasks[0].facts, params=2**10, batch=1)
    big = dict(tasks[0].facts, params=2**24, batch=16)
    assert sel.choose(small, HW, ["torch_fp32", "ort_fp32", "torch_int8dyn"]).method == "ort_fp32"
    assert sel.choose(big, HW, ["torch_fp32", "ort_fp32", "torch_int8dyn"]).method == "torch_int8dyn"
    assert sel.choose(big, HW, ["torch_fp32"]).method == "torch_fp32"
    assert "x" in sel.choose(small, HW, ["torch_fp32", "ort_fp32"]).explain()


def test_features_are_finite_and_raw_differs_from_handcrafted(tasks):
    x = F.handcrafted(tasks[0].facts, HW)
    assert x.shape == (len(F.HANDCRAFTED),) and np.isfinite(x).all()
    assert F.raw(tasks[0].facts).shape == (len(F.RAW),)
    with pytest.raises(F.FeatureError):
        F.handcrafted({**tasks[0].facts, "arch": "mamba"}, HW)
    with pytest.raises(F.FeatureError):
        F.handcrafted({**tasks[0].facts, "params": ""}, HW)


def test_generation_features_count_the_cache_saving():
    lm = {"arch": "transformer", "params": 10**6, "width": 128, "depth": 2, "in_features": 128,
          "out_features": 512, "task": "generate", "prompt_len": 16, "gen_len": 8, "batch": 1, "threads": 1,
          "kv_capable": 1, "window": 0}
    f = dict(zip(F.HANDCRAFTED, F.handcrafted(lm, HW), strict=True))
    full = sum(16 + i for i in range(8))
    assert f["log2_tokens_full"] == pytest.approx(math.log2(full))
    assert f["log2_cache_saving"] == pytest.approx(math.log2(full / (16 + 7)))
    assert f["log2_calls"] == pytest.approx(3.0)


def test_model_facts_match_the_measured_subjects():
    from verinfer.inference.lm import load_lm_spec
    from verinfer.metainf import zoo
    from verinfer.models.spec import load_builtin

    for facts, name in ((F.model_facts(load_builtin("digits-mlp-large")), "digits-mlp-large"),
                        (F.model_facts(load_lm_spec("textgenrnn")), "textgenrnn")):
        s = zoo.build(name)
        assert (facts["params"], facts["width"], facts["depth"]) == (s.params, s.width, s.depth)
    assert F.model_facts(object()) is None


def test_hardware_class_from_cpuinfo():
    text = "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni\ncache size\t: 512 KB\nprocessor\t: 1\n"
    info = parse_cpuinfo(text, machine="x86_64")
    assert info.hardware_class == "x86_64-avx512f-vnni" and info.logical_cpus == 2 and info.cache_kb == 512
    assert parse_cpuinfo("flags: sse4_2 avx avx2", machine="x86_64").hardware_class == "x86_64-avx2"
    assert F.flags_from_class("x86_64-avx512f-vnni") == {"cpu_avx2": 1, "cpu_avx512": 1, "cpu_vnni": 1, "cpu_amx": 0}
