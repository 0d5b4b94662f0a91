"""Reading contract events: one-shot range queries and a resumable cursor.

The cursor is how daemons (node, explorer indexer) follow the chain without missing or
repeating an event across restarts: it remembers the next block to read in a `CursorStore`,
reads `[next, head - confirmations]` in bounded chunks, and only advances after a full read.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, cast, runtime_checkable

from eth_typing import ABIEvent, Hash32
from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError

from verinfer.chain.errors import RpcError, normalize
from verinfer.chain.tx import TRANSPORT_ERRORS, rpc_url_of


@dataclass(frozen=True)
class DecodedEvent:
    """One decoded log. `args` keeps bytes as bytes and structs as dicts."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: str
    log_index: int
    address: str = field(default="", compare=False)

    @property
    def position(self) -> tuple[int, int]:
        """Total order of events on a chain."""
        return (self.block_number, self.log_index)


@runtime_checkable
class CursorStore(Protocol):
    """Persists each cursor's next block to read. Implementations must make `save` durable."""

    def load(self, key: str) -> int | None: ...

    def save(self, key: str, next_block: int) -> None: ...


class MemoryCursorStore:
    """In-process store (tests, one-shot tools)."""

    def __init__(self) -> None:
        self._d: dict[str, int] = {}

    def load(self, key: str) -> int | None:
        return self._d.get(key)

    def save(self, key: str, next_block: int) -> None:
        self._d[key] = next_block


class FileCursorStore:
    """JSON file of {key: next_block}, rewritten atomically (tmp + fsync + rename) on every save."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.path.read_text()).items()}
        except FileNotFoundError:
            return {}

    def load(self, key: str) -> int | None:
        with self._lock:
            return self._read().get(key)

    def save(self, key: str, next_block: int) -> None:
        with self._lock:
            data = self._read()
            data[key] = int(next_block)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w") as f:
                json.dump(data, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)


def _event_abis(contract: Contract, names: list[str] | None) -> dict[bytes, dict[str, Any]]:
    # web3 types an ABI entry as a union of TypedDicts; an entry of type "event" is an ABIEvent
    abis = {str(e.get("name")): cast(ABIEvent, e) for e in contract.abi if e.get("type") == "event"}
    if names is not None:
        unknown = [n for n in names if n not in abis]
        if unknown:
            raise ValueError(f"unknown events {unknown}; contract has {sorted(abis)}")
        abis = {n: abis[n] for n in names}
    return {event_abi_to_log_topic(a): cast(dict[str, Any], a) for a in abis.values()}


def decode_log(contract: Contract, log: Any, event_abi: dict[str, Any]) -> DecodedEvent:
    """Decode one raw log with the given event ABI."""
    ev = contract.events[event_abi["name"]]().process_log(log)
    by_name = {i["name"]: i for i in event_abi["inputs"]}
    args = {k: normalize(v, by_name[k], hex_bytes=False) if k in by_name else v for k, v in ev["args"].items()}
    return DecodedEvent(
        name=event_abi["name"],
        args=args,
        block_number=log["blockNumber"],
        tx_hash=Web3.to_hex(log["transactionHash"]),
        log_index=log["logIndex"],
        address=Web3.to_checksum_address(log["address"]),
    )


def get_events(
    w3: Web3,
    contract: Contract,
    event_names: list[str] | None,
    from_block: int,
    to_block: int | str = "latest",
    *,
    chunk_size: int = 2000,
    indexed: Sequence[int] = (),
) -> list[DecodedEvent]:
    """All matching events of `contract` in [from_block, to_block], ordered, read in chunks.

    `indexed`: values of the first indexed (uint) arguments, in order, that the events must have (a topic filter:
    the RPC node does the filtering, e.g. one request's events by requestId)."""
    if to_block == "latest":
        to_block = w3.eth.block_number
    topics = _event_abis(contract, event_names)
    extra = [Hash32(int(v).to_bytes(32, "big")) for v in indexed]
    out: list[DecodedEvent] = []
    start = from_block
    size = max(1, chunk_size)
    while start <= int(to_block):
        end = min(int(to_block), start + size - 1)
        try:
            logs = w3.eth.get_logs(
                {"address": contract.address, "fromBlock": start, "toBlock": end, "topics": [[Hash32(t) for t in topics], *extra]}
            )
        except Web3RPCError as exc:
            if size > 1 and any(s in str(exc).lower() for s in ("too many", "limit", "range", "exceed")):
                size //= 2  # the node caps result size: shrink the window and retry
                continue
            raise
        except TRANSPORT_ERRORS:
            raise RpcError(f"cannot reach RPC at {rpc_url_of(w3)}") from None
        for log in logs:
            abi = topics.get(bytes(log["topics"][0])) if log["topics"] else None
            if abi is not None:
                out.append(decode_log(contract, log, abi))
        start = end + 1
    out.sort(key=lambda e: e.position)
    return out


class EventCursor:
    """Follows `event_names` of one contract from `start_block`, remembering progress in `store`."""

    def __init__(
        self,
        w3: Web3,
        contract: Contract,
        event_names: list[str],
        start_block: int,
        store: CursorStore,
        confirmations: int = 0,
        *,
        key: str | None = None,
        chunk_size: int = 500,
    ) -> None:
        self.w3 = w3
        self.contract = contract
        self.event_names = list(event_names)
        _event_abis(contract, self.event_names)  # fail fast on a typo
        self.start_block = start_block
        self.store = store
        self.confirmations = confirmations
        self.chunk_size = chunk_size
        self.key = key or f"{contract.address.lower()}:{','.join(sorted(self.event_names))}"
        self._pending_next: int | None = None

    @property
    def next_block(self) -> int:
        """The first block the next poll reads."""
        stored = self.store.load(self.key)
        return self.start_block if stored is None else stored

    def poll(self, max_blocks: int = 2000, *, commit: bool = True) -> list[DecodedEvent]:
        """Events in the next up to `max_blocks` confirmed blocks, ordered.

        With `commit=True` (default) the position advances before returning: each event is
        delivered once. With `commit=False` call `commit()` after handling them to get
        at-least-once delivery across crashes.
        """
        start = self.next_block
        head = self.w3.eth.block_number - self.confirmations
        if head < start:
            self._pending_next = None
            return []
        end = min(head, start + max_blocks - 1)
        events = get_events(self.w3, self.contract, self.event_names, start, end, chunk_size=self.chunk_size)
        self._pending_next = end + 1
        if commit:
            self.commit()
        return events

    def commit(self) -> None:
        """Advance past the last polled range."""
        if self._pending_next is not None:
            self.store.save(self.key, self._pending_next)
            self._pending_next = None
