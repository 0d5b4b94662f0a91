"""Attestation claims: each committee member's TEE record, its quote by CID, chain of trust and binding."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from web3 import Web3

from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import MAX_QUOTE_BYTES, AuditContext, AuditEnv, short
from verinfer.chain.attestation_registry import AttestationRegistry, audit_node
from verinfer.storage.errors import StorageError, StoreUnavailableError


def _agreeing(env: AuditEnv, ctx: AuditContext, committee: list[str]) -> set[str]:
    if ctx.winner is None:
        return set()
    market = env.protocol.market
    return {n for n in committee if (rv := market.get_reveal(ctx.request.request_id, n, ctx.view_block)).revealed
            and bytes(rv.output_hash) == ctx.winner}


def _root_der(pem: bytes | None) -> bytes | None:
    return None if pem is None else x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def check_attestations(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    """Each member's AttestationRegistry record: bundle fetched by CID, quote/collateral hashes, DCAP (or SEV-SNP)
    chain to the trusted root as of `attestedAt`, measurement/TCB as recorded, binding to the anchor block, and
    valid when the request was made. Required (FAIL if missing) for agreeing members of a TEE-only model."""
    r, m = ctx.request, ctx.model
    p = env.protocol
    if "AttestationRegistry" not in p.manifest.addresses:
        return [Claim("attestation", "attestation", Verdict.FAIL if m.requires_tee else Verdict.NA,
                      "this deployment has no AttestationRegistry")]
    registry = AttestationRegistry(p.w3, p.manifest.address("AttestationRegistry"), None, p.manifest.deploy_block)
    committee: list[str] = [Web3.to_checksum_address(a) for a in p.market.get_committee(r.request_id, ctx.view_block)]
    agreeing = _agreeing(env, ctx, committee)
    requested_at = int(env.w3.eth.get_block(r.created_block)["timestamp"])
    root = _root_der(env.trusted_root_pem)
    out: list[Claim] = []
    for n in committee:
        name = f"attestation.{n}"
        must = m.requires_tee and n in agreeing
        rec = registry.get_attestation(n)
        if rec.tee_type == 0:
            out.append(Claim("attestation", name, Verdict.FAIL if must else Verdict.NA,
                             "no AttestationRegistry record" + (" but the model requires a TEE" if must else "")))
            continue
        if root is None:
            out.append(Claim("attestation", name, Verdict.FAIL if must else Verdict.NA,
                             "record present; no trusted root given (--trusted-root): evidence not re-verified"))
            continue
        try:
            bundle = env.store.cat(rec.quote_cid, max_bytes=MAX_QUOTE_BYTES)
        except StoreUnavailableError:
            raise
        except (StorageError, ValueError) as exc:
            out.append(Claim("attestation", name, Verdict.FAIL, f"evidence bundle {rec.quote_cid!r}: {exc}"))
            continue
        audit = audit_node(registry, n, bundle, root_ca_der=root)
        if audit.evidence is None or not audit.binding_ok:
            out.append(Claim("attestation", name, Verdict.FAIL, audit.reason))
            continue
        if not rec.attested_at <= requested_at < rec.expires_at:
            out.append(Claim("attestation", name, Verdict.FAIL if must else Verdict.NA,
                             f"evidence re-verifies, but the record is valid {rec.attested_at}..{rec.expires_at} "
                             f"(unix s) and the request was made at {requested_at}: not attested for this request"))
            continue
        out.append(Claim("attestation", name, Verdict.PASS,
                         f"evidence {short(rec.quote_cid)} re-verified to the trusted root as of the recorded time, "
                         f"measurement {short(rec.measurement)}, bound to block {rec.anchor_block}, valid when the "
                         f"request was made" + ("" if audit.attested_now else " (not attested any more now)")))
    if m.requires_tee and not out:
        out.append(Claim("attestation", "attestation", Verdict.FAIL, "model requires a TEE but no committee"))
    return out
