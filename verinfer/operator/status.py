"""Is a node drawable, and if not, why (issue 8: `operator status` and the node's /health say the reason)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from web3 import Web3

from verinfer.chain.protocol import FULL_MODEL_END, Protocol


@dataclass(frozen=True)
class ModelEligibility:
    model_id: str
    full_model: bool
    eligible: bool
    reason: str  # "" when eligible


@dataclass(frozen=True)
class Eligibility:
    address: str
    registered: bool
    eligible: bool  # drawable for at least one model now
    reason: str  # why not (first blocking reason), "" when eligible
    stake: int = 0
    capacity: int = 0
    in_flight: int = 0
    models: list[ModelEligibility] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def eligibility(protocol: Protocol, address: str) -> Eligibility:
    """Registration, unbonding, stake vs minStake, shards, deprecation, TEE and capacity — in that order."""
    address = Web3.to_checksum_address(address)
    nodes = protocol.nodes
    node = nodes.get_node(address)
    if not node.registered:
        return Eligibility(address, False, False, "not registered (run `verinfer operator register`)")

    def result(eligible: bool, reason: str, models: list[ModelEligibility] | None = None) -> Eligibility:
        return Eligibility(address, True, eligible, reason, int(node.stake), int(node.capacity), int(node.in_flight),
                           models if models is not None else [])

    if node.unbonding_since:
        return result(False, f"unbonding since block {node.unbonding_since}")
    min_stake = nodes.min_stake()
    if node.stake < min_stake:
        return result(False, f"stake {Web3.from_wei(node.stake, 'ether')} ETH is below the minimum "
                             f"{Web3.from_wei(min_stake, 'ether')} ETH (top up)")
    per_model: list[ModelEligibility] = []
    for sh in nodes.get_shards(address):
        model = protocol.models.get_model(sh.model_id)
        full = sh.layer_start == 0 and sh.layer_end in (FULL_MODEL_END, model.num_layers)
        mid = Web3.to_hex(sh.model_id)
        if not full:
            per_model.append(ModelEligibility(mid, False, False, f"layers [{sh.layer_start}, {sh.layer_end}) only: "
                                              "partial shards are for discovery, never drawn"))
            continue
        if model.deprecated:
            per_model.append(ModelEligibility(mid, True, False, "model deprecated by its publisher"))
            continue
        if model.requires_tee and not _attested(protocol, address):
            per_model.append(ModelEligibility(mid, True, False, "model requires a TEE attestation; none valid"))
            continue
        if not nodes.is_eligible(address, sh.model_id):
            per_model.append(ModelEligibility(mid, True, False, "weight 0 in the model's sortition tree"))
            continue
        epoch = nodes.current_epoch()
        if nodes.weight_at_epoch(sh.model_id, address, epoch) == 0:
            per_model.append(ModelEligibility(mid, True, False, f"eligible from epoch {epoch + 1} (stake snapshot at "
                                              "the start of each epoch)"))
            continue
        per_model.append(ModelEligibility(mid, True, True, ""))
    if not per_model:
        return result(False, "serves no model (no shards)", per_model)
    ok = [m for m in per_model if m.eligible]
    if not ok:
        return result(False, per_model[0].reason, per_model)
    if node.capacity and node.in_flight >= node.capacity:
        return result(True, f"at capacity ({node.in_flight}/{node.capacity} seats): skipped "
                            "by draws until a request settles", per_model)
    return result(True, "", per_model)


def _attested(protocol: Protocol, address: str) -> bool:
    if "AttestationRegistry" not in protocol.manifest.addresses:
        return False
    from verinfer.chain.attestation_registry import AttestationRegistry  # noqa: PLC0415  (pulls the attestation stack)

    reg = AttestationRegistry(protocol.w3, protocol.manifest.address("AttestationRegistry"), None)
    return bool(reg.is_attested(address))
