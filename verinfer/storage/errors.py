"""Storage errors. Each one names what a node operator or requester can act on."""

from __future__ import annotations

from verinfer.errors import VerinferError


class StorageError(VerinferError):
    """Base class for content-store failures."""


class InvalidCidError(StorageError):
    """The string is not a CID this store understands (bad multibase, codec or hash)."""


class ContentNotFoundError(StorageError):
    """The content (or one of its blocks) is not in the store and could not be fetched."""


class ContentMismatchError(StorageError):
    """Bytes read back do not hash to the CID they were requested by: tampering or corruption."""


class InvalidContentError(ContentMismatchError):
    """Blocks hash correctly but are not a UnixFS file (a directory, bad protobuf, sizes that lie, bad JSON).

    A ContentMismatchError subclass on purpose: code that rejects mismatched content (a node
    answering INVALID_INPUT) rejects this too instead of retrying forever.
    """


class ContentTooLargeError(StorageError):
    """The content is larger than the caller's `max_bytes` limit; it was not read in full."""


class StoreUnavailableError(StorageError):
    """The IPFS RPC endpoint cannot be reached or answered with an unexpected error."""
