"""`verinfer devnet up|down|status`: a local anvil chain with the protocol deployed.

`up` starts anvil detached (pid, log and chain state under the state dir), deploys the protocol
unless the manifest there already points at live contracts on this chain, and prints it.
The chain persists across down/up (anvil --state, dumped periodically and on SIGTERM).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from verinfer.amounts import AmountError, parse_amount
from verinfer.constants import ETHER
from verinfer.errors import ConfigError

if TYPE_CHECKING:  # the chain stack (web3) is imported lazily: `verinfer --help` stays fast
    from verinfer.chain.devnet import Devnet
    from verinfer.chain.manifest import Manifest

app = typer.Typer(help="Local anvil devnet with the protocol deployed.", no_args_is_help=True)
console = Console()

INFO_FILE = "devnet.json"
DEFAULT_STATE_DIR = Path(".verinfer/devnet")


def _manifest_path(state_dir: Path) -> Path:
    env = os.environ.get("VERINFER_MANIFEST")
    return Path(env) if env else state_dir / "manifest.json"


def _info(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / INFO_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _print_manifest(m: Manifest, dev: Devnet, path: Path, deployed_now: bool) -> None:
    t = Table(title="verinfer devnet", show_header=False, title_justify="left")
    t.add_column(style="bold cyan")
    t.add_column()
    t.add_row("rpc", m.rpc_url)
    t.add_row("chain id", str(m.chain_id))
    t.add_row("block", str(dev.w3.eth.block_number))
    t.add_row("manifest", f"{path}" + ("  (deployed now)" if deployed_now else "  (existing deployment)"))
    t.add_row("deploy block", str(m.deploy_block))
    for name, addr in m.addresses.items():
        t.add_row(name, addr)
    t.add_row("state", str(dev.state_file))
    t.add_row("log", str(dev.log_file))
    console.print(t)
    a = Table(title="dev accounts (anvil test mnemonic — public keys, devnet only)", title_justify="left")
    a.add_column("#")
    a.add_column("address")
    a.add_column("balance (ETH)", justify="right")
    for i, acct in enumerate(dev.accounts):
        a.add_row(str(i) + (" owner" if i == 0 else ""), acct.address, f"{dev.w3.eth.get_balance(acct.address) / ETHER:,.2f}")
    console.print(a)


@app.command()
def up(
    port: Optional[int] = typer.Option(None, help="RPC port on 127.0.0.1 (default: the saved manifest's port, else 8545)."),
    block_time: float = typer.Option(1.0, help="Seconds per block (protocol windows are in blocks)."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard the saved chain and manifest; redeploy."),
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached; Ctrl-C stops (state is saved)."),
    state_dir: Path = typer.Option(DEFAULT_STATE_DIR, help="Where chain state, pid, log and manifest live."),
    accounts: int = typer.Option(10, help="Number of funded dev accounts."),
    fund: list[str] = typer.Option([], help="Extra address to fund with 10,000 ETH (repeatable)."),
    instant: bool = typer.Option(False, "--instant", help="Also mine a block per transaction (anvil mixed mining)."),
) -> None:
    """Start anvil (detached), deploy the protocol if needed, print the manifest."""
    from verinfer.chain.devnet import Devnet, DevnetError, set_balance

    if port is None:
        port = _saved_port(_manifest_path(state_dir)) or 8545
    dev = Devnet(port=port, state_dir=state_dir, block_time=block_time or None, persist=True,
                 n_accounts=accounts, mixed_mining=instant)
    running = dev.running_pid()
    if running is not None:
        info = _info(state_dir) or {}
        raise DevnetError(
            f"a devnet is already running from {state_dir} (pid {running}, {info.get('rpc_url', '?')}); "
            f"`verinfer devnet down` first"
        )
    manifest_path = _manifest_path(state_dir)
    if fresh:
        dev.state_file.unlink(missing_ok=True)
        manifest_path.unlink(missing_ok=True)
    dev.start(detach=not foreground)
    pid = dev.process.pid if dev.process else None
    try:
        (state_dir / INFO_FILE).write_text(json.dumps({
            "pid": pid, "port": port, "rpc_url": dev.rpc_url,
            "block_time": block_time, "started_at": time.time(), "foreground": foreground,
        }))
        manifest, deployed_now = _ensure_deployed(dev, manifest_path)
        for addr in fund:
            set_balance(dev.w3, addr, 10_000 * ETHER)
    except BaseException:
        dev.stop()
        raise
    _print_manifest(manifest, dev, manifest_path, deployed_now)
    if not foreground:
        console.print(f"devnet running in the background (pid {pid}); stop it with `verinfer devnet down`")
        return
    console.print("devnet running in the foreground; Ctrl-C to stop")
    try:
        assert dev.process is not None
        dev.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        dev.stop()
        (state_dir / INFO_FILE).unlink(missing_ok=True)
        console.print("devnet stopped (state saved)")


def _saved_port(manifest_path: Path) -> int | None:
    """The port a previous `devnet up` used (from the saved manifest), so `up` after `down` keeps it."""
    from urllib.parse import urlparse

    try:
        return urlparse(json.loads(manifest_path.read_text())["rpc_url"]).port
    except (OSError, ValueError, KeyError, TypeError):
        return None


@app.command()
def fund(
    address: str = typer.Argument(..., help="0x address to fund."),
    amount: str = typer.Option("100", "--amount", help="Ether to add."),
    state_dir: Path = typer.Option(DEFAULT_STATE_DIR, help="State dir of the running devnet."),
) -> None:
    """Add ether to any account on the running devnet (anvil_setBalance; devnet only)."""

    from web3 import Web3

    from verinfer.operator.funding import fund as fund_account

    try:
        wei = parse_amount(amount, "--amount", positive=True)
    except AmountError as exc:
        raise ConfigError(str(exc)) from None
    if not Web3.is_address(address):
        raise ConfigError(f"not a 0x address: {address!r}")
    info = _info(state_dir) or {}
    rpc = info.get("rpc_url") or (f"http://127.0.0.1:{_saved_port(_manifest_path(state_dir))}"
                                  if _saved_port(_manifest_path(state_dir)) else None)
    if rpc is None:
        raise ConfigError(f"no devnet running from {state_dir} (`verinfer devnet up` first)")
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 10}))
    try:
        _ = w3.eth.chain_id  # reachability probe
    except Exception:
        raise ConfigError(f"cannot reach the devnet at {rpc} (`verinfer devnet up` first)") from None
    new = fund_account(w3, address, wei)
    console.print(f"{Web3.to_checksum_address(address)} now holds {new / ETHER:,.4f} ETH")


def _ensure_deployed(dev: Devnet, manifest_path: Path) -> tuple[Manifest, bool]:
    """Reuse a manifest whose contracts are live on this chain; otherwise deploy and save one."""
    from web3.types import RPCEndpoint

    from verinfer.chain.deploy import deploy_protocol, is_deployed
    from verinfer.chain.manifest import Manifest

    if manifest_path.exists():
        try:
            existing = Manifest.load(manifest_path)
        except ConfigError:
            existing = None
        if existing is not None and is_deployed(dev.w3, existing):
            if existing.rpc_url != dev.rpc_url:
                existing = existing.model_copy(update={"rpc_url": dev.rpc_url})
                existing.save(manifest_path)
            return existing, False
    # Deploy with automine (seconds instead of one block time per tx), then restore interval mining
    # (anvil's evm_setIntervalMining takes whole seconds, so fractional block times deploy as they are).
    bt = dev.block_time or 0.0
    toggle = bool(bt) and not dev.mixed_mining and float(bt).is_integer()
    if toggle:
        dev.w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
    try:
        manifest = deploy_protocol(dev.w3, dev.accounts[0])
    finally:
        if toggle:
            dev.w3.provider.make_request(RPCEndpoint("evm_setIntervalMining"), [int(bt)])
    manifest.save(manifest_path)
    return manifest, True


@app.command()
def down(
    state_dir: Path = typer.Option(DEFAULT_STATE_DIR, help="State dir of the devnet to stop."),
) -> None:
    """Stop the background devnet (anvil writes its state on the way out)."""
    from verinfer.chain.devnet import Devnet, DevnetError, pid_alive, stop_pid

    dev = Devnet(state_dir=state_dir)
    pid = dev.running_pid()
    if pid is None:
        dev.pid_file.unlink(missing_ok=True)
        console.print(f"no devnet running from {state_dir}")
        return
    stop_pid(pid)
    if pid_alive(pid):
        raise DevnetError(f"anvil (pid {pid}) did not stop")
    dev.pid_file.unlink(missing_ok=True)
    (state_dir / INFO_FILE).unlink(missing_ok=True)
    console.print(f"devnet stopped (pid {pid}); state kept in {dev.state_file}")


@app.command()
def status(
    state_dir: Path = typer.Option(DEFAULT_STATE_DIR, help="State dir of the devnet."),
) -> None:
    """Is the devnet running, at which block, with which deployment."""
    from verinfer.chain.deploy import is_deployed
    from verinfer.chain.devnet import Devnet
    from verinfer.chain.manifest import Manifest

    dev = Devnet(state_dir=state_dir)
    pid = dev.running_pid()
    info = _info(state_dir) or {}
    t = Table(show_header=False, title="verinfer devnet status", title_justify="left")
    t.add_column(style="bold cyan")
    t.add_column()
    t.add_row("state dir", str(state_dir))
    t.add_row("running", f"yes (pid {pid})" if pid else "no")
    if pid and info.get("port"):
        dev.port = int(info["port"])
        t.add_row("rpc", dev.rpc_url)
        try:
            t.add_row("block", str(dev.w3.eth.block_number))
        except Exception:
            t.add_row("block", "RPC not answering")
    t.add_row("saved state", f"{dev.state_file} ({dev.state_file.stat().st_size:,} bytes)" if dev.state_file.exists() else "none")
    mpath = _manifest_path(state_dir)
    if mpath.exists():
        m = Manifest.load(mpath)
        live = pid is not None and is_deployed(dev.w3, m)
        t.add_row("manifest", f"{mpath} ({'live' if live else 'not reachable now'})")
        for name, addr in m.addresses.items():
            t.add_row(name, addr)
    else:
        t.add_row("manifest", "none")
    console.print(t)


@app.command()
def reset(
    state_dir: Path = typer.Option(DEFAULT_STATE_DIR, help="State dir to wipe (the devnet must be down)."),
) -> None:
    """Delete the saved chain state, manifest and log."""
    from verinfer.chain.devnet import Devnet, DevnetError

    dev = Devnet(state_dir=state_dir)
    if dev.running_pid() is not None:
        raise DevnetError("the devnet is running: `verinfer devnet down` first")
    if state_dir.exists():
        shutil.rmtree(state_dir)
    console.print(f"removed {state_dir}")
