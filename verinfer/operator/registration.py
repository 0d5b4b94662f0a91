"""Register a node (stake, models/shards, capacity) and the other stake moves, with checks before any tx."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from web3 import Web3
from web3.types import TxReceipt

from verinfer.amounts import format_ether
from verinfer.chain.protocol import ModelShard, Protocol
from verinfer.chain.types import resolve_model_id
from verinfer.errors import ConfigError

#: Registry default capacity (in-flight committee seats) and bounds (PROTOCOL_V2 NodeRegistry).
DEFAULT_CAPACITY = 4
MAX_CAPACITY = 255  # NodeRegistry.MAX_CAPACITY (inFlight is a uint8)


@dataclass(frozen=True)
class Registration:
    address: str
    stake: int
    shards: list[ModelShard]
    capacity: int
    txs: list[str]

    def describe(self) -> str:
        full = sum(1 for s in self.shards if s.layer_start == 0 and s.layer_end == 0xFFFF)
        part = len(self.shards) - full
        what = f"{full} full model(s)" + (f" and {part} layer range(s)" if part else "")
        return f"registered {self.address} with stake {format_ether(self.stake)} for {what}, capacity {self.capacity}"


def shards_for(protocol: Protocol, models: Sequence[str] = (), ranges: Sequence[tuple[str, int, int]] = ()) -> list[ModelShard]:
    """Resolve model names/ids (full model) and (model, start, end) layer ranges to shards."""
    out = [ModelShard(resolve_model_id(protocol.models, m)) for m in models]
    out += [ModelShard(resolve_model_id(protocol.models, m), a, b) for m, a, b in ranges]
    if not out:
        raise ConfigError("pass --models and/or --shards (what will this node serve?)")
    return out


def register(protocol: Protocol, stake: int, shards: Sequence[ModelShard], *, endpoint: str = "http://127.0.0.1",
             capacity: int | None = None) -> Registration:
    """Stake and register the bound account; set capacity when it differs from the registry default."""
    assert protocol.account is not None, "register needs a signing account"
    me = protocol.account.address
    if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
        raise ConfigError(f"--capacity must be 1..{MAX_CAPACITY}, got {capacity}")
    if not endpoint.strip():
        raise ConfigError("--endpoint must not be empty")
    nodes = protocol.nodes
    if nodes.get_node(me).registered:
        raise ConfigError(f"{me} is already registered (use `operator top-up` to add stake)")
    min_stake = nodes.min_stake()
    if stake < min_stake:
        raise ConfigError(f"--stake {format_ether(stake)} is below the minimum stake {format_ether(min_stake)}")
    balance = protocol.w3.eth.get_balance(me)
    if balance < stake:
        raise ConfigError(f"balance {format_ether(balance)} of {me} cannot cover --stake {format_ether(stake)}")
    txs: list[str] = [Web3.to_hex(nodes.register(endpoint, list(shards), stake)["transactionHash"])]
    cap = nodes.get_node(me).capacity
    if capacity is not None and capacity != cap:
        txs.append(set_capacity(protocol, capacity))
        cap = capacity
    return Registration(me, stake, list(shards), int(cap), txs)


def set_capacity(protocol: Protocol, capacity: int) -> str:
    if not 1 <= capacity <= MAX_CAPACITY:
        raise ConfigError(f"--capacity must be 1..{MAX_CAPACITY}, got {capacity}")
    r: TxReceipt = protocol.nodes.set_capacity(capacity)
    return Web3.to_hex(r["transactionHash"])


def top_up(protocol: Protocol, amount: int) -> str:
    assert protocol.account is not None
    me = protocol.account.address
    node = protocol.nodes.get_node(me)
    if not node.registered:
        raise ConfigError(f"{me} is not registered (run `operator register` first)")
    if node.unbonding_since:
        raise ConfigError(f"{me} is unbonding; stake cannot be added")
    balance = protocol.w3.eth.get_balance(me)
    if balance < amount:
        raise ConfigError(f"balance {format_ether(balance)} cannot cover --amount {format_ether(amount)}")
    return Web3.to_hex(protocol.nodes.top_up(amount)["transactionHash"])


def unbond(protocol: Protocol) -> tuple[str, int]:
    """Start unbonding; returns (tx hash, first block the stake is withdrawable)."""
    assert protocol.account is not None
    me = protocol.account.address
    node = protocol.nodes.get_node(me)
    if not node.registered:
        raise ConfigError(f"{me} is not registered")
    if node.unbonding_since:
        raise ConfigError(f"{me} is already unbonding since block {node.unbonding_since}")
    r = protocol.nodes.request_unbond()
    return Web3.to_hex(r["transactionHash"]), int(protocol.nodes.withdrawable_at(me))


def withdraw(protocol: Protocol, what: str = "all") -> tuple[list[str], list[str]]:
    """Withdraw earnings and/or stake; returns (done lines, notes). Nothing done → ConfigError with the notes."""
    if what not in ("stake", "earnings", "all"):
        raise ConfigError(f"--what must be stake, earnings or all, got {what!r}")
    assert protocol.account is not None
    me = protocol.account.address
    done: list[str] = []
    notes: list[str] = []
    if what in ("earnings", "all"):
        earned = protocol.market.withdrawable(me)
        if earned > 0:
            r = protocol.market.withdraw()
            done.append(f"earnings {format_ether(earned)} (tx {Web3.to_hex(r['transactionHash'])})")
        else:
            notes.append("no earnings to withdraw")
    if what in ("stake", "all"):
        node = protocol.nodes.get_node(me)
        if not node.registered:
            notes.append("not registered: no stake")
        elif not node.unbonding_since:
            notes.append("stake is bonded (run `operator unbond` first)")
        else:
            available = int(node.available_at)
            head = protocol.w3.eth.block_number
            if head + 1 < available:
                notes.append(f"stake is unbonding: {available - head - 1} more block(s) until block {available}")
            elif (open_ := protocol.nodes.open_assignments(me)):
                notes.append(f"still assigned to {open_} unsettled request(s) until block "
                             f"{protocol.nodes.assigned_until(me)}")
            else:
                r = protocol.nodes.withdraw_stake()
                done.append(f"stake {format_ether(int(node.stake))} (tx {Web3.to_hex(r['transactionHash'])})")
    if not done:
        raise ConfigError("nothing withdrawn: " + "; ".join(notes))
    return done, notes
