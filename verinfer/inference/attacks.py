"""Attacks on equivariantly encrypted LM deployments, by an adversary who holds the public base model.

Privacy is claimed only as far as these fail (docs/lm.md has the measured table):

* `match_embedding_rows`: a node given the transformed embedding (vocabulary permutation + hidden
  permutation + sign flips) recovers the vocabulary permutation, so it reads token ids. Per-row
  multisets of |values| are invariant under permutations and sign flips: sort each row, look it up.
* `match_embedding_orthogonal`: the same under orthogonal hidden mixing (a float-profile transform):
  row norms are invariant; the best-separated norms give anchor pairs, orthogonal Procrustes recovers
  the mixing, and every row is then matched by nearest neighbour among rows of similar norm.
* `vocab_matching`: the attack of arXiv 2505.18332 on a middle stage. The stage sees, per position,
  the transformed hidden state entering its layers. For each position it proposes tokens (most
  likely first under the public model), computes the plaintext hidden state the first stages would
  produce, and compares permutation/sign invariants (sorted |values|). Under the integer profile
  the attacker's recomputation is bit-exact, so the match is exact.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from verinfer.inference.llama_int import IntCache, IntModel
from verinfer.inference.llama_ref import FloatCache, FloatModel


@dataclass
class AttackResult:
    recovered: int
    total: int
    seconds: float
    candidates_tried: int = 0

    @property
    def rate(self) -> float:
        return self.recovered / self.total if self.total else 0.0


def _dequant_emb(model: IntModel) -> np.ndarray:
    """Embedding rows as exact float64 values (Q24 scale · int8)."""
    q = model.emb_q.astype(np.float64).reshape(model.emb_q.shape[0], -1, 32)
    return (q * model.emb_d[..., None]).reshape(model.emb_q.shape[0], -1)


def match_embedding_rows(base: IntModel, enc: IntModel, true_perm: np.ndarray) -> AttackResult:
    """Recover enc row i → base id from sorted |values|; `true_perm[i]` is the real base id (for scoring)."""
    t0 = time.perf_counter()
    sig_b = np.sort(np.abs(_dequant_emb(base)), axis=1)
    sig_e = np.sort(np.abs(_dequant_emb(enc)), axis=1)
    table: dict[bytes, int] = {}
    for i, row in enumerate(sig_b):
        table.setdefault(row.tobytes(), i)
    guess = np.array([table.get(row.tobytes(), -1) for row in sig_e])
    secs = time.perf_counter() - t0
    return AttackResult(int((guess == true_perm).sum()), len(true_perm), secs)


def match_embedding_orthogonal(base_rows: np.ndarray, enc_rows: np.ndarray, true_perm: np.ndarray,
                               anchors: int = 2000, window: int = 32) -> AttackResult:
    """Recover the vocabulary permutation when enc = P · base · Q with Q orthogonal (float rows)."""
    t0 = time.perf_counter()
    nb, ne = np.linalg.norm(base_rows, axis=1), np.linalg.norm(enc_rows, axis=1)
    ob, oe = np.argsort(nb), np.argsort(ne)
    sb = nb[ob]
    gaps = np.minimum(np.abs(np.diff(sb, prepend=-np.inf)), np.abs(np.diff(sb, append=np.inf)))
    sure = np.argsort(-gaps)[:anchors]  # ranks with the most isolated norms
    a_b, a_e = base_rows[ob[sure]], enc_rows[oe[sure]]
    u, _, vt = np.linalg.svd(a_b.T @ a_e)
    rot = u @ vt  # base @ rot ≈ enc
    back = enc_rows @ rot.T  # ≈ base rows, in enc order
    guess = np.full(len(enc_rows), -1)
    pos = np.searchsorted(sb, ne)
    for i in range(len(enc_rows)):
        lo, hi = max(pos[i] - window, 0), min(pos[i] + window, len(sb))
        cand = ob[lo:hi]
        guess[i] = cand[np.argmin(((base_rows[cand] - back[i]) ** 2).sum(axis=1))]
    secs = time.perf_counter() - t0
    return AttackResult(int((guess == true_perm).sum()), len(true_perm), secs)


def invariant(h: np.ndarray) -> np.ndarray:
    """What survives permutations and sign flips of the hidden dimension: sorted |values| per row."""
    return np.sort(np.abs(h), axis=-1)


def vocab_matching(public: IntModel, screen: FloatModel, boundary: int, observed: np.ndarray, *,
                   max_candidates: int | None = None, batch: int = 256, confirm: int = 4,
                   prefer: Sequence[int] = ()) -> tuple[list[int], AttackResult]:
    """Recover the tokens behind `observed` (T, d): transformed Q16 hidden states entering layer `boundary`.

    `public` (integer profile) and `screen` (float reference) are the public base model. Per position,
    candidates in order of the public model's next-token prediction are screened in float batches by
    the distance of their sorted |h| to the observed one; the closest few are confirmed bit-exactly
    with the integer profile (what an honest first stage computed). -1 marks a position not recovered.
    `prefer` is tried first at every position (the public chat template's tokens); `max_candidates`
    caps the search per position (None: the whole vocabulary).
    """
    t0 = time.perf_counter()
    icache, fcache, full = IntCache(), FloatCache(), FloatCache()
    out: list[int] = []
    tried = 0
    inv_obs = invariant(observed)
    prior: np.ndarray | None = None
    vocab = public.cfg.vocab_size
    for pos in range(observed.shape[0]):
        order = np.argsort(-prior, kind="stable") if prior is not None else np.arange(vocab)
        if len(prefer):
            pf = np.asarray(prefer, dtype=np.int64)
            order = np.concatenate([pf, order[~np.isin(order, pf)]])
        target = inv_obs[pos] / 2.0**16
        found = -1
        for s in range(0, min(max_candidates or vocab, vocab), batch):
            cands = order[s:s + batch]
            hb = screen.branch(screen.embed_at(cands, pos), fcache, pos, boundary)
            dist = np.abs(invariant(hb) - target).sum(axis=1)
            best = cands[np.argsort(dist)[:confirm]]
            tried += len(cands)
            exact = public.branch(public.embed(best, pos, branch=True), icache, pos, upto=boundary)
            hit = np.flatnonzero((invariant(exact) == inv_obs[pos]).all(axis=1))
            if hit.size:
                found = int(best[hit[0]])
                break
        out.append(found)
        tok = found if found >= 0 else int(order[0])
        h = public.embed([tok], pos)  # extend the attacker's caches with its best guess
        for i in range(public.lo, boundary):
            h = public._block(i, h, icache, pos)
        icache.length = pos + 1
        hf = screen.embed([tok], pos)
        for i in range(screen.lo, boundary):
            hf = screen._block(i, hf, fcache, pos)
        fcache.length = pos + 1
        prior = screen.logits(screen.forward(screen.embed([tok], pos), full, pos))[0]
    return out, AttackResult(0, observed.shape[0], time.perf_counter() - t0, tried)
