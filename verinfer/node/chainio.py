"""The node's narrow view of the chain: the handful of reads and writes the worker needs.

It wraps the chain layer's `Protocol` (typed views, shared `TxSender` with local nonces and
decoded `ContractError`s) and adds one retry policy for reads, so the worker's state machine
reads like the protocol (commit, reveal, finalize, prove) and an RPC blip surfaces as one
`RpcError` the worker backs off from.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any, Callable, TypeVar

from web3 import Web3

from verinfer.chain.errors import RpcError
from verinfer.chain.events import CursorStore, EventCursor
from verinfer.chain.manifest import Manifest
from verinfer.chain.protocol import FINAL_STATUSES, FULL_MODEL_END, Protocol, RequestView, RevealView
from verinfer.chain.tx import RPC_FAILURES, PendingTx, rpc_url_of
from verinfer.chain.types import ModelInfo
from verinfer.constants import to_bytes32
from verinfer.operator.status import eligibility

log = logging.getLogger("verinfer.node")
T = TypeVar("T")

#: Receipt polling interval of the node's TxSender (seconds).
RECEIPT_POLL_S = 0.2

__all__ = ["FINAL_STATUSES", "ModelInfo", "NodeChain", "PendingTx"]  # ModelInfo: chain.types (one definition)


class NodeChain:
    """Reads with a short transport retry, writes through the Protocol's TxSender, for one account."""

    def __init__(self, protocol: Protocol, *, read_retries: int = 3) -> None:
        self.p = protocol
        self.w3 = protocol.w3
        self.manifest = protocol.manifest
        assert protocol.account is not None
        self.account = protocol.account
        self.address: str = protocol.account.address
        self.read_retries = read_retries
        self.market = protocol.market.contract  # raw web3 contract, for the event cursor
        self._model_cache: dict[bytes, ModelInfo] = {}
        self._artifacts_cache: dict[bytes, str] = {}

    @classmethod
    def connect(cls, rpc_url: str, manifest: Manifest, account: Any, *, timeout: float = 10.0) -> "NodeChain":
        """No network I/O here: a node must be able to start while the RPC is down and catch up later."""
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        # web3's "validation" middleware asks the RPC for eth_chainId before EVERY eth_call / eth_estimateGas (to
        # compare it with a chainId the node never puts there): 7 RPCs instead of 3 for a read + an estimate + a
        # block number. The node checks the chain id once at start (Worker._check_chain) and signs with the
        # TxSender's cached id. It never passes ENS names and signs its own fee fields, so the ENS and gas-price
        # middlewares only cost CPU. Without the three: 1.9 → 1.1 ms of web3 Python per such trio, before any HTTP
        # (benchmarks/nodeprof/web3_overhead.py, best of 5).
        for name in ("validation", "ens_name_to_address", "gas_price_strategy"):
            w3.middleware_onion.remove(name)
        chain = cls(Protocol(w3, manifest, account))
        if chain.p.sender is not None:
            # Dozens of request threads wait for receipts at once: poll at a fraction of a block, not every
            # 50 ms, or the receipt polling alone saturates the RPC node under load (issue 7 attack 13).
            chain.p.sender.poll_interval = RECEIPT_POLL_S
        return chain

    def read(self, call: Callable[[], T]) -> T:
        """One RPC read; transport failures retried briefly, then RpcError (the worker backs off)."""
        delay = 0.2
        for attempt in range(self.read_retries):
            try:
                return call()
            except RPC_FAILURES as exc:
                if attempt == self.read_retries - 1:
                    if isinstance(exc, RpcError):
                        raise
                    raise RpcError(f"cannot reach RPC at {rpc_url_of(self.w3)} ({type(exc).__name__})") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # --- reads ----------------------------------------------------------------------------

    def chain_id(self) -> int:
        return int(self.read(lambda: self.w3.eth.chain_id))

    def deployment_id(self) -> str:
        """chain id, market address and the hash of the deploy block: a fresh devnet redeploys the same addresses
        on the same chain id, so only the block hash tells two deployments apart."""
        block = self.read(lambda: self.w3.eth.get_block(self.manifest.deploy_block))
        return f"{self.manifest.chain_id}:{self.market.address}:{bytes(block['hash']).hex()}"

    def block_number(self) -> int:
        return int(self.read(lambda: self.w3.eth.block_number))

    def balance(self, address: str | None = None) -> int:
        return int(self.read(lambda: self.w3.eth.get_balance(Web3.to_checksum_address(address or self.address))))

    def get_request(self, request_id: int) -> RequestView:
        return self.read(lambda: self.p.market.get_request(request_id))

    def get_reveal(self, request_id: int, node: str | None = None) -> RevealView:
        return self.read(lambda: self.p.market.get_reveal(request_id, node or self.address))

    def model(self, model_id: bytes) -> ModelInfo:
        """ModelRegistry record, cached (V2: everything the node reads is fixed at registration, except deprecation)."""
        cached = self._model_cache.get(model_id)
        if cached is not None:
            return cached
        info = ModelInfo.from_record(self.read(lambda: self.p.models.get_model(model_id)))
        self._model_cache[model_id] = info
        return info

    def artifacts_cid(self, model_id: bytes) -> str:
        """The model's prover bundle CID ("" when none is published); cached once set (setArtifacts is once only)."""
        cached = self._artifacts_cache.get(model_id)
        if cached:
            return cached
        cid = str(self.read(lambda: self.p.models.artifacts_cid(model_id)) or "")
        if cid:
            self._artifacts_cache[model_id] = cid
        return cid

    def preview_committee(self, request_id: int, block: int | None = None) -> list[str]:
        return self.read(lambda: self.p.market.preview_committee(request_id, block))

    def get_committee(self, request_id: int) -> list[str]:
        return self.read(lambda: self.p.market.get_committee(request_id))

    def proof_blocks(self) -> int:
        return int(self.read(lambda: self.p.market.proof_blocks()))

    def served_models(self) -> set[bytes]:
        """Models we hold a full-model shard of (only those put us into a sortition tree)."""
        shards = self.read(lambda: self.p.nodes.get_shards(self.address))
        return {bytes(s.model_id) for s in shards if s.layer_start == 0 and s.layer_end in (FULL_MODEL_END, self._layers(s.model_id))}

    def _layers(self, model_id: bytes) -> int:
        return int(self.read(lambda: self.p.models.get_model(model_id)).num_layers)

    def eligibility(self, served: set[bytes]) -> dict[str, Any]:
        """Registered / eligible and, if not, why (the operator library's one definition)."""
        e = self.read(lambda: eligibility(self.p, self.address))
        return e.as_dict()

    def event_cursor(self, names: list[str], store: CursorStore, start_block: int, key: str) -> EventCursor:
        return self.p.market.cursor(names, store, start_block=start_block, key=key)

    def resync_nonce(self) -> None:
        if self.p.sender is not None:
            self.p.sender.resync_nonce()

    def withdrawable(self) -> int:
        return int(self.read(lambda: self.p.market.withdrawable(self.address)))

    # --- non-blocking writes (the request path: broadcast now, look for the receipt next block) ---

    def send_commit(self, request_id: int, commitment: bytes) -> PendingTx:
        """Pre-flight + broadcast a commit (which draws when we are first); a revert raises ContractError."""
        return self._submit(self.market.functions.commit(request_id, to_bytes32(commitment)))

    def send_reveal(self, request_id: int, output_hash: int, salt: bytes, output_cid: str) -> PendingTx:  # noqa: D102
        return self._submit(self.market.functions.reveal(request_id, to_bytes32(output_hash), to_bytes32(salt), output_cid))

    def send_draw(self, request_id: int) -> PendingTx:
        """Broadcast a draw; nobody waits for it (the commit that follows draws anyway if it is not mined first)."""
        return self._submit(self.market.functions.draw(request_id))

    def send_finalize(self, request_id: int) -> PendingTx:  # noqa: D102
        return self._submit(self.market.functions.finalize(request_id))

    def send_proof(self, request_id: int, output_hash: int, proof: list[int]) -> PendingTx:
        """Pre-flight (eth_call) + broadcast a proof with the market's fixed proof gas; the ProofVerified event confirms it."""
        if len(proof) != 8:
            raise ValueError(f"a Groth16 proof is 8 uint256 words, got {len(proof)}")
        assert self.p.sender is not None
        fn = self.market.functions.submitProof(request_id, to_bytes32(output_hash), [int(x) for x in proof])
        return self.p.sender.submit(fn, gas=self.p.market.PROOF_TX_GAS, contract="InferenceMarket", state="latest")

    def poll_tx(self, pending: PendingTx) -> Any | None:
        """The receipt once mined (ContractError if it reverted), None before; transport errors as RpcError."""
        assert self.p.sender is not None
        sender = self.p.sender
        return self.read(lambda: sender.poll(pending))

    def tx_known(self, pending: PendingTx) -> bool:
        """False when the RPC node no longer has the transaction (dropped): the caller sends it again."""
        assert self.p.sender is not None
        sender = self.p.sender
        return bool(self.read(lambda: sender.known(pending)))

    def _submit(self, fn: Any) -> PendingTx:
        assert self.p.sender is not None
        return self.p.sender.submit(fn, contract="InferenceMarket", state="latest")  # the node acts on mined state

    # --- blocking writes (each returns the tx hash; reverts raise ContractError) -----------------------

    def commit(self, request_id: int, commitment: bytes) -> str:
        """Commits (and draws, when we are the first committer)."""
        return _hash(self.p.market.commit(request_id, commitment))

    def reveal(self, request_id: int, output_hash: int, salt: bytes, output_cid: str) -> str:  # noqa: D102
        return _hash(self.p.market.reveal(request_id, output_hash, salt, output_cid))

    def salt_for(self, request_id: int) -> bytes:
        """The commit salt: HMAC-SHA256(operator key, chain id ‖ market ‖ request id).

        Secret to everyone else (it needs the operator key) and recomputable after any crash, so the
        node never has to fsync a random salt before committing: an honest node's output is
        deterministic, so the same commitment can always be rebuilt and revealed.
        """
        msg = (b"verinfer-commit-salt-v1" + int(self.manifest.chain_id).to_bytes(8, "big")
               + bytes.fromhex(self.p.market.address[2:]) + int(request_id).to_bytes(32, "big"))
        return hmac.new(bytes(self.account.key), msg, hashlib.sha256).digest()

    def draw(self, request_id: int) -> str:
        return _hash(self.p.market.draw(request_id))

    def finalize(self, request_id: int) -> str:
        return _hash(self.p.market.finalize(request_id))

    def submit_proof(self, request_id: int, output_hash: int, proof: list[int]) -> str:
        return _hash(self.p.market.submit_proof(request_id, output_hash, proof))

    def withdraw(self) -> str:
        return _hash(self.p.market.withdraw())


def _hash(receipt: Any) -> str:
    return Web3.to_hex(receipt["transactionHash"])
