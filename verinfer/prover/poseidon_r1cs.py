"""circomlib's optimised Poseidon (`PoseidonEx`), step by step, for direct R1CS and witnesses.

The direct constraint generator (direct.py) lays out Poseidon exactly as circomlib's template does
(same round constants C, sparse matrices S, M and P), so the witness values it computes are the very
values circom's wasm computes for the same named signals. The constants are read from the
circomlib `poseidon_constants.circom` the circom path compiles against, so the two cannot drift.
"""

from __future__ import annotations

import re
from functools import lru_cache

from verinfer.models.hashing import FIELD
from verinfer.prover import toolchain

N_ROUNDS_F = 8
N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)
P = FIELD


@lru_cache(maxsize=1)
def _constants_text() -> str:
    return (toolchain.circomlib_dir() / "poseidon_constants.circom").read_text()


def _block(func: str, t: int) -> list[int]:
    """All hex numbers of `function func(t)`'s branch for this t, in source order."""
    text = _constants_text()
    start = text.index(f"function {func}(t)")
    end = text.find("\nfunction ", start + 10)
    body = text[start:end if end > 0 else len(text)]
    m = re.search(rf"if\s*\(t\s*==\s*{t}\)\s*\{{", body)
    if m is None:
        raise ValueError(f"circomlib has no {func} for t={t}")
    nxt = re.search(r"\}\s*else", body[m.end():])
    seg = body[m.end(): m.end() + nxt.start()] if nxt else body[m.end():]
    return [int(h, 16) for h in re.findall(r"0x[0-9a-fA-F]+", seg)]


@lru_cache(maxsize=None)
def constants(t: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """(C, S, M, P) of circomlib's PoseidonEx for state width t (2..17)."""
    c, s = tuple(_block("POSEIDON_C", t)), tuple(_block("POSEIDON_S", t))
    mf, pf = _block("POSEIDON_M", t), _block("POSEIDON_P", t)
    m = tuple(tuple(mf[i * t:(i + 1) * t]) for i in range(t))
    p = tuple(tuple(pf[i * t:(i + 1) * t]) for i in range(t))
    n_p = N_ROUNDS_P[t - 2]
    if len(c) != t * N_ROUNDS_F + n_p or len(s) != n_p * (2 * t - 1) or len(mf) != t * t or len(pf) != t * t:
        raise ValueError(f"unexpected circomlib Poseidon constants for t={t}")
    return c, s, m, p


@lru_cache(maxsize=None)
def names(t: int) -> tuple[str, ...]:
    """Names (relative to a `Poseidon` component) of the values `trace` returns, in its order."""
    n_p = N_ROUNDS_P[t - 2]
    half = N_ROUNDS_F // 2
    out: list[str] = [f"pEx.ark[0].out[{j}]" for j in range(t)]

    def sig(base: str) -> None:
        out.extend([f"{base}.in", f"{base}.in2", f"{base}.in4", f"{base}.out"])

    for r in range(half):
        for j in range(t):
            sig(f"pEx.sigmaF[{r}][{j}]")
        out.extend(f"pEx.ark[{r + 1}].out[{j}]" for j in range(t))
        out.extend(f"pEx.mix[{r}].out[{j}]" for j in range(t))
    for r in range(n_p):
        sig(f"pEx.sigmaP[{r}]")
        out.extend(f"pEx.mixS[{r}].in[{j}]" for j in range(t))
        out.extend(f"pEx.mixS[{r}].out[{j}]" for j in range(t))
    for r in range(half - 1):
        for j in range(t):
            sig(f"pEx.sigmaF[{half + r}][{j}]")
        out.extend(f"pEx.ark[{half + r + 1}].out[{j}]" for j in range(t))
        out.extend(f"pEx.mix[{half + r}].out[{j}]" for j in range(t))
    for j in range(t):
        sig(f"pEx.sigmaF[{N_ROUNDS_F - 1}][{j}]")
    out.extend(f"pEx.mixLast[0].in[{j}]" for j in range(t))
    out.append("pEx.mixLast[0].out")
    out.append("out")
    return tuple(out)


def trace(inputs: list[int], record: bool = False) -> tuple[int, list[int], list[int]]:
    """Poseidon(inputs) as circomlib computes it.

    Returns (hash, sigma values [in2, in4, out per S-box in circuit order], named values in
    `names(t)` order when `record`, else []).
    """
    t = len(inputs) + 1
    c, s, m, pm = constants(t)
    n_p = N_ROUNDS_P[t - 2]
    half = N_ROUNDS_F // 2
    rec: list[int] = []
    sig: list[int] = []
    state = [c[0]] + [(v + c[1 + j]) % P for j, v in enumerate(inputs)]
    if record:
        rec.extend(state)

    def sbox(v: int) -> int:
        v2 = v * v % P
        v4 = v2 * v2 % P
        v5 = v4 * v % P
        sig.extend((v2, v4, v5))
        if record:
            rec.extend((v, v2, v4, v5))
        return v5

    def mix(st: list[int], mat: tuple[tuple[int, ...], ...]) -> list[int]:
        return [sum(mat[j][i] * st[j] for j in range(t)) % P for i in range(t)]

    for r in range(half):
        state = [sbox(v) for v in state]
        state = [(v + c[(r + 1) * t + j]) % P for j, v in enumerate(state)]
        if record:
            rec.extend(state)
        state = mix(state, pm if r == half - 1 else m)
        if record:
            rec.extend(state)
    w = 2 * t - 1
    for r in range(n_p):
        x0 = (sbox(state[0]) + c[(half + 1) * t + r]) % P
        row = s[w * r: w * (r + 1)]
        if record:
            rec.append(x0)
            rec.extend(state[1:])
        new0 = (row[0] * x0 + sum(row[i] * state[i] for i in range(1, t))) % P
        state = [new0] + [(state[i] + x0 * row[t + i - 1]) % P for i in range(1, t)]
        if record:
            rec.extend(state)
    for r in range(half - 1):
        state = [sbox(v) for v in state]
        state = [(v + c[(half + 1) * t + n_p + r * t + j]) % P for j, v in enumerate(state)]
        if record:
            rec.extend(state)
        state = mix(state, m)
        if record:
            rec.extend(state)
    state = [sbox(v) for v in state]
    out = sum(m[j][0] * state[j] for j in range(t)) % P
    if record:
        rec.extend(state)
        rec.extend((out, out))
    return out, sig, rec
