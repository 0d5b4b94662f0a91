"""SQLite schema of the explorer index. Raw events are the source of truth; entity tables are
derived from them by `verinfer.explorer.mapping` and can always be rebuilt from `events`."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

from verinfer.explorer import mapping

SCHEMA_VERSION = "4"

RAW_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL, contract TEXT NOT NULL,
  address TEXT NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL, request_id INTEGER, PRIMARY KEY (block, log_index));
CREATE INDEX IF NOT EXISTS events_request ON events(request_id);
CREATE INDEX IF NOT EXISTS events_tx ON events(tx);
CREATE INDEX IF NOT EXISTS events_name ON events(name);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
  hash TEXT PRIMARY KEY, block INTEGER NOT NULL, sender TEXT, recipient TEXT, gas_used INTEGER,
  gas_price INTEGER, status INTEGER, func TEXT);
CREATE INDEX IF NOT EXISTS txs_sender ON txs(sender);
CREATE TABLE IF NOT EXISTS audits (request_id INTEGER PRIMARY KEY, head_block INTEGER, ran_at REAL,
  seconds REAL, report TEXT NOT NULL, verify TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (address TEXT PRIMARY KEY, name TEXT, code_hash TEXT, result TEXT NOT NULL);
"""


def to_jsonable(value: Any) -> Any:
    """Decoded event args as plain JSON: bytes become 0x-hex; dicts/lists recurse."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True)


class Database:
    """One SQLite file (WAL); a connection per thread so the web server and the indexer can share it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.write_lock = threading.RLock()
        with self.write_lock:
            c = self.conn
            c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            if self.get_meta("schema") not in (None, SCHEMA_VERSION):  # an older layout: rebuild from the chain
                for t in self.tables():
                    c.execute(f"DROP TABLE {t}")
            c.executescript(RAW_SCHEMA)
            c.executescript(mapping.SCHEMA)
            self.set_meta("schema", SCHEMA_VERSION)
            c.commit()

    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = c
        return c

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> dict[str, Any] | None:
        r = self.conn.execute(sql, params).fetchone()
        return dict(r) if r is not None else None

    def scalar(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        r = self.conn.execute(sql, params).fetchone()
        return r[0] if r is not None else None

    def get_meta(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    def tables(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")]

    def wipe(self) -> None:
        """Delete every indexed row (chain reset): nothing stale survives, the schema stays."""
        with self.write_lock:
            for t in self.tables():
                if t != "meta":
                    self.conn.execute(f"DELETE FROM {t}")
            self.conn.execute("DELETE FROM meta WHERE key != 'schema'")
            self.conn.commit()

    def events(self, where: str = "1", params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
        for r in self.query(f"SELECT * FROM events WHERE {where} ORDER BY block, log_index", params):
            r["args"] = json.loads(r["args"])
            yield r
