"""Kubo RPC backend (`/api/v0`) over plain httpx.

Why not ipfshttpclient: its 0.7 release refuses every daemon >= 0.8 in `connect()`. The handful of
endpoints used here (add, cat, block/get, refs, pin/add) are stable across Kubo and js-ipfs.

The daemon is not trusted: `add` recomputes the CID locally and rejects a daemon that reports
another; `cat` first fetches and hashes the root block (its filesize bounds everything after and
enforces `max_bytes` before any file data moves), re-chunks the returned bytes and compares the
CID, and when that does not match (content made with another chunker, or a lying daemon) re-reads
the DAG block by block, hashing each.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from verinfer.storage.base import JsonHelpers
from verinfer.storage.errors import (
    ContentMismatchError,
    ContentNotFoundError,
    ContentTooLargeError,
    InvalidCidError,
    InvalidContentError,
    StoreUnavailableError,
)
from verinfer.storage.unixfs import (
    CHUNK_SIZE,
    CODEC_RAW,
    CidRef,
    check_block,
    cid_of,
    declared_size,
    parse_cid,
    read_file,
    same_cid,
    verify,
)

MAX_BLOCK_SIZE = 4 * 1024 * 1024  # Kubo refuses blocks over 4 MiB (bitswap); anything bigger is a lie

_NOT_FOUND = re.compile(
    r"not found|could not find|timed out|deadline exceeded|aborted|no link named|context canceled", re.IGNORECASE
)
_NOT_A_FILE = re.compile(r"is a directory|not a file|not unixfs|unexpected node type|unsupported", re.IGNORECASE)
_MULTIADDR = re.compile(r"^/(ip4|ip6|dns4|dns6|dns)/([^/]+)/tcp/(\d+)(/https?)?/?$")


def normalize_api_url(api: str) -> str:
    """Accept `http://host:port`, `host:port` or a multiaddr `/ip4/127.0.0.1/tcp/5001`; return the base URL."""
    api = api.strip()
    m = _MULTIADDR.match(api)
    if m:
        host = f"[{m.group(2)}]" if m.group(1) == "ip6" else m.group(2)
        scheme = "https" if m.group(4) == "/https" else "http"
        api = f"{scheme}://{host}:{m.group(3)}"
    elif "://" not in api:
        api = "http://" + api
    api = api.rstrip("/")
    if api.endswith("/api/v0"):
        api = api[: -len("/api/v0")]
    return api


class KuboStore(JsonHelpers):
    """ContentStore backed by a Kubo (or js-ipfs) daemon's RPC API."""

    def __init__(self, api_url: str, timeout: float = 30, has_timeout: float = 2) -> None:
        self.api_url = normalize_api_url(api_url)
        self.timeout = float(timeout)
        self.has_timeout = float(has_timeout)
        # the daemon gets `timeout` and gives up first; httpx waits a little longer
        self._client = httpx.Client(
            base_url=self.api_url + "/api/v0",
            timeout=httpx.Timeout(self.timeout + 5, connect=min(self.timeout, 10)),
        )

    def __repr__(self) -> str:
        return f"KuboStore({self.api_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> KuboStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP plumbing

    def _daemon_timeout(self, seconds: float) -> str:
        return f"{max(1, int(seconds * 1000))}ms"

    def _fail(self, resp: httpx.Response, what: str) -> None:
        """Turn a non-200 RPC answer into the matching storage error."""
        try:
            message = str(resp.json().get("Message", "")) or resp.text
        except (ValueError, AttributeError):
            message = resp.text
        message = message.strip()[:300]
        if _NOT_A_FILE.search(message):
            raise InvalidContentError(f"{what}: not a file according to {self.api_url} ({message})")
        if _NOT_FOUND.search(message) or resp.status_code == 404:
            raise ContentNotFoundError(f"{what}: not available from {self.api_url} ({message or resp.status_code})")
        if resp.status_code == 400 and "cid" in message.lower():
            raise InvalidCidError(f"{what}: {message}")
        raise StoreUnavailableError(f"{what}: IPFS API {self.api_url} answered {resp.status_code}: {message}")

    def _post(self, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._client.post(path, **kwargs)
        except httpx.TimeoutException:
            raise ContentNotFoundError(f"{what}: no answer from {self.api_url} within {self.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"{what}: IPFS API {self.api_url} unreachable ({exc})") from None
        if resp.status_code != 200:
            self._fail(resp, what)
        return resp

    def version(self) -> dict[str, Any]:
        """The daemon's /version answer (also a cheap liveness check)."""
        return dict(self._post("/version", "version").json())

    # ------------------------------------------------------------------ ContentStore

    def add(self, data: bytes, pin: bool = True, cid_version: int = 1) -> str:
        """Add with `ipfs add --cid-version=1 --raw-leaves` options; the daemon's CID must equal ours."""
        expected = cid_of(bytes(data), cid_version=cid_version)
        params = {
            "cid-version": str(cid_version),
            "raw-leaves": "true" if cid_version == 1 else "false",
            "chunker": f"size-{CHUNK_SIZE}",
            "hash": "sha2-256",
            "pin": "true" if pin else "false",
            "cid-base": "base32" if cid_version == 1 else "base58btc",
            "progress": "false",
        }
        files = {"file": ("data", bytes(data), "application/octet-stream")}
        resp = self._post("/add", f"add {len(data)} bytes", params=params, files=files)
        lines = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
        hashes = [line["Hash"] for line in lines if "Hash" in line]
        if not hashes:
            raise StoreUnavailableError(f"add: IPFS API {self.api_url} returned no CID: {resp.text[:200]!r}")
        if not same_cid(hashes[-1], expected):
            raise ContentMismatchError(
                f"IPFS API {self.api_url} stored the data as {hashes[-1]}, expected {expected}: "
                "its add options differ from Kubo's defaults or it is misbehaving"
            )
        return expected

    def _stream(self, path: str, params: dict[str, str], what: str, limit: int) -> bytes:
        """POST and read the body, stopping once it exceeds `limit` (a daemon cannot flood us)."""
        buf = bytearray()
        try:
            with self._client.stream("POST", path, params=params) as resp:
                if resp.status_code != 200:
                    resp.read()
                    self._fail(resp, what)
                for chunk in resp.iter_bytes():
                    buf += chunk
                    if len(buf) > limit:
                        break
        except httpx.TimeoutException:
            raise ContentNotFoundError(f"{what}: no answer from {self.api_url} within {self.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"{what}: IPFS API {self.api_url} unreachable ({exc})") from None
        return bytes(buf)

    def get_block(self, ref: CidRef) -> bytes:
        """One raw block via /block/get (unverified here; callers hash it), at most MAX_BLOCK_SIZE bytes."""
        params = {"arg": str(ref), "timeout": self._daemon_timeout(self.timeout)}
        block = self._stream("/block/get", params, f"block/get {ref}", MAX_BLOCK_SIZE)
        if len(block) > MAX_BLOCK_SIZE:
            raise ContentMismatchError(f"{self.api_url} sent over {MAX_BLOCK_SIZE} bytes for block {ref}")
        return block

    def cat(self, cid: str, max_bytes: int | None = None) -> bytes:
        """Verified bytes of `cid`; over `max_bytes` → ContentTooLargeError before any file data is read.

        The root block is fetched and hashed first: its UnixFS filesize is then an authenticated
        bound, checked against `max_bytes` and used to stop reading `cat` output early. The `cat`
        bytes are accepted only if they rebuild to `cid`; otherwise (foreign chunker or a lying
        daemon) the DAG is re-read block by block and every block hashed.
        """
        ref = parse_cid(cid)
        root = self.get_block(ref)
        check_block(ref, root)
        size = declared_size(ref, root)
        if max_bytes is not None and size > max_bytes:
            raise ContentTooLargeError(f"content {ref} is {size} bytes, over the {max_bytes}-byte limit")
        if ref.codec == CODEC_RAW:
            return root
        params = {"arg": str(ref), "length": str(size + 1), "timeout": self._daemon_timeout(self.timeout)}
        data = self._stream("/cat", params, f"cat {ref}", size)
        mismatch = ContentMismatchError(f"{self.api_url} returned {len(data)} bytes for {ref}, which holds {size}")
        if len(data) == size:
            try:
                verify(str(ref), data)
                return data
            except ContentMismatchError as exc:
                mismatch = exc
        try:
            return read_file(ref, self.get_block, max_bytes=max_bytes, root_block=root)
        except (ContentNotFoundError, StoreUnavailableError):
            raise mismatch from None

    def has(self, cid: str) -> bool:
        """True when the daemon holds every block locally (`refs -r --offline`, short timeout)."""
        ref = parse_cid(cid)
        params = {
            "arg": str(ref),
            "recursive": "true",
            "unique": "true",
            "offline": "true",
            "timeout": self._daemon_timeout(self.has_timeout),
        }
        try:
            resp = self._client.post("/refs", params=params, timeout=self.has_timeout + 5)
        except httpx.TimeoutException:
            return False
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"has {ref}: IPFS API {self.api_url} unreachable ({exc})") from None
        if resp.status_code != 200:
            try:
                self._fail(resp, f"has {ref}")
            except ContentNotFoundError:
                return False
        for line in resp.text.splitlines():
            if line.strip() and json.loads(line).get("Err"):
                return False
        return True

    def pin(self, cid: str) -> None:
        """Recursive pin on the daemon (Kubo may fetch missing blocks from its peers first)."""
        ref = parse_cid(cid)
        params = {"arg": str(ref), "recursive": "true", "timeout": self._daemon_timeout(self.timeout)}
        self._post("/pin/add", f"pin {ref}", params=params)
