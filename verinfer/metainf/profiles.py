"""Profile documents: the JSON a model's registered `executionProfileHash` is the keccak of.

Why a document: a publisher-chosen profile (method, threads, batch, hardware class) cannot be
re-derived from the spec, so `model publish --profile auto` stores it with the model (content store,
anchored with ModelRegistry.setArtifacts) and nodes read it back to know what to run.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from eth_utils import keccak

from verinfer.errors import VerinferError
from verinfer.models.spec import REFERENCE_KERNELS, REFERENCE_RUNTIME, execution_profile

#: a profile document is a few hundred bytes; anything larger is not one
MAX_PROFILE_BYTES = 1 << 14


def base_profile(model: Any) -> dict[str, Any]:
    """The reference profile of a model (what `verinfer.inference.runtime.profile_hash` hashes)."""
    if getattr(model, "kind", None) == "lm":
        from verinfer.inference.lm import lm_profile

        return lm_profile(model)
    if getattr(model, "kind", None) == "llm":  # sharded LLM: the integer profile (docs/lm.md)
        from verinfer.models.gguf import llm_profile

        return llm_profile(model)
    return execution_profile("mlp", REFERENCE_RUNTIME, REFERENCE_KERNELS)


def profile_document(profile: Mapping[str, Any]) -> bytes:
    """Canonical JSON of a profile: keccak256 of these bytes is the registered profile hash."""
    return json.dumps(dict(profile), sort_keys=True, separators=(",", ":")).encode()


def document_hash(doc: bytes) -> bytes:
    """keccak256 of a stored profile document (must equal ModelRegistry's executionProfileHash)."""
    return keccak(doc)


def parse_profile_document(doc: bytes) -> dict[str, Any]:
    """A profile dict from stored bytes; one-line error if it is not a canonical profile document."""
    if len(doc) > MAX_PROFILE_BYTES:
        raise VerinferError(f"profile document is {len(doc)} bytes (max {MAX_PROFILE_BYTES})")
    try:
        obj = json.loads(doc)
    except ValueError:
        raise VerinferError("profile document is not JSON") from None
    if not isinstance(obj, dict) or not {"kind", "runtime", "kernels"} <= obj.keys():
        raise VerinferError("profile document lacks kind/runtime/kernels")
    if profile_document(obj) != doc:
        raise VerinferError("profile document is not in canonical form (sorted keys, no spaces)")
    return obj
