"""`verinfer operator …` as a user runs it: real subprocesses against the session anvil.

Happy paths: init → register → status → top-up → unbond → withdraw (stake after the delay).
Bad input: every mistake is exactly one `error: …` line on stderr, exit code 1, no traceback.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from verinfer.chain.devnet import mine
from verinfer.chain.protocol import ModelInput, Protocol
from verinfer.constants import ETHER
from verinfer.inference import runtime
from verinfer.models import spec as model_spec
from verinfer.node.keystore import create_keystore

PASSWORD = "operator test password"
#: this checkout's CLI (an installed `verinfer` script may point at another checkout)
VERINFER = [sys.executable, "-m", "verinfer.cli"]


def run_cli(*args: str, home: Path, password: str | None = PASSWORD, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, VERINFER_HOME=str(home), **env)
    e.pop("VERINFER_PASSWORD", None)
    if password is not None:
        e["VERINFER_PASSWORD"] = password
    return subprocess.run([*VERINFER, *args], capture_output=True, text=True, env=e, stdin=subprocess.DEVNULL, timeout=120)


def run_inproc(*args: str, home: Path, password: str | None = PASSWORD) -> subprocess.CompletedProcess[str]:
    """The same entry point (`verinfer.cli.main`) called in this process: no interpreter start-up cost.

    Used for the long tail of bad-input cases; representative ones also run as real subprocesses."""
    import contextlib
    import io

    from verinfer import cli

    saved = {k: os.environ.get(k) for k in ("VERINFER_HOME", "VERINFER_PASSWORD")}
    os.environ["VERINFER_HOME"] = str(home)
    os.environ.pop("VERINFER_PASSWORD", None)
    if password is not None:
        os.environ["VERINFER_PASSWORD"] = password
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["verinfer", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old_argv
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def model_name(w3: Web3, protocol: Protocol) -> str:
    """A freshly published digits-mlp under a unique name (resolvable by name from the CLI)."""
    spec = model_spec.load_builtin("digits-mlp")
    name = f"op-digits-{uuid.uuid4().hex[:8]}"
    protocol.models.register_model(
        ModelInput(name=name, weights_cid="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
                   commitment=runtime.commitment(spec), num_layers=spec.num_layers,
                   input_bits=spec.input_bits, output_bits=spec.output_bits)
    )
    return name


@pytest.fixture
def funded_key(tmp_path: Path, w3: Web3) -> tuple[Path, str]:
    """A keystore (fast scrypt) for a fresh key holding 10 ETH; returns (home, address)."""
    acct = Account.from_key(secrets.token_bytes(32))
    w3.provider.make_request("anvil_setBalance", [acct.address, hex(10 * ETHER)])
    home = tmp_path / "home"
    create_keystore("op", PASSWORD, home=home, private_key=acct.key, scrypt_n=2**14)
    return home, acct.address


def chain_args(w3: Web3, manifest: Path) -> list[str]:
    return ["--rpc-url", str(w3.provider.endpoint_uri), "--manifest", str(manifest)]


def test_init_creates_a_private_keystore_and_refuses_to_overwrite(tmp_path: Path) -> None:
    res = run_cli("operator", "init", "--name", "fresh", home=tmp_path)
    assert res.returncode == 0, res.stderr
    address = res.stdout.strip()
    assert Web3.is_checksum_address(address)
    path = tmp_path / "keys" / "fresh.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"
    again = run_cli("operator", "init", "--name", "fresh", home=tmp_path)
    assert_one_line_error(again, "already exists", "--force")
    assert run_cli("operator", "address", "--key", "fresh", home=tmp_path).stdout.strip() == address
    # password from a file, no env: works too
    pw = tmp_path / "pw"
    pw.write_text("file password\n")
    res = run_cli("operator", "init", "--name", "viafile", "--password-file", str(pw), home=tmp_path, password=None)
    assert res.returncode == 0, res.stderr
    # no password source at all and no terminal: one-line error, nothing written
    res = run_cli("operator", "init", "--name", "nopw", home=tmp_path, password=None)
    assert_one_line_error(res, "no password")
    assert not (tmp_path / "keys" / "nopw.json").exists()


def test_register_status_topup_unbond_withdraw(w3: Web3, protocol_manifest_path: Path, model_name: str,
                                               funded_key: tuple[Path, str]) -> None:
    home, address = funded_key
    c = chain_args(w3, protocol_manifest_path)

    st = json.loads(run_inproc("operator", "status", "--key", "op", "--json", *c, home=home).stdout)
    assert st["registered"] is False and st["eligible"] is False and "not registered" in st["reason"]

    epoch = 20
    _register_and_check_snapshot(w3, home, address, model_name, c, epoch)
    mine(w3, epoch - w3.eth.block_number % epoch)
    st = json.loads(run_inproc("operator", "status", "--key", "op", "--json", *c, home=home).stdout)
    assert st["eligible"] is True and st["reason"] == ""
    _topup_unbond_withdraw(w3, home, address, model_name, c)


def _register_and_check_snapshot(w3: Web3, home: Path, address: str, model_name: str, c: list[str], epoch: int) -> None:
    res = run_cli("operator", "register", "--key", "op", "--stake", "1.5", "--models", model_name, "--capacity", "8", *c,
                  home=home)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("0x")
    assert "1 full model(s), capacity 8" in res.stderr

    st = json.loads(run_cli("operator", "status", "--key", "op", "--json", *c, home=home, password=None).stdout)
    assert st["address"] == address
    assert st["registered"] is True and st["capacity"] == 8
    assert st["stake_wei"] == 15 * ETHER // 10
    # V2: stake counts for draws from the next epoch's snapshot, and status says so. The session chain mines a
    # block a second, so on a loaded box the epoch may have turned while the two CLI processes ran.
    registered_at = w3.eth.get_transaction_receipt(res.stdout.strip().split()[0])["blockNumber"]
    if w3.eth.block_number // epoch == registered_at // epoch:
        assert st["eligible"] is False and "from epoch" in st["reason"]
    else:
        assert st["eligible"] is True or "from epoch" in st["reason"]


def _topup_unbond_withdraw(w3: Web3, home: Path, address: str, model_name: str, c: list[str]) -> None:
    st = json.loads(run_inproc("operator", "status", "--key", "op", "--json", *c, home=home).stdout)
    assert st["unbonding_since"] is None
    assert st["balance_wei"] < 10 * ETHER - st["stake_wei"] + 1  # stake + gas left the wallet
    table = run_cli("operator", "status", "--key", "op", *c, home=home, password=None)
    assert table.returncode == 0 and "1.5 ETH" in table.stdout and "eligible: yes" in table.stdout

    res = run_inproc("operator", "fund", "--key", "op", "--amount", "2", *c, home=home)
    assert res.returncode == 0 and "balance" in res.stdout, res.stderr

    res = run_cli("operator", "top-up", "--key", "op", "--amount", "0.25", *c, home=home)
    assert res.returncode == 0, res.stderr
    st = json.loads(run_inproc("operator", "status", "--key", "op", "--json", *c, home=home).stdout)
    assert st["stake_wei"] == 175 * ETHER // 100

    again = run_inproc("operator", "register", "--key", "op", "--stake", "1", "--models", model_name, *c, home=home)
    assert_one_line_error(again, "already registered")
    assert_one_line_error(run_inproc("operator", "withdraw", "--key", "op", "--what", "stake", *c, home=home), "bonded")

    res = run_cli("operator", "unbond", "--key", "op", *c, home=home)
    assert res.returncode == 0, res.stderr
    st = json.loads(run_inproc("operator", "status", "--key", "op", "--json", *c, home=home).stdout)
    assert st["unbonding_since"] is not None
    assert st["eligible"] is False and "unbonding since block" in st["reason"]
    assert_one_line_error(run_inproc("operator", "top-up", "--key", "op", "--amount", "1", *c, home=home), "unbonding")
    early = run_cli("operator", "withdraw", "--key", "op", *c, home=home)
    assert_one_line_error(early, "more block(s) until block", "no earnings")

    mine(w3, st["stake_withdrawable_at"] - w3.eth.block_number)
    before = w3.eth.get_balance(address)
    res = run_cli("operator", "withdraw", "--key", "op", "--what", "stake", *c, home=home)
    assert res.returncode == 0, res.stderr
    assert "withdrew stake 1.75 ETH" in res.stdout
    assert w3.eth.get_balance(address) > before + 17 * ETHER // 10
    st = json.loads(run_inproc("operator", "status", "--key", "op", "--json", *c, home=home).stdout)
    assert st["registered"] is False and st["stake_wei"] == 0


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--stake", "abc", "--models", "m"], ["--stake", "decimal"]),
        (["--stake", "-1", "--models", "m"], ["positive"]),
        (["--stake", "nan", "--models", "m"], ["finite"]),
        (["--stake", "0.0000000000000000001", "--models", "m"], ["18 decimals"]),
        (["--stake", "1"], ["--models"]),
        (["--stake", "1", "--shards", "nonsense"], ["modelId:start:end"]),
        (["--stake", "1", "--shards", "m:3:1"], ["empty or out of range"]),
    ],
)
def test_register_rejects_bad_input_before_touching_the_chain(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    create_keystore("op", PASSWORD, home=tmp_path, scrypt_n=2**12)
    res = run_inproc("operator", "register", "--key", "op", *args, "--rpc-url", "http://127.0.0.1:9", home=tmp_path)
    assert_one_line_error(res, *needles)


def test_bad_amount_as_a_real_subprocess(tmp_path: Path) -> None:
    create_keystore("op", PASSWORD, home=tmp_path, scrypt_n=2**12)
    res = run_cli("operator", "top-up", "--key", "op", "--amount", "1.5.2", "--rpc-url", "http://127.0.0.1:9", home=tmp_path)
    assert_one_line_error(res, "--amount", "decimal")


def test_chain_side_bad_input(w3: Web3, protocol_manifest_path: Path, funded_key: tuple[Path, str], model_name: str) -> None:
    home, _ = funded_key
    c = chain_args(w3, protocol_manifest_path)
    reg = ["operator", "register", "--key", "op"]
    assert_one_line_error(run_inproc(*reg, "--stake", "1", "--models", "0x1234", *c, home=home), "64 hex digits")
    assert_one_line_error(run_inproc(*reg, "--stake", "1", "--models", "0x" + "ab" * 32, *c, home=home), "not registered")
    assert_one_line_error(run_inproc(*reg, "--stake", "1", "--models", model_name, "--capacity", "0", *c, home=home),
                          "--capacity")
    assert_one_line_error(run_inproc(*reg, "--stake", "1", "--models", "no-such-model-x", *c, home=home), "no registered model")
    assert_one_line_error(run_inproc(*reg, "--stake", "0.5", "--models", model_name, *c, home=home), "below the minimum stake")
    assert_one_line_error(run_inproc(*reg, "--stake", "50", "--models", model_name, *c, home=home), "cannot cover")
    assert_one_line_error(run_cli(*reg, "--stake", "1", "--models", model_name, *c, home=home, password="nope"), "wrong password")
    assert_one_line_error(run_inproc("operator", "status", "--key", "ghost", *c, home=home), "no keystore")
    assert_one_line_error(
        run_inproc("operator", "status", "--key", "op", "--rpc-url", "http://127.0.0.1:9", "--manifest", str(protocol_manifest_path), home=home),
        "cannot reach RPC",
    )
    assert_one_line_error(run_inproc("operator", "status", "--key", "op", "--manifest", str(home / "nope.json"), home=home), "no deployment manifest")
    assert_one_line_error(run_inproc("operator", "withdraw", "--key", "op", "--what", "everything", *c, home=home), "--what")
    assert_one_line_error(run_inproc("operator", "unbond", "--key", "op", *c, home=home), "not registered")


def test_node_run_rejects_bad_flags(tmp_path: Path, protocol_manifest_path: Path) -> None:
    create_keystore("op", PASSWORD, home=tmp_path, scrypt_n=2**12)
    base = ["node", "run", "--key", "op", "--manifest", str(protocol_manifest_path)]
    assert_one_line_error(run_inproc(*base, "--fault", "explode", home=tmp_path), "unknown --fault")
    assert_one_line_error(run_inproc(*base, "--poll-interval", "0", home=tmp_path), "--poll-interval")
    assert_one_line_error(run_inproc(*base, "--withdraw-threshold", "lots", home=tmp_path), "--withdraw-threshold")
    assert_one_line_error(run_cli(*base, home=tmp_path, password="wrong"), "wrong password")
    assert_one_line_error(run_inproc("node", "run", "--key", "ghost", "--manifest", str(protocol_manifest_path), home=tmp_path), "no keystore")
