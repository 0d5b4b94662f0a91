"""Follow the protocol's events into SQLite: incremental, resumable, and safe across chain resets.

Events come only from `verinfer.chain.events.get_events` (the chain layer decodes them); this module
stores each as (block, log index, tx, contract, name, args JSON), derives entity rows through
`verinfer.explorer.mapping`, and records the hash of the last indexed block. On the next sync, a
different chain id / genesis / deployment, or a last block whose hash changed (a devnet restarted
from older state, `evm_revert`, a reorg), wipes the index and re-reads from the deployment block,
so no stale row ever survives.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from verinfer.chain.events import get_events
from verinfer.chain.protocol import Protocol
from verinfer.explorer import mapping
from verinfer.explorer.db import Database, dumps

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    """What one `sync()` did."""

    from_block: int
    to_block: int
    events: int
    reset: str | None = None
    seconds: float = 0.0


class Indexer:
    """Indexes one deployment (a read-only Protocol) into one Database."""

    def __init__(self, protocol: Protocol, db: Database, *, chunk_blocks: int = 2000) -> None:
        self.protocol = protocol
        self.w3: Web3 = protocol.w3
        self.db = db
        self.chunk_blocks = chunk_blocks
        self.last_error: str | None = None
        #: event types the chain layer failed to decode ("Contract.Event" -> error); see _contract_events
        self.decode_errors: dict[str, str] = {}

    # ------------------------------------------------------------------ identity of what is indexed

    def fingerprint(self) -> str:
        """Chain id + genesis hash + deployment (block and addresses): changes when the chain is another one."""
        m = self.protocol.manifest
        genesis = Web3.to_hex(self.w3.eth.get_block(0)["hash"])
        parts = [str(self.w3.eth.chain_id), genesis, str(m.deploy_block)] + [f"{k}={v}" for k, v in sorted(m.addresses.items())]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _reset_reason(self) -> str | None:
        db = self.db
        fp = self.fingerprint()
        stored = db.get_meta("fingerprint")
        if stored is None:
            return None if db.get_meta("last_block") is None else "no fingerprint"
        if stored != fp:
            return "chain id, genesis or deployment changed"
        last = db.get_meta("last_block")
        if last is None:
            return None
        block = self.w3.eth.get_block(int(last)) if int(last) <= self.w3.eth.block_number else None
        if block is None:
            return f"block {last} no longer exists (chain is shorter)"
        if Web3.to_hex(block["hash"]) != db.get_meta("last_hash"):
            return f"block {last} has a different hash now"
        return None

    # ------------------------------------------------------------------ sync

    def sync(self, max_blocks: int | None = None) -> SyncResult:
        """Index everything up to the current head (or `max_blocks` more); wipes first on a reset."""
        t0 = time.perf_counter()
        with self.db.write_lock:
            reason = self._reset_reason()
            if reason is not None:
                log.warning("chain reset detected (%s): re-indexing from the deployment block", reason)
                self.db.wipe()
            db = self.db
            if db.get_meta("fingerprint") is None:
                db.set_meta("fingerprint", self.fingerprint())
                db.set_meta("next_block", self.protocol.manifest.deploy_block)
                db.conn.commit()
            start = int(db.get_meta("next_block") or self.protocol.manifest.deploy_block)
            head = int(self.w3.eth.block_number)
            if max_blocks is not None:
                head = min(head, start + max_blocks - 1)
            total = 0
            lo = start
            while lo <= head:
                hi = min(head, lo + self.chunk_blocks - 1)
                total += self._index_range(lo, hi)
                lo = hi + 1
            self.last_error = None
            return SyncResult(start, head, total, reason, time.perf_counter() - t0)

    def _index_range(self, lo: int, hi: int) -> int:
        events: list[tuple[str, Any]] = []
        for name, wrapper in self.protocol.contracts().items():
            events += [(name, ev) for ev in self._contract_events(wrapper, lo, hi)]
        events.sort(key=lambda ne: ne[1].position)
        tx_hashes = sorted({ev.tx_hash for _, ev in events})
        blocks = sorted({ev.block_number for _, ev in events} | {hi})
        receipts = self._batch("eth_getTransactionReceipt", [[h] for h in tx_hashes])
        headers = self._batch("eth_getBlockByNumber", [[hex(n), False] for n in blocks])
        c = self.db.conn
        try:
            for n, b in zip(blocks, headers, strict=True):
                c.execute("INSERT OR REPLACE INTO blocks (number, hash, timestamp) VALUES (?,?,?)",
                          (n, b["hash"], int(b["timestamp"], 16)))
            for h, r in zip(tx_hashes, receipts, strict=True):
                c.execute("INSERT OR REPLACE INTO txs (hash, block, sender, recipient, gas_used, gas_price, status) "
                          "VALUES (?,?,?,?,?,?,?)",
                          (h, int(r["blockNumber"], 16), _checksum(r["from"]), _checksum(r.get("to")),
                           int(r["gasUsed"], 16), int(r.get("effectiveGasPrice") or "0x0", 16), int(r["status"], 16)))
            for contract, ev in events:
                row = {"block": ev.block_number, "log_index": ev.log_index, "tx": ev.tx_hash, "contract": contract,
                       "address": ev.address, "name": ev.name, "args": _plain(ev.args)}
                c.execute("INSERT OR REPLACE INTO events (block, log_index, tx, contract, address, name, args, request_id) "
                          "VALUES (?,?,?,?,?,?,?,?)", (row["block"], row["log_index"], row["tx"], contract, ev.address,
                                                        ev.name, dumps(ev.args), mapping.request_of(row)))
                mapping.apply(c, row)
            self._enrich_nodes(c)
            last_hash = headers[-1]["hash"]
            self.db.set_meta("last_block", hi)
            self.db.set_meta("last_hash", last_hash)
            self.db.set_meta("next_block", hi + 1)
            c.commit()
        except BaseException:
            c.rollback()
            raise
        return len(events)

    def _enrich_nodes(self, c: Any) -> None:
        """Nodes seen in committees but without a decoded NodeRegistered event get their row from the
        registry's views (endpoint, stake, shards as of now)."""
        missing = [r[0] for r in c.execute(
            "SELECT DISTINCT m.node FROM members m LEFT JOIN nodes n ON n.address = m.node "
            "WHERE n.address IS NULL OR n.registered_block IS NULL").fetchall()]
        for addr in missing:
            try:
                view = self.protocol.nodes.get_node(addr)
                shards = self.protocol.nodes.get_shards(addr)
            except Exception as exc:  # a view that reverts must not stop indexing
                log.warning("cannot read node %s: %s", addr, exc)
                continue
            c.execute("INSERT OR IGNORE INTO nodes (address) VALUES (?)", (addr,))
            c.execute("UPDATE nodes SET endpoint=COALESCE(endpoint, ?), stake=CASE WHEN stake='0' THEN ? ELSE stake END, "
                      "shards=COALESCE(shards, ?), registered_block=-1 WHERE address=?",
                      (view.endpoint, str(view.stake), dumps([{"modelId": s.model_id, "layerStart": s.layer_start,
                                                              "layerEnd": s.layer_end} for s in shards]), addr))

    def _contract_events(self, wrapper: Any, lo: int, hi: int) -> list[Any]:
        """All decoded events of one contract in [lo, hi]. If the chain layer cannot decode some event
        type, the others are still indexed and the failure is recorded (shown on the overview page)."""
        try:
            return get_events(self.w3, wrapper.contract, None, lo, hi, chunk_size=self.chunk_blocks)
        except (TypeError, ValueError) as exc:
            first_error = exc
        out: list[Any] = []
        names = sorted({e["name"] for e in wrapper.abi if e.get("type") == "event"})
        for ev_name in names:
            try:
                out += get_events(self.w3, wrapper.contract, [ev_name], lo, hi, chunk_size=self.chunk_blocks)
            except (TypeError, ValueError) as exc:
                self.decode_errors[f"{wrapper.NAME}.{ev_name}"] = f"{type(exc).__name__}: {exc}"
                log.warning("cannot decode %s.%s events in blocks %d-%d: %s (first: %s)", wrapper.NAME, ev_name,
                            lo, hi, exc, first_error)
        return out

    def _batch(self, method: str, params: list[list[Any]], size: int = 500) -> list[dict[str, Any]]:
        """Raw JSON-RPC batches (one round trip per `size` calls, no web3 result formatting: the
        indexer needs a few hex fields, and formatting thousands of receipts dominated indexing time)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(params), size):
            part = params[i:i + size]
            resp = self.w3.provider.make_batch_request([(method, p) for p in part])  # type: ignore[attr-defined]
            if not isinstance(resp, list):
                raise RuntimeError(f"{method} batch failed: {resp.get('error') if isinstance(resp, dict) else resp}")
            by_id = sorted(resp, key=lambda r: int(r.get("id", 0)))
            for p, r in zip(part, by_id, strict=True):
                if r.get("error") or r.get("result") is None:
                    raise RuntimeError(f"{method}{p}: {r.get('error') or 'no result'}")
                out.append(r["result"])
        return out

    # ------------------------------------------------------------------ background

    def follow(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Sync until `stop` is set; errors are logged and kept in `last_error` (the pages show it)."""
        while not stop.is_set():
            try:
                self.sync()
            except Exception as exc:  # an RPC hiccup must not kill the explorer
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("index sync failed: %s", self.last_error)
            stop.wait(interval)


@functools.lru_cache(maxsize=4096)
def _checksum(address: str | None) -> str | None:
    return Web3.to_checksum_address(address) if address else None


def _plain(args: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(dumps(args))
