"""Which local proving key can satisfy a model's on-chain verifier (kept out of the worker loop).

With `--prover-setup auto` the publisher's prover bundle (ModelRegistry.artifactsCid, fetched from
the content store) comes first, then the prover's local cache: shipped, ceremony, dev keys. A key
is kept only if its commitment equals the registry's (in proof mode 1 that is the verification
key's hash, so a wrong key is excluded before any proving work). Cached per (model, bundle CID).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from verinfer.constants import PROOF_PRIVATE_WEIGHTS, PROOF_PUBLIC_WEIGHTS
from verinfer.errors import VerinferError
from verinfer.prover import pipeline
from verinfer.prover.bundle import fetch_bundle
from verinfer.prover.types import CircuitArtifacts

log = logging.getLogger("verinfer.node")

SETUPS = ("auto", "shipped", "ceremony", "dev")
_MODES = {PROOF_PUBLIC_WEIGHTS: "public", PROOF_PRIVATE_WEIGHTS: "private"}


class ProvingKeys:
    """Thread-safe cache of candidate (setup name, CircuitArtifacts) per model, best first."""

    def __init__(self, store: Any, load_spec: Callable[[str], Any], setup: str = "auto") -> None:
        if setup not in SETUPS:
            raise VerinferError(f"prover setup must be one of {', '.join(SETUPS)}, got {setup!r}")
        self.store = store
        self.load_spec = load_spec
        self.setup = setup
        self._cache: dict[tuple[str, int, str], list[tuple[str, CircuitArtifacts]]] = {}
        self._lock = threading.Lock()  # one compile/setup per circuit, even with several provers

    def candidates(self, weights_cid: str, proof_mode: int, commitment: int, bundle_cid: str) -> list[tuple[str, CircuitArtifacts]]:
        mode = _MODES.get(proof_mode)
        if mode is None:
            return []
        key = (weights_cid, proof_mode, bundle_cid)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._find(weights_cid, mode, commitment, bundle_cid)
            return list(self._cache[key])

    def _find(self, weights_cid: str, mode: str, commitment: int, bundle_cid: str) -> list[tuple[str, CircuitArtifacts]]:
        spec = self.load_spec(weights_cid)
        found: list[tuple[str, CircuitArtifacts]] = []
        if bundle_cid and self.setup == "auto":
            try:
                arts = fetch_bundle(self.store, bundle_cid, expected_commitment=commitment, spec=spec)
                if arts.mode == mode:
                    return [("bundle", arts)]  # the publisher's keys match the registry: no local setup work
                log.warning("prover bundle %s is for proof mode %s, the model uses %s; ignoring it", bundle_cid, arts.mode, mode)
            except VerinferError as exc:
                log.warning("cannot use the published prover bundle %s: %s; trying local keys", bundle_cid, exc)
        setups = ("shipped", "ceremony", "dev") if self.setup == "auto" else (self.setup,)
        for setup in setups:
            try:
                arts = pipeline.prepare(spec, mode, setup=setup)
            except VerinferError as exc:
                log.debug("no %s proving key: %s", setup, exc)
                continue
            if int(arts.commitment) == commitment:
                found.append((setup, arts))
        return found
