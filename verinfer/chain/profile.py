"""Deployment profiles: a chain's block time and economics, written once, turned into `ProtocolParams`.

A profile (JSON or TOML, `deploy/profiles/*.json`) states durations in **seconds** and amounts with units
("0.1 ether", "2 gwei", or wei as an integer), because that is how an operator thinks about a chain;
the contracts count blocks and wei. `DeployProfile.params()` converts (windows round up to whole blocks)
and every value is checked against the contracts' hard bounds here, so a bad profile fails before the
first transaction instead of halfway through a deployment.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from web3 import Web3

from verinfer.amounts import parse_amount
from verinfer.chain.deploy import deploy_protocol
from verinfer.chain.errors import RpcError
from verinfer.chain.manifest import Manifest, ProtocolParams
from verinfer.chain.tx import sender_for
from verinfer.constants import ETHER, GWEI
from verinfer.errors import ConfigError

# The contracts' bounds (contracts/src/InferenceMarket.sol, NodeRegistry.sol), checked before sending anything.
MIN_WINDOW_FLOOR, MIN_WINDOW_CEIL = 10, 1_000
MIN_PROOF_BLOCKS, MAX_PROOF_BLOCKS = 10, 1_000
MIN_STAKE_FLOOR, MIN_STAKE_CEIL = ETHER // 100, 1_000 * ETHER
MIN_UNBONDING, MAX_UNBONDING = 10, 100_000
MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH = 5, 10_000
MAX_SLASH_BPS = 2_500
MAX_MIN_FEE = ETHER
MAX_CALLBACK_GAS_PRICE = 1_000 * GWEI

#: Gas ceiling of the whole deployment: 17.8 M measured on anvil (2026-12-02) for 6 contracts (StageCourt: 2.49 M) +
#: wiring + setters + the timelock and its handover (tests/test_deploy_hardhat.py prints the Hardhat figure), plus
#: ~12 % room; the balance check multiplies it by the fee per gas.
DEPLOY_GAS_BUDGET = 20_000_000

class GasPolicy(BaseModel):
    """How deployment transactions are priced: EIP-1559 tip and a ceiling that refuses to overpay."""

    model_config = ConfigDict(extra="forbid")

    #: Priority fee (tip); None = the node's eth_maxPriorityFeePerGas suggestion.
    priority_fee: int | None = None
    #: Refuse to deploy when the fee per gas the sender would pay (2 × base fee + tip) exceeds this; None = no cap.
    max_fee_per_gas: int | None = None

    @field_validator("priority_fee", "max_fee_per_gas", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> int | None:
        return None if v is None else parse_amount(v, default_unit="wei")


class DeployProfile(BaseModel):
    """One chain's deployment parameters; durations in seconds, amounts in wei or with a unit."""

    model_config = ConfigDict(extra="forbid")

    name: str
    #: Expected chain id; deploying to another chain is refused (None: any chain).
    chain_id: int | None = None
    block_time_seconds: float = Field(gt=0)
    commit_window_seconds: float = Field(gt=0)
    reveal_window_seconds: float = Field(gt=0)
    proof_window_seconds: float = Field(gt=0)
    epoch_seconds: float = Field(gt=0)
    unbonding_delay_seconds: float = Field(gt=0)
    min_stake: int
    slash_amount: int
    min_fee: int
    callback_gas_price: int
    #: TimelockController minDelay (seconds); must exceed the unbonding delay outside a devnet.
    timelock_min_delay_seconds: int = Field(default=0, ge=0)
    #: Attestation verifiers trusted for path (a) of the AttestationRegistry (setVerifier at deployment).
    attestation_verifiers: list[str] = Field(default_factory=list)
    gas: GasPolicy = Field(default_factory=GasPolicy)
    #: InferenceMarket request records: requests in flight at most, and the history its views serve (fixed).
    request_records: int = Field(default=1024, ge=1, le=1 << 20)

    @field_validator("min_stake", "slash_amount", "min_fee", "callback_gas_price", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> int:
        return parse_amount(v, default_unit="wei")

    @field_validator("attestation_verifiers")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for a in v:
            if not Web3.is_address(a):
                raise ValueError(f"{a!r} is not an address")
            out.append(Web3.to_checksum_address(a))
        return out

    def blocks(self, seconds: float) -> int:
        """Whole blocks covering `seconds` (rounded up: a window is never shorter than asked)."""
        return max(1, math.ceil(seconds / self.block_time_seconds - 1e-9))

    @model_validator(mode="after")
    def _bounds(self) -> "DeployProfile":
        checks = [
            ("commit_window_seconds", self.blocks(self.commit_window_seconds), MIN_WINDOW_FLOOR, MIN_WINDOW_CEIL, "blocks"),
            ("reveal_window_seconds", self.blocks(self.reveal_window_seconds), MIN_WINDOW_FLOOR, MIN_WINDOW_CEIL, "blocks"),
            ("proof_window_seconds", self.blocks(self.proof_window_seconds), MIN_PROOF_BLOCKS, MAX_PROOF_BLOCKS, "blocks"),
            ("epoch_seconds", self.blocks(self.epoch_seconds), MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH, "blocks"),
            ("unbonding_delay_seconds", self.blocks(self.unbonding_delay_seconds), MIN_UNBONDING, MAX_UNBONDING, "blocks"),
            ("min_stake", self.min_stake, MIN_STAKE_FLOOR, MIN_STAKE_CEIL, "wei"),
            ("min_fee", self.min_fee, 0, MAX_MIN_FEE, "wei"),
            ("callback_gas_price", self.callback_gas_price, 0, MAX_CALLBACK_GAS_PRICE, "wei"),
            ("slash_amount", self.slash_amount, 0, self.min_stake * MAX_SLASH_BPS // 10_000, "wei"),
        ]
        for field, value, lo, hi, unit in checks:
            if not lo <= value <= hi:
                extra = f" at {self.block_time_seconds} s per block" if unit == "blocks" else ""
                what = "min_stake / 4" if field == "slash_amount" else f"{hi} {unit}"
                raise ValueError(f"{field} gives {value} {unit}{extra}; the contracts accept {lo} .. {what}")
        if self.timelock_min_delay_seconds and self.timelock_min_delay_seconds <= self.unbonding_delay_seconds:
            raise ValueError("timelock_min_delay_seconds must exceed unbonding_delay_seconds (operators must be able "
                             "to leave before a parameter change takes effect)")
        return self

    def params(self) -> ProtocolParams:
        """The block- and wei-denominated parameters deploy_protocol applies."""
        return ProtocolParams(
            min_stake=self.min_stake,
            unbonding_delay=self.blocks(self.unbonding_delay_seconds),
            epoch_length=self.blocks(self.epoch_seconds),
            min_fee=self.min_fee,
            slash_amount=self.slash_amount,
            min_commit_blocks=self.blocks(self.commit_window_seconds),
            min_reveal_blocks=self.blocks(self.reveal_window_seconds),
            proof_blocks=self.blocks(self.proof_window_seconds),
            callback_gas_price=self.callback_gas_price,
            timelock_min_delay=self.timelock_min_delay_seconds,
            request_records=self.request_records,
        )


def load_profile(path: str | Path) -> DeployProfile:
    """Read a JSON or TOML profile; unreadable files and out-of-bounds values are one-line ConfigErrors."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read profile {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"profile {p} is not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {exc}") from None
    try:
        return DeployProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        raise ConfigError(f"profile {p}: {where + ': ' if where else ''}{msg}") from None


def connect(rpc_url: str, timeout: float = 30) -> Web3:
    """A Web3 on `rpc_url` that has answered once (unreachable → RpcError, one line)."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        _ = w3.eth.chain_id
    except Exception:
        raise RpcError(f"cannot reach RPC at {rpc_url}") from None
    return w3


def fee_per_gas(w3: Web3, policy: GasPolicy) -> int:
    """What the deployer's TxSender will offer per gas under `policy` (the same formula as TxSender)."""
    block = w3.eth.get_block("latest")
    base = block.get("baseFeePerGas")
    if base is None:
        return int(w3.eth.gas_price)
    tip = policy.priority_fee if policy.priority_fee is not None else int(w3.eth.max_priority_fee)
    return 2 * int(base) + tip


def deploy_with_profile(w3: Web3, deployer: LocalAccount, profile: DeployProfile) -> Manifest:
    """Check chain id, gas ceiling and balance, then deploy_protocol with the profile's parameters."""
    chain_id = w3.eth.chain_id
    if profile.chain_id is not None and profile.chain_id != chain_id:
        raise ConfigError(f"profile {profile.name!r} is for chain {profile.chain_id}, the RPC is chain {chain_id}")
    price = fee_per_gas(w3, profile.gas)
    cap = profile.gas.max_fee_per_gas
    if cap is not None and price > cap:
        raise ConfigError(f"fee per gas {price / GWEI:.3f} gwei is above the profile's max_fee_per_gas "
                          f"{cap / GWEI:.3f} gwei: wait for lower fees or raise the cap")
    need = DEPLOY_GAS_BUDGET * price
    have = w3.eth.get_balance(deployer.address)
    if have < need:
        raise ConfigError(f"insufficient funds: deployer {deployer.address} holds {have / ETHER:.6f} ETH, the deployment "
                          f"needs up to {need / ETHER:.6f} ETH ({DEPLOY_GAS_BUDGET:,} gas at {price / GWEI:.3f} gwei)")
    sender = sender_for(w3, deployer)
    sender.priority_fee = profile.gas.priority_fee
    return deploy_protocol(w3, deployer, profile.params(), attestation_verifiers=profile.attestation_verifiers)


#: The devnet parameters as a profile (= ProtocolParams() at 1 s blocks; deploy/profiles/devnet.json holds the same).
DEVNET_PROFILE = DeployProfile(
    name="devnet", chain_id=None, block_time_seconds=1, commit_window_seconds=10, reveal_window_seconds=10,
    proof_window_seconds=20, epoch_seconds=20, unbonding_delay_seconds=20, min_stake=ETHER, slash_amount=ETHER // 10,
    min_fee=ETHER // 1000, callback_gas_price=2 * GWEI,
)
