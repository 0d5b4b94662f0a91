#!/usr/bin/env python3
"""Python CPU and JSON-RPC requests web3 spends per node-style call, with and without its default middlewares.

    python benchmarks/nodeprof/web3_overhead.py

A canned in-process provider answers every request, so the numbers are web3's own work (no HTTP, no node):
one contract read (eth_call), one estimate (eth_estimateGas) and one eth_blockNumber, as a node does per
request step. Why: NodeChain.connect drops the "validation" middleware (an eth_chainId request before every
eth_call / eth_estimateGas) and the ENS / gas-price ones (the node passes addresses and its own fee fields).
"""

from __future__ import annotations

import time
from typing import Any

from web3 import Web3
from web3.providers.base import JSONBaseProvider

ABI = [
    {"type": "function", "name": "commit", "stateMutability": "nonpayable", "outputs": [],
     "inputs": [{"name": "id", "type": "uint256"}, {"name": "c", "type": "bytes32"}]},
    {"type": "function", "name": "f", "stateMutability": "view", "inputs": [{"name": "id", "type": "uint256"}],
     "outputs": [{"name": "", "type": "uint256"}]},
]
ANSWERS = {"eth_chainId": "0x7a69", "eth_estimateGas": "0xea60", "eth_blockNumber": "0x10"}


class Canned(JSONBaseProvider):
    """Answers from a table and counts requests."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def make_request(self, method: Any, params: Any) -> Any:
        self.requests += 1
        return {"jsonrpc": "2.0", "id": 1, "result": ANSWERS.get(method, "0x" + "00" * 31 + "01")}


def main(n: int = 300, rounds: int = 5) -> None:
    """Best of `rounds` rounds (a shared box's noise only adds CPU), configurations interleaved."""
    configs: list[list[str]] = [[], ["validation"], ["validation", "ens_name_to_address", "gas_price_strategy"]]
    best = [float("inf")] * len(configs)
    per_call = [0.0] * len(configs)
    for _ in range(rounds):
        for k, removed in enumerate(configs):
            provider = Canned()
            w3 = Web3(provider)
            for name in removed:
                w3.middleware_onion.remove(name)
            c = w3.eth.contract(address=Web3.to_checksum_address("0x" + "12" * 20), abi=ABI)
            sender = Web3.to_checksum_address("0x" + "34" * 20)
            t0 = time.process_time()
            for i in range(n):
                c.functions.f(i).call()
                c.functions.commit(i, b"\x01" * 32).estimate_gas({"from": sender})
                _ = w3.eth.block_number
            best[k] = min(best[k], (time.process_time() - t0) / n * 1e3)
            per_call[k] = provider.requests / n
    for removed, ms, rpcs in zip(configs, best, per_call, strict=True):
        print(f"middlewares removed: {', '.join(removed) or 'none':<52} {ms:5.2f} ms CPU, "
              f"{rpcs:.0f} JSON-RPC requests per read + estimate + block number")


if __name__ == "__main__":
    main()
