"""Driving the ExampleConsumer dApp contract: a request made by a contract, answered by callback.

Why this exists next to the SDK: most requesters are contracts, not Python. Here the request is
`ExampleConsumer.ask{value: fee}(…)` (the consumer is the on-chain requester), and the result
arrives as the market's gas-limited `onInferenceResult` callback, which the consumer stores in
`results[requestId]`. Python only prepares the input payload and reads the stored result back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from verinfer.client.result import status_name
from verinfer.client.sdk import Client
from verinfer.errors import ConfigError
from verinfer.models.hashing import to_bytes32

DEFAULT_CALLBACK_GAS = 200_000


@dataclass(frozen=True)
class ConsumerResult:
    """`ExampleConsumer.results(requestId)`: what the dApp contract itself received by callback."""

    request_id: int
    status: str
    output_hash: int
    output_cid: str
    received: bool


class ExampleConsumerApp:
    """The ExampleConsumer deployed with the protocol (manifest `ExampleConsumer`), used as a dApp."""

    def __init__(self, client: Client, address: str | None = None) -> None:
        if client.consumer is None and address is None:
            raise ConfigError("the manifest has no ExampleConsumer address")
        from verinfer.chain import artifacts
        from web3 import Web3

        self.client = client
        self.contract: Any = client.consumer if address is None else client.w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=artifacts.load("ExampleConsumer").abi
        )

    @property
    def address(self) -> str:
        return self.contract.address

    def ask(
        self,
        model: str | bytes,
        data: Sequence[int] | bytes,
        fee: int,
        replicas: int = 3,
        quorum: int = 2,
        commit_blocks: int | None = None,
        reveal_blocks: int | None = None,
        callback_gas_limit: int = DEFAULT_CALLBACK_GAS,
    ) -> int:
        """Store the input, call `ask` on the consumer (which forwards the fee); returns the request id."""
        if callback_gas_limit <= 0:
            raise ConfigError("a consumer request needs callback_gas_limit > 0 to receive its result")
        sender = self.client._need_sender()
        info, payload, input_hash = self.client.prepare(model, data)
        cid = self.client.store.add(payload)
        params = self.client.params(replicas, quorum, commit_blocks, reveal_blocks, callback_gas_limit)
        receipt = sender.send(
            self.contract.functions.ask(bytes.fromhex(info.model_id[2:]), cid, to_bytes32(input_hash), params),
            value=fee,
            contract="ExampleConsumer",
        )
        rid = self.client.request_id_from_receipt(receipt)
        self.client.own_gas.setdefault(rid, {})["request"] = [int(receipt["gasUsed"])]
        return rid

    def stored_result(self, request_id: int) -> ConsumerResult:
        """Read `results[requestId]` from the consumer contract's storage."""
        status, output_hash, output_cid, received = self.contract.functions.results(request_id).call()
        return ConsumerResult(request_id, status_name(status), int.from_bytes(bytes(output_hash), "big"),
                              output_cid, bool(received))

    def wait_callback(self, request_id: int, timeout: float = 30.0) -> ConsumerResult:
        """Wait until the market's callback has landed in the consumer (it runs inside finalize)."""
        deadline = time.monotonic() + timeout
        while True:
            res = self.stored_result(request_id)
            if res.received or time.monotonic() > deadline:
                return res
            time.sleep(self.client.poll_interval)
