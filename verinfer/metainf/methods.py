"""The execution methods MetaInf chooses between, as runners with one interface.

A runner answers `classify(x[B, in]) -> logits[B, C]` or `generate(prompts[B, P], n) -> ids[B, n]`
(greedy, lowest index on ties), both on numpy arrays. Building a runner (ONNX export, weight
quantisation, compilation) is timed separately as `build_s`.

Methods (a `+kv` suffix: decode with the state cache instead of re-running the whole context):
- `numpy_int64`   the integer reference executor (integer models only): the consensus semantics.
- `torch_fp32`    torch eager float32 (for integer models: the integer semantics in float32).
- `torch_fp64`    torch eager float64 (integer models only).
- `torch_int8dyn` `torch.ao.quantization.quantize_dynamic` int8 on Linear/LSTM.
- `ort_fp32`      ONNX Runtime (CPU provider) on the exported graph.
- `ort_int8`      ONNX Runtime on `onnxruntime.quantization.quantize_dynamic` (QInt8 weights).
- `torch_compile` `torch.compile` (inductor); its compile time is `build_s`.
"""

from __future__ import annotations

import copy
import io
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from verinfer.metainf.zoo import Subject
from verinfer.models import reference

METHODS = (
    "numpy_int64",
    "torch_fp32",
    "torch_fp64",
    "torch_int8dyn",
    "ort_fp32",
    "ort_int8",
    "torch_fp32+kv",
    "torch_int8dyn+kv",
    "torch_compile",
)
ORT_VERSION = "1.31.1"


class MethodUnavailable(Exception):
    """The method does not apply to this model (the reason is recorded in the raw table)."""


def not_applicable(subject: Subject, method: str) -> str | None:
    """Why `method` cannot run `subject`, or None if it can."""
    if method not in METHODS:
        return f"unknown method {method!r}"
    if method in ("numpy_int64", "torch_fp64") and not subject.integer:
        return "integer models only"
    if method.endswith("+kv"):
        if subject.task != "generate":
            return "no decoding loop"
        if not subject.kv:
            return "no exact state cache (sliding-window attention re-runs the window)"
    return None


@dataclass
class Runner:
    """A built method: `run(inputs, n)` does one request (classify ignores n)."""

    method: str
    threads: int
    build_s: float
    run: Callable[..., np.ndarray]


def _torch():
    import torch

    return torch


def _greedy_np(logits: np.ndarray, exclude_zero: bool) -> np.ndarray:
    if exclude_zero:
        return 1 + np.argmax(logits[:, 1:], axis=1)
    return np.argmax(logits, axis=1)


def _window(ctx: np.ndarray, window: int | None) -> np.ndarray:
    if window is None:
        return ctx
    b, t = ctx.shape
    if t >= window:
        return ctx[:, t - window :]
    return np.concatenate([np.zeros((b, window - t), dtype=ctx.dtype), ctx], axis=1)


def _decode_full(forward: Callable[[np.ndarray], np.ndarray], subject: Subject) -> Callable[..., np.ndarray]:
    """Greedy decoding that re-runs the whole context (or window) every step."""

    def generate(prompts: np.ndarray, n: int) -> np.ndarray:
        ctx = np.asarray(prompts, dtype=np.int64)
        out = []
        for _ in range(n):
            nxt = _greedy_np(forward(_window(ctx, subject.window)), subject.exclude_zero)
            out.append(nxt)
            ctx = np.concatenate([ctx, nxt[:, None]], axis=1)
        return np.stack(out, axis=1)

    return generate


def _decode_kv(module: Any, subject: Subject) -> Callable[..., np.ndarray]:
    torch = _torch()

    def generate(prompts: np.ndarray, n: int) -> np.ndarray:
        with torch.inference_mode():
            logits, state = module.prefill(torch.from_numpy(np.asarray(prompts, dtype=np.int64)))
            out = []
            for i in range(n):
                nxt = _greedy_np(logits.numpy(), subject.exclude_zero)
                out.append(nxt)
                if i < n - 1:
                    logits, state = module.step(torch.from_numpy(nxt[:, None]), state)
        return np.stack(out, axis=1)

    return generate


def _torch_forward(module: Any, dtype: Any) -> Callable[[np.ndarray], np.ndarray]:
    torch = _torch()

    def forward(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x)
        if t.is_floating_point():
            t = t.to(dtype)
        with torch.inference_mode():
            return module(t).numpy()

    return forward


def _classify(forward: Callable[[np.ndarray], np.ndarray], subject: Subject) -> Callable[..., np.ndarray]:
    def classify(x: np.ndarray, n: int = 0) -> np.ndarray:
        out = forward(np.asarray(x, dtype=np.float32))  # integer inputs (<= 8 bits here) are exact
        return np.floor(out).astype(np.int64) if subject.integer else out

    return classify


def export_onnx(subject: Subject, opset: int = 17) -> bytes:
    """The subject's float32 forward as an ONNX graph with dynamic batch (and sequence) axes."""
    torch = _torch()
    if subject.task == "classify":
        example = torch.zeros(2, subject.in_features)
        axes = {"x": {0: "batch"}}
    else:
        example = torch.ones(2, subject.window or 8, dtype=torch.long)
        axes = {"x": {0: "batch", 1: "seq"}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(subject.module, (example,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={**axes, "y": {0: "batch"}}, opset_version=opset)
    return buf.getvalue()


def quantize_onnx_int8(model: bytes) -> bytes:
    """ONNX Runtime dynamic quantisation (QInt8 weights, activations quantised per call)."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return dst.read_bytes()


def ort_session(model: bytes, threads: int) -> Any:
    """A CPU session pinned to `threads` intra-op threads (spinning off: the machine is shared)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


class Builder:
    """Builds runners for one subject, caching the ONNX export and the quantised models."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self._onnx: dict[str, bytes] = {}
        self._torch: dict[str, Any] = {}
        self.onnx_error: str | None = None

    def _onnx_model(self, kind: str) -> bytes:
        if kind not in self._onnx:
            if "fp32" not in self._onnx:
                self._onnx["fp32"] = export_onnx(self.subject)
            if kind == "int8":
                self._onnx["int8"] = quantize_onnx_int8(self._onnx["fp32"])
        return self._onnx[kind]

    def _torch_module(self, kind: str) -> Any:
        torch = _torch()
        if kind not in self._torch:
            m = self.subject.module
            if kind == "fp64":
                m = copy.deepcopy(m).double()
            elif kind == "int8dyn":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = torch.ao.quantization.quantize_dynamic(m, {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8)
            elif kind == "compile":
                m = torch.compile(m)
            self._torch[kind] = m
        return self._torch[kind]

    def build(self, method: str, threads: int) -> Runner:
        """The runner for `method` at `threads` (raises MethodUnavailable with the reason)."""
        reason = not_applicable(self.subject, method)
        if reason:
            raise MethodUnavailable(reason)
        torch = _torch()
        torch.set_num_threads(threads)
        s = self.subject
        t0 = time.perf_counter()
        base, kv = method.removesuffix("+kv"), method.endswith("+kv")
        if base == "numpy_int64":
            assert s.spec is not None
            spec = s.spec
            run = lambda x, n=0: reference.run_batch(spec, np.asarray(x, dtype=np.int64))  # noqa: E731
        elif base.startswith("ort_"):
            try:
                sess = ort_session(self._onnx_model(base.removeprefix("ort_")), threads)
            except Exception as exc:  # export/quantise failures are data: recorded, not fatal
                raise MethodUnavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from None
            fwd = lambda x: sess.run(None, {"x": x})[0]  # noqa: E731
            run = _classify(fwd, s) if s.task == "classify" else _decode_full(fwd, s)
        else:
            kind = base.removeprefix("torch_")
            module = self._torch_module(kind)
            if kv:
                run = _decode_kv(module, s)
            else:
                dtype = torch.float64 if kind == "fp64" else torch.float32
                fwd = _torch_forward(module, dtype)
                run = _classify(fwd, s) if s.task == "classify" else _decode_full(fwd, s)
        return Runner(method, threads, time.perf_counter() - t0, run)
