"""SmolLM2 on the market with real node processes on anvil (issue 10, items 1–4 and 6).

One module-scoped network: SmolLM2 published with the layout 0:10 | 10:20 | 20:30 (per-shard
commitments pinned by shardLayoutHash); stage nodes serve the layer ranges they registered in
NodeRegistry on their registered tcp:// endpoints; three full-model nodes (drawn as the committee)
are the accountable heads and also serve 10:20. A fourth 10:20 node ("liar", registered first, so
every head tries it first) answers with a corrupted hidden state.

* head1/head2 compare 2 replicas per stage: they catch the liar, break the tie with a spare, route
  around it, record the fault as evidence and reveal the honest tokens; every stage answer carries a
  signed receipt, and the head that caught the lie opens a StageCourt dispute with the liar's receipt:
  the jury (the three heads, drawn by the market) re-runs layers 10:20 on the transcript and the liar is
  slashed on-chain, the challenger credited;
* a griefing challenger disputes an honest stage's genuine receipt: the jury agrees with the stage, the
  challenger loses the bond to it and the stage's stake is unchanged;
* head3 runs with `--lm-replicas 1` (trusts the first endpoint): it reveals the liar's tokens and
  the market slashes it as the minority — the head is the accountable party (docs/lm.md);
* a stage-0 node ("staller", registered first) answers one FORWARD and then stalls: every head
  times out on it once and fails over to the other 0:10 node (replaying the prefix);
* a prompt over the context limit settles INVALID_INPUT with the committee paid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from verinfer.chain import court
from verinfer.chain.devnet import funded_account
from verinfer.client import Client
from verinfer.client.inputs import prepare_input
from verinfer.constants import ETHER
from verinfer.devnet.lm import LmNetwork, LmNode, default_nodes
from verinfer.inference import pipeline
from verinfer.inference.llama_int import IntModel
from verinfer.models import gguf
from verinfer.models.hashing import hash_vector
from verinfer.models.tensor import encode_tensor
from verinfer.node import lmstage

PROMPT = "What is the capital of France?"
N_NEW = 4
FEE = ETHER // 50
#: heads' per-call stage timeout: a stalled stage costs this once, then the head fails over
STALL_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def ck():
    try:
        return gguf.read_gguf()
    except gguf.LlmError as exc:  # fail, never skip: the message says how to install the weights
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def lmnet(devnet, protocol_manifest_path, tmp_path_factory, ck):
    # registered first, so every head tries it first: answers one FORWARD, then never again
    nodes = [LmNode("staller", stage=(0, 10), stage_fault="stall:2"), *default_nodes(lying_stage=True)]
    next(n for n in nodes if n.name == "head3").args = ["--lm-replicas", "1"]
    net = LmNetwork(tmp_path_factory.mktemp("lmnet"), devnet.w3, protocol_manifest_path,
                    funded_account(devnet.w3, 1000 * ETHER), nodes, max_new_tokens=N_NEW, checkpoint=ck,
                    stage_timeout_s=STALL_TIMEOUT_S)
    with net.serving(devnet.rpc_url):
        yield net


def _client(devnet, protocol_manifest_path, net: LmNetwork) -> Client:
    return Client(devnet.rpc_url, str(protocol_manifest_path), funded_account(devnet.w3, 10 * ETHER), net.store())


def test_publish_registers_commitment_profile_and_shard_layout(lmnet):
    pub = lmnet.published
    info = pub.info
    assert info.commitment == gguf.llm_commitment(pub.spec)
    assert info.execution_profile_hash == gguf.llm_profile_hash(pub.spec)
    assert info.num_layers == 30 and info.input_bits == 32 and info.output_bits == 32
    p = lmnet.protocol(lmnet.funder)
    layout = gguf.registered_layout(p.models.artifacts_cid(info.model_id), lmnet.store(), info.shard_layout_hash, pub.spec)
    assert layout.layer_ranges == ((0, 10), (10, 20), (20, 30))
    assert layout.shards[1] == "0x" + gguf.shard_commitment(pub.spec, 10, 20).hex()
    # a stage's registered range and endpoint are what heads discover
    liar = lmnet.by_name("liar")
    shards = p.nodes.get_shards(liar.address)
    assert [(s.layer_start, s.layer_end) for s in shards] == [(10, 20)]
    assert p.nodes.get_node(liar.address).endpoint == liar.endpoint
    assert liar.proc is not None and liar.proc.info["stage"]["endpoint"] == liar.endpoint
    assert liar.proc.health()["lm_stage"]["layers"] == [10, 20]
    with pytest.raises(gguf.LayoutError, match="shardLayoutHash"):
        gguf.parse_layout(layout.document(), b"\x00" * 32)


@dataclass
class Settled:
    """The request the lying stage and the trusting head took part in (shared by the market and audit tests)."""

    rid: int
    res: Any
    want: list[int]
    stake_before: dict[str, int]
    start_block: int


@dataclass
class Grief:
    """A dispute over an honest stage's genuine receipt, opened by an outside challenger."""

    dispute_id: int
    jury_request: int
    stage: str
    challenger: str
    cost: int
    stake_before: int
    gas: int
    opened_at: float


def _stage_endpoint(node: LmNode) -> str:
    host, port = lmstage.parse_endpoint(node.endpoint)
    return f"{host}:{port}"


@pytest.fixture(scope="module")
def grief(lmnet, devnet) -> Grief:
    """Opened before the lying request, so both juries run while the module's other tests do.

    The challenger asks stage2 (20:30, honest) for one FORWARD of arbitrary hidden rows, gets its signed receipt
    and disputes it anyway: a genuine receipt the jury (heads re-running 20:30, a range none of them serves) must
    confirm."""
    stage2 = lmnet.by_name("stage2")
    p = lmnet.protocol(lmnet.funder)
    layout = lmnet.published.layout
    ctx = lmstage.stage_context(lmnet.model_id, 20, 30, layout.commitment_of(20, 30))
    chain_id, registry = int(lmnet.manifest.chain_id), p.nodes.address
    ep = _stage_endpoint(stage2)
    conn = pipeline.StageConn(ep, 120, context=ctx, verify=lambda e, c, r: lmstage.recover_receipt_signer(
        chain_id, registry, c, r) == stage2.address.lower())
    rows = np.random.default_rng(5).integers(-(1 << 17), 1 << 17, (3, 576), dtype=np.int64)
    conn.forward(os.urandom(16), 0, rows)
    receipt, frames = conn.evidence()
    conn.close()
    assert receipt is not None
    cid = lmnet.store().add(pipeline.encode_stage_check(ctx, frames))
    challenger = funded_account(devnet.w3, 10 * ETHER)
    c = court.court_for(lmnet.protocol(challenger))
    cost = c.dispute_cost(lmnet.model_id)
    stake_before = p.nodes.stake_of(stage2.address)
    tx, did, rid = c.dispute(stage2.address, court.StageReceipt(lmnet.model_id, 20, 30, receipt.input_hash.to_bytes(
        32, "big"), receipt.output_hash.to_bytes(32, "big")), receipt.signature, cid, value=cost)
    return Grief(did, rid, stage2.address, challenger.address, cost, stake_before, int(tx["gasUsed"]), time.monotonic())


@pytest.fixture(scope="module")
def lying_request(lmnet, devnet, protocol_manifest_path, ck, grief) -> Settled:
    client = _client(devnet, protocol_manifest_path, lmnet)
    info = client.model_info(lmnet.model_id)
    prepared = prepare_input(PROMPT, info.spec, lmnet.store())
    p = lmnet.protocol(lmnet.funder)
    stake_before = {n.name: p.nodes.stake_of(n.address) for n in lmnet.nodes}
    start = devnet.w3.eth.block_number
    rid = client.submit(lmnet.model_id, prepared.payload, FEE, replicas=3, quorum=2, commit_blocks=300, reveal_blocks=100)
    want = IntModel(ck).generate(prepared.vector, N_NEW)  # single process, all 30 layers (while the nodes work)
    return Settled(rid, client.wait(rid, timeout=400), want, stake_before, start)


def _resolved(c: court.StageCourt, dispute_id: int, timeout: float = 420.0) -> court.DisputeView:
    """Wait for the jury (the heads' ordinary commit / reveal / finalize) to settle the dispute."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = c.get_dispute(dispute_id)
        if not d.is_open:
            return d
        time.sleep(2.0)
    raise AssertionError(f"dispute {dispute_id} still open after {timeout:.0f}s")


def test_lying_stage_is_routed_around_and_the_trusting_head_is_slashed(lmnet, lying_request, ck):
    rid, res, want, stake_before = lying_request.rid, lying_request.res, lying_request.want, lying_request.stake_before
    p = lmnet.protocol(lmnet.funder)
    head3 = lmnet.by_name("head3")

    assert res.status == "Accepted", (res, [n.proc.log_tail(8) for n in lmnet.heads() if n.proc])
    assert res.output == want and res.output_verified
    assert res.text == gguf.BpeTokenizer(ck.tokenizer).decode(want) and res.text.strip()
    by_node = {m.node: m for m in res.committee}
    assert set(by_node) == {n.address for n in lmnet.heads()}
    for n in lmnet.heads():
        m = by_node[n.address]
        if n is head3:  # trusted the liar: revealed other tokens, slashed by the market's minority rule
            assert m.revealed and not m.agrees and m.slashed and not m.paid
            assert p.nodes.stake_of(n.address) < stake_before[n.name]
        else:
            assert m.agrees and m.paid and not m.slashed
            evidence = [json.loads(line) for line in (n.proc.state_dir / "lm-faults.jsonl").read_text().splitlines()]
            lies = [e for e in evidence if e["request_id"] == rid and e["kind"] == "lie"]
            assert [(e["stage"], e["operator"]) for e in lies] == [(1, lmnet.by_name("liar").address)]
            assert lies[0]["receipt"]["signature"].startswith("0x") and len(lies[0]["receipt"]["signature"]) == 132
            stalls = [e for e in evidence if e["request_id"] == rid and e["kind"] == "stall"]
            assert (0, lmnet.by_name("staller").address) in [(e["stage"], e["operator"]) for e in stalls]


def test_lying_stage_is_slashed_through_the_stage_court(lmnet, lying_request):
    """A head that caught the liar disputed its signed receipt; the jury (the heads, drawn by the market) re-ran
    layers 10:20 on the transcript and settled another output hash: StageWrong, the liar slashed on-chain."""
    p = lmnet.protocol(lmnet.funder)
    c = court.court_for(p)
    liar = lmnet.by_name("liar")
    t0 = time.monotonic()
    opened: list[court.DisputeOpenedEvent] = []
    while not opened and time.monotonic() - t0 < 120:  # opened in a background thread right after the generation
        opened = [e for e in court.dispute_events(c, lying_request.start_block)
                  if isinstance(e, court.DisputeOpenedEvent) and e.stage == liar.address]
        time.sleep(1.0)
    assert len(opened) == 1, opened  # head1 and head2 hold the same receipt: the second dispute is AlreadyDisputed
    ev = opened[0]
    challengers = {n.address: n for n in lmnet.heads() if n.name != "head3"}
    assert ev.challenger in challengers and (ev.lo, ev.hi) == (10, 20)
    d = _resolved(c, ev.dispute_id)
    waited = time.monotonic() - t0
    assert d.state is court.Verdict.STAGE_WRONG, d
    resolved = next(e for e in court.dispute_events(c, ev.block_number)
                    if isinstance(e, court.DisputeResolvedEvent) and e.dispute_id == ev.dispute_id)
    assert resolved.verdict is court.Verdict.STAGE_WRONG and resolved.slashed > 0
    slashes = [e for e in p.nodes.events("Slashed", ev.block_number) if e.args["node"] == liar.address]
    assert [(int(e.args["requestId"]), int(e.args["amount"])) for e in slashes] == [(d.request_id, resolved.slashed)]
    assert p.nodes.stake_of(liar.address) == lying_request.stake_before["liar"] - resolved.slashed
    # the challenger got its bond back plus half the slash (StageCourt.CHALLENGER_REWARD_BPS)
    credits = [e for e in c.events("Credited", ev.block_number) if int(e.args["disputeId"]) == ev.dispute_id]
    assert [(e.args["account"], int(e.args["amount"])) for e in credits] == [(ev.challenger, d.bond + resolved.slashed // 2)]
    # the jury request settled like any other: the three heads agreed on the stage output hash and were paid
    jury = p.market.get_request(d.request_id)
    assert jury.status.name == "ACCEPTED", jury
    # what the challenger's node logged: the dispute, its gas and the transcript it uploaded
    rows = [json.loads(line) for line in (challengers[ev.challenger].proc.state_dir / "lm-disputes.jsonl")
            .read_text().splitlines()]
    row = next(r for r in rows if r["dispute_id"] == ev.dispute_id)
    assert row["request_id"] == lying_request.rid and row["stage"] == liar.address
    finalize_gas = p.w3.eth.get_transaction_receipt(resolved.tx_hash)["gasUsed"]
    ts = [int(p.w3.eth.get_block(b)["timestamp"]) for b in (ev.block_number, resolved.block_number)]
    print(f"dispute {ev.dispute_id}: opened by {challengers[ev.challenger].name}, gas {row['gas']}, transcript "
          f"{row['payload_bytes']} bytes, cost {row['cost_wei']} wei; resolved {resolved.block_number - ev.block_number}"
          f" blocks / {ts[1] - ts[0]}s after it was opened ({waited:.0f}s after the lying request settled); "
          f"finalize+callback+slash gas {finalize_gas}; slashed {resolved.slashed} wei")


def test_an_honest_stage_cannot_be_slashed_by_a_griefing_challenger(lmnet, grief, lying_request):
    p = lmnet.protocol(lmnet.funder)
    c = court.court_for(p)
    d = _resolved(c, grief.dispute_id)
    waited = time.monotonic() - grief.opened_at
    resolved = next(e for e in court.dispute_events(c) if isinstance(e, court.DisputeResolvedEvent)
                    and e.dispute_id == grief.dispute_id)
    finalize_gas = p.w3.eth.get_transaction_receipt(resolved.tx_hash)["gasUsed"]
    assert d.state is court.Verdict.STAGE_RIGHT, d  # the jury's replay = the stage's signed output, bit for bit
    assert p.nodes.stake_of(grief.stage) == grief.stake_before
    assert not [e for e in p.nodes.events("Slashed") if e.args["node"] == grief.stage]
    credits = [(e.args["account"], int(e.args["amount"])) for e in c.events("Credited")
               if int(e.args["disputeId"]) == grief.dispute_id]
    assert credits == [(grief.stage, d.bond)]  # the challenger's bond went to the stage it accused
    assert c.withdrawable(grief.challenger) == 0
    assert p.market.get_request(d.request_id).status.name == "ACCEPTED"
    print(f"griefing dispute {grief.dispute_id}: gas {grief.gas}, cost {grief.cost} wei (bond {d.bond}), "
          f"resolved {waited:.0f}s after it was opened (the jury loaded layers 20:30 first); finalize+callback gas "
          f"{finalize_gas}")


@pytest.fixture(scope="module")
def invalid_requests(lmnet, devnet, protocol_manifest_path) -> list[int]:
    """A prompt over the context limit and one with an unknown token id, sent raw (as a buggy client would)."""
    client = _client(devnet, protocol_manifest_path, lmnet)
    spec = client.model_info(lmnet.model_id).spec
    over_context = [1] * spec.max_context  # + max_new_tokens > max_context
    unknown_id = [1, 4093, int(spec.config["vocab_size"])]
    params = client.params(3, 2, 60, 60)
    rids = []
    for ids in (over_context, unknown_id):  # the SDK would refuse both (fee saved): sent raw, as a buggy client would
        cid = client.store.add(encode_tensor(ids, "int32", [len(ids)]))
        rids.append(client.submit_raw(lmnet.model_id, cid, hash_vector(ids, 32), FEE, params))
    for rid in rids:
        client.wait(rid, timeout=120)
    return rids


def test_prompt_over_the_context_limit_or_unknown_ids_settle_invalid_input_with_the_committee_paid(
        lmnet, devnet, protocol_manifest_path, invalid_requests):
    client = _client(devnet, protocol_manifest_path, lmnet)
    for rid in invalid_requests:
        res = client.result(rid)
        assert res.status == "InvalidInput"
        assert all(m.revealed and m.paid and not m.slashed for m in res.committee)


def test_stage_flags_fail_with_one_line_errors():
    from verinfer.errors import ConfigError
    from verinfer.node import lmstage

    assert lmstage.parse_stage("smollm2-135m-instruct:10:20") == ("smollm2-135m-instruct", 10, 20)
    assert lmstage.parse_endpoint("tcp://127.0.0.1:7001") == ("127.0.0.1", 7001)
    assert lmstage.parse_stage_fault("swap") == "swap:0"
    for call, msg in [
        (lambda: lmstage.parse_stage("smollm2:20"), "MODEL:LO:HI"),
        (lambda: lmstage.parse_stage("smollm2:20:10"), "empty"),
        (lambda: lmstage.parse_stage("smollm2:a:10"), "integers"),
        (lambda: lmstage.parse_endpoint("http://127.0.0.1:7001"), "tcp://HOST:PORT"),
        (lambda: lmstage.parse_stage_fault("explode:1"), "KIND"),
        (lambda: lmstage.check_options(None, "lie:0", 2, 20.0), "needs --stage"),
        (lambda: lmstage.check_options(None, None, 0, 20.0), "--lm-replicas"),
    ]:
        with pytest.raises(ConfigError, match=msg) as exc:
            call()
        assert "\n" not in str(exc.value)


# ------------------------------------------------------------------ the auditor re-verifies LLM requests (docs/audit.md)

LLM_CLAIMS = ("model.weights", "model.commitment", "model.profile", "model.layout", "model.tensors", "input",
              "output.payload", "output.reexecution", "output.reveals", "quorum.committee", "quorum.reveals",
              "quorum.outcome", "quorum.settlement")


def _auditor(lmnet: LmNetwork, store_dir: Path | None = None):  # noqa: ANN202
    from verinfer.auditor import Auditor
    from verinfer.storage import open_store

    return Auditor(lmnet.protocol(lmnet.funder), open_store(root=store_dir or lmnet.store_dir))


def test_audit_reruns_the_llm_request_and_names_the_head_that_revealed_wrong_tokens(lmnet, lying_request):
    from verinfer.auditor import Verdict
    from verinfer.auditor.context import short
    from verinfer.auditor.llm import STAGE_FAULTS_NOTE

    report = _auditor(lmnet).audit(lying_request.rid)
    for c in report.claims:  # shown with -rP: the numbers docs/audit.md quotes
        print(f"{c.verdict.value:4} {c.name}: {c.detail}")
    assert report.ok, [f"{c.name}: {c.detail}" for c in report.failures]
    for name in LLM_CLAIMS:
        assert report.claim(name).verdict is Verdict.PASS, report.claim(name)
    # one process, all 30 layers, the nodes' own rule (decide + tokens_hash) = the sharded heads' settled tokens
    assert report.context.reference_output == lying_request.want
    assert "re-executed all 30 layers in one process" in report.claim("output.reexecution").detail
    # which head revealed what: head3 (trusted the lying stage) wrong and slashed; head1/head2 right and paid
    reveals = report.claim("output.reveals").detail
    for n in lmnet.heads():
        row = next(r for r in reveals.split("; ") if r.startswith(short(n.address)))
        if n.name == "head3":
            assert "WRONG (slashed)" in row and "differs at token" in row, row
        else:
            assert "= re-executed: right (paid)" in row, row
    assert STAGE_FAULTS_NOTE in report.notes  # stage faults live only in node logs


def test_audit_of_the_dispute_jury_request(lmnet, lying_request):
    """`verinfer audit` of the liar's jury request: the transcript rule, the stage output rows, the auditor's own
    replay of layers 10:20 (the jury heads' function) and the court's StageWrong ruling all check out."""
    from verinfer.auditor import Verdict

    p = lmnet.protocol(lmnet.funder)
    c = court.court_for(p)
    liar = lmnet.by_name("liar")
    ev = next(e for e in court.dispute_events(c, lying_request.start_block)
              if isinstance(e, court.DisputeOpenedEvent) and e.stage == liar.address)
    d = _resolved(c, ev.dispute_id)
    report = _auditor(lmnet).audit(d.request_id)
    for cl in report.claims:
        print(f"{cl.verdict.value:4} {cl.name}: {cl.detail}")
    assert report.ok, [f"{cl.name}: {cl.detail}" for cl in report.failures]
    for name in ("model.layout", "model.tensors", "input", "output.payload", "output.reexecution", "output.reveals",
                 "court.verdict", "quorum.outcome", "quorum.settlement"):
        assert report.claim(name).verdict is Verdict.PASS, report.claim(name)
    assert "stage-check transcript" in report.claim("input").detail
    assert "layers 10:20 over 1 FORWARD(s)" in report.claim("output.reexecution").detail
    assert "STAGE_WRONG" in report.claim("court.verdict").detail
    assert report.claim("output.reveals").detail.count("= re-executed: right (paid)") == 3


def test_audit_of_invalid_llm_inputs_one_through_the_cli(lmnet, invalid_requests, devnet, protocol_manifest_path):
    over_context, unknown_id = invalid_requests
    proc = subprocess.run(
        [sys.executable, "-m", "verinfer.cli", "audit", str(over_context), "--rpc-url", devnet.rpc_url,
         "--manifest", str(protocol_manifest_path), "--store", str(lmnet.store_dir), "--json"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    docs = [doc, _auditor(lmnet).audit(unknown_id).to_json()]
    for doc, why in zip(docs, ("context limit", "outside the vocabulary"), strict=True):
        claims = {c["name"]: c for c in doc["claims"]}
        assert doc["status"] == "INVALID_INPUT" and doc["counts"]["FAIL"] == 0, doc
        assert claims["input"]["verdict"] == "PASS" and why in claims["input"]["detail"]
        assert claims["model.tensors"]["verdict"] == "PASS" and claims["model.layout"]["verdict"] == "PASS"
        assert claims["output.reexecution"]["verdict"] == "N/A"
        assert claims["output.reveals"]["detail"].count("revealed INVALID_INPUT = re-executed: right (paid)") == 3


def test_audit_fails_the_model_claim_on_a_tampered_tensor(lmnet, lying_request, tmp_path):
    from verinfer.auditor import Verdict
    from verinfer.storage import open_store

    # a hard-linked copy of the store (cheap), with one tensor's block replaced by different bytes
    copy = tmp_path / "store"
    shutil.copytree(lmnet.store_dir, copy, copy_function=os.link)
    entry = next(e for e in lmnet.published.spec.tensors if e.name == "blk.7.attn_norm.weight")
    block = open_store(root=copy).block_path(entry.cid)
    raw = bytearray(block.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    block.unlink()  # a new file: the original store (a hard link) keeps its bytes
    block.write_bytes(bytes(raw))

    report = _auditor(lmnet, copy).audit(lying_request.rid)
    assert not report.ok
    c = report.claim("model.tensors")
    assert c.verdict is Verdict.FAIL and "blk.7.attn_norm.weight" in c.detail and entry.cid in c.detail
    assert "does not match" in c.detail and "\n" not in c.detail
    assert [f.name for f in report.failures] == ["model.tensors"]
    assert report.claim("output.reexecution").verdict is Verdict.NA  # nothing re-run on unverified weights
    assert report.claim("model.commitment").verdict is Verdict.PASS  # the spec itself is intact
