"""Circuit inputs and witnesses: build the input JSON, run the wasm calculator, read .wtns/.sym."""

from __future__ import annotations

import functools
import json
import struct
import tempfile
from pathlib import Path
from typing import Any, Sequence

from verinfer.models.hashing import FIELD
from verinfer.prover import toolchain
from verinfer.prover.artifacts import CompiledCircuit
from verinfer.prover.errors import ProverError, ProverInputError
from verinfer.prover.spec import BIAS_BITS, WEIGHT_BITS, SpecView, check_vector


def _fe(v: int) -> str:
    return str(int(v) % FIELD)


def circuit_inputs(sv: SpecView, mode: str, x: Sequence[int], request_binding: int) -> dict[str, Any]:
    """The signal assignment for one proof; rejects out-of-range values before any tool runs."""
    xs = check_vector(x, sv.input_len, sv.input_bits, "input")
    if not 0 <= int(request_binding) < FIELD:
        raise ProverInputError("requestBinding must be a field element (0 <= b < FIELD)")
    inputs: dict[str, Any] = {"x": [_fe(v) for v in xs], "requestBinding": _fe(request_binding)}
    if mode == "private":
        for li, layer in enumerate(sv.layers):
            if layer.fixed:  # pooling: no private weights
                continue
            if layer.kernel is not None:  # conv2d: flat kernel, per-channel bias
                kernel, channel_bias = layer.kernel
                check_vector(kernel, len(kernel), WEIGHT_BITS, f"layer {li} kernel")
                check_vector(channel_bias, len(channel_bias), BIAS_BITS, f"layer {li} bias")
                inputs[f"w{li}"] = [_fe(w) for w in kernel]
                inputs[f"b{li}"] = [_fe(b) for b in channel_bias]
                continue
            for r, row in enumerate(layer.weight):
                check_vector(row, layer.n_in, WEIGHT_BITS, f"layer {li} weight row {r}")
            check_vector(layer.bias, layer.n_out, BIAS_BITS, f"layer {li} bias")
            inputs[f"w{li}"] = [[_fe(w) for w in row] for row in layer.weight]
            inputs[f"b{li}"] = [_fe(b) for b in layer.bias]
    return inputs


def compute_witnesses(cc: CompiledCircuit, inputs: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One .wtns per input assignment, computed by a single node process."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"w{i}.wtns" for i in range(len(inputs))]
    jobs = [{"input": inp, "wtns": str(p)} for inp, p in zip(inputs, paths, strict=True)]
    jobs_path = out_dir / "jobs.json"
    jobs_path.write_text(json.dumps(jobs))
    toolchain.run([toolchain.node_binary(), str(toolchain.DATA_DIR / "witness.js"), str(cc.witness_calculator),
                   str(cc.wasm_path), str(jobs_path)], what="witness calculation")
    return paths


def compute_witness(cc: CompiledCircuit, inputs: dict[str, Any], path: Path | None = None) -> Path:
    """A single witness file (in a fresh temporary directory unless `path` is given)."""
    d = Path(tempfile.mkdtemp(prefix="verinfer-wtns-")) if path is None else path.parent
    (p,) = compute_witnesses(cc, [inputs], d)
    if path is not None and p != path:
        p.replace(path)
        return path
    return p


def read_wtns(path: Path) -> list[int]:
    """All witness values of a .wtns file (iden3 binary format); index 0 is the constant 1."""
    data = Path(path).read_bytes()
    if data[:4] != b"wtns":
        raise ProverError(f"{path} is not a .wtns file")
    n_sections = struct.unpack_from("<I", data, 8)[0]
    off = 12
    n8 = n = 0
    values: list[int] = []
    for _ in range(n_sections):
        stype, size = struct.unpack_from("<IQ", data, off)
        off += 12
        if stype == 1:
            n8 = struct.unpack_from("<I", data, off)[0]
            n = struct.unpack_from("<I", data, off + 4 + n8)[0]
        elif stype == 2:
            values = [int.from_bytes(data[off + i * n8: off + (i + 1) * n8], "little") for i in range(n)]
        off += size
    return values


def public_signals(cc: CompiledCircuit, wtns: Path) -> list[int]:
    """The public signals in circuit order (outputs, then public inputs) from a witness."""
    w = read_wtns(wtns)
    return w[1: 1 + len(cc.public_signal_names)]


@functools.lru_cache(maxsize=8)
def _symbols(sym_path: str, mtime: float) -> tuple[tuple[str, int], ...]:
    """(name without 'main.', witness index) of every signal kept in the r1cs."""
    out = []
    for line in Path(sym_path).read_text().splitlines():
        parts = line.split(",")
        if len(parts) >= 4 and int(parts[1]) >= 0 and parts[3].startswith("main."):
            out.append((parts[3][len("main."):], int(parts[1])))
    return tuple(out)


def signal_values(cc: CompiledCircuit, wtns: Path | list[int], prefix: str) -> dict[str, int]:
    """Witness values of every kept signal whose name starts with `main.<prefix>` (via .sym)."""
    w = read_wtns(wtns) if isinstance(wtns, Path) else wtns
    syms = _symbols(str(cc.sym_path), cc.sym_path.stat().st_mtime)
    return {name: w[idx] for name, idx in syms if name.startswith(prefix)}


def signed(v: int) -> int:
    """Field element -> signed integer (values above FIELD/2 are negative)."""
    return v - FIELD if v > FIELD // 2 else v
