"""Test inputs and tiny model specs (shared by the demo, tests, benchmarks and ceremonies)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from verinfer.models import spec as model_spec


def sample_input(i: int = 0) -> list[int]:
    """Pixels (0..16, 64 values) of shipped digits sample i: a realistic digits-mlp input."""
    data = json.loads((Path(model_spec.builtin_path("digits-mlp")).parent / "digits-samples.json").read_text())
    sample = data["samples"][i % len(data["samples"])]
    return [int(v) for v in sample["pixels"]]


def sample_label(i: int = 0) -> int:
    data = json.loads((Path(model_spec.builtin_path("digits-mlp")).parent / "digits-samples.json").read_text())
    return int(data["samples"][i % len(data["samples"])]["label"])


def random_spec(seed: int = 0, sizes: tuple[int, ...] = (6, 5, 4, 3), input_bits: int = 8,
                layer_kinds: list[dict[str, Any]] | None = None, name: str | None = None) -> dict[str, Any]:
    """A §1.4 spec with random int8 weights; `layer_kinds` sets shift/relu/clamp_bits per layer.

    The default mixes every requantisation variant the circuit supports, so one tiny circuit
    exercises all gadget branches; the last layer is always the plain int32 logits layer.
    """
    rng = random.Random(seed)
    n_layers = len(sizes) - 1
    variants: list[dict[str, Any]] = [
        {"shift": 3, "relu": True, "clamp_bits": 8},
        {"shift": 2, "relu": False, "clamp_bits": 6},
        {"shift": 1, "relu": False, "clamp_bits": None},
        {"shift": 4, "relu": True, "clamp_bits": None},
    ]
    kinds = layer_kinds or variants[: n_layers - 1]
    kinds = list(kinds) + [{"shift": 0, "relu": False, "clamp_bits": None}]
    layers = []
    for i in range(n_layers):
        n_in, n_out = sizes[i], sizes[i + 1]
        layers.append({
            "type": "dense", "in": n_in, "out": n_out,
            "weight": [[rng.randint(-128, 127) for _ in range(n_in)] for _ in range(n_out)],
            "bias": [rng.randint(-3000, 3000) for _ in range(n_out)],
            **kinds[i],
        })
    return {"format": "verinfer.model.v1", "name": name or f"tiny-{seed}", "kind": "mlp",
            "input_shape": [sizes[0]], "input_bits": input_bits, "output_bits": 32, "layers": layers}


def prover_available() -> bool:
    """The Groth16 pipeline can run here: its npm toolchain (node, circom2, circomlib) is installed."""
    from verinfer.prover import toolchain  # noqa: PLC0415  (only the demo's auto mode asks)

    try:
        toolchain.node_binary()
        nm = toolchain.node_modules()
    except Exception:
        return False
    return (nm / "circom2").is_dir() and (nm / "circomlib").is_dir()
