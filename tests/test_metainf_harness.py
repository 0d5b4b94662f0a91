"""MetaInf harness on a tiny grid: real measurements, real agreement checks, the raw-table format."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from verinfer.metainf import harness, zoo
from verinfer.metainf.methods import Builder, MethodUnavailable, not_applicable

TINY = dataclasses.replace(harness.TINY_GRID, models=("digits-mlp", "mlp-128x2", "lstm-lm-64"), reps=3)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("metainf") / "raw.csv"
    n = harness.write_table(harness.run_grid(TINY), path)
    table = harness.read_table(path)
    assert len(table) == n
    return table


def test_tiny_grid_covers_every_task_and_method(rows):
    assert {r["model"] for r in rows} == set(TINY.models)
    # digits-mlp: 2 batches x 1 thread, lstm-lm-64: 2 workloads x 1 batch
    tasks = {(r["model"], r["batch"], r["threads"], r["prompt_len"], r["gen_len"]) for r in rows}
    assert len(tasks) == 2 + 2 + 2
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok and all(r["reps"] == TINY.reps and 0 < r["p10_ms"] <= r["p50_ms"] <= r["p90_ms"] for r in ok)
    assert all(r["peak_rss_mb"] > 0 and r["build_s"] >= 0 for r in ok)
    methods = {r["method"] for r in rows if r["model"] == "lstm-lm-64"}
    assert {"torch_fp32", "torch_int8dyn", "ort_fp32", "ort_int8", "torch_fp32+kv", "torch_int8dyn+kv"} <= methods
    # integer-only methods are not listed for float models at all
    assert not any(r["method"] in ("numpy_int64", "torch_fp64") for r in rows if not r["integer"])


def test_integer_models_use_the_bit_exact_rule(rows):
    digits = [r for r in rows if r["model"] == "digits-mlp" and r["status"] == "ok"]
    assert all(r["rule"] == "bit-exact" and r["valid"] == int(r["agreement"] == 1.0) for r in digits)
    # the reference itself, and float kernels inside the proven 2^24 bound, are exact
    exact = {r["method"] for r in digits if r["valid"]}
    assert {"numpy_int64", "torch_fp32", "torch_fp64", "ort_fp32"} <= exact
    assert all(r["acc_bound"] < 2**24 for r in digits)


def test_float_models_use_the_99_percent_rule(rows):
    for r in rows:
        if r["status"] == "ok" and not r["integer"]:
            assert r["valid"] == int(r["agreement"] >= harness.AGREEMENT_MIN)
            if r["method"] == "torch_fp32" and r["threads"] == 1:
                assert r["agreement"] == 1.0  # the reference against itself


def test_methods_that_do_not_apply_say_why():
    s = zoo.build("digits-mlp")
    assert not_applicable(s, "torch_fp32+kv") == "no decoding loop"
    with pytest.raises(MethodUnavailable):
        Builder(s).build("torch_fp32+kv", 1)
    assert not_applicable(zoo.build("mlp-128x2"), "numpy_int64") == "integer models only"


def test_int_module_matches_the_reference_executor_exactly():
    from verinfer.models import reference

    s = zoo.build("digits-mlp")
    x = s.sample_inputs(200, 3)
    out = Builder(s).build("torch_fp32", 1).run(x)
    assert np.array_equal(out, reference.run_batch(s.spec, x))


def test_textgenrnn_wrapper_is_the_shipped_lm():
    """The batched wrapper the harness times decodes the same tokens as verinfer.inference.lm."""
    from verinfer.inference.lm import load_lm

    s = zoo.build("textgenrnn")
    assert not_applicable(s, "torch_fp32+kv").startswith("no exact state cache")
    lm = load_lm("textgenrnn")
    prompt = lm.encode("the meaning of ")
    expected = lm.generate(prompt)[:6]
    got = Builder(s).build("torch_fp32", 1).run(np.array([prompt]), len(expected))[0].tolist()
    assert got == expected


def test_kv_cache_and_onnx_export_match_eager_on_a_decoder():
    s = zoo.build("gpt-64x2")
    b = Builder(s)
    prompts = np.random.default_rng(0).integers(0, s.out_features, size=(2, 12))
    eager = b.build("torch_fp32", 1).run(prompts, 5)
    assert np.array_equal(b.build("torch_fp32+kv", 1).run(prompts, 5), eager)
    assert np.array_equal(b.build("ort_fp32", 1).run(prompts, 5), eager)
