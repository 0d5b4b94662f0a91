"""StageCourt: signed stage receipts and the disputes that make a lying stage slashable (docs/contracts.md).

A stage node signs `receipt_digest(...)` (EIP-191 personal message over the 32-byte digest) for every answer.
Whoever holds a receipt they believe wrong calls `open_dispute`; the court turns it into an ordinary market
request (a staked jury re-executes the stage) and rules on the market's callback. `receipt_digest` reproduces
`StageCourt.receiptDigest` bit for bit (tests/test_chain_court.py checks it against an eth_call).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

import coincurve
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak as _keccak
from eth_utils import keccak
from web3 import Web3
from web3.types import TxReceipt

from verinfer.chain.events import DecodedEvent
from verinfer.chain.protocol import InferenceMarket, RequestParams, Status, _Constants, _ContractWrapper, _cs, _view
from verinfer.chain.tx import TxSender
from verinfer.constants import to_bytes32
from verinfer.errors import ConfigError

__all__ = [
    "RECEIPT_TYPEHASH", "recover_digest_signer", "sign_digest", "DisputeOpenedEvent", "DisputeResolvedEvent", "DisputeView", "StageCourt", "StageReceipt",
    "Verdict", "decode_court_event", "dispute_cost", "dispute_events", "get_dispute", "open_dispute",
    "receipt_digest", "recover_receipt_signer", "sign_receipt",
]

#: keccak256("verinfer.stage-receipt.v1"): the receipt's domain tag (StageCourt.RECEIPT_TYPEHASH).
RECEIPT_TYPEHASH = keccak(text="verinfer.stage-receipt.v1")


class Verdict(IntEnum):
    """StageCourt.State; DisputeResolved's verdict is its value."""

    NONE = 0
    OPEN = 1
    STAGE_WRONG = 2  # the jury settled another output: the stage was slashed
    STAGE_RIGHT = 3  # the jury settled the receipt's output: the bond went to the stage
    INPUT_INVALID = 4  # the jury found the input payload invalid: the bond went to the stage
    NO_DECISION = 5  # NoQuorum or Expired: bond (and jury refund) back to the challenger; disputable again


def receipt_digest(chain_id: int, registry_address: str, model_id: bytes | str, lo: int, hi: int,
                   input_hash: bytes | str | int, output_hash: bytes | str | int) -> bytes:
    """keccak256(abi.encode(RECEIPT_TYPEHASH, chainid, registry, modelId, lo, hi, inputHash, outputHash)).

    Binds the chain and the NodeRegistry so a receipt cannot be replayed on another deployment. Packed by hand (all
    eight values are static words) and hashed with eth_hash: it runs twice per decode hop (the stage signs, the head
    verifies), and eth_abi.encode + eth_utils.keccak cost ~120 us of the 0.5 ms hop budget (docs/lm.md)."""
    if not (0 <= lo < 1 << 16 and 0 <= hi < 1 << 16):
        raise ValueError(f"layer range {lo}:{hi} does not fit uint16")
    return _keccak(b"".join((RECEIPT_TYPEHASH, int(chain_id).to_bytes(32, "big"), _address_word(registry_address),
                             to_bytes32(model_id), lo.to_bytes(32, "big"), hi.to_bytes(32, "big"),
                             to_bytes32(input_hash), to_bytes32(output_hash))))


@lru_cache(maxsize=16)
def _address_word(address: str) -> bytes:
    """An address as its abi word (validated once per address: the registry's is the same on every hop)."""
    return bytes(12) + bytes.fromhex(_cs(address)[2:])


@dataclass(frozen=True)
class StageReceipt:
    """What a stage signs: it ran layers [lo, hi) of `model_id` on the input with `input_hash` and got `output_hash`."""

    model_id: bytes
    lo: int
    hi: int
    input_hash: bytes
    output_hash: bytes

    def digest(self, chain_id: int, registry_address: str) -> bytes:
        return receipt_digest(chain_id, registry_address, self.model_id, self.lo, self.hi, self.input_hash,
                              self.output_hash)


_PERSONAL = b"\x19Ethereum Signed Message:\n32"  # EIP-191 prefix for a 32-byte message
_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0  # secp256k1 n / 2: low-s only


def sign_digest(key: coincurve.PrivateKey, digest: bytes) -> bytes:
    """The 65-byte EIP-191 signature (r | s | v, v in 27/28) of a receipt digest, as StageCourt.dispute checks it.

    coincurve directly (~0.1 ms): stages sign every answered FORWARD."""
    sig = key.sign_recoverable(_keccak(_PERSONAL + digest), hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


def recover_digest_signer(digest: bytes, signature: bytes) -> str | None:
    """The lower-case address that signed `digest`; None for a malformed, high-s or bad-v signature (OpenZeppelin's
    ECDSA.recover in the court refuses those)."""
    sig = bytes(signature)
    if len(sig) != 65 or sig[64] not in (27, 28) or int.from_bytes(sig[32:64], "big") > _HALF_N:
        return None
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig[:64] + bytes([sig[64] - 27]),
                                                             _keccak(_PERSONAL + digest), hasher=None)
    except (ValueError, TypeError):
        return None
    return "0x" + _keccak(pub.format(compressed=False)[1:])[12:].hex()


def sign_receipt(account: LocalAccount, chain_id: int, registry_address: str, receipt: StageReceipt) -> bytes:
    """The stage's 65-byte EIP-191 signature of the receipt digest (what StageCourt.dispute checks)."""
    return sign_digest(coincurve.PrivateKey(bytes(account.key)), receipt.digest(chain_id, registry_address))


def recover_receipt_signer(chain_id: int, registry_address: str, receipt: StageReceipt, signature: bytes) -> str | None:
    """The address that signed `receipt` (checksummed; None if the court would refuse the signature)."""
    who = recover_digest_signer(receipt.digest(chain_id, registry_address), signature)
    return None if who is None else Web3.to_checksum_address(who)


@dataclass(frozen=True)
class DisputeView:
    """StageCourt.Dispute."""

    dispute_id: int
    stage: str
    lo: int
    hi: int
    state: Verdict
    challenger: str
    bond: int
    model_id: bytes
    input_hash: bytes
    claimed_output_hash: bytes
    request_id: int
    jury_cost: int

    @property
    def is_open(self) -> bool:
        return self.state == Verdict.OPEN


@dataclass(frozen=True)
class DisputeOpenedEvent:
    dispute_id: int
    request_id: int
    stage: str
    challenger: str
    model_id: bytes
    lo: int
    hi: int
    input_hash: bytes
    claimed_output_hash: bytes
    block_number: int
    tx_hash: str


@dataclass(frozen=True)
class DisputeResolvedEvent:
    dispute_id: int
    verdict: Verdict
    slashed: int
    block_number: int
    tx_hash: str


class StageCourt(_ContractWrapper, _Constants):
    """Typed face of StageCourt.sol (constants such as JURY_CALLBACK_GAS as snake_case getters)."""

    NAME = "StageCourt"

    def dispute(self, stage: str, receipt: StageReceipt, signature: bytes, input_cid: str,
                value: int | None = None) -> tuple[TxReceipt, int, int]:
        """Open a dispute (value: disputeCost(model) read now unless given); returns (receipt, dispute_id, request_id)."""
        cost = self.dispute_cost(receipt.model_id) if value is None else value
        fn = self.contract.functions.dispute(
            _cs(stage), to_bytes32(receipt.model_id), receipt.lo, receipt.hi, to_bytes32(receipt.input_hash),
            to_bytes32(receipt.output_hash), bytes(signature), input_cid)
        tx = self._send(fn, value=cost)
        ev = self._event_from(tx, "DisputeOpened")
        return tx, int(ev["disputeId"]), int(ev["requestId"])

    def resolve_expired(self, dispute_id: int) -> TxReceipt:
        """NoDecision for a dispute whose jury request expired undrawn; a Pending request past its draw deadline is
        expired first with the market's finalize (the court itself never calls the market after the dispute)."""
        request_id = self.get_dispute(dispute_id).request_id
        market = InferenceMarket(self.w3, self.market(), self.sender, self.deploy_block)
        if market.status_of(request_id) == Status.PENDING:
            market.finalize(request_id)
        return self._send(self.contract.functions.resolveExpired(dispute_id))

    def withdraw(self) -> TxReceipt:
        return self._send(self.contract.functions.withdraw())

    def set_min_bond(self, value: int) -> TxReceipt:
        """Owner (the timelock: use Protocol.govern)."""
        return self._send(self.contract.functions.setMinBond(value))

    # views
    def receipt_digest(self, receipt: StageReceipt) -> bytes:
        """The contract's digest (an eth_call): equal to the pure `receipt_digest` for this chain and registry."""
        return bytes(self._call(self.contract.functions.receiptDigest(
            to_bytes32(receipt.model_id), receipt.lo, receipt.hi, to_bytes32(receipt.input_hash),
            to_bytes32(receipt.output_hash))))

    def dispute_cost(self, model_id: bytes | str) -> int:
        """bond + jury fee + callback deposit: the exact value `dispute` needs now."""
        return int(self._call(self.contract.functions.disputeCost(to_bytes32(model_id))))

    def bond_for(self, model_id: bytes | str) -> int:
        return int(self._call(self.contract.functions.bondFor(to_bytes32(model_id))))

    def jury_params(self) -> RequestParams:
        d = self._struct("juryParams", self._call(self.contract.functions.juryParams()))
        return RequestParams(int(d["replicas"]), int(d["quorum"]), int(d["commitBlocks"]), int(d["revealBlocks"]),
                             int(d["callbackGasLimit"]), int(d["queueBlocks"]))

    def get_dispute(self, dispute_id: int) -> DisputeView:
        d = self._struct("getDispute", self._call(self.contract.functions.getDispute(dispute_id)))
        return _view(DisputeView, d, dispute_id=dispute_id, state=Verdict(int(d["state"])),
                     model_id=bytes(d["modelId"]), input_hash=bytes(d["inputHash"]),
                     claimed_output_hash=bytes(d["claimedOutputHash"]), stage=_cs(d["stage"]),
                     challenger=_cs(d["challenger"]))

    def dispute_of_request(self, request_id: int) -> int:
        """The dispute whose jury request is `request_id` (0: not a court request)."""
        return int(self._call(self.contract.functions.disputeOfRequest(request_id)))

    def dispute_of_receipt(self, digest: bytes) -> int:
        return int(self._call(self.contract.functions.disputeOfReceipt(to_bytes32(digest))))

    def dispute_count(self) -> int:
        return int(self._call(self.contract.functions.disputeCount()))

    def withdrawable(self, account: str) -> int:
        return int(self._call(self.contract.functions.withdrawable(_cs(account))))

    def total_withdrawable(self) -> int:
        return int(self._call(self.contract.functions.totalWithdrawable()))

    def open_bonds(self) -> int:
        return int(self._call(self.contract.functions.openBonds()))

    def min_bond(self) -> int:
        return int(self._call(self.contract.functions.minBond()))

    def slash_amount(self) -> int:
        return int(self._call(self.contract.functions.slashAmount()))

    def node_registry(self) -> str:
        return self._call(self.contract.functions.nodeRegistry())

    def model_registry(self) -> str:
        return self._call(self.contract.functions.modelRegistry())

    def on_inference_result(self, request_id: int, status: int, output_hash: bytes | str | int) -> TxReceipt:
        """Market only (reverts NotMarket otherwise); exposed for completeness and tests."""
        return self._send(self.contract.functions.onInferenceResult(request_id, int(status), to_bytes32(output_hash)))

    def market(self) -> str:
        return self._call(self.contract.functions.market())


def court_for(protocol: Any, sender: TxSender | None = None) -> StageCourt:
    """The StageCourt of a Protocol's deployment (its manifest must list one: deployed by deploy_protocol)."""
    if "StageCourt" not in protocol.manifest.addresses:
        raise ConfigError("this deployment has no StageCourt (redeploy with verinfer.chain.deploy.deploy_protocol)")
    return StageCourt(protocol.w3, protocol.manifest.address("StageCourt"),
                      sender if sender is not None else protocol.sender, protocol.manifest.deploy_block)


def open_dispute(court: StageCourt, stage: str, receipt: StageReceipt, signature: bytes,
                 input_cid: str) -> tuple[int, int]:
    """Dispute `stage`'s signed `receipt` paying disputeCost; returns (dispute_id, jury request_id)."""
    _, dispute_id, request_id = court.dispute(stage, receipt, signature, input_cid)
    return dispute_id, request_id


def dispute_cost(court: StageCourt, model_id: bytes | str) -> int:
    """The exact msg.value a dispute on `model_id` needs now (bond + jury fee + callback deposit)."""
    return court.dispute_cost(model_id)


def get_dispute(court: StageCourt, dispute_id: int) -> DisputeView:
    return court.get_dispute(dispute_id)


def decode_court_event(ev: DecodedEvent) -> DisputeOpenedEvent | DisputeResolvedEvent | DecodedEvent:
    """A typed dataclass for DisputeOpened / DisputeResolved (other events: the DecodedEvent)."""
    a = dict(ev.args)
    if ev.name == "DisputeOpened":
        return DisputeOpenedEvent(int(a["disputeId"]), int(a["requestId"]), _cs(a["stage"]), _cs(a["challenger"]),
                                  _b32(a["modelId"]), int(a["lo"]), int(a["hi"]), _b32(a["inputHash"]),
                                  _b32(a["claimedOutputHash"]), ev.block_number, ev.tx_hash)
    if ev.name == "DisputeResolved":
        return DisputeResolvedEvent(int(a["disputeId"]), Verdict(int(a["verdict"])), int(a["slashed"]),
                                    ev.block_number, ev.tx_hash)
    return ev


def dispute_events(court: StageCourt, from_block: int | None = None,
                   to_block: int | str = "latest") -> list[DisputeOpenedEvent | DisputeResolvedEvent]:
    """DisputeOpened and DisputeResolved events in block order (default from the deployment block)."""
    out = [decode_court_event(e) for e in court.events(["DisputeOpened", "DisputeResolved"], from_block, to_block)]
    return [e for e in out if isinstance(e, DisputeOpenedEvent | DisputeResolvedEvent)]


def _b32(v: Any) -> bytes:
    return to_bytes32(v)
