"""The auditor's single-process re-run of a sharded LLM request equals what the heads compute with stages.

Fast checks on a small random Llama checkpoint (no chain): `pipeline.run_local` (every layer in one
process, what `verinfer audit` runs) gives the same tokens as `run_pipeline` through stage servers with the
heads' `stop_at_eos=True`, including a stop at EOS, and `runtime.decide` with it hashes them with
`pipeline.tokens_hash`. The on-chain audits (settled request, lying head, tampered tensor) are in
tests/test_lm_market.py, which holds the SmolLM2 network.
"""

from __future__ import annotations

import dataclasses

import pytest

from verinfer.inference import runtime
from verinfer.inference.llama_int import IntModel
from verinfer.inference.pipeline import PipelineError, StageServer, run_local, run_pipeline, tokens_hash
from verinfer.models import gguf
from verinfer.models.hashing import hash_vector
from verinfer.models.tensor import encode_tensor

IDS = [3, 17, 42, 5, 9]


def _checkpoint(stop_at_eos: bool) -> gguf.Checkpoint:
    """A random checkpoint; with `stop_at_eos` its EOS id is the first token the model emits (random tied-embedding
    models repeat one token), so decoding must stop after that one token."""
    ck = gguf.random_model("llama", seed=7, n_layers=3, n_heads=4, n_kv_heads=2, d_model=64, d_ff=128)
    if not stop_at_eos:
        return ck
    first = IntModel(ck).generate(IDS, 1)[0]
    return dataclasses.replace(ck, config=dataclasses.replace(ck.config, eos_id=first))


@pytest.mark.parametrize("stop_at_eos", [False, True])
def test_single_process_rerun_equals_the_sharded_pipeline(stop_at_eos):
    ck = _checkpoint(stop_at_eos)
    spec = gguf.spec_from_checkpoint(ck, "tiny", max_new_tokens=8)
    whole = IntModel(ck)
    servers = [StageServer(IntModel(ck, (i, i + 1), globals_=False)).start() for i in range(3)]
    try:
        eps = [[f"127.0.0.1:{s.port}"] for s in servers]
        piped = run_pipeline(IntModel(ck, (0, 0)), IDS, eps, spec.max_new_tokens, timeout=10.0, stop_at_eos=True).tokens
    finally:
        for s in servers:
            s.close()
    local = run_local(spec, whole, IDS)
    assert local == piped
    if stop_at_eos:  # stopped at EOS, EOS included, as the heads do
        assert local == [ck.config.eos_id]
    else:
        assert len(local) == spec.max_new_tokens and ck.config.eos_id not in local
    # decide (the nodes' consensus rule) with the single-process executor: tokens_hash of the same tokens
    payload = encode_tensor(IDS, "int32", [len(IDS)])
    out = runtime.decide(spec, None, payload, hash_vector(IDS, 32), run=lambda x: run_local(spec, whole, x))
    assert out.outputs == local and out.output_hash == tokens_hash(local)
    # over the context limit: INVALID_INPUT from the same rule, before any layer runs
    long = [1] * (spec.max_context - 1)
    bad = runtime.decide(spec, None, encode_tensor(long, "int32", [len(long)]), hash_vector(long, 32),
                         run=lambda x: pytest.fail("must not run"))
    assert bad.is_invalid and "context" in (bad.invalid_reason or "")


def test_run_local_refuses_a_partial_model():
    ck = _checkpoint(False)
    spec = gguf.spec_from_checkpoint(ck, "tiny", max_new_tokens=4)
    with pytest.raises(PipelineError, match="every layer"):
        run_local(spec, IntModel(ck, (0, 2)), IDS)
