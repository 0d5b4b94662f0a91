"""Embedded store: round trips, verified reads (tampering on disk), missing content, size guard, pins, GC."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from storage_fixtures import CHUNK, rand_bytes

from verinfer.errors import VerinferError
from verinfer.storage import (
    ContentMismatchError,
    ContentNotFoundError,
    ContentStore,
    ContentTooLargeError,
    EmbeddedStore,
    InvalidCidError,
    InvalidContentError,
    KuboStore,
    canonical_json,
    cid_of,
    open_store,
)
from verinfer.storage.unixfs import (
    CODEC_DAG_PB,
    CidRef,
    Link,
    decode_file_node,
    encode_dag_pb,
    encode_unixfs_file,
    parse_cid,
)


@pytest.fixture()
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 99])
@pytest.mark.parametrize("cid_version", [1, 0])
def test_round_trip(store: EmbeddedStore, size: int, cid_version: int) -> None:
    data = rand_bytes(size, size + cid_version)
    cid = store.add(data, cid_version=cid_version)
    assert cid == cid_of(data, cid_version=cid_version)
    assert store.has(cid)
    assert store.cat(cid) == data


def test_is_a_content_store_and_errors_are_verinfer_errors(store: EmbeddedStore) -> None:
    assert isinstance(store, ContentStore)
    for err in (ContentMismatchError, ContentNotFoundError, ContentTooLargeError, InvalidCidError, InvalidContentError):
        assert issubclass(err, VerinferError)


def test_json_helpers_are_canonical(store: EmbeddedStore) -> None:
    a = store.add_json({"b": [1, 2], "a": "é"})
    b = store.add_json({"a": "é", "b": [1, 2]})
    assert a == b == cid_of('{"a":"é","b":[1,2]}'.encode())
    assert store.cat_json(a) == {"a": "é", "b": [1, 2]}
    assert canonical_json({"x": 1.5, "y": None}) == b'{"x":1.5,"y":null}'


def test_cat_json_of_non_json_is_invalid_content(store: EmbeddedStore) -> None:
    cid = store.add(b"\xff\xfe not json")
    with pytest.raises(InvalidContentError):
        store.cat_json(cid)


def test_tampered_leaf_raises_mismatch(store: EmbeddedStore) -> None:
    data = rand_bytes(2 * CHUNK + 5, 7)
    cid = store.add(data)
    leaf = decode_file_node(store.get_block(parse_cid(cid))).links[1].cid
    path = store.block_path(leaf)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ContentMismatchError, match=str(leaf)):
        store.cat(cid)


def test_tampered_root_and_single_leaf_raise_mismatch(store: EmbeddedStore) -> None:
    for data in (rand_bytes(CHUNK + 1, 8), b"small and single-block"):
        cid = store.add(data)
        path = store.block_path(cid)
        path.write_bytes(path.read_bytes() + b"x")
        with pytest.raises(ContentMismatchError):
            store.cat(cid)


def test_truncated_block_file_is_mismatch_and_readd_repairs_it(store: EmbeddedStore) -> None:
    data = rand_bytes(CHUNK + 1, 9)
    cid = store.add(data)
    leaf = decode_file_node(store.get_block(parse_cid(cid))).links[0].cid
    store.block_path(leaf).write_bytes(b"")  # what a crash mid-write could leave
    with pytest.raises(ContentMismatchError):
        store.cat(cid)
    assert store.add(data) == cid
    assert store.cat(cid) == data


def test_missing_content_raises_not_found(store: EmbeddedStore) -> None:
    with pytest.raises(ContentNotFoundError):
        store.cat(cid_of(b"never added"))
    assert not store.has(cid_of(b"never added"))


def test_missing_leaf_raises_not_found(store: EmbeddedStore) -> None:
    data = rand_bytes(2 * CHUNK, 10)
    cid = store.add(data)
    leaf = decode_file_node(store.get_block(parse_cid(cid))).links[1].cid
    store.block_path(leaf).unlink()
    assert not store.has(cid)
    with pytest.raises(ContentNotFoundError, match=str(leaf)):
        store.cat(cid)


def test_max_bytes_checked_from_root_before_reading_leaves(store: EmbeddedStore) -> None:
    data = rand_bytes(4 * CHUNK, 11)
    cid = store.add(data)
    for link in decode_file_node(store.get_block(parse_cid(cid))).links:
        store.block_path(link.cid).unlink()  # leaves gone: only the root can be read
    with pytest.raises(ContentTooLargeError, match=str(4 * CHUNK)):
        store.cat(cid, max_bytes=4 * CHUNK - 1)


def test_max_bytes_boundaries(store: EmbeddedStore) -> None:
    data = rand_bytes(CHUNK + 10, 12)
    cid = store.add(data)
    assert store.cat(cid, max_bytes=len(data)) == data
    with pytest.raises(ContentTooLargeError):
        store.cat(cid, max_bytes=len(data) - 1)
    small = store.add(b"12345")
    with pytest.raises(ContentTooLargeError):
        store.cat_json(small, max_bytes=4)


def _put_node(store: EmbeddedStore, block: bytes) -> str:
    ref = CidRef(1, CODEC_DAG_PB, b"\x12\x20" + hashlib.sha256(block).digest())
    store.put_block(ref, block)
    return str(ref)


def test_directory_is_not_a_file(store: EmbeddedStore) -> None:
    cid = _put_node(store, encode_dag_pb([], b"\x08\x01"))  # UnixFS Type=Directory
    with pytest.raises(InvalidContentError, match="directory"):
        store.cat(cid)


def test_node_lying_about_sizes_is_rejected(store: EmbeddedStore) -> None:
    leaf_cid = parse_cid(store.add(b"0123456789"))
    # blocksizes claims 5 bytes under a 10-byte leaf: every block hashes fine, the DAG still lies
    lying = encode_dag_pb([Link(leaf_cid, 10)], encode_unixfs_file(5, [5]))
    with pytest.raises(InvalidContentError, match="claims"):
        store.cat(_put_node(store, lying))
    # a small declared filesize must not smuggle big content past max_bytes
    big = parse_cid(store.add(rand_bytes(1000, 13)))
    sneaky = encode_dag_pb([Link(big, 1000)], encode_unixfs_file(1, [1]))
    with pytest.raises(ContentTooLargeError):
        store.cat(_put_node(store, sneaky), max_bytes=10)


def test_pin_gc_and_unpinned_content(store: EmbeddedStore) -> None:
    kept = store.add(rand_bytes(CHUNK + 3, 14))
    loose = store.add(rand_bytes(CHUNK + 4, 15), pin=False)
    assert store.pins() == [kept]
    removed = store.gc()
    assert removed == 3  # loose root + its two leaves
    assert store.cat(kept) == rand_bytes(CHUNK + 3, 14)
    assert not store.has(loose)
    with pytest.raises(ContentNotFoundError):
        store.pin(loose)
    again = store.add(rand_bytes(CHUNK + 4, 15), pin=False)
    store.pin(again)
    assert store.gc() == 0 and again in store.pins()
    store.unpin(again)
    assert store.gc() == 3


def test_store_dir_marker_rejects_foreign_dirs(tmp_path: Path) -> None:
    (tmp_path / "STORE").write_text("something-else\n")
    with pytest.raises(VerinferError, match="unknown store format"):
        EmbeddedStore(tmp_path)


def test_open_store_picks_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.delenv("VERINFER_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    default = open_store()
    assert isinstance(default, EmbeddedStore) and default.root == Path(".verinfer/store")
    assert (tmp_path / ".verinfer" / "store" / "STORE").is_file()

    monkeypatch.setenv("VERINFER_STORE", str(tmp_path / "env-store"))
    env_store = open_store()
    assert isinstance(env_store, EmbeddedStore) and env_store.root == tmp_path / "env-store"
    explicit = open_store(root=tmp_path / "explicit")
    assert isinstance(explicit, EmbeddedStore) and explicit.root == tmp_path / "explicit"

    monkeypatch.setenv("IPFS_API", "/ip4/127.0.0.1/tcp/5999")
    kubo = open_store()
    assert isinstance(kubo, KuboStore) and kubo.api_url == "http://127.0.0.1:5999"
    arg = open_store(ipfs_api="http://127.0.0.1:6001/api/v0/")
    assert isinstance(arg, KuboStore) and arg.api_url == "http://127.0.0.1:6001"


def test_store_shared_by_two_instances(tmp_path: Path) -> None:
    a, b = EmbeddedStore(tmp_path), EmbeddedStore(tmp_path)
    cid = a.add(os.urandom(CHUNK * 2 + 1))
    assert b.has(cid) and b.cat(cid) == a.cat(cid)
