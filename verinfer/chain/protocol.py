"""Typed Python faces of the protocol contracts: one snake_case method per contract function.

Writes go through the shared TxSender of the bound account (local nonces, decoded reverts) and
return the receipt (plus the new id where the contract returns one); reads return frozen
dataclasses so callers never index into ABI tuples. Pure helpers reproduce on-chain hashes
(`commitment_hash`, `request_binding`) bit for bit (docs/architecture.md §1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from secrets import token_bytes as secrets_token
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, TypeVar

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from verinfer.chain import artifacts, draw
from verinfer.chain.errors import (
    ChainError,
    RequestPrunedError,
    RpcError,
    decode_revert,
    normalize,
    revert_data_from_exception,
)
from verinfer.chain.events import CursorStore, DecodedEvent, EventCursor, get_events
from verinfer.chain.manifest import Manifest
from verinfer.chain.tx import TRANSPORT_ERRORS, TxSender, name_contract, rpc_url_of, sender_for
from verinfer.chain.types import FINAL_STATUSES, ConsumerResult, ModelInfo
from verinfer.chain.types import RequestStatus as Status
from verinfer.constants import (  # noqa: F401  (re-exported: the chain layer's public names)
    FIELD,
    INVALID_INPUT,
    PROOF_NONE,
    PROOF_PRIVATE_WEIGHTS,
    PROOF_PUBLIC_WEIGHTS,
    commitment_hash,
    request_binding,
    to_bytes32,
)
from verinfer.errors import ConfigError

if TYPE_CHECKING:
    from verinfer.chain.court import StageCourt

# ------------------------------------------------------------------ wire constants (architecture §1)

#: Shard layer end meaning "to the last layer"; [0, FULL_MODEL_END) is the whole model.
FULL_MODEL_END = 0xFFFF
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

TEE_NONE, TEE_SGX, TEE_TDX, TEE_SEV_SNP, TEE_MOCK = 0, 1, 2, 3, 255
VERIFIED_NONE, VERIFIED_OFFCHAIN_DCAP, VERIFIED_ONCHAIN, VERIFIED_MOCK_PKI = 0, 1, 2, 255


def model_id_for(publisher: str, name: str, version: int) -> bytes:
    """keccak256(abi.encode(address publisher, string name, uint32 version)) — ModelRegistry's id."""
    return keccak(abi_encode(["address", "string", "uint32"], [Web3.to_checksum_address(publisher), name, version]))


# ------------------------------------------------------------------ value types

@dataclass(frozen=True)
class ModelShard:
    """A served layer range [layer_start, layer_end) of a model."""

    model_id: bytes
    layer_start: int = 0
    layer_end: int = FULL_MODEL_END

    def to_abi(self) -> tuple[bytes, int, int]:
        return (to_bytes32(self.model_id), self.layer_start, self.layer_end)


@dataclass(frozen=True)
class RequestParams:
    """Per-request replicas, quorum and windows (blocks).

    `queue_blocks`: blocks after the draw block during which a draw short of seats reverts NoSeatsYet and the
    request waits for its committee's seats, instead of expiring (0 = no queue; <= 255, also
    capped by the snapshot epoch and the blockhash horizon; a uint8 on-chain). The commit and reveal windows count
    from the draw."""

    replicas: int = 3
    quorum: int = 2
    commit_blocks: int = 10  # protocol minimum on the devnet (minCommitBlocks)
    reveal_blocks: int = 10
    callback_gas_limit: int = 0
    queue_blocks: int = 0

    def to_abi(self) -> tuple[int, int, int, int, int, int]:
        return (self.replicas, self.quorum, self.commit_blocks, self.reveal_blocks, self.callback_gas_limit,
                self.queue_blocks)


@dataclass(frozen=True)
class Attestation:
    """A node's TEE attestation record (input to submit_attestation)."""

    tee_type: int
    measurement: bytes
    quote_hash: bytes
    report_data_address: str
    expires_at: int
    verified_by: int
    quote_cid: str = ""

    def to_abi(self) -> tuple[Any, ...]:
        return (
            self.tee_type,
            to_bytes32(self.measurement),
            to_bytes32(self.quote_hash),
            Web3.to_checksum_address(self.report_data_address),
            self.expires_at,
            self.verified_by,
            self.quote_cid,
        )


@dataclass(frozen=True)
class AttestationView(Attestation):
    """Attestation as stored on-chain (tee_type 0 = none)."""


@dataclass(frozen=True)
class ModelInput:
    """Publisher-supplied model fields (input to register_model)."""

    name: str
    weights_cid: str
    commitment: int
    verifier: str = ZERO_ADDRESS
    proof_mode: int = PROOF_NONE
    execution_profile_hash: bytes = b"\x00" * 32
    shard_layout_hash: bytes = b"\x00" * 32
    num_layers: int = 1
    input_bits: int = 8
    output_bits: int = 32
    requires_tee: bool = False

    def to_abi(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.weights_cid,
            self.commitment,
            Web3.to_checksum_address(self.verifier),
            self.proof_mode,
            to_bytes32(self.execution_profile_hash),
            to_bytes32(self.shard_layout_hash),
            self.num_layers,
            self.input_bits,
            self.output_bits,
            self.requires_tee,
        )


@dataclass(frozen=True)
class NodeView:
    """NodeRegistry.Node (V2: capacity, in-flight seats, unbonding availability)."""

    operator: str
    endpoint: str
    stake: int
    unbonding_since: int
    registered: bool
    capacity: int = 0
    in_flight: int = 0
    available_at: int = 0


@dataclass(frozen=True)
class ModelCore:
    """ModelRegistry.ModelCore: the fields the market reads on every request (all zero if absent)."""

    verifier: str
    proof_mode: int
    num_layers: int
    requires_tee: bool
    deprecated: bool
    exists: bool


@dataclass(frozen=True)
class RequestView:
    """InferenceMarket.Request (V2). CIDs are not stored on-chain: see `InferenceRequestedEvent`/`RevealedEvent`."""

    request_id: int
    requester: str
    model_id: bytes
    input_hash: bytes
    fee: int
    callback_deposit: int
    params: RequestParams
    created_block: int
    draw_block: int
    queue_deadline: int  # last block a draw short of seats reverts NoSeatsYet (the request waits) instead of expiring
    draw_deadline: int
    drawn_block: int  # 0 while Pending/Expired; commit/reveal deadlines count from it
    commit_deadline: int  # while Pending: the latest it can be (draw at draw_deadline)
    reveal_deadline: int
    finalize_after: int
    status: Status
    output_hash: bytes
    proven: bool
    callback_failed: bool
    proof_mode: int
    slash_amount: int
    proof_blocks: int
    commit_count: int
    reveal_count: int
    committee_size: int

    @property
    def replicas(self) -> int:
        return self.params.replicas

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class RevealView:
    committed: bool
    revealed: bool
    output_hash: bytes


@dataclass(frozen=True)
class MemberSettlement:
    slashed: bool
    paid: bool


# ------------------------------------------------------------------ typed event decoders

@dataclass(frozen=True)
class InferenceRequestedEvent:
    """InferenceRequested: the only place the input CID lives."""

    request_id: int
    requester: str
    model_id: bytes
    input_cid: str
    input_hash: bytes
    fee: int
    replicas: int
    quorum: int
    draw_block: int
    commit_deadline: int  # upper bound: draw_block + queueBlocks + 2 * commitBlocks; CommitteeDrawn carries the real one
    reveal_deadline: int  # the upper bound + revealBlocks
    block_number: int
    tx_hash: str


@dataclass(frozen=True)
class RevealedEvent:
    """Revealed: the only place an output CID lives."""

    request_id: int
    node: str
    output_hash: bytes
    output_cid: str
    block_number: int
    tx_hash: str


@dataclass(frozen=True)
class FinalizedEvent:
    request_id: int
    status: Status
    output_hash: bytes
    paid_count: int
    block_number: int
    tx_hash: str


def decode_event(ev: DecodedEvent) -> Any:
    """A typed dataclass for InferenceRequested / Revealed / Finalized / CommitteeDrawn (others: the DecodedEvent)."""
    a = {_snake(k): v for k, v in ev.args.items()}
    where = {"block_number": ev.block_number, "tx_hash": ev.tx_hash}
    if ev.name == "InferenceRequested":
        return _view(InferenceRequestedEvent, a, **where, model_id=bytes(a["model_id"]), input_hash=bytes(a["input_hash"]))
    if ev.name == "Revealed":
        return _view(RevealedEvent, a, **where, output_hash=bytes(a["output_hash"]))
    if ev.name == "Finalized":
        return _view(FinalizedEvent, a, **where, status=Status(int(a["status"])), output_hash=bytes(a["output_hash"]))
    if ev.name == "CommitteeDrawn":
        return CommitteeDrawnEvent(int(a["request_id"]), [Web3.to_checksum_address(x) for x in a["committee"]],
                                   int(a["commit_deadline"]), int(a["reveal_deadline"]), int(a["finalize_after"]),
                                   ev.block_number, ev.tx_hash)
    return ev


@dataclass(frozen=True)
class CommitteeDrawnEvent:
    """CommitteeDrawn: the committee and its windows, which count from the draw (block_number)."""

    request_id: int
    committee: list[str]
    commit_deadline: int
    reveal_deadline: int
    finalize_after: int
    block_number: int
    tx_hash: str


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
T = TypeVar("T")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _view(cls: type[T], data: dict[str, Any], **extra: Any) -> T:
    """Build a view dataclass from a decoded struct dict (camelCase keys)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    kw = {_snake(k): v for k, v in data.items() if _snake(k) in names}
    kw.update(extra)
    return cls(**kw)


# ------------------------------------------------------------------ wrappers

class _ContractWrapper:
    """Common plumbing: bound contract, sender, struct decoding, events."""

    NAME: ClassVar[str]

    def __init__(self, w3: Web3, address: str, sender: TxSender | None, deploy_block: int = 0) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.sender = sender
        self.deploy_block = deploy_block
        self.abi = artifacts.load(self.NAME).abi
        self.contract: Contract = w3.eth.contract(address=self.address, abi=self.abi)
        name_contract(self.address, self.NAME)
        self._outputs = {e["name"]: e["outputs"] for e in self.abi if e.get("type") == "function"}

    def _send(self, fn: Any, value: int = 0, gas: int | None = None) -> TxReceipt:
        if self.sender is None:
            raise ConfigError(f"{self.NAME}.{fn.fn_name}: no account bound (pass account= to Protocol)")
        return self.sender.send(fn, value=value, gas=gas, contract=self.NAME)

    def _call(self, fn: Any, block: int | str = "latest") -> Any:
        try:
            return fn.call(block_identifier=block)
        except ContractLogicError as exc:
            data, msg = revert_data_from_exception(exc)
            raise decode_revert(data, self.NAME, function=fn.fn_name, message=msg) from None
        except TRANSPORT_ERRORS:
            raise RpcError(f"cannot reach RPC at {rpc_url_of(self.w3)}") from None

    def _struct(self, fn_name: str, value: Any) -> Any:
        """A decoded output: a dict for one struct/tuple, a list of them for an array output."""
        out = self._outputs[fn_name]
        if len(out) == 1:
            return normalize(value, out[0], hex_bytes=False)
        return {o["name"]: normalize(v, o, hex_bytes=False) for o, v in zip(out, value, strict=True)}

    def _event_from(self, receipt: TxReceipt, event: str) -> dict[str, Any]:
        logs = self.contract.events[event]().process_receipt(receipt, errors=DISCARD)
        if not logs:
            raise ChainError(f"{self.NAME}: transaction {Web3.to_hex(receipt['transactionHash'])} emitted no {event}")
        return dict(logs[0]["args"])

    def events(self, name: str | list[str], from_block: int | None = None, to_block: int | str = "latest") -> list[DecodedEvent]:
        """Decoded `name` events of this contract (default from the deployment block)."""
        names = [name] if isinstance(name, str) else list(name)
        start = self.deploy_block if from_block is None else from_block
        return get_events(self.w3, self.contract, names, start, to_block)

    def cursor(self, event_names: list[str], store: CursorStore, start_block: int | None = None,
               confirmations: int = 0, key: str | None = None) -> EventCursor:
        """A resumable EventCursor over this contract's events."""
        start = self.deploy_block if start_block is None else start_block
        return EventCursor(self.w3, self.contract, event_names, start, store, confirmations, key=key)

    # Ownable2Step, shared by all protocol contracts
    def owner(self) -> str:
        return self._call(self.contract.functions.owner())

    def pending_owner(self) -> str:
        return self._call(self.contract.functions.pendingOwner())

    def transfer_ownership(self, new_owner: str) -> TxReceipt:
        return self._send(self.contract.functions.transferOwnership(Web3.to_checksum_address(new_owner)))

    def accept_ownership(self) -> TxReceipt:
        return self._send(self.contract.functions.acceptOwnership())

    def renounce_ownership(self) -> TxReceipt:
        return self._send(self.contract.functions.renounceOwnership())


class _Constants:
    """Adds one getter per UPPER_CASE constant of the contract's ABI (MAX_SHARDS → max_shards())."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        for entry in artifacts.load(cls.NAME).abi:  # type: ignore[attr-defined]
            name = entry.get("name", "")
            if entry.get("type") == "function" and name.isupper() and not entry.get("inputs"):
                if not hasattr(cls, name.lower()):
                    setattr(cls, name.lower(), _constant_getter(name))


def _constant_getter(name: str) -> Any:
    def getter(self: _ContractWrapper) -> Any:
        return self._call(getattr(self.contract.functions, name)())

    getter.__name__ = name.lower()
    getter.__doc__ = f"The contract constant {name}."
    return getter


def _cs(address: str) -> str:
    return Web3.to_checksum_address(address)


class NodeRegistry(_ContractWrapper, _Constants):
    """Stake, endpoint, shards, capacity, unbonding, slashing and the per-model sortition trees."""

    NAME = "NodeRegistry"

    # operators
    def register(self, endpoint: str, shards: Sequence[ModelShard], stake: int) -> TxReceipt:
        return self._send(self.contract.functions.register(endpoint, [s.to_abi() for s in shards]), value=stake)

    def top_up(self, amount: int) -> TxReceipt:
        return self._send(self.contract.functions.topUp(), value=amount)

    def set_endpoint(self, endpoint: str) -> TxReceipt:
        return self._send(self.contract.functions.setEndpoint(endpoint))

    def set_shards(self, shards: Sequence[ModelShard]) -> TxReceipt:
        return self._send(self.contract.functions.setShards([s.to_abi() for s in shards]))

    def set_capacity(self, capacity: int) -> TxReceipt:
        """In-flight committee seats this node accepts (1..MAX_CAPACITY); the draw skips a node at capacity."""
        return self._send(self.contract.functions.setCapacity(capacity))

    def request_unbond(self) -> TxReceipt:
        return self._send(self.contract.functions.requestUnbond())

    def withdraw_stake(self) -> TxReceipt:
        return self._send(self.contract.functions.withdrawStake())

    # owner (the timelock: use Protocol.govern)
    def set_min_stake(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setMinStake(value))

    def set_unbonding_delay(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setUnbondingDelay(value))

    def set_market(self, market: str) -> TxReceipt:
        return self._send(self.contract.functions.setMarket(_cs(market)))

    def set_court(self, court: str) -> TxReceipt:
        return self._send(self.contract.functions.setCourt(_cs(court)))

    # market only (revert NotMarket otherwise); exposed for completeness and tests
    def draw_and_assign(self, model_id: bytes | str, seed: int, epoch: int, replicas: int, requires_tee: bool,
                        until_block: int, wait_for_seats: bool = False) -> TxReceipt:
        return self._send(self.contract.functions.drawAndAssign(to_bytes32(model_id), seed, epoch, replicas, requires_tee,
                                                                until_block, wait_for_seats))

    def release(self, nodes: Sequence[str]) -> TxReceipt:
        return self._send(self.contract.functions.release([_cs(n) for n in nodes]))

    def unlock(self, nodes: Sequence[str], seat_mask: int) -> TxReceipt:
        return self._send(self.contract.functions.unlock([_cs(n) for n in nodes], seat_mask))

    def slash(self, node: str, amount: int, request_id: int, reward_bps: int = 0) -> TxReceipt:
        return self._send(self.contract.functions.slash(_cs(node), amount, request_id, reward_bps))

    # court only (revert NotCourt otherwise): the stake hold of an open StageCourt dispute
    def hold_for_dispute(self, node: str) -> TxReceipt:
        return self._send(self.contract.functions.holdForDispute(_cs(node)))

    def release_dispute(self, node: str) -> TxReceipt:
        return self._send(self.contract.functions.releaseDispute(_cs(node)))

    # views
    def get_node(self, node: str) -> NodeView:
        raw = self._call(self.contract.functions.getNode(_cs(node)))
        return _view(NodeView, self._struct("getNode", raw))

    def get_shards(self, node: str) -> list[ModelShard]:
        raw = self._call(self.contract.functions.getShards(_cs(node)))
        return [_view(ModelShard, s) for s in self._struct("getShards", raw)]

    def draw_committee(self, model_id: bytes | str, seed: int, epoch: int, replicas: int, requires_tee: bool = False,
                       block: int | str = "latest", wait_for_seats: bool = False) -> list[str]:
        """The draw as the contract computes it at `block` (an auditor replays it at the block before CommitteeDrawn).
        wait_for_seats: the rule of queued requests (queueBlocks > 0): a busy seed member ends the draw short."""
        fn = self.contract.functions.drawCommittee(to_bytes32(model_id), seed, epoch, replicas, requires_tee,
                                                   wait_for_seats)
        return list(self._call(fn, block))

    def nodes_for_model(self, model_id: bytes | str) -> list[str]:
        """Explorers only: every registered node declaring any shard of the model (never used by the draw)."""
        return list(self._call(self.contract.functions.nodesForModel(to_bytes32(model_id))))

    def node_count_for_model(self, model_id: bytes | str) -> int:
        return self._call(self.contract.functions.nodeCountForModel(to_bytes32(model_id)))

    def node_for_model_at(self, model_id: bytes | str, index: int) -> str:
        return self._call(self.contract.functions.nodeForModelAt(to_bytes32(model_id), index))

    def is_eligible(self, node: str, model_id: bytes | str) -> bool:
        """Weight > 0 in the model's tree now (capacity and TEE are checked at draw time)."""
        return self._call(self.contract.functions.isEligible(_cs(node), to_bytes32(model_id)))

    def eligible_stake(self, model_id: bytes | str) -> int:
        return self._call(self.contract.functions.eligibleStake(to_bytes32(model_id)))

    def weight_at_epoch(self, model_id: bytes | str, node: str, epoch: int) -> int:
        return self._call(self.contract.functions.weightAtEpoch(to_bytes32(model_id), _cs(node), epoch))

    def total_at_epoch(self, model_id: bytes | str, epoch: int) -> int:
        return self._call(self.contract.functions.totalAtEpoch(to_bytes32(model_id), epoch))

    def stake_of(self, node: str) -> int:
        return self._call(self.contract.functions.stakeOf(_cs(node)))

    def assigned_until(self, node: str) -> int:
        """Latest block until which `node` holds a committee seat (0 = none)."""
        return self._call(self.contract.functions.assignedUntil(_cs(node)))

    def open_assignments(self, node: str) -> int:
        """Unsettled requests `node` was drawn for; withdraw_stake needs 0 (a reveal frees the seat, not this)."""
        return self._call(self.contract.functions.openAssignments(_cs(node)))

    def withdrawable_at(self, node: str) -> int:
        """First block at which withdraw_stake may succeed (0 if not unbonding)."""
        return self._call(self.contract.functions.withdrawableAt(_cs(node)))

    def total_staked(self) -> int:
        return self._call(self.contract.functions.totalStaked())

    def total_burned(self) -> int:
        return self._call(self.contract.functions.totalBurned())

    def min_stake(self) -> int:
        return self._call(self.contract.functions.minStake())

    def unbonding_delay(self) -> int:
        return self._call(self.contract.functions.unbondingDelay())

    def epoch_length(self, block: int | str = "latest") -> int:
        return self._call(self.contract.functions.epochLength(), block)

    def current_epoch(self) -> int:
        return self._call(self.contract.functions.currentEpoch())

    def market(self) -> str:
        return self._call(self.contract.functions.market())

    def court(self) -> str:
        """The StageCourt, the only slasher besides the market (zero address until setCourt)."""
        return self._call(self.contract.functions.court())

    def has_shard(self, node: str, model_id: bytes | str, layer_start: int, layer_end: int) -> bool:
        """`node` declares exactly the shard [layer_start, layer_end) of the model now (the court's admission check)."""
        return self._call(self.contract.functions.hasShard(_cs(node), to_bytes32(model_id), layer_start, layer_end))

    def model_registry(self) -> str:
        return self._call(self.contract.functions.modelRegistry())

    def attestation_registry(self) -> str:
        return self._call(self.contract.functions.attestationRegistry())


class ModelRegistry(_ContractWrapper, _Constants):
    """Model id → weights CID, commitment, verifier + proof mode (fixed at registration), profile, shard layout."""

    NAME = "ModelRegistry"

    def register_model(self, model: ModelInput) -> tuple[TxReceipt, bytes]:
        """Register a new version of (sender, model.name); returns (receipt, model_id).

        V2: the verifier and proof mode are fixed here: deploy the verifier first (mode 0 ⇒ no verifier)."""
        receipt = self._send(self.contract.functions.registerModel(model.to_abi()))
        return receipt, bytes(self._event_from(receipt, "ModelRegistered")["modelId"])

    def set_artifacts(self, model_id: bytes | str, cid: str) -> TxReceipt:
        """Publish the CID of the model's prover bundle (publisher only, once; see verinfer.prover.bundle)."""
        return self._send(self.contract.functions.setArtifacts(to_bytes32(model_id), cid))

    def artifacts_cid(self, model_id: bytes | str) -> str:
        """The prover bundle's CID, or "" when the publisher has not published one."""
        return self._call(self.contract.functions.artifactsCid(to_bytes32(model_id)))

    def deprecate(self, model_id: bytes | str) -> TxReceipt:
        return self._send(self.contract.functions.deprecate(to_bytes32(model_id)))

    def get_model(self, model_id: bytes | str) -> ModelInfo:
        """The registry record as the chain layer's one `ModelInfo` (spec None: nothing fetched here)."""
        mid = to_bytes32(model_id)
        raw = self._call(self.contract.functions.getModel(mid))
        return _view(ModelInfo, self._struct("getModel", raw), model_id=mid)

    def get_model_core(self, model_id: bytes | str, block: int | str = "latest") -> ModelCore:
        raw = self._call(self.contract.functions.getModelCore(to_bytes32(model_id)), block)
        return _view(ModelCore, self._struct("getModelCore", raw))

    def exists(self, model_id: bytes | str) -> bool:
        return self._call(self.contract.functions.exists(to_bytes32(model_id)))

    def latest_version(self, publisher: str, name: str) -> int:
        return self._call(self.contract.functions.latestVersion(_cs(publisher), name))

    def model_count(self) -> int:
        return self._call(self.contract.functions.modelCount())

    def model_id_at(self, index: int) -> bytes:
        return bytes(self._call(self.contract.functions.modelIdAt(index)))


class InferenceMarket(_ContractWrapper, _Constants):
    """Requests, lazy committee draw, commit-reveal, proof window, settlement, pull payments."""

    NAME = "InferenceMarket"

    #: Gas for submitProof: pairing check (~250k) plus storage, events and slashing contradicting revealers.
    PROOF_TX_GAS = 700_000
    #: Gas limit of a reveal: ~60k for the reveal, and a settling last reveal needs AUTO_SETTLE_GAS_BASE +
    #: AUTO_SETTLE_GAS_PER_MEMBER * committee size (285k at 7) left at its check; unused gas is not charged.
    REVEAL_TX_GAS = 400_000
    #: InferenceMarket's BATCH_GAS_BASE / BATCH_GAS_PER_PROOF (internal constants there): gas a batch needs left.
    BATCH_GAS_BASE = 150_000
    BATCH_GAS_PER_PROOF = 300_000

    def __init__(self, w3: Web3, address: str, sender: TxSender | None, deploy_block: int = 0) -> None:
        super().__init__(w3, address, sender, deploy_block)
        self._regs: tuple[NodeRegistry, ModelRegistry] | None = None
        self._draw_memo = draw.DrawMemo()
        self._records: int | None = None

    def request_inference(
        self, model_id: bytes | str, input_cid: str, input_hash: bytes | str | int, params: RequestParams,
        fee: int, *, callback_deposit: int | None = None, gas: int | None = None,
    ) -> tuple[TxReceipt, int]:
        """Escrow `fee` (+ the callback deposit, quoted when None); returns (receipt, request_id).

        V2: no draw here, so web3's own gas estimate holds at inclusion (issue 7 attack 12)."""
        if callback_deposit is None:
            callback_deposit = self.quote(model_id, params)[1] if params.callback_gas_limit else 0
        fn = self.contract.functions.requestInference(to_bytes32(model_id), input_cid, to_bytes32(input_hash), params.to_abi())
        receipt = self._send(fn, value=fee + callback_deposit, gas=gas)
        return receipt, int(self._event_from(receipt, "InferenceRequested")["requestId"])

    def draw(self, request_id: int) -> TxReceipt:
        return self._send(self.contract.functions.draw(request_id))

    def commit(self, request_id: int, commitment: bytes | str) -> TxReceipt:
        return self._send(self.contract.functions.commit(request_id, to_bytes32(commitment)))

    def reveal(self, request_id: int, output_hash: bytes | str | int, salt: bytes | str | int, output_cid: str) -> TxReceipt:
        """Explicit gas: the last reveal of a unanimous request without proof window or callback settles it when
        it has enough gas, and an estimate made before the other reveals landed would not include that."""
        fn = self.contract.functions.reveal(request_id, to_bytes32(output_hash), to_bytes32(salt), output_cid)
        return self._send(fn, gas=self.REVEAL_TX_GAS)

    def finalize(self, request_id: int, gas: int | None = None) -> TxReceipt:
        """`gas`: explicit limit (a client adds the callback's gas; estimation may undershoot it)."""
        return self._send(self.contract.functions.finalize(request_id), gas=gas)

    def redeliver(self, request_id: int) -> TxReceipt:
        return self._send(self.contract.functions.redeliver(request_id))

    def submit_proof(
        self, request_id: int, output_hash: bytes | str | int, proof: Sequence[int], gas: int | None = None
    ) -> TxReceipt:
        """Explicit gas (eth_estimateGas under-reports verifier calls, so estimation is never used here)."""
        if len(proof) != 8:
            raise ValueError(f"a Groth16 proof is 8 uint256 words, got {len(proof)}")
        fn = self.contract.functions.submitProof(request_id, to_bytes32(output_hash), [int(x) for x in proof])
        return self._send(fn, gas=gas or self.PROOF_TX_GAS)

    def submit_proof_batch(
        self, request_ids: Sequence[int], output_hashes: Sequence[bytes | str | int], proofs: Sequence[Sequence[int]],
        gas: int | None = None,
    ) -> TxReceipt:
        """Proofs of one model version in one transaction (its registered verifier must be a
        BatchGroth16Verifier). Atomic: a bad proof reverts InvalidProofAt(index, requestId) and none is
        accepted (resubmit the others). Explicit gas: the market requires BATCH_GAS_BASE + BATCH_GAS_PER_PROOF
        per proof at its start, so that a failing batch can be re-checked proof by proof to name the bad one."""
        n = len(request_ids)
        if n == 0 or len(output_hashes) != n or len(proofs) != n:
            raise ValueError(f"a batch needs as many output hashes and proofs as request ids, got "
                             f"{n}/{len(output_hashes)}/{len(proofs)}")
        if any(len(p) != 8 for p in proofs):
            raise ValueError("a Groth16 proof is 8 uint256 words")
        fn = self.contract.functions.submitProofBatch(
            [int(r) for r in request_ids], [to_bytes32(h) for h in output_hashes], [[int(x) for x in p] for p in proofs])
        return self._send(fn, gas=gas or self.BATCH_GAS_BASE + self.BATCH_GAS_PER_PROOF * n + 100_000)

    def withdraw(self) -> TxReceipt:
        return self._send(self.contract.functions.withdraw())

    def withdraw_to(self, to: str) -> TxReceipt:
        return self._send(self.contract.functions.withdrawTo(_cs(to)))

    # owner (the timelock: use Protocol.govern)
    def set_min_fee(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setMinFee(value))

    def set_slash_amount(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setSlashAmount(value))

    def set_min_commit_blocks(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setMinCommitBlocks(value))

    def set_min_reveal_blocks(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setMinRevealBlocks(value))

    def set_proof_blocks(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setProofBlocks(value))

    def set_callback_gas_price(self, value: int) -> TxReceipt:
        return self._send(self.contract.functions.setCallbackGasPrice(value))

    # views
    def get_request(self, request_id: int, block: int | str = "latest") -> RequestView:
        d = self._struct("getRequest", self._call(self.contract.functions.getRequest(request_id), block))
        params = _view(RequestParams, d.pop("params"))
        return _view(RequestView, d, request_id=request_id, params=params, status=Status(d["status"]),
                     model_id=bytes(d["modelId"]), input_hash=bytes(d["inputHash"]), output_hash=bytes(d["outputHash"]))

    def status_of(self, request_id: int, block: int | str = "latest") -> Status:
        """Status.NONE for an unknown, skipped or future id; RequestPrunedError once the record holds a later request."""
        return Status(self._call(self.contract.functions.statusOf(request_id), block))

    def preview_committee(self, request_id: int, block: int | None = None) -> list[str]:
        """The stored committee if drawn, else the one a draw would produce at `block` (default: the head;
        DrawNotReady before drawBlock + 1): `verinfer.chain.draw.preview_committee`, every read at one block."""
        nodes, models = self._registries()
        return draw.preview_committee(self, nodes, models, request_id, block, self._draw_memo)

    def _registries(self) -> tuple[NodeRegistry, ModelRegistry]:
        """The market's NodeRegistry and ModelRegistry (immutables: read once)."""
        if self._regs is None:
            self._regs = (NodeRegistry(self.w3, self.node_registry(), self.sender, self.deploy_block),
                          ModelRegistry(self.w3, self.model_registry(), self.sender, self.deploy_block))
        return self._regs

    def get_committee(self, request_id: int, block: int | str = "latest") -> list[str]:
        return [_cs(a) for a in self._call(self.contract.functions.getCommittee(request_id), block)]

    def get_reveal(self, request_id: int, node: str, block: int | str = "latest") -> RevealView:
        raw = self._call(self.contract.functions.getReveal(request_id, _cs(node)), block)
        return _view(RevealView, self._struct("getReveal", raw))

    def get_member_settlement(self, request_id: int, node: str, block: int | str = "latest") -> MemberSettlement:
        raw = self._call(self.contract.functions.getMemberSettlement(request_id, _cs(node)), block)
        return _view(MemberSettlement, self._struct("getMemberSettlement", raw))

    def request_count(self, block: int | str = "latest") -> int:
        return self._call(self.contract.functions.requestCount(), block)

    def request_records(self) -> int:
        """Request records (an immutable): request id lives in record id % requestRecords, and the views serve the
        request a record holds; older ids revert RequestPruned (their events stay). Ids are not dense: see
        `missing_request`."""
        if self._records is None:
            self._records = int(self._call(self.contract.functions.requestRecords()))
        return self._records

    def request_events(self, request_id: int, names: Sequence[str], from_block: int | None = None,
                       to_block: int | str = "latest") -> list[DecodedEvent]:
        """Events of one request (filtered by the indexed requestId, the first topic of every per-request event)."""
        start = self.deploy_block if from_block is None else from_block
        return get_events(self.w3, self.contract, list(names), start, to_block, indexed=[request_id])

    def missing_request(self, request_id: int) -> str | None:
        """Why no request has id `request_id`, in one line; None when it was made. Ids are 1..requestCount with gaps:
        requestInference skips an id whose record an unsettled request still holds, and a skipped id never exists
        (no InferenceRequested event; its views say None / RequestNotFound, or RequestPruned once its record is
        recycled). The event is read only for ids in range."""
        count = self.request_count()
        if not 1 <= request_id <= count:
            return (f"request {request_id} does not exist (the latest request is {count})" if count
                    else f"request {request_id} does not exist (no requests yet)")
        if self.request_events(request_id, ["InferenceRequested"]):
            return None
        return (f"request {request_id} does not exist: the market skipped id {request_id} (its request record was "
                f"held by an unsettled request), so no request ever had it")

    def record_holder(self, request_id: int) -> int:
        """The request that holds `request_id`'s record now: the latest made id of that record (id % requestRecords)
        that is <= `request_id` (0 if none). Walks back one record-length at a time over skipped ids (statusOf None),
        so the holders of the records RecordBusy's tries covered can be found from its pendingRequestId."""
        records = self.request_records()
        rid = request_id
        while rid >= 1:
            try:
                if self.status_of(rid) != Status.NONE:
                    return rid
            except RequestPrunedError as exc:  # a later request holds it (recycled since): that one
                return exc.recycled_by
            rid -= records
        return 0

    def history_block(self, request_id: int, recycled_by: int | None = None) -> int:
        """The last block whose state still holds `request_id`'s record: its Finalized event's block, or the block
        before `recycled_by`'s InferenceRequested (the request that recycled the record; read from RequestPruned when
        not given) when that is earlier (both in one block: views there show the request before its settlement).
        A live request's answer is the head. Only for a request that was made (`missing_request`)."""
        head = self.w3.eth.block_number
        if recycled_by is None:
            try:
                self.status_of(request_id)
                return head  # not recycled
            except RequestPrunedError as exc:
                recycled_by = exc.recycled_by
        recycled = self.request_events(recycled_by, ["InferenceRequested"])
        before = recycled[0].block_number - 1 if recycled else head
        fin = self.request_events(request_id, ["Finalized"], to_block=before + 1 if recycled else "latest")
        if fin and fin[0].block_number <= before:
            return fin[0].block_number
        return before

    def withdrawable(self, account: str) -> int:
        return self._call(self.contract.functions.withdrawable(_cs(account)))

    def total_escrowed(self) -> int:
        return self._call(self.contract.functions.totalEscrowed())

    def total_withdrawable(self) -> int:
        return self._call(self.contract.functions.totalWithdrawable())

    def request_binding(self, request_id: int, prover: str) -> int:
        """On-chain binding (the pure `request_binding` helper computes the same value offline)."""
        return self._call(self.contract.functions.requestBinding(request_id, _cs(prover)))

    def quote(self, model_id: bytes | str, params: RequestParams) -> tuple[int, int]:
        """(minimum fee, callback deposit) a request with `params` needs now."""
        fee, deposit = self._call(self.contract.functions.quote(to_bytes32(model_id), params.to_abi()))
        return int(fee), int(deposit)

    def parameters(self) -> tuple[int, int, int, int, int, int, int]:
        """(minFee, minCommitBlocks, minRevealBlocks, slashAmount, proofBlocks, callbackGasPrice, paramsVersion):
        one view, because the market sits at the EIP-170 size limit (docs/contracts.md)."""
        return tuple(int(v) for v in self._call(self.contract.functions.parameters()))  # type: ignore[return-value]

    def callback_gas_price(self) -> int:
        return self.parameters()[5]

    def min_fee(self) -> int:
        return self.parameters()[0]

    def slash_amount(self) -> int:
        return self.parameters()[3]

    def min_commit_blocks(self) -> int:
        return self.parameters()[1]

    def min_reveal_blocks(self) -> int:
        return self.parameters()[2]

    def proof_blocks(self) -> int:
        return self.parameters()[4]

    def params_version(self) -> int:
        """Index of the current governance parameter set (requests snapshot the set they were created under)."""
        return self.parameters()[6]

    def node_registry(self) -> str:
        return self._call(self.contract.functions.nodeRegistry())

    def model_registry(self) -> str:
        return self._call(self.contract.functions.modelRegistry())


class ExampleConsumer(_ContractWrapper, _Constants):
    """The example dApp: asks the market and stores results pushed back by callback."""

    NAME = "ExampleConsumer"

    def ask(
        self, model_id: bytes | str, input_cid: str, input_hash: bytes | str | int, params: RequestParams, value: int
    ) -> tuple[TxReceipt, int]:
        """Request through the consumer contract (value = fee + callback deposit); returns (receipt, request_id)."""
        fn = self.contract.functions.ask(to_bytes32(model_id), input_cid, to_bytes32(input_hash), params.to_abi())
        receipt = self._send(fn, value=value)
        return receipt, int(self._event_from(receipt, "Asked")["requestId"])

    def on_inference_result(self, request_id: int, status: int, output_hash: bytes | str | int) -> TxReceipt:
        """Market only (reverts NotMarket otherwise)."""
        return self._send(self.contract.functions.onInferenceResult(request_id, int(status), to_bytes32(output_hash)))

    def results(self, request_id: int) -> ConsumerResult:
        """What the market's callback stored for `request_id` (chain.types.ConsumerResult: hash as an int)."""
        d = self._struct("results", self._call(self.contract.functions.results(request_id)))
        return ConsumerResult(request_id, Status(int(d["status"])), int.from_bytes(bytes(d["outputHash"]), "big"),
                              bool(d["received"]))

    def withdraw_refunds(self) -> TxReceipt:
        return self._send(self.contract.functions.withdrawRefunds())

    def market(self) -> str:
        return self._call(self.contract.functions.market())


class TimelockController(_ContractWrapper):
    """OpenZeppelin TimelockController: the owner of the protocol contracts (schedule, wait minDelay, execute)."""

    NAME = "TimelockController"

    def get_min_delay(self) -> int:
        return self._call(self.contract.functions.getMinDelay())

    def hash_operation(self, target: str, value: int, data: bytes, predecessor: bytes, salt: bytes) -> bytes:
        return bytes(self._call(self.contract.functions.hashOperation(_cs(target), value, data, predecessor, salt)))

    def schedule(self, target: str, value: int, data: bytes, predecessor: bytes, salt: bytes, delay: int) -> TxReceipt:
        return self._send(self.contract.functions.schedule(_cs(target), value, data, predecessor, salt, delay))

    def execute(self, target: str, value: int, data: bytes, predecessor: bytes, salt: bytes) -> TxReceipt:
        return self._send(self.contract.functions.execute(_cs(target), value, data, predecessor, salt), value=value)

    def is_operation_ready(self, op_id: bytes) -> bool:
        return self._call(self.contract.functions.isOperationReady(op_id))

    def is_operation_done(self, op_id: bytes) -> bool:
        return self._call(self.contract.functions.isOperationDone(op_id))


class Protocol:
    """All protocol contracts of one deployment, bound to one (optional) signing account."""

    def __init__(self, w3: Web3, manifest: Manifest, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.manifest = manifest
        self.account = account
        self.sender: TxSender | None = sender_for(w3, account) if account is not None else None
        b = manifest.deploy_block
        self.nodes = NodeRegistry(w3, manifest.address("NodeRegistry"), self.sender, b)
        self.models = ModelRegistry(w3, manifest.address("ModelRegistry"), self.sender, b)
        self.market = InferenceMarket(w3, manifest.address("InferenceMarket"), self.sender, b)
        self.consumer = ExampleConsumer(w3, manifest.address("ExampleConsumer"), self.sender, b)
        self.court: StageCourt | None = None
        if "StageCourt" in manifest.addresses:
            from verinfer.chain.court import StageCourt  # court.py builds on this module's wrappers

            self.court = StageCourt(w3, manifest.address("StageCourt"), self.sender, b)
        self.timelock: TimelockController | None = None
        if "TimelockController" in manifest.addresses:
            self.timelock = TimelockController(w3, manifest.addresses["TimelockController"], self.sender, b)

    @property
    def address(self) -> str | None:
        """The bound account's address (None when read-only)."""
        return self.account.address if self.account is not None else None

    def as_account(self, account: LocalAccount | None) -> "Protocol":
        """The same deployment, signing as `account`."""
        return Protocol(self.w3, self.manifest, account)

    @classmethod
    def connect(
        cls, rpc_url: str, manifest_path: str | Path | None = None, account: LocalAccount | None = None
    ) -> "Protocol":
        """Connect to `rpc_url`, load the manifest (default path) and check it belongs to this chain."""
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        try:
            chain_id = w3.eth.chain_id
        except Exception:
            raise RpcError(f"cannot reach RPC at {rpc_url}") from None
        manifest = Manifest.load(manifest_path)
        if manifest.chain_id != chain_id:
            raise ConfigError(f"manifest is for chain {manifest.chain_id} but {rpc_url} is chain {chain_id}")
        if not w3.eth.get_code(Web3.to_checksum_address(manifest.address("InferenceMarket"))):
            raise ConfigError(f"no InferenceMarket code at {manifest.address('InferenceMarket')} on {rpc_url} (stale manifest?)")
        return cls(w3, manifest, account)

    def contracts(self) -> dict[str, _ContractWrapper]:
        out: dict[str, _ContractWrapper] = {"NodeRegistry": self.nodes, "ModelRegistry": self.models,
                                            "InferenceMarket": self.market, "ExampleConsumer": self.consumer}
        if self.court is not None:
            out["StageCourt"] = self.court
        return out

    def govern(self, contract: _ContractWrapper | str, fn_name: str, *args: Any, value: int = 0) -> TxReceipt:
        """Run an owner-only call through the timelock: schedule, then execute once minDelay has passed.

        On the devnet minDelay is 0 (documented in docs/chain.md), so this is two transactions in a row; on a
        network with a real delay `schedule` returns first and `execute` raises until the delay has passed.
        Without a timelock in the manifest the bound account calls the function directly (it must own it).
        """
        wrapper = self.contracts()[contract] if isinstance(contract, str) else contract
        fn = getattr(wrapper.contract.functions, fn_name)(*args)
        if self.timelock is None:
            if self.sender is None:
                raise ConfigError(f"{wrapper.NAME}.{fn_name}: no account bound (pass account= to Protocol)")
            return self.sender.send(fn, value=value, contract=wrapper.NAME)
        data = bytes.fromhex(fn._encode_transaction_data()[2:])
        predecessor = b"\x00" * 32
        salt = keccak(data + self.w3.eth.get_block("latest")["hash"] + secrets_token(8))
        delay = self.timelock.get_min_delay()
        self.timelock.schedule(wrapper.address, value, data, predecessor, salt, delay)
        if delay > 0:
            raise ChainError(f"scheduled {wrapper.NAME}.{fn_name} through the timelock; execute after {delay} s "
                             f"(salt {salt.hex()})")
        return self.timelock.execute(wrapper.address, value, data, predecessor, salt)

    def events(self, name: str, from_block: int | None = None, to_block: int | str = "latest") -> list[DecodedEvent]:
        """Decoded events by name across the protocol ("Finalized", or qualified "NodeRegistry.ParameterChanged")."""
        if "." in name:
            contract, _, ev = name.partition(".")
            return self.contracts()[contract].events(ev, from_block, to_block)
        owners = [w for w in self.contracts().values() if any(e.get("type") == "event" and e["name"] == name for e in w.abi)]
        if not owners:
            raise ConfigError(f"no protocol contract emits an event named {name}")
        out: list[DecodedEvent] = []
        for w in owners:
            out += w.events(name, from_block, to_block)
        return sorted(out, key=lambda e: e.position)

    def block_number(self) -> int:
        return self.w3.eth.block_number
