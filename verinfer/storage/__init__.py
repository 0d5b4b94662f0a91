"""Content-addressed storage for model weights, inputs and outputs.

`open_store()` gives the embedded directory store by default and a Kubo daemon when `IPFS_API`
is set; both return the CIDs `ipfs add --cid-version=1 --raw-leaves` would, and both verify every
read against its CID. See docs/storage.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from verinfer.storage.base import ContentStore, canonical_json
from verinfer.storage.embedded import EmbeddedStore
from verinfer.storage.errors import (
    ContentMismatchError,
    ContentNotFoundError,
    ContentTooLargeError,
    InvalidCidError,
    InvalidContentError,
    StorageError,
    StoreUnavailableError,
)
from verinfer.storage.kubo import KuboStore
from verinfer.storage.unixfs import CHUNK_SIZE, MAX_LINKS, cid_of, same_cid, verify

DEFAULT_STORE_DIR = Path(".verinfer/store")

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_STORE_DIR",
    "MAX_LINKS",
    "ContentMismatchError",
    "ContentNotFoundError",
    "ContentStore",
    "ContentTooLargeError",
    "EmbeddedStore",
    "InvalidCidError",
    "InvalidContentError",
    "KuboStore",
    "StorageError",
    "StoreUnavailableError",
    "canonical_json",
    "cid_of",
    "open_store",
    "same_cid",
    "verify",
]


def open_store(ipfs_api: str | None = None, root: Path | None = None) -> ContentStore:
    """Kubo backend when `ipfs_api` or env `IPFS_API` is set; else the embedded store.

    The embedded store lives at `root`, else env `VERINFER_STORE`, else `.verinfer/store`.
    """
    api = ipfs_api or os.environ.get("IPFS_API", "").strip()
    if api:
        return KuboStore(api)
    where = root if root is not None else Path(os.environ.get("VERINFER_STORE", "").strip() or DEFAULT_STORE_DIR)
    return EmbeddedStore(where)
