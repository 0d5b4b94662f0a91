"""The protocol's shared value types, defined once for client, node, operator CLI, auditor and explorer.

Why one module: a model record, a request status or a model-name lookup with two definitions is
two protocols. `resolve_model_id` carries the one name rule (issue 7, attack 14): a name published
by two accounts is ambiguous and is refused, never silently resolved to whoever registered last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, Protocol

from eth_utils import to_checksum_address

from verinfer.constants import PROOF_NONE
from verinfer.errors import ConfigError

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class RequestStatus(IntEnum):
    """InferenceMarket.Status (protocol V2), in Solidity declaration order."""

    NONE = 0
    PENDING = 1
    COMMITTING = 2
    REVEALING = 3
    ACCEPTED = 4
    INVALID_INPUT = 5
    NO_QUORUM = 6
    EXPIRED = 7

    @property
    def label(self) -> str:
        """The Solidity name (`InvalidInput`), what the CLI and JSON output show."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def final(self) -> bool:
        """Settled: nothing about the outcome can change any more."""
        return self in FINAL_STATUSES

    @classmethod
    def from_label(cls, label: str) -> "RequestStatus":
        for s in cls:
            if s.label == label:
                return s
        raise ValueError(f"unknown request status {label!r}")


FINAL_STATUSES = frozenset({RequestStatus.ACCEPTED, RequestStatus.INVALID_INPUT, RequestStatus.NO_QUORUM,
                            RequestStatus.EXPIRED})


def status_label(code: int) -> str:
    """The Solidity name of an on-chain status value (an unknown value stays visible as `Status(9)`)."""
    try:
        return RequestStatus(int(code)).label
    except ValueError:
        return f"Status({code})"


@dataclass(frozen=True)
class ModelInfo:
    """A ModelRegistry record (`getModel`), plus the spec behind weightsCid when a caller loaded it."""

    model_id: bytes
    publisher: str
    name: str
    version: int
    weights_cid: str
    commitment: int
    verifier: str
    proof_mode: int
    execution_profile_hash: bytes
    shard_layout_hash: bytes
    num_layers: int
    input_bits: int
    output_bits: int
    requires_tee: bool
    deprecated: bool
    registered_at: int
    #: the loaded model spec (MLP or LM), set by readers that fetched weightsCid (client); else None
    spec: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_record(cls, record: Any, spec: Any = None) -> "ModelInfo":
        """From any object with the getModel fields as snake_case attributes (e.g. another ModelInfo or a test double)."""
        kw = {f.name: getattr(record, f.name) for f in fields(cls) if f.name != "spec"}
        kw["model_id"] = bytes(kw["model_id"])
        return cls(**kw, spec=spec)

    @property
    def model_id_hex(self) -> str:
        return "0x" + self.model_id.hex()

    @property
    def provable(self) -> bool:
        """A proof can be verified on-chain for this model (proof mode set and a verifier deployed)."""
        return self.proof_mode != PROOF_NONE and int(self.verifier, 16) != 0

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class ConsumerResult:
    """What a consumer contract received by callback (`onInferenceResult`); the output CID is in events."""

    request_id: int
    status: RequestStatus
    output_hash: int
    received: bool


class ModelReader(Protocol):
    """The ModelRegistry reads `resolve_model_id` needs (chain.protocol.ModelRegistry provides them)."""

    def exists(self, model_id: bytes | str) -> bool: ...
    def model_count(self) -> int: ...
    def model_id_at(self, index: int) -> bytes: ...
    def get_model(self, model_id: bytes | str) -> Any: ...


class AmbiguousModelError(ConfigError):
    """A model name is registered by more than one publisher: the caller must say which."""


def resolve_model_id(models: ModelReader, ref: str | bytes, publisher: str | None = None) -> bytes:
    """A model id from a 0x id (must exist) or a name: the newest non-deprecated version of that name.

    A name registered by several publishers is refused (AmbiguousModelError listing them) unless
    `publisher` picks one: anyone can register any name, so "newest registration wins" would hand
    the caller's requests to a squatter.
    """
    if isinstance(ref, (bytes, bytearray)):
        mid = bytes(ref)
        if len(mid) != 32 or not models.exists(mid):
            raise ConfigError(f"model id 0x{mid.hex()} is not registered")
        return mid
    text = ref.strip()
    if _HEX32.match(text):
        mid = bytes.fromhex(text[2:])
        if not models.exists(mid):
            raise ConfigError(f"model id {text} is not registered on this deployment (see: verinfer model list)")
        return mid
    if text.startswith("0x"):
        raise ConfigError(f"model id must be 0x followed by 64 hex digits, got {text!r}")
    if not _NAME.match(text):
        raise ConfigError(f"invalid model name {text!r} (letters, digits, '.', '_', '-'; or a 0x model id)")
    want = to_checksum_address(publisher) if publisher else None
    latest: dict[str, tuple[int, bytes]] = {}
    for i in range(int(models.model_count())):
        mid = bytes(models.model_id_at(i))
        m = models.get_model(mid)
        if m.name != text or m.deprecated:
            continue
        pub = to_checksum_address(m.publisher)
        if want is not None and pub != want:
            continue
        if pub not in latest or int(m.version) > latest[pub][0]:
            latest[pub] = (int(m.version), mid)
    if not latest:
        who = f" by publisher {want}" if want else ""
        raise ConfigError(f"no registered model named {text!r}{who} (see: verinfer model list)")
    if len(latest) > 1:
        listing = "; ".join(f"{pub} (v{v}, id 0x{mid.hex()})" for pub, (v, mid) in sorted(latest.items()))
        raise AmbiguousModelError(
            f"model name {text!r} is registered by {len(latest)} publishers: {listing}. "
            "Pass the 0x model id, or the publisher (--publisher ADDRESS)"
        )
    return next(iter(latest.values()))[1]


__all__ = ["AmbiguousModelError", "ConsumerResult", "FINAL_STATUSES", "ModelInfo", "ModelReader", "RequestStatus",
           "resolve_model_id", "status_label"]
