"""`verinfer operator …`: a node operator's key, stake, registration, unbonding and earnings.

Every command that spends gas unlocks the encrypted keystore (`--key`, password from
`--password-file` / `VERINFER_PASSWORD` / prompt) and shows a spinner while the transaction
is mined; every bad input is a one-line `error: …` before anything is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from verinfer.amounts import AmountError, format_ether, parse_amount
from verinfer.errors import ConfigError

app = typer.Typer(help="Operator key, stake and registration.", no_args_is_help=True)

DEFAULT_KEY = "operator"
FULL_MODEL_END = 0xFFFF
T = TypeVar("T")

err = Console(stderr=True)
out = Console()

RpcOpt = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL", help="JSON-RPC endpoint (default: the manifest's rpc_url).")
ManifestOpt = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST", help="Deployment manifest JSON.")
KeyOpt = typer.Option(DEFAULT_KEY, "--key", help="Keystore name under $VERINFER_HOME/keys/.")
PwOpt = typer.Option(None, "--password-file", help="File holding the keystore password.")


# --- parsing -----------------------------------------------------------------------------------


def parse_ether(value: str, what: str = "amount", *, positive: bool = True) -> int:
    """A CLI amount (ether by default, or with a unit) → wei, as a one-line ConfigError when unreadable."""
    try:
        return parse_amount(value, what, positive=positive)
    except AmountError as exc:
        raise ConfigError(str(exc)) from None


def parse_shard(text: str) -> tuple[str, int, int]:
    """`modelId:start:end` (end exclusive; `end` may be `full`)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--shards entry must be modelId:start:end, got {text!r}")
    model, a, b = parts
    try:
        start = int(a)
        end = FULL_MODEL_END if b in ("full", "end", "") else int(b)
    except ValueError:
        raise ConfigError(f"--shards layer range must be integers, got {a!r}:{b!r}") from None
    if not 0 <= start < end <= FULL_MODEL_END:
        raise ConfigError(f"--shards layer range [{start}, {end}) is empty or out of range")
    return model, start, end


# --- chain helpers ------------------------------------------------------------------------------


def _connect(rpc_url: Optional[str], manifest: Optional[Path], key: str, password_file: Optional[Path], *,
             unlock: bool = True) -> Any:
    """Protocol bound to the operator's key (unlocked) — or, for read-only commands, a watch-only view."""
    from eth_account.signers.local import LocalAccount

    from verinfer.chain.errors import RpcError
    from verinfer.chain.manifest import Manifest
    from verinfer.chain.protocol import Protocol
    from verinfer.node.keystore import unlock as unlock_key
    from verinfer.operator.accounts import WatchOnly, watch_only

    m = Manifest.load(manifest)
    account: LocalAccount | WatchOnly = watch_only(key)  # fails fast on a missing keystore, before any prompt
    if unlock:
        account = unlock_key(key, password_file)
    try:
        # a WatchOnly stands in for an account in read-only flows (it has an address and never signs)
        return Protocol.connect(rpc_url or m.rpc_url, manifest, account)  # type: ignore[arg-type]
    except RpcError:
        raise ConfigError(f"cannot reach RPC at {rpc_url or m.rpc_url}") from None


def _send(label: str, fn: Callable[[], T]) -> T:
    """Run a transaction with a spinner on stderr (keeps stdout clean for scripts)."""
    with err.status(f"[bold]{label}[/bold] — waiting for the transaction to be mined…", spinner="dots"):
        return fn()


# --- commands -----------------------------------------------------------------------------------


@app.command("init")
def init(
    name: str = typer.Option(DEFAULT_KEY, "--name", "--key", help="Keystore name."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing keystore (destroys the old key!)."),
    private_key_file: Optional[Path] = typer.Option(
        None, "--private-key-file", help="Import this hex private key instead of generating one."
    ),
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Create an encrypted operator key and print its address."""
    from verinfer.node import keystore

    path = keystore.keystore_path(name)
    if path.exists() and not force:
        raise keystore.KeystoreError(f"keystore {path} already exists (use --force to overwrite)")
    pk: Optional[str] = None
    if private_key_file is not None:
        try:
            pk = private_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {private_key_file}: {exc.strerror}") from None
    password = keystore.read_password(password_file, confirm=True)
    address, path = keystore.create_keystore(name, password, private_key=pk, force=force)
    err.print(f"created keystore {path} (scrypt, mode 0600)")
    print(address)


@app.command("address")
def address(key: str = KeyOpt) -> None:
    """Print the address of a keystore (no password needed)."""
    from verinfer.node import keystore

    print(keystore.keystore_address(key))


@app.command("register")
def register(
    stake: str = typer.Option(..., "--stake", help="Stake in ether, e.g. 1.5."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated model ids or names (full model)."),
    shards: Optional[list[str]] = typer.Option(None, "--shards", help="modelId:start:end layer range (repeatable)."),
    capacity: Optional[int] = typer.Option(None, "--capacity", help="In-flight committee seats (1..255; registry default 4)."),
    endpoint: str = typer.Option("http://127.0.0.1", "--endpoint", help="Informational public endpoint URL."),
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Stake and register the node for the given models / shards (and declare its capacity)."""
    from verinfer.operator import registration

    value = parse_ether(stake, "--stake")
    model_list = [m for m in (models or "").split(",") if m.strip()]
    shard_specs = [parse_shard(s) for s in (shards or [])]
    if not model_list and not shard_specs:
        raise ConfigError("pass --models and/or --shards (what will this node serve?)")
    if capacity is not None and not 1 <= capacity <= registration.MAX_CAPACITY:
        raise ConfigError(f"--capacity must be 1..{registration.MAX_CAPACITY}, got {capacity}")
    if not endpoint.strip():
        raise ConfigError("--endpoint must not be empty")
    p = _connect(rpc_url, manifest, key, password_file)
    entries = registration.shards_for(p, model_list, shard_specs)
    reg = _send("register", lambda: registration.register(p, value, entries, endpoint=endpoint, capacity=capacity))
    err.print(reg.describe(), soft_wrap=True)
    print(reg.txs[0])


@app.command("set-capacity")
def set_capacity(
    capacity: int = typer.Argument(..., help="In-flight committee seats, 1..255."),
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Declare how many requests this node serves at once (draws skip a node at capacity)."""
    from verinfer.operator import registration

    if not 1 <= capacity <= registration.MAX_CAPACITY:
        raise ConfigError(f"capacity must be 1..{registration.MAX_CAPACITY}, got {capacity}")
    p = _connect(rpc_url, manifest, key, password_file)
    print(_send("set capacity", lambda: registration.set_capacity(p, capacity)))


@app.command("top-up")
def top_up(
    amount: str = typer.Option(..., "--amount", help="Ether to add to the stake."),
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Add stake (not while unbonding; counts for draws from the next epoch)."""
    from verinfer.operator import registration

    value = parse_ether(amount, "--amount")
    p = _connect(rpc_url, manifest, key, password_file)
    tx = _send("top-up", lambda: registration.top_up(p, value))
    err.print(f"added {format_ether(value)}; stake is now {format_ether(p.nodes.stake_of(p.address))}")
    print(tx)


@app.command("unbond")
def unbond(
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Start unbonding: the node stops being drawn at once; stake is withdrawable after the delay."""
    from verinfer.operator import registration

    p = _connect(rpc_url, manifest, key, password_file)
    tx, at = _send("unbond", lambda: registration.unbond(p))
    err.print(f"unbonding started; stake withdrawable from block {at} once every assigned request settled")
    print(tx)


@app.command("withdraw")
def withdraw(
    what: str = typer.Option("all", "--what", help="stake | earnings | all"),
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Withdraw the stake (after the unbonding delay) and/or earnings from the market."""
    from verinfer.operator import registration

    if what not in ("stake", "earnings", "all"):
        raise ConfigError(f"--what must be stake, earnings or all, got {what!r}")
    p = _connect(rpc_url, manifest, key, password_file)
    done, notes = _send("withdraw", lambda: registration.withdraw(p, what))
    for line in done:
        print(f"withdrew {line}")
    for n in notes:
        err.print(n)


@app.command("fund")
def fund(
    amount: str = typer.Option(..., "--amount", help="Ether to add to the balance."),
    address_: Optional[str] = typer.Option(None, "--address", help="Account to fund (default: the --key's address)."),
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
) -> None:
    """DEVNET ONLY: add ether to an account on a running devnet (anvil_setBalance)."""
    from web3 import Web3

    from verinfer.chain.manifest import Manifest
    from verinfer.node import keystore
    from verinfer.operator.funding import fund as fund_account

    value = parse_ether(amount, "--amount")
    target = address_ or keystore.keystore_address(key)
    if not Web3.is_address(target):
        raise ConfigError(f"--address must be a 0x address, got {target!r}")
    m = Manifest.load(manifest)
    w3 = Web3(Web3.HTTPProvider(rpc_url or m.rpc_url, request_kwargs={"timeout": 10}))
    try:
        _ = w3.eth.chain_id  # reachability probe
    except Exception:
        raise ConfigError(f"cannot reach RPC at {rpc_url or m.rpc_url}") from None
    new = fund_account(w3, target, value)
    print(f"{Web3.to_checksum_address(target)} balance {format_ether(new)}")


@app.command("status")
def status(
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Balance, stake, capacity, unbonding, earnings and whether the node can be drawn — and if not, why."""
    import json

    from verinfer.operator.status import eligibility

    p = _connect(rpc_url, manifest, key, None, unlock=False)
    me = p.address
    node = p.nodes.get_node(me)
    e = eligibility(p, me)
    info: dict[str, Any] = {
        "address": me,
        "block": p.block_number(),
        "balance_wei": p.w3.eth.get_balance(me),
        "stake_wei": int(node.stake),
        "registered": bool(node.registered),
        "endpoint": node.endpoint,
        "capacity": int(node.capacity),
        "in_flight": int(node.in_flight),
        "unbonding_since": int(node.unbonding_since) or None,
        "stake_withdrawable_at": int(node.available_at) or None,
        "earnings_wei": p.market.withdrawable(me),
        "eligible": e.eligible,
        "reason": e.reason,
        "models": [m.__dict__ for m in e.models],
    }
    if as_json:
        print(json.dumps(info, indent=2))
        return
    t = Table(title=f"operator {me} at block {info['block']}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("address", me)
    t.add_row("balance", format_ether(info["balance_wei"]))
    t.add_row("stake", format_ether(info["stake_wei"]))
    t.add_row("registered", "yes" if info["registered"] else "no")
    t.add_row("capacity", f"{info['in_flight']}/{info['capacity']} seats in use" if info["registered"] else "-")
    t.add_row("unbonding", f"since block {info['unbonding_since']}; withdrawable from block {info['stake_withdrawable_at']}"
              if info["unbonding_since"] else "no")
    t.add_row("withdrawable earnings", format_ether(info["earnings_wei"]))
    t.add_row("eligible", "yes" + (f" ({e.reason})" if e.reason else "") if e.eligible else f"no: {e.reason}")
    for m in e.models:
        t.add_row(f"model {m.model_id[:10]}…", ("full model" if m.full_model else "layer range")
                  + f"; eligible: {'yes' if m.eligible else 'no: ' + m.reason}")
    out.print(t)
