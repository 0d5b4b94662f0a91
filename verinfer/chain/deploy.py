"""Deploying the protocol (and any single artifact, e.g. a generated Groth16 verifier).

Deployment is plain web3: constructor tx from committed bytecode, then the owner wiring
(NodeRegistry.setMarket) and parameter setters, each through TxSender so reverts are decoded.
"""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from verinfer.chain import artifacts
from verinfer.chain.errors import ChainError
from verinfer.chain.manifest import Manifest, ProtocolParams
from verinfer.chain.tx import TxSender, name_contract, rpc_url_of, sender_for

__all__ = ["ProtocolParams", "deploy_contract", "deploy_protocol", "is_deployed"]


def _sender(w3: Web3, sender: LocalAccount | TxSender) -> TxSender:
    return sender if isinstance(sender, TxSender) else sender_for(w3, sender)


def deploy_contract(w3: Web3, sender: LocalAccount | TxSender, artifact_name: str, *ctor_args: Any) -> str:
    """Deploy the committed artifact `artifact_name`; returns its checksummed address."""
    art = artifacts.load(artifact_name)
    if not art.bytecode or art.bytecode == "0x":
        raise ChainError(f"artifact {artifact_name} has no bytecode (abstract contract or interface?)")
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = _sender(w3, sender).send(factory.constructor(*ctor_args), contract=artifact_name)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError(f"deploying {artifact_name} produced no contract address (tx {receipt['transactionHash'].hex()})")
    address = Web3.to_checksum_address(address)
    name_contract(address, artifact_name)
    return address


def deploy_protocol(w3: Web3, deployer: LocalAccount, params: ProtocolParams | None = None) -> Manifest:
    """Deploy ModelRegistry, NodeRegistry, InferenceMarket, ExampleConsumer; wire and configure them."""
    params = params or ProtocolParams()
    tx = sender_for(w3, deployer)
    owner = deployer.address
    deploy_block = w3.eth.block_number + 1
    models = deploy_contract(w3, tx, "ModelRegistry")
    nodes = deploy_contract(w3, tx, "NodeRegistry", owner, models)
    market = deploy_contract(w3, tx, "InferenceMarket", nodes, models, owner)
    consumer = deploy_contract(w3, tx, "ExampleConsumer", market)

    n = w3.eth.contract(address=nodes, abi=artifacts.load("NodeRegistry").abi)
    m = w3.eth.contract(address=market, abi=artifacts.load("InferenceMarket").abi)
    tx.send(n.functions.setMarket(market))
    _set_if_different(tx, n, "minStake", "setMinStake", params.min_stake)
    _set_if_different(tx, n, "unbondingDelay", "setUnbondingDelay", params.unbonding_delay)
    treasury = params.treasury or owner
    if n.functions.treasury().call() != treasury:
        tx.send(n.functions.setTreasury(treasury))
    _set_if_different(tx, m, "minFee", "setMinFee", params.min_fee)
    _set_if_different(tx, m, "maxReplicas", "setMaxReplicas", params.max_replicas)
    # Windows: widen max before raising min (and lower min before lowering max) so each step is valid.
    for lo, hi, lo_set, hi_set, lo_v, hi_v in (
        ("minCommitBlocks", "maxCommitBlocks", "setMinCommitBlocks", "setMaxCommitBlocks",
         params.min_commit_blocks, params.max_commit_blocks),
        ("minRevealBlocks", "maxRevealBlocks", "setMinRevealBlocks", "setMaxRevealBlocks",
         params.min_reveal_blocks, params.max_reveal_blocks),
    ):
        if lo_v > getattr(m.functions, hi)().call():
            _set_if_different(tx, m, hi, hi_set, hi_v)
            _set_if_different(tx, m, lo, lo_set, lo_v)
        else:
            _set_if_different(tx, m, lo, lo_set, lo_v)
            _set_if_different(tx, m, hi, hi_set, hi_v)
    _set_if_different(tx, m, "slashAmount", "setSlashAmount", params.slash_amount)
    _set_if_different(tx, m, "proofVerifyGas", "setProofVerifyGas", params.proof_verify_gas)

    return Manifest(
        chain_id=w3.eth.chain_id,
        rpc_url=rpc_url_of(w3),
        deploy_block=deploy_block,
        addresses={"NodeRegistry": nodes, "ModelRegistry": models, "InferenceMarket": market, "ExampleConsumer": consumer},
        params=params.model_copy(update={"treasury": treasury}),
        deployer=owner,
    )


def _set_if_different(tx: TxSender, contract: Any, getter: str, setter: str, value: int) -> None:
    if getattr(contract.functions, getter)().call() != value:
        tx.send(getattr(contract.functions, setter)(value))


def is_deployed(w3: Web3, manifest: Manifest) -> bool:
    """True when the manifest is for this chain and every contract in it has code."""
    try:
        if w3.eth.chain_id != manifest.chain_id:
            return False
        return all(len(w3.eth.get_code(a)) > 0 for a in manifest.addresses.values())
    except Exception:
        return False
