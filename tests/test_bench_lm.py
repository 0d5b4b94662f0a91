"""The bookkeeping of benchmarks/bench_lm.py's failover, builds and agreement tables (no model, no network):
a wrong split of the failover time or a hash mismatch that the comparison missed would put false numbers in
docs/lm.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bench_lm", Path(__file__).resolve().parent.parent / "benchmarks" /
                                               "bench_lm.py")
assert _spec is not None and _spec.loader is not None
B = importlib.util.module_from_spec(_spec)
sys.modules["bench_lm"] = B  # its dataclasses look their module up
_spec.loader.exec_module(B)


def test_failover_timing_splits_kill_to_next_token():
    victim, spare, s0 = "h:1", "h:2", "h:0"
    calls = [
        B.Call(s0, 40, 1, 9.80, 9.90),
        B.Call(victim, 40, 1, 9.90, 10.00),  # answered before the kill
        B.Call(s0, 41, 1, 10.10, 10.20),
        B.Call(victim, 41, 1, 10.20, 10.25, "down"),  # the kill at 10.22: detected 30 ms later
        B.Call(spare, 0, 41, 10.26, 10.76),  # replay of the 41 recorded rows
        B.Call(spare, 41, 1, 10.76, 10.86),
    ]
    t = B.failover_timing(calls, 10.22, [9.5, 10.05, 10.95, 11.4], victim, spare, recovery_s=0.52)
    assert t["detect_s"] == pytest.approx(0.03)
    assert t["replay_s"] == pytest.approx(0.50)
    assert t["reconnect_s"] == pytest.approx(0.02)
    assert t["prefix"] == 41
    assert t["kill_to_token_s"] == pytest.approx(0.73)  # 10.95 - 10.22, not the token at 10.05
    assert t["replay_share"] == pytest.approx(0.50 / 0.73)
    # a kill between steps: the next call fails at once; detection counts from that call's start, not the kill
    between = [B.Call(victim, 41, 1, 10.50, 10.501, "down"), B.Call(spare, 0, 41, 10.51, 11.0)]
    assert B.failover_timing(between, 10.22, [11.2], victim, spare, 0.5)["detect_s"] == pytest.approx(0.001)


def _run(hashes):
    return {"prompts": [{"tokens_hash": t, "hidden_sha256": h} for t, h in hashes]}


def test_compare_hashes_flags_any_difference():
    a = _run([("aa", "11"), ("bb", "22")])
    rows, ok = B.compare_hashes([a, a, _run([("aa", "11"), ("bb", "22")])])
    assert ok and [r[-1] for r in rows] == ["yes", "yes"]
    rows, ok = B.compare_hashes([a, _run([("aa", "11"), ("bb", "23")])])  # same tokens, one hidden bit differs
    assert not ok and rows[0][-1] == "yes" and rows[1][-1].startswith("no")
    with pytest.raises(ValueError, match="different numbers of prompts"):
        B.compare_hashes([a, _run([("aa", "11")])])


def test_agreement_rows_count_sequences_and_positions():
    rows = B.agreement_rows({"single": [[1, 2, 3], [4, 5, 6]], "stage3": [[1, 2, 3], [4, 9, 6]]}, "single")
    assert rows == [["single", "2/2", "6/6"], ["stage3", "1/2", "5/6"]]
