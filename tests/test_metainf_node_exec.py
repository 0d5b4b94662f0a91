"""The node executes its own output-preserving MetaInf selection, and the output hash never moves.

Real components: the real content store, `verinfer.node.compute.compute` (fetch -> runtime.decide
-> store), real ONNX Runtime / torch executors built by `verinfer.metainf.methods`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from verinfer.metainf import consensus
from verinfer.metainf.consensus import Candidate, NodePlan
from verinfer.metainf.profiles import base_profile
from verinfer.metainf.zoo import acc_bound, random_int_spec
from verinfer.models.digits import load_split
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin, reference_profile_hash
from verinfer.models.tensor import encode_tensor
from verinfer.node import compute as node_compute
from verinfer.node.profile import ProfileGuard, ProfileStatus, local_executor
from verinfer.storage import open_store

DIGITS = load_builtin("digits-mlp")
PROFILE = base_profile(DIGITS)
REG = reference_profile_hash()
HW = "x86_64-avx2"  # the committed table's hardware class


def _inputs(spec: Any, n: int) -> list[list[int]]:
    xs = [list(map(int, x)) for x in load_split().x_test[:n]] if spec.input_size == 64 else []
    lo, hi = -(1 << (spec.input_bits - 1)), (1 << (spec.input_bits - 1)) - 1
    rng = np.random.default_rng(5)
    xs += [[lo] * spec.input_size, [hi] * spec.input_size]
    xs += [list(map(int, r)) for r in rng.integers(lo, hi + 1, size=(n, spec.input_size))]
    return xs


def _outcomes(store: Any, spec: Any, xs: list[list[int]]) -> list[tuple[int, str]]:
    out = []
    for x in xs:
        cid = store.add(encode_tensor(x, "int8", [spec.input_size]))
        o = node_compute.compute(store, spec, cid, hash_vector(x, spec.input_bits), fetch_timeout_s=1.0)
        assert not o.is_invalid, o.invalid_reason
        out.append((o.output_hash, o.output_cid))
    return out


@pytest.mark.parametrize("cand", [Candidate("ort_fp32"), Candidate("torch_fp32", 2), Candidate("torch_fp64")])
def test_selection_is_executed_and_the_hash_is_identical(tmp_path: Path, cand: Candidate) -> None:
    store = open_store(root=tmp_path / "store")
    plan = consensus.plan_node(PROFILE, REG, cand, acc_bound(DIGITS))
    assert plan.local and plan.profile_hash == REG
    fn, note = local_executor(DIGITS, PROFILE, plan)
    assert fn is not None and note is None
    calls = []

    def counted(x: Any) -> list[int]:
        calls.append(1)
        return fn(x)

    xs = _inputs(DIGITS, 40)
    reference = _outcomes(store, DIGITS, xs)
    node_compute.use_local_run(DIGITS, counted)
    try:
        selected = _outcomes(store, DIGITS, xs)
    finally:
        node_compute.use_local_run(DIGITS, None)
    assert len(calls) == len(xs)  # the selection ran, not the reference
    assert selected == reference  # same output hash and same output payload CID, every input
    # bad input keeps its INVALID_INPUT outcome under the selection (same input rule)
    node_compute.use_local_run(DIGITS, counted)
    try:
        bad = node_compute.compute(store, DIGITS, store.add(encode_tensor([0] * 64, "int8", [64])), 1)
    finally:
        node_compute.use_local_run(DIGITS, None)
    assert bad.is_invalid


def test_a_hash_changing_method_is_never_applied() -> None:
    wide = random_int_spec("int-mlp-wide", [2048, 512, 10], 3, 100.0)
    assert acc_bound(wide) >= 1 << 24
    forced = [  # plans that claim a local choice; local_executor re-checks the rule itself
        (wide, NodePlan(Candidate("torch_fp32"), REG, True, None)),
        (wide, NodePlan(Candidate("ort_fp32"), REG, True, None)),
        (DIGITS, NodePlan(Candidate("ort_int8"), REG, True, None)),
        (DIGITS, NodePlan(Candidate("torch_int8dyn"), REG, True, None)),
    ]
    for spec, plan in forced:
        fn, note = local_executor(spec, base_profile(spec), plan)
        assert fn is None
        assert note and "\n" not in note and "running the registered profile" in note, note
    # and the consensus plan itself falls back to the registered run for them
    plan = consensus.plan_node(PROFILE, REG, Candidate("ort_int8"), acc_bound(DIGITS))
    assert not plan.local and plan.candidate == Candidate("numpy_int64") and plan.profile_hash == REG


def test_float_profiles_run_only_the_registered_profile() -> None:
    from verinfer.inference.lm import lm_profile, load_lm_spec

    lm = load_lm_spec("textgenrnn")
    prof = lm_profile(lm)
    reg = consensus.profile_hash(prof)
    plan = consensus.plan_node(prof, reg, Candidate("ort_fp32"))
    assert not plan.local and plan.notice and "publisher" in plan.notice
    fn, note = local_executor(lm, prof, plan)
    assert fn is None and note == plan.notice


def _guard_select(spec: Any, hardware_class: str) -> tuple[ProfileStatus, Any]:
    guard = ProfileGuard(None, None, None, hardware_class=hardware_class, select_in_background=False)
    status = ProfileStatus(b"\x01" * 32, True, "numpy_int64", "runs under the registered execution profile")
    guard._select(status, spec, base_profile(spec), reference_profile_hash())
    return status, node_compute._LOCAL_RUNS.get(id(spec))


def test_guard_installs_the_selection_on_known_hardware(tmp_path: Path) -> None:
    spec = load_builtin("digits-mlp")  # a fresh object: its own entry in the node's table
    status, local = _guard_select(spec, HW)
    try:
        assert status.selected is not None
        if status.selected == "numpy_int64":  # the selector kept the reference: nothing to install
            assert local is None and status.run == "numpy_int64"
            return
        assert local is not None and status.run == status.selected, status
        store = open_store(root=tmp_path / "store")
        xs = _inputs(spec, 10)
        with_sel = _outcomes(store, spec, xs)
        node_compute.use_local_run(spec, None)
        assert _outcomes(store, spec, xs) == with_sel
    finally:
        node_compute.use_local_run(spec, None)


def test_guard_on_unknown_hardware_keeps_the_registered_profile_with_one_notice() -> None:
    spec = load_builtin("digits-mlp")
    status, local = _guard_select(spec, "riscv64-unknown")
    assert local is None and status.run == "numpy_int64" and status.selected == "numpy_int64"
    assert status.selection_note and "\n" not in status.selection_note and "never measured" in status.selection_note
