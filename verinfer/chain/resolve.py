"""Model name → model id, with the refuse-on-ambiguity rule (issue 7 attack 14: no name squatting).

A name resolves only when exactly one publisher has a non-deprecated model of that name (or the
caller names the publisher); otherwise the caller must pass the 0x model id.
"""

from __future__ import annotations

import re

from web3 import Web3

from verinfer.chain.protocol import Protocol
from verinfer.errors import ConfigError

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def resolve_model(protocol: Protocol, text: str, publisher: str | None = None) -> bytes:
    """A model id (0x + 64 hex) that exists, or a name → the latest non-deprecated version of its one publisher."""
    text = text.strip()
    models = protocol.models
    if _HEX32.match(text):
        mid = bytes.fromhex(text[2:])
        if not models.exists(mid):
            raise ConfigError(f"unknown model id {text}")
        return mid
    if text.startswith("0x"):
        raise ConfigError(f"model id must be 0x followed by 64 hex digits, got {text!r}")
    if not _NAME.match(text):
        raise ConfigError(f"invalid model id or name {text!r}")
    want = Web3.to_checksum_address(publisher) if publisher else None
    best: dict[str, tuple[int, bytes]] = {}
    for i in range(models.model_count()):
        mid = models.model_id_at(i)
        m = models.get_model(mid)
        if m.name != text or m.deprecated or (want and m.publisher != want):
            continue
        if m.publisher not in best or m.version > best[m.publisher][0]:
            best[m.publisher] = (int(m.version), mid)
    if not best:
        raise ConfigError(f"no registered model named {text!r}" + (f" from {want}" if want else "") + " (pass its 0x model id)")
    if len(best) > 1:
        raise ConfigError(f"model name {text!r} is published by {len(best)} publishers "
                          f"({', '.join(sorted(best))}); pass the 0x model id or the publisher")
    return next(iter(best.values()))[1]
