"""Task features for the selector: hand-crafted (MetaInf) and raw (the gradient-boosting baseline).

A *task* is a model's structural facts plus a workload (prompt/generation length, batch) and the
threads the node gives it, on a hardware class. The hand-crafted features encode what decides
which method wins on a CPU: the work per runtime call (tiny calls are dominated by framework
overhead, where ONNX Runtime wins), the number of calls per request, how much a state cache
saves, whether the weights fit in cache, the arithmetic intensity (tokens per call: each call
streams the weights once), the sequential steps inside a call (LSTM recurrence), the total work
per request with and without a cache, and the SIMD level (int8 kernels need VNNI/AMX to shine).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

FACT_KEYS = ("family", "arch", "integer", "params", "width", "depth", "in_features", "out_features",
             "kv_capable", "window", "acc_bound")
TASK_KEYS = ("task", "prompt_len", "gen_len", "batch", "threads")
ARCHS = ("mlp", "lstm", "transformer")

HANDCRAFTED = (
    "log2_params", "log2_width", "depth", "log2_in", "log2_out", "arch_mlp", "arch_lstm", "arch_transformer",
    "integer", "generate", "log2_batch", "threads", "log2_prompt", "log2_gen", "kv_capable", "windowed",
    "log2_calls", "log2_tokens_full", "log2_tokens_kv", "log2_cache_saving", "log2_flops_per_call",
    "log2_weight_bytes_over_cache", "log2_flops_per_call_per_thread",
    "log2_weight_bytes", "log2_tokens_per_call", "log2_context_per_call", "log2_flops_per_request",
    "log2_flops_per_request_kv",
    "cpu_avx2", "cpu_avx512", "cpu_vnni", "cpu_amx",
)
RAW = ("params", "width", "depth", "in_features", "out_features", "arch_code", "integer", "task_code",
       "prompt_len", "gen_len", "batch", "threads")


class FeatureError(ValueError):
    """The task lacks a fact the features need (the caller falls back to the registered profile)."""


def flags_from_class(hardware_class: str) -> dict[str, int]:
    """SIMD indicator features from a hardware class string (see hardware.CpuInfo.hardware_class)."""
    parts = set(hardware_class.split("-"))
    return {
        "cpu_avx2": int(bool({"avx2", "avx512f"} & parts)),
        "cpu_avx512": int("avx512f" in parts),
        "cpu_vnni": int("vnni" in parts),
        "cpu_amx": int("amx" in parts),
    }


def _tokens(task: Mapping[str, Any]) -> tuple[float, float, float]:
    """(calls per request, tokens processed without a cache, tokens with a cache), batch included."""
    b = float(task["batch"])
    if task["task"] != "generate":
        return 1.0, b, b
    p, g, w = int(task["prompt_len"]), int(task["gen_len"]), int(task.get("window") or 0)
    full = sum(min(w, p + i) if w else p + i for i in range(g))
    return float(g), b * full, b * (p + g - 1)


def _need(task: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if task.get(k) in (None, "")]
    if missing:
        raise FeatureError(f"missing model/task facts: {', '.join(missing)}")


def handcrafted(task: Mapping[str, Any], hardware_class: str, cache_kb: int = 512) -> np.ndarray:
    """The MetaInf feature vector (order: HANDCRAFTED)."""
    _need(task, ("arch", "params", "width", "depth", "in_features", "out_features", "task", "batch", "threads"))
    if task["arch"] not in ARCHS:
        raise FeatureError(f"unknown architecture {task['arch']!r}")
    lg = lambda v: math.log2(max(float(v), 1.0))  # noqa: E731
    calls, full, kv = _tokens(task)
    params = float(task["params"])
    flops_call = 2.0 * params * full / calls
    f = {
        "log2_params": lg(params), "log2_width": lg(task["width"]), "depth": float(task["depth"]),
        "log2_in": lg(task["in_features"]), "log2_out": lg(task["out_features"]),
        "arch_mlp": float(task["arch"] == "mlp"), "arch_lstm": float(task["arch"] == "lstm"),
        "arch_transformer": float(task["arch"] == "transformer"), "integer": float(task.get("integer") or 0),
        "generate": float(task["task"] == "generate"), "log2_batch": lg(task["batch"]),
        "threads": float(task["threads"]), "log2_prompt": lg(1 + int(task.get("prompt_len") or 0)),
        "log2_gen": lg(1 + int(task.get("gen_len") or 0)), "kv_capable": float(task.get("kv_capable") or 0),
        "windowed": float(bool(task.get("window"))), "log2_calls": lg(calls), "log2_tokens_full": lg(full),
        "log2_tokens_kv": lg(kv), "log2_cache_saving": math.log2(full / kv), "log2_flops_per_call": lg(flops_call),
        "log2_weight_bytes_over_cache": math.log2(4.0 * params / (1024.0 * max(cache_kb, 1))),
        "log2_flops_per_call_per_thread": lg(flops_call / float(task["threads"])),
        # memory traffic vs arithmetic intensity: every call streams the weights once (4 bytes each) and
        # does 2 flops per weight per token in the call, so flops/byte = tokens per call / 2
        "log2_weight_bytes": lg(4.0 * params), "log2_tokens_per_call": lg(full / calls),
        # sequential steps inside one call (an LSTM walks its context one token at a time)
        "log2_context_per_call": lg(full / calls / float(task["batch"])),
        "log2_flops_per_request": lg(2.0 * params * full), "log2_flops_per_request_kv": lg(2.0 * params * kv),
        **flags_from_class(hardware_class),
    }
    return np.array([f[k] for k in HANDCRAFTED], dtype=np.float64)


def raw(task: Mapping[str, Any]) -> np.ndarray:
    """The raw configuration numbers, untransformed (order: RAW): the baseline's view."""
    _need(task, ("arch", "params", "width", "depth", "in_features", "out_features", "task", "batch", "threads"))
    f = dict(task)
    f["arch_code"] = ARCHS.index(task["arch"]) if task["arch"] in ARCHS else -1
    f["task_code"] = int(task["task"] == "generate")
    return np.array([float(f.get(k) or 0) for k in RAW], dtype=np.float64)


def model_facts(model: Any) -> dict[str, Any] | None:
    """Structural facts of a verinfer model object, or None if the selector has none for it.

    Knows `ModelSpec` (integer MLPs) and `LanguageModelSpec` (textgenrnn char-LSTM); anything else
    (e.g. a new executor's spec) returns None, and the caller keeps the registered profile.
    """
    from verinfer.metainf.zoo import acc_bound
    from verinfer.models.spec import ModelSpec

    if isinstance(model, ModelSpec):
        widths = [layer.out for layer in model.layers[:-1]] or [model.output_size]
        return {"family": "int-mlp", "arch": "mlp", "integer": 1, "params": model.num_parameters,
                "width": max(widths), "depth": model.num_layers, "in_features": model.input_size,
                "out_features": model.output_size, "kv_capable": 0, "window": 0, "acc_bound": acc_bound(model)}
    spec_type = type(model).__name__
    if spec_type == "LanguageModelSpec" and getattr(model, "architecture", None) == "textgenrnn.char-lstm":
        e, h, n, v = model.embedding_dim, model.rnn_size, model.rnn_layers, model.vocab_size
        lstm = sum(4 * h * ((e if i == 0 else h) + h + 2) for i in range(n))
        width = e + n * h
        params = v * e + lstm + width + width * v + v
        return {"family": "char-lstm", "arch": "lstm", "integer": 0, "params": params, "width": h, "depth": n,
                "in_features": e, "out_features": v, "kv_capable": 0, "window": model.context_length,
                "acc_bound": None}
    return None
