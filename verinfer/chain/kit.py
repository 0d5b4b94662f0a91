"""The dApp kit from Python: deploy the shared on-chain hasher, quote, prepare inputs, open outputs, deliver.

A consumer contract (contracts/src/kit/VerinferConsumer.sol) computes its input hash on-chain and acts on a
result once someone opens the output vector with `deliver`; these helpers are that someone's side and the
developer's tooling. Kit artifacts live in the repository's `abi/` (scripts/export_abi.py writes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3

from verinfer.chain import artifacts
from verinfer.chain.deploy import deploy_artifact
from verinfer.chain.errors import ChainError
from verinfer.chain.tx import TxSender, sender_for
from verinfer.errors import ConfigError
from verinfer.models.errors import InvalidInputError
from verinfer.models.hashing import from_bytes32, hash_vector
from verinfer.models.tensor import MAX_INPUT_BYTES, decode_tensor, dtype_for_bits, encode_tensor
from verinfer.storage.errors import StorageError

KIT_DIR = Path(__file__).resolve().parents[2] / "abi"
"""Where scripts/export_abi.py writes the kit's artifacts (ABI + bytecode)."""

POSEIDON_ARITIES = (2, 3, 4, 5, 6)
MAX_WORDS = 5
WORD_BITS = 248
NO_CLASS = (1 << 256) - 1
ACCEPTED = 4
"""InferenceMarket.Status.Accepted (V2 enum value)."""


@dataclass(frozen=True)
class Quote:
    """What a request costs now: the minimum fee, the escrowed callback deposit, and their sum."""

    fee: int
    callback_deposit: int

    @property
    def total(self) -> int:
        return self.fee + self.callback_deposit


@dataclass(frozen=True)
class ModelEntry:
    """One registered model, named the way a developer looks it up."""

    publisher: str
    name: str
    version: int
    model_id: str
    proof_mode: int
    input_bits: int
    output_bits: int
    deprecated: bool


def artifact(name: str) -> artifacts.Artifact:
    """A kit artifact from abi/ (a ConfigError naming the script if it was never exported)."""
    return artifacts.load(name, KIT_DIR)


def contract(w3: Web3, name: str, address: str) -> Any:
    """A web3 contract object for kit contract `name` at `address`."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name).abi)


def _sender(w3: Web3, sender: LocalAccount | TxSender) -> TxSender:
    return sender if isinstance(sender, TxSender) else sender_for(w3, sender)


def deploy(w3: Web3, sender: LocalAccount | TxSender, name: str, *args: Any, gas: dict[str, int] | None = None) -> str:
    """Deploy kit contract `name` (from abi/) and return its checksummed address; `gas[name]` gets the gas used."""
    address, receipt = deploy_artifact(w3, sender, artifact(name), name, *args)
    if gas is not None:
        gas[name] = int(receipt["gasUsed"])
    return address


def deploy_kit(w3: Web3, sender: LocalAccount | TxSender, gas: dict[str, int] | None = None) -> dict[str, str]:
    """Deploy Poseidon2..Poseidon6 and the VerinferHasher over them (once per chain; gas in docs/dapp.md)."""
    tx = _sender(w3, sender)
    addresses = {f"Poseidon{n}": deploy(w3, tx, f"Poseidon{n}", gas=gas) for n in POSEIDON_ARITIES}
    addresses["VerinferHasher"] = deploy(
        w3, tx, "VerinferHasher", [addresses[f"Poseidon{n}"] for n in POSEIDON_ARITIES], gas=gas
    )
    return addresses


def max_length(bits: int) -> int:
    """The longest vector of `bits`-wide values the on-chain hasher takes (one Poseidon of <= 6 inputs)."""
    if not 1 <= bits <= WORD_BITS:
        raise ConfigError(f"bits must be in 1..{WORD_BITS}, got {bits}")
    return MAX_WORDS * (WORD_BITS // bits)


def onchain_hash(w3: Web3, hasher: str, xs: Sequence[int], bits: int) -> int:
    """hash_vector(xs, bits) computed by the deployed VerinferHasher (eth_call)."""
    out = contract(w3, "VerinferHasher", hasher).functions.hashVector([int(x) for x in xs], bits).call()
    return from_bytes32(out)


def onchain_poseidon(w3: Web3, hasher: str, inputs: Sequence[int]) -> int:
    """circomlib Poseidon of 2..6 field elements, computed on-chain (eth_call)."""
    return int(contract(w3, "VerinferHasher", hasher).functions.poseidon([int(x) for x in inputs]).call())


def input_document(xs: Sequence[int], bits: int) -> bytes:
    """The verinfer.tensor.v1 payload (1-D) a consumer's `_requestVector` builds on-chain, byte for byte."""
    try:
        return encode_tensor([int(x) for x in xs], dtype_for_bits(bits), [len(xs)])
    except ValueError as exc:
        raise ConfigError(f"input cannot be encoded with {bits}-bit values: {exc}") from None


def store_input(store: Any, xs: Sequence[int], bits: int) -> str:
    """Put the payload of `xs` in a content store; returns its CID (the one the contract computed)."""
    return store.add(input_document(xs, bits))


def store_requested_inputs(w3: Web3, consumer: str, store: Any, from_block: int = 0) -> list[str]:
    """Store every input document a consumer emitted (VerinferRequested) — anyone can do it; the CID is fixed."""
    c = contract(w3, "VerinferConsumer", consumer)
    cids = []
    for ev in c.events.VerinferRequested().get_logs(from_block=from_block):
        doc = bytes(ev["args"]["inputDocument"])
        if not doc:
            continue
        cid = store.add(doc)
        if cid != ev["args"]["inputCid"]:
            raise ChainError(f"request {ev['args']['requestId']}: stored CID {cid} != requested {ev['args']['inputCid']}")
        cids.append(cid)
    return cids


def quote(w3: Web3, market: str, model_id: bytes | str, params: Any) -> Quote:
    """The market's `quote(modelId, params)`: minimum fee and callback deposit for a request now."""
    m = contract(w3, "IInferenceMarket", market)
    fee, deposit = m.functions.quote(_bytes32(model_id), _params_tuple(params)).call()
    return Quote(fee=int(fee), callback_deposit=int(deposit))


def list_models(w3: Web3, registry: str) -> list[ModelEntry]:
    """Every registered model as (publisher, name, version, full model id, ...), in registration order."""
    r = contract(w3, "IModelRegistry", registry)
    out = []
    for i in range(r.functions.modelCount().call()):
        mid = bytes(r.functions.modelIdAt(i).call())
        m = r.functions.getModel(mid).call()
        d = dict(zip([x["name"] for x in _struct_components(r, "getModel")], m, strict=True))
        out.append(
            ModelEntry(
                publisher=d["publisher"],
                name=d["name"],
                version=int(d["version"]),
                model_id="0x" + mid.hex(),
                proof_mode=int(d["proofMode"]),
                input_bits=int(d["inputBits"]),
                output_bits=int(d["outputBits"]),
                deprecated=bool(d["deprecated"]),
            )
        )
    return out


def settled_output(w3: Web3, market: str, request_id: int) -> tuple[int, int, bool]:
    """(status, outputHash as int, proven) of a request, from the market."""
    m = contract(w3, "IInferenceMarket", market)
    r = m.functions.getRequest(request_id).call()
    d = dict(zip([x["name"] for x in _struct_components(m, "getRequest")], r, strict=True))
    return int(d["status"]), from_bytes32(bytes(d["outputHash"])), bool(d["proven"])


def output_vector(w3: Web3, market: str, request_id: int, store: Any, bits: int, from_block: int = 0) -> list[int]:
    """The settled output vector of a request: a Revealed output CID whose payload hashes to the settled hash."""
    _, settled, _ = settled_output(w3, market, request_id)
    m = contract(w3, "IInferenceMarket", market)
    logs = m.events.Revealed().get_logs(from_block=from_block, argument_filters={"requestId": request_id})
    tried = []
    for ev in logs:
        if from_bytes32(bytes(ev["args"]["outputHash"])) != settled or not ev["args"]["outputCid"]:
            continue
        cid = ev["args"]["outputCid"]
        tried.append(cid)
        try:  # a revealer may publish nothing or garbage under its CID: try the next one
            data = decode_tensor(store.cat(cid, max_bytes=MAX_INPUT_BYTES)).data
            if hash_vector(data, bits) == settled:
                return [int(x) for x in data]
        except (StorageError, InvalidInputError, ValueError):
            continue
    raise ChainError(f"request {request_id}: no revealed output payload hashes to the settled output (tried {tried})")


def deliver(w3: Web3, sender: LocalAccount | TxSender, consumer: str, request_id: int, vector: Sequence[int]) -> Any:
    """Open the output vector to a VerinferConsumer (it checks the hash on-chain and runs its `_fulfill`)."""
    c = contract(w3, "VerinferConsumer", consumer)
    return _sender(w3, sender).send(c.functions.deliver(request_id, [int(x) for x in vector]), contract="VerinferConsumer")


def _bytes32(v: bytes | str) -> bytes:
    b = bytes.fromhex(v[2:] if v.startswith("0x") else v) if isinstance(v, str) else bytes(v)
    if len(b) != 32:
        raise ConfigError(f"model id must be 32 bytes, got {len(b)}")
    return b


def _params_tuple(p: Any) -> tuple[int, int, int, int, int]:
    if isinstance(p, (tuple, list)):
        return tuple(int(x) for x in p)  # type: ignore[return-value]
    return (int(p.replicas), int(p.quorum), int(p.commit_blocks), int(p.reveal_blocks), int(p.callback_gas_limit))


def _struct_components(c: Any, fn: str) -> list[dict[str, Any]]:
    for item in c.abi:
        if item.get("type") == "function" and item.get("name") == fn:
            return item["outputs"][0]["components"]
    raise ConfigError(f"ABI has no {fn}")


def deliver_settled(w3: Web3, sender: LocalAccount | TxSender, consumer: str, request_id: int, store: Any,
                    from_block: int = 0) -> Any:
    """What a keeper does for a consumer: read the settled outcome and deliver it (the output vector if Accepted)."""
    c = contract(w3, "VerinferConsumer", consumer)
    market = c.functions.market().call()
    _, _, _, _, _, output_bits, _ = c.functions.pending(request_id).call()
    status, _, _ = settled_output(w3, market, request_id)
    vector: list[int] = []
    if status == ACCEPTED:
        vector = output_vector(w3, market, request_id, store, output_bits, from_block=from_block)
    return deliver(w3, sender, consumer, request_id, vector)
