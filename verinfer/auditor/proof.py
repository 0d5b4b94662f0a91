"""Proof claims: the submitProof calldata, local Groth16 verification and the registered verifier's answer."""

from __future__ import annotations

from typing import Sequence

from web3 import Web3

from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import AuditContext, AuditEnv, short
from verinfer.chain.protocol import ZERO_ADDRESS, Status
from verinfer.chain.verifier import VERIFY_GAS, verify_onchain
from verinfer.constants import FIELD, PROOF_NONE, PROOF_PUBLIC_WEIGHTS, request_binding
from verinfer.errors import VerinferError
from verinfer.prover.backends import backend_by_name
from verinfer.prover.types import Proof


def check_proof(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    r, m = ctx.request, ctx.model
    names = ("proof.tx", "proof.local", "proof.onchain", "proof.output")
    if m.proof_mode == PROOF_NONE:
        return [Claim("proof", n, Verdict.NA, "proof mode 0: consensus only") for n in names]
    pv = ctx.events["ProofVerified"]
    if not r.proven and not pv:
        return [Claim("proof", n, Verdict.NA, "no proof submitted") for n in names]
    if len(pv) != 1 or not r.proven:
        return [Claim("proof", "proof.tx", Verdict.FAIL,
                      f"{len(pv)} ProofVerified event(s), proven={r.proven} (expected exactly one)")]
    e = pv[0]
    tx = env.w3.eth.get_transaction(e.tx_hash)
    sender = Web3.to_checksum_address(tx["from"])
    prover = Web3.to_checksum_address(e.args["prover"])
    try:
        fn, args = env.protocol.market.contract.decode_function_input(tx["input"])
        fn_name = fn.fn_name
    except ValueError:
        fn_name, args = "", {}
    if fn_name != "submitProof" or Web3.to_checksum_address(tx["to"]) != env.protocol.market.address:
        return [Claim("proof", "proof.tx", Verdict.NA,
                      f"tx {short(e.tx_hash)} is not a direct submitProof call (relayed through a contract?): "
                      "calldata not decodable here")] + \
               [Claim("proof", n, Verdict.NA, "no decodable proof") for n in names[1:]]
    words = [int(w) for w in args["proof"]]
    out_hash = bytes(args["outputHash"])
    problems = []
    if int(args["requestId"]) != r.request_id:
        problems.append(f"calldata requestId {args['requestId']}")
    if sender != prover:
        problems.append(f"tx from {sender} but event prover {prover}")
    if out_hash != bytes(e.args["outputHash"]):
        problems.append("calldata outputHash differs from the ProofVerified event")
    ctx.proof_words, ctx.prover, ctx.proven_hash = words, prover, out_hash
    tx_claim = Claim("proof", "proof.tx", Verdict.FAIL if problems else Verdict.PASS,
                     "; ".join(problems) if problems else
                     f"ProofVerified in tx {short(e.tx_hash)} (block {e.block_number}): submitProof calldata "
                     f"decoded, prover {short(prover)}")
    claims = [tx_claim] + verify_proof(env, ctx, prover, out_hash, words)
    # the proven hash against the settlement (V2: a proof lands before finalize and decides, except that an
    # INVALID_INPUT quorum cannot be overturned; after finalize submitProof reverts)
    fin = ctx.events["Finalized"]
    if fin and fin[0].position < e.position:
        claims.append(Claim("proof", "proof.output", Verdict.FAIL, "ProofVerified after Finalized: impossible in V2"))
    elif r.status == Status.ACCEPTED and out_hash != bytes(r.output_hash):
        claims.append(Claim("proof", "proof.output", Verdict.FAIL,
                            f"proven {short(out_hash)} but the settled output is {short(r.output_hash)}"))
    elif r.status == Status.ACCEPTED:
        claims.append(Claim("proof", "proof.output", Verdict.PASS, "the proven output hash is the settled outputHash"))
    elif r.status == Status.INVALID_INPUT:
        claims.append(Claim("proof", "proof.output", Verdict.PASS,
                            "INVALID_INPUT reached quorum: a proof cannot overturn it (requester's burden)"))
    else:
        claims.append(Claim("proof", "proof.output", Verdict.NA, f"proven, not finalized yet ({r.status.name})"))
    return claims


def build_public_signals(env: AuditEnv, ctx: AuditContext, prover: str, output_hash: bytes | int) -> list[int]:
    """The verifier's public inputs exactly as InferenceMarket._verify builds them (§1.2)."""
    r, m = ctx.request, ctx.model
    oh = output_hash if isinstance(output_hash, int) else int.from_bytes(bytes(output_hash), "big")
    ih = int.from_bytes(bytes(r.input_hash), "big")
    binding = request_binding(r.request_id, prover)
    if m.proof_mode == PROOF_PUBLIC_WEIGHTS:
        return [ih, oh, binding]
    return [m.commitment, ih, oh, binding]


def verify_proof(env: AuditEnv, ctx: AuditContext, prover: str, output_hash: bytes | int, words: Sequence[int],
                 public_signals: Sequence[int] | None = None) -> list[Claim]:
    """Verify 8 calldata words for (request, prover, output) locally (vk) and by eth_call to the
    registered verifier. `public_signals` overrides the rebuilt ones (tests of the verifier path)."""
    pub = list(public_signals) if public_signals is not None else build_public_signals(env, ctx, prover, output_hash)
    rebuilt = build_public_signals(env, ctx, prover, output_hash)
    tag = "" if pub == rebuilt else " (given signals differ from the ones rebuilt from the chain)"
    out: list[Claim] = []
    if any(not 0 <= s < FIELD for s in pub):
        return [Claim("proof", "proof.local", Verdict.FAIL, "a public signal is outside the field"),
                Claim("proof", "proof.onchain", Verdict.FAIL, "a public signal is outside the field")]
    proof = Proof.from_calldata(list(words), pub)
    if ctx.vk is None:
        out.append(Claim("proof", "proof.local", Verdict.FAIL,
                         "no verification key identified for this model (see model.commitment / model.verifier)"))
    else:
        ran: dict[str, bool] = {}
        skipped: list[str] = []
        for name in env.backends:
            try:
                ran[name] = bool(backend_by_name(name).verify(ctx.vk.vk, proof))
            except (ImportError, VerinferError) as exc:
                skipped.append(f"{name} unavailable ({exc})")
        shown = ", ".join([f"{k} {'ok' if v else 'REJECTS'}" for k, v in ran.items()] + skipped)
        insecure = " (INSECURE key)" if ctx.vk.insecure and "INSECURE" not in ctx.vk.source else ""
        if not ran:
            out.append(Claim("proof", "proof.local", Verdict.FAIL, f"no local Groth16 verifier could run: {shown}"))
        elif all(ran.values()):
            out.append(Claim("proof", "proof.local", Verdict.PASS,
                             f"{shown} with the vk from {ctx.vk.source}{insecure}; signals "
                             f"[{', '.join(short(s) for s in pub)}]{tag}"))
        else:
            out.append(Claim("proof", "proof.local", Verdict.FAIL,
                             f"{shown}: the proof does not verify for requestBinding(request, {short(prover)}) "
                             f"and the on-chain hashes{tag}"))
    m = ctx.model
    if m.verifier == ZERO_ADDRESS:
        out.append(Claim("proof", "proof.onchain", Verdict.FAIL, "no verifier registered"))
    else:
        ok = verify_onchain(env.w3, m.verifier, proof, gas=VERIFY_GAS)
        out.append(Claim("proof", "proof.onchain", Verdict.PASS if ok else Verdict.FAIL,
                         f"eth_call verifyProof on {short(m.verifier)} with {VERIFY_GAS} gas: "
                         f"{'true' if ok else 'false'}{tag}"))
    return out
