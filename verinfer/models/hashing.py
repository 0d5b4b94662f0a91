"""Field hashes shared by nodes, circuits and contracts (docs/architecture.md §1.1).

Consensus compares these values bit for bit, and the circuits recompute them, so this module
implements circomlib's Poseidon exactly. `light-poseidon-python` only exposes arity 2, so the
permutation is implemented here for every arity 1..16; its round constants and MDS matrices are
regenerated with the Grain LFSR procedure of the Poseidon reference parameter script (the same
procedure circomlib's constants came from), and the tests cross-check against circomlibjs.
"""

from __future__ import annotations

from functools import lru_cache
from numbers import Integral
from typing import Sequence

import numpy as np

from verinfer.constants import FIELD, INVALID_INPUT_HASH, from_bytes32, to_bytes32  # noqa: F401  (one definition)

MAX_ARITY = 16
_N_ROUNDS_F = 8
# Partial-round counts for t = 2..17 (circomlib's choice: the paper's minimum, rounded up).
_N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)
_FIELD_BITS = 254
_WORD_BITS = 248
_CHUNK_WORDS = 15


class _Grain:
    """The 80-bit Grain LFSR of the Poseidon reference script, as a field-element source.

    `s[k+80] = s[k+62] ^ s[k+51] ^ s[k+38] ^ s[k+23] ^ s[k+13] ^ s[k]`; the first 160 generated
    bits are discarded; then bits are read in pairs (a, b) and b is emitted only when a is 1.
    18 bits are computed per step (the nearest tap is 18 behind the new bit), then shrunk with numpy.
    """

    _BLOCK = 18

    def __init__(self, t: int, rounds_f: int, rounds_p: int) -> None:
        # field=1 (prime field), sbox=0 (x^alpha), n=254, t, R_F, R_P, then thirty 1-bits.
        fields = [(1, 2), (0, 4), (_FIELD_BITS, 12), (t, 12), (rounds_f, 10), (rounds_p, 10)]
        seq: list[int] = []
        for value, width in fields:
            seq.extend(int(c) for c in format(value, f"0{width}b"))
        seq.extend([1] * 30)
        self._window = sum(bit << j for j, bit in enumerate(seq))  # bit j = s[k + j]
        self._pending = self._raw(162)[160:]  # the 160 warm-up bits are discarded
        self._out = np.zeros(0, dtype=np.uint8)
        self._pos = 0

    def _raw(self, n: int) -> np.ndarray:
        """The next n raw LFSR bits, rounded up to a multiple of 18."""
        w = self._window
        mask = (1 << self._BLOCK) - 1
        blocks = []
        for _ in range(-(-n // self._BLOCK)):
            new = ((w >> 62) ^ (w >> 51) ^ (w >> 38) ^ (w >> 23) ^ (w >> 13) ^ w) & mask
            blocks.append(new)
            w = (w >> self._BLOCK) | (new << 62)
        self._window = w
        arr = np.array(blocks, dtype=np.uint32)
        return ((arr[:, None] >> np.arange(self._BLOCK, dtype=np.uint32)) & 1).astype(np.uint8).reshape(-1)

    def _refill(self) -> None:
        raw = np.concatenate([self._pending, self._raw(self._BLOCK * 4096)])
        even = len(raw) - len(raw) % 2
        raw, self._pending = raw[:even], raw[even:]
        kept = raw[1::2][raw[0::2] == 1]
        self._out = np.concatenate([self._out[self._pos :], kept])
        self._pos = 0

    def bits(self, n: int) -> int:
        """The next n output bits as a big-endian integer."""
        while len(self._out) - self._pos < n:
            self._refill()
        chunk = self._out[self._pos : self._pos + n]
        self._pos += n
        pad = (-n) % 8
        packed = np.packbits(np.concatenate([np.zeros(pad, dtype=np.uint8), chunk]))
        return int.from_bytes(packed.tobytes(), "big")


@lru_cache(maxsize=None)
def _params(t: int) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """Round constants and Cauchy MDS matrix for state width t (generated once per width)."""
    rounds_p = _N_ROUNDS_P[t - 2]
    gen = _Grain(t, _N_ROUNDS_F, rounds_p)
    constants = []
    for _ in range((_N_ROUNDS_F + rounds_p) * t):
        value = gen.bits(_FIELD_BITS)
        while value >= FIELD:
            value = gen.bits(_FIELD_BITS)
        constants.append(value)
    while True:
        rand = [gen.bits(_FIELD_BITS) % FIELD for _ in range(2 * t)]
        while len(set(rand)) != len(rand):
            rand = [gen.bits(_FIELD_BITS) % FIELD for _ in range(2 * t)]
        xs, ys = rand[:t], rand[t:]
        if all((x + y) % FIELD for x in xs for y in ys):
            break
    mds = tuple(tuple(pow(x + y, FIELD - 2, FIELD) for y in ys) for x in xs)
    return tuple(constants), mds


def poseidon(inputs: Sequence[int]) -> int:
    """circomlib `Poseidon(n)` for n = 1..16 field elements: the hash every circuit can recompute."""
    n = len(inputs)
    if not 1 <= n <= MAX_ARITY:
        raise ValueError(f"poseidon takes 1..{MAX_ARITY} inputs, got {n}")
    for v in inputs:
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < FIELD:
            raise ValueError(f"poseidon input {v!r} is not a field element")
    t = n + 1
    constants, mds = _params(t)
    rounds_p = _N_ROUNDS_P[t - 2]
    half_f = _N_ROUNDS_F // 2
    p = FIELD
    state = [0, *inputs]
    for r in range(_N_ROUNDS_F + rounds_p):
        base = r * t
        state = [(s + constants[base + i]) % p for i, s in enumerate(state)]
        if r < half_f or r >= half_f + rounds_p:
            state = [pow(s, 5, p) for s in state]
        else:
            state[0] = pow(state[0], 5, p)
        state = [sum(m * s for m, s in zip(row, state, strict=True)) % p for row in mds]
    return state[0]


def pack_words(xs: Sequence[int], bits: int) -> list[int]:
    """Offset each signed `bits`-wide value to unsigned and pack floor(248/bits) per word, LE."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= _WORD_BITS:
        raise ValueError(f"bits must be an integer in 1..{_WORD_BITS}, got {bits!r}")
    half = 1 << (bits - 1)
    per = _WORD_BITS // bits
    words: list[int] = []
    for start in range(0, len(xs), per):
        word = 0
        for i, x in enumerate(xs[start : start + per]):
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, Integral):
                raise ValueError(f"element {x!r} is not an integer")
            x = int(x)  # numpy integers
            if not -half <= x < half:
                raise ValueError(f"element {x} does not fit in {bits} signed bits")
            word |= (x + half) << (bits * i)
        words.append(word)
    return words


def hash_vector(xs: Sequence[int], bits: int) -> int:
    """Vector hash of §1.1: `state = len`, then `state = Poseidon([state] + chunk)` per 15 words."""
    words = pack_words(list(xs), bits)
    state = len(xs)
    for start in range(0, len(words), _CHUNK_WORDS):
        state = poseidon([state, *words[start : start + _CHUNK_WORDS]])
    return state


