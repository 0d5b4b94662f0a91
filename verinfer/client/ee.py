"""Equivariantly encrypted models for their owner: the key file, the permuted input, the decrypted result.

Why one module: `verinfer model publish --encrypt`, `verinfer request --ee-key` and `verinfer request show
--ee-key` share one key-file format and one permute/decrypt step (verinfer.inference.ee does the maths);
the commands only parse and render. The key file never goes to the content store or the chain.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from verinfer.chain.protocol import Protocol
from verinfer.chain.types import ModelInfo
from verinfer.client.inputs import PreparedInput, encode_payload
from verinfer.client.llm import DEFAULT_LAYOUT, PublishedLlm, publish_llm, tokenizer
from verinfer.client.publish import Published, publish_encrypted
from verinfer.client.result import RequestResult, predicted_class
from verinfer.errors import ConfigError
from verinfer.inference import ee_llm
from verinfer.inference.ee import EEKey, EEKeyError, decrypt_output, encrypt_input_for, is_encrypted_spec
from verinfer.inference.ee_llm import VocabKey, is_encrypted_llm
from verinfer.inference.runtime import Model
from verinfer.models import gguf
from verinfer.models.spec import ModelSpec
from verinfer.storage.base import ContentStore

__all__ = ["KeyFile", "check_key_path", "write_key_file", "publish_encrypted_to_file", "read_key_file", "key_for", "encrypt_prepared",
           "decrypt_result", "is_encrypted_spec", "is_encrypted_llm", "publish_encrypted_llm_to_file", "LLM_KEY_FORMAT"]

#: the requester's key of an encrypted LLM deployment: `{format, model_id, vocab_size, vocab_perm}` — π only
#: (`vocab_perm[i]` = plaintext id of encrypted id i); the hidden-state transform is discarded after publishing
LLM_KEY_FORMAT = "verinfer.ee-llm-key.v1"
AnyKey = EEKey | VocabKey


@dataclass(frozen=True)
class KeyFile:
    """An EE key (an MLP/CNN's permutations, or an LLM's vocabulary permutation) and the model id it was
    published as ("" until registration has returned)."""

    key: AnyKey
    model_id: str
    path: Path


def check_key_path(path: Path, force: bool = False) -> None:
    """Refuse to clobber an existing key (it may be the only copy of another model's key) before anything is sent."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists: refusing to overwrite an EE key (pass --force to replace it)")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write the EE key to {path}: directory {path.parent} does not exist")


def write_key_file(path: Path, key: AnyKey, model_id: bytes | None, *, force: bool = False) -> Path:
    """Write `{format, model_id, perms}` (MLP/CNN) or `{format, model_id, vocab_size, vocab_perm}` (LLM) with mode
    0600 (owner only): the key is the model's only secret."""
    check_key_path(path, force)
    if isinstance(key, VocabKey):
        doc: dict[str, Any] = {"format": LLM_KEY_FORMAT, "vocab_size": len(key.perm),
                               "vocab_perm": [int(v) for v in key.perm]}
    else:
        doc = json.loads(key.to_json())
    doc["model_id"] = "0x" + model_id.hex() if model_id is not None else ""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an overwritten file keeps no wider mode
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc) + "\n")
    return path


def publish_encrypted_to_file(protocol: Protocol, store: ContentStore, model: Model, key_out: Path, *,
                              force: bool = False, proof_mode: str = "none", setup: str = "dev",
                              requires_tee: bool = False) -> Published:
    """`model publish --encrypt`: draw a key, write it to `key_out`, publish the encrypted copy, record its id.

    The key is written before anything is sent (so it exists the moment the model does), removed again if
    publishing fails, and rewritten with the model id once the registry has returned it."""
    if not isinstance(model, ModelSpec):
        raise ConfigError("--encrypt applies to integer MLPs and CNNs, not language models")
    key = EEKey.generate(model)
    write_key_file(key_out, key, None, force=force)
    try:
        pub, _ = publish_encrypted(protocol, store, model, key=key, proof_mode=proof_mode, setup=setup,
                                   requires_tee=requires_tee)
    except BaseException:
        key_out.unlink(missing_ok=True)  # nothing registered under this key: leave no stale key file behind
        raise
    write_key_file(key_out, key, pub.model_id, force=True)
    return pub


def publish_encrypted_llm_to_file(protocol: Protocol, store: ContentStore, key_out: Path, *, force: bool = False,
                                  ranges: Sequence[tuple[int, int]] = DEFAULT_LAYOUT, max_new_tokens: int = 16,
                                  checkpoint: gguf.Checkpoint | None = None, seed: int | None = None) -> PublishedLlm:
    """`model publish smollm2 --encrypt`: draw a deployment key, keep π in `key_out` (0600), publish the rewritten
    checkpoint as its own model (`publish_llm(encrypt_key=...)`), record the model id in the key file.

    Same order as the MLP's: the key file exists before anything is sent and is removed if publishing fails."""
    check_key_path(key_out, force)
    ck = checkpoint or gguf.read_gguf()
    key = ee_llm.EEKey.generate(ck.config, seed)
    vk = VocabKey.of(key)
    write_key_file(key_out, vk, None, force=force)
    try:
        pub = publish_llm(protocol, store, ranges=ranges, max_new_tokens=max_new_tokens, checkpoint=ck, encrypt_key=key)
    except BaseException:
        key_out.unlink(missing_ok=True)
        raise
    write_key_file(key_out, vk, pub.model_id, force=True)
    return pub


def _llm_key(obj: dict[str, Any], path: Path) -> VocabKey:
    perm = obj.get("vocab_perm")
    if not isinstance(perm, list) or not perm or len(perm) != obj.get("vocab_size"):
        raise EEKeyError(f"EE key file {path} is malformed: vocab_perm missing or not vocab_size long")
    arr = np.asarray(perm, dtype=np.int64)
    if not np.array_equal(np.sort(arr), np.arange(len(arr))):
        raise EEKeyError(f"EE key file {path} is malformed: vocab_perm is not a permutation")
    return VocabKey(arr)


def read_key_file(path: Path) -> KeyFile:
    """Load a key file written by `write_key_file`; a missing or malformed file is a one-line error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read EE key file {path}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    key: AnyKey
    if isinstance(obj, dict) and obj.get("format") == LLM_KEY_FORMAT:
        key = _llm_key(obj, path)
    else:
        key = EEKey.from_json(text)
    model_id = (obj.get("model_id") if isinstance(obj, dict) else "") or ""
    return KeyFile(key, str(model_id).lower(), path)


def key_for(kf: KeyFile, info: ModelInfo) -> AnyKey:
    """The key, checked against the model it is used with: another model's key would silently scramble results."""
    if isinstance(kf.key, VocabKey) or is_encrypted_llm(info.spec):
        return _llm_key_for(kf, info)
    if not is_encrypted_spec(info.spec):
        raise EEKeyError(f"model {info.model_id_hex} ({info.name}) is not an encrypted model: "
                         f"--ee-key applies to models published with --encrypt")
    if kf.model_id != info.model_id_hex.lower():
        raise EEKeyError(f"EE key {kf.path} belongs to model {kf.model_id or '(none recorded)'}, "
                         f"not {info.model_id_hex}")
    assert isinstance(kf.key, EEKey) and isinstance(info.spec, ModelSpec)
    kf.key.check(info.spec)  # an MLP/CNN: is_encrypted_spec checked it
    return kf.key


def _llm_key_for(kf: KeyFile, info: ModelInfo) -> VocabKey:
    """An LLM key with its encrypted LLM: the model id recorded at publish time and the vocabulary size must match."""
    if not is_encrypted_llm(info.spec):
        raise EEKeyError(f"model {info.model_id_hex} ({info.name}) is not an encrypted language model: this LLM "
                         f"key applies to models published with `model publish smollm2 --encrypt`")
    if not isinstance(kf.key, VocabKey):
        raise EEKeyError(f"EE key {kf.path} is an MLP/CNN key, not a language-model key for {info.model_id_hex}")
    if kf.model_id != info.model_id_hex.lower():
        raise EEKeyError(f"EE key {kf.path} belongs to model {kf.model_id or '(none recorded)'}, "
                         f"not {info.model_id_hex}")
    vocab = int(info.spec.config["vocab_size"])
    if len(kf.key.perm) != vocab:
        raise EEKeyError(f"EE key {kf.path} permutes {len(kf.key.perm)} token ids, the model has {vocab}")
    return kf.key


def encrypt_prepared(prepared: PreparedInput, info: ModelInfo, key: AnyKey) -> PreparedInput:
    """The plaintext input permuted with the key's input permutation: what is stored and hashed on chain.

    An LLM prompt (tokenized with the public tokenizer) goes out as encrypted token ids."""
    if isinstance(key, VocabKey):
        ids = key.encrypt_ids(prepared.vector)
        return replace(prepared, vector=ids, payload=encode_payload(ids, info.spec),
                       source=f"{prepared.source} (token ids permuted with the EE key)")
    vector = encrypt_input_for(info.spec, prepared.vector, key)
    return replace(prepared, vector=vector, payload=encode_payload(vector, info.spec))


def decrypt_llm_result(res: RequestResult, key: VocabKey, spec: gguf.LlmSpec, store: ContentStore) -> RequestResult:
    """Settled encrypted token ids → plaintext ids (π) → text with the public tokenizer (EOS dropped)."""
    if res.output is None:
        return replace(res, output_space="decrypted")
    plain = key.decrypt_ids(res.output)
    eos = key.perm[int(spec.config["eos_id"])]
    text = tokenizer(spec, store).decode([i for i in plain if i != eos])
    return replace(res, output=plain, text=text, output_space="decrypted", permuted_output=list(res.output))


def decrypt_result(res: RequestResult, key: AnyKey, *, spec: Any = None, store: ContentStore | None = None) -> RequestResult:
    """The result with the settled (permuted) logits un-permuted and the real predicted class (an LLM: the text;
    `spec` and `store` are needed for its tokenizer).

    The chain's output and its hash stay as they are (`permuted_output` keeps them for the record)."""
    if isinstance(key, VocabKey):
        if spec is None or store is None:
            raise ConfigError("decrypting a language model's tokens needs its spec and the content store")
        return decrypt_llm_result(res, key, spec, store)
    if res.output is None:
        return replace(res, output_space="decrypted")
    plain = decrypt_output(res.output, key)
    return replace(res, output=plain, prediction=predicted_class(plain), output_space="decrypted",
                   permuted_output=list(res.output))
