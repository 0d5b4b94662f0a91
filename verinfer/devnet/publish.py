"""Publish a model on a devnet: content-address the spec, deploy the verifier FIRST, then registerModel.

V2 fixes the verifier and proof mode at registration (no setVerifier), so the order matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from verinfer.chain.protocol import ModelInput, Protocol
from verinfer.constants import PROOF_MODES, PROOF_NONE
from verinfer.errors import ConfigError
from verinfer.inference import runtime

ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class PublishedModel:
    model_id: bytes
    name: str
    version: int
    weights_cid: str
    commitment: int
    proof_mode: int
    verifier: str
    artifacts_cid: str
    gas: dict[str, int]  # gas per publishing tx (verifier deploy, register, setArtifacts)


def publish_model(protocol: Protocol, store: Any, spec: Any, *, proof_mode: str = "none", setup: str = "dev",
                  name: str | None = None) -> PublishedModel:
    """Register `spec` (a loaded model) as a new version; proof modes deploy its Groth16 verifier first."""
    if proof_mode not in PROOF_MODES:
        raise ConfigError(f"proof mode must be one of {', '.join(PROOF_MODES)}, got {proof_mode!r}")
    assert protocol.sender is not None, "publishing needs a signing account"
    mode = PROOF_MODES[proof_mode]
    cid = store.add(spec.canonical_json())
    commitment = runtime.commitment(spec)
    verifier, bundle_cid, gas = ZERO, "", {}
    arts = None
    if mode != PROOF_NONE:
        from verinfer.prover import pipeline  # noqa: PLC0415  (the prover stack loads only for proven models)
        from verinfer.prover.bundle import publish_bundle  # noqa: PLC0415

        arts = pipeline.prepare(spec, proof_mode, setup=setup)
        commitment = int(arts.commitment)
        block = protocol.w3.eth.block_number
        verifier = pipeline.deploy_verifier(protocol.w3, protocol.sender, arts)
        gas["deploy verifier"] = _gas_since(protocol, block, verifier)
        bundle_cid = publish_bundle(store, arts)
    num_layers = getattr(spec, "num_layers", 1) if getattr(spec, "kind", "mlp") == "mlp" else 1
    receipt, model_id = protocol.models.register_model(ModelInput(
        name=name or spec.name, weights_cid=cid, commitment=commitment, verifier=verifier, proof_mode=mode,
        execution_profile_hash=runtime.profile_hash(spec), num_layers=num_layers, input_bits=spec.input_bits,
        output_bits=spec.output_bits,
    ))
    gas["register model"] = int(receipt["gasUsed"])
    if bundle_cid:
        gas["set artifacts"] = int(protocol.models.set_artifacts(model_id, bundle_cid)["gasUsed"])
    view = protocol.models.get_model(model_id)
    return PublishedModel(model_id, view.name, int(view.version), cid, commitment, mode, verifier, bundle_cid, gas)


def _gas_since(protocol: Protocol, block: int, address: str) -> int:
    """Gas of the tx that created `address` (searched in the blocks mined since `block`)."""
    w3 = protocol.w3
    for n in range(block + 1, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            r = w3.eth.get_transaction_receipt(tx["hash"])
            if r.get("contractAddress") and r["contractAddress"].lower() == address.lower():
                return int(r["gasUsed"])
    return 0
