"""CID computation: byte-identical to Kubo's `ipfs add` (cross-checked with aleph-cid), and DAG shape.

The js-ipfs daemon comparisons for the same sizes are in test_storage_kubo.py.
"""

from __future__ import annotations

import hashlib

import aleph_cid
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_fixtures import CHUNK, rand_bytes

from verinfer.storage import ContentMismatchError, InvalidCidError, cid_of, same_cid, verify
from verinfer.storage.unixfs import (
    CODEC_DAG_PB,
    CODEC_RAW,
    MAX_LINKS,
    CidRef,
    DagBuilder,
    build,
    decode_file_node,
    parse_cid,
)

# sizes the task names: empty, tiny, around one chunk, exactly one full node, one past it (two levels)
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7, MAX_LINKS * CHUNK, MAX_LINKS * CHUNK + 1]


def aleph_v1(data: bytes) -> str:
    hasher = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
    hasher.update(data)
    return hasher.finalize()


@pytest.mark.parametrize("size", SIZES)
def test_cidv1_raw_leaves_matches_aleph(size: int) -> None:
    data = rand_bytes(size, size)
    assert cid_of(data) == aleph_v1(data)


@pytest.mark.parametrize("size", SIZES)
def test_cidv0_matches_aleph(size: int) -> None:
    data = rand_bytes(size, size)
    assert cid_of(data, cid_version=0) == aleph_cid.compute_cid(data)


def test_known_vectors() -> None:
    # published Kubo answers: `ipfs add` of an empty file and of "hello\n"
    assert cid_of(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert cid_of(b"", cid_version=0) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert cid_of(b"hello\n", cid_version=0) == "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=0, max_value=3 * CHUNK + 5), seed=st.integers(0, 2**32))
def test_random_sizes_match_aleph(size: int, seed: int) -> None:
    data = rand_bytes(size, seed)
    assert cid_of(data) == aleph_v1(data)
    assert cid_of(data, cid_version=0) == aleph_cid.compute_cid(data)


def test_single_chunk_is_a_raw_leaf_and_more_is_dag_pb() -> None:
    assert parse_cid(cid_of(rand_bytes(CHUNK, 1))).codec == CODEC_RAW
    assert cid_of(rand_bytes(CHUNK, 1)).startswith("bafkrei")
    assert parse_cid(cid_of(rand_bytes(CHUNK + 1, 1))).codec == CODEC_DAG_PB
    assert cid_of(rand_bytes(CHUNK + 1, 1)).startswith("bafybei")


def _collect(data: bytes, cid_version: int = 1, chunk_size: int = CHUNK) -> tuple[CidRef, dict[CidRef, bytes]]:
    blocks: dict[CidRef, bytes] = {}
    root = build(data, cid_version=cid_version, chunk_size=chunk_size, sink=blocks.__setitem__)
    return root, blocks


def test_two_level_dag_shape_and_sizes() -> None:
    data = rand_bytes(MAX_LINKS * CHUNK + 1, 3)
    root, blocks = _collect(data)
    node = decode_file_node(blocks[root])
    assert node.filesize == len(data)
    assert len(node.links) == 2
    assert node.blocksizes == [MAX_LINKS * CHUNK, 1]
    first, second = (decode_file_node(blocks[link.cid]) for link in node.links)
    assert len(first.links) == MAX_LINKS and len(second.links) == 1
    assert all(link.cid.codec == CODEC_RAW for link in first.links)
    # Tsize = serialized size of the whole subtree
    sub = node.links[0]
    assert sub.tsize == len(blocks[sub.cid]) + MAX_LINKS * CHUNK


def test_three_level_dag_with_small_chunks() -> None:
    chunk = 16
    data = rand_bytes(MAX_LINKS * MAX_LINKS * chunk + 1, 4)
    root, blocks = _collect(data, chunk_size=chunk)
    top = decode_file_node(blocks[root])
    assert top.blocksizes == [MAX_LINKS * MAX_LINKS * chunk, 1]
    lone = decode_file_node(blocks[top.links[1].cid])  # 1 leaf still wrapped twice, as Kubo does
    assert len(lone.links) == 1 and lone.links[0].cid.codec == CODEC_DAG_PB


def test_streaming_in_odd_pieces_equals_one_shot() -> None:
    data = rand_bytes(3 * CHUNK + 123, 5)
    builder = DagBuilder()
    for i in range(0, len(data), 100_003):
        builder.update(data[i : i + 100_003])
    assert str(builder.finish()) == cid_of(data)
    assert builder.size == len(data)


def test_every_block_is_emitted_once_per_distinct_node() -> None:
    data = bytes(5 * CHUNK)  # identical chunks dedupe to one leaf block
    root, blocks = _collect(data)
    assert len(blocks) == 2 and root in blocks


def test_verify_accepts_match_and_rejects_one_flipped_bit() -> None:
    data = rand_bytes(CHUNK + 10, 6)
    cid = cid_of(data)
    verify(cid, data)
    verify(cid_of(data, cid_version=0), data)
    tampered = bytearray(data)
    tampered[CHUNK + 3] ^= 1
    with pytest.raises(ContentMismatchError):
        verify(cid, bytes(tampered))


def test_verify_accepts_a_big_raw_block_by_hash() -> None:
    data = rand_bytes(CHUNK + 1, 16)  # `ipfs block put`-style: one raw block over a chunk
    raw_cid = str(CidRef(1, CODEC_RAW, b"\x12\x20" + hashlib.sha256(data).digest()))
    verify(raw_cid, data)
    with pytest.raises(ContentMismatchError):
        verify(raw_cid, data[:-1])


def test_same_cid_compares_meaning_not_spelling() -> None:
    v0 = cid_of(b"abc", cid_version=0)
    v1 = str(parse_cid(v0).to_v1())
    assert v1.startswith("bafybei") and same_cid(v0, v1)
    assert same_cid("zdj7WcrA3wusxJUc8ESq3Lc7JLAYDVbJ2DWW7AJjLnqzYoyww", "bafybeidohcwwyywq2nb2v4tvrov7aqvh4pm7sjsezlxbybvuleep5fhmsi")
    assert not same_cid(cid_of(b"abc"), cid_of(b"abd"))


@pytest.mark.parametrize("bad", ["", "hello", "bafy", "Qm123", "baguqeerafvyrmqvxe2yeialcpsu7xlbs6xefgd5rsa6mjwycewdrpeq2jcaq"])
def test_bad_cids_raise_invalid_cid(bad: str) -> None:
    # the last one is a valid CID string, but dag-json, which is not file content
    with pytest.raises(InvalidCidError):
        parse_cid(bad)
