"""The private-weights model commitment, in Python and as circom (must agree with the models package).

The definition is the models package's `weights_commitment` (docs/models.md): a header
`Poseidon([num_layers, input_bits, output_bits])` (a constant of the architecture, so the circuit
embeds its value), then one `LayerCommit` step per layer (circuits/lib/commitment.circom).
"""

from __future__ import annotations

from typing import Any

from verinfer.models.hashing import hash_vector, poseidon
from verinfer.prover.spec import SpecView, view


def header(sv: SpecView) -> int:
    """Poseidon([num_layers, input_bits, output_bits]): depends on the architecture only."""
    return poseidon([len(sv.layers), sv.input_bits, sv.output_bits])


def layer_weights(layer: Any) -> tuple[list[int], list[int]]:
    """(committed weights, committed biases): dense rows, a conv kernel + channel biases, nothing for pooling."""
    if layer.fixed:
        return [], list(layer.bias)
    if layer.params is not None:
        return list(layer.params), list(layer.channel_bias)
    return [w for row in layer.weight for w in row], list(layer.bias)


def commitment(spec: Any) -> int:
    """weights_commitment computed from the spec (independent re-implementation for cross-checks)."""
    sv = view(spec)
    c = header(sv)
    for layer in sv.layers:
        flat, bias = layer_weights(layer)
        c = poseidon([c, hash_vector(flat, 8), hash_vector(bias, 32), layer.n_in,
                      layer.n_out, layer.shift, int(layer.relu), layer.clamp_bits or 0])
    return c


def circom_block(sv: SpecView) -> str:
    """Statements computing `commitValue` from the private inputs w<i>, b<i>."""
    lines = [f"    var commitHeader = {header(sv)};"]
    prev = "commitHeader"
    for li, layer in enumerate(sv.layers):
        tail = f"{layer.n_in}, {layer.n_out}, {layer.shift}, {1 if layer.relu else 0}, {layer.clamp_bits or 0}"
        if layer.fixed:
            flat, bias = layer_weights(layer)
            lines.append(f"    component lc{li} = LayerCommitConst({hash_vector(flat, 8)}, {hash_vector(bias, 32)}, {tail});")
        elif layer.kernel is not None:
            lines.append(f"    component lc{li} = LayerCommitFlat({len(layer.kernel[0])}, {len(layer.kernel[1])}, {tail});")
            lines.append(f"    lc{li}.w <== w{li};")
            lines.append(f"    lc{li}.b <== b{li};")
        else:
            lines.append(f"    component lc{li} = LayerCommit({tail});")
            lines.append(f"    lc{li}.w <== w{li};")
            lines.append(f"    lc{li}.b <== b{li};")
        lines.append(f"    lc{li}.prev <== {prev};")
        prev = f"lc{li}.out"
    lines.append("    signal commitValue;")
    lines.append(f"    commitValue <== {prev};")
    return "\n".join(lines)
