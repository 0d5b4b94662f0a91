"""One way to get a signing account: an encrypted keystore, a private key in an env var, or an anvil dev key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from verinfer.chain.devnet import dev_accounts
from verinfer.constants import DEVNET_CHAIN_ID
from verinfer.errors import ConfigError
from verinfer.node.keystore import KeystoreError, decrypt_file, keystore_address, read_password, unlock


class WatchOnly:
    """Stands in for an account in read-only flows (status): an address, no key, no password."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.key = b""

    def sign_transaction(self, *_: Any) -> Any:  # pragma: no cover - never called by read-only flows
        raise ConfigError("this command is read-only")


def load_signer(*, key: str | None = None, key_env: str | None = None, password_file: Path | None = None,
                dev_account: int | None = None, chain_id: int | None = None) -> LocalAccount:
    """Exactly one of keystore name, env var holding a private key, or anvil dev key index (devnet only)."""
    given = [n for n, v in (("--key", key), ("--key-env", key_env), ("--dev-account", dev_account)) if v is not None]
    if len(given) != 1:
        raise ConfigError("pass exactly one of --key NAME, --key-env VAR or --dev-account N to sign")
    if dev_account is not None:
        if chain_id != DEVNET_CHAIN_ID:
            raise ConfigError(f"--dev-account uses anvil's public development keys and is only allowed on the devnet "
                              f"(chain {DEVNET_CHAIN_ID}), this is chain {chain_id}")
        if not 0 <= dev_account <= 9:
            raise ConfigError(f"--dev-account must be 0..9, got {dev_account}")
        return dev_accounts(10)[dev_account]
    if key_env is not None:
        secret = os.environ.get(key_env, "").strip()
        if not secret:
            raise ConfigError(f"environment variable {key_env} is empty or unset")
        try:
            return Account.from_key(secret)
        except Exception:
            raise ConfigError(f"{key_env} does not hold a valid private key") from None
    assert key is not None
    return unlock(key, password_file)


def watch_only(key: str) -> WatchOnly:
    """The keystore's address without unlocking it (fails fast on a missing keystore)."""
    return WatchOnly(keystore_address(key))


def keystore_file_signer(path: Path, password_file: Path | None = None) -> LocalAccount:
    """Decrypt an encrypted keystore JSON at any path (the format `verinfer operator init` writes, or geth's/cast's).

    The password comes the usual way (`--password-file`, `VERINFER_PASSWORD`, then a prompt); a wrong one is a
    one-line error.
    """
    if not Path(path).is_file():
        raise KeystoreError(f"no keystore file {path}")
    return decrypt_file(Path(path), read_password(password_file))
