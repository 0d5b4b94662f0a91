"""The node's durable memory (`<state-dir>/node.db`, SQLite).

Everything the node must not forget across a kill -9 lives here: the event cursor, and per
request the phase, the computed output (hash + CID) and the commit salt. The salt and output are
written *before* the commit transaction is sent, so a restarted node can always reveal what it
committed; the phase is then reconciled with the chain's `getReveal`, so it never commits twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterator


class Phase(str, Enum):
    """Per-request lifecycle; order matters (a request only moves forward)."""

    SEEN = "seen"  # event stored, nothing computed yet
    READY = "ready"  # output + salt persisted, commit not yet confirmed on-chain
    COMMITTED = "committed"  # our commitment is on-chain
    REVEALED = "revealed"  # our reveal is on-chain
    FINALIZED = "finalized"  # the request is settled (by anyone)
    DONE = "done"  # settled and, if applicable, proven: nothing left to do
    MISSED = "missed"  # a window closed before we could act (e.g. down for too long)


TERMINAL = (Phase.DONE, Phase.MISSED)


@dataclass
class RequestRecord:
    """One request this node is a committee member of, as persisted."""

    request_id: int
    model_id: str
    input_cid: str
    input_hash: str
    fee: int
    committee: list[str]
    commit_deadline: int
    reveal_deadline: int
    seen_block: int
    phase: Phase = Phase.SEEN
    output_hash: str | None = None
    output_cid: str | None = None
    salt: str | None = None
    invalid_reason: str | None = None
    txs: dict[str, str] = field(default_factory=dict)
    last_error: str | None = None
    attempts: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "RequestRecord":
        return cls(
            request_id=int(row["request_id"]),
            model_id=row["model_id"],
            input_cid=row["input_cid"],
            input_hash=row["input_hash"],
            fee=int(row["fee"]),
            committee=json.loads(row["committee"]),
            commit_deadline=int(row["commit_deadline"]),
            reveal_deadline=int(row["reveal_deadline"]),
            seen_block=int(row["seen_block"]),
            phase=Phase(row["phase"]),
            output_hash=row["output_hash"],
            output_cid=row["output_cid"],
            salt=row["salt"],
            invalid_reason=row["invalid_reason"],
            txs=json.loads(row["txs"] or "{}"),
            last_error=row["last_error"],
            attempts=int(row["attempts"]),
        )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    request_id INTEGER PRIMARY KEY,
    model_id TEXT NOT NULL,
    input_cid TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    fee TEXT NOT NULL,
    committee TEXT NOT NULL,
    commit_deadline INTEGER NOT NULL,
    reveal_deadline INTEGER NOT NULL,
    seen_block INTEGER NOT NULL,
    phase TEXT NOT NULL,
    output_hash TEXT,
    output_cid TEXT,
    salt TEXT,
    invalid_reason TEXT,
    txs TEXT NOT NULL DEFAULT '{}',
    last_error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_phase ON requests(phase);
"""


class NodeState:
    """SQLite-backed store; every write is its own committed transaction (durable before the next tx)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # salts must survive power loss, not just kill -9
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
                """INSERT OR IGNORE INTO requests(request_id, model_id, input_cid, input_hash, fee, committee,
                   commit_deadline, reveal_deadline, seen_block, phase, updated_at)
                   VALUES(?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    rec.request_id,
                    rec.model_id,
                    rec.input_cid,
                    rec.input_hash,
                    str(rec.fee),
                    json.dumps(rec.committee),
                    rec.commit_deadline,
                    rec.reveal_deadline,
                    rec.seen_block,
                    rec.phase.value,
                    time.time(),
                ),
            )
            return cur.rowcount == 1

    def get_request(self, request_id: int) -> RequestRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return RequestRecord.from_row(row) if row else None

    def active(self) -> list[RequestRecord]:
        """Requests with work left, oldest first."""
        marks = ",".join("?" for _ in TERMINAL)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM requests WHERE phase NOT IN ({marks}) ORDER BY request_id",
                [p.value for p in TERMINAL],
            ).fetchall()
        return [RequestRecord.from_row(r) for r in rows]

    def all(self) -> Iterator[RequestRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM requests ORDER BY request_id").fetchall()
        return iter([RequestRecord.from_row(r) for r in rows])

    def count_by_phase(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT phase, COUNT(*) AS n FROM requests GROUP BY phase").fetchall()
        return {r["phase"]: int(r["n"]) for r in rows}

    def set_output(self, request_id: int, output_hash: str, output_cid: str, salt: str, invalid_reason: str | None) -> None:
        """Persist the computed output and salt and move to READY — must happen before commit."""
        with self._lock:
            self._db.execute(
                """UPDATE requests SET output_hash=?, output_cid=?, salt=?, invalid_reason=?, phase=?, updated_at=?
                   WHERE request_id=? AND salt IS NULL""",
                (output_hash, output_cid, salt, invalid_reason, Phase.READY.value, time.time(), request_id),
            )

    def set_phase(self, request_id: int, phase: Phase) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE requests SET phase=?, last_error=NULL, updated_at=? WHERE request_id=?",
                (phase.value, time.time(), request_id),
            )

    def record_tx(self, request_id: int, kind: str, tx_hash: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT txs FROM requests WHERE request_id=?", (request_id,)).fetchone()
            txs = json.loads(row["txs"] or "{}") if row else {}
            txs[kind] = tx_hash
            self._db.execute(
                "UPDATE requests SET txs=?, updated_at=? WHERE request_id=?", (json.dumps(txs), time.time(), request_id)
            )

    def record_error(self, request_id: int, message: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE requests SET last_error=?, attempts=attempts+1, updated_at=? WHERE request_id=?",
                (message[:500], time.time(), request_id),
            )
