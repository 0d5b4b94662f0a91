"""`verinfer operator …`: a node operator's key, stake, registration, unbonding and earnings.

Every command that spends gas unlocks the encrypted keystore (`--key`, password from
`--password-file` / `VERINFER_PASSWORD` / prompt) and shows a spinner while the transaction
is mined; every bad input is a one-line `error: …` before anything is sent.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from verinfer.errors import ConfigError, VerinferError

app = typer.Typer(help="Operator key, stake and registration.", no_args_is_help=True)

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_KEY = "operator"
FULL_MODEL_END = 0xFFFF
TEE_TYPES = {0: "none", 1: "SGX", 2: "TDX", 3: "SEV-SNP", 255: "MOCK"}
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
T = TypeVar("T")

err = Console(stderr=True)
out = Console()

RpcOpt = typer.Option(DEFAULT_RPC, "--rpc-url", envvar="VERINFER_RPC_URL", help="JSON-RPC endpoint.")
ManifestOpt = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST", help="Deployment manifest JSON.")
KeyOpt = typer.Option(DEFAULT_KEY, "--key", help="Keystore name under $VERINFER_HOME/keys/.")
PwOpt = typer.Option(None, "--password-file", help="File holding the keystore password.")


# --- parsing -----------------------------------------------------------------------------------


def parse_ether(value: str, what: str = "amount", *, positive: bool = True) -> int:
    """Decimal ether → wei; rejects negatives, NaN, and more than 18 decimals (no silent rounding)."""
    try:
        d = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise ConfigError(f"{what} must be a decimal amount in ether like 1.5, got {value!r}") from None
    if not d.is_finite():
        raise ConfigError(f"{what} must be a finite amount, got {value!r}")
    wei = d * 10**18
    if wei != wei.to_integral_value():
        raise ConfigError(f"{what} has more than 18 decimals: {value!r}")
    if wei < 0 or (positive and wei == 0):
        raise ConfigError(f"{what} must be {'positive' if positive else 'non-negative'}, got {value!r}")
    return int(wei)


def fmt_eth(wei: int) -> str:
    """wei → '1.5 ETH' without float rounding."""
    s = format(Decimal(wei) / Decimal(10**18), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return f"{s} ETH"


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


def _connect(rpc_url: str, manifest: Optional[Path], key: str, password_file: Optional[Path], *, unlock: bool = True) -> Any:
    """NodeChain for the operator's key (unlocked) — or, for read-only commands, a watch-only view."""
    from verinfer.chain.manifest import Manifest
    from verinfer.node import keystore
    from verinfer.node.chainio import NodeChain

    m = Manifest.load(manifest)
    address = keystore.keystore_address(key)  # fails fast on a missing keystore, before any prompt
    account = keystore.unlock(key, password_file) if unlock else _WatchOnly(address)
    chain = NodeChain.connect(rpc_url, m, account)
    try:
        chain_id = chain.chain_id()
    except VerinferError:
        raise ConfigError(f"cannot reach RPC at {rpc_url}") from None
    if chain_id != m.chain_id:
        raise ConfigError(f"RPC {rpc_url} is chain {chain_id} but the manifest is for chain {m.chain_id}")
    if not chain.read(lambda: chain.w3.eth.get_code(m.address("NodeRegistry"))):
        raise ConfigError(f"no NodeRegistry at {m.address('NodeRegistry')} on {rpc_url} (stale manifest?)")
    return chain


class _WatchOnly:
    """Stands in for an account in read-only commands (status): an address, no key, no password."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.key = b""

    def sign_transaction(self, *_: Any) -> Any:  # pragma: no cover - never called by read-only commands
        raise ConfigError("this command is read-only")


def _send(label: str, fn: Callable[[], T]) -> T:
    """Run a transaction with a spinner on stderr (keeps stdout clean for scripts)."""
    with err.status(f"[bold]{label}[/bold] — waiting for the transaction to be mined…", spinner="dots"):
        return fn()


def resolve_model(chain: Any, text: str) -> bytes:
    """A model id (0x + 64 hex) that exists, or a model name → its latest non-deprecated version."""
    text = text.strip()
    models = chain.p.models
    if _HEX32.match(text):
        mid = bytes.fromhex(text[2:])
        if not chain.read(lambda: models.exists(mid)):
            raise ConfigError(f"unknown model id {text}")
        return mid
    if text.startswith("0x"):
        raise ConfigError(f"model id must be 0x followed by 64 hex digits, got {text!r}")
    if not re.match(r"^[A-Za-z0-9_.-]{1,128}$", text):
        raise ConfigError(f"invalid model id or name {text!r}")
    count = int(chain.read(models.model_count))
    best: dict[str, tuple[int, bytes]] = {}
    for i in range(count):
        mid = chain.read(lambda: models.model_id_at(i))
        m = chain.read(lambda: models.get_model(mid))
        if m.name == text and not m.deprecated:
            if m.publisher not in best or m.version > best[m.publisher][0]:
                best[m.publisher] = (int(m.version), mid)
    if not best:
        raise ConfigError(f"no registered model named {text!r} (pass its 0x model id)")
    if len(best) > 1:
        raise ConfigError(f"model name {text!r} is published by {len(best)} publishers; pass the 0x model id")
    return next(iter(best.values()))[1]


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
    endpoint: str = typer.Option("http://127.0.0.1", "--endpoint", help="Informational public endpoint URL."),
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Stake and register the node for the given models / shards."""
    from verinfer.chain.protocol import ModelShard

    value = parse_ether(stake, "--stake")
    model_list = [m for m in (models or "").split(",") if m.strip()]
    shard_specs = [parse_shard(s) for s in (shards or [])]
    if not model_list and not shard_specs:
        raise ConfigError("pass --models and/or --shards (what will this node serve?)")
    if not endpoint.strip():
        raise ConfigError("--endpoint must not be empty")
    chain = _connect(rpc_url, manifest, key, password_file)
    entries = [ModelShard(resolve_model(chain, m)) for m in model_list]
    entries += [ModelShard(resolve_model(chain, m), a, b) for m, a, b in shard_specs]
    nodes = chain.p.nodes
    node = chain.read(lambda: nodes.get_node(chain.address))
    if node.registered:
        raise ConfigError(f"{chain.address} is already registered (use `operator top-up` to add stake)")
    min_stake = int(chain.read(nodes.min_stake))
    if value < min_stake:
        raise ConfigError(f"--stake {fmt_eth(value)} is below the minimum stake {fmt_eth(min_stake)}")
    balance = chain.balance()
    if balance < value:
        raise ConfigError(f"balance {fmt_eth(balance)} of {chain.address} cannot cover --stake {fmt_eth(value)}")
    receipt = _send("register", lambda: nodes.register(endpoint, entries, value))
    err.print(f"registered {chain.address} with stake {fmt_eth(value)} for {len(entries)} shard(s)")
    print(_tx_hex(receipt))


def _tx_hex(receipt: Any) -> str:
    from web3 import Web3

    return Web3.to_hex(receipt["transactionHash"])


@app.command("top-up")
def top_up(
    amount: str = typer.Option(..., "--amount", help="Ether to add to the stake."),
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Add stake (not while unbonding)."""
    value = parse_ether(amount, "--amount")
    chain = _connect(rpc_url, manifest, key, password_file)
    nodes = chain.p.nodes
    node = chain.read(lambda: nodes.get_node(chain.address))
    if not node.registered:
        raise ConfigError(f"{chain.address} is not registered (run `operator register` first)")
    if node.unbonding_since:
        raise ConfigError(f"{chain.address} is unbonding; stake cannot be added")
    if chain.balance() < value:
        raise ConfigError(f"balance {fmt_eth(chain.balance())} cannot cover --amount {fmt_eth(value)}")
    receipt = _send("top-up", lambda: nodes.top_up(value))
    stake = int(chain.read(lambda: nodes.stake_of(chain.address)))
    err.print(f"added {fmt_eth(value)}; stake is now {fmt_eth(stake)}")
    print(_tx_hex(receipt))


@app.command("unbond")
def unbond(
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Start unbonding: the node stops being eligible; stake is withdrawable after the delay."""
    chain = _connect(rpc_url, manifest, key, password_file)
    nodes = chain.p.nodes
    node = chain.read(lambda: nodes.get_node(chain.address))
    if not node.registered:
        raise ConfigError(f"{chain.address} is not registered")
    if node.unbonding_since:
        raise ConfigError(f"{chain.address} is already unbonding since block {node.unbonding_since}")
    receipt = _send("unbond", nodes.request_unbond)
    delay = int(chain.read(nodes.unbonding_delay))
    at = int(receipt["blockNumber"])
    err.print(f"unbonding started at block {at}; stake withdrawable from block {at + delay}")
    print(_tx_hex(receipt))


@app.command("withdraw")
def withdraw(
    what: str = typer.Option("all", "--what", help="stake | earnings | all"),
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Withdraw the stake (after the unbonding delay) and/or earnings from the market."""
    if what not in ("stake", "earnings", "all"):
        raise ConfigError(f"--what must be stake, earnings or all, got {what!r}")
    chain = _connect(rpc_url, manifest, key, password_file)
    nodes = chain.p.nodes
    done: list[str] = []
    notes: list[str] = []
    if what in ("earnings", "all"):
        earned = chain.withdrawable()
        if earned > 0:
            r = _send("withdraw earnings", chain.p.market.withdraw)
            done.append(f"earnings {fmt_eth(earned)} (tx {_tx_hex(r)})")
        else:
            notes.append("no earnings to withdraw")
    if what in ("stake", "all"):
        node = chain.read(lambda: nodes.get_node(chain.address))
        if not node.registered:
            notes.append("not registered: no stake")
        elif not node.unbonding_since:
            notes.append("stake is bonded (run `operator unbond` first)")
        else:
            delay = int(chain.read(nodes.unbonding_delay))
            head = chain.block_number()
            available = int(node.unbonding_since) + delay
            if head + 1 < available:  # the withdraw tx lands in block head+1 at the earliest
                notes.append(f"stake is unbonding: {available - head - 1} more block(s) until block {available}")
            else:
                r = _send("withdraw stake", nodes.withdraw_stake)
                done.append(f"stake {fmt_eth(int(node.stake))} (tx {_tx_hex(r)})")
    if not done:
        raise ConfigError("nothing withdrawn: " + "; ".join(notes))
    for line in done:
        print(f"withdrew {line}")
    for n in notes:
        err.print(n)


@app.command("status")
def status(
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Address, balance, stake, registration, unbonding, attestation, earnings and eligibility (no password needed)."""
    import json

    from web3 import Web3

    chain = _connect(rpc_url, manifest, key, None, unlock=False)
    nodes = chain.p.nodes
    node = chain.read(lambda: nodes.get_node(chain.address))
    head = chain.block_number()
    delay = int(chain.read(nodes.unbonding_delay))
    att = chain.read(lambda: nodes.get_attestation(chain.address))
    shards = chain.read(lambda: nodes.get_shards(chain.address)) if node.registered else []
    eligible: dict[str, bool] = {}
    for sh in shards:
        mid_hex = Web3.to_hex(sh.model_id)
        if mid_hex not in eligible:
            model = chain.read(lambda: chain.p.models.get_model(sh.model_id))
            eligible[mid_hex] = bool(chain.read(lambda: nodes.is_eligible(chain.address, sh.model_id, model.requires_tee)))
    since = int(node.unbonding_since)
    info: dict[str, Any] = {
        "address": chain.address,
        "block": head,
        "balance_wei": chain.balance(),
        "stake_wei": int(node.stake),
        "registered": bool(node.registered),
        "endpoint": node.endpoint,
        "unbonding_since": since or None,
        "stake_withdrawable_at": (since + delay) if since else None,
        "attestation": {
            "tee": TEE_TYPES.get(int(att.tee_type), str(att.tee_type)),
            "expires_at": int(att.expires_at) or None,
            "valid": int(att.tee_type) != 0 and int(att.expires_at) > head,
        },
        "earnings_wei": chain.withdrawable(),
        "shards": [
            {"model_id": Web3.to_hex(sh.model_id), "layers": [int(sh.layer_start), int(sh.layer_end)]} for sh in shards
        ],
        "eligible": eligible,
    }
    if as_json:
        print(json.dumps(info, indent=2))
        return
    t = Table(title=f"operator {chain.address} at block {head}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("address", chain.address)
    t.add_row("balance", fmt_eth(info["balance_wei"]))
    t.add_row("stake", fmt_eth(info["stake_wei"]))
    t.add_row("registered", "yes" if info["registered"] else "no")
    if since:
        left = max(0, since + delay - head)
        t.add_row("unbonding", f"since block {since}; withdrawable at block {since + delay} ({left} block(s) left)")
    else:
        t.add_row("unbonding", "no")
    a = info["attestation"]
    t.add_row(
        "attestation",
        "none" if a["tee"] == "none" else f"{a['tee']}, expires at block {a['expires_at']} ({'valid' if a['valid'] else 'EXPIRED'})",
    )
    t.add_row("withdrawable earnings", fmt_eth(info["earnings_wei"]))
    for sh in info["shards"]:
        lo, hi = sh["layers"]
        rng = "full model" if (lo, hi) == (0, FULL_MODEL_END) else f"layers [{lo}, {hi})"
        ok = eligible.get(sh["model_id"], False)
        t.add_row(f"model {sh['model_id'][:10]}…", f"{rng}; eligible: {'yes' if ok else 'no'}")
    out.print(t)


@app.command("attest")
def attest(
    quote_file: Optional[Path] = typer.Option(None, "--quote", help="TEE quote file to verify and record."),
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
    key: str = KeyOpt,
    password_file: Optional[Path] = PwOpt,
) -> None:
    """Record a TEE attestation for this node.

    Hook: the attestation part provides `verinfer.attestation.operator_flow.attest(protocol, quote_path)`
    (protocol = `verinfer.chain.Protocol` bound to the unlocked operator key; returns the receipt).
    Until it exists this command says so in one line.
    """
    try:
        from verinfer.attestation import operator_flow  # type: ignore[attr-defined]
    except ImportError:
        raise ConfigError("attestation flow not available in this build (verinfer.attestation.operator_flow)") from None
    if quote_file is not None and not quote_file.is_file():
        raise ConfigError(f"--quote {quote_file} is not a file")
    chain = _connect(rpc_url, manifest, key, password_file)
    receipt = _send("attest", lambda: operator_flow.attest(chain.p, quote_file))
    print(_tx_hex(receipt))
