"""Re-verify one request from public data only: the chain (RPC) and the content store.

Nothing here trusts a node, a requester or a cached result: every claim the chain makes about a
request (which model, which input, which output, who agreed, which proof, which enclave) is
re-derived from the bytes behind its CIDs and from the chain's own events and calldata, and
compared. The checks mirror what honest nodes and the contracts do (docs/architecture.md §1),
so a PASS means "an independent party computes the same thing"; docs/audit.md says what each
PASS cannot prove.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from web3 import Web3

from verinfer.auditor.claims import AuditReport, Claim, Verdict
from verinfer.chain.protocol import (
    FIELD,
    INVALID_INPUT,
    PROOF_NONE,
    PROOF_PRIVATE_WEIGHTS,
    PROOF_PUBLIC_WEIGHTS,
    ZERO_ADDRESS,
    ModelView,
    Protocol,
    RequestView,
    Status,
    request_binding,
)
from verinfer.errors import VerinferError

MAX_INPUT_BYTES = 1 << 20  # architecture §1.3
MAX_OUTPUT_BYTES = 16 << 20
MAX_QUOTE_BYTES = 1 << 20
BACKENDS = ("groth16py", "snarkjs")
_MODE_NAMES = {PROOF_PUBLIC_WEIGHTS: "public", PROOF_PRIVATE_WEIGHTS: "private"}


class AuditError(VerinferError):
    """The audit cannot start (unknown request, unreadable option); individual claims never raise it."""


@dataclass
class VkCandidate:
    """A verification key the auditor can use, and where it came from (reported with every verdict)."""

    source: str
    vk: dict[str, Any]
    insecure: bool


@dataclass
class AuditContext:
    """Values re-derived while auditing (later checks build on earlier ones; tests inspect them)."""

    request: RequestView
    model: ModelView
    chain_id: int
    spec: Any = None
    outcome: Any = None
    input_defect: str | None = None
    reference_output: list[int] | None = None
    payload_output: list[int] | None = None
    vk: VkCandidate | None = None
    vk_tried: list[str] = field(default_factory=list)
    vk_candidates: list[VkCandidate] | None = None
    events: dict[str, list[Any]] = field(default_factory=dict)
    winner: bytes | None = None
    proof_words: list[int] | None = None
    prover: str | None = None


def _hex32(b: bytes | int) -> str:
    if isinstance(b, int):
        b = b.to_bytes(32, "big")
    return "0x" + bytes(b).hex()


def _short(b: bytes | int | str) -> str:
    s = b if isinstance(b, str) else _hex32(b)
    return s if len(s) <= 18 else f"{s[:10]}…{s[-6:]}"


def vk_constants(vk: dict[str, Any]) -> list[int]:
    """Every curve coordinate of a snarkjs vk (alpha, beta, gamma, delta, IC): what its verifier embeds."""
    vals: list[int] = []
    vals += [int(v) for v in vk["vk_alpha_1"][:2]]
    for key in ("vk_beta_2", "vk_gamma_2", "vk_delta_2"):
        for pair in vk[key][:2]:
            vals += [int(v) for v in pair]
    for point in vk["IC"]:
        vals += [int(v) for v in point[:2]]
    return vals


def missing_vk_constants(code: bytes, vk: dict[str, Any]) -> list[int]:
    """The vk's coordinates that do not appear as PUSH immediates in `code` (the snarkjs verifier
    declares them as `uint256 constant`, which solc inlines as PUSHn of the minimal big-endian bytes)."""
    missing = []
    for v in vk_constants(vk):
        raw = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
        if bytes([0x5F + len(raw)]) + raw not in code:
            missing.append(v)
    return missing


class Auditor:
    """Audits requests of one deployment against one content store.

    `trusted_root_pem`: the TEE root certificate quotes must chain to (None: attestation quotes are
    hash-checked only). `vk_path`: an explicit verification key JSON to try first.
    `backends`: which local Groth16 verifiers to run (groth16py and/or snarkjs).
    """

    def __init__(self, protocol: Protocol, store: Any, *, trusted_root_pem: bytes | None = None,
                 trusted_root_label: str = "", vk_path: Path | None = None,
                 backends: Sequence[str] = BACKENDS) -> None:
        self.protocol = protocol
        self.w3: Web3 = protocol.w3
        self.store = store
        self.trusted_root_pem = trusted_root_pem
        self.trusted_root_label = trusted_root_label
        self.vk_path = vk_path
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown or not backends:
            raise AuditError(f"unknown verifier backend(s) {unknown or backends}: use {', '.join(BACKENDS)}")
        self.backends = tuple(backends)

    # ------------------------------------------------------------------ entry point

    def audit(self, request_id: int) -> AuditReport:
        """Run every check on `request_id`; raises AuditError only if the request does not exist."""
        market = self.protocol.market
        count = market.request_count()
        if not 1 <= request_id <= count:
            raise AuditError(f"request {request_id} does not exist on this deployment "
                             f"({count} request(s): ids 1..{count})" if count else
                             f"request {request_id} does not exist on this deployment (no requests yet)")
        req = market.get_request(request_id)
        model = self.protocol.models.get_model(req.model_id)
        ctx = AuditContext(request=req, model=model, chain_id=self.w3.eth.chain_id)
        report = AuditReport(request_id=request_id, status=req.status.name, model_id=_hex32(req.model_id),
                             model_name=f"{model.name} v{model.version}", proof_mode=model.proof_mode, context=ctx)
        ctx.events = self._events(req)
        for section in (self.check_model, self.check_input, self.check_output, self.check_quorum,
                        self.check_proof, self.check_attestations):
            report.claims += section(ctx)
        if ctx.vk is not None and ctx.vk.insecure:
            report.notes.append(f"verification key ({ctx.vk.source}) is from an INSECURE setup: "
                                "whoever ran it can forge proofs; a proof PASS shows consistency, not soundness")
        if self.trusted_root_label:
            report.notes.append(f"trusted TEE root: {self.trusted_root_label}")
        return report

    def _events(self, req: RequestView) -> dict[str, list[Any]]:
        names = ["InferenceRequested", "Committed", "Revealed", "Finalized", "NodePenalized", "Credited",
                 "Refunded", "ProofVerified", "ProofContradictsSettlement"]
        out: dict[str, list[Any]] = {n: [] for n in names}
        for ev in self.protocol.market.events(names, from_block=req.created_block):
            if int(ev.args.get("requestId", -1)) == req.request_id:
                out[ev.name].append(ev)
        return out

    # ------------------------------------------------------------------ 1. model

    def check_model(self, ctx: AuditContext) -> list[Claim]:
        m = ctx.model
        out: list[Claim] = []
        from verinfer.inference.runtime import load_model
        from verinfer.models.spec import MAX_SPEC_BYTES
        from verinfer.storage.errors import StorageError, StoreUnavailableError

        try:
            raw = self.store.cat(m.weights_cid, max_bytes=MAX_SPEC_BYTES)
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
        out.append(self._commitment_claim(ctx))
        out.append(self._verifier_claim(ctx))
        out.append(self._profile_claim(ctx))
        return out

    def _commitment_claim(self, ctx: AuditContext) -> Claim:
        from verinfer.inference.runtime import commitment as runtime_commitment

        m = ctx.model
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
                             f"weights_commitment(spec) = {_short(got)} = on-chain commitment")
            return Claim("model", "model.commitment", Verdict.FAIL,
                         f"weights_commitment(spec) = {_short(got)} but the registry says {_short(m.commitment)}")
        if m.proof_mode != PROOF_PUBLIC_WEIGHTS:
            return Claim("model", "model.commitment", Verdict.FAIL, f"unknown proof mode {m.proof_mode}")
        from verinfer.prover.pipeline import vk_commitment

        cands = self._vk_candidates(ctx)
        for c in cands:
            if vk_commitment(c.vk) == m.commitment:
                ctx.vk = c
                return Claim("model", "model.commitment", Verdict.PASS,
                             f"vk from {c.source} hashes to the on-chain commitment {_short(m.commitment)} "
                             "(keccak256(canonical vk) % FIELD)")
        tried = "; ".join(ctx.vk_tried) or "no key found"
        return Claim("model", "model.commitment", Verdict.FAIL,
                     f"no verification key of the circuit rebuilt from the spec hashes to the on-chain commitment "
                     f"{_short(m.commitment)} (tried: {tried})")

    def _vk_candidates(self, ctx: AuditContext) -> list[VkCandidate]:
        """Verification keys to try, in order: --vk, the publisher's prover bundle (artifactsCid, fetched by
        CID), then keys for the circuit rebuilt from the fetched spec: shipped, local ceremony, local dev cache."""
        from verinfer.prover import keys as _keys
        from verinfer.prover.errors import ProverError
        from verinfer.prover.pipeline import SHIPPED_DIR, vk_commitment

        if ctx.vk_candidates is not None:
            return ctx.vk_candidates
        cands: list[VkCandidate] = []
        if self.vk_path is not None:
            try:
                cands.append(VkCandidate(f"--vk {self.vk_path}", json.loads(Path(self.vk_path).read_text()), True))
            except (OSError, json.JSONDecodeError) as exc:
                ctx.vk_tried.append(f"--vk {self.vk_path}: unreadable ({exc})")
        mode = _MODE_NAMES.get(ctx.model.proof_mode)
        if mode is not None:
            try:
                from verinfer.prover.artifacts import compile_circuit

                cc = compile_circuit(ctx.spec, mode)
            except (ProverError, VerinferError, ValueError) as exc:
                cc = None
                ctx.vk_tried.append(f"circuit rebuild failed: {exc}")
            bundle = self._bundle_vk(ctx, mode, cc.manifest.get("r1cs_sha256") if cc is not None else None)
            if bundle is not None:
                cands.append(bundle)
                ctx.vk_tried.append(f"{bundle.source}: vk hash {_short(vk_commitment(bundle.vk))}")
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
                    ctx.vk_tried.append(f"{label}: vk hash {_short(vk_commitment(km.vk))}")
        ctx.vk_candidates = cands
        return cands

    def _bundle_vk(self, ctx: AuditContext, mode: str, r1cs_sha256: str | None) -> VkCandidate | None:
        """The vk of the prover bundle the publisher anchored (ModelRegistry.artifactsCid), fetched by CID.

        Only the bundle document and its vk file are read (not the proving key). The bundle must be for
        this proof mode and for the circuit the auditor rebuilt from the spec (same r1cs sha256)."""
        import hashlib

        from verinfer.storage.errors import StoreUnavailableError

        try:
            cid = self.protocol.models.artifacts_cid(ctx.model.model_id)
        except VerinferError:  # a deployment from before setArtifacts existed
            return None
        if not cid:
            ctx.vk_tried.append("prover bundle: none published (artifactsCid empty)")
            return None
        label = f"prover bundle {cid} (ModelRegistry.artifactsCid)"
        try:
            doc = self.store.cat_json(cid, max_bytes=1 << 20)
            entry = doc["files"]["vk"]
            raw = self.store.cat(entry["cid"], max_bytes=int(entry["size"]))
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

    def _verifier_claim(self, ctx: AuditContext) -> Claim:
        m = ctx.model
        if m.proof_mode == PROOF_NONE:
            return Claim("model", "model.verifier", Verdict.NA, "proof mode 0: no verifier")
        if m.verifier == ZERO_ADDRESS:
            return Claim("model", "model.verifier", Verdict.NA,
                         f"proof mode {m.proof_mode} but no verifier registered: no proof can be submitted")
        code = bytes(self.w3.eth.get_code(Web3.to_checksum_address(m.verifier)))
        if not code:
            return Claim("model", "model.verifier", Verdict.FAIL, f"no contract code at verifier {m.verifier}")
        if ctx.vk is not None:  # mode 1: identified by the commitment
            miss = missing_vk_constants(code, ctx.vk.vk)
            if miss:
                return Claim("model", "model.verifier", Verdict.FAIL,
                             f"verifier {m.verifier} lacks {len(miss)} of {len(vk_constants(ctx.vk.vk))} "
                             f"constants of the committed vk ({ctx.vk.source}): it verifies another key")
            return Claim("model", "model.verifier", Verdict.PASS,
                         f"verifier {_short(m.verifier)} embeds all {len(vk_constants(ctx.vk.vk))} constants "
                         f"of the vk from {ctx.vk.source}")
        if m.proof_mode == PROOF_PRIVATE_WEIGHTS:  # the commitment names the weights, not the key
            for c in self._vk_candidates(ctx):
                if not missing_vk_constants(code, c.vk):
                    ctx.vk = c
                    return Claim("model", "model.verifier", Verdict.PASS,
                                 f"verifier {_short(m.verifier)} embeds all {len(vk_constants(c.vk))} constants "
                                 f"of the vk from {c.source}")
            return Claim("model", "model.verifier", Verdict.FAIL,
                         f"no local vk of the rebuilt circuit matches verifier {m.verifier} "
                         f"(tried: {'; '.join(ctx.vk_tried) or 'nothing'})")
        return Claim("model", "model.verifier", Verdict.NA, "no committed vk identified (see model.commitment)")

    def _profile_claim(self, ctx: AuditContext) -> Claim:
        from verinfer.inference.runtime import profile_hash

        want = bytes(ctx.model.execution_profile_hash)
        if want == bytes(32):
            return Claim("model", "model.profile", Verdict.NA, "no execution profile pinned (zero hash)")
        got = profile_hash(ctx.spec)
        if got == want:
            return Claim("model", "model.profile", Verdict.PASS,
                         f"reference runtime's execution profile = registered {_short(want)}")
        return Claim("model", "model.profile", Verdict.FAIL,
                     f"registered profile {_short(want)} but this runtime runs {_short(got)}: "
                     "re-execution would not be the registered computation")

    # ------------------------------------------------------------------ 2. input

    def _input_defect(self, ctx: AuditContext) -> str | None:
        """None if the input is valid (and sets ctx.outcome / ctx.reference_output), else why it is invalid.

        The verdict comes from `runtime.decide`, the same function honest nodes commit from."""
        from verinfer.inference.runtime import decide, is_lm
        from verinfer.storage.errors import (
            ContentMismatchError,
            ContentNotFoundError,
            ContentTooLargeError,
            InvalidCidError,
        )

        r = ctx.request
        try:
            payload = self.store.cat(r.input_cid, max_bytes=MAX_INPUT_BYTES)
        except ContentNotFoundError:
            return f"input {r.input_cid} is not retrievable from this store"
        except ContentTooLargeError:
            return f"input {r.input_cid} exceeds {MAX_INPUT_BYTES} bytes"
        except ContentMismatchError as exc:
            return f"input {r.input_cid}: content does not match its CID ({exc})"
        except (InvalidCidError, ValueError) as exc:
            return f"input CID {r.input_cid!r} is malformed: {exc}"
        want = int.from_bytes(bytes(r.input_hash), "big")
        if is_lm(ctx.spec):
            from verinfer.inference.lm import fetch_lm_files

            with tempfile.TemporaryDirectory(prefix="verinfer-audit-lm-") as tmp:
                outcome = decide(ctx.spec, fetch_lm_files(ctx.spec, self.store, Path(tmp)), payload, want)
        else:
            outcome = decide(ctx.spec, None, payload, want)
        ctx.outcome = outcome
        if outcome.is_invalid:
            return outcome.invalid_reason or "invalid input"
        ctx.reference_output = outcome.outputs
        return None

    def check_input(self, ctx: AuditContext) -> list[Claim]:
        r = ctx.request
        if ctx.spec is None:
            return [Claim("input", "input", Verdict.NA, "model spec unavailable: cannot decode the input")]
        defect = ctx.input_defect = self._input_defect(ctx)
        if r.status == Status.INVALID_INPUT:
            if defect is None:
                return [Claim("input", "input", Verdict.FAIL,
                              "settled INVALID_INPUT, but the input verifies, decodes and hashes to inputHash")]
            note = " (unavailability is observed here, not provable)" if "not retrievable" in defect else ""
            return [Claim("input", "input", Verdict.PASS, f"INVALID_INPUT outcome confirmed: {defect}{note}")]
        if defect is not None:
            return [Claim("input", "input", Verdict.FAIL, defect)]
        return [Claim("input", "input", Verdict.PASS,
                      f"{r.input_cid} verified; it decodes and hash_vector(x, "
                      f"{ctx.spec.input_bits}) = inputHash {_short(r.input_hash)}")]

    # ------------------------------------------------------------------ 3. output

    def check_output(self, ctx: AuditContext) -> list[Claim]:
        r = ctx.request
        if r.status == Status.INVALID_INPUT:
            ok = bytes(r.output_hash) == INVALID_INPUT and r.output_cid == ""
            return [Claim("output", "output.payload", Verdict.PASS if ok else Verdict.FAIL,
                          "INVALID_INPUT outcome 0xff…ff with no output payload" if ok else
                          f"INVALID_INPUT but outputHash {_short(r.output_hash)} / outputCid {r.output_cid!r}"),
                    Claim("output", "output.reexecution", Verdict.NA, "invalid input: nothing to execute")]
        if r.status != Status.ACCEPTED:
            why = "no quorum: no settled output" if r.status == Status.NO_QUORUM else f"not settled yet ({r.status.name})"
            return [Claim("output", "output.payload", Verdict.NA, why),
                    Claim("output", "output.reexecution", Verdict.NA, why)]
        return [self._payload_claim(ctx), self._reexec_claim(ctx)]

    def _payload_claim(self, ctx: AuditContext) -> Claim:
        from verinfer.models.errors import InvalidInputError
        from verinfer.models.hashing import hash_vector
        from verinfer.models.tensor import decode_tensor, dtype_for_bits
        from verinfer.storage.errors import StorageError, StoreUnavailableError

        r = ctx.request
        want = int.from_bytes(bytes(r.output_hash), "big")
        try:
            raw = self.store.cat(r.output_cid, max_bytes=MAX_OUTPUT_BYTES)
        except StoreUnavailableError:
            raise
        except (StorageError, ValueError) as exc:
            return Claim("output", "output.payload", Verdict.FAIL, f"winning output {r.output_cid}: {exc}")
        bits = ctx.model.output_bits
        try:
            t = decode_tensor(raw)
            if t.dtype != dtype_for_bits(bits):
                raise InvalidInputError(f"dtype {t.dtype}, expected {dtype_for_bits(bits)}")
            h = hash_vector(t.data, bits)
        except (InvalidInputError, ValueError) as exc:
            return Claim("output", "output.payload", Verdict.FAIL, f"{r.output_cid} is not an output tensor: {exc}")
        ctx.payload_output = list(t.data)
        if h != want:
            return Claim("output", "output.payload", Verdict.FAIL,
                         f"{r.output_cid} hashes to {_short(h)}, on-chain outputHash is {_short(want)}")
        return Claim("output", "output.payload", Verdict.PASS,
                     f"{r.output_cid} verified; {len(t.data)} values hash to outputHash {_short(want)}")

    def _reexec_claim(self, ctx: AuditContext) -> Claim:
        from verinfer.models.hashing import hash_vector

        r = ctx.request
        if ctx.reference_output is None:
            return Claim("output", "output.reexecution", Verdict.NA, "no valid input to execute (see input)")
        want = int.from_bytes(bytes(r.output_hash), "big")
        h = hash_vector(ctx.reference_output, ctx.model.output_bits)
        if h != want:
            diff = ""
            if ctx.payload_output is not None and len(ctx.payload_output) == len(ctx.reference_output):
                idx = [i for i, (a, b) in enumerate(zip(ctx.payload_output, ctx.reference_output)) if a != b]
                if idx:
                    i = idx[0]
                    diff = f"; {len(idx)} value(s) differ, first at [{i}]: settled {ctx.payload_output[i]}, " \
                           f"reference {ctx.reference_output[i]}"
            return Claim("output", "output.reexecution", Verdict.FAIL,
                         f"reference runtime output hashes to {_short(h)}, not the settled {_short(want)}{diff}")
        if ctx.payload_output is not None and ctx.payload_output != ctx.reference_output:
            return Claim("output", "output.reexecution", Verdict.FAIL, "hashes agree but the payload values differ")
        return Claim("output", "output.reexecution", Verdict.PASS,
                     f"re-executed with the reference runtime: identical output (argmax {max(range(len(ctx.reference_output)), key=ctx.reference_output.__getitem__)})"
                     if ctx.reference_output else "re-executed: identical (empty) output")

    # ------------------------------------------------------------------ 4. quorum

    def check_quorum(self, ctx: AuditContext) -> list[Claim]:
        r = ctx.request
        market = self.protocol.market
        ev = ctx.events
        committee: list[str] = [Web3.to_checksum_address(a) for a in market.get_committee(r.request_id)]
        out: list[Claim] = []
        # committee
        req_evs = ev["InferenceRequested"]
        if len(req_evs) != 1:
            out.append(Claim("quorum", "quorum.committee", Verdict.FAIL,
                             f"{len(req_evs)} InferenceRequested events for this request (expected 1)"))
        else:
            a = req_evs[0].args
            drawn = [Web3.to_checksum_address(x) for x in a["committee"]]
            problems = []
            if drawn != committee:
                problems.append(f"event committee {drawn} != getCommittee {committee}")
            if a["inputCid"] != r.input_cid or bytes(a["inputHash"]) != bytes(r.input_hash):
                problems.append("event input CID/hash differ from the stored request")
            if bytes(a["modelId"]) != bytes(r.model_id) or int(a["fee"]) != r.fee:
                problems.append("event model/fee differ from the stored request")
            if len(committee) != r.params.replicas:
                problems.append(f"{len(committee)} members for {r.params.replicas} replicas")
            out.append(Claim("quorum", "quorum.committee", Verdict.FAIL if problems else Verdict.PASS,
                             "; ".join(problems) if problems else
                             f"{len(committee)} members from InferenceRequested = getCommittee "
                             f"(quorum {r.params.quorum} of {r.params.replicas})"))
        members = set(committee)
        reveals = {n: market.get_reveal(r.request_id, n) for n in committee}
        # commits
        commit_by = [Web3.to_checksum_address(e.args["node"]) for e in ev["Committed"]]
        problems = []
        if len(set(commit_by)) != len(commit_by):
            problems.append("a node committed twice")
        if set(commit_by) - members:
            problems.append(f"commits by non-members {sorted(set(commit_by) - members)}")
        for n in committee:
            if reveals[n].committed != (n in commit_by):
                problems.append(f"{_short(n)}: getReveal.committed={reveals[n].committed} but "
                                f"{'a' if n in commit_by else 'no'} Committed event")
        if len(commit_by) != r.commit_count:
            problems.append(f"{len(commit_by)} Committed events, commitCount {r.commit_count}")
        # reveals
        revealed: dict[str, bytes] = {}
        for e in ev["Revealed"]:
            n = Web3.to_checksum_address(e.args["node"])
            if n in revealed:
                problems.append(f"{_short(n)} revealed twice")
            revealed[n] = bytes(e.args["outputHash"])
            rv = reveals.get(n)
            if rv is None:
                problems.append(f"reveal by non-member {n}")
            elif not rv.revealed or bytes(rv.output_hash) != revealed[n] or rv.output_cid != e.args["outputCid"]:
                problems.append(f"{_short(n)}: Revealed event differs from getReveal")
        for n in committee:
            if reveals[n].revealed and n not in revealed:
                problems.append(f"{_short(n)}: getReveal says revealed but no Revealed event")
        if len(revealed) != r.reveal_count:
            problems.append(f"{len(revealed)} Revealed events, revealCount {r.reveal_count}")
        out.append(Claim("quorum", "quorum.reveals", Verdict.FAIL if problems else Verdict.PASS,
                         "; ".join(problems) if problems else
                         f"{len(commit_by)} commit(s) and {len(revealed)} reveal(s) in events = getReveal / counters"))
        out += self._outcome_claims(ctx, committee, revealed)
        return out

    def _outcome_claims(self, ctx: AuditContext, committee: list[str], revealed: dict[str, bytes]) -> list[Claim]:
        r = ctx.request
        ev = ctx.events
        if r.status in (Status.COMMITTING, Status.REVEALING):
            why = f"not finalized yet ({r.status.name})"
            return [Claim("quorum", "quorum.outcome", Verdict.NA, why), Claim("quorum", "quorum.settlement", Verdict.NA, why)]
        fin = ev["Finalized"]
        if len(fin) != 1:
            return [Claim("quorum", "quorum.outcome", Verdict.FAIL, f"{len(fin)} Finalized events (expected 1)"),
                    Claim("quorum", "quorum.settlement", Verdict.NA, "no single settlement to check")]
        fin_ev = fin[0]
        # the contract's rule: a proof landed before finalize decides; else the strict plurality reaching quorum
        proofs_before = [p for p in ev["ProofVerified"] if p.position < fin_ev.position]
        counts: dict[bytes, int] = {}
        for n in committee:  # committee order, like the contract's loop
            if n in revealed:
                counts[revealed[n]] = counts.get(revealed[n], 0) + 1
        if proofs_before:
            winner: bytes | None = bytes(proofs_before[0].args["outputHash"])
        else:
            best = max(counts.values(), default=0)
            tops = [h for h, c in counts.items() if c == best]
            winner = tops[0] if best > 0 and len(tops) == 1 and best >= r.params.quorum else None
        expected = Status.NO_QUORUM if winner is None else (
            Status.INVALID_INPUT if winner == INVALID_INPUT else Status.ACCEPTED)
        agreeing = [n for n in committee if winner is not None and revealed.get(n) == winner]
        problems = []
        if r.status != expected:
            problems.append(f"reveals give {expected.name}, chain says {r.status.name}")
        if int(fin_ev.args["status"]) != int(r.status):
            problems.append("Finalized event status differs from the request")
        if winner is not None and bytes(r.output_hash) != winner:
            problems.append(f"settled outputHash {_short(r.output_hash)} is not the winning reveal {_short(winner)}")
        if bytes(fin_ev.args["outputHash"]) != bytes(r.output_hash):
            problems.append("Finalized event outputHash differs from the request")
        n_agree = len(agreeing) if expected == Status.ACCEPTED else 0
        if int(fin_ev.args["agreeingCount"]) != n_agree or r.agreeing_count != n_agree:
            problems.append(f"{n_agree} agreeing reveal(s) but agreeingCount {r.agreeing_count}")
        if expected == Status.ACCEPTED and not proofs_before and n_agree < r.params.quorum:
            problems.append(f"accepted with {n_agree} agreeing < quorum {r.params.quorum}")
        ctx.winner = winner
        if problems:
            outcome = Claim("quorum", "quorum.outcome", Verdict.FAIL, "; ".join(problems))
        else:
            agree = f"{len(agreeing)} of {len(committee)} revealed the winner (quorum {r.params.quorum})"
            how = f"a proof landed before finalize and decided; {agree}" if proofs_before else agree
            outcome = Claim("quorum", "quorum.outcome", Verdict.PASS, f"{r.status.name}: {how}")
        return [outcome, self._settlement_claim(ctx, committee, revealed, winner, expected)]

    def _settlement_claim(self, ctx: AuditContext, committee: list[str], revealed: dict[str, bytes],
                          winner: bytes | None, expected: Status) -> Claim:
        r = ctx.request
        ev = ctx.events
        market = self.protocol.market
        penalized = {Web3.to_checksum_address(e.args["node"]) for e in ev["NodePenalized"]}
        credited: dict[str, int] = {}
        for e in ev["Credited"]:
            a = Web3.to_checksum_address(e.args["account"])
            credited[a] = credited.get(a, 0) + int(e.args["amount"])
        problems = []
        n_paid = n_slashed = 0
        for n in committee:
            s = market.get_member_settlement(r.request_id, n)
            h = revealed.get(n)
            want_paid = expected == Status.ACCEPTED and h is not None and h == winner
            want_slashed = h is None or (winner is not None and h != winner)
            if s.paid != want_paid:
                problems.append(f"{_short(n)}: paid={s.paid}, reveals say {want_paid}")
            if s.slashed != want_slashed:
                problems.append(f"{_short(n)}: slashed={s.slashed}, reveals say {want_slashed}")
            if s.slashed != (n in penalized):
                problems.append(f"{_short(n)}: slashed={s.slashed} but {'a' if n in penalized else 'no'} NodePenalized event")
            if s.paid and credited.get(n, 0) == 0:
                problems.append(f"{_short(n)}: paid but no Credited event")
            n_paid += s.paid
            n_slashed += s.slashed
        if n_paid:
            total = sum(credited.get(n, 0) for n in committee)
            if total != r.fee:
                problems.append(f"members credited {total} wei of a {r.fee} wei fee")
        elif not ev["Refunded"] or int(ev["Refunded"][0].args["amount"]) != r.fee:
            problems.append("nobody paid but the requester was not refunded the fee")
        if problems:
            return Claim("quorum", "quorum.settlement", Verdict.FAIL, "; ".join(problems))
        return Claim("quorum", "quorum.settlement", Verdict.PASS,
                     f"{n_paid} paid, {n_slashed} slashed, as the reveals require"
                     + ("" if n_paid else "; fee refunded"))

    # ------------------------------------------------------------------ 5. proof

    def check_proof(self, ctx: AuditContext) -> list[Claim]:
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
        tx = self.w3.eth.get_transaction(e.tx_hash)
        sender = Web3.to_checksum_address(tx["from"])
        prover = Web3.to_checksum_address(e.args["prover"])
        try:
            fn, args = self.protocol.market.contract.decode_function_input(tx["input"])
            fn_name = fn.fn_name
        except ValueError:
            fn_name, args = "", {}
        if fn_name != "submitProof" or Web3.to_checksum_address(tx["to"]) != self.protocol.market.address:
            return [Claim("proof", "proof.tx", Verdict.NA,
                          f"tx {_short(e.tx_hash)} is not a direct submitProof call (relayed through a contract?): "
                          "calldata not decodable here")] + \
                   [Claim("proof", n, Verdict.NA, "no decodable proof") for n in names[1:]]
        words = [int(w) for w in args["proof"]]
        out_hash = bytes(args["outputHash"])
        problems = []
        if int(args["requestId"]) != r.request_id:
            problems.append(f"calldata requestId {args['requestId']}")
        if sender != prover:
            problems.append(f"tx from {sender} but event prover {prover}")
        if out_hash != bytes(e.args["outputHash"]) or int.from_bytes(out_hash, "big") != r.proven_output_hash:
            problems.append("calldata outputHash differs from the event / provenOutputHash")
        ctx.proof_words, ctx.prover = words, prover
        tx_claim = Claim("proof", "proof.tx", Verdict.FAIL if problems else Verdict.PASS,
                         "; ".join(problems) if problems else
                         f"ProofVerified in tx {_short(e.tx_hash)} (block {e.block_number}): submitProof calldata "
                         f"decoded, prover {_short(prover)}")
        claims = [tx_claim] + self.verify_proof(ctx, prover, out_hash, words)
        # the proven hash against the settlement
        proven = r.proven_output_hash.to_bytes(32, "big")
        if r.contradicted or ctx.events["ProofContradictsSettlement"]:
            claims.append(Claim("proof", "proof.output", Verdict.FAIL,
                                f"proof of {_short(proven)} contradicts the settled {_short(r.output_hash)}"))
        elif r.status in (Status.ACCEPTED, Status.INVALID_INPUT) and proven != bytes(r.output_hash):
            claims.append(Claim("proof", "proof.output", Verdict.FAIL,
                                f"provenOutputHash {_short(proven)} != outputHash {_short(r.output_hash)}"))
        elif r.status == Status.ACCEPTED:
            claims.append(Claim("proof", "proof.output", Verdict.PASS, "provenOutputHash = settled outputHash"))
        else:
            claims.append(Claim("proof", "proof.output", Verdict.NA, f"proven, but status {r.status.name}"))
        return claims

    def public_signals(self, ctx: AuditContext, prover: str, output_hash: bytes | int) -> list[int]:
        """The verifier's public inputs exactly as InferenceMarket._verify builds them (§1.2)."""
        r, m = ctx.request, ctx.model
        oh = output_hash if isinstance(output_hash, int) else int.from_bytes(bytes(output_hash), "big")
        ih = int.from_bytes(bytes(r.input_hash), "big")
        binding = request_binding(r.request_id, prover)
        if m.proof_mode == PROOF_PUBLIC_WEIGHTS:
            return [ih, oh, binding]
        return [m.commitment, ih, oh, binding]

    def verify_proof(self, ctx: AuditContext, prover: str, output_hash: bytes | int, words: Sequence[int],
                     public_signals: Sequence[int] | None = None) -> list[Claim]:
        """Verify 8 calldata words for (request, prover, output) locally (vk) and by eth_call to the
        registered verifier. `public_signals` overrides the rebuilt ones (tests of the verifier path)."""
        from verinfer.prover.backends import backend_by_name
        from verinfer.prover.onchain import VERIFY_GAS, verify_onchain
        from verinfer.prover.types import Proof

        pub = list(public_signals) if public_signals is not None else self.public_signals(ctx, prover, output_hash)
        rebuilt = self.public_signals(ctx, prover, output_hash)
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
            for name in self.backends:
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
                                 f"[{', '.join(_short(s) for s in pub)}]{tag}"))
            else:
                out.append(Claim("proof", "proof.local", Verdict.FAIL,
                                 f"{shown}: the proof does not verify for requestBinding(request, {_short(prover)}) "
                                 f"and the on-chain hashes{tag}"))
        m = ctx.model
        if m.verifier == ZERO_ADDRESS:
            out.append(Claim("proof", "proof.onchain", Verdict.FAIL, "no verifier registered"))
        else:
            ok = verify_onchain(self.w3, m.verifier, proof, gas=VERIFY_GAS)
            out.append(Claim("proof", "proof.onchain", Verdict.PASS if ok else Verdict.FAIL,
                             f"eth_call verifyProof on {_short(m.verifier)} with {VERIFY_GAS} gas: "
                             f"{'true' if ok else 'false'}{tag}"))
        return out

    # ------------------------------------------------------------------ 6. attestation

    def check_attestations(self, ctx: AuditContext) -> list[Claim]:
        from verinfer.attestation.record import quote_hash
        from verinfer.attestation.verify import AttestationError, verify_quote
        from verinfer.storage.errors import StorageError, StoreUnavailableError

        r, m = ctx.request, ctx.model
        nodes = self.protocol.nodes
        committee = [Web3.to_checksum_address(a) for a in self.protocol.market.get_committee(r.request_id)]
        agreeing = set()
        if ctx.winner is not None:
            for n in committee:
                rv = self.protocol.market.get_reveal(r.request_id, n)
                if rv.revealed and bytes(rv.output_hash) == ctx.winner:
                    agreeing.add(n)
        block = self.w3.eth.block_number
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
                quote = self.store.cat(rec.quote_cid, max_bytes=MAX_QUOTE_BYTES)
            except StoreUnavailableError:
                raise
            except (StorageError, ValueError) as exc:
                out.append(Claim("attestation", name, Verdict.FAIL, f"quote {rec.quote_cid!r}: {exc}"))
                continue
            if quote_hash(quote) != bytes(rec.quote_hash):
                out.append(Claim("attestation", name, Verdict.FAIL,
                                 f"quote {rec.quote_cid} hashes to {_short(quote_hash(quote))}, record's quoteHash "
                                 f"is {_short(rec.quote_hash)}"))
                continue
            if self.trusted_root_pem is None:
                out.append(Claim("attestation", name, Verdict.FAIL if must else Verdict.NA,
                                 "quote hash matches; no trusted root given (--trusted-root): chain not verified"))
                continue
            try:
                vq = verify_quote(quote, self.trusted_root_pem, expected_address=n, expected_chain_id=ctx.chain_id)
            except (AttestationError, ValueError) as exc:
                out.append(Claim("attestation", name, Verdict.FAIL, f"quote does not verify: {exc}"))
                continue
            problems = []
            if Web3.to_checksum_address(rec.report_data_address) != n:
                problems.append(f"record binds {rec.report_data_address}")
            if vq.mr_enclave != bytes(rec.measurement):
                problems.append(f"quote measurement {_short(vq.mr_enclave)} != recorded {_short(rec.measurement)}")
            if not nodes.measurement_allowed(rec.measurement):
                problems.append(f"measurement {_short(rec.measurement)} is no longer allow-listed")
            if rec.expires_at <= block:
                problems.append(f"expired at block {rec.expires_at} (now {block})")
            if problems:
                out.append(Claim("attestation", name, Verdict.FAIL, "; ".join(problems)))
            else:
                how = "test PKI, INSECURE" if rec.verified_by == 255 else f"verifiedBy {rec.verified_by}"
                out.append(Claim("attestation", name, Verdict.PASS,
                                 f"quote {_short(rec.quote_cid)} = quoteHash, chains to the trusted root, binds "
                                 f"this address and chain {ctx.chain_id}, measurement {_short(rec.measurement)} "
                                 f"allow-listed, valid until block {rec.expires_at} ({how})"))
        if m.requires_tee and not out:
            out.append(Claim("attestation", "attestation", Verdict.FAIL, "model requires a TEE but no committee"))
        return out
