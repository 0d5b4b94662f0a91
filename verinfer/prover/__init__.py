"""Groth16 proofs of integer inference: circuit generation, setup, proving, verification (docs/prover.md).

Entry points (all in `verinfer.prover.pipeline` unless noted):
    prepare(spec, mode="public", setup="dev", circuit="circom"|"direct") -> CircuitArtifacts
    prove_request(artifacts, spec, x, request_id, prover_address, backend=None) -> (bytes32, [8 ints])
    prove_for_request(...) -> Proof;  expected_public_signals(...);  request_binding(request_id, prover)
    backends: Groth16pyBackend, SnarkjsBackend, best_backend()   (verinfer.prover.backends)
    verifier compilation: compile_verifier(sol, contract) -> {abi, bytecode}  (verinfer.prover.solidity)
    deploying and calling verifiers is the chain layer's (chain/verifier.py); this package never touches the chain
    direct constraint systems and witnesses: generate_r1cs, witness_values, circom_witness  (verinfer.prover.direct)
    batch verifier rendering: render_batch_verifier(vk, contract)  (verinfer.prover.batch)
"""

from verinfer.prover.errors import ArtifactError, CeremonyError, ProverError, ProverInputError

__all__ = ["ArtifactError", "CeremonyError", "ProverError", "ProverInputError"]
