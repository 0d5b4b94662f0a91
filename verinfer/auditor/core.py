"""Re-verify one request from public data only: the chain (RPC) and the content store.

Nothing here trusts a node, a requester or a cached result: every claim the chain makes about a
request (which model, which input, which output, who agreed, which proof, which enclave) is
re-derived from the bytes behind its CIDs and from the chain's own events and calldata, and
compared. Each claim lives in its own module (model, input, output, quorum, proof, attestation);
this class only runs them in order. docs/audit.md says what each PASS cannot prove.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from verinfer.auditor import attestation, model, output, proof, quorum
from verinfer.auditor import input as input_claims
from verinfer.auditor.claims import AuditReport, Claim
from verinfer.auditor.context import (
    BACKENDS,
    AuditContext,
    AuditEnv,
    AuditError,
    VkCandidate,
    hex32,
    missing_vk_constants,
    vk_constants,
)
from verinfer.chain.errors import ContractError, RequestPrunedError
from verinfer.chain.protocol import Protocol, RequestView, Status
from verinfer.storage.base import ContentStore

#: market events the claims read, filtered to one request by their requestId argument
AUDIT_EVENTS = ["InferenceRequested", "CommitteeDrawn", "Committed", "Revealed", "Finalized", "NodePenalized",
                "Credited", "Refunded", "ProofVerified", "ProverRewarded"]

_SECTIONS = (model.check_model, input_claims.check_input, output.check_output, quorum.check_quorum, proof.check_proof,
             attestation.check_attestations)


class Auditor:
    """Audits requests of one deployment against one content store.

    `trusted_root_pem`: the TEE root certificate quotes must chain to (None: attestation quotes are
    hash-checked only). `vk_path`: an explicit verification key JSON to try first.
    `backends`: which local Groth16 verifiers to run (groth16py and/or snarkjs).
    """

    def __init__(self, protocol: Protocol, store: ContentStore, *, trusted_root_pem: bytes | None = None,
                 trusted_root_label: str = "", vk_path: Path | None = None,
                 backends: Sequence[str] = BACKENDS) -> None:
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown or not backends:
            raise AuditError(f"unknown verifier backend(s) {unknown or backends}: use {', '.join(BACKENDS)}")
        self.protocol = protocol
        self.env = AuditEnv(protocol, protocol.w3, store, trusted_root_pem, trusted_root_label, vk_path,
                            tuple(backends))

    def audit(self, request_id: int) -> AuditReport:
        """Run every check on `request_id`; raises AuditError only if the request does not exist."""
        market = self.protocol.market
        view_block: int | str = "latest"
        recycled_by = 0
        try:
            req = market.get_request(request_id)
        except RequestPrunedError as exc:
            # The record now holds a later request: the views still answer at a block before that (archive node).
            missing = market.missing_request(request_id)  # a skipped id's record can be recycled too
            if missing:
                raise AuditError(missing) from None
            recycled_by = exc.recycled_by
            view_block = market.history_block(request_id, recycled_by)
            req = market.get_request(request_id, view_block)
        except ContractError as exc:
            if exc.error_name != "RequestNotFound":
                raise
            raise AuditError(market.missing_request(request_id) or str(exc)) from None
        m = self.protocol.models.get_model(req.model_id)
        ctx = AuditContext(request=req, model=m, chain_id=self.env.w3.eth.chain_id, view_block=view_block)
        report = AuditReport(request_id=request_id, status=req.status.name, model_id=hex32(req.model_id),
                             model_name=f"{m.name} v{m.version}", proof_mode=m.proof_mode, context=ctx)
        if view_block != "latest":
            report.notes.append(
                f"market views read at block {view_block}: the request's record was recycled by request "
                f"{recycled_by} (request pruned), so its views are read as of then")
        ctx.events = self._events(req)
        ctx.input_cid = next((str(e.args["inputCid"]) for e in ctx.events["InferenceRequested"]), "")
        if req.status == Status.ACCEPTED:
            ctx.output_cid = next((str(e.args["outputCid"]) for e in ctx.events["Revealed"]
                                   if bytes(e.args["outputHash"]) == bytes(req.output_hash) and e.args["outputCid"]), "")
        for section in _SECTIONS:
            report.claims += section(self.env, ctx)
        report.notes += ctx.notes
        if ctx.vk is not None and ctx.vk.insecure:
            report.notes.append(f"verification key ({ctx.vk.source}) is from an INSECURE setup: "
                                "whoever ran it can forge proofs; a proof PASS shows consistency, not soundness")
        if self.env.trusted_root_label:
            report.notes.append(f"trusted TEE root: {self.env.trusted_root_label}")
        return report

    def _events(self, req: RequestView) -> dict[str, list[Any]]:
        market = self.protocol.market
        names = [n for n in AUDIT_EVENTS if any(e.get("type") == "event" and e["name"] == n for e in market.abi)]
        out: dict[str, list[Any]] = {n: [] for n in AUDIT_EVENTS}
        for ev in market.events(names, from_block=req.created_block):
            if int(ev.args.get("requestId", -1)) == req.request_id:
                out[ev.name].append(ev)
        return out

    # the proof path on its own (tests feed it forged proofs and signals)
    def public_signals(self, ctx: AuditContext, prover: str, output_hash: bytes | int) -> list[int]:
        return proof.build_public_signals(self.env, ctx, prover, output_hash)

    def verify_proof(self, ctx: AuditContext, prover: str, output_hash: bytes | int, words: Sequence[int],
                     public_signals: Sequence[int] | None = None) -> list[Claim]:
        return proof.verify_proof(self.env, ctx, prover, output_hash, words, public_signals)


__all__ = ["AuditContext", "AuditError", "Auditor", "VkCandidate", "missing_vk_constants", "vk_constants"]
