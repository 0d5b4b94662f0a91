"""Deploying the protocol (and any single artifact, e.g. a generated Groth16 verifier).

Deployment is plain web3: constructor txs from committed bytecode, the owner wiring
(NodeRegistry.setMarket, NodeRegistry.setCourt) and parameter setters sent by the deployer, then ownership of
NodeRegistry, InferenceMarket, AttestationRegistry and StageCourt moves to an OpenZeppelin TimelockController
(proposer + executor: the deployer; devnet minDelay 0, see docs/chain.md). Later governance goes
through `Protocol.govern` (schedule + execute).
"""

from __future__ import annotations

from typing import Any, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3

from verinfer.chain import artifacts
from verinfer.chain.errors import ChainError
from verinfer.chain.manifest import Manifest, ProtocolParams
from verinfer.chain.tx import TxSender, name_contract, rpc_url_of, sender_for
from verinfer.constants import DEVNET_CHAIN_ID
from verinfer.errors import ConfigError

__all__ = ["ProtocolParams", "deploy_artifact", "deploy_contract", "deploy_protocol", "is_deployed"]

ZERO = "0x0000000000000000000000000000000000000000"
#: Contracts owned by the timelock after deployment (ModelRegistry has no owner; ExampleConsumer is a dApp).
GOVERNED = ("NodeRegistry", "InferenceMarket", "AttestationRegistry", "StageCourt")


def _sender(w3: Web3, sender: LocalAccount | TxSender) -> TxSender:
    return sender if isinstance(sender, TxSender) else sender_for(w3, sender)


def deploy_artifact(w3: Web3, sender: LocalAccount | TxSender, art: artifacts.Artifact, name: str,
                    *ctor_args: Any) -> tuple[str, Any]:
    """Deploy `art` (labelled `name` in error messages); returns (checksummed address, receipt)."""
    if not art.bytecode or art.bytecode == "0x":
        raise ChainError(f"artifact {name} has no bytecode (abstract contract or interface?)")
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = _sender(w3, sender).send(factory.constructor(*ctor_args), contract=name)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError(f"deploying {name} produced no contract address (tx {receipt['transactionHash'].hex()})")
    address = Web3.to_checksum_address(address)
    name_contract(address, name)
    return address, receipt


def deploy_contract(w3: Web3, sender: LocalAccount | TxSender, artifact_name: str, *ctor_args: Any) -> str:
    """Deploy the committed artifact `artifact_name`; returns its checksummed address."""
    return deploy_artifact(w3, sender, artifacts.load(artifact_name), artifact_name, *ctor_args)[0]


def has_timelock_artifact() -> bool:
    return "TimelockController" in artifacts.available()


def deploy_protocol(w3: Web3, deployer: LocalAccount, params: ProtocolParams | None = None, *,
                    timelock: bool = True, attestation_verifiers: Sequence[str] = ()) -> Manifest:
    """Deploy ModelRegistry, AttestationRegistry, NodeRegistry, InferenceMarket, StageCourt, ExampleConsumer and the
    timelock.

    `timelock=False` (tests of owner-only paths) leaves the deployer EOA as owner. `attestation_verifiers` are
    trusted for the AttestationRegistry's path (a) while the deployer still owns it (before the handover).
    """
    params = params or ProtocolParams()
    chain_id = w3.eth.chain_id
    # The deploy profile (chain/profile.py) knows the block time and requires delay > unbonding delay in
    # seconds; here, without a block time, a chain other than the devnet must at least have a delay.
    if timelock and chain_id != DEVNET_CHAIN_ID and params.timelock_min_delay <= 0:
        raise ConfigError(f"chain {chain_id} needs a timelock delay longer than the unbonding delay "
                          f"(timelock_min_delay_seconds in the deploy profile); 0 is allowed only on the devnet "
                          f"(chain {DEVNET_CHAIN_ID})")
    tx = sender_for(w3, deployer)
    owner = deployer.address
    deploy_block = w3.eth.block_number + 1
    models = deploy_contract(w3, tx, "ModelRegistry")
    attest = deploy_contract(w3, tx, "AttestationRegistry", owner)
    nodes = deploy_contract(w3, tx, "NodeRegistry", owner, models, attest, params.min_stake, params.unbonding_delay,
                            params.epoch_length)
    market = deploy_contract(w3, tx, "InferenceMarket", owner, nodes, models, params.request_records)
    court = deploy_contract(w3, tx, "StageCourt", owner, nodes, market)
    consumer = deploy_contract(w3, tx, "ExampleConsumer", market)

    n = w3.eth.contract(address=Web3.to_checksum_address(nodes), abi=artifacts.load("NodeRegistry").abi)
    m = w3.eth.contract(address=Web3.to_checksum_address(market), abi=artifacts.load("InferenceMarket").abi)
    tx.send(n.functions.setMarket(market))
    tx.send(n.functions.setCourt(court))  # the second (and last) slasher: stages that sign wrong receipts
    _set_if_different(tx, m, "minFee", "setMinFee", params.min_fee)
    _set_if_different(tx, m, "slashAmount", "setSlashAmount", params.slash_amount)
    _set_if_different(tx, m, "minCommitBlocks", "setMinCommitBlocks", params.min_commit_blocks)
    _set_if_different(tx, m, "minRevealBlocks", "setMinRevealBlocks", params.min_reveal_blocks)
    _set_if_different(tx, m, "proofBlocks", "setProofBlocks", params.proof_blocks)
    _set_if_different(tx, m, "callbackGasPrice", "setCallbackGasPrice", params.callback_gas_price)
    if attestation_verifiers:
        a = w3.eth.contract(address=Web3.to_checksum_address(attest), abi=artifacts.load("AttestationRegistry").abi)
        for verifier in attestation_verifiers:
            tx.send(a.functions.setVerifier(Web3.to_checksum_address(verifier), True), contract="AttestationRegistry")

    addresses = {"NodeRegistry": nodes, "ModelRegistry": models, "InferenceMarket": market,
                 "ExampleConsumer": consumer, "AttestationRegistry": attest, "StageCourt": court}
    timelock_address: str | None = None
    if timelock and has_timelock_artifact():
        # Created with minDelay 0 so the ownership acceptances execute now; the real delay is set last, by the
        # timelock itself (updateDelay is only callable by the timelock), so a public deployment finishes in one run.
        timelock_address = deploy_contract(w3, tx, "TimelockController", 0, [owner], [owner], ZERO)
        addresses["TimelockController"] = timelock_address
        hand_over(w3, tx, {k: addresses[k] for k in GOVERNED}, timelock_address)
        if params.timelock_min_delay:
            _timelock_self_call(w3, tx, timelock_address, "updateDelay", params.timelock_min_delay)
    return Manifest(
        chain_id=chain_id,
        rpc_url=rpc_url_of(w3),
        deploy_block=deploy_block,
        addresses=addresses,
        params=params,
        deployer=owner,
        timelock=timelock_address,
    )


def hand_over(w3: Web3, tx: TxSender, contracts: dict[str, str], timelock: str) -> None:
    """Ownable2Step handover to the timelock: transferOwnership, then the timelock accepts (schedule + execute)."""
    tl = w3.eth.contract(address=Web3.to_checksum_address(timelock), abi=artifacts.load("TimelockController").abi)
    delay = tl.functions.getMinDelay().call()
    for name, address in contracts.items():
        c = w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifacts.load(name).abi)
        tx.send(c.functions.transferOwnership(timelock), contract=name)
        if not any(e.get("name") == "acceptOwnership" for e in c.abi):
            continue
        data = bytes.fromhex(c.functions.acceptOwnership()._encode_transaction_data()[2:])
        salt = Web3.keccak(text=f"accept:{name}:{address}")
        tx.send(tl.functions.schedule(address, 0, data, b"\x00" * 32, salt, delay), contract="TimelockController")
        if delay > 0:
            raise ChainError(f"timelock minDelay {delay} s: execute the ownership acceptance of {name} later")
        tx.send(tl.functions.execute(address, 0, data, b"\x00" * 32, salt), contract="TimelockController")


def _timelock_self_call(w3: Web3, tx: TxSender, timelock: str, fn_name: str, *args: Any) -> None:
    """Schedule + execute a call of the timelock on itself while its delay is still 0 (deployment only)."""
    tl = w3.eth.contract(address=Web3.to_checksum_address(timelock), abi=artifacts.load("TimelockController").abi)
    data = bytes.fromhex(getattr(tl.functions, fn_name)(*args)._encode_transaction_data()[2:])
    salt = Web3.keccak(text=f"{fn_name}:{timelock}:{args}")
    tx.send(tl.functions.schedule(timelock, 0, data, b"\x00" * 32, salt, 0), contract="TimelockController")
    tx.send(tl.functions.execute(timelock, 0, data, b"\x00" * 32, salt), contract="TimelockController")


#: Field order of `InferenceMarket.parameters()` (one view instead of seven getters: EIP-170).
_MARKET_PARAMETERS = ("minFee", "minCommitBlocks", "minRevealBlocks", "slashAmount", "proofBlocks", "callbackGasPrice")


def _set_if_different(tx: TxSender, contract: Any, name: str, setter: str, value: int) -> None:
    if contract.functions.parameters().call()[_MARKET_PARAMETERS.index(name)] != value:
        tx.send(getattr(contract.functions, setter)(value))


def is_deployed(w3: Web3, manifest: Manifest) -> bool:
    """True when the manifest is for this chain and every contract in it has code."""
    try:
        if w3.eth.chain_id != manifest.chain_id:
            return False
        return all(len(w3.eth.get_code(Web3.to_checksum_address(a))) > 0 for a in manifest.addresses.values())
    except Exception:
        return False
