"""The ContentStore interface every backend implements, and the canonical-JSON helpers on top of it."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

from verinfer.storage.errors import InvalidContentError


@runtime_checkable
class ContentStore(Protocol):
    """Content-addressed bytes: `add` returns the Kubo-identical CID, reads are always verified."""

    def add(self, data: bytes, pin: bool = True) -> str:
        """Store `data`; return its CID (CIDv1, raw leaves, 256 KiB chunks, balanced DAG)."""
        ...

    def cat(self, cid: str, max_bytes: int | None = None) -> bytes:
        """Return the bytes named by `cid`, verified against it; refuse content over `max_bytes`."""
        ...

    def has(self, cid: str) -> bool:
        """True when the whole content is available here without fetching it from elsewhere."""
        ...

    def pin(self, cid: str) -> None:
        """Keep `cid` (and every block under it) through garbage collection."""
        ...

    def add_json(self, obj: Any, pin: bool = True) -> str:
        """Store `obj` as canonical JSON and return its CID."""
        ...

    def cat_json(self, cid: str, max_bytes: int | None = None) -> Any:
        """Read and parse JSON stored under `cid` (verified like `cat`)."""
        ...


def canonical_json(obj: Any) -> bytes:
    """The one byte encoding of a JSON value, so equal objects always get equal CIDs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


class JsonHelpers(ABC):
    """add_json / cat_json on top of a backend's add and cat; shared so both backends encode alike."""

    @abstractmethod
    def add(self, data: bytes, pin: bool = True) -> str:
        """Store `data`; return its CID."""

    @abstractmethod
    def cat(self, cid: str, max_bytes: int | None = None) -> bytes:
        """The verified bytes behind `cid`."""

    def add_json(self, obj: Any, pin: bool = True) -> str:
        """Store `obj` as canonical JSON (sorted keys, no spaces, UTF-8)."""
        return self.add(canonical_json(obj), pin=pin)

    def cat_json(self, cid: str, max_bytes: int | None = None) -> Any:
        """Fetch, verify and parse; bytes that are not UTF-8 JSON raise InvalidContentError."""
        raw = self.cat(cid, max_bytes=max_bytes)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidContentError(f"content {cid} is not UTF-8 JSON: {exc}") from None
