"""Constraint systems and witnesses straight from the model spec, without the circom compile.

circom 2 (WebAssembly) needs minutes for a 30k-constraint circuit and never finished the large
MLP's ~510k-constraint private circuit; the generated circom source stays the readable reference
(circuitgen.py, circuits/lib/*.circom) and this module emits the same gadgets as iden3 `.r1cs` /
`.wtns` files, which snarkjs and groth16py read:

* inputs/weights range checks (n bits: n-1 bit wires + the top bit as a linear combination),
* `Requant` (one decomposition, sign, NonZero clamp, selector products) as in gadgets.circom,
* column-packed private products and per-weight products as in circuitgen,
* circomlib's optimised Poseidon (`PoseidonEx`, same C/S/M/P constants) as in poseidon.circom.

One function walks the model in both modes: *build* (linear combinations as dicts, constraints
collected, written once) and *witness* (integers only, numpy where it pays), allocating wires in
the same order, so a witness lines up with the r1cs by construction (the tests check every
constraint). With `names=True` the witness pass also records every signal under circom's names,
which turns it into a fast witness for the circom-compiled circuit (`circom_witness`).
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from verinfer.models.hashing import FIELD, hash_vector
from verinfer.prover import commitment as _commitment
from verinfer.prover import poseidon_r1cs, toolchain
from verinfer.prover.circuitgen import MODES, PUBLIC_SIGNALS, _column_packing, _needs_requant, requant_window_bits
from verinfer.prover.errors import ProverError, ProverInputError
from verinfer.prover.spec import BIAS_BITS, WEIGHT_BITS, SpecView, check_vector, interval_after, view

P = FIELD
GENERATOR_VERSION = "verinfer.direct.v1"
_N8 = 32
_MINUS1 = P - 1

LC = dict  # wire index -> coefficient (wire 0 is the constant 1)


def _lc_add(dst: dict[int, int], src: dict[int, int], k: int = 1) -> dict[int, int]:
    """dst += k * src (in place, coefficients mod p, zero terms dropped)."""
    for w, c in src.items():
        v = (dst.get(w, 0) + k * c) % P
        if v:
            dst[w] = v
        else:
            dst.pop(w, None)
    return dst


def _lc(*pairs: tuple[int, dict[int, int]], const: int = 0) -> dict[int, int]:
    out: dict[int, int] = {0: const % P} if const % P else {}
    for k, src in pairs:
        _lc_add(out, src, k)
    return out


class CS:
    """A constraint system under construction (build) or a witness under computation (witness)."""

    def __init__(self, witness: bool, names: bool = False) -> None:
        self.witness = witness
        self.n_wires = 1
        self.cons: list[tuple[dict[int, int], dict[int, int], dict[int, int]]] = []
        self.bool_wires: list[np.ndarray] = []   # b * (b - 1) = 0 for plain wires (vectorised)
        self.bool_lcs: list[dict[int, int]] = []  # the same for a linear combination (top bits)
        self.values: list[Any] = [1]
        self.named: dict[str, int] | None = {} if names else None

    # -- wires ---------------------------------------------------------------------------------
    def alloc(self, n: int, values: Sequence[int] | None = None) -> int:
        """n new wires (their values in witness mode); returns the first index."""
        start = self.n_wires
        self.n_wires += n
        if self.witness:
            if values is None:
                self.values.extend([0] * n)
            else:
                if len(values) != n:
                    raise AssertionError("witness allocation mismatch")
                self.values.extend(values)
        return start

    def one(self, value: int = 0) -> Any:
        """A single new wire: its LC (build) or its value (witness)."""
        idx = self.alloc(1, [value % P] if self.witness else None)
        return value % P if self.witness else {idx: 1}

    def mul(self, a: Any, b: Any) -> Any:
        """A wire c = a * b with one constraint."""
        if self.witness:
            return self.one(a * b)
        c = self.one()
        self.cons.append((a, b, c))
        return c

    def enforce_zero(self, lc: dict[int, int]) -> None:
        """A linear constraint lc = 0 (written as lc * 1 = 0)."""
        if not self.witness:
            self.cons.append((lc, {0: 1}, {}))

    def n_constraints(self) -> int:
        return len(self.cons) + sum(len(a) for a in self.bool_wires) + len(self.bool_lcs)

    def name(self, key: str, value: int) -> None:
        if self.named is not None:
            self.named[key] = value % P


# -- gadgets -------------------------------------------------------------------------------------

def range_bits(cs: CS, vals: Any, nbits: int, offset: int, prefix: str | None = None) -> Any:
    """Range-check each value: `v + offset` in [0, 2^nbits). Costs nbits constraints per value.

    Build: `vals` is a list of LCs; returns nothing (callers use the values, not the bits).
    Witness: `vals` is an int array; the bits fill nbits-1 wires per value (the top bit is the
    linear combination `(v + offset - sum 2^k b_k) / 2^(nbits-1)`, no wire of its own).
    """
    n = len(vals)
    start = cs.n_wires
    if cs.witness:
        u = np.asarray(vals, dtype=object if nbits > 62 else np.int64) + offset
        if nbits <= 62:
            if (u < 0).any() or (u >> nbits).any():
                bad = int(np.argmax((u < 0) | ((u >> nbits) != 0)))
                raise ProverInputError(f"value {int(u[bad]) - offset} at {prefix}[{bad}] is outside its {nbits}-bit range")
            bits = (u[:, None] >> np.arange(nbits, dtype=np.int64)) & 1
        else:
            bits = np.array([[(int(v) >> k) & 1 for k in range(nbits)] for v in u], dtype=np.int64)
        cs.alloc(n * (nbits - 1), bits[:, : nbits - 1].ravel().tolist())
        if cs.named is not None and prefix is not None:
            alias = prefix[: -len("hw.b")] + "wbits" if prefix.endswith(".hw.b") else None
            for i in range(n):
                for k in range(nbits):
                    cs.named[f"{prefix}[{i}][{k}]"] = int(bits[i, k])
                    if alias:
                        cs.named[f"{alias}[{i}][{k}]"] = int(bits[i, k])
        return bits
    cs.alloc(n * (nbits - 1))
    cs.bool_wires.append(np.arange(start, start + n * (nbits - 1), dtype=np.int64))
    inv_top = pow(1 << (nbits - 1), P - 2, P)
    for i, v in enumerate(vals):
        top = _lc((1, v), const=offset)
        base = start + i * (nbits - 1)
        for k in range(nbits - 1):
            _lc_add(top, {base + k: 1}, -(1 << k))
        self_top = {w: c * inv_top % P for w, c in top.items()}
        cs.bool_lcs.append(self_top)
    return None


def poseidon(cs: CS, inputs: list[Any], prefix: str | None = None) -> Any:
    """circomlib Poseidon(len(inputs)): 3 constraints per S-box, linear layers free."""
    t = len(inputs) + 1
    if cs.witness:
        out, sig, rec = poseidon_r1cs.trace([int(v) % P for v in inputs], record=cs.named is not None and prefix is not None)
        cs.alloc(len(sig), sig)
        if rec and cs.named is not None and prefix is not None:  # rec is non-empty only when both are set
            cs.named.update(zip(_prefixed_names(prefix, t), rec, strict=True))
        return out
    c, s, m, pm = poseidon_r1cs.constants(t)
    n_p = poseidon_r1cs.N_ROUNDS_P[t - 2]
    half = poseidon_r1cs.N_ROUNDS_F // 2

    def sbox(x: dict[int, int]) -> dict[int, int]:
        x2 = cs.mul(x, x)
        x4 = cs.mul(x2, x2)
        return cs.mul(x4, x)

    def mix(st: list[dict[int, int]], mat: Any) -> list[dict[int, int]]:
        out = []
        for i in range(t):
            acc: dict[int, int] = {}
            for j in range(t):
                _lc_add(acc, st[j], mat[j][i])
            out.append(acc)
        return out

    state = [{0: c[0]}] + [_lc((1, v), const=c[1 + j]) for j, v in enumerate(inputs)]
    for r in range(half):
        state = [sbox(v) for v in state]
        state = [_lc((1, v), const=c[(r + 1) * t + j]) for j, v in enumerate(state)]
        state = mix(state, pm if r == half - 1 else m)
    w = 2 * t - 1
    for r in range(n_p):
        x0 = _lc((1, sbox(state[0])), const=c[(half + 1) * t + r])
        row = s[w * r: w * (r + 1)]
        new0 = _lc((row[0], x0), *((row[i], state[i]) for i in range(1, t)))
        state = [new0] + [_lc((1, state[i]), (row[t + i - 1], x0)) for i in range(1, t)]
    for r in range(half - 1):
        state = [sbox(v) for v in state]
        state = [_lc((1, v), const=c[(half + 1) * t + n_p + r * t + j]) for j, v in enumerate(state)]
        state = mix(state, m)
    state = [sbox(v) for v in state]
    return _lc(*((m[j][0], state[j]) for j in range(t)))


@lru_cache(maxsize=512)
def _prefixed_names(prefix: str, t: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{n}" for n in poseidon_r1cs.names(t))


def _pack(vals: list[Any], bits: int, witness: bool) -> list[Any]:
    """§1.1 words: u_i = v_i + 2^(bits-1), floor(248/bits) per word, little-endian."""
    per = 248 // bits
    half = 1 << (bits - 1)
    words: list[Any] = []  # field elements (witness) or linear combinations (build)
    for s in range(0, len(vals), per):
        if witness:
            wv = 0
            for i, v in enumerate(vals[s:s + per]):
                wv += (int(v) + half) << (bits * i)
            words.append(wv % P)
        else:
            acc: dict[int, int] = {}
            for i, v in enumerate(vals[s:s + per]):
                _lc_add(acc, v, 1 << (bits * i))
                _lc_add(acc, {0: half}, 1 << (bits * i))
            words.append(acc)
    return words


def chain_hash(cs: CS, vals: list[Any], bits: int, prefix: str | None = None) -> Any:
    """§1.1 vector hash over values in range: state = n; state = Poseidon([state] ++ <=15 words)."""
    words = _pack(vals, bits, cs.witness)
    n = len(vals)
    state: Any = n if cs.witness else {0: n}
    n_full = len(words) // 15
    for ci in range(0, len(words), 15):
        chunk = words[ci:ci + 15]
        label = None
        if prefix is not None:
            label = f"{prefix}.full[{ci // 15}]" if ci // 15 < n_full else f"{prefix}.last"
        state = poseidon(cs, [state] + chunk, label)
        if cs.named is not None and prefix is not None:
            cs.named[f"{prefix}.st[{ci // 15 + 1}]"] = state
    if cs.named is not None and prefix is not None and prefix.endswith(".h"):
        cs.named[prefix[:-2] + ".out"] = state
    return state


def requant(cs: CS, acc: Any, k: int, shift: int, relu: bool, clamp: int, prefix: str | None = None) -> Any:
    """gadgets.circom `Requant(K, shift, relu, clampBits)`: K+1 bits plus at most 4 constraints."""
    mid = 1 << k
    half = m = 0
    if clamp:
        if relu:
            m = clamp - 1
        else:
            m, half = clamp, 1 << (clamp - 1)
    off = mid + half * (1 << shift)
    if cs.witness:
        u = int(acc) + off
        if not 0 <= u < (1 << (k + 1)):
            raise ProverError(f"accumulator {int(acc)} outside the requant window of {prefix}")
        bits = [(u >> i) & 1 for i in range(k + 1)]
        cs.alloc(k, bits[:k])
        if cs.named is not None and prefix is not None:
            for i, b in enumerate(bits):
                cs.named[f"{prefix}.bits.out[{i}]"] = b
            cs.named[f"{prefix}.bits.in"] = u
            cs.named[f"{prefix}.acc"] = int(acc) % P
            cs.named[f"{prefix}.s"] = bits[k]
        s = bits[k]
        if not clamp:
            q = sum(bits[i] << (i - shift) for i in range(shift, k))
            if relu:
                out = cs.one(s * q)
            else:
                hiw = 1 << (k - shift) if k >= shift else 0
                out = q + s * hiw - hiw
        else:
            top = (1 << m) - 1
            low_end = min(shift + m, k)
            v = sum(bits[i] << (i - shift) for i in range(shift, low_end))
            if low_end < k:
                hs = sum(bits[low_end:k])
                inv = pow(hs, P - 2, P) if hs else 0
                cs.one(inv)
                nz = cs.one(1 if hs else 0)
                t = cs.one(nz * (top - v))
                o = cs.one(s * (v + t))
                if cs.named is not None and prefix is not None:
                    cs.named[f"{prefix}.nz.in"] = hs
                    cs.named[f"{prefix}.nz.inv"] = inv
                    cs.named[f"{prefix}.nz.out"] = nz
                    cs.named[f"{prefix}.t"] = t % P
            else:
                o = cs.one(s * v)
            out = o - half
        if cs.named is not None and prefix is not None:
            cs.named[f"{prefix}.out"] = out % P
        return out
    start = cs.alloc(k)
    cs.bool_wires.append(np.arange(start, start + k, dtype=np.int64))
    top_lc = _lc((1, acc), const=off)
    for i in range(k):
        top_lc[start + i] = (top_lc.get(start + i, 0) - (1 << i)) % P
    inv_top = pow(1 << k, P - 2, P)
    s_lc = {w: c * inv_top % P for w, c in top_lc.items() if c}
    cs.bool_lcs.append(s_lc)
    if not clamp:
        ql = {start + i: 1 << (i - shift) for i in range(shift, k)}
        if relu:
            return cs.mul(s_lc, ql)
        hiw = 1 << (k - shift) if k >= shift else 0
        return _lc((1, ql), (hiw, s_lc), const=-hiw)
    top = (1 << m) - 1
    low_end = min(shift + m, k)
    vl = {start + i: 1 << (i - shift) for i in range(shift, low_end)}
    if low_end < k:
        hsl = {start + i: 1 for i in range(low_end, k)}
        inv = cs.one()
        nz = cs.mul(hsl, inv)
        cs.cons.append((hsl, _lc((-1, nz), const=1), {}))
        t = cs.mul(nz, _lc((-1, vl), const=top))
        o = cs.mul(s_lc, _lc((1, vl), (1, t)))
    else:
        o = cs.mul(s_lc, vl)
    return _lc((1, o), const=-half)


# -- the model ---------------------------------------------------------------------------------

def _bounds_public(layer: Any, lo_hi: list[tuple[int, int]]) -> list[tuple[int, int]]:
    w = np.array(layer.weight, dtype=object)
    xlo = np.array([a for a, _ in lo_hi], dtype=object)
    xhi = np.array([b for _, b in lo_hi], dtype=object)
    a, b = w * xlo, w * xhi
    lo = np.minimum(a, b).sum(axis=1) + np.array(layer.bias, dtype=object)
    hi = np.maximum(a, b).sum(axis=1) + np.array(layer.bias, dtype=object)
    return [(int(x), int(y)) for x, y in zip(lo, hi, strict=True)]


def _bounds_private(layer: Any, lo_hi: list[tuple[int, int]]) -> tuple[int, int]:
    wlo, whi = -(1 << (WEIGHT_BITS - 1)), (1 << (WEIGHT_BITS - 1)) - 1
    lo, hi = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1
    for xlo, xhi in lo_hi:
        c = (xlo * wlo, xlo * whi, xhi * wlo, xhi * whi)
        lo, hi = lo + min(c), hi + max(c)
    return lo, hi


def _bounds_conv(layer: Any, lo_hi: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Worst case over int8 kernels and int32 biases, per output (residual term exact)."""
    wlo, whi = -(1 << (WEIGHT_BITS - 1)), (1 << (WEIGHT_BITS - 1)) - 1
    out = []
    for i, pairs in enumerate(layer.uses):
        lo, hi = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1
        for j, _ in pairs:
            xlo, xhi = lo_hi[j]
            c = (xlo * wlo, xlo * whi, xhi * wlo, xhi * whi)
            lo, hi = lo + min(c), hi + max(c)
        if layer.residual_shift is not None:
            lo += lo_hi[i][0] << layer.residual_shift
            hi += lo_hi[i][1] << layer.residual_shift
        out.append((lo, hi))
    return out


def walk(sv: SpecView, mode: str, cs: CS, x: Sequence[int] | None = None, binding: int = 0) -> dict[str, Any]:
    """The whole circuit, in build or witness mode (identical wire order). Returns layout facts."""
    private = mode == "private"
    xin: Sequence[int] = x if x is not None else ()  # the input (witness mode only)
    names = PUBLIC_SIGNALS[mode]
    n_out_sig = len(names) - 1
    wit = cs.witness
    pub_start = cs.alloc(n_out_sig + 1, [0] * n_out_sig + [binding % P] if wit else None)
    pub = {n: pub_start + i for i, n in enumerate(names)}
    # private inputs: x, then w<l>, b<l> (circom's order)
    x_start = cs.alloc(sv.input_len, [v % P for v in xin] if wit else None)
    wb: list[tuple[int, int]] = []
    if private:
        for layer in sv.layers:
            if layer.fixed:
                wb.append((0, 0))
                continue
            flat, bias_c = _commitment.layer_weights(layer)
            ws = cs.alloc(len(flat), [int(v) % P for v in flat] if wit else None)
            bs = cs.alloc(len(bias_c), [int(v) % P for v in bias_c] if wit else None)
            wb.append((ws, bs))
    n_private_inputs = cs.n_wires - x_start
    nm = cs.named
    if nm is not None:
        nm["requestBinding"] = binding % P
        for i, v in enumerate(xin):
            nm[f"x[{i}]"] = v % P
        if private:
            for li, layer in enumerate(sv.layers):
                if layer.fixed:
                    continue
                if layer.kernel is not None:
                    for k, v in enumerate(layer.kernel[0]):
                        nm[f"w{li}[{k}]"] = v % P
                    for k, v in enumerate(layer.kernel[1]):
                        nm[f"b{li}[{k}]"] = v % P
                    continue
                for i, row in enumerate(layer.weight):
                    for j, v in enumerate(row):
                        nm[f"w{li}[{i}][{j}]"] = v % P
                for i, v in enumerate(layer.bias):
                    nm[f"b{li}[{i}]"] = v % P

    half_in = 1 << (sv.input_bits - 1)
    xs: list[Any]  # input values (witness) or their wires as linear combinations (build)
    if wit:
        xs = list(xin)
        range_bits(cs, np.array(xs, dtype=np.int64), sv.input_bits, half_in, "inHash.b")
        in_hash = chain_hash(cs, xs, sv.input_bits, "inHash.h")
    else:
        xs = [{x_start + i: 1} for i in range(sv.input_len)]
        range_bits(cs, xs, sv.input_bits, half_in)
        in_hash = chain_hash(cs, xs, sv.input_bits)
    results: dict[str, Any] = {"inputHash": in_hash}

    wmat: list[np.ndarray] = []
    hw: Any  # a layer's weight/bias hashes: field elements (witness) or linear combinations (build)
    hb: Any
    if private:
        c = _commitment.header(sv)
        for li, layer in enumerate(sv.layers):
            ws, bs = wb[li]
            pre = f"lc{li}"
            flat_l, bias_l = _commitment.layer_weights(layer)
            wmat.append(np.array(layer.weight, dtype=np.int64) if wit and layer.params is None else np.zeros(0))
            if layer.fixed:  # pooling: nothing private, the hashes are constants
                hw = hash_vector([], WEIGHT_BITS)
                hb = hash_vector(bias_l, BIAS_BITS)
                if not wit:
                    hw, hb = {0: hw} if hw else {}, {0: hb}
            elif wit:
                flat_arr = np.array(flat_l, dtype=np.int64)
                range_bits(cs, flat_arr, WEIGHT_BITS, 1 << (WEIGHT_BITS - 1), f"{pre}.hw.b")
                hw = chain_hash(cs, flat_arr.tolist(), WEIGHT_BITS, f"{pre}.hw.h")
                bias = np.array(bias_l, dtype=np.int64)
                range_bits(cs, bias, BIAS_BITS, 1 << (BIAS_BITS - 1), f"{pre}.hb.b")
                hb = chain_hash(cs, bias.tolist(), BIAS_BITS, f"{pre}.hb.h")
            else:
                wl = [{ws + k: 1} for k in range(len(flat_l))]
                range_bits(cs, wl, WEIGHT_BITS, 1 << (WEIGHT_BITS - 1))
                hw = chain_hash(cs, wl, WEIGHT_BITS)
                bl = [{bs + k: 1} for k in range(len(bias_l))]
                range_bits(cs, bl, BIAS_BITS, 1 << (BIAS_BITS - 1))
                hb = chain_hash(cs, bl, BIAS_BITS)
            consts = [layer.n_in, layer.n_out, layer.shift, int(layer.relu), layer.clamp_bits or 0]
            if wit:
                c = poseidon(cs, [c, hw, hb, *consts], f"{pre}.p")
                if nm is not None:
                    nm[f"{pre}.out"] = c
            else:
                c = poseidon(cs, [c if isinstance(c, dict) else {0: c}, hw, hb, *({0: k} for k in consts)])
        results["modelCommitment"] = c
        if nm is not None:
            nm["commitValue"] = c

    lo_hi = [(-half_in, half_in - 1)] * sv.input_len
    cur: Any = np.array(x, dtype=np.int64) if wit else [{x_start + i: 1} for i in range(sv.input_len)]
    for li, layer in enumerate(sv.layers):
        ws, bs = wb[li] if private else (0, 0)
        needs = _needs_requant(layer)
        conv = private and layer.params is not None
        kernel, uses = layer.params or (), layer.uses or ()  # set for conv layers (the only readers below)
        lp = private and not layer.fixed and not conv  # private dense
        packing = _column_packing(sv, layer, lo_hi) if lp and needs else None
        if conv:
            bounds = _bounds_conv(layer, lo_hi)
        elif lp:
            plo, phi = _bounds_private(layer, lo_hi)
            bounds = [(plo, phi)] * layer.n_out
        else:
            bounds = _bounds_public(layer, lo_hi)
        ks = [requant_window_bits(lo, hi, layer) if needs else 0 for lo, hi in bounds]
        # accumulators
        if wit and conv:
            prods = [kernel[p] * int(cur[j]) for pairs in uses for j, p in pairs]
            cs.alloc(len(prods), [v % P for v in prods])
            if nm is not None:
                for t, v in enumerate(prods):
                    nm[f"p{li}[{t}]"] = v % P
            wm = np.array(layer.weight, dtype=np.int64)
            accs = (wm @ cur.astype(np.int64)) + np.array(layer.bias, dtype=np.int64)
            acc_list = accs.tolist()
        elif conv:
            acc_list = []
            p0 = cs.alloc(sum(len(pairs) for pairs in uses))
            chan = layer.bias_channel
            t = 0
            for i, pairs in enumerate(uses):
                a = {bs + chan[i]: 1}
                for j, p in pairs:
                    cs.cons.append(({ws + p: 1}, cur[j], {p0 + t: 1}))
                    a[p0 + t] = 1
                    t += 1
                if layer.residual_shift is not None:
                    _lc_add(a, cur[i], 1 << layer.residual_shift)
                acc_list.append(a)
        elif wit:
            wm = wmat[li] if lp else np.array(layer.weight, dtype=np.int64)
            accs = (wm @ cur.astype(np.int64)) + np.array(layer.bias, dtype=np.int64)
            if lp and packing is not None:
                b_bits, g = packing
                groups = (layer.n_out + g - 1) // g
                lo_vec = [lo for lo, _ in lo_hi]
                u = (wm + 128).tolist()
                xcol = [int(v) - lo for v, lo in zip(cur.tolist(), lo_vec, strict=True)]
                cp = []
                for j in range(layer.n_in):
                    for gi in range(groups):
                        word = 0
                        for r in range(g):
                            i = gi * g + r
                            if i < layer.n_out:
                                word += u[i][j] << (b_bits * r)
                        cp.append(word * xcol[j] % P)
                cs.alloc(len(cp), cp)
                cs.alloc(layer.n_out, [int(a) % P for a in accs])
                if nm is not None:
                    for j in range(layer.n_in):
                        for gi in range(groups):
                            nm[f"cp{li}[{j}][{gi}]"] = cp[j * groups + gi]
                    for i, a in enumerate(accs.tolist()):
                        nm[f"acc{li}[{i}]"] = a % P
            elif lp:
                prods = (wm * cur[None, :]).ravel().tolist()
                cs.alloc(len(prods), [p % P for p in prods])
                if nm is not None:
                    for i in range(layer.n_out):
                        for j in range(layer.n_in):
                            nm[f"p{li}[{i}][{j}]"] = prods[i * layer.n_in + j] % P
            acc_list = accs.tolist()
        else:
            acc_list = []
            if lp and packing is not None:
                b_bits, g = packing
                groups = (layer.n_out + g - 1) // g
                lo_vec = [lo for lo, _ in lo_hi]
                cp0 = cs.alloc(layer.n_in * groups)
                acc0 = cs.alloc(layer.n_out)
                for j in range(layer.n_in):
                    xj = _lc((1, cur[j]), const=-lo_vec[j])
                    for gi in range(groups):
                        word_lc: dict[int, int] = {}
                        for r in range(g):
                            i = gi * g + r
                            if i < layer.n_out:
                                _lc_add(word_lc, {ws + i * layer.n_in + j: 1}, 1 << (b_bits * r))
                                _lc_add(word_lc, {0: 128}, 1 << (b_bits * r))
                        cs.cons.append((word_lc, xj, {cp0 + j * groups + gi: 1}))
                sumx: dict[int, int] = {}
                for j in range(layer.n_in):
                    _lc_add(sumx, cur[j])
                for gi in range(groups):
                    ident: dict[int, int] = {}
                    for r in range(g):
                        i = gi * g + r
                        if i >= layer.n_out:
                            continue
                        sc = 1 << (b_bits * r)
                        # acc_i - b_i - sum_j lo_j (w_ij + 128) + 128 sum_j x_j
                        ident[acc0 + i] = (ident.get(acc0 + i, 0) + sc) % P
                        ident[bs + i] = (ident.get(bs + i, 0) - sc) % P
                        for j in range(layer.n_in):
                            if lo_vec[j]:
                                wi = ws + i * layer.n_in + j
                                ident[wi] = (ident.get(wi, 0) - sc * lo_vec[j]) % P
                                ident[0] = (ident.get(0, 0) - sc * lo_vec[j] * 128) % P
                        _lc_add(ident, sumx, 128 * sc)
                    for j in range(layer.n_in):
                        _lc_add(ident, {cp0 + j * groups + gi: 1}, -1)
                    cs.enforce_zero({w: c for w, c in ident.items() if c})
                acc_list = [{acc0 + i: 1} for i in range(layer.n_out)]
            elif lp:
                p0 = cs.alloc(layer.n_out * layer.n_in)
                for i in range(layer.n_out):
                    a = {bs + i: 1}
                    for j in range(layer.n_in):
                        cs.cons.append(({ws + i * layer.n_in + j: 1}, cur[j], {p0 + i * layer.n_in + j: 1}))
                        a[p0 + i * layer.n_in + j] = 1
                    acc_list.append(a)
            else:
                for i in range(layer.n_out):
                    a = {0: layer.bias[i] % P} if layer.bias[i] % P else {}
                    for j, wv in enumerate(layer.weight[i]):
                        if wv:
                            _lc_add(a, cur[j], wv)
                    acc_list.append(a)
        # requantisation
        nxt = []
        for i in range(layer.n_out):
            if needs:
                o = requant(cs, acc_list[i], ks[i], layer.shift, layer.relu, layer.clamp_bits or 0,
                            f"rq{li}_{i}" if nm is not None else None)
            else:
                o = acc_list[i]
            nxt.append(o)
            if nm is not None:
                nm[f"h{li}[{i}]"] = int(o) % P
        cur = np.array(nxt, dtype=np.int64) if wit else nxt
        lo_hi = [interval_after(lo, hi, layer) for lo, hi in bounds]

    out_vals = cur.tolist() if wit else cur
    out_hash = chain_hash(cs, out_vals, sv.output_bits, "outHash.h" if nm is not None else None)
    results["outputHash"] = out_hash
    sq = cs.mul(binding % P if wit else {pub["requestBinding"]: 1}, binding % P if wit else {pub["requestBinding"]: 1})
    if nm is not None:
        nm["requestBindingSquare"] = sq
    for n in names:
        if n == "requestBinding":
            continue
        if wit:
            cs.values[pub[n]] = results[n] % P
            if nm is not None:
                nm[n] = results[n] % P
        else:
            cs.enforce_zero(_lc((1, results[n]), (-1, {pub[n]: 1})))
    return {"n_public": len(names), "n_pub_out": n_out_sig, "n_private_inputs": n_private_inputs,
            "outputs": out_vals if wit else None}


# -- files ----------------------------------------------------------------------------------------

_COEF_CACHE: dict[int, bytes] = {}


def _coef(c: int) -> bytes:
    b = _COEF_CACHE.get(c)
    if b is None:
        b = c.to_bytes(_N8, "little")
        if len(_COEF_CACHE) < 100_000:
            _COEF_CACHE[c] = b
    return b


def _lc_bytes(lc: dict[int, int], out: list[bytes]) -> None:
    out.append(struct.pack("<I", len(lc)))
    for w, c in sorted(lc.items()):
        out.append(struct.pack("<I", w))
        out.append(_coef(c))


def write_r1cs(cs: CS, layout: dict[str, Any], path: Path) -> int:
    """The iden3 `.r1cs` (version 1: header, constraints, wire-to-label map). Returns #constraints."""
    parts: list[bytes] = []
    for a, b, c in cs.cons:
        _lc_bytes(a, parts)
        _lc_bytes(b, parts)
        _lc_bytes(c, parts)
    one = _coef(1)
    m1 = _coef(_MINUS1)
    for lc in cs.bool_lcs:  # lc * (lc - 1) = 0
        _lc_bytes(lc, parts)
        lc2 = dict(lc)
        lc2[0] = (lc2.get(0, 0) - 1) % P
        _lc_bytes({w: c for w, c in lc2.items() if c}, parts)
        parts.append(struct.pack("<I", 0))
    body = b"".join(parts)
    n_bool = sum(len(a) for a in cs.bool_wires)
    if n_bool:
        # A = [(w, 1)], B = [(0, -1), (w, 1)], C = []: one fixed-size record per bit wire
        rec = np.dtype([("na", "<u4"), ("wa", "<u4"), ("ca", "V32"), ("nb", "<u4"), ("w0", "<u4"),
                        ("c0", "V32"), ("wb", "<u4"), ("cb", "V32"), ("nc", "<u4")])
        wires = np.concatenate(cs.bool_wires).astype(np.uint32)
        arr = np.zeros(len(wires), dtype=rec)
        arr["na"], arr["wa"], arr["ca"] = 1, wires, np.void(one)
        arr["nb"], arr["w0"], arr["c0"] = 2, 0, np.void(m1)
        arr["wb"], arr["cb"], arr["nc"] = wires, np.void(one), 0
        body += arr.tobytes()
    m = len(cs.cons) + len(cs.bool_lcs) + n_bool
    prime = P.to_bytes(_N8, "little")
    header = struct.pack("<I", _N8) + prime + struct.pack(
        "<IIIIQI", cs.n_wires, layout["n_pub_out"], layout["n_public"] - layout["n_pub_out"],
        layout["n_private_inputs"], cs.n_wires, m)
    labels = np.arange(cs.n_wires, dtype=np.uint64).tobytes()
    with open(path, "wb") as f:
        f.write(b"r1cs" + struct.pack("<II", 1, 3))
        for stype, data in ((1, header), (2, body), (3, labels)):
            f.write(struct.pack("<IQ", stype, len(data)))
            f.write(data)
    return m


def write_wtns(values: Sequence[int], path: Path) -> Path:
    """The iden3 `.wtns` (version 2): field elements in normal form, little-endian."""
    prime = P.to_bytes(_N8, "little")
    arr = np.zeros((len(values), _N8), dtype=np.uint8)
    small = np.fromiter((v if 0 <= v < (1 << 63) else 0 for v in values), dtype=np.uint64, count=len(values))
    arr[:, :8] = small.view(np.uint8).reshape(-1, 8)
    for i, v in enumerate(values):
        if not 0 <= v < (1 << 63):
            arr[i] = np.frombuffer((v % P).to_bytes(_N8, "little"), dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(b"wtns" + struct.pack("<II", 2, 2))
        sec1 = struct.pack("<I", _N8) + prime + struct.pack("<I", len(values))
        f.write(struct.pack("<IQ", 1, len(sec1)) + sec1)
        f.write(struct.pack("<IQ", 2, arr.nbytes))
        f.write(arr.tobytes())
    return path


# -- public API ------------------------------------------------------------------------------------

@dataclass
class DirectCircuit:
    """A directly generated constraint system in the artifact cache."""

    dir: Path
    mode: str
    spec: SpecView
    public_signal_names: tuple[str, ...]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def r1cs_path(self) -> Path:
        return self.dir / "circuit.r1cs"

    @property
    def n_constraints(self) -> int:
        return int(self.manifest["constraints"])

    @property
    def n_wires(self) -> int:
        return int(self.manifest["wires"])

    @property
    def circuit_hash(self) -> str:
        """Content id of this constraint system (generator version, mode, spec, Poseidon constants)."""
        return str(self.manifest["circuit_id"])


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ProverError(f"unknown proof mode {mode!r}: use one of {', '.join(MODES)}")


def circuit_id(sv: SpecView, mode: str) -> str:
    """sha256 over the generator version, the mode, the spec and circomlib's Poseidon constants."""
    h = hashlib.sha256()
    h.update(GENERATOR_VERSION.encode() + b"\0" + mode.encode() + b"\0" + sv.canonical_json.encode())
    h.update(hashlib.sha256(poseidon_r1cs._constants_text().encode()).digest())
    return h.hexdigest()


def generate_r1cs(spec: Any, mode: str = "public", *, force: bool = False) -> DirectCircuit:
    """Build (or reuse from the cache) the model's constraint system in `mode` as an `.r1cs`."""
    _check_mode(mode)
    sv = view(spec)
    cid = circuit_id(sv, mode)
    d = toolchain.cache_root() / f"direct-{cid}"
    mpath = d / "manifest.json"
    if mpath.exists() and not force:
        man = json.loads(mpath.read_text())
        dc = DirectCircuit(d, mode, sv, tuple(man["public_signal_names"]), man)
        if dc.r1cs_path.exists():
            return dc
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cs = CS(witness=False)
    layout = walk(sv, mode, cs, [0] * sv.input_len)
    t1 = time.perf_counter()
    tmp = d / f".circuit.r1cs.{time.time_ns()}"
    m = write_r1cs(cs, layout, tmp)
    tmp.replace(d / "circuit.r1cs")
    t2 = time.perf_counter()
    man = {"format": GENERATOR_VERSION, "model": sv.name, "mode": mode, "circuit_id": cid, "generator": "direct",
           "public_signal_names": list(PUBLIC_SIGNALS[mode]), "constraints": m, "wires": cs.n_wires,
           "private_inputs": layout["n_private_inputs"], "build_seconds": round(t1 - t0, 3),
           "write_seconds": round(t2 - t1, 3), "r1cs_sha256": toolchain.sha256_file(d / "circuit.r1cs")}
    mpath.write_text(json.dumps(man, indent=2))
    return DirectCircuit(d, mode, sv, PUBLIC_SIGNALS[mode], man)


def _checked_inputs(sv: SpecView, mode: str, x: Sequence[int], binding: int) -> list[int]:
    xs = check_vector(x, sv.input_len, sv.input_bits, "input")
    if not 0 <= int(binding) < FIELD:
        raise ProverInputError("requestBinding must be a field element (0 <= b < FIELD)")
    if mode == "private":
        for li, layer in enumerate(sv.layers):
            if layer.fixed:
                continue
            flat, bias = _commitment.layer_weights(layer)
            check_vector(flat, len(flat), WEIGHT_BITS, f"layer {li} weights")
            check_vector(bias, len(bias), BIAS_BITS, f"layer {li} bias")
    return xs


def witness_values(spec: Any, mode: str, x: Sequence[int], binding: int) -> tuple[list[int], list[int]]:
    """(witness in the direct r1cs layout, integer outputs) computed without any external tool."""
    _check_mode(mode)
    sv = view(spec)
    xs = _checked_inputs(sv, mode, x, binding)
    cs = CS(witness=True)
    layout = walk(sv, mode, cs, xs, int(binding))
    return cs.values, layout["outputs"]


def witness(spec: Any, mode: str, x: Sequence[int], binding: int, path: Path) -> Path:
    """The `.wtns` for the direct r1cs of (spec, mode)."""
    values, _ = witness_values(spec, mode, x, binding)
    return write_wtns(values, Path(path))


def named_values(spec: Any, mode: str, x: Sequence[int], binding: int) -> dict[str, int]:
    """Every signal of the circom reference circuit by its name (without `main.`), as circom computes it."""
    _check_mode(mode)
    sv = view(spec)
    xs = _checked_inputs(sv, mode, x, binding)
    cs = CS(witness=True, names=True)
    walk(sv, mode, cs, xs, int(binding))
    assert cs.named is not None
    return cs.named


def circom_wire_names(sym_path: Path) -> list[list[str]]:
    """Every signal name (without `main.`) of each circom r1cs wire, in wire order (0 = one)."""
    by_idx: dict[int, list[str]] = {}
    for line in Path(sym_path).read_text().splitlines():
        parts = line.split(",")
        if len(parts) >= 4:
            idx = int(parts[1])
            if idx > 0 and parts[3].startswith("main."):
                by_idx.setdefault(idx, []).append(parts[3][len("main."):])
    n = max(by_idx) + 1 if by_idx else 1
    return [["<one>"]] + [by_idx.get(i, []) for i in range(1, n)]


_PLAN_CACHE: dict[tuple[str, float], list[str]] = {}


def circom_witness(cc: Any, x: Sequence[int], binding: int, spec: Any = None) -> list[int]:
    """The witness of the circom-compiled circuit `cc` from the direct integer computation.

    Fills each circom wire by one of its signal names; a wire none of whose names this module
    computes is an error (never a guess), so a change in circom's output is caught, not mis-proven.
    """
    nv = named_values(spec if spec is not None else cc.spec, cc.mode, x, binding)
    key = (str(cc.sym_path), cc.sym_path.stat().st_mtime)
    plan = _PLAN_CACHE.get(key)
    if plan is None:
        plan = []
        for cands in circom_wire_names(cc.sym_path)[1:]:
            known = [c for c in cands if c in nv]
            if not known:
                raise ProverError(f"direct witness has no value for circom signal {cands[:1] or '?'}")
            plan.append(known[0])
        _PLAN_CACHE[key] = plan
    try:
        return [1] + [nv[n] for n in plan]
    except KeyError as exc:
        raise ProverError(f"direct witness has no value for circom signal {exc.args[0]!r}") from None


def check_r1cs(r1cs_path: Path, values: Sequence[int]) -> int | None:
    """Index of the first constraint the witness violates, or None (slow: tests and audits)."""
    data = Path(r1cs_path).read_bytes()
    n_sections = struct.unpack_from("<I", data, 8)[0]
    off = 12
    sections = {}
    for _ in range(n_sections):
        stype, size = struct.unpack_from("<IQ", data, off)
        sections[stype] = (off + 12, size)
        off += 12 + size
    hoff = sections[1][0]
    n8 = struct.unpack_from("<I", data, hoff)[0]
    m = struct.unpack_from("<I", data, hoff + 4 + n8 + 24)[0]
    pos = sections[2][0]

    def lc() -> int:
        nonlocal pos
        n = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        acc = 0
        for _ in range(n):
            w = struct.unpack_from("<I", data, pos)[0]
            c = int.from_bytes(data[pos + 4: pos + 4 + n8], "little")
            acc += c * values[w]
            pos += 4 + n8
        return acc % P

    for i in range(m):
        a, b, c = lc(), lc(), lc()
        if a * b % P != c:
            return i
    return None


# -- keys and proofs over a direct circuit (INSECURE dev keys) ----------------------------------------

def ptau_power(ptau_path: Path) -> int:
    """The power of a snarkjs `.ptau` file (header section), without reading the points."""
    with open(ptau_path, "rb") as f:
        head = f.read(12 + 12 + 4 + 64 + 8)
    if head[:4] != b"ptau":
        raise ProverError(f"{ptau_path} is not a .ptau file")
    n8 = struct.unpack_from("<I", head, 24)[0]
    return struct.unpack_from("<I", head, 28 + n8)[0]


def required_ptau_power(n_constraints: int, n_public: int) -> int:
    """Smallest power with 2^power >= constraints + public inputs + 1 (snarkjs groth16 setup's rule)."""
    need = n_constraints + n_public + 1
    power = 1
    while (1 << power) < need:
        power += 1
    return power


def check_ptau(dc: DirectCircuit, ptau_path: Path) -> int:
    """The ptau's power if it is large enough for `dc`, else a one-line ProverError."""
    have = ptau_power(ptau_path)
    need = required_ptau_power(dc.n_constraints, len(dc.public_signal_names))
    if have < need:
        raise ProverError(f"model {dc.spec.name!r} ({dc.mode}) has {dc.n_constraints:,} constraints and needs a "
                          f"2^{need} ptau; {Path(ptau_path).name} is 2^{have}")
    return have


def dev_setup(dc: DirectCircuit) -> tuple[Any, dict[str, Any]]:
    """(groth16py proving key, snarkjs-format vk dict): an INSECURE single-party key for `dc`."""
    import groth16py

    pk, vk = groth16py.setup(str(dc.r1cs_path))
    return pk, json.loads(vk.to_json())


def prove_values(pk: Any, values: Sequence[int], n_public: int, tmp_dir: Path | None = None) -> Any:
    """A groth16py proof (types.Proof) of a witness given as values (written to a RAM-backed .wtns)."""
    import tempfile

    import groth16py

    from verinfer.prover.types import Proof

    base = tmp_dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    with tempfile.NamedTemporaryFile(suffix=".wtns", dir=base) as f:
        write_wtns(values, Path(f.name))
        try:
            blob = groth16py.prove_wtns(pk, f.name)
        except Exception as exc:
            raise ProverError(f"groth16py proving failed: {exc}") from None
    return Proof.from_bytes(bytes(blob), [int(v) for v in values[1:1 + n_public]])


def witness_for(compiled: Any, x: Sequence[int], binding: int, spec: Any = None) -> list[int]:
    """The witness of a circuit from either path, by the direct integer computation.

    A `DirectCircuit` gets its own layout; a circom-compiled circuit gets circom's wire layout
    (bit-identical to its wasm witness; tests/test_prover_direct.py).
    """
    if isinstance(compiled, DirectCircuit):
        values, _ = witness_values(spec if spec is not None else compiled.spec, compiled.mode, x, binding)
        return values
    return circom_witness(compiled, x, binding, spec)
