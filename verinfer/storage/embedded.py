"""Embedded content store: Kubo-identical blocks in a plain directory, no daemon needed.

Layout under `root` (flatfs-like, so it is easy to inspect and to copy into a real node):

    blocks/<XY>/<KEY>.data   one block per file; KEY = unpadded base32 of the block's multihash
                             (Kubo's flatfs key), XY = its next-to-last two characters
    pins/<CIDv1>             one empty file per recursive pin
    STORE                    format marker ("verinfer-store-v1")

Blocks are keyed by multihash, so a `Qm…` CID and its `bafy…` twin share blocks. Writes go
to a temp file and are renamed into place, so concurrent writers never expose half a block;
a torn or tampered block is caught on read because every block is re-hashed.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from verinfer.storage.base import JsonHelpers
from verinfer.storage.errors import ContentMismatchError, ContentNotFoundError, InvalidContentError, StorageError
from verinfer.storage.unixfs import (
    CODEC_DAG_PB,
    CidRef,
    block_matches,
    build,
    check_block,
    decode_file_node,
    iter_refs,
    parse_cid,
    read_file,
)

STORE_MARKER = "verinfer-store-v1"


class EmbeddedStore(JsonHelpers):
    """ContentStore on the local filesystem (the default backend)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._blocks = self.root / "blocks"
        self._pins = self.root / "pins"
        try:
            self._blocks.mkdir(parents=True, exist_ok=True)
            self._pins.mkdir(parents=True, exist_ok=True)
            marker = self.root / "STORE"
            if not marker.exists():
                marker.write_text(STORE_MARKER + "\n")
            elif marker.read_text().strip() != STORE_MARKER:
                raise StorageError(f"{self.root} holds an unknown store format: {marker.read_text().strip()!r}")
        except OSError as exc:
            raise StorageError(f"cannot use {self.root} as a content store: {exc}") from None

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    # ------------------------------------------------------------------ blocks

    def block_path(self, cid: str | CidRef) -> Path:
        """Where the block for `cid` lives (tests corrupt it; operators can inspect it)."""
        key = base64.b32encode(parse_cid(cid).multihash).decode("ascii").rstrip("=")
        return self._blocks / key[-3:-1] / f"{key}.data"

    def put_block(self, ref: CidRef, block: bytes) -> None:
        """Store one block atomically; an existing correct copy is kept, a corrupt one replaced."""
        path = self.block_path(ref)
        try:
            if path.exists() and block_matches(ref, path.read_bytes()):
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".data")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(block)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write block {ref} under {self.root}: {exc}") from None

    def get_block(self, ref: CidRef) -> bytes:
        """Raw bytes of one block, unverified (read_file verifies); ContentNotFoundError if absent."""
        try:
            return self.block_path(ref).read_bytes()
        except FileNotFoundError:
            raise ContentNotFoundError(f"block {ref} is not in the store at {self.root}") from None
        except OSError as exc:
            raise StorageError(f"cannot read block {ref} under {self.root}: {exc}") from None

    # ------------------------------------------------------------------ ContentStore

    def add(self, data: bytes, pin: bool = True, cid_version: int = 1) -> str:
        """Chunk `data` like `ipfs add`, store every block, return the root CID."""
        root = build(bytes(data), cid_version=cid_version, sink=self.put_block)
        if pin:
            self._write_pin(root)
        return str(root)

    def cat(self, cid: str, max_bytes: int | None = None) -> bytes:
        """Reassemble and verify; the root's declared size is checked against `max_bytes` first."""
        return read_file(parse_cid(cid), self.get_block, max_bytes=max_bytes)

    def has(self, cid: str) -> bool:
        """True when every block of the DAG is present (inner nodes are also re-hashed)."""
        try:
            for ref in iter_refs(parse_cid(cid), self.get_block):
                if not self.block_path(ref).is_file():
                    return False
        except (ContentNotFoundError, ContentMismatchError, InvalidContentError):
            return False
        return True

    def pin(self, cid: str) -> None:
        """Record a recursive pin; the content must be complete here."""
        ref = parse_cid(cid)
        if not self.has(str(ref)):
            raise ContentNotFoundError(f"cannot pin {cid}: it is not (completely) in the store at {self.root}")
        self._write_pin(ref)

    # ------------------------------------------------------------------ pins and GC

    def _write_pin(self, ref: CidRef) -> None:
        try:
            (self._pins / str(ref.to_v1())).touch()
        except OSError as exc:
            raise StorageError(f"cannot record pin {ref} under {self.root}: {exc}") from None

    def pins(self) -> list[str]:
        """CIDv1 strings of all pinned roots."""
        return sorted(p.name for p in self._pins.iterdir() if not p.name.startswith("."))

    def unpin(self, cid: str) -> None:
        """Drop a pin (the blocks stay until `gc`)."""
        (self._pins / str(parse_cid(cid).to_v1())).unlink(missing_ok=True)

    def gc(self) -> int:
        """Delete blocks not reachable from any pin; returns how many were removed.

        Not safe to run while another process adds unpinned content to the same directory.
        """
        keep: set[Path] = set()
        stack = [parse_cid(name) for name in self.pins()]
        while stack:  # tolerant walk: a damaged pinned DAG keeps every block still reachable
            ref = stack.pop()
            keep.add(self.block_path(ref))
            if ref.codec != CODEC_DAG_PB:
                continue
            try:
                block = self.get_block(ref)
                check_block(ref, block)
                stack.extend(link.cid for link in decode_file_node(block).links)
            except (ContentNotFoundError, ContentMismatchError, InvalidContentError):
                continue
        removed = 0
        for path in self._blocks.glob("*/*.data"):
            if path not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
