"""Driving the ExampleConsumer dApp contract: a request made by a contract, answered by callback.

Why this exists next to the SDK: most requesters are contracts, not Python. Here the request is
`ExampleConsumer.ask{value: fee}(…)` (the consumer is the on-chain requester), and the result
arrives as the market's gas-limited `onInferenceResult` callback, which the consumer stores in
`results[requestId]`. Python only prepares the input payload and reads the stored result back.
"""

from __future__ import annotations

import time
from typing import Sequence

from verinfer.chain.protocol import ExampleConsumer
from verinfer.chain.types import ConsumerResult
from verinfer.client.sdk import Client
from verinfer.errors import ConfigError

DEFAULT_CALLBACK_GAS = 200_000


class ExampleConsumerApp:
    """The ExampleConsumer deployed with the protocol (manifest `ExampleConsumer`), used as a dApp."""

    def __init__(self, client: Client, address: str | None = None) -> None:
        if "ExampleConsumer" not in client.manifest.addresses and address is None:
            raise ConfigError("the manifest has no ExampleConsumer address")
        self.client = client
        p = client.protocol
        self.consumer = p.consumer if address is None else ExampleConsumer(p.w3, address, p.sender, p.manifest.deploy_block)

    @property
    def address(self) -> str:
        return self.consumer.address

    def _bound(self) -> ExampleConsumer:
        """The consumer wrapper signing as the client's current account."""
        p = self.client.protocol
        if self.consumer.sender is not p.sender:
            self.consumer = ExampleConsumer(p.w3, self.consumer.address, p.sender, p.manifest.deploy_block)
        return self.consumer

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
        """Store the input, call `ask` on the consumer (which forwards fee + the escrowed callback deposit)."""
        if callback_gas_limit <= 0:
            raise ConfigError("a consumer request needs callback_gas_limit > 0 to receive its result")
        self.client._need_sender()
        info, payload, input_hash = self.client.prepare(model, data)
        cid = self.client.store.add(payload)
        params = self.client.params(replicas, quorum, commit_blocks, reveal_blocks, callback_gas_limit)
        _, deposit = self.client.protocol.market.quote(info.model_id, params)
        receipt, rid = self._bound().ask(info.model_id, cid, input_hash, params, fee + deposit)
        self.client.own_gas.setdefault(rid, {})["request"] = [int(receipt["gasUsed"])]
        return rid

    def stored_result(self, request_id: int) -> ConsumerResult:
        """Read `results[requestId]` from the consumer contract's storage."""
        return self.consumer.results(request_id)

    def wait_callback(self, request_id: int, timeout: float = 30.0) -> ConsumerResult:
        """Wait until the market's callback has landed in the consumer (it runs inside finalize)."""
        deadline = time.monotonic() + timeout
        while True:
            res = self.stored_result(request_id)
            if res.received or time.monotonic() > deadline:
                return res
            time.sleep(self.client.poll_interval)
