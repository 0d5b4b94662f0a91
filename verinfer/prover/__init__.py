"""Groth16 proofs of integer inference: circuit generation, setup, proving, verification (docs/prover.md).

Entry points (all in `verinfer.prover.pipeline` unless noted):
    prepare(spec, mode="public", setup="dev", circuit="circom"|"direct") -> CircuitArtifacts
    deploy_verifier(w3, sender, artifacts) -> address
    prove_request(artifacts, spec, x, request_id, prover_address, backend=None) -> (bytes32, [8 ints])
    prove_for_request(...) -> Proof;  expected_public_signals(...);  request_binding(request_id, prover)
    backends: Groth16pyBackend, SnarkjsBackend, best_backend()   (verinfer.prover.backends)
    on chain: verify_onchain(w3, address, proof), verify_gas(...)  (verinfer.prover.onchain)
    direct constraint systems and witnesses: generate_r1cs, witness_values, circom_witness  (verinfer.prover.direct)
    batch verifier rendering: render_batch_verifier(vk, contract)  (verinfer.prover.batch)
"""

from verinfer.prover.errors import ArtifactError, CeremonyError, ProverError, ProverInputError

__all__ = ["ArtifactError", "CeremonyError", "ProverError", "ProverInputError"]
