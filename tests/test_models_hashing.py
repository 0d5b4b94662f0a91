"""Poseidon and the §1.1 vector hash, cross-checked against circomlibjs (an independent implementation)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import light_poseidon_python
import numpy as np
import pytest

from verinfer.models.hashing import (
    FIELD,
    INVALID_INPUT_HASH,
    from_bytes32,
    hash_vector,
    pack_words,
    poseidon,
    to_bytes32,
)

ROOT = Path(__file__).resolve().parent.parent

# circomlibjs Poseidon, plus an independent JS transcription of §1.1's vector hash.
_JS = r"""
const {buildPoseidon} = require('circomlibjs');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', async () => {
  const p = await buildPoseidon();
  const H = a => BigInt(p.F.toString(p(a.map(BigInt))));
  const req = JSON.parse(input);
  const out = {poseidon: req.poseidon.map(a => H(a).toString()), vectors: []};
  for (const [xs, bits] of req.vectors) {
    const per = Math.floor(248 / bits), half = 1n << BigInt(bits - 1);
    const words = [];
    for (let j = 0; j < xs.length; j += per) {
      let w = 0n;
      xs.slice(j, j + per).forEach((x, i) => { w += (BigInt(x) + half) << BigInt(bits * i); });
      words.push(w);
    }
    let state = BigInt(xs.length);
    for (let j = 0; j < words.length; j += 15) state = H([state, ...words.slice(j, j + 15)]);
    out.vectors.push(state.toString());
  }
  console.log(JSON.stringify(out));
});
"""


def _circomlibjs(poseidon_inputs: list[list[int]], vectors: list[tuple[list[int], int]]) -> dict:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "circomlibjs").is_dir():
        pytest.fail("node or npm circomlibjs missing: run scripts/install.sh (the cross-check must not be skipped)")
    req = {
        "poseidon": [[str(v) for v in a] for a in poseidon_inputs],
        "vectors": [[[str(v) for v in xs], bits] for xs, bits in vectors],
    }
    res = subprocess.run(
        [node, "-e", _JS], input=json.dumps(req), capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    return json.loads(res.stdout)


def test_poseidon_matches_circomlibjs_for_every_arity():
    rng = random.Random(1)
    cases = []
    for n in range(1, 17):
        cases.append([rng.randrange(FIELD) for _ in range(n)])
        cases.append([rng.randrange(1 << 64) for _ in range(n)])
    cases.append([FIELD - 1] * 3)
    cases.append([0])
    expected = _circomlibjs(cases, [])["poseidon"]
    assert [str(poseidon(c)) for c in cases] == expected


def test_vector_hash_matches_js_transcription():
    rng = random.Random(2)
    vectors: list[tuple[list[int], int]] = [
        ([], 8),
        ([0], 8),
        ([-128, 127], 8),
        ([rng.randrange(-128, 128) for _ in range(64)], 8),
        ([rng.randrange(-128, 128) for _ in range(31 * 15)], 8),  # exactly one full chunk
        ([rng.randrange(-128, 128) for _ in range(31 * 15 + 1)], 8),  # spills into a second chunk
        ([rng.randrange(-(1 << 31), 1 << 31) for _ in range(40)], 32),
        ([rng.randrange(-32, 32) for _ in range(100)], 6),
        ([rng.randrange(-(1 << 63), 1 << 63) for _ in range(9)], 64),
    ]
    expected = _circomlibjs([], vectors)["vectors"]
    assert [str(hash_vector(xs, bits)) for xs, bits in vectors] == expected


def test_arity_two_agrees_with_light_poseidon():
    rng = random.Random(3)
    for _ in range(5):
        a, b = rng.randrange(FIELD), rng.randrange(FIELD)
        assert poseidon([a, b]) == int(light_poseidon_python.poseidon_hash([a, b]))


def test_packing_layout():
    # 8-bit values: 31 per word, little-endian, offset by 128.
    words = pack_words([-128, 127, 0] + [0] * 29, 8)
    assert len(words) == 2
    assert words[0] & 0xFF == 0 and (words[0] >> 8) & 0xFF == 255 and (words[0] >> 16) & 0xFF == 128
    assert words[1] == 128  # the 32nd value starts the second word
    assert len(pack_words(list(range(7)), 32)) == 1 and len(pack_words(list(range(8)), 32)) == 2


def test_edge_cases():
    assert hash_vector([], 8) == 0  # state = len = 0, no chunks
    # Length is bound into the hash: trailing zeros that pack to the same words still differ.
    assert hash_vector([0], 8) != hash_vector([0, -128], 8)
    assert hash_vector([1, 2, 3], 8) != hash_vector([1, 2, 3], 32)
    assert hash_vector(np.array([1, -2, 3], dtype=np.int8), 8) == hash_vector([1, -2, 3], 8)
    assert 0 <= hash_vector([5] * 1000, 8) < FIELD


@pytest.mark.parametrize("xs,bits", [([128], 8), ([-129], 8), ([1 << 31], 32), ([1.5], 8), (["1"], 8), ([1], 0), ([1], 249)])
def test_out_of_range_rejected(xs, bits):
    with pytest.raises(ValueError):
        hash_vector(xs, bits)


def test_poseidon_rejects_bad_arity_and_non_field_inputs():
    for bad in ([], list(range(17)), [FIELD], [-1], [True]):
        with pytest.raises(ValueError):
            poseidon(bad)


def test_bytes32_round_trip():
    for x in (0, 1, FIELD - 1, INVALID_INPUT_HASH):
        b = to_bytes32(x)
        assert len(b) == 32 and from_bytes32(b) == x
    assert to_bytes32(1) == b"\x00" * 31 + b"\x01"
    with pytest.raises(ValueError):
        to_bytes32(1 << 256)
    with pytest.raises(ValueError):
        to_bytes32(-1)
    assert INVALID_INPUT_HASH >= FIELD
