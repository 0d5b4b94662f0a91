"""The MetaInf consensus rule: a node's local choice never changes the registered profile hash."""

from __future__ import annotations

import itertools

import pytest

from verinfer.inference.lm import lm_profile, lm_profile_hash, load_lm_spec
from verinfer.metainf import api, consensus, harness
from verinfer.metainf.consensus import Candidate, ProfileChangeRefused
from verinfer.metainf.methods import METHODS
from verinfer.metainf.zoo import acc_bound
from verinfer.models.spec import (
    REFERENCE_KERNELS,
    REFERENCE_RUNTIME,
    execution_profile,
    load_builtin,
    reference_profile_hash,
)

INT_PROFILE = execution_profile("mlp", REFERENCE_RUNTIME, REFERENCE_KERNELS)
LM_SPEC = load_lm_spec("textgenrnn")
LM_PROFILE = lm_profile(LM_SPEC)
DIGITS = load_builtin("digits-mlp")
ALL = [Candidate(m, t, b) for m, t, b in itertools.product(METHODS, (1, 2), (1, 4, 16))]


def test_profile_hash_is_the_registry_definition():
    assert consensus.profile_hash(INT_PROFILE) == reference_profile_hash()
    assert consensus.profile_hash(LM_PROFILE) == lm_profile_hash(LM_SPEC)


def test_integer_models_exact_kernels_are_a_node_choice():
    bound = acc_bound(DIGITS)
    assert bound < 2**24
    for threads, batch in itertools.product((1, 2), (1, 16)):
        for m in ("numpy_int64", "torch_fp32", "ort_fp32", "torch_fp64"):
            v = consensus.output_preserving(INT_PROFILE, Candidate(m, threads, batch), bound)
            assert v.preserving and v.scope == "node", (m, v.reason)
        for m in ("torch_int8dyn", "ort_int8", "torch_compile"):
            assert not consensus.output_preserving(INT_PROFILE, Candidate(m, threads, batch), bound).preserving


def test_float32_is_refused_when_the_accumulator_bound_passes_2_24():
    v = consensus.output_preserving(INT_PROFILE, Candidate("torch_fp32"), 2**24)
    assert not v.preserving and v.scope == "publisher" and "2^24" in v.reason
    assert consensus.output_preserving(INT_PROFILE, Candidate("torch_fp64"), 2**24).preserving
    assert not consensus.output_preserving(INT_PROFILE, Candidate("torch_fp64"), 2**53).preserving
    unknown = consensus.output_preserving(INT_PROFILE, Candidate("ort_fp32"), None)
    assert not unknown.preserving and "unproven" in unknown.reason


def test_float_profiles_allow_only_the_registered_run():
    reg = consensus.registered_candidate(LM_PROFILE)
    assert reg == Candidate("torch_fp32", 1, 1)
    preserving = [c for c in ALL if consensus.output_preserving(LM_PROFILE, c).preserving]
    assert preserving == [reg]
    v = consensus.output_preserving(LM_PROFILE, Candidate("torch_fp32", 2, 1))
    assert v.scope == "publisher" and "threads 2 != registered 1" in v.reason


@pytest.mark.parametrize("profile,bound", [(INT_PROFILE, acc_bound(DIGITS)), (INT_PROFILE, 2**30), (LM_PROFILE, None)])
def test_a_node_plan_never_changes_the_hash(profile, bound):
    registered = consensus.profile_hash(profile)
    for cand in ALL:
        plan = consensus.plan_node(profile, registered, cand, bound)
        assert plan.profile_hash == registered
        verdict = consensus.output_preserving(profile, cand, bound)
        if verdict.preserving:
            assert plan.candidate == cand and plan.notice is None
            assert consensus.enforce(profile, registered, cand, bound) == registered
        else:
            assert plan.candidate == consensus.registered_candidate(profile)
            assert plan.notice and "\n" not in plan.notice and "registered profile" in plan.notice
            # serving with it anyway would change the hash: the node refuses
            assert consensus.profile_hash(consensus.effective_profile(profile, cand, bound)) != registered
            with pytest.raises(ProfileChangeRefused, match="refusing to serve"):
                consensus.enforce(profile, registered, cand, bound)


def test_a_profile_that_is_not_the_registered_one_is_refused():
    with pytest.raises(ProfileChangeRefused):
        consensus.plan_node(LM_PROFILE, reference_profile_hash(), Candidate("torch_fp32"))
    with pytest.raises(ProfileChangeRefused):
        consensus.enforce(INT_PROFILE, b"\x00" * 32, Candidate("numpy_int64"))


def test_publisher_profiles():
    # the default run keeps the existing registration byte for byte
    assert consensus.publisher_profile(LM_PROFILE, Candidate("torch_fp32"), "x86_64-avx2") == LM_PROFILE
    p = consensus.publisher_profile(LM_PROFILE, Candidate("ort_int8", 1, 4), "x86_64-avx2")
    assert (p["method"], p["batch"], p["hardware_class"], p["onnxruntime"]) == ("ort_int8", 4, "x86_64-avx2", "1.31.1")
    assert consensus.profile_hash(p) != lm_profile_hash(LM_SPEC)
    assert consensus.registered_candidate(p) == Candidate("ort_int8", 1, 4)
    kv = consensus.publisher_profile(LM_PROFILE, Candidate("torch_fp32+kv"), "x86_64-avx2")
    assert consensus.registered_candidate(kv) == Candidate("torch_fp32+kv")
    # a node under the publisher's registered profile runs exactly that
    assert consensus.plan_node(p, consensus.profile_hash(p), Candidate("ort_int8", 1, 4)).candidate.method == "ort_int8"
    # integer semantics are never re-registered
    assert consensus.publisher_profile(INT_PROFILE, Candidate("ort_int8"), "x86_64-avx2") == INT_PROFILE
    with pytest.raises(ValueError):
        Candidate("tensorrt")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from tests.test_metainf_selector import synthetic_rows

    rows = synthetic_rows()
    for r in rows:  # one integer model family so the node-local path has exact alternatives
        if r["model"] in ("m0", "m1"):
            r.update(family="int-mlp", integer=1, acc_bound=212885)
    path = tmp_path_factory.mktemp("api") / "raw.csv"
    harness.write_table(rows, path)
    return str(path)


def test_api_node_plan_keeps_the_hash_and_falls_back_with_a_notice(table):
    reg = reference_profile_hash()
    plan = api.node_plan(DIGITS, INT_PROFILE, reg, table=table, hardware_class="x86_64-avx2")
    assert plan.profile_hash == reg
    assert consensus.output_preserving(INT_PROFILE, plan.candidate, acc_bound(DIGITS)).preserving
    unknown_hw = api.node_plan(DIGITS, INT_PROFILE, reg, table=table, hardware_class="aarch64")
    assert unknown_hw.profile_hash == reg and unknown_hw.candidate.method == "numpy_int64"
    assert "never measured" in unknown_hw.notice
    unknown_model = api.node_plan(object(), INT_PROFILE, reg, table=table, hardware_class="x86_64-avx2")
    assert unknown_model.candidate.method == "numpy_int64" and "no features" in unknown_model.notice
    lm = api.node_plan(LM_SPEC, LM_PROFILE, lm_profile_hash(LM_SPEC), table=table, hardware_class="x86_64-avx2")
    assert lm.candidate == Candidate("torch_fp32") and lm.profile_hash == lm_profile_hash(LM_SPEC)


def test_api_bench_rows_explain_scope(table):
    rows = api.bench_rows(DIGITS, INT_PROFILE, table=table, hardware_class="x86_64-avx2")
    scopes = {r["method"]: r["scope"] for r in rows}
    assert scopes["torch_fp32"] == "node" and scopes["torch_int8dyn"] == "publisher"
    assert all(r["reason"] for r in rows)
    fallback = api.bench_rows(DIGITS, INT_PROFILE, table=table, hardware_class="riscv64")
    assert len(fallback) == 1 and fallback[0]["scope"] == "registered"


def test_api_publish_auto(table):
    digits = api.select_publish_profile(DIGITS, INT_PROFILE, table=table, hardware_class="x86_64-avx2")
    assert digits.profile == INT_PROFILE and digits.profile_hash == reference_profile_hash()
    lm = api.select_publish_profile(LM_SPEC, LM_PROFILE, table=table, hardware_class="x86_64-avx2")
    if lm.candidate == consensus.registered_candidate(LM_PROFILE):
        assert lm.profile_hash == lm_profile_hash(LM_SPEC)
    else:  # a publisher-chosen method must have kept agreement, and is registered as a new profile
        assert lm.agreement[lm.candidate.method] >= harness.AGREEMENT_MIN
        assert lm.profile_hash == consensus.profile_hash(lm.profile) != lm_profile_hash(LM_SPEC)
        assert lm.profile["hardware_class"] == "x86_64-avx2"
    assert all(v < harness.AGREEMENT_MIN for m, v in lm.agreement.items() if m != lm.candidate.method)
