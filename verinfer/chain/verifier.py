"""A model's snarkjs Groth16 verifier on chain: deploy it, verify proofs with explicit gas.

The Solidity source and its compilation stay in the prover library (`verinfer.prover.solidity`);
this module is the chain half. Why explicit gas: a snarkjs verifier whose precompile call runs out
of gas returns `false` instead of reverting, so `eth_estimateGas` under-reports (~38k). Every call
here passes VERIFY_GAS.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from verinfer.chain.errors import ChainError
from verinfer.chain.tx import TxSender, name_contract, sender_for
from verinfer.prover.solidity import compile_verifier
from verinfer.prover.types import CircuitArtifacts, Proof

VERIFY_GAS = 600_000
VERIFIER_ABI_FN = "verifyProof"


def deploy_verifier(w3: Web3, sender: Any, artifacts: CircuitArtifacts) -> str:
    """Compile the artifacts' exported verifier and deploy it; returns the checksummed address."""
    art = compile_verifier(artifacts.verifier_sol, artifacts.verifier_contract)
    tx = sender if isinstance(sender, TxSender) else sender_for(w3, sender)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = tx.send(factory.constructor(), contract=artifacts.verifier_contract)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError("verifier deployment produced no contract address")
    address = Web3.to_checksum_address(address)
    name_contract(address, artifacts.verifier_contract)
    return address


def _verifier(w3: Web3, address: str, n_public: int) -> Any:
    abi = [{
        "type": "function", "name": VERIFIER_ABI_FN, "stateMutability": "view",
        "inputs": [{"name": "_pA", "type": "uint256[2]"}, {"name": "_pB", "type": "uint256[2][2]"},
                   {"name": "_pC", "type": "uint256[2]"}, {"name": "_pubSignals", "type": f"uint256[{n_public}]"}],
        "outputs": [{"name": "", "type": "bool"}],
    }]
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)


def _args(proof: Proof) -> tuple[Any, ...]:
    w = proof.to_calldata()
    return ([w[0], w[1]], [[w[2], w[3]], [w[4], w[5]]], [w[6], w[7]], list(proof.public_signals))


def verify_onchain(w3: Web3, address: str, proof: Proof, *, gas: int = VERIFY_GAS) -> bool:
    """eth_call of verifyProof with explicit gas (what an auditor runs)."""
    fn = _verifier(w3, address, len(proof.public_signals)).functions.verifyProof(*_args(proof))
    try:
        return bool(fn.call({"gas": gas}))
    except Exception as exc:  # a revert (e.g. malformed calldata) is a failed verification
        if "revert" in str(exc).lower():
            return False
        raise


def verify_gas(w3: Web3, sender: Any, address: str, proof: Proof, *, gas: int = VERIFY_GAS) -> int:
    """gasUsed of a verifyProof *transaction* (the per-proof on-chain cost, intrinsic gas included)."""
    tx = sender if isinstance(sender, TxSender) else sender_for(w3, sender)
    fn = _verifier(w3, address, len(proof.public_signals)).functions.verifyProof(*_args(proof))
    receipt = tx.send(fn, gas=gas, contract="Groth16Verifier")
    return int(receipt["gasUsed"])
