"""Small valid model specs for tests and ceremonies (tiny circuits that compile in seconds)."""

from __future__ import annotations

import random
from typing import Any


def random_spec(seed: int = 0, sizes: tuple[int, ...] = (6, 5, 4, 3), input_bits: int = 8,
                layer_kinds: list[dict[str, Any]] | None = None, name: str | None = None) -> dict[str, Any]:
    """A §1.4 spec with random int8 weights; `layer_kinds` sets shift/relu/clamp_bits per layer.

    The default mixes every requantisation variant the circuit supports, so one tiny circuit
    exercises all gadget branches; the last layer is always the plain int32 logits layer.
    """
    rng = random.Random(seed)
    n_layers = len(sizes) - 1
    kinds = layer_kinds or [
        {"shift": 3, "relu": True, "clamp_bits": 8},
        {"shift": 2, "relu": False, "clamp_bits": 6},
        {"shift": 1, "relu": False, "clamp_bits": None},
        {"shift": 4, "relu": True, "clamp_bits": None},
    ][: n_layers - 1]
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
