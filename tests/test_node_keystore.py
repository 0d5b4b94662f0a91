"""Encrypted keystores: round trip, file mode, wrong password, overwrite protection, password sources."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from verinfer.node import keystore
from verinfer.node.keystore import KeystoreError, create_keystore, keystore_address, load_account, read_password
from verinfer.errors import ConfigError


def test_round_trip_is_scrypt_and_private(tmp_path: Path) -> None:
    address, path = create_keystore("op", "pw-1", home=tmp_path, scrypt_n=2**12)
    assert path == tmp_path / "keys" / "op.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["crypto"]["kdf"] == "scrypt"
    assert address.lower().endswith(data["address"].lower()[-40:])
    assert load_account("op", "pw-1", home=tmp_path).address == address
    assert keystore_address("op", home=tmp_path) == address
    # the private key is not in the file in any obvious form
    acct = load_account("op", "pw-1", home=tmp_path)
    assert acct.key.hex() not in path.read_text()


def test_import_keeps_the_address(tmp_path: Path) -> None:
    acct = Account.create()
    address, _ = create_keystore("imp", "pw", home=tmp_path, private_key=acct.key, scrypt_n=2**12)
    assert address == acct.address
    with pytest.raises(ConfigError, match="invalid private key"):
        create_keystore("bad", "pw", home=tmp_path, private_key="0x1234", scrypt_n=2**12)


def test_wrong_password_is_a_one_line_error(tmp_path: Path) -> None:
    create_keystore("op", "right", home=tmp_path, scrypt_n=2**12)
    with pytest.raises(KeystoreError) as exc:
        load_account("op", "wrong", home=tmp_path)
    assert str(exc.value) == "wrong password for keystore 'op'"


def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    a1, _ = create_keystore("op", "pw", home=tmp_path, scrypt_n=2**12)
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore("op", "pw", home=tmp_path, scrypt_n=2**12)
    assert keystore_address("op", home=tmp_path) == a1
    a2, _ = create_keystore("op", "pw", home=tmp_path, scrypt_n=2**12, force=True)
    assert a2 != a1


def test_missing_keystore_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="no keystore"):
        load_account("ghost", "pw", home=tmp_path)
    for name in ("../etc/passwd", "", "a/b", ".hidden"):
        with pytest.raises(ConfigError, match="invalid key name"):
            keystore.keystore_path(name, tmp_path)


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "pw.txt"
    f.write_text("from-file\n")
    monkeypatch.setenv("VERINFER_PASSWORD", "from-env")
    assert read_password(f) == "from-file"  # the explicit file wins over the environment
    assert read_password(None) == "from-env"
    monkeypatch.delenv("VERINFER_PASSWORD")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ConfigError, match="no password"):
        read_password(None)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_password(tmp_path / "empty")
    with pytest.raises(ConfigError, match="cannot read password file"):
        read_password(tmp_path / "missing")


def test_home_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERINFER_HOME", str(tmp_path / "h"))
    _, path = create_keystore("envkey", "pw", scrypt_n=2**12)
    assert path == tmp_path / "h" / "keys" / "envkey.json"
