"""One-call flows: prepare a model's circuit + keys + verifier source, prove a request.

    arts = prepare(spec, mode="public", setup="dev")       # compile (cached), keys, verifier .sol
    addr = deploy_verifier(w3, sender, arts)               # chain layer (chain/verifier.py)
    out_hash, calldata8 = prove_request(arts, spec, x, request_id, prover_address)
    market.submitProof(request_id, out_hash, calldata8)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Sequence

from eth_utils import keccak

from verinfer.constants import FIELD, request_binding  # noqa: F401  (re-exported for prover callers)
from verinfer.prover import commitment as _commitment
from verinfer.prover import keys as _keys
from verinfer.prover import toolchain
from verinfer.prover.artifacts import CompiledCircuit, compile_circuit
from verinfer.prover.backends import ProverBackend, best_backend
from verinfer.prover.errors import ArtifactError, ProverError
from verinfer.prover.spec import view
from verinfer.prover.types import CircuitArtifacts, Proof
from verinfer.prover.witness import circuit_inputs

SETUPS = ("dev", "ceremony", "shipped")
SHIPPED_DIR = Path(__file__).resolve().parent / "data" / "keys"


def vk_commitment(vk: dict[str, Any]) -> int:
    """Mode-1 model commitment: keccak256(canonical verification-key JSON) % FIELD."""
    canonical = json.dumps(vk, sort_keys=True, separators=(",", ":")).encode()
    return int.from_bytes(keccak(canonical), "big") % FIELD


def verifier_contract_name(model_name: str, mode: str) -> str:
    """e.g. Groth16VerifierDigitsMlp / Groth16VerifierDigitsMlpPrivate (unique per model and mode)."""
    camel = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", model_name) if p)
    return f"Groth16Verifier{camel}{'Private' if mode == 'private' else ''}"


def export_verifier(cc: CompiledCircuit, km: _keys.KeyMaterial, contract: str, out: Path) -> Path:
    """The snarkjs Groth16 Solidity verifier for these keys, renamed to `contract`, labelled if insecure."""
    raw = out.with_suffix(".snarkjs.sol")
    if km.zkey_path is not None:
        toolchain.run(toolchain.snarkjs_cmd() + ["zkey", "export", "solidityverifier", str(km.zkey_path), str(raw)],
                      what="snarkjs zkey export solidityverifier")
    else:
        toolchain.run([toolchain.node_binary(), str(toolchain.DATA_DIR / "render_verifier.js"),
                       str(toolchain.node_modules()), str(km.vk_path), str(raw)], what="render snarkjs verifier")
    text = raw.read_text()
    raw.unlink()
    if "contract Groth16Verifier {" not in text:
        raise ProverError("unexpected snarkjs verifier template (no `contract Groth16Verifier`)")
    text = text.replace("contract Groth16Verifier {", f"contract {contract} {{", 1)
    label = "INSECURE" if km.insecure else "secure phase 1"
    header = (
        f"// verinfer: snarkjs-exported Groth16 verifier for circuit {cc.circuit_hash}\n"
        f"// model {cc.manifest['model']!r}, proof mode {cc.mode!r}, public signals: "
        f"{', '.join(cc.public_signal_names)}\n"
        f"// keys: {km.kind} ({label}); vk sha256 {km.record.get('vk_sha256', '')}\n"
    )
    if km.insecure:
        header += "// WARNING: INSECURE - whoever ran this setup can forge proofs. Never use for value.\n"
    out.write_text(header + text)
    return out


def _shipped_keys(cc: CompiledCircuit) -> _keys.KeyMaterial:
    d = SHIPPED_DIR / f"{cc.manifest['model']}.{cc.mode}"
    if not (d / "key.json").exists():
        raise ArtifactError(f"no shipped keys for {cc.manifest['model']} ({cc.mode}); use setup='dev' or a ceremony")
    km = _keys.load_keys(d)
    if km.record.get("r1cs_sha256") != cc.manifest["r1cs_sha256"]:
        raise ArtifactError(
            f"shipped keys for {cc.manifest['model']} were made for another r1cs "
            f"({km.record.get('r1cs_sha256', '')[:12]}… != {cc.manifest['r1cs_sha256'][:12]}…): the circuit changed; "
            "re-run the ceremony (docs/prover.md)"
        )
    return km


def prepare(spec: Any, mode: str = "public", setup: str = "dev", circuit: str = "circom") -> CircuitArtifacts:
    """Compile (cached), set up keys (dev INSECURE / finished ceremony / shipped), export the verifier.

    The commitment is what ModelRegistry stores: mode 1 = vk_commitment(vk); mode 2 = weights_commitment.
    `circuit="direct"` builds the constraint system straight from the spec (verinfer.prover.direct:
    seconds where circom takes minutes or does not finish); it takes dev keys only.
    """
    if setup not in SETUPS:
        raise ProverError(f"unknown setup {setup!r}: use one of {', '.join(SETUPS)}")
    if circuit not in ("circom", "direct"):
        raise ProverError(f"unknown circuit path {circuit!r}: use circom or direct")
    sv = view(spec)
    if circuit == "direct":
        if setup != "dev":
            raise ProverError("direct circuits take dev (INSECURE) keys only; use circuit='circom' for a ceremony")
        from verinfer.prover import direct as _direct

        cc: Any = _direct.generate_r1cs(sv, mode)
    else:
        cc = compile_circuit(sv, mode)
    if setup == "dev":
        km = _keys.dev_setup(cc)
    elif setup == "ceremony":
        km = _keys.ceremony_keys(cc)
    else:
        km = _shipped_keys(cc)
    contract = verifier_contract_name(sv.name, mode)
    sol = km.vk_path.parent / f"{contract}.sol"
    if not sol.exists():
        with _keys.key_lock(cc):  # another process may be exporting the same file
            if not sol.exists():
                tmp = sol.with_name(f".{sol.name}.{os.getpid()}.tmp")
                export_verifier(cc, km, contract, tmp)
                os.replace(tmp, sol)
    value = vk_commitment(km.vk) if mode == "public" else _commitment.commitment(sv)
    return CircuitArtifacts(cc, km, value, sol, contract, extra={"setup": setup})


def check_publishable(spec: Any, mode: str, ptau: Path | str | None = None) -> None:
    """Refuse, in one line and before any compile or chain write, a model the prover cannot serve.

    An unsupported layer type fails `view` (ProverError naming the layer); with `ptau` (the phase-1
    file a ceremony would start from) the circuit's size is counted by the direct generator (seconds,
    within 1% of circom's count and the same power of two on the shipped models) and a ptau too small
    for it is refused with both powers.
    """
    if mode not in ("public", "private"):
        raise ProverError(f"unknown proof mode {mode!r}: use public or private")
    sv = view(spec)
    if ptau is None:
        return
    from verinfer.prover import direct as _direct

    if not Path(ptau).is_file():
        raise ArtifactError(f"ptau file {ptau} not found")
    _direct.check_ptau(_direct.generate_r1cs(sv, mode), Path(ptau))


def prove_for_request(artifacts: CircuitArtifacts, spec: Any, x: Sequence[int], request_id: int,
                      prover_address: str, backend: ProverBackend | None = None) -> Proof:
    """The full proof (with public signals) for request `request_id` submitted by `prover_address`."""
    from verinfer.prover import direct as _direct

    sv = view(spec)
    binding = request_binding(request_id, prover_address)
    circuit_inputs(sv, artifacts.mode, x, binding)  # one-line input errors before any work
    # the direct integer witness (bit-identical to the circuit's wasm, ~10x faster)
    values = _direct.witness_for(artifacts.compiled, x, binding, sv)
    be = backend or best_backend()
    with tempfile.TemporaryDirectory(prefix="verinfer-wtns-") as tmp:
        proof = be.prove_wtns(artifacts, _direct.write_wtns(values, Path(tmp) / "w.wtns"))
    names = artifacts.public_signal_names
    got = dict(zip(names, proof.public_signals, strict=True))
    if got.get("requestBinding") != binding:
        raise ProverError("proof's requestBinding does not match the request (wrong circuit?)")
    if "modelCommitment" in got and got["modelCommitment"] != artifacts.commitment:
        raise ProverError("the circuit computed another model commitment: the spec's weights are not the registered model")
    return proof


def prove_request(artifacts: CircuitArtifacts, spec: Any, x: Sequence[int], request_id: int,
                  prover_address: str, backend: ProverBackend | None = None) -> tuple[bytes, list[int]]:
    """(outputHash as bytes32, proof as the 8 calldata words) for InferenceMarket.submitProof."""
    proof = prove_for_request(artifacts, spec, x, request_id, prover_address, backend)
    out_hash = dict(zip(artifacts.public_signal_names, proof.public_signals, strict=True))["outputHash"]
    return out_hash.to_bytes(32, "big"), proof.to_calldata()


def expected_public_signals(artifacts: CircuitArtifacts, spec: Any, x: Sequence[int], output: Sequence[int],
                            request_id: int, prover_address: str) -> list[int]:
    """The public signals a verifier must be given for this request (what an auditor reconstructs)."""
    from verinfer.models.hashing import hash_vector

    sv = view(spec)
    values = {
        "modelCommitment": artifacts.commitment,
        "inputHash": hash_vector(list(x), sv.input_bits),
        "outputHash": hash_vector(list(output), sv.output_bits),
        "requestBinding": request_binding(request_id, prover_address),
    }
    return [values[n] for n in artifacts.public_signal_names]


def check_request_proof(artifacts: CircuitArtifacts, spec: Any, x: Sequence[int], output: Sequence[int],
                        request_id: int, prover_address: str, calldata8: Sequence[int], *,
                        backend: ProverBackend | None = None) -> dict[str, Any]:
    """What an auditor checks for a submitted proof: rebuild the public signals from public data
    (commitment, input, output, request id, prover) and verify locally. Returns {"public_signals",
    "local", "proof"}; the eth_call against the registered verifier is the chain layer's
    `verify_onchain(w3, verifier, result["proof"])` (chain/verifier.py)."""
    pub = expected_public_signals(artifacts, spec, x, output, request_id, prover_address)
    proof = Proof.from_calldata(calldata8, pub)
    return {"public_signals": pub, "local": (backend or best_backend()).verify(artifacts.vk, proof), "proof": proof}
