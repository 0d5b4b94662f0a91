"""SmolLM2 on the market with real node processes on anvil (issue 10, items 1–4 and 6).

One module-scoped network: SmolLM2 published with the layout 0:10 | 10:20 | 20:30 (per-shard
commitments pinned by shardLayoutHash); stage nodes serve the layer ranges they registered in
NodeRegistry on their registered tcp:// endpoints; three full-model nodes (drawn as the committee)
are the accountable heads and also serve 10:20. A fourth 10:20 node ("liar", registered first, so
every head tries it first) answers with a corrupted hidden state.

* head1/head2 compare 2 replicas per stage: they catch the liar, break the tie with a spare, route
  around it, record the fault as evidence and reveal the honest tokens;
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from verinfer.chain.devnet import funded_account
from verinfer.client import Client
from verinfer.client.inputs import prepare_input
from verinfer.constants import ETHER
from verinfer.devnet.lm import LmNetwork, LmNode, default_nodes
from verinfer.inference.llama_int import IntModel
from verinfer.models import gguf
from verinfer.models.hashing import hash_vector
from verinfer.models.tensor import encode_tensor

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
    try:
        net.publish()
        net.onboard()
        net.start_nodes(devnet.rpc_url)
        yield net
    finally:
        net.stop()


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


@pytest.fixture(scope="module")
def lying_request(lmnet, devnet, protocol_manifest_path, ck) -> Settled:
    client = _client(devnet, protocol_manifest_path, lmnet)
    info = client.model_info(lmnet.model_id)
    prepared = prepare_input(PROMPT, info.spec, lmnet.store())
    p = lmnet.protocol(lmnet.funder)
    stake_before = {n.name: p.nodes.stake_of(n.address) for n in lmnet.nodes}
    rid = client.submit(lmnet.model_id, prepared.payload, FEE, replicas=3, quorum=2, commit_blocks=300, reveal_blocks=100)
    want = IntModel(ck).generate(prepared.vector, N_NEW)  # single process, all 30 layers (while the nodes work)
    return Settled(rid, client.wait(rid, timeout=400), want, stake_before)


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
            stalls = [e for e in evidence if e["request_id"] == rid and e["kind"] == "stall"]
            assert (0, lmnet.by_name("staller").address) in [(e["stage"], e["operator"]) for e in stalls]
    # the lying stage itself is not slashable on-chain (no fraud proof for transformer layers): stake unchanged
    liar = lmnet.by_name("liar")
    assert p.nodes.stake_of(liar.address) == stake_before["liar"]


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
