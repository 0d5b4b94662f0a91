#!/usr/bin/env python3
"""Train the shipped digits classifiers and quantize them to verinfer.model.v1 specs.

Float training uses scikit-learn's MLPClassifier on pixels/16. Quantization (docs/models.md):
per-tensor symmetric int8 weights, int32 biases at the accumulator's scale, and a power-of-two
rescale (arithmetic right shift) after each hidden layer, chosen from training-set activations,
followed by ReLU and an 8-bit clamp. The integer model takes the raw 0..16 pixels.

    python scripts/train_digits.py            # writes both models + samples, prints accuracy
    python scripts/train_digits.py --check    # train and report only, write nothing
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verinfer.models import reference  # noqa: E402
from verinfer.models.digits import PIXEL_MAX, SPLIT_SEED, load_split  # noqa: E402
from verinfer.models.spec import ModelSpec, weights_commitment  # noqa: E402

DATA = ROOT / "verinfer" / "models" / "data"
TRAIN_SEED = 7
HIDDEN_CLAMP_BITS = 8
ACT_PERCENTILE = 99.9  # hidden activations above this training percentile saturate at the clamp

MODELS = {
    "digits-mlp": (32,),
    "digits-mlp-large": (256, 128),
}


def train_float(hidden: tuple[int, ...], x: np.ndarray, y: np.ndarray):
    """Float MLP on pixels scaled to [0, 1]."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation="relu",
        solver="adam",
        alpha=1e-2,
        learning_rate_init=3e-3,
        max_iter=800,
        random_state=TRAIN_SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x / PIXEL_MAX, y)
    return clf


def quantize(name: str, clf, x_calib: np.ndarray) -> ModelSpec:
    """Float MLP -> integer spec whose logits are a positive multiple of the float logits."""
    layers = []
    in_scale = 1.0 / PIXEL_MAX  # real value of one integer input unit
    acts = x_calib.astype(np.int64)  # integer activations entering the current layer
    n = len(clf.coefs_)
    for i, (coef, intercept) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        w = coef.T  # (out, in)
        w_scale = float(np.abs(w).max()) / 127.0
        wq = np.clip(np.round(w / w_scale), -127, 127).astype(np.int64)
        acc_scale = w_scale * in_scale
        bq = np.round(intercept / acc_scale).astype(np.int64)
        last = i == n - 1
        if last:
            shift, relu, clamp = 0, False, None
        else:
            acc = np.maximum(acts @ wq.T + bq, 0)
            top = float(np.percentile(acc, ACT_PERCENTILE))
            limit = (1 << (HIDDEN_CLAMP_BITS - 1)) - 1
            shift = 0
            while top / (1 << shift) > limit:
                shift += 1
            relu, clamp = True, HIDDEN_CLAMP_BITS
        layer = {
            "type": "dense",
            "in": int(w.shape[1]),
            "out": int(w.shape[0]),
            "weight": wq.tolist(),
            "bias": bq.tolist(),
            "shift": shift,
            "relu": relu,
            "clamp_bits": clamp,
        }
        layers.append(layer)
        if not last:
            half = 1 << (HIDDEN_CLAMP_BITS - 1)
            acts = np.clip(np.maximum((acts @ wq.T + bq) >> shift, 0), -half, half - 1)
            in_scale = acc_scale * (1 << shift)
    return ModelSpec.model_validate(
        {
            "format": "verinfer.model.v1",
            "name": name,
            "kind": "mlp",
            "input_shape": [64],
            "input_bits": 8,
            "output_bits": 32,
            "layers": layers,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report accuracy only, write nothing")
    args = parser.parse_args()

    split = load_split()
    report = {}
    for name, hidden in MODELS.items():
        clf = train_float(hidden, split.x_train, split.y_train)
        float_acc = float((clf.predict(split.x_test / PIXEL_MAX) == split.y_test).mean())
        spec = quantize(name, clf, split.x_train)
        logits = reference.run_batch(spec, split.x_test)
        int_acc = float((logits.argmax(axis=1) == split.y_test).mean())
        report[name] = {
            "layers": [f"{layer.in_}x{layer.out} shift={layer.shift}" for layer in spec.layers],
            "parameters": spec.num_parameters,
            "float_test_accuracy": round(float_acc, 4),
            "int8_test_accuracy": round(int_acc, 4),
            "test_samples": int(len(split.y_test)),
            "commitment": hex(weights_commitment(spec)),
        }
        print(f"{name}: float {float_acc:.4f}  int8 {int_acc:.4f}  ({spec.num_parameters} params, "
              f"shifts {[layer.shift for layer in spec.layers]})")
        if int_acc < 0.96:
            print(f"error: {name} int8 accuracy {int_acc:.4f} < 0.96", file=sys.stderr)
            return 1
        if not args.check:
            (DATA / f"{name}.json").write_bytes(spec.canonical_json())
    if not args.check:
        samples = []
        for digit in range(10):
            idx = int(np.flatnonzero(split.y_test == digit)[0])
            samples.append({"test_index": idx, "label": digit, "pixels": split.x_test[idx].tolist()})
        out = {"format": "verinfer.digits-samples.v1", "split_seed": SPLIT_SEED, "samples": samples}
        (DATA / "digits-samples.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
