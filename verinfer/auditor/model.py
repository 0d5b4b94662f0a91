"""Claims about the model: the weights behind weightsCid, the commitment, the verifier, the execution profile."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from web3 import Web3

from verinfer.auditor import llm
from verinfer.auditor.claims import Claim, Verdict
from verinfer.auditor.context import (
    _MODE_NAMES,
    AuditContext,
    AuditEnv,
    VkCandidate,
    missing_vk_constants,
    short,
    vk_constants,
)
from verinfer.chain.protocol import ZERO_ADDRESS
from verinfer.constants import PROOF_NONE, PROOF_PRIVATE_WEIGHTS, PROOF_PUBLIC_WEIGHTS
from verinfer.errors import VerinferError
from verinfer.inference.runtime import commitment as runtime_commitment
from verinfer.inference.runtime import load_model, profile_hash
from verinfer.models.spec import MAX_SPEC_BYTES
from verinfer.prover import keys as _keys
from verinfer.prover.artifacts import compile_circuit
from verinfer.prover.errors import ProverError
from verinfer.prover.pipeline import SHIPPED_DIR, vk_commitment
from verinfer.storage.errors import StorageError, StoreUnavailableError


def check_model(env: AuditEnv, ctx: AuditContext) -> list[Claim]:
    m = ctx.model
    out: list[Claim] = []

    try:
        raw = env.store.cat(m.weights_cid, max_bytes=MAX_SPEC_BYTES)
    except StoreUnavailableError:
        raise
    except (StorageError, ValueError) as exc:
        out.append(Claim("model", "model.weights", Verdict.FAIL, f"weights CID {m.weights_cid}: {exc}"))
    else:
        try:
            ctx.spec = load_model(raw)
        except VerinferError as exc:
            out.append(Claim("model", "model.weights", Verdict.FAIL,
                             f"{m.weights_cid} verifies but is not a model spec: {exc}"))
        else:
            s = ctx.spec
            diffs = [f"{k}: registry {a}, spec {b}" for k, a, b in (
                ("input_bits", m.input_bits, s.input_bits), ("output_bits", m.output_bits, s.output_bits),
                ("num_layers", m.num_layers, getattr(s, "num_layers", m.num_layers))) if a != b]
            if diffs:
                out.append(Claim("model", "model.weights", Verdict.FAIL,
                                 f"{m.weights_cid} verifies but disagrees with the registry ({'; '.join(diffs)})"))
            else:
                out.append(Claim("model", "model.weights", Verdict.PASS,
                                 f"{m.weights_cid} fetched and verified against its CID ({len(raw)} bytes, "
                                 f"{getattr(s, 'kind', 'mlp')} {s.name!r})"))
    if ctx.spec is None:
        for name in ("model.commitment", "model.verifier", "model.profile"):
            out.append(Claim("model", name, Verdict.NA, "model spec unavailable"))
        return out
    out.append(_commitment_claim(env, ctx))
    out.append(_verifier_claim(env, ctx))
    out.append(_profile_claim(env, ctx))
    if llm.is_llm(ctx.spec):
        out += llm.check_llm_model(env, ctx)
    return out


def _commitment_claim(env: AuditEnv, ctx: AuditContext) -> Claim:

    m = ctx.model
    if llm.is_llm(ctx.spec):  # no proof mode: the commitment is what pins the tensors' sha256 on-chain
        got = runtime_commitment(ctx.spec)
        if got == m.commitment:
            return Claim("model", "model.commitment", Verdict.PASS,
                         f"llm_commitment(spec) = {short(got)} = on-chain commitment (keccak of the spec, "
                         f"which pins all {len(ctx.spec.tensors)} tensors' sha256)")
        return Claim("model", "model.commitment", Verdict.FAIL,
                     f"llm_commitment(spec) = {short(got)} but the registry says {short(m.commitment)}")
    if m.proof_mode == PROOF_NONE:
        try:
            same = runtime_commitment(ctx.spec) == m.commitment
        except Exception:  # noqa: BLE001 - informational only
            same = False
        return Claim("model", "model.commitment", Verdict.NA,
                     "proof mode 0 (consensus only): no proof uses the commitment"
                     + (" (it does equal weights_commitment(spec))" if same else ""))
    if m.proof_mode == PROOF_PRIVATE_WEIGHTS:
        got = runtime_commitment(ctx.spec)
        if got == m.commitment:
            return Claim("model", "model.commitment", Verdict.PASS,
                         f"weights_commitment(spec) = {short(got)} = on-chain commitment")
        return Claim("model", "model.commitment", Verdict.FAIL,
                     f"weights_commitment(spec) = {short(got)} but the registry says {short(m.commitment)}")
    if m.proof_mode != PROOF_PUBLIC_WEIGHTS:
        return Claim("model", "model.commitment", Verdict.FAIL, f"unknown proof mode {m.proof_mode}")

    cands = vk_candidates(env, ctx)
    for c in cands:
        if vk_commitment(c.vk) == m.commitment:
            ctx.vk = c
            return Claim("model", "model.commitment", Verdict.PASS,
                         f"vk from {c.source} hashes to the on-chain commitment {short(m.commitment)} "
                         "(keccak256(canonical vk) % FIELD)")
    tried = "; ".join(ctx.vk_tried) or "no key found"
    return Claim("model", "model.commitment", Verdict.FAIL,
                 f"no verification key of the circuit rebuilt from the spec hashes to the on-chain commitment "
                 f"{short(m.commitment)} (tried: {tried})")


def vk_candidates(env: AuditEnv, ctx: AuditContext) -> list[VkCandidate]:
    """Verification keys to try, in order: --vk, the publisher's prover bundle (artifactsCid, fetched by
    CID), then keys for the circuit rebuilt from the fetched spec: shipped, local ceremony, local dev cache."""

    if ctx.vk_candidates is not None:
        return ctx.vk_candidates
    cands: list[VkCandidate] = []
    if env.vk_path is not None:
        try:
            cands.append(VkCandidate(f"--vk {env.vk_path}", json.loads(Path(env.vk_path).read_text()), True))
        except (OSError, json.JSONDecodeError) as exc:
            ctx.vk_tried.append(f"--vk {env.vk_path}: unreadable ({exc})")
    mode = _MODE_NAMES.get(ctx.model.proof_mode)
    if mode is not None:
        try:

            cc = compile_circuit(ctx.spec, mode)
        except (ProverError, VerinferError, ValueError) as exc:
            cc = None
            ctx.vk_tried.append(f"circuit rebuild failed: {exc}")
        bundle = _bundle_vk(env, ctx, mode, cc.manifest.get("r1cs_sha256") if cc is not None else None)
        if bundle is not None:
            cands.append(bundle)
            ctx.vk_tried.append(f"{bundle.source}: vk hash {short(vk_commitment(bundle.vk))}")
        if cc is not None:
            dirs = [("shipped keys", SHIPPED_DIR / f"{cc.manifest['model']}.{mode}"),
                    ("ceremony keys (local cache)", cc.dir / "keys" / _keys.CEREMONY_DIR),
                    ("dev keys (local cache, INSECURE)", cc.dir / "keys" / _keys.DEV_DIR)]
            for label, d in dirs:
                if not (d / "key.json").exists():
                    ctx.vk_tried.append(f"{label}: none")
                    continue
                try:
                    km = _keys.load_keys(d)
                except (ProverError, VerinferError, KeyError, OSError) as exc:
                    ctx.vk_tried.append(f"{label}: unusable ({exc})")
                    continue
                if km.record.get("r1cs_sha256") not in (None, cc.manifest["r1cs_sha256"]):
                    ctx.vk_tried.append(f"{label}: made for another r1cs")
                    continue
                source = f"{label} for circuit {cc.circuit_hash[:12]}"
                cands.append(VkCandidate(source, km.vk, km.insecure))
                ctx.vk_tried.append(f"{label}: vk hash {short(vk_commitment(km.vk))}")
    ctx.vk_candidates = cands
    return cands


def _bundle_vk(env: AuditEnv, ctx: AuditContext, mode: str, r1cs_sha256: str | None) -> VkCandidate | None:
    """The vk of the prover bundle the publisher anchored (ModelRegistry.artifactsCid), fetched by CID.

    Only the bundle document and its vk file are read (not the proving key). The bundle must be for
    this proof mode and for the circuit the auditor rebuilt from the spec (same r1cs sha256)."""


    try:
        cid = env.protocol.models.artifacts_cid(ctx.model.model_id)
    except VerinferError:  # a deployment from before setArtifacts existed
        return None
    if not cid:
        ctx.vk_tried.append("prover bundle: none published (artifactsCid empty)")
        return None
    label = f"prover bundle {cid} (ModelRegistry.artifactsCid)"
    try:
        doc = env.store.cat_json(cid, max_bytes=1 << 20)
        entry = doc["files"]["vk"]
        raw = env.store.cat(entry["cid"], max_bytes=int(entry["size"]))
        if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise ValueError("vk file does not match the bundle's sha256")
        vk = json.loads(raw)
    except StoreUnavailableError:
        raise
    except (VerinferError, ValueError, KeyError, TypeError) as exc:
        ctx.vk_tried.append(f"prover bundle {cid}: unusable ({exc})")
        return None
    if doc.get("mode") != mode:
        ctx.vk_tried.append(f"prover bundle {cid}: for mode {doc.get('mode')!r}, model is {mode!r}")
        return None
    if r1cs_sha256 is not None and doc.get("r1cs_sha256") not in (None, r1cs_sha256):
        ctx.vk_tried.append(f"prover bundle {cid}: made for another circuit than the one rebuilt from the spec")
        return None
    return VkCandidate(label, vk, bool(doc.get("insecure", True)))


def _verifier_claim(env: AuditEnv, ctx: AuditContext) -> Claim:
    m = ctx.model
    if m.proof_mode == PROOF_NONE:
        return Claim("model", "model.verifier", Verdict.NA, "proof mode 0: no verifier")
    if m.verifier == ZERO_ADDRESS:
        return Claim("model", "model.verifier", Verdict.NA,
                     f"proof mode {m.proof_mode} but no verifier registered: no proof can be submitted")
    code = bytes(env.w3.eth.get_code(Web3.to_checksum_address(m.verifier)))
    if not code:
        return Claim("model", "model.verifier", Verdict.FAIL, f"no contract code at verifier {m.verifier}")
    if ctx.vk is not None:  # mode 1: identified by the commitment
        miss = missing_vk_constants(code, ctx.vk.vk)
        if miss:
            return Claim("model", "model.verifier", Verdict.FAIL,
                         f"verifier {m.verifier} lacks {len(miss)} of {len(vk_constants(ctx.vk.vk))} "
                         f"constants of the committed vk ({ctx.vk.source}): it verifies another key")
        return Claim("model", "model.verifier", Verdict.PASS,
                     f"verifier {short(m.verifier)} embeds all {len(vk_constants(ctx.vk.vk))} constants "
                     f"of the vk from {ctx.vk.source}")
    if m.proof_mode == PROOF_PRIVATE_WEIGHTS:  # the commitment names the weights, not the key
        for c in vk_candidates(env, ctx):
            if not missing_vk_constants(code, c.vk):
                ctx.vk = c
                return Claim("model", "model.verifier", Verdict.PASS,
                             f"verifier {short(m.verifier)} embeds all {len(vk_constants(c.vk))} constants "
                             f"of the vk from {c.source}")
        return Claim("model", "model.verifier", Verdict.FAIL,
                     f"no local vk of the rebuilt circuit matches verifier {m.verifier} "
                     f"(tried: {'; '.join(ctx.vk_tried) or 'nothing'})")
    return Claim("model", "model.verifier", Verdict.NA, "no committed vk identified (see model.commitment)")


def _profile_claim(env: AuditEnv, ctx: AuditContext) -> Claim:

    want = bytes(ctx.model.execution_profile_hash)
    if want == bytes(32):
        return Claim("model", "model.profile", Verdict.NA, "no execution profile pinned (zero hash)")
    got = profile_hash(ctx.spec)
    if got == want:
        return Claim("model", "model.profile", Verdict.PASS,
                     f"reference runtime's execution profile = registered {short(want)}")
    return Claim("model", "model.profile", Verdict.FAIL,
                 f"registered profile {short(want)} but this runtime runs {short(got)}: "
                 "re-execution would not be the registered computation")
