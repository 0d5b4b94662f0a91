"""The node's durable memory (`<state-dir>/node.db`, SQLite).

Everything the node must not forget across a kill -9 lives here: the event cursor, and per
request the phase, the computed output (hash + CID) and the commit salt. The output and salt are
written before the commit transaction is sent; the salt is derived from the operator key and the
request id (NodeChain.salt_for) and an honest output is deterministic, so even a lost row is
recomputed to the same commitment; `AlreadyCommitted` tells a restarted node it committed.

Every phase change is one call, `NodeState.transition`, which checks the phase it moves from
and returns the record as stored (no write-then-reread): two threads can never move one request
twice, and a stale record can never move a request backwards.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Sequence

from verinfer.errors import ConfigError


class Phase(str, Enum):
    """Per-request lifecycle; a request only moves forward (NOT_MEMBER may return to SEEN on a redraw)."""

    SEEN = "seen"  # InferenceRequested stored; membership not known or output not computed yet
    READY = "ready"  # output + salt persisted, commit not yet confirmed on-chain
    COMMITTED = "committed"  # our commitment is on-chain
    REVEALED = "revealed"  # our reveal is on-chain; waiting for settlement (and maybe a proof)
    DONE = "done"  # settled (by anyone): nothing left to do
    MISSED = "missed"  # a window closed before we could act (e.g. down for too long)
    NOT_MEMBER = "not_member"  # the committee (preview or drawn) does not include us


TERMINAL = (Phase.DONE, Phase.MISSED, Phase.NOT_MEMBER)


@dataclass
class RequestRecord:
    """One request of a model this node serves, as persisted (ids and hashes typed, not hex strings)."""

    request_id: int
    model_id: bytes
    input_cid: str
    input_hash: int
    fee: int
    replicas: int
    draw_block: int
    commit_deadline: int
    reveal_deadline: int
    seen_block: int
    committee: list[str] = field(default_factory=list)  # empty until previewed / drawn
    phase: Phase = Phase.SEEN
    output_hash: int | None = None
    output_cid: str | None = None
    salt: bytes | None = None
    invalid_reason: str | None = None
    txs: dict[str, str] = field(default_factory=dict)
    last_error: str | None = None
    attempts: int = 0
    proof: str = ""  # "" | queued | submitted | skipped:<why>

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "RequestRecord":
        return cls(
            request_id=int(row["request_id"]),
            model_id=bytes.fromhex(row["model_id"]),
            input_cid=row["input_cid"],
            input_hash=int(row["input_hash"], 16),
            fee=int(row["fee"]),
            replicas=int(row["replicas"]),
            draw_block=int(row["draw_block"]),
            commit_deadline=int(row["commit_deadline"]),
            reveal_deadline=int(row["reveal_deadline"]),
            seen_block=int(row["seen_block"]),
            committee=json.loads(row["committee"]),
            phase=Phase(row["phase"]),
            output_hash=int(row["output_hash"], 16) if row["output_hash"] is not None else None,
            output_cid=row["output_cid"],
            salt=bytes.fromhex(row["salt"]) if row["salt"] is not None else None,
            invalid_reason=row["invalid_reason"],
            txs=json.loads(row["txs"] or "{}"),
            last_error=row["last_error"],
            attempts=int(row["attempts"]),
            proof=row["proof"] or "",
        )

    @property
    def output_hash_hex(self) -> str:
        return f"{self.output_hash:#066x}" if self.output_hash is not None else ""


# Table name carries the schema version: a state dir from an older node starts a fresh table.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests_v2 (
    request_id INTEGER PRIMARY KEY,
    model_id TEXT NOT NULL,
    input_cid TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    fee TEXT NOT NULL,
    replicas INTEGER NOT NULL,
    draw_block INTEGER NOT NULL,
    commit_deadline INTEGER NOT NULL,
    reveal_deadline INTEGER NOT NULL,
    seen_block INTEGER NOT NULL,
    committee TEXT NOT NULL DEFAULT '[]',
    phase TEXT NOT NULL,
    output_hash TEXT,
    output_cid TEXT,
    salt TEXT,
    invalid_reason TEXT,
    txs TEXT NOT NULL DEFAULT '{}',
    last_error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    proof TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_v2_phase ON requests_v2(phase);
"""

_FIELDS = {"committee", "output_hash", "output_cid", "salt", "invalid_reason", "proof",
           "commit_deadline", "reveal_deadline"}  # deadlines: set from CommitteeDrawn (windows count from the draw)


def _encode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "committee":
        return json.dumps(list(value))
    if name == "output_hash":
        return f"{int(value):064x}"
    if name == "salt":
        return bytes(value).hex()
    return value


class NodeState:
    """SQLite-backed store; every write is its own committed transaction (durable before the next tx)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives kill -9 (every commit is in the WAL before the call returns). Nothing here needs
        # an fsync: the commit salt is derived from the operator key (NodeChain.salt_for) and an honest output
        # is deterministic, so a lost row is recomputed. Fsync per write serialized the node under load
        # (200 requests in 10 s: discovery waited 15 s for the lock, issue 7 attack 13).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def bind_deployment(self, deployment: str) -> None:
        """Refuse a state dir recorded for another deployment (request ids restart at 1 on every deployment).

        Without this a node restarted on a fresh devnet with an old state dir takes the new chain's requests for
        ones it already handled and serves none of them (seen: 200/200 Expired in benchmarks/bench_load.py)."""
        recorded = self.get("deployment")
        if recorded is None:
            self.put("deployment", deployment)
        elif recorded != deployment:
            raise ConfigError(f"state dir {self.path.parent} belongs to another deployment ({recorded}, this chain: "
                              f"{deployment}): use a fresh --state-dir or remove that one")

    # --- key/value (cursor, bookkeeping) ---------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    # CursorStore protocol (verinfer.chain.EventCursor persists its next block here).
    def load(self, key: str) -> int | None:
        v = self.get(f"cursor:{key}")
        return int(v) if v is not None else None

    def save(self, key: str, block: int) -> None:
        self.put(f"cursor:{key}", int(block))

    # --- requests -------------------------------------------------------------------------

    def add_request(self, rec: RequestRecord) -> bool:
        """Insert a newly seen request; False if already known (events can be re-delivered)."""
        with self._lock:
            cur = self._db.execute(
                """INSERT OR IGNORE INTO requests_v2(request_id, model_id, input_cid, input_hash, fee, replicas,
                   draw_block, commit_deadline, reveal_deadline, seen_block, committee, phase, updated_at)
                   VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    rec.request_id, rec.model_id.hex(), rec.input_cid, f"{rec.input_hash:064x}", str(rec.fee),
                    rec.replicas, rec.draw_block, rec.commit_deadline, rec.reveal_deadline, rec.seen_block,
                    json.dumps(rec.committee), rec.phase.value, time.time(),
                ),
            )
            return cur.rowcount == 1

    def get_request(self, request_id: int) -> RequestRecord | None:
        with self._lock:
            return self._get(request_id)

    def _get(self, request_id: int) -> RequestRecord | None:
        row = self._db.execute("SELECT * FROM requests_v2 WHERE request_id = ?", (request_id,)).fetchone()
        return RequestRecord.from_row(row) if row else None

    def transition(
        self, request_id: int, to: Phase, *, expect: Phase | Sequence[Phase] | None = None, error: str | None = None,
        **values: Any,
    ) -> RequestRecord | None:
        """Move `request_id` to phase `to` (setting `values`) iff it is in `expect`; returns the stored record.

        None when the request is unknown or was not in an expected phase (someone else moved it).
        The salt and output are never overwritten once set (what was committed must stay revealable).
        `error` records why (e.g. the reason for MISSED); a successful move otherwise clears last_error.
        """
        bad = set(values) - _FIELDS
        if bad:
            raise ValueError(f"unknown record fields {sorted(bad)}")
        expected = [expect] if isinstance(expect, Phase) else list(expect or [])
        sets = ["phase=?", "updated_at=?", "last_error=?"]
        args: list[Any] = [to.value, time.time(), error[:500] if error else None]
        for name, value in values.items():
            if name in ("salt", "output_hash", "output_cid"):
                sets.append(f"{name}=COALESCE({name}, ?)")
            else:
                sets.append(f"{name}=?")
            args.append(_encode(name, value))
        where = "request_id=?"
        args.append(request_id)
        if expected:
            where += f" AND phase IN ({','.join('?' for _ in expected)})"
            args += [p.value for p in expected]
        with self._lock:
            cur = self._db.execute(f"UPDATE requests_v2 SET {', '.join(sets)} WHERE {where}", args)
            if cur.rowcount != 1:
                return None
            return self._get(request_id)

    def update(self, request_id: int, **values: Any) -> RequestRecord | None:
        """Set non-phase fields (committee, proof status) without a phase change."""
        bad = set(values) - _FIELDS
        if bad:
            raise ValueError(f"unknown record fields {sorted(bad)}")
        sets = [f"{n}=?" for n in values] + ["updated_at=?"]
        args = [_encode(n, v) for n, v in values.items()] + [time.time(), request_id]
        with self._lock:
            self._db.execute(f"UPDATE requests_v2 SET {', '.join(sets)} WHERE request_id=?", args)
            return self._get(request_id)

    def active(self) -> list[RequestRecord]:
        """Requests with work left, oldest first."""
        marks = ",".join("?" for _ in TERMINAL)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM requests_v2 WHERE phase NOT IN ({marks}) ORDER BY request_id",
                [p.value for p in TERMINAL],
            ).fetchall()
        return [RequestRecord.from_row(r) for r in rows]

    def all(self) -> Iterator[RequestRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM requests_v2 ORDER BY request_id").fetchall()
        return iter([RequestRecord.from_row(r) for r in rows])

    def count_by_phase(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT phase, COUNT(*) AS n FROM requests_v2 GROUP BY phase").fetchall()
        return {r["phase"]: int(r["n"]) for r in rows}

    def record_tx(self, request_id: int, kind: str, tx_hash: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT txs FROM requests_v2 WHERE request_id=?", (request_id,)).fetchone()
            txs = json.loads(row["txs"] or "{}") if row else {}
            txs[kind] = tx_hash
            self._db.execute(
                "UPDATE requests_v2 SET txs=?, updated_at=? WHERE request_id=?", (json.dumps(txs), time.time(), request_id)
            )

    def record_error(self, request_id: int, message: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE requests_v2 SET last_error=?, attempts=attempts+1, updated_at=? WHERE request_id=?",
                (message[:500], time.time(), request_id),
            )
