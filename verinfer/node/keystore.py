"""Encrypted operator keys: the only place a node's private key ever touches disk.

Keys are eth-account scrypt keystore JSON files (`<home>/keys/<name>.json`, mode 0600) so any
Ethereum tool can read them, and a stolen file is useless without the password. The password
comes from `--password-file`, then `VERINFER_PASSWORD`, then an interactive prompt — never from a
plain command-line argument, which would leak into shell history and `ps`.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from verinfer.errors import ConfigError, VerinferError

PASSWORD_ENV = "VERINFER_PASSWORD"
HOME_ENV = "VERINFER_HOME"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeystoreError(VerinferError):
    """A keystore is missing, unreadable, already exists, or the password is wrong."""


def verinfer_home() -> Path:
    """Base directory for keys and devnet files (`VERINFER_HOME`, default `./.verinfer`)."""
    return Path(os.environ.get(HOME_ENV) or ".verinfer")


def keystore_path(name: str, home: Path | None = None) -> Path:
    """Where key `name` lives; rejects names that could escape the keys directory."""
    if not _NAME_RE.match(name or ""):
        raise ConfigError(f"invalid key name {name!r} (use letters, digits, '.', '_' or '-')")
    return (home or verinfer_home()) / "keys" / f"{name}.json"


def read_password(password_file: Path | None = None, *, confirm: bool = False) -> str:
    """Password from `--password-file`, else `VERINFER_PASSWORD`, else an interactive prompt."""
    if password_file is not None:
        try:
            text = Path(password_file).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read password file {password_file}: {exc.strerror}") from None
        pw = text.rstrip("\r\n")
        if not pw:
            raise ConfigError(f"password file {password_file} is empty")
        return pw
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if not sys.stdin.isatty():
        raise ConfigError(
            f"no password: pass --password-file, set {PASSWORD_ENV}, or run in a terminal to be prompted"
        )
    try:
        pw = getpass.getpass("Keystore password: ")
        if confirm and getpass.getpass("Repeat password: ") != pw:
            raise ConfigError("passwords do not match")
    except EOFError:
        raise ConfigError("no password entered") from None
    if not pw:
        raise ConfigError("empty password")
    return pw


def create_keystore(
    name: str,
    password: str,
    *,
    home: Path | None = None,
    private_key: str | bytes | None = None,
    force: bool = False,
    scrypt_n: int | None = None,
) -> tuple[str, Path]:
    """Create (or import) key `name`, encrypted with scrypt; returns (address, path).

    Refuses to overwrite an existing keystore unless `force`, since that would destroy the only
    copy of a staked key. `scrypt_n` lowers the work factor (tests only; default is eth-account's 2^18).
    """
    if not password:
        raise ConfigError("empty password")
    path = keystore_path(name, home)
    if path.exists() and not force:
        raise KeystoreError(f"keystore {path} already exists (use --force to overwrite)")
    if private_key is None:
        acct = Account.create()
    else:
        try:
            acct = Account.from_key(private_key)
        except Exception:  # eth-keys raises several types for malformed keys
            raise ConfigError("invalid private key (expected 32 bytes of hex)") from None
    data = Account.encrypt(acct.key, password, kdf="scrypt", iterations=scrypt_n)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path.parent, 0o700)
    except OSError:
        pass
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return acct.address, path


def keystore_address(name: str, home: Path | None = None) -> str:
    """The checksummed address stored in keystore `name`, without decrypting it."""
    data = _read(keystore_path(name, home))
    addr = data.get("address")
    if not isinstance(addr, str):
        raise KeystoreError(f"keystore {name!r} has no address field")
    from web3 import Web3

    return Web3.to_checksum_address(addr if addr.startswith("0x") else "0x" + addr)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeystoreError(f"no keystore {path} (create one with: verinfer operator init --name {path.stem})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise KeystoreError(f"cannot read keystore {path}: {exc}") from None
    if not isinstance(data, dict) or ("crypto" not in data and "Crypto" not in data):
        raise KeystoreError(f"{path} is not an encrypted keystore")
    return data


def load_account(name: str, password: str, home: Path | None = None) -> LocalAccount:
    """Decrypt key `name`; a wrong password is a one-line user error, not a traceback."""
    return decrypt_file(keystore_path(name, home), password, label=repr(name))


def decrypt_file(path: Path, password: str, *, label: str | None = None) -> LocalAccount:
    """Decrypt an encrypted keystore JSON at any path (ours, geth's or cast's: `crypto` or `Crypto`)."""
    data = _read(Path(path))
    what = label or str(path)
    try:
        key = Account.decrypt(data, password)
    except ValueError:
        raise KeystoreError(f"wrong password for keystore {what}") from None
    except Exception as exc:  # corrupted/unsupported keystore formats
        raise KeystoreError(f"cannot decrypt keystore {what}: {exc}") from None
    return Account.from_key(key)


def unlock(name: str, password_file: Path | None = None, home: Path | None = None) -> LocalAccount:
    """Read the password the usual way and decrypt key `name` (what the CLI calls)."""
    path = keystore_path(name, home)
    _read(path)  # fail on a missing keystore before prompting for a password
    return load_account(name, read_password(password_file), home)
