"""Attestation claims: each committee member's TEE record, its quote by CID, chain of trust and binding."""

from __future__ import annotations

from web3 import Web3

from verinfer.attestation.record import quote_hash
from verinfer.attestation.verify import AttestationError, verify_quote
from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import MAX_QUOTE_BYTES, AuditContext, AuditEnv, short
from verinfer.storage.errors import StorageError, StoreUnavailableError


def check_attestations(env: AuditEnv, ctx: AuditContext) -> list[Claim]:

    r, m = ctx.request, ctx.model
    nodes = env.protocol.nodes
    committee = [Web3.to_checksum_address(a) for a in env.protocol.market.get_committee(r.request_id)]
    agreeing = set()
    if ctx.winner is not None:
        for n in committee:
            rv = env.protocol.market.get_reveal(r.request_id, n)
            if rv.revealed and bytes(rv.output_hash) == ctx.winner:
                agreeing.add(n)
    block = env.w3.eth.block_number
    out: list[Claim] = []
    for n in committee:
        name = f"attestation.{n}"
        must = m.requires_tee and n in agreeing
        rec = nodes.get_attestation(n)
        if rec.tee_type == 0:
            out.append(Claim("attestation", name, Verdict.FAIL if must else Verdict.NA,
                             "no attestation record" + (" but the model requires a TEE" if must else "")))
            continue
        try:
            quote = env.store.cat(rec.quote_cid, max_bytes=MAX_QUOTE_BYTES)
        except StoreUnavailableError:
            raise
        except (StorageError, ValueError) as exc:
            out.append(Claim("attestation", name, Verdict.FAIL, f"quote {rec.quote_cid!r}: {exc}"))
            continue
        if quote_hash(quote) != bytes(rec.quote_hash):
            out.append(Claim("attestation", name, Verdict.FAIL,
                             f"quote {rec.quote_cid} hashes to {short(quote_hash(quote))}, record's quoteHash "
                             f"is {short(rec.quote_hash)}"))
            continue
        if env.trusted_root_pem is None:
            out.append(Claim("attestation", name, Verdict.FAIL if must else Verdict.NA,
                             "quote hash matches; no trusted root given (--trusted-root): chain not verified"))
            continue
        try:
            vq = verify_quote(quote, env.trusted_root_pem, expected_address=n, expected_chain_id=ctx.chain_id)
        except (AttestationError, ValueError) as exc:
            out.append(Claim("attestation", name, Verdict.FAIL, f"quote does not verify: {exc}"))
            continue
        problems = []
        if Web3.to_checksum_address(rec.report_data_address) != n:
            problems.append(f"record binds {rec.report_data_address}")
        if vq.mr_enclave != bytes(rec.measurement):
            problems.append(f"quote measurement {short(vq.mr_enclave)} != recorded {short(rec.measurement)}")
        if not nodes.measurement_allowed(rec.measurement):
            problems.append(f"measurement {short(rec.measurement)} is no longer allow-listed")
        if rec.expires_at <= block:
            problems.append(f"expired at block {rec.expires_at} (now {block})")
        if problems:
            out.append(Claim("attestation", name, Verdict.FAIL, "; ".join(problems)))
        else:
            how = "test PKI, INSECURE" if rec.verified_by == 255 else f"verifiedBy {rec.verified_by}"
            out.append(Claim("attestation", name, Verdict.PASS,
                             f"quote {short(rec.quote_cid)} = quoteHash, chains to the trusted root, binds "
                             f"this address and chain {ctx.chain_id}, measurement {short(rec.measurement)} "
                             f"allow-listed, valid until block {rec.expires_at} ({how})"))
    if m.requires_tee and not out:
        out.append(Claim("attestation", "attestation", Verdict.FAIL, "model requires a TEE but no committee"))
    return out
