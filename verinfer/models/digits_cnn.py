"""A small CNN on scikit-learn's 8x8 digits, quantised to the integer model format (§1.4).

conv3x3(1->4, pad 1) + ReLU -> avgpool 2x2 -> conv3x3(4->4, pad 1) + residual + ReLU -> dense 64->10.
Trained in float (torch, one thread, fixed seed), then quantised post-training: int8 weights with
power-of-two scales where a residual needs them, int32 biases, shifts chosen from the training
activations so every hidden activation fits 8 bits. The held-out accuracy reported is the integer
reference executor's, on the fixed split of verinfer.models.digits.

    python -m verinfer.models.digits_cnn        # rewrites verinfer/models/data/digits-cnn.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from verinfer.models import reference
from verinfer.models.digits import PIXEL_MAX, load_split
from verinfer.models.spec import ModelSpec

SEED = 20261202
OUT = Path(__file__).resolve().parent / "data" / "digits-cnn.json"


def _train(x: np.ndarray, y: np.ndarray, epochs: int = 300) -> Any:
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.c2 = torch.nn.Conv2d(4, 4, 3, padding=1)
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, t: Any, keep: list | None = None) -> Any:
            h1 = torch.relu(self.c1(t))
            p = torch.nn.functional.avg_pool2d(h1, 2)
            h2 = torch.relu(self.c2(p) + p)
            if keep is not None:
                keep.extend([h1, p, h2])
            return self.fc(h2.flatten(1))

    net = Net()
    xt = torch.tensor(x.reshape(-1, 1, 8, 8) / PIXEL_MAX, dtype=torch.float32)
    yt = torch.tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    return net, xt


def _pow2_scale(w: np.ndarray) -> int:
    """Largest e with max|w| * 2^e <= 127."""
    return int(math.floor(math.log2(127 / max(float(np.abs(w).max()), 1e-9))))


def _shift_for(acc_max: float) -> int:
    return max(0, int(math.ceil(math.log2(max(acc_max, 1.0) / 127))))


def build() -> tuple[ModelSpec, dict[str, float]]:
    """Train, quantise and evaluate; returns (spec, {float_acc, int_acc, ...})."""
    import torch

    split = load_split()
    net, xt = _train(split.x_train, split.y_train)
    keep: list = []
    with torch.no_grad():
        net(xt, keep)
    h1_max = float(torch.quantile(keep[0].flatten(), 0.999))
    h2_max = float(torch.quantile(keep[2].flatten(), 0.999))
    w1, b1 = net.c1.weight.detach().numpy(), net.c1.bias.detach().numpy()
    w2, b2 = net.c2.weight.detach().numpy(), net.c2.bias.detach().numpy()
    w3, b3 = net.fc.weight.detach().numpy(), net.fc.bias.detach().numpy()
    s_in = float(PIXEL_MAX)                       # x_q = pixels = x_f * 16
    e1 = _pow2_scale(w1)
    s1 = (2.0 ** e1) * s_in                       # conv1 accumulator scale
    shift1 = _shift_for(h1_max * s1)
    s_h1 = s1 / 2 ** shift1                       # activation scale after conv1 (pooling keeps it)
    rs = _pow2_scale(w2)                          # conv2 weights scale = residual's 2^rs
    s2 = (2.0 ** rs) * s_h1
    shift2 = _shift_for(h2_max * s2)
    s_h2 = s2 / 2 ** shift2
    e3 = _pow2_scale(w3)
    q = lambda a, s: np.rint(a * s).astype(np.int64).tolist()  # noqa: E731
    layers = [
        {"type": "conv2d", "in_shape": [1, 8, 8], "out_channels": 4, "kernel": 3, "stride": 1, "padding": 1,
         "weight": q(w1, 2.0 ** e1), "bias": q(b1, s1), "shift": shift1, "relu": True, "clamp_bits": 8},
        {"type": "avgpool2d", "in_shape": [4, 8, 8], "kernel": 2},
        {"type": "conv2d", "in_shape": [4, 4, 4], "out_channels": 4, "kernel": 3, "stride": 1, "padding": 1,
         "weight": q(w2, 2.0 ** rs), "bias": q(b2, s2), "residual_shift": rs, "shift": shift2, "relu": True,
         "clamp_bits": 8},
        {"type": "dense", "in": 64, "out": 10, "weight": q(w3, 2.0 ** e3), "bias": q(b3, (2.0 ** e3) * s_h2),
         "shift": 0, "relu": False, "clamp_bits": None},
    ]
    spec = ModelSpec.model_validate({"format": "verinfer.model.v1", "name": "digits-cnn", "kind": "cnn",
                                     "input_shape": [1, 8, 8], "input_bits": 8, "output_bits": 32,
                                     "layers": layers})
    with torch.no_grad():
        xte = torch.tensor(split.x_test.reshape(-1, 1, 8, 8) / PIXEL_MAX, dtype=torch.float32)
        float_acc = float((net(xte).argmax(1).numpy() == split.y_test).mean())
    logits = reference.run_batch(spec, split.x_test)
    int_acc = float((np.argmax(logits, axis=1) == split.y_test).mean())
    return spec, {"float_test_accuracy": float_acc, "int8_test_accuracy": int_acc,
                  "test_samples": int(len(split.y_test)), "parameters": spec.num_parameters}


def main() -> None:
    spec, stats = build()
    OUT.write_text(json.dumps(spec.to_json_obj(), sort_keys=True, separators=(",", ":")))
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
