"""UnixFS file DAGs built exactly as Kubo's `ipfs add` builds them, so CIDs agree byte for byte.

Why our own builder: verinfer anchors CIDs on-chain, and any node (embedded store or a Kubo
daemon) must derive the same CID from the same bytes. The rules (Kubo defaults):

* fixed-size chunker, 262144-byte chunks; an empty file is one empty chunk;
* balanced layout: leaves grouped 174 per dag-pb node, level by level, until one root remains;
  a file of one chunk is that leaf itself;
* CIDv1: raw leaves (codec raw), dag-pb inner nodes, base32; CIDv0: every node dag-pb,
  leaves are UnixFS File nodes carrying their chunk, base58btc `Qm…`;
* inner nodes: UnixFS Data {Type=File, filesize, blocksizes (unpacked)}; links
  {Hash, Name="", Tsize=cumulative serialized size of the subtree}, links before Data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from multiformats import CID

from verinfer.storage.errors import (
    ContentMismatchError,
    ContentTooLargeError,
    InvalidCidError,
    InvalidContentError,
    StorageError,
)

CHUNK_SIZE = 262144
MAX_LINKS = 174

CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
SHA2_256 = 0x12

# UnixFS Data.Type values (unixfs.proto)
UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2

BlockSink = Callable[["CidRef", bytes], None]


# --------------------------------------------------------------------------- CIDs


@dataclass(frozen=True)
class CidRef:
    """A parsed CID: version, codec code and multihash bytes (what blocks are keyed by)."""

    version: int
    codec: int
    multihash: bytes

    @property
    def binary(self) -> bytes:
        """The CID as it appears inside a dag-pb link."""
        if self.version == 0:
            return self.multihash
        return b"\x01" + _varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return str(CID("base58btc", 0, "dag-pb", self.multihash))
        return str(CID("base32", 1, self.codec, self.multihash))

    def to_v1(self) -> CidRef:
        """Same block, CIDv1 form (used to compare a `Qm…` with its `bafy…` twin)."""
        return CidRef(1, self.codec, self.multihash)


def parse_cid(cid: str | bytes | CidRef) -> CidRef:
    """Parse a CID string (any multibase) or binary CID; InvalidCidError if it is not one."""
    if isinstance(cid, CidRef):
        return cid
    try:
        parsed = CID.decode(cid.strip() if isinstance(cid, str) else cid)
    except Exception as exc:  # multiformats raises several unrelated types
        raise InvalidCidError(f"not a CID: {cid!r} ({exc})") from None
    code = parsed.codec.code
    if code not in (CODEC_RAW, CODEC_DAG_PB):
        raise InvalidCidError(f"CID {cid!r} has codec {parsed.codec.name}; only raw and dag-pb content is supported")
    return CidRef(parsed.version, code, bytes(parsed.digest))


def _sha256_multihash(block: bytes) -> bytes:
    return b"\x12\x20" + hashlib.sha256(block).digest()


def block_matches(ref: CidRef, block: bytes) -> bool:
    """True when `block` hashes to the CID's multihash (sha2-256 fast path, others via multiformats)."""
    mh = ref.multihash
    if mh[:2] == b"\x12\x20":
        return hashlib.sha256(block).digest() == mh[2:]
    try:
        hashfun = CID("base32", 1, "raw", mh).hashfun
        return bool(hashfun.digest(block) == mh)
    except Exception as exc:
        raise InvalidCidError(f"unsupported hash function in CID {ref}: {exc}") from None


def check_block(ref: CidRef, block: bytes) -> None:
    """Raise ContentMismatchError unless `block` is exactly the block named by `ref`."""
    if not block_matches(ref, block):
        raise ContentMismatchError(f"block {ref} does not match its CID (corrupted or tampered)")


# --------------------------------------------------------------------------- protobuf


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise InvalidContentError("truncated or overlong protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value) for varint and length-delimited fields; reject other wire types."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _read_varint(buf, pos)
            yield num, val
        elif wire == 2:
            ln, pos = _read_varint(buf, pos)
            if pos + ln > len(buf):
                raise InvalidContentError("truncated protobuf field")
            yield num, buf[pos : pos + ln]
            pos += ln
        else:
            raise InvalidContentError(f"unexpected protobuf wire type {wire}")


def _bytes_field(num: int, value: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _varint_field(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def encode_unixfs_file(filesize: int, blocksizes: list[int], data: bytes = b"") -> bytes:
    """UnixFS Data message for a File node, fields in Kubo's order; empty Data is omitted."""
    out = _varint_field(1, UNIXFS_FILE)
    if data:
        out += _bytes_field(2, data)
    out += _varint_field(3, filesize)
    for size in blocksizes:
        out += _varint_field(4, size)
    return out


@dataclass
class Link:
    """A dag-pb link: target CID and cumulative serialized size of the subtree (Tsize)."""

    cid: CidRef
    tsize: int


def encode_dag_pb(links: list[Link], data: bytes) -> bytes:
    """dag-pb PBNode: links first (Hash, Name="", Tsize), then Data — go-merkledag's byte order."""
    out = bytearray()
    for link in links:
        body = _bytes_field(1, link.cid.binary) + _bytes_field(2, b"") + _varint_field(3, link.tsize)
        out += _bytes_field(2, body)
    out += _bytes_field(1, data)
    return bytes(out)


@dataclass
class FileNode:
    """A decoded UnixFS file node: its inline data, children and the sizes it claims."""

    data: bytes
    links: list[Link]
    filesize: int | None
    blocksizes: list[int]


def decode_file_node(block: bytes) -> FileNode:
    """Decode a dag-pb block holding a UnixFS File/Raw node; InvalidContentError otherwise."""
    links: list[Link] = []
    pb_data: bytes | None = None
    for num, val in _fields(block):
        if num == 2 and isinstance(val, bytes):
            target: CidRef | None = None
            tsize = 0
            for lnum, lval in _fields(val):
                if lnum == 1 and isinstance(lval, bytes):
                    try:
                        target = parse_cid(lval)
                    except InvalidCidError as exc:
                        raise InvalidContentError(f"bad link in dag-pb node: {exc}") from None
                elif lnum == 3 and isinstance(lval, int):
                    tsize = lval
            if target is None:
                raise InvalidContentError("dag-pb link without a Hash")
            links.append(Link(target, tsize))
        elif num == 1 and isinstance(val, bytes):
            pb_data = val
        else:
            raise InvalidContentError(f"unexpected field {num} in dag-pb node")
    if pb_data is None:
        raise InvalidContentError("dag-pb node has no UnixFS Data: not a file")
    ftype: int | None = None
    data = b""
    filesize: int | None = None
    blocksizes: list[int] = []
    for num, val in _fields(pb_data):
        if num == 1 and isinstance(val, int):
            ftype = val
        elif num == 2 and isinstance(val, bytes):
            data = val
        elif num == 3 and isinstance(val, int):
            filesize = val
        elif num == 4:
            if isinstance(val, int):
                blocksizes.append(val)
            else:  # packed encoding, accepted on read
                pos = 0
                while pos < len(val):
                    size, pos = _read_varint(val, pos)
                    blocksizes.append(size)
    if ftype not in (UNIXFS_FILE, UNIXFS_RAW):
        kind = "directory" if ftype in (UNIXFS_DIRECTORY, 5) else f"UnixFS type {ftype}"
        raise InvalidContentError(f"content is a {kind}, not a file")
    if blocksizes and len(blocksizes) != len(links):
        raise InvalidContentError("UnixFS blocksizes do not match the node's links")
    return FileNode(data, links, filesize, blocksizes)


def declared_size(ref: CidRef, block: bytes) -> int:
    """File size a root block claims (raw leaf: its length), read without fetching children."""
    if ref.codec == CODEC_RAW:
        return len(block)
    node = decode_file_node(block)
    if node.filesize is not None:
        return node.filesize
    return len(node.data) + sum(node.blocksizes)


# --------------------------------------------------------------------------- builder


@dataclass
class _Pending:
    cid: CidRef
    tsize: int
    filesize: int


@dataclass
class DagBuilder:
    """Streaming balanced-DAG builder: feed bytes, get every block via `sink`, `finish()` → root.

    Inner nodes are closed lazily (when a 175th sibling arrives or at the end), which yields
    exactly Kubo's balanced layout without holding more than one chunk of file data.
    """

    cid_version: int = 1
    sink: BlockSink | None = None
    chunk_size: int = CHUNK_SIZE
    _buf: bytearray = field(default_factory=bytearray)
    _levels: list[list[_Pending]] = field(default_factory=lambda: [[]])
    _any_chunk: bool = False
    size: int = 0

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise InvalidCidError(f"cid_version must be 0 or 1, not {self.cid_version}")
        if not 1 <= self.chunk_size <= 1 << 20:
            raise StorageError(f"chunk_size must be 1..1048576 bytes, not {self.chunk_size}")

    def _emit(self, codec: int, block: bytes) -> CidRef:
        ref = CidRef(self.cid_version, codec, _sha256_multihash(block))
        if self.sink is not None:
            self.sink(ref, block)
        return ref

    def _leaf(self, chunk: bytes) -> None:
        self._any_chunk = True
        if self.cid_version == 1:
            ref = self._emit(CODEC_RAW, chunk)
            self._push(0, _Pending(ref, len(chunk), len(chunk)))
        else:
            block = encode_dag_pb([], encode_unixfs_file(len(chunk), [], chunk))
            ref = self._emit(CODEC_DAG_PB, block)
            self._push(0, _Pending(ref, len(block), len(chunk)))

    def _push(self, level: int, item: _Pending) -> None:
        if level == len(self._levels):
            self._levels.append([])
        if len(self._levels[level]) == MAX_LINKS:
            self._push(level + 1, self._close(self._levels[level]))
            self._levels[level] = []
        self._levels[level].append(item)

    def _close(self, children: list[_Pending]) -> _Pending:
        sizes = [c.filesize for c in children]
        total = sum(sizes)
        block = encode_dag_pb([Link(c.cid, c.tsize) for c in children], encode_unixfs_file(total, sizes))
        ref = self._emit(CODEC_DAG_PB, block)
        return _Pending(ref, len(block) + sum(c.tsize for c in children), total)

    def update(self, data: bytes) -> None:
        """Absorb bytes; full chunks become leaves immediately."""
        self.size += len(data)
        self._buf += data
        step = self.chunk_size
        if len(self._buf) >= step:
            view = memoryview(self._buf)
            n = len(self._buf) // step * step
            for off in range(0, n, step):
                self._leaf(bytes(view[off : off + step]))
            view.release()
            del self._buf[:n]

    def finish(self) -> CidRef:
        """Flush the last chunk and close open nodes bottom-up; returns the root CID."""
        if self._buf or not self._any_chunk:
            self._leaf(bytes(self._buf))
            self._buf.clear()
        level = 0
        while True:
            items = self._levels[level]
            top = level == len(self._levels) - 1
            if top and len(items) == 1:
                return items[0].cid
            self._levels[level] = []
            self._push(level + 1, self._close(items))
            level += 1


def build(
    data: bytes, cid_version: int = 1, sink: BlockSink | None = None, chunk_size: int = CHUNK_SIZE
) -> CidRef:
    """Chunk and build `data` in one call; every block goes to `sink` (if given).

    `chunk_size` mirrors Kubo's `--chunker=size-N`; CIDs on the wire use the 262144 default.
    """
    builder = DagBuilder(cid_version=cid_version, sink=sink, chunk_size=chunk_size)
    builder.update(data)
    return builder.finish()


def cid_of(data: bytes, cid_version: int = 1, chunk_size: int = CHUNK_SIZE) -> str:
    """The CID `ipfs add` gives `data` (CIDv1 with raw leaves by default; 0 for `Qm…`)."""
    return str(build(data, cid_version, chunk_size=chunk_size))


def same_cid(a: str | CidRef, b: str | CidRef) -> bool:
    """Compare two CIDs by meaning, not spelling (base32/base58, v0 vs its v1 dag-pb twin)."""
    ra, rb = parse_cid(a), parse_cid(b)
    return ra.to_v1() == rb.to_v1()


def verify(cid: str, data: bytes) -> None:
    """Raise ContentMismatchError unless `data` rebuilds, with Kubo's default layout, to `cid`.

    A CID made with another chunker or layout cannot be re-derived from bytes alone; it also
    fails here, and callers that must accept such content verify block by block instead.
    """
    ref = parse_cid(cid)
    if ref.codec == CODEC_RAW and block_matches(ref, data):
        return  # a raw CID names these exact bytes, whatever their size
    got = build(data, cid_version=0 if ref.version == 0 else 1)
    if got.to_v1() != ref.to_v1():
        raise ContentMismatchError(f"content does not match CID {cid} (it hashes to {got})")


# --------------------------------------------------------------------------- reading


BlockGetter = Callable[[CidRef], bytes]


def read_file(
    root: CidRef,
    get_block: BlockGetter,
    max_bytes: int | None = None,
    root_block: bytes | None = None,
) -> bytes:
    """Reassemble a file DAG, checking every block against its CID and every size claim.

    `get_block` returns a block's bytes (raising ContentNotFoundError); this function does the
    hashing, so a lying store cannot slip a block through. `max_bytes` is enforced from the
    root's declared size before any child is fetched, and again while reading.
    """
    block = root_block if root_block is not None else get_block(root)
    check_block(root, block)
    if max_bytes is not None:
        size = declared_size(root, block)
        if size > max_bytes:
            raise ContentTooLargeError(f"content {root} is {size} bytes, over the {max_bytes}-byte limit")
    out = bytearray()

    def append(chunk: bytes) -> None:
        out.extend(chunk)
        if max_bytes is not None and len(out) > max_bytes:
            raise ContentTooLargeError(f"content {root} is over the {max_bytes}-byte limit")

    def walk(ref: CidRef, blk: bytes, depth: int) -> int:
        if depth > 64:
            raise InvalidContentError("file DAG is deeper than 64 levels")
        if ref.codec == CODEC_RAW:
            append(blk)
            return len(blk)
        node = decode_file_node(blk)
        append(node.data)
        written = len(node.data)
        for i, link in enumerate(node.links):
            child = get_block(link.cid)
            check_block(link.cid, child)
            got = walk(link.cid, child, depth + 1)
            if node.blocksizes and got != node.blocksizes[i]:
                raise InvalidContentError(
                    f"node {ref} claims child {i} holds {node.blocksizes[i]} bytes, it holds {got}"
                )
            written += got
        if node.filesize is not None and written != node.filesize:
            raise InvalidContentError(f"node {ref} claims {node.filesize} bytes, its DAG holds {written}")
        return written

    walk(root, block, 0)
    return bytes(out)


def iter_refs(root: CidRef, get_block: BlockGetter) -> Iterator[CidRef]:
    """Yield every CID in the file DAG (root first), fetching only inner nodes."""
    yield root
    if root.codec != CODEC_DAG_PB:
        return
    block = get_block(root)
    check_block(root, block)
    for link in decode_file_node(block).links:
        yield from iter_refs(link.cid, get_block)
