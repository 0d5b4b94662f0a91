"""The committee draw's rule, re-derived from public views (the market has no preview view: EIP-170).

One definition shared by the node (which member it will be before anyone commits), the auditor (which re-draws a
settled request) and tests: `draw_seed` is InferenceMarket._seed, `preview_committee` is the market's old
previewCommittee (now contracts/test/utils/Preview.sol): the stored committee once drawn, else the draw the
registry would make at that block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3

from verinfer.chain.errors import ContractError
from verinfer.chain.types import RequestStatus

if TYPE_CHECKING:
    from verinfer.chain.protocol import InferenceMarket, ModelRegistry, NodeRegistry

__all__ = ["DrawMemo", "DrawNotReadyError", "draw_seed", "preview_committee"]


class DrawNotReadyError(ContractError):
    """The draw's seed block (drawBlock) is not mined yet: no committee can be previewed before drawBlock + 1.

    A ContractError named DrawNotReady, as the market's own revert (callers check `error_name`)."""

    def __init__(self, request_id: int, draw_block: int, block: int) -> None:
        self.block = block
        super().__init__("InferenceMarket", "DrawNotReady", {"requestId": request_id, "drawBlock": draw_block},
                         function="preview_committee")

    def _message(self) -> str:
        a = self.error_args
        return (f"request {a['requestId']}: no committee to preview at block {self.block}: the draw's seed block "
                f"{a['drawBlock']} must be mined first (DrawNotReady)")


def draw_seed(block_hash: bytes, request_id: int) -> int:
    """uint256(keccak256(abi.encode(blockhash(drawBlock), requestId))): the committee seed (InferenceMarket._seed)."""
    return int.from_bytes(keccak(abi_encode(["bytes32", "uint256"], [bytes(block_hash), request_id])), "big")


class DrawMemo:
    """The draw's inputs that never change once known: the registry's epoch length (an immutable), a model's
    requiresTee (fixed at registration) and a mined block's hash. A node previews every waiting request on every
    pass; without this each preview cost six reads instead of two (load benchmark: 0.30 -> 0.55 node CPU-s per
    request, 31 of 200 requests expired waiting)."""

    #: Block hashes kept (the draw window is at most 256 blocks after the seed block).
    MAX_HASHES = 4096

    def __init__(self) -> None:
        self._epoch_length: int | None = None
        self._tee: dict[bytes, bool] = {}
        self._hashes: dict[int, bytes] = {}

    def epoch_length(self, nodes: NodeRegistry, block: int) -> int:
        if self._epoch_length is None:
            self._epoch_length = int(nodes.epoch_length(block))
        return self._epoch_length

    def requires_tee(self, models: ModelRegistry, model_id: bytes, block: int) -> bool:
        key = bytes(model_id)
        if key not in self._tee:
            self._tee[key] = bool(models.get_model_core(key, block).requires_tee)
        return self._tee[key]

    def block_hash(self, market: InferenceMarket, number: int) -> bytes:
        h = self._hashes.get(number)
        if h is None:
            h = bytes(market.w3.eth.get_block(number)["hash"])
            if len(self._hashes) >= self.MAX_HASHES:
                self._hashes.clear()
            self._hashes[number] = h
        return h


def preview_committee(market: InferenceMarket, nodes: NodeRegistry, models: ModelRegistry, request_id: int,
                      block: int | None = None, memo: DrawMemo | None = None) -> list[str]:
    """The committee of `request_id` as of `block` (default: the head, read once; every read uses that block).

    Not Pending: the stored committee (empty if it expired undrawn). Pending: DrawNotReady while block <= drawBlock;
    [] after the draw deadline (a draw now expires the request); else the registry's draw with the market's seed,
    the snapshot epoch createdBlock // epochLength and waitForSeats (a busy seed member ends the draw short).
    `memo` keeps the inputs that never change (DrawMemo): two reads per preview, the request and the draw."""
    memo = memo or DrawMemo()
    at = market.w3.eth.block_number if block is None else block
    r = market.get_request(request_id, at)
    if r.status != RequestStatus.PENDING:
        return market.get_committee(request_id, at)
    if at <= r.draw_block:
        raise DrawNotReadyError(request_id, r.draw_block, at)
    if at > r.draw_deadline:
        return []
    seed = draw_seed(memo.block_hash(market, r.draw_block), request_id)
    epoch = r.created_block // memo.epoch_length(nodes, at)
    tee = memo.requires_tee(models, bytes(r.model_id), at)
    drawn = nodes.draw_committee(r.model_id, seed, epoch, r.params.replicas, tee, at, wait_for_seats=True)
    return [Web3.to_checksum_address(a) for a in drawn]
