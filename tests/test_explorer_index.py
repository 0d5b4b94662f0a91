"""The explorer's index on its own anvil (snapshots are reverted here, so never the shared session chain):
resume after a restart without duplicates, and a chain reset leaves no stale row."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from verinfer.chain.deploy import deploy_protocol
from verinfer.chain.devnet import Devnet, find_free_port, funded_account
from verinfer.chain.protocol import ModelInput, Protocol
from verinfer.explorer.db import Database
from verinfer.explorer.indexer import Indexer


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Devnet]:
    d = Devnet(port=find_free_port(), state_dir=tmp_path / "anvil", block_time=None, persist=False, n_accounts=4).start()
    yield d
    d.stop()


def _publish(p: Protocol, name: str) -> None:
    p.models.register_model(ModelInput(name=name, weights_cid=f"bafy-{name}", commitment=7))


def _names(db: Database) -> list[str]:
    return [r["name"] for r in db.query("SELECT name FROM models ORDER BY name")]


def test_resume_after_restart_and_reindex_after_evm_revert(chain: Devnet, tmp_path: Path) -> None:
    w3 = chain.w3
    manifest = deploy_protocol(w3, chain.accounts[0])
    writer = Protocol(w3, manifest, chain.accounts[1])
    _publish(writer, "alpha")
    path = tmp_path / "index.sqlite"
    first = Indexer(Protocol(w3, manifest), Database(path)).sync()
    assert first.reset is None and first.events > 0 and _names(Database(path)) == ["alpha"]
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    _publish(writer, "beta")

    # a restart: new Database/Indexer objects on the same file resume where the last sync stopped
    db = Database(path)
    again = Indexer(Protocol(w3, manifest), db).sync()
    assert again.from_block == first.to_block + 1 and again.events == 1 and again.reset is None
    n_events = db.scalar("SELECT COUNT(*) FROM events")
    assert Indexer(Protocol(w3, manifest), db).sync().events == 0
    assert db.scalar("SELECT COUNT(*) FROM events") == n_events and _names(db) == ["alpha", "beta"]

    # the devnet goes back to the snapshot: the indexed head no longer exists
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True
    short = Indexer(Protocol(w3, manifest), db).sync()
    assert short.reset is not None and "no longer exists" in short.reset
    assert _names(db) == ["alpha"]

    # index, revert again and build a different block at the same height: detected by its hash
    # (fresh keys after each revert: a sender's local nonce would be ahead of the reverted chain)
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    _publish(Protocol(w3, manifest, funded_account(w3)), "gamma")
    Indexer(Protocol(w3, manifest), db).sync()
    assert _names(db) == ["alpha", "gamma"]
    w3.provider.make_request("evm_revert", [snap])
    _publish(Protocol(w3, manifest, funded_account(w3)), "delta")
    forked = Indexer(Protocol(w3, manifest), db).sync()
    assert forked.reset is not None and "different hash" in forked.reset
    assert _names(db) == ["alpha", "delta"]
    assert db.scalar("SELECT COUNT(*) FROM events WHERE args LIKE '%gamma%'") == 0
    assert db.scalar("SELECT COUNT(*) FROM txs WHERE block > ?", (forked.to_block,)) == 0


def test_another_deployment_wipes_the_index(chain: Devnet, tmp_path: Path) -> None:
    w3 = chain.w3
    one = deploy_protocol(w3, chain.accounts[0])
    _publish(Protocol(w3, one, chain.accounts[1]), "first")
    db = Database(tmp_path / "index.sqlite")
    Indexer(Protocol(w3, one), db).sync()
    db.conn.execute("INSERT INTO audits (request_id, head_block, ran_at, seconds, report, verify) VALUES (1,1,0,0,'{}','[]')")
    db.conn.commit()
    two = deploy_protocol(w3, chain.accounts[0])
    res = Indexer(Protocol(w3, two), db).sync()
    assert res.reset is not None and "deployment" in res.reset
    assert _names(db) == [] and db.scalar("SELECT COUNT(*) FROM audits") == 0


def test_explorer_refuses_a_signing_protocol(chain: Devnet, tmp_path: Path) -> None:
    from verinfer.explorer.service import Explorer

    manifest = deploy_protocol(chain.w3, chain.accounts[0])
    with pytest.raises(ValueError, match="never signs"):
        Explorer(Protocol(chain.w3, manifest, chain.accounts[0]), Database(tmp_path / "x.sqlite"), store=None)
