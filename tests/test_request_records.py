"""Recycled request records (issue 7 gas): a market deployed with ProtocolParams(request_records=2) on a real anvil.

Request id lives in record id % 2, so request 3 overwrites settled request 1's record: the chain layer then says
"pruned" (RequestPruned(1, recycledBy=3)) in one line (no traceback from the CLI), the auditor still audits
request 1 from views at an older block, and the preview (computed in verinfer.chain.draw, no longer a market
view) equals the drawn committee. A record still held by an unsettled request is skipped: its id never exists
(ids have gaps), which the SDK and CLI say in one line; only when every record a request may try is held does it
revert RecordBusy, and the SDK then finalizes a blocker once it is past its deadline and retries. Runs on the
automine chain: a block per transaction, so the draw timing is exact.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from cli_checks import one_line_error
from web3 import Web3

from verinfer.auditor import AuditError, Auditor, Verdict
from verinfer.chain.deploy import ProtocolParams, deploy_protocol
from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.draw import DrawNotReadyError
from verinfer.chain.errors import ContractError, RecordBusyError, RequestPrunedError
from verinfer.chain.protocol import ModelInput, ModelShard, Protocol, RequestParams, Status, commitment_hash
from verinfer.client import Client, MarketBusyError, ResultError
from verinfer.commands.request import app as request_app
from verinfer.constants import ETHER
from verinfer.devnet.samples import sample_input
from verinfer.models import reference
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin, reference_profile_hash, weights_commitment
from verinfer.models.tensor import encode_output, encode_tensor
from verinfer.storage import open_store
from verinfer.storage.base import ContentStore

PARAMS = RequestParams(replicas=2, quorum=2, commit_blocks=10, reveal_blocks=10)


@dataclass
class Ring:
    w3: Web3
    protocol: Protocol
    manifest_path: Path
    store: ContentStore
    model_id: bytes
    spec: Any
    nodes: dict[str, Any]  # address -> account
    requester: Any

    def request(self, sample: int) -> int:
        x = sample_input(sample)
        p = self.protocol.as_account(self.requester)
        fee = p.market.quote(self.model_id, PARAMS)[0]
        _, rid = p.market.request_inference(self.model_id, self.store.add(encode_tensor(x, "int8", [64])),
                                            hash_vector(x, 8), PARAMS, fee)
        return rid

    def settle(self, rid: int, sample: int) -> list[str]:
        """Drive a request as its committee would: preview, commit (the first draws), reveal (the last settles)."""
        market = self.protocol.market
        draw_block = market.get_request(rid).draw_block
        mine(self.w3, max(0, draw_block + 1 - self.w3.eth.block_number))
        preview = market.preview_committee(rid)
        out = reference.run(self.spec, sample_input(sample))
        out_hash, salts = hash_vector(out, 32), {a: secrets.token_bytes(32) for a in preview}
        for a in preview:
            self.protocol.as_account(self.nodes[a]).market.commit(rid, commitment_hash(rid, out_hash, salts[a], a))
        assert market.get_committee(rid) == preview  # the preview is the draw
        cid = self.store.add(encode_output(out, 32))
        for a in preview:
            self.protocol.as_account(self.nodes[a]).market.reveal(rid, out_hash, salts[a], cid)
        assert market.get_request(rid).status == Status.ACCEPTED  # unanimous, no proof, no callback: settled
        return preview


def _ring(devnet: Any, root: Path) -> Ring:
    """A fresh deployment with two request records, a real digits model, three staked nodes."""
    w3 = devnet.w3
    manifest = deploy_protocol(w3, devnet.accounts[0], ProtocolParams(request_records=2))
    path = manifest.save(root / "manifest.json")
    protocol = Protocol(w3, manifest, devnet.accounts[0])
    assert protocol.market.request_records() == 2
    store = open_store(root=root / "store")
    spec = load_builtin("digits-mlp")
    publisher, requester = funded_account(w3), funded_account(w3)
    _, model_id = protocol.as_account(publisher).models.register_model(ModelInput(
        name=f"digits-ring-{secrets.token_hex(4)}", weights_cid=store.add(spec.canonical_json()),
        commitment=weights_commitment(spec), execution_profile_hash=reference_profile_hash(),
        num_layers=spec.num_layers, input_bits=spec.input_bits, output_bits=spec.output_bits))
    nodes = {}
    for _ in range(3):
        op = funded_account(w3)
        protocol.as_account(op).nodes.register("http://127.0.0.1", [ModelShard(model_id)], 2 * ETHER)
        nodes[op.address] = op
    n = protocol.nodes.epoch_length()
    mine(w3, n - w3.eth.block_number % n)  # stake counts for draws from the next epoch's snapshot
    return Ring(w3, protocol, path, store, model_id, spec, nodes, requester)


@pytest.fixture(scope="module")
def settled(automine_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ring]:
    """Requests 1 and 2 settled, request 3 made (it recycles request 1's record) and settled."""
    ring = _ring(automine_devnet, tmp_path_factory.mktemp("ring"))
    r1 = ring.request(1)
    with pytest.raises(DrawNotReadyError) as ei:  # the seed block is not mined yet: nothing to preview
        ring.protocol.market.preview_committee(r1)
    assert ei.value.error_name == "DrawNotReady" and "seed block" in str(ei.value)
    ring.settle(r1, 1)
    ring.settle(ring.request(2), 2)
    assert ring.request(3) == 3
    ring.settle(3, 3)
    yield ring


def test_recycled_record_reads_as_pruned(settled: Ring) -> None:
    market = settled.protocol.market
    for read in (lambda: market.get_request(1), lambda: market.status_of(1), lambda: market.get_committee(1)):
        with pytest.raises(RequestPrunedError) as ei:
            read()
        assert ei.value.error_name == "RequestPruned" and ei.value.error_args == {"requestId": 1, "recycledBy": 3}
        assert ei.value.recycled_by == 3
        msg = str(ei.value)
        assert "request 1 is pruned" in msg and "recycled by request 3" in msg and "events" in msg and "\n" not in msg
    assert market.get_request(2).status == Status.ACCEPTED  # still live
    with pytest.raises(ContractError) as nf:
        market.get_request(99)
    assert nf.value.error_name == "RequestNotFound"
    # the history: the views answer at the block of request 1's Finalized event (anvil keeps old states)
    fin = market.request_events(1, ["Finalized"])
    assert len(fin) == 1 and market.history_block(1) == market.history_block(1, 3) == fin[0].block_number
    assert market.history_block(2) == settled.w3.eth.block_number  # live: the head
    assert market.missing_request(1) is None and market.missing_request(3) is None
    assert market.record_holder(1) == 3 and market.record_holder(2) == 2
    old = market.get_request(1, fin[0].block_number)
    assert old.request_id == 1 and old.status == Status.ACCEPTED and old.reveal_count == 2


def test_preview_before_the_draw_equals_the_drawn_committee(settled: Ring) -> None:
    """preview_committee reads every view at one block; a settled request previews its stored committee."""
    market = settled.protocol.market
    drawn = settled.protocol.events("CommitteeDrawn")
    by_id = {int(e.args["requestId"]): [Web3.to_checksum_address(a) for a in e.args["committee"]] for e in drawn}
    assert market.preview_committee(3) == market.get_committee(3) == by_id[3]
    assert market.preview_committee(2) == by_id[2]
    with pytest.raises(RequestPrunedError):
        market.preview_committee(1)


def test_audit_of_a_pruned_request_reads_views_at_its_finalized_block(settled: Ring) -> None:
    market = settled.protocol.market
    block = market.history_block(1)
    report = Auditor(settled.protocol, settled.store).audit(1)
    assert report.ok, [c.to_json() for c in report.failures]
    assert report.status == "ACCEPTED"
    assert report.claim("quorum.committee").verdict is Verdict.PASS
    assert report.claim("quorum.settlement").verdict is Verdict.PASS
    assert any(f"read at block {block}" in n and "recycled by request 3" in n for n in report.notes), report.notes


def test_sdk_and_cli_say_pruned_in_one_line(settled: Ring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    client = Client(None, settled.manifest_path, None, settled.store)
    with pytest.raises(ResultError) as ei:
        client.result(1)
    msg = str(ei.value)
    assert "request 1 is pruned" in msg and "recycled by request 3" in msg and "settled as Accepted" in msg
    assert "events" in msg and "\n" not in msg
    assert client.result(3).status == "Accepted"
    monkeypatch.setenv("VERINFER_STORE", str(tmp_path / "store"))
    one_line_error(request_app, "show", "1", "--manifest", str(settled.manifest_path), needle="is pruned")


def _skipping_ring(devnet: Any, root: Path) -> tuple[Ring, int]:
    """Request 1 unsettled (never drawn: Pending until its draw window is over), request 2 settled: the next request
    skips id 3 (its record holds request 1) and gets id 4."""
    ring = _ring(devnet, root)
    r1 = ring.request(1)
    ring.settle(ring.request(2), 2)
    assert ring.request(3) == 4
    return ring, r1


def test_a_record_held_by_an_unsettled_request_is_skipped(automine_devnet: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ring, r1 = _skipping_ring(automine_devnet, tmp_path)
    market = ring.protocol.market
    assert market.request_count() == 4
    assert [int(e.args["requestId"]) for e in ring.protocol.events("InferenceRequested")] == [1, 2, 4]
    assert market.status_of(3) == Status.NONE and market.status_of(r1) == Status.PENDING
    with pytest.raises(ContractError) as nf:
        market.get_request(3)
    assert nf.value.error_name == "RequestNotFound"
    why = market.missing_request(3)
    assert why is not None and "skipped id 3" in why and market.missing_request(4) is None
    assert "does not exist (the latest request is 4)" in (market.missing_request(5) or "")
    assert market.record_holder(3) == r1 and market.record_holder(4) == 4

    client = Client(None, ring.manifest_path, None, ring.store)
    with pytest.raises(ResultError) as ei:
        client.result(3)
    assert "request 3 does not exist" in str(ei.value) and "skipped" in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(AuditError, match="skipped id 3"):
        Auditor(ring.protocol, ring.store).audit(3)
    monkeypatch.setenv("VERINFER_STORE", str(tmp_path / "cli-store"))
    one_line_error(request_app, "show", "3", "--manifest", str(ring.manifest_path), needle="skipped id 3")


def test_record_busy_then_sdk_finalizes_the_expired_blocker_and_retries(automine_devnet: Any, tmp_path: Path) -> None:
    ring, r1 = _skipping_ring(automine_devnet, tmp_path)
    r4 = 4  # unsettled too (never drawn): now both records are held
    market = ring.protocol.market
    x = sample_input(5)
    cid, input_hash = ring.store.add(encode_tensor(x, "int8", [64])), hash_vector(x, 8)
    fee = market.quote(ring.model_id, PARAMS)[0]
    with pytest.raises(RecordBusyError) as ei:  # ids 5..8 tried: records 1, 0, 1, 0, held by requests 1 and 4
        ring.protocol.as_account(ring.requester).market.request_inference(ring.model_id, cid, input_hash, PARAMS, fee)
    # pendingRequestId is the request holding the first record tried (id 5 -> record 1 -> request 1), not id 3
    assert ei.value.pending_request_id == r1 and "RecordBusy" in str(ei.value) and "\n" not in str(ei.value)
    assert market.record_holder(3) == r1 and market.record_holder(4) == r4

    client = Client(None, ring.manifest_path, ring.requester, ring.store)
    with pytest.raises(MarketBusyError) as busy:  # both are still inside their draw windows: nobody may finalize
        client.submit_raw(ring.model_id, cid, input_hash, fee, PARAMS)
    deadline = market.get_request(r1).draw_deadline
    msg = str(busy.value)
    assert "requests 1 (Pending), 4 (Pending)" in msg, msg
    assert f"the first anyone may finalize is request 1 (Pending), after block {deadline}" in msg, msg
    assert market.request_count() == 4

    mine(ring.w3, deadline + 1 - ring.w3.eth.block_number)
    rid = client.submit_raw(ring.model_id, cid, input_hash, fee, PARAMS)  # finalizes request 1 (Expired), retries
    assert rid == 5  # request 1's record is free again
    fin = market.request_events(1, ["Finalized"])
    assert len(fin) == 1 and Status(int(fin[0].args["status"])) == Status.EXPIRED
    with pytest.raises(RequestPrunedError) as ei2:
        market.get_request(1)
    assert ei2.value.recycled_by == 5 and market.history_block(1) == fin[0].block_number
    # id 3 was never made: once its record is recycled the market says pruned, the SDK still says it never existed
    with pytest.raises(RequestPrunedError):
        market.status_of(3)
    with pytest.raises(ResultError, match="request 3 does not exist: the market skipped id 3"):
        client.result(3)
    with pytest.raises(ResultError, match="request 1 is pruned: its on-chain record was recycled by request 5"):
        client.result(1)
