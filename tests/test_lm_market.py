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


def test_lying_stage_is_routed_around_and_the_trusting_head_is_slashed(lmnet, devnet, protocol_manifest_path, ck):
    client = _client(devnet, protocol_manifest_path, lmnet)
    info = client.model_info(lmnet.model_id)
    prepared = prepare_input(PROMPT, info.spec, lmnet.store())
    p = lmnet.protocol(lmnet.funder)
    head3 = lmnet.by_name("head3")
    stake_before = {n.name: p.nodes.stake_of(n.address) for n in lmnet.nodes}

    rid = client.submit(lmnet.model_id, prepared.payload, FEE, replicas=3, quorum=2, commit_blocks=300, reveal_blocks=100)
    want = IntModel(ck).generate(prepared.vector, N_NEW)  # single process, all 30 layers (while the nodes work)
    res = client.wait(rid, timeout=400)

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


def test_prompt_over_the_context_limit_or_unknown_ids_settle_invalid_input_with_the_committee_paid(
        lmnet, devnet, protocol_manifest_path):
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
        res = client.wait(rid, timeout=120)
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
