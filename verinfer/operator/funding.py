"""Fund an account on a running devnet (anvil_setBalance; refused on any other chain)."""

from __future__ import annotations

from web3 import Web3

from verinfer.chain.devnet import set_balance
from verinfer.constants import DEVNET_CHAIN_ID
from verinfer.errors import ConfigError


def fund(w3: Web3, address: str, wei: int) -> int:
    """Set `address`'s balance to its balance + `wei` on the devnet; returns the new balance."""
    chain_id = w3.eth.chain_id
    if chain_id != DEVNET_CHAIN_ID:
        raise ConfigError(f"funding is only possible on the devnet (chain {DEVNET_CHAIN_ID}); this is chain {chain_id}")
    if wei <= 0:
        raise ConfigError("the amount to fund must be positive")
    address = Web3.to_checksum_address(address)
    new = w3.eth.get_balance(address) + wei
    set_balance(w3, address, new)
    return new
