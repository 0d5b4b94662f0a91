"""EventCursor on a real chain: ordered, chunked, and resumable across a restart with nothing
missed or repeated."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from verinfer.chain.events import EventCursor, FileCursorStore, MemoryCursorStore
from verinfer.chain.protocol import ModelInput, Protocol


def _register(protocol: Protocol, acct, n: int) -> list[str]:
    p = protocol.as_account(acct)
    names = []
    for _ in range(n):
        name = f"ev-{secrets.token_hex(4)}"
        p.models.register_model(ModelInput(name=name, weights_cid="bafyw", commitment=1))
        names.append(name)
    return names


def test_cursor_resumes_after_restart_without_gaps_or_duplicates(protocol: Protocol, new_account, w3, tmp_path: Path) -> None:
    publisher = new_account()
    start = w3.eth.block_number + 1
    store_path = tmp_path / "cursor.json"
    mine = lambda evs: [e.args["name"] for e in evs if e.args["publisher"] == publisher.address]  # noqa: E731

    first = _register(protocol, publisher, 4)
    cur = EventCursor(w3, protocol.models.contract, ["ModelRegistered"], start, FileCursorStore(store_path))
    got = mine(cur.poll())
    assert got == first
    assert json.loads(store_path.read_text())[cur.key] == cur.next_block > start

    second = _register(protocol, publisher, 5)
    # "Restart": a new cursor object over a new store object reading the same file.
    cur2 = EventCursor(w3, protocol.models.contract, ["ModelRegistered"], start, FileCursorStore(store_path))
    assert cur2.next_block == cur.next_block
    got2: list[str] = []
    while True:  # small max_blocks forces several polls and chunked reads
        evs = cur2.poll(max_blocks=2)
        if not evs and cur2.next_block > w3.eth.block_number:
            break
        got2 += mine(evs)
    assert got2 == second
    assert cur2.poll() == []


def test_uncommitted_poll_is_redelivered(protocol: Protocol, new_account, w3) -> None:
    publisher = new_account()
    start = w3.eth.block_number + 1
    names = _register(protocol, publisher, 2)
    store = MemoryCursorStore()
    cur = EventCursor(w3, protocol.models.contract, ["ModelRegistered"], start, store)
    a = [e for e in cur.poll(commit=False) if e.args["publisher"] == publisher.address]
    # crash before commit(): a new cursor sees the same events again (at-least-once)
    cur_again = EventCursor(w3, protocol.models.contract, ["ModelRegistered"], start, store)
    b = [e for e in cur_again.poll(commit=False) if e.args["publisher"] == publisher.address]
    assert [e.args["name"] for e in a] == [e.args["name"] for e in b] == names
    cur_again.commit()
    assert [e for e in cur_again.poll() if e.args["publisher"] == publisher.address] == []


def test_confirmations_hold_back_recent_blocks(protocol: Protocol, new_account, w3) -> None:
    publisher = new_account()
    start = w3.eth.block_number + 1
    _register(protocol, publisher, 1)
    cur = EventCursor(w3, protocol.models.contract, ["ModelRegistered"], start, MemoryCursorStore(), confirmations=1000)
    assert cur.poll() == [] and cur.next_block == start


def test_events_are_decoded_and_ordered(protocol: Protocol, new_account, w3) -> None:
    publisher = new_account()
    start = w3.eth.block_number + 1
    names = _register(protocol, publisher, 3)
    evs = [e for e in protocol.events("ModelRegistered", from_block=start) if e.args["publisher"] == publisher.address]
    assert [e.args["name"] for e in evs] == names
    assert [e.position for e in evs] == sorted(e.position for e in evs)
    assert isinstance(evs[0].args["modelId"], bytes) and len(evs[0].args["modelId"]) == 32
    assert evs[0].tx_hash.startswith("0x") and evs[0].address == protocol.models.address
    with pytest.raises(ValueError, match="unknown events"):
        EventCursor(w3, protocol.models.contract, ["NoSuchEvent"], 0, MemoryCursorStore())
