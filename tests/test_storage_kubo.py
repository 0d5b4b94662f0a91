"""Against a real IPFS daemon (js-ipfs, Kubo-compatible /api/v0), started once for the session.

* the daemon's own `add` CIDs equal ours and aleph-cid's (CIDv1 raw leaves and CIDv0);
* KuboStore round trips, has/pin, missing content, the size guard;
* a tampering proxy in front of the real daemon: wrong bytes are never accepted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import aleph_cid
import httpx
import pytest
from storage_fixtures import CHUNK, V0_PARAMS, V1_PARAMS, TamperingProxy, daemon_add, jsipfs, rand_bytes

from verinfer.storage import (
    ContentMismatchError,
    ContentNotFoundError,
    ContentStore,
    ContentTooLargeError,
    EmbeddedStore,
    InvalidContentError,
    KuboStore,
    StoreUnavailableError,
    cid_of,
    open_store,
    same_cid,
)
from verinfer.storage.jsipfs import JsIpfsDaemon, free_port
from verinfer.storage.unixfs import MAX_LINKS

__all__ = ["jsipfs"]  # the session fixture, imported so pytest sees it

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, MAX_LINKS * CHUNK, MAX_LINKS * CHUNK + 1, 1_000_003, 3_333_333, 7 * CHUNK + 12345]


def aleph_v1(data: bytes) -> str:
    hasher = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
    hasher.update(data)
    return hasher.finalize()


@pytest.fixture(scope="module")
def kubo(jsipfs: JsIpfsDaemon) -> KuboStore:
    return KuboStore(jsipfs.api_url, timeout=10, has_timeout=0.5)


# ------------------------------------------------------------------ CID equality with a real IPFS


@pytest.mark.parametrize("size", SIZES)
def test_cidv1_equals_daemon_and_aleph(jsipfs: JsIpfsDaemon, size: int) -> None:
    data = rand_bytes(size, 1000 + size)
    ours = cid_of(data)
    theirs = daemon_add(jsipfs.api_url, data, **V1_PARAMS)
    assert ours == theirs  # string-identical: same base32 CIDv1
    assert ours == aleph_v1(data)


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, MAX_LINKS * CHUNK + 1, 3_333_333])
def test_cidv0_equals_daemon_and_aleph(jsipfs: JsIpfsDaemon, size: int) -> None:
    data = rand_bytes(size, 2000 + size)
    ours = cid_of(data, cid_version=0)
    assert ours == daemon_add(jsipfs.api_url, data, **V0_PARAMS)
    assert ours == aleph_cid.compute_cid(data)


@pytest.mark.parametrize("cid_version", [1, 0])
def test_two_level_dag_with_small_chunker_equals_daemon(jsipfs: JsIpfsDaemon, cid_version: int) -> None:
    # 175 leaves of 256 B: the two-level layout (and its lone second subtree) in a 44 KB file
    data = rand_bytes(MAX_LINKS * 256 + 1, 3)
    params = {**(V1_PARAMS if cid_version else V0_PARAMS), "chunker": "size-256"}
    assert cid_of(data, cid_version=cid_version, chunk_size=256) == daemon_add(jsipfs.api_url, data, **params)


@pytest.mark.slow
def test_three_level_dag_equals_daemon(jsipfs: JsIpfsDaemon) -> None:
    # 174*174+1 leaves: the smallest three-level file; js-ipfs needs ~45 s for 30k blocks
    data = rand_bytes(MAX_LINKS * MAX_LINKS * 256 + 1, 4)
    params = {**V1_PARAMS, "chunker": "size-256"}
    assert cid_of(data, chunk_size=256) == daemon_add(jsipfs.api_url, data, **params)


@pytest.mark.slow
def test_50mb_cids_and_round_trips(jsipfs: JsIpfsDaemon, kubo: KuboStore, tmp_path: Path) -> None:
    data = rand_bytes(50 * 1024 * 1024, 50)
    timings: dict[str, float] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - start, 2)
        return out

    ours = timed("cid_of", lambda: cid_of(data))
    assert ours == timed("aleph_cid", lambda: aleph_v1(data))
    assert ours == timed("jsipfs_add", lambda: daemon_add(jsipfs.api_url, data, **V1_PARAMS))
    assert cid_of(data, cid_version=0) == aleph_cid.compute_cid(data)
    embedded = EmbeddedStore(tmp_path / "store")
    assert timed("embedded_add", lambda: embedded.add(data)) == ours
    assert timed("embedded_cat", lambda: embedded.cat(ours)) == data
    assert timed("kubo_add", lambda: kubo.add(data)) == ours
    assert timed("kubo_cat", lambda: kubo.cat(ours)) == data
    print("\n50 MiB timings (s): " + json.dumps(timings))


# ------------------------------------------------------------------ KuboStore behaviour


def test_is_a_content_store(kubo: KuboStore) -> None:
    assert isinstance(kubo, ContentStore)
    assert kubo.version()["Version"]


@pytest.mark.parametrize("size", [0, 5, CHUNK + 1, 2_000_000])
def test_round_trip_through_daemon(kubo: KuboStore, size: int) -> None:
    data = rand_bytes(size, 3000 + size)
    cid = kubo.add(data)
    assert cid == cid_of(data)
    assert kubo.has(cid)
    assert kubo.cat(cid) == data
    kubo.pin(cid)


def test_cidv0_round_trip_and_v1_twin(kubo: KuboStore) -> None:
    data = rand_bytes(CHUNK * 2 + 1, 31)
    v0 = kubo.add(data, cid_version=0)
    assert v0.startswith("Qm") and kubo.cat(v0) == data


def test_json_round_trip_matches_embedded(kubo: KuboStore, tmp_path: Path) -> None:
    obj = {"format": "verinfer.tensor.v1", "dtype": "int8", "shape": [2], "data": [-1, 7]}
    cid = kubo.add_json(obj)
    assert cid == EmbeddedStore(tmp_path).add_json(obj)
    assert kubo.cat_json(cid) == obj


def test_open_store_with_env_uses_daemon(jsipfs: JsIpfsDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPFS_API", jsipfs.api_url)
    store = open_store()
    assert isinstance(store, KuboStore)
    assert store.cat(store.add(b"via env")) == b"via env"


def test_content_from_another_chunker_is_verified_block_by_block(jsipfs: JsIpfsDaemon, kubo: KuboStore) -> None:
    data = rand_bytes(5000, 32)
    cid = daemon_add(jsipfs.api_url, data, **{**V1_PARAMS, "chunker": "size-1000"})
    assert not same_cid(cid, cid_of(data))  # re-chunking cannot confirm it...
    assert kubo.cat(cid) == data  # ...so cat walks and hashes the daemon's blocks instead


def test_directory_cid_is_invalid_content(jsipfs: JsIpfsDaemon, kubo: KuboStore) -> None:
    resp = httpx.post(
        f"{jsipfs.api_url}/api/v0/add",
        params={"wrap-with-directory": "true", **V1_PARAMS},
        files={"file": ("a.txt", b"in a folder", "application/octet-stream")},
    )
    dir_cid = json.loads(resp.text.strip().splitlines()[-1])["Hash"]
    with pytest.raises(InvalidContentError, match="directory"):
        kubo.cat(dir_cid)
    with pytest.raises(ContentMismatchError):  # what nodes catch to answer INVALID_INPUT
        kubo.cat(dir_cid)


def test_missing_content_not_found(jsipfs: JsIpfsDaemon) -> None:
    impatient = KuboStore(jsipfs.api_url, timeout=1, has_timeout=0.5)
    missing = cid_of(b"nobody ever added this")
    assert not impatient.has(missing)
    with pytest.raises(ContentNotFoundError):
        impatient.cat(missing)
    with pytest.raises(ContentNotFoundError):
        impatient.pin(missing)


def test_max_bytes_refused_from_root_before_cat(jsipfs: JsIpfsDaemon, kubo: KuboStore) -> None:
    data = rand_bytes(3 * CHUNK, 33)
    cid = kubo.add(data)
    seen: list[str] = []

    def record(path: str, body: bytes) -> bytes:
        seen.append(path)
        return body

    with TamperingProxy(jsipfs.api_url, record) as proxy:
        via = KuboStore(proxy.url, timeout=5)
        with pytest.raises(ContentTooLargeError, match=str(3 * CHUNK)):
            via.cat(cid, max_bytes=3 * CHUNK - 1)
        assert seen == ["/api/v0/block/get"]  # only the root block moved, no file data
        assert via.cat(cid, max_bytes=len(data)) == data
        assert "/api/v0/cat" in seen
    with pytest.raises(ContentTooLargeError):
        kubo.cat(kubo.add(b"0123456789"), max_bytes=9)  # single raw block


def test_unreachable_daemon_is_store_unavailable() -> None:
    dead = KuboStore(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(StoreUnavailableError):
        dead.add(b"x")
    with pytest.raises(StoreUnavailableError):
        dead.cat(cid_of(b"x"))


# ------------------------------------------------------------------ a daemon that lies


def _flip(body: bytes) -> bytes:
    if not body:
        return b"\x00"
    out = bytearray(body)
    out[len(out) // 2] ^= 0xFF
    return bytes(out)


@pytest.mark.parametrize("size", [10, CHUNK + 10])
def test_wrong_bytes_from_daemon_raise_mismatch(jsipfs: JsIpfsDaemon, kubo: KuboStore, size: int) -> None:
    data = rand_bytes(size, 34 + size)
    cid = kubo.add(data)

    def evil(path: str, body: bytes) -> bytes:
        return _flip(body) if path in ("/api/v0/cat", "/api/v0/block/get") else body

    with TamperingProxy(jsipfs.api_url, evil) as proxy:
        with pytest.raises(ContentMismatchError):
            KuboStore(proxy.url, timeout=5).cat(cid)


def test_flooding_cat_is_cut_off_and_rejected(jsipfs: JsIpfsDaemon, kubo: KuboStore) -> None:
    data = rand_bytes(CHUNK + 5, 36)
    cid = kubo.add(data)

    def flood(path: str, body: bytes) -> bytes:
        if path == "/api/v0/cat":
            return body + bytes(8 * 1024 * 1024)
        return _flip(body) if path == "/api/v0/block/get" and len(body) == CHUNK else body

    with TamperingProxy(jsipfs.api_url, flood) as proxy:
        with pytest.raises(ContentMismatchError):
            KuboStore(proxy.url, timeout=5).cat(cid)


@pytest.mark.parametrize("cat_fault", ["flip", "flood", "truncate"])
def test_wrong_cat_but_honest_blocks_yields_verified_data(jsipfs: JsIpfsDaemon, kubo: KuboStore, cat_fault: str) -> None:
    data = rand_bytes(CHUNK + 77, 35)
    cid = kubo.add(data)
    faults = {"flip": _flip, "flood": lambda b: b + b"extra", "truncate": lambda b: b[:-1]}

    def bad_cat(path: str, body: bytes) -> bytes:
        return faults[cat_fault](body) if path == "/api/v0/cat" else body

    with TamperingProxy(jsipfs.api_url, bad_cat) as proxy:
        assert KuboStore(proxy.url, timeout=5).cat(cid) == data


def test_daemon_reporting_another_cid_on_add_is_rejected(jsipfs: JsIpfsDaemon) -> None:
    other = cid_of(b"something else")

    def lie(path: str, body: bytes) -> bytes:
        if path != "/api/v0/add":
            return body
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        lines[-1]["Hash"] = other
        return "\n".join(json.dumps(line) for line in lines).encode()

    with TamperingProxy(jsipfs.api_url, lie) as proxy:
        with pytest.raises(ContentMismatchError, match=other):
            KuboStore(proxy.url, timeout=5).add(b"honest data")
