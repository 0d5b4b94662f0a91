"""Sending transactions reliably from one local key.

Why not `contract_fn.transact()`: that needs an unlocked node account, asks the node for a nonce each
time (racy across threads), and reports a revert as an opaque status 0. `TxSender` signs locally,
hands out nonces itself, re-broadcasts the *same* signed bytes after a transport failure (so a retry
can never spend twice), and turns every revert into a decoded `ContractError`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, cast

import requests
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import RPCEndpoint, TxParams, TxReceipt

from verinfer.chain import artifacts
from verinfer.chain.errors import (
    ChainError,
    ContractError,
    RpcError,
    TxTimeout,
    decode_revert,
    revert_data_from_exception,
)

log = logging.getLogger(__name__)

#: Exceptions that mean "the request or its answer got lost", not "the node said no".
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    ConnectionError,
    TimeoutError,
    ProviderConnectionError,
    OSError,
)
#: An RPC that cannot be reached (RpcError after retries, or a lost request): back off and retry later.
RPC_FAILURES: tuple[type[BaseException], ...] = (RpcError, *TRANSPORT_ERRORS)

_ALREADY_KNOWN = ("already known", "already imported", "known transaction", "already exists", "alreadyknown")
_NONCE_CONFLICT = ("nonce too low", "nonce has already been used", "underpriced", "nonce too high", "old nonce")

#: Seconds a fetched fee quote is reused (maxFeePerGas is 2 × base fee + tip: one block of base-fee growth is covered).
FEE_CACHE_S = 1.0

_contract_names: dict[str, str] = {}
_names_lock = threading.Lock()


def name_contract(address: str, name: str) -> None:
    """Remember which protocol contract lives at `address`, so reverts name it."""
    with _names_lock:
        _contract_names[address.lower()] = name


def contract_name_for(address: str | None, abi: list[dict[str, Any]] | None = None) -> str:
    """Best human name for a contract: registered address, else matching artifact ABI, else the address."""
    if address and address.lower() in _contract_names:
        return _contract_names[address.lower()]
    if abi:
        key = json.dumps(abi, sort_keys=True)
        for art in artifacts.load_all():
            if json.dumps(art.abi, sort_keys=True) == key:
                return art.name
    return address or "contract"


def rpc_url_of(w3: Web3) -> str:
    """The endpoint of an HTTP-backed Web3 (for error messages)."""
    return str(getattr(w3.provider, "endpoint_uri", None) or w3.provider)


@dataclass
class PendingTx:
    """A broadcast transaction whose receipt nobody has waited for yet (`TxSender.submit` / `poll`)."""

    tx_hash: str
    tx: dict[str, Any]
    name: str
    fn_label: str
    sent_at: float


class TxSender:
    """Signs and sends transactions for one account with a local, thread-safe nonce counter."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.05,
        max_retries: int = 6,
        gas_multiplier: float = 1.2,
        priority_fee: int | None = None,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.max_retries = max_retries
        self.gas_multiplier = gas_multiplier
        self.priority_fee = priority_fee
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._fee_cache: tuple[float, dict[str, int]] | None = None

    # ---- nonces -------------------------------------------------------------------------

    def _allocate_nonce(self) -> int:
        with self._lock:
            if self._next_nonce is None:
                self._next_nonce = self._rpc(lambda: self.w3.eth.get_transaction_count(self.address, "pending"))
            n = self._next_nonce
            self._next_nonce += 1
            return n

    def resync_nonce(self) -> None:
        """Forget the local counter; the next send asks the node (pending count) again."""
        with self._lock:
            self._next_nonce = None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._rpc(lambda: self.w3.eth.chain_id)
        return self._chain_id

    # ---- public ---------------------------------------------------------------------------

    def send(
        self,
        contract_fn: Any,
        value: int = 0,
        gas: int | None = None,
        *,
        contract: str | None = None,
        timeout: float | None = None,
        preflight: bool = True,
    ) -> TxReceipt:
        """Send a bound contract function (or constructor) and wait for its receipt.

        `gas=None` estimates (which doubles as the pre-flight revert check) and adds 20%; with an
        explicit gas (Groth16 verification) the pre-flight is an eth_call with that gas.
        Raises ContractError on any revert, pre-flight or mined.
        """
        return self.wait(self.submit(contract_fn, value, gas, contract=contract, preflight=preflight), timeout)

    def submit(
        self,
        contract_fn: Any,
        value: int = 0,
        gas: int | None = None,
        *,
        contract: str | None = None,
        preflight: bool = True,
        state: str = "pending",
    ) -> PendingTx:
        """Pre-flight, sign with the next local nonce and broadcast; do not wait (see `poll`).

        `state`: the block the pre-flight runs against. "pending" sees this key's own unmined transactions; a
        caller that only acts on mined state (a node: it commits after the request's events, reveals after
        the commits' events) passes "latest", which anvil answers without its pending pool (measured: an
        estimate costs ~20 % more against "pending" with 200-600 transactions in the pool).

        Why: a caller with many transactions in flight (a node under a burst) must not park one thread per
        transaction on receipt polling; nonces are handed out locally, so any number of transactions from
        this key can be in one block.
        """
        address = getattr(contract_fn, "address", None)
        name = contract or contract_name_for(address, getattr(contract_fn, "contract_abi", None) or getattr(contract_fn, "abi", None))
        fn_label = getattr(contract_fn, "fn_name", None) or "constructor"
        base = {"from": self.address, "value": value}
        if gas is None:
            est = self._preflight(lambda: contract_fn.estimate_gas(base, block_identifier=state), name, fn_label)
            gas = int(est * self.gas_multiplier) + 10_000
        elif preflight and hasattr(contract_fn, "call"):
            self._preflight(lambda: contract_fn.call(dict(base, gas=gas), block_identifier=state), name, fn_label)

        def build(fields: dict[str, Any]) -> dict[str, Any]:
            return dict(contract_fn.build_transaction(dict(base, gas=gas, **fields)))

        return self._send_built(build, name, fn_label)

    def poll(self, pending: PendingTx) -> TxReceipt | None:
        """One receipt look-up: the receipt if mined (ContractError if it reverted), None if not mined yet."""
        try:
            receipt = self.w3.eth.get_transaction_receipt(HexStr(pending.tx_hash))
        except TransactionNotFound:
            return None
        if receipt["status"] != 1:
            raise self._decode_mined_revert(pending.tx, receipt, pending.name, pending.fn_label)
        return receipt

    def known(self, pending: PendingTx) -> bool:
        """Whether the RPC node still has the transaction (pending or mined); False means it was dropped."""
        return self._tx_known(pending.tx_hash)

    def wait(self, pending: PendingTx, timeout: float | None = None) -> TxReceipt:
        """Poll until mined (ContractError if reverted, TxTimeout after `timeout`)."""
        deadline = time.monotonic() + (timeout or self.receipt_timeout)
        while True:
            try:
                receipt = self.poll(pending)
                if receipt is not None:
                    return receipt
            except TRANSPORT_ERRORS:
                log.warning("transport error polling receipt of %s", pending.tx_hash)
            if time.monotonic() > deadline:
                raise TxTimeout(f"no receipt for {pending.tx_hash} after {timeout or self.receipt_timeout:.0f}s "
                                "(it may still be mined)")
            time.sleep(self.poll_interval)

    def transfer(self, to: str, value: int, *, timeout: float | None = None) -> TxReceipt:
        """Plain value transfer (funding test accounts, paying a node)."""
        to = Web3.to_checksum_address(to)

        def build(fields: dict[str, Any]) -> dict[str, Any]:
            return dict(fields, to=to, value=value, gas=21_000, **{"from": self.address})

        return self.wait(self._send_built(build, to, "transfer"), timeout)

    # ---- internals ------------------------------------------------------------------------

    def _rpc(self, call: Callable[[], Any]) -> Any:
        """A read-only RPC with transport retries; unreachable → RpcError."""
        delay = 0.05
        for attempt in range(self.max_retries):
            try:
                return call()
            except TRANSPORT_ERRORS as exc:
                if attempt == self.max_retries - 1:
                    raise RpcError(f"cannot reach RPC at {rpc_url_of(self.w3)} ({type(exc).__name__})") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    def _preflight(self, call: Callable[[], Any], name: str, fn_label: str) -> Any:
        try:
            return self._rpc(call)
        except ContractLogicError as exc:
            data, msg = revert_data_from_exception(exc)
            raise decode_revert(data, name, function=fn_label, message=msg) from None
        except Web3RPCError as exc:
            data, msg = revert_data_from_exception(exc)
            if data or (msg and "revert" in msg.lower()):
                raise decode_revert(data, name, function=fn_label, message=msg) from None
            raise ChainError(f"the RPC endpoint refused {name}.{fn_label}: {msg}") from None

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fee fields from the latest block, cached for FEE_CACHE_S (many threads send at once)."""
        now = time.monotonic()
        with self._lock:
            if self._fee_cache is not None and now - self._fee_cache[0] < FEE_CACHE_S:
                return dict(self._fee_cache[1])
        fees = self._fetch_fees()
        with self._lock:
            self._fee_cache = (now, fees)
        return dict(fees)

    def _fetch_fees(self) -> dict[str, int]:
        block = self._rpc(lambda: self.w3.eth.get_block("latest"))
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": self._rpc(lambda: self.w3.eth.gas_price)}
        tip = self.priority_fee
        if tip is None:
            tip = self._rpc(lambda: self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}

    def _send_built(self, build: Callable[[dict[str, Any]], dict[str, Any]], name: str, fn_label: str) -> PendingTx:
        fees = self._fees()
        for _ in range(self.max_retries):
            nonce = self._allocate_nonce()
            tx = build(dict(fees, nonce=nonce, chainId=self.chain_id))
            signed = self.account.sign_transaction(tx)
            tx_hash = Web3.to_hex(signed.hash)
            outcome = self._broadcast(signed.raw_transaction, tx_hash)
            if outcome == "sent":
                return PendingTx(tx_hash, tx, name, fn_label, time.monotonic())
            log.info("nonce %d of %s conflicted; resyncing", nonce, self.address)
            self.resync_nonce()
        raise ChainError(f"could not find a usable nonce for {self.address} after {self.max_retries} tries")

    def _tx_known(self, tx_hash: str) -> bool:
        try:
            self._rpc(lambda: self.w3.eth.get_transaction(HexStr(tx_hash)))
            return True
        except TransactionNotFound:
            return False

    def _broadcast(self, raw: bytes, tx_hash: str) -> str:
        """Send the signed bytes; returns "sent" or "conflict" (nonce taken by another tx)."""
        delay = 0.05
        for attempt in range(self.max_retries):
            try:
                self.w3.eth.send_raw_transaction(raw)
                return "sent"
            except TRANSPORT_ERRORS:
                # The node may or may not have the tx: re-broadcasting the same bytes is idempotent.
                log.warning("transport error broadcasting %s; retrying (%d)", tx_hash, attempt + 1)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except Web3RPCError as exc:
                msg = str(getattr(exc, "message", exc)).lower()
                if any(s in msg for s in _ALREADY_KNOWN):
                    return "sent"
                if any(s in msg for s in _NONCE_CONFLICT):
                    # Our earlier (lost-answer) broadcast may be the tx that used the nonce.
                    return "sent" if self._tx_known(tx_hash) else "conflict"
                self.resync_nonce()  # the nonce was not consumed
                raise ChainError(f"the RPC endpoint refused the transaction: {getattr(exc, 'message', exc)}") from None
        if self._tx_known(tx_hash):
            return "sent"
        self.resync_nonce()
        raise RpcError(f"cannot reach RPC at {rpc_url_of(self.w3)} (broadcast of {tx_hash} failed)")

    def _wait(self, tx_hash: str, timeout: float) -> TxReceipt:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                pass
            except TRANSPORT_ERRORS:
                log.warning("transport error polling receipt of %s", tx_hash)
            if time.monotonic() > deadline:
                raise TxTimeout(f"no receipt for {tx_hash} after {timeout:.0f}s (it may still be mined)")
            time.sleep(self.poll_interval)

    def wait_for_receipt(self, tx_hash: str, timeout: float | None = None) -> TxReceipt:
        """Public form of the receipt wait (for txs sent elsewhere)."""
        try:
            return self._wait(tx_hash, timeout or self.receipt_timeout)
        except TimeExhausted as exc:  # pragma: no cover - defensive
            raise TxTimeout(str(exc)) from None

    def _decode_mined_revert(self, tx: dict[str, Any], receipt: TxReceipt, name: str, fn_label: str) -> ContractError:
        """Recover the revert data of a mined, failed tx: exact trace first, then an eth_call replay."""
        tx_hash = Web3.to_hex(receipt["transactionHash"])
        data: bytes | None = None
        msg: str | None = None
        try:
            trace = self.w3.provider.make_request(RPCEndpoint("debug_traceTransaction"), [tx_hash, {"tracer": "callTracer"}])
            result = trace.get("result") or {}
            out = result.get("output")
            if isinstance(out, str) and len(out) >= 10:
                data = bytes.fromhex(out[2:])
            msg = result.get("revertReason") or result.get("error")
        except Exception:  # node without the debug API
            pass
        if data is None:
            call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
            try:
                self.w3.eth.call(cast(TxParams, call), block_identifier=receipt["blockNumber"] - 1)
            except (ContractLogicError, Web3RPCError) as exc:
                data, msg = revert_data_from_exception(exc)
            except Exception:
                pass
        if not data and receipt["gasUsed"] >= tx.get("gas", 0) > 0:
            return ContractError(name, "OutOfGas", {"gas": tx["gas"]}, tx_hash=tx_hash, function=fn_label)
        return decode_revert(data, name, tx_hash=tx_hash, function=fn_label, message=msg)


_senders: dict[tuple[str, str], TxSender] = {}
_senders_lock = threading.Lock()


def sender_for(w3: Web3, account: LocalAccount) -> TxSender:
    """The shared TxSender of (endpoint, account): one nonce counter per key per process."""
    key = (rpc_url_of(w3), account.address)
    with _senders_lock:
        s = _senders.get(key)
        if s is None or s.account.key != account.key:
            s = _senders[key] = TxSender(w3, account)
        return s
