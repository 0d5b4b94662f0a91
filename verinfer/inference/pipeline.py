"""Sharded (split) inference: stage servers hold layer ranges; the requester drives them in a star.

Why a star: the accountable head (the requester, or the committee node that owns the request) keeps
the embedding and head (stages never see token ids), sends each stage its input and reads its
output, so it (a) can compare replicas of a stage bit for bit (the integer profile makes honest
replicas identical), (b) holds every stage's input history, so a replacement stage rebuilds its KV
cache by replaying the prefix (as Petals does), and (c) measures every hop.

Wire format (TCP, `TCP_NODELAY`): frame = b"VI" | type u8 | 0 | length u32 (big-endian) | payload.
HELLO → JSON {layers, d_model, profile, shard}; FORWARD = session 16 B | pos u32 | T u32 | d u32 |
int64 LE (T·d) → HIDDEN = compute µs u64 | T u32 | d u32 | int64 data | receipt (inputHash 32 B |
outputHash 32 B | signature 65 B; all zero from a stage without a signer); END = session; ERR = UTF-8.
A FORWARD at pos 0 (re)starts the session; any other pos must continue its cache.

Receipts (docs/lm.md "Accountability"): a stage signs, for every FORWARD it answers, the hash of its
session's transcript so far (`StageContext` + every FORWARD since pos 0, `transcript_step`) and the hash
of the rows it returned (`stage_output_hash`). The transcript is also the stage-check payload a dispute
puts on the market (`encode_stage_check` / `parse_stage_check`): heads re-run it with `replay_stage_check`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import socket
import socketserver
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verinfer.constants import FIELD
from verinfer.errors import VerinferError
from verinfer.inference.llama_int import (
    IntBlock,
    IntCache,
    IntLinear,
    IntModel,
    IntNorm,
)
from verinfer.models.errors import InvalidInputError
from verinfer.models.gguf import LlmConfig, LlmError

MAGIC = b"VI"
HDR = struct.Struct(">2sBxI")
HELLO, FORWARD, END, OK, HIDDEN, ERR = 1, 2, 3, 0x81, 0x82, 0xFF
MAX_FRAME = 64 << 20
FWD = struct.Struct(">16sIII")
HID = struct.Struct(">QII")
RECEIPT = struct.Struct(">32s32s65s")  # inputHash, outputHash, EIP-191 signature (r | s | v)
NO_RECEIPT = bytes(RECEIPT.size)


class PipelineError(VerinferError):
    """A sharded request could not complete (every replacement for a stage failed)."""


class StageFault(Exception):
    """One stage endpoint misbehaved: kind is down | stall | garbage | error | lie."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


# ------------------------------------------------------------------ framing

def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("peer closed the connection")
        got += k
    return bytes(buf)


def send_frame(sock: socket.socket, kind: int, payload: bytes | Sequence[bytes]) -> None:
    parts = [payload] if isinstance(payload, (bytes, bytearray, memoryview)) else list(payload)
    size = sum(len(p) for p in parts)
    sock.sendall(b"".join([HDR.pack(MAGIC, kind, size), *parts]))


def recv_frame(sock: socket.socket) -> tuple[int, bytes]:
    magic, kind, size = HDR.unpack(_recv_exact(sock, HDR.size))
    if magic != MAGIC:
        raise ConnectionError("bad frame magic")
    if size > MAX_FRAME:
        raise ConnectionError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    return kind, _recv_exact(sock, size)


# ------------------------------------------------------------------ receipts and stage checks (one definition)

STAGE_CHECK_MAGIC = b"VISC\x01"  # a stage-check payload (not JSON: tensor payloads start with "{")
STAGE_CHECK_TAG = b"verinfer.stage-check.v1"
STAGE_OUTPUT_TAG = b"verinfer.stage-output.v1"
FRAME = struct.Struct(">III")  # pos, T, d of one FORWARD in a transcript
CTX = struct.Struct(">32sHH32sI")  # model id, lo, hi, shard commitment, number of frames


def as_field(digest: bytes) -> int:
    """A 32-byte digest as the field element the market and the court carry (inputHash < BN254 FIELD)."""
    return int.from_bytes(digest, "big") % FIELD


@dataclass(frozen=True)
class StageContext:
    """What a stage's receipts are about: model id, layer range and the registered shard commitment."""

    model_id: bytes
    lo: int
    hi: int
    shard: bytes

    def genesis(self) -> bytes:
        """The transcript hash of a session before its first FORWARD."""
        return hashlib.sha256(STAGE_CHECK_TAG + CTX.pack(self.model_id, self.lo, self.hi, self.shard, 0)[:-4]).digest()


def transcript_step(state: bytes, pos: int, T: int, d: int, rows: bytes | memoryview) -> bytes:
    """THE transcript hash chain: state' = sha256(state | pos | T | d | int64 LE rows). A stage advances it per
    FORWARD it answers, a head per FORWARD it sends, `parse_stage_check` over a payload's frames: one rule."""
    h = hashlib.sha256(state)
    h.update(FRAME.pack(pos, T, d))
    h.update(rows)
    return h.digest()


def stage_output_hash(rows: np.ndarray) -> int:
    """THE hash of a FORWARD's output rows (T x d int64) that a receipt signs and a stage-check jury reveals."""
    T, d = rows.shape
    h = hashlib.sha256(STAGE_OUTPUT_TAG)
    h.update(FRAME.pack(0, T, d))
    h.update(np.ascontiguousarray(rows, dtype="<i8").data)
    return as_field(h.digest())


def rows_payload(rows: np.ndarray) -> bytes:
    """A stage check's output payload (what a jury head stores and reveals the CID of): T u32 | d u32 | int64 LE."""
    T, d = rows.shape
    return FRAME.pack(0, T, d) + np.ascontiguousarray(rows, dtype="<i8").tobytes()


@dataclass(frozen=True)
class Receipt:
    """A stage's signed claim: after the transcript hashing to `input_hash`, it returned rows hashing to `output_hash`."""

    input_hash: int
    output_hash: int
    signature: bytes

    def pack(self) -> bytes:
        return RECEIPT.pack(self.input_hash.to_bytes(32, "big"), self.output_hash.to_bytes(32, "big"), self.signature)

    @classmethod
    def unpack(cls, raw: bytes | memoryview) -> Receipt:
        ih, oh, sig = RECEIPT.unpack(raw)
        return cls(int.from_bytes(ih, "big"), int.from_bytes(oh, "big"), bytes(sig))


@dataclass(frozen=True)
class StageSigner:
    """Injected into a StageServer: the receipts' context and `sign(input_hash, output_hash) -> 65-byte signature`
    (the node's key; the digest binds chain id and registry, `verinfer.node.lmstage.receipt_signer`)."""

    context: StageContext
    sign: Callable[[int, int], bytes]


#: head side: `verify(endpoint, context, receipt)` is True when the receipt is signed by that endpoint's operator
ReceiptVerifier = Callable[[str, StageContext, Receipt], bool]


@dataclass(frozen=True)
class StageCheck:
    """A decoded stage-check payload: the transcript a stage received, up to the disputed FORWARD (the last)."""

    context: StageContext
    frames: tuple[tuple[int, np.ndarray], ...]  # (pos, T x d int64 rows), in order
    input_hash: int


#: the parser's own bound on a stage-check payload (a node's 1 MiB input limit is lower: ~226 positions at d=576)
MAX_STAGE_CHECK_BYTES = 64 << 20


def encode_stage_check(context: StageContext, frames: Sequence[tuple[int, np.ndarray]]) -> bytes:
    """The stage-check payload: magic | model id | lo | hi | shard | n | n x (pos | T | d | int64 LE rows)."""
    parts = [STAGE_CHECK_MAGIC, CTX.pack(context.model_id, context.lo, context.hi, context.shard, len(frames))]
    for pos, rows in frames:
        T, d = rows.shape
        parts += [FRAME.pack(pos, T, d), np.ascontiguousarray(rows, dtype="<i8").tobytes()]
    return b"".join(parts)


def is_stage_check(payload: bytes) -> bool:
    return payload[:len(STAGE_CHECK_MAGIC)] == STAGE_CHECK_MAGIC


def parse_stage_check(payload: bytes, d_model: int, n_layers: int, context_length: int) -> StageCheck:
    """Decode and hash a stage-check payload; every defect is InvalidInputError (INVALID_INPUT on the market).

    The frames must be a session a stage could have answered: the first at pos 0, each next one continuing
    the previous (pos + T), d = d_model, within the context; lo < hi <= n_layers. The payload's hash is the
    transcript chain (`transcript_step`) from the context's genesis, so it equals a stage's receipt inputHash."""
    if not is_stage_check(payload):
        raise InvalidInputError("not a stage-check payload")
    if len(payload) > MAX_STAGE_CHECK_BYTES:
        raise InvalidInputError(f"stage-check payload exceeds {MAX_STAGE_CHECK_BYTES} bytes")
    off = len(STAGE_CHECK_MAGIC)
    if len(payload) < off + CTX.size:
        raise InvalidInputError("stage-check payload truncated in its header")
    model_id, lo, hi, shard, n = CTX.unpack_from(payload, off)
    off += CTX.size
    if not 0 <= lo < hi <= n_layers:
        raise InvalidInputError(f"stage-check layers {lo}:{hi} are not a range of the model's {n_layers} layers")
    if n < 1:
        raise InvalidInputError("stage-check transcript has no FORWARD")
    ctx = StageContext(model_id, lo, hi, shard)
    state = ctx.genesis()
    frames = []
    expect = 0
    view = memoryview(payload)
    for i in range(n):
        if len(payload) < off + FRAME.size:
            raise InvalidInputError(f"stage-check frame {i} truncated")
        pos, T, d = FRAME.unpack_from(payload, off)
        off += FRAME.size
        if d != d_model or T < 1 or pos != expect or pos + T > context_length:
            raise InvalidInputError(f"stage-check frame {i}: pos {pos}, T {T}, d {d} does not continue a session "
                                    f"(expected pos {expect}, d {d_model}, context {context_length})")
        size = 8 * T * d
        if len(payload) < off + size:
            raise InvalidInputError(f"stage-check frame {i} truncated")
        raw = view[off:off + size]
        state = transcript_step(state, pos, T, d, raw)
        frames.append((pos, np.frombuffer(raw, dtype="<i8").reshape(T, d).astype(np.int64)))
        off += size
        expect = pos + T
    if off != len(payload):
        raise InvalidInputError(f"stage-check payload has {len(payload) - off} trailing bytes")
    return StageCheck(ctx, tuple(frames), as_field(state))


def replay_stage_check(model: IntModel, check: StageCheck) -> np.ndarray:
    """Re-run the transcript on a fresh cache with layers lo..hi: the disputed (last) FORWARD's output rows.

    Bit-identical to what an honest stage returned (integer profile), whoever runs it: a stage-check jury head
    (`verinfer.node.lmstage`) and the auditor both call this."""
    lo, hi = check.context.lo, check.context.hi
    if (model.lo, model.hi) != (lo, hi):
        raise PipelineError(f"replaying layers {lo}:{hi} needs a model of exactly those, got {model.lo}:{model.hi}")
    cache = IntCache()
    out = check.frames[0][1]
    for pos, rows in check.frames:
        out = model.forward(rows, cache, pos)
    return out


# ------------------------------------------------------------------ shards on disk / in the store

def shard_bytes(model: IntModel) -> bytes:
    """A stage's (possibly EE-transformed) prepared layers as one .npz: what a stage node loads."""
    arrays: dict[str, np.ndarray] = {"config": np.frombuffer(json.dumps(
        {"cfg": model.cfg.to_json(), "lo": model.lo, "hi": model.hi}).encode(), dtype=np.uint8)}
    for i, b in model.blocks.items():
        for name in ("attn_norm", "ffn_norm"):
            n: IntNorm = getattr(b, name)
            arrays[f"{i}.{name}.g"] = n.g
            arrays[f"{i}.{name}.eps"] = np.array([n.eps_q60], dtype=np.int64)
            if n.b is not None:
                arrays[f"{i}.{name}.b"] = n.b
        for name in ("q", "k", "v", "o", "up", "down", "gate"):
            lin: IntLinear | None = getattr(b, name)
            if lin is None:
                continue
            q = lin.q.astype(np.int8) if lin.q.dtype == np.float64 else lin.q.astype(np.uint8)
            arrays[f"{i}.{name}.q"] = q
            arrays[f"{i}.{name}.d"] = lin.d
            if lin.m is not None:
                arrays[f"{i}.{name}.m"] = lin.m
            if lin.bias is not None:
                arrays[f"{i}.{name}.bias"] = lin.bias
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def load_shard(data: bytes) -> IntModel:
    """Inverse of `shard_bytes` (no pickles): an IntModel holding only layers lo..hi-1."""
    z = np.load(io.BytesIO(data), allow_pickle=False)
    meta = json.loads(bytes(z["config"]).decode())
    cfg = LlmConfig(**meta["cfg"])
    model = IntModel.__new__(IntModel)
    model.cfg, model.lo, model.hi, model.has_globals = cfg, meta["lo"], meta["hi"], False
    model.blocks = {}

    def lin(i: int, name: str) -> IntLinear:
        q = z[f"{i}.{name}.q"]
        qf = q.astype(np.float64) if q.dtype == np.int8 else q.astype(np.float32)
        return IntLinear(qf, z[f"{i}.{name}.d"], z.get(f"{i}.{name}.m"), z.get(f"{i}.{name}.bias"))

    def norm(i: int, name: str) -> IntNorm:
        b = z.get(f"{i}.{name}.b")
        return IntNorm(z[f"{i}.{name}.g"], b, int(z[f"{i}.{name}.eps"][0]), b is not None)

    for i in range(model.lo, model.hi):
        model.blocks[i] = IntBlock(norm(i, "attn_norm"), norm(i, "ffn_norm"), lin(i, "q"), lin(i, "k"), lin(i, "v"),
                                   lin(i, "o"), lin(i, "up"), lin(i, "down"),
                                   lin(i, "gate") if f"{i}.gate.q" in z else None)
    if cfg.arch == "llama" and model.blocks:
        from verinfer.inference.llama_int import rope_table
        model.cos, model.sin = rope_table(cfg.rope_base, cfg.head_dim, cfg.context_length)
    return model


# ------------------------------------------------------------------ stage server

@dataclass
class _Session:
    cache: IntCache
    transcript: bytes  # transcript hash so far (`transcript_step`), b"" without a signer


class StageServer:
    """Serves one layer range over TCP; a per-session KV cache (LRU-bounded).

    `adversary` turns this into a misbehaving stage for tests and benchmarks (an honest node never sets
    it): "lie:N" corrupts outputs from the N-th FORWARD on (one coordinate +1.0), "swap:N" reverses the last
    position's hidden vector (changes the tokens), "garbage:N" returns a wrong shape,
    "stall:N" stops answering, "die:N" exits the process.
    """

    def __init__(self, model: IntModel, host: str = "127.0.0.1", port: int = 0, *, max_sessions: int = 16,
                 adversary: str | None = None, info: dict[str, Any] | None = None,
                 signer: StageSigner | None = None) -> None:
        self.model = model
        self.signer = signer  # signs a receipt per answered FORWARD (None: the receipt field is all zero)
        if signer is not None and (signer.context.lo, signer.context.hi) != (model.lo, model.hi):
            raise PipelineError(f"receipts for layers {signer.context.lo}:{signer.context.hi}, model holds "
                                f"{model.lo}:{model.hi}")
        self.sessions: OrderedDict[bytes, _Session] = OrderedDict()
        self.max_sessions = max_sessions
        self.lock = threading.Lock()
        self.forwards = 0
        self.adversary = adversary
        self.info = {"layers": [model.lo, model.hi], "d_model": model.cfg.d_model, **(info or {})}
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    while True:
                        kind, payload = recv_frame(self.request)
                        server._serve(self.request, kind, payload)
                except (ConnectionError, OSError, struct.error):
                    return

        class TCP(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.tcp = TCP((host, port), Handler)
        self.port = self.tcp.server_address[1]
        self.thread: threading.Thread | None = None

    def _misbehave(self, out: np.ndarray) -> np.ndarray:
        if not self.adversary:
            return out
        what, _, n = self.adversary.partition(":")
        if self.forwards < int(n or 0):
            return out
        if what == "lie":
            bad = out.copy()
            bad[-1, 0] += 1 << 16
            return bad
        if what == "swap":  # a plausible-looking lie that changes the tokens: the last position's vector reversed
            bad = out.copy()
            bad[-1] = bad[-1, ::-1]
            return bad
        if what == "garbage":
            return out[:, :-1]
        if what == "stall":
            time.sleep(3600)
        if what == "die":
            os._exit(3)
        return out

    def _serve(self, sock: socket.socket, kind: int, payload: bytes) -> None:
        if kind == HELLO:
            send_frame(sock, OK, json.dumps(self.info).encode())
            return
        if kind == END:
            with self.lock:
                self.sessions.pop(payload[:16], None)
            send_frame(sock, OK, b"{}")
            return
        if kind != FORWARD or len(payload) < FWD.size:
            send_frame(sock, ERR, b"unknown or short frame")
            return
        sid, pos, T, d = FWD.unpack_from(payload)
        if d != self.model.cfg.d_model or T < 1 or len(payload) != FWD.size + 8 * T * d:
            send_frame(sock, ERR, f"bad FORWARD shape T={T} d={d}".encode())
            return
        h = np.frombuffer(payload, dtype="<i8", offset=FWD.size).reshape(T, d).astype(np.int64)
        with self.lock:
            sess = self.sessions.get(sid)
            if pos == 0 or sess is None:  # a FORWARD at pos 0 (re)starts the session: cache and transcript
                sess = _Session(IntCache(), self.signer.context.genesis() if self.signer else b"")
                self.sessions[sid] = sess
                while len(self.sessions) > self.max_sessions:
                    self.sessions.popitem(last=False)
            self.sessions.move_to_end(sid)
        t0 = time.perf_counter()
        try:
            out = self.model.forward(h, sess.cache, pos)
        except LlmError as exc:
            send_frame(sock, ERR, str(exc).encode())
            return
        us = int((time.perf_counter() - t0) * 1e6)
        self.forwards += 1
        out = np.ascontiguousarray(self._misbehave(out), dtype="<i8")
        receipt = NO_RECEIPT
        if self.signer is not None:  # the transcript advances only by FORWARDs answered (a liar signs its lie)
            sess.transcript = transcript_step(sess.transcript, pos, T, d, memoryview(payload)[FWD.size:])
            ih, oh = as_field(sess.transcript), stage_output_hash(out)
            receipt = Receipt(ih, oh, self.signer.sign(ih, oh)).pack()
        send_frame(sock, HIDDEN, [HID.pack(us, *out.shape), out.tobytes(), receipt])

    def start(self) -> StageServer:
        self.thread = threading.Thread(target=self.tcp.serve_forever, daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()


# ------------------------------------------------------------------ the head (requester) side

class StageConn:
    """One TCP connection to a stage endpoint "host:port".

    With a `context` (and `verify`) it checks every answer's receipt: the inputHash must be the hash of what this
    connection sent since the last pos-0 FORWARD, the outputHash that of the rows received, the signature the
    endpoint operator's (`verify`); anything else is an `unsigned` fault. It keeps that transcript and the last
    receipt: the evidence a head needs to dispute a lie (`evidence`)."""

    def __init__(self, endpoint: str, timeout: float, *, context: StageContext | None = None,
                 verify: ReceiptVerifier | None = None) -> None:
        self.endpoint = endpoint
        self.context, self.verify = context, verify
        self.frames: list[tuple[int, np.ndarray]] = []  # the session transcript this connection sent
        self.transcript = context.genesis() if context is not None else b""
        self.receipt: Receipt | None = None  # of the last answer
        host, _, port = endpoint.rpartition(":")
        try:
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError as exc:
            raise StageFault("down", f"{endpoint}: {exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)

    def call(self, kind: int, payload: bytes | Sequence[bytes]) -> tuple[int, bytes]:
        try:
            send_frame(self.sock, kind, payload)
            return recv_frame(self.sock)
        except TimeoutError:
            raise StageFault("stall", f"{self.endpoint} did not answer in time") from None
        except (ConnectionError, OSError) as exc:
            raise StageFault("down", f"{self.endpoint}: {exc}") from None

    def hello(self) -> dict[str, Any]:
        kind, body = self.call(HELLO, b"")
        if kind != OK:
            raise StageFault("error", f"{self.endpoint}: {body[:200]!r}")
        return json.loads(body)

    def forward(self, sid: bytes, pos: int, h: np.ndarray) -> tuple[np.ndarray, int]:
        T, d = h.shape
        rows = np.ascontiguousarray(h, dtype="<i8")
        kind, body = self.call(FORWARD, [FWD.pack(sid, pos, T, d), rows.tobytes()])
        if kind == ERR:
            raise StageFault("error", f"{self.endpoint}: {body.decode(errors='replace')[:200]}")
        if kind != HIDDEN or len(body) < HID.size:
            raise StageFault("garbage", f"{self.endpoint}: unexpected frame {kind}")
        us, t2, d2 = HID.unpack_from(body)
        end = HID.size + 8 * t2 * d2
        if (t2, d2) != (T, d) or len(body) != end + RECEIPT.size:
            raise StageFault("garbage", f"{self.endpoint}: answered shape ({t2}, {d2}) for ({T}, {d})")
        out = np.frombuffer(body, dtype="<i8", offset=HID.size, count=T * d).reshape(T, d).astype(np.int64)
        if self.context is not None:
            self._check_receipt(pos, rows, out, Receipt.unpack(memoryview(body)[end:]))
        return out, us

    def _check_receipt(self, pos: int, rows: np.ndarray, out: np.ndarray, receipt: Receipt) -> None:
        assert self.context is not None
        T, d = rows.shape
        state = transcript_step(self.context.genesis() if pos == 0 else self.transcript, pos, T, d, rows.data)
        why = ("its inputHash is not the transcript's" if receipt.input_hash != as_field(state)
               else "its outputHash is not the rows'" if receipt.output_hash != stage_output_hash(out)
               else "the signature is not the operator's" if self.verify is not None
               and not self.verify(self.endpoint, self.context, receipt) else "")
        if why:
            raise StageFault("unsigned", f"{self.endpoint}: receipt rejected: {why}")
        if pos == 0:
            self.frames = []
        self.frames.append((pos, rows))
        self.transcript, self.receipt = state, receipt

    def evidence(self) -> tuple[Receipt | None, tuple[tuple[int, np.ndarray], ...]]:
        """The last receipt and the transcript it covers (empty without receipts)."""
        return self.receipt, tuple(self.frames)

    def end(self, sid: bytes) -> None:
        try:
            self.call(END, sid)
        except StageFault:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@dataclass
class Fault:
    """Evidence for the market: which endpoint of which stage misbehaved, how, and at which step."""

    stage: int
    endpoint: str
    kind: str
    step: int
    detail: str = ""
    receipt: Receipt | None = None  # for a lie: the stage's signed receipt of the lying answer
    frames: tuple[tuple[int, np.ndarray], ...] = ()  # ... and the transcript it covers (the stage-check input)
    context: StageContext | None = None


@dataclass
class RunResult:
    tokens: list[int]
    faults: list[Fault] = field(default_factory=list)
    hop_rtt_us: list[int] = field(default_factory=list)  # decode-step round trips (all stages)
    hop_compute_us: list[int] = field(default_factory=list)
    ttft_s: float = 0.0
    total_s: float = 0.0
    recoveries_s: list[float] = field(default_factory=list)

    def hop_overhead_us(self) -> list[int]:
        return [r - c for r, c in zip(self.hop_rtt_us, self.hop_compute_us, strict=True)]


class _Stage:
    """The head's view of one stage: active replicas, spares, and the input history for replay."""

    def __init__(self, index: int, endpoints: Sequence[str], replicas: int, timeout: float,
                 context: StageContext | None = None, verify: ReceiptVerifier | None = None) -> None:
        self.index, self.timeout = index, timeout
        self.context, self.verify = context, verify
        self.queue = list(endpoints)
        self.active: list[StageConn] = []
        self.inputs: list[np.ndarray] = []  # every input sent, in order (positions 0..n)
        self.outputs: list[np.ndarray] = []
        self.replicas = replicas

    def next_conn(self) -> StageConn | None:
        while self.queue:
            ep = self.queue.pop(0)
            try:
                return StageConn(ep, self.timeout, context=self.context, verify=self.verify)
            except StageFault:
                continue
        return None


def run_pipeline(head: IntModel, prompt_ids: Sequence[int], stages: Sequence[Sequence[str]], max_new_tokens: int,
                 *, key: Any = None, replicas: int = 1, timeout: float = 30.0, session: bytes | None = None,
                 stop_at_eos: bool = False, contexts: Sequence[StageContext] | None = None,
                 verify: ReceiptVerifier | None = None) -> RunResult:
    """Greedy decoding with layers on remote stages; the head holds embedding, final norm and head.

    `stages[i]` lists endpoints for stage i: the first `replicas` are compared at every step (any
    difference is a lie: honest integer-profile replicas are bit-identical; with 2 replicas a spare
    breaks the tie), the rest are spares for failover. `key` (ee_llm.EEKey) encrypts the hidden
    states sent to stages whose weights were transformed with it. With `contexts` (one per stage) every answer
    must carry a receipt that `verify` accepts (else an `unsigned` fault and failover), and a lie's Fault carries
    the liar's receipt and transcript (the dispute evidence, `verinfer.node.lmstage`).
    """
    sid = session or os.urandom(16)
    if contexts is not None and len(contexts) != len(stages):
        raise PipelineError(f"{len(contexts)} receipt contexts for {len(stages)} stages")
    st = [_Stage(i, eps, replicas, timeout, contexts[i] if contexts else None, verify) for i, eps in enumerate(stages)]
    res = RunResult(tokens=[])
    t_start = time.perf_counter()
    for s in st:
        while len(s.active) < replicas and s.queue:  # fewer endpoints than replicas: compare what there is
            c = s.next_conn()
            if c is not None:
                s.active.append(c)
        if not s.active:
            raise PipelineError(f"stage {s.index}: no reachable endpoint")
    step = 0

    def replay(s: _Stage, conn: StageConn) -> None:
        """Rebuild a replacement's cache from the recorded inputs; its answers must match the record."""
        if not s.inputs:
            return
        out, _ = conn.forward(sid, 0, np.concatenate(s.inputs))
        if not np.array_equal(out, np.concatenate(s.outputs)):
            raise StageFault("lie", f"{conn.endpoint}: replayed prefix differs")

    def fault(s: _Stage, conn: StageConn, kind: str, detail: str) -> Fault:
        """A lie carries the liar's last receipt and transcript (its answer was receipt-checked before compared)."""
        receipt, frames = conn.evidence() if kind == "lie" else (None, ())
        return Fault(s.index, conn.endpoint, kind, step, detail, receipt, frames, s.context if receipt else None)

    def replace(s: _Stage, bad: StageConn, kind: str, detail: str) -> StageConn:
        res.faults.append(Fault(s.index, bad.endpoint, kind, step, detail))
        bad.close()
        t0 = time.perf_counter()
        while True:
            c = s.next_conn()
            if c is None:
                raise PipelineError(f"stage {s.index}: every endpoint failed (last: {kind}: {detail})")
            try:
                replay(s, c)
            except StageFault as exc:
                res.faults.append(fault(s, c, exc.kind, str(exc)))
                c.close()
                continue
            res.recoveries_s.append(time.perf_counter() - t0)
            return c

    def call_stage(s: _Stage, pos: int, h: np.ndarray, decode: bool) -> np.ndarray:
        answers: list[tuple[StageConn, np.ndarray]] = []
        j = 0
        while j < len(s.active):
            conn = s.active[j]
            try:
                t0 = time.perf_counter()
                out, us = conn.forward(sid, pos, h)
                if decode:
                    res.hop_rtt_us.append(int((time.perf_counter() - t0) * 1e6))
                    res.hop_compute_us.append(us)
                answers.append((conn, out))
                j += 1
            except StageFault as exc:
                try:
                    s.active[j] = replace(s, conn, exc.kind, str(exc))
                except PipelineError:
                    if len(s.active) == 1:
                        raise
                    # no spare left but another replica answers: continue with fewer (the fault is recorded)
                    s.active.pop(j)
        ref = answers[0][1]
        if all(np.array_equal(a, ref) for _, a in answers):
            s.inputs.append(h)
            s.outputs.append(ref)
            return ref
        # replicas disagree: get a tie-breaker if needed, majority wins, minority is reported as lying
        while len(answers) == 2:
            extra = s.next_conn()
            if extra is None:
                raise PipelineError(f"stage {s.index}: replicas disagree and no spare can break the tie")
            try:
                replay(s, extra)
                out, _ = extra.forward(sid, pos, h)
            except StageFault as exc:  # a spare that fails is recorded and the next one tried
                res.faults.append(fault(s, extra, exc.kind, str(exc)))
                extra.close()
                continue
            s.active.append(extra)
            answers.append((extra, out))
        keyed = [a.tobytes() for _, a in answers]
        best = max(set(keyed), key=keyed.count)
        if keyed.count(best) * 2 <= len(answers):
            raise PipelineError(f"stage {s.index}: no majority among {len(answers)} replicas")
        good = answers[keyed.index(best)][1]
        keep = []
        for (conn, _), kb in zip(answers, keyed, strict=True):
            if kb != best:
                res.faults.append(fault(s, conn, "lie", "output differs from the majority"))
                conn.close()
            else:
                keep.append(conn)
        s.active = keep[:max(replicas, 1)]
        s.inputs.append(h)
        s.outputs.append(good)
        return good

    def through(h: np.ndarray, pos: int, decode: bool) -> np.ndarray:
        x = key.encrypt_hidden(h) if key is not None else h
        for s in st:
            x = call_stage(s, pos, x, decode)
        return key.decrypt_hidden(x) if key is not None else x

    try:
        # `step` (read by the fault records above) is the index of the last token emitted when a stage is called
        for step, tok in enumerate(greedy_tokens(head, prompt_ids, max_new_tokens, through, stop_at_eos)):
            if step == 0:
                res.ttft_s = time.perf_counter() - t_start
            res.tokens.append(tok)
    finally:
        for s in st:
            for c in s.active:
                c.end(sid)
                c.close()
    res.total_s = time.perf_counter() - t_start
    return res


def greedy_tokens(head: IntModel, prompt_ids: Sequence[int], max_new_tokens: int,
                  through: Callable[[np.ndarray, int, bool], np.ndarray], stop_at_eos: bool) -> Iterator[int]:
    """THE decoding loop (greedy, integer profile), whoever runs the layers: `through(h, pos, decode)` maps the
    embedded positions pos.. through every layer (remote stages in `run_pipeline`, one process in `run_local`),
    so the sharded run and an auditor's single-process re-run cannot decode differently. Stops after
    `max_new_tokens` or, with `stop_at_eos`, after emitting EOS (the EOS id is part of the output)."""
    ids = [int(i) for i in prompt_ids]
    h = through(head.embed(ids, 0), 0, False)
    pos = len(ids)
    for step in range(max_new_tokens):
        tok = head.next_token(h[-1])
        yield tok
        if step == max_new_tokens - 1 or (stop_at_eos and tok == head.cfg.eos_id):
            return
        h = through(head.embed([tok], pos), pos, True)
        pos += 1


def run_local(spec: Any, model: IntModel, prompt_ids: Sequence[int]) -> list[int]:
    """A market request's tokens in one process (every layer in `model`): what the committee heads' sharded
    `run_request(..., stop_at_eos=True)` gives, bit for bit (the integer profile does not depend on where a
    layer runs). The auditor re-executes LLM requests with it. InvalidInputError as `run_request`."""
    if model.lo != 0 or model.hi != model.cfg.n_layers or not model.has_globals:
        raise PipelineError(f"run_local needs every layer and the globals, got layers {model.lo}:{model.hi}")
    spec.check_prompt(list(prompt_ids), spec.max_new_tokens)
    cache = IntCache()
    return list(greedy_tokens(model, prompt_ids, spec.max_new_tokens,
                              lambda h, pos, decode: model.forward(h, cache, pos), stop_at_eos=True))


def run_request(spec: Any, head: IntModel, prompt_ids: Sequence[int], stages: Sequence[Sequence[str]],
                max_new_tokens: int, **kw: Any) -> RunResult:
    """What a node calls: validate the prompt (InvalidInputError → INVALID_INPUT), then run the pipeline."""
    spec.check_prompt(list(prompt_ids), max_new_tokens)
    return run_pipeline(head, prompt_ids, stages, max_new_tokens, **kw)


def tokens_hash(tokens: Sequence[int]) -> int:
    """The output hash consensus compares for an LM request (the same one the textgenrnn path uses)."""
    from verinfer.models.hashing import hash_vector

    return hash_vector([int(t) for t in tokens], 32)


# ------------------------------------------------------------------ stage process entry point

def main(argv: Sequence[str] | None = None) -> int:
    """`python -m verinfer.inference.pipeline --shard FILE --port P`: serve one stage until killed."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--shard", required=True, help=".npz written by shard_bytes")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--adversary", default=None, help="test/benchmark only: lie:N | swap:N | garbage:N | stall:N | die:N")
    a = ap.parse_args(argv)
    with open(a.shard, "rb") as f:
        model = load_shard(f.read())
    srv = StageServer(model, a.host, a.port, adversary=a.adversary)
    print(f"stage layers {model.lo}:{model.hi} listening on {a.host}:{srv.port}", flush=True)
    srv.tcp.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
