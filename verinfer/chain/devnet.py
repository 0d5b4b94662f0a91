"""A local anvil chain: the default place verinfer runs when no RPC URL is given.

anvil comes from npm (`@foundry-rs/anvil`, the linux binary inside the package), so `npm ci`
is the only install step. With `persist=True` the chain lives in `<state_dir>/state.json`
(anvil `--state`, dumped every few seconds and on SIGTERM), so `devnet down` / `devnet up` keeps
deployed contracts.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from verinfer.chain.errors import ChainError
from verinfer.constants import DEVNET_CHAIN_ID, ETHER

#: anvil's well-known development mnemonic (public: never use these keys on a real network).
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = DEVNET_CHAIN_ID
DEFAULT_STATE_DIR = Path(".verinfer/devnet")


class DevnetError(ChainError):
    """The local devnet could not be started/stopped."""


def repo_root() -> Path:
    """The checkout root: where pyproject.toml and node_modules live (editable install)."""
    return Path(__file__).resolve().parents[2]


def find_anvil() -> Path:
    """Locate the anvil binary: $VERINFER_ANVIL, node_modules (native binary first), then PATH."""
    env = os.environ.get("VERINFER_ANVIL")
    if env:
        if not Path(env).exists():
            raise DevnetError(f"VERINFER_ANVIL points at {env}, which does not exist")
        return Path(env)
    cwd = Path.cwd().resolve()
    roots = [repo_root(), cwd, *cwd.parents]
    for root in roots:
        native = root / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
        if native.exists():
            return native
        wrapper = root / "node_modules" / ".bin" / "anvil"
        if wrapper.exists():
            return wrapper
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise DevnetError("anvil not found: run `npm ci` in the verinfer repository root (installs @foundry-rs/anvil)")


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@functools.lru_cache(maxsize=4)
def _derive(n: int) -> tuple[str, ...]:
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex() for i in range(n)
    )


def dev_accounts(n: int = 10) -> list[LocalAccount]:
    """anvil's default accounts (index 0 = deployer/owner), as local signing accounts."""
    return [Account.from_key(k) for k in _derive(n)]


def set_balance(w3: Web3, address: str, wei: int) -> None:
    """Give `address` exactly `wei` (anvil_setBalance): devnet funding without a faucet transaction."""
    w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [Web3.to_checksum_address(address), hex(wei)])


def funded_account(w3: Web3, wei: int = 100 * ETHER) -> LocalAccount:
    """A brand-new random key holding `wei` on this devnet (isolates callers sharing one chain)."""
    acct = Account.from_key(secrets.token_bytes(32))
    set_balance(w3, acct.address, wei)
    return acct


def mine(w3: Web3, blocks: int = 1) -> int:
    """Mine `blocks` blocks now (anvil_mine), to close commit/reveal windows without waiting."""
    w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(blocks)])
    return w3.eth.block_number


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie we own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # reap if it is our own exited child
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return True
    return True


class Devnet:
    """One anvil process on 127.0.0.1, optionally persisted to `<state_dir>/state.json`."""

    def __init__(
        self,
        port: int = 8545,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        block_time: float | None = 1.0,
        persist: bool = True,
        *,
        n_accounts: int = 10,
        balance_ether: int = 10_000,
        state_interval: int = 2,
        host: str = "127.0.0.1",
        mixed_mining: bool = False,
    ) -> None:
        self.port = port
        self.host = host
        self.state_dir = Path(state_dir)
        self.block_time = block_time
        self.persist = persist
        self.n_accounts = n_accounts
        self.balance_ether = balance_ether
        self.state_interval = state_interval
        # Mixed mining: a block per `block_time` AND one per transaction (no waiting for receipts).
        self.mixed_mining = mixed_mining
        self.process: subprocess.Popen[bytes] | None = None
        self._w3: Web3 | None = None
        self._log: IO[bytes] | None = None

    # ---- paths --------------------------------------------------------------------------
    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "anvil.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "anvil.log"

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 30}))
        return self._w3

    @property
    def accounts(self) -> list[LocalAccount]:
        return dev_accounts(self.n_accounts)

    def command(self) -> list[str]:
        """The anvil command line this devnet runs."""
        cmd = [
            str(find_anvil()),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(ANVIL_CHAIN_ID),
            "--accounts", str(self.n_accounts),
            "--balance", str(self.balance_ether),
            "--mnemonic", ANVIL_MNEMONIC,
        ]
        if self.block_time:
            cmd += ["--block-time", f"{self.block_time:g}"]
            if self.mixed_mining:
                cmd.append("--mixed-mining")
        if self.persist:
            cmd += ["--state", str(self.state_file), "--state-interval", str(self.state_interval)]
        return cmd

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self, *, detach: bool = False, timeout: float = 20.0) -> "Devnet":
        """Start anvil and wait until it answers RPC. `detach` leaves it running after we exit;
        otherwise anvil is tied to the starting thread and gets SIGTERM if it dies (a crashed test
        session leaves no orphan chain), so start it from a thread that outlives it."""
        if port_in_use(self.port, self.host):
            raise DevnetError(
                f"port {self.port} is busy (another devnet or program is listening); "
                f"stop it (`verinfer devnet down`) or pick another port with --port"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_file, "ab")
        kwargs: dict[str, Any] = {"stdout": self._log, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}
        if detach:
            kwargs["start_new_session"] = True
        else:
            kwargs["preexec_fn"] = _die_with_parent
        self.process = subprocess.Popen(self.command(), **kwargs)
        if detach:
            self.pid_file.write_text(str(self.process.pid))
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DevnetError(f"anvil exited with code {self.process.returncode}: {self._log_tail()}")
            try:
                if self.w3.is_connected() and self.w3.eth.chain_id == ANVIL_CHAIN_ID:
                    return
            except Exception:
                pass
            time.sleep(0.05)
        self.stop()
        raise DevnetError(f"anvil did not answer on {self.rpc_url} within {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-3:]) or "(empty log)"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM anvil (it dumps state on exit), wait, SIGKILL if it hangs."""
        pid = self.process.pid if self.process is not None else self.running_pid()
        if pid is not None:
            stop_pid(pid, timeout)
        if self.process is not None:
            try:
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self.pid_file.unlink(missing_ok=True)

    def running_pid(self) -> int | None:
        """pid of a detached anvil recorded in the state dir, if it is still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def __enter__(self) -> "Devnet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec (Linux): ask for SIGTERM when the parent dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))
    except Exception:  # not Linux/glibc: best effort only
        pass


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """Terminate a process gracefully (state dump), escalating to SIGKILL after `timeout`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
