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

from verinfer.chain.protocol import Protocol
from verinfer.chain.types import ModelInfo
from verinfer.client.inputs import PreparedInput, encode_payload
from verinfer.client.publish import Published, publish_encrypted
from verinfer.client.result import RequestResult, predicted_class
from verinfer.errors import ConfigError
from verinfer.inference.ee import EEKey, EEKeyError, decrypt_output, encrypt_input_for, is_encrypted_spec
from verinfer.inference.runtime import Model
from verinfer.models.spec import ModelSpec
from verinfer.storage.base import ContentStore

__all__ = ["KeyFile", "check_key_path", "write_key_file", "publish_encrypted_to_file", "read_key_file", "key_for", "encrypt_prepared",
           "decrypt_result", "is_encrypted_spec"]


@dataclass(frozen=True)
class KeyFile:
    """An EE key and the model id it was published as ("" until registration has returned)."""

    key: EEKey
    model_id: str
    path: Path


def check_key_path(path: Path, force: bool = False) -> None:
    """Refuse to clobber an existing key (it may be the only copy of another model's key) before anything is sent."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists: refusing to overwrite an EE key (pass --force to replace it)")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write the EE key to {path}: directory {path.parent} does not exist")


def write_key_file(path: Path, key: EEKey, model_id: bytes | None, *, force: bool = False) -> Path:
    """Write `{format, model_id, perms}` with mode 0600 (owner only): the key is the model's only secret."""
    check_key_path(path, force)
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


def read_key_file(path: Path) -> KeyFile:
    """Load a key file written by `write_key_file`; a missing or malformed file is a one-line error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read EE key file {path}: {exc.strerror or exc}") from None
    key = EEKey.from_json(text)
    model_id = json.loads(text).get("model_id") or ""
    return KeyFile(key, str(model_id).lower(), path)


def key_for(kf: KeyFile, info: ModelInfo) -> EEKey:
    """The key, checked against the model it is used with: another model's key would silently scramble results."""
    if not is_encrypted_spec(info.spec):
        raise EEKeyError(f"model {info.model_id_hex} ({info.name}) is not an encrypted model: "
                         f"--ee-key applies to models published with --encrypt")
    if kf.model_id != info.model_id_hex.lower():
        raise EEKeyError(f"EE key {kf.path} belongs to model {kf.model_id or '(none recorded)'}, "
                         f"not {info.model_id_hex}")
    kf.key.check(info.spec)  # an MLP/CNN: is_encrypted_spec checked it
    return kf.key


def encrypt_prepared(prepared: PreparedInput, info: ModelInfo, key: EEKey) -> PreparedInput:
    """The plaintext input permuted with the key's input permutation: what is stored and hashed on chain."""
    vector = encrypt_input_for(info.spec, prepared.vector, key)
    return replace(prepared, vector=vector, payload=encode_payload(vector, info.spec))


def decrypt_result(res: RequestResult, key: EEKey) -> RequestResult:
    """The result with the settled (permuted) logits un-permuted and the real predicted class.

    The chain's output and its hash stay as they are (`permuted_output` keeps them for the record)."""
    if res.output is None:
        return replace(res, output_space="decrypted")
    plain = decrypt_output(res.output, key)
    return replace(res, output=plain, prediction=predicted_class(plain), output_space="decrypted",
                   permuted_output=list(res.output))
