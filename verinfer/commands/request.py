"""`verinfer request`: ask the network for an inference from the command line and show the result.

    verinfer request --model digits-mlp --input digits-sample:3 --dev-account 1 --wait
    verinfer request show 7
    verinfer request withdraw --key alice
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from eth_account.signers.local import LocalAccount
from rich.console import Console

from verinfer.amounts import AmountError, parse_amount
from verinfer.chain.devnet import dev_accounts
from verinfer.client import Client
from verinfer.client.ee import decrypt_result, encrypt_prepared, is_encrypted_llm, key_for, read_key_file
from verinfer.client.inputs import prepare_input
from verinfer.client.render import RequestProgress, committee_table, result_panel
from verinfer.constants import DEVNET_CHAIN_ID, ETHER
from verinfer.errors import ConfigError
from verinfer.node.keystore import unlock
from verinfer.storage import open_store

app = typer.Typer(
    help="Request inference (submit, wait, show the settled result) and withdraw refunds.",
    invoke_without_command=True,
    no_args_is_help=False,
)

RPC_HELP = "RPC URL (default: the manifest's rpc_url)"
MANIFEST_HELP = "deployment manifest (default: $VERINFER_MANIFEST or .verinfer/devnet/manifest.json)"
IPFS_HELP = "Kubo RPC API URL for the content store (default: $IPFS_API, else the embedded store at $VERINFER_STORE or .verinfer/store)"


def parse_fee(text: str) -> int:
    """`0.01` (ether) or `12345wei` → wei; rejects negatives and sub-wei fractions."""
    try:
        return parse_amount(text, "fee", positive=True)
    except AmountError as exc:
        raise ConfigError(str(exc)) from None


def load_account(key: str | None, dev_account: int | None, chain_id: int) -> LocalAccount | None:
    """The requester account: an encrypted keystore, or an anvil default key on chain 31337 only."""
    if key and dev_account is not None:
        raise ConfigError("pass either --key or --dev-account, not both")
    if dev_account is not None:
        if chain_id != DEVNET_CHAIN_ID:
            raise ConfigError(
                f"--dev-account uses anvil's public development keys and is only allowed on chain {DEVNET_CHAIN_ID} "
                f"(this chain is {chain_id}); use --key NAME"
            )
        if not 0 <= dev_account <= 9:
            raise ConfigError(f"--dev-account must be 0..9, got {dev_account}")
        return dev_accounts(10)[dev_account]
    if key:
        return unlock(key)
    return None


def open_client(rpc_url: str | None, manifest: Path | None, ipfs_api: str | None,
                key: str | None = None, dev_account: int | None = None):  # noqa: ANN201
    """A Client for the CLI options."""
    client = Client(rpc_url, str(manifest) if manifest else None, None, open_store(ipfs_api))
    account = load_account(key, dev_account, client.chain_id)
    if account is not None:
        client.use_account(account)
    return client


@app.callback()
def request(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="model id (0x…) or registered name; built-in: digits-mlp, digits-mlp-large "
        "(classifiers, --input digits-sample:N), textgenrnn (language model, --prompt TEXT); see: verinfer model list"),
    input: Optional[str] = typer.Option(
        None, "--input", "-i", help="JSON file (tensor payload or list of ints), digits-sample:N, raw ints '1,2,3', "
        "or for a language model text:PROMPT"
    ),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="text prompt for a language model (e.g. textgenrnn)"),
    publisher: Optional[str] = typer.Option(
        None, "--publisher", help="publisher address, when two publishers registered the same model name"),
    fee: str = typer.Option("0.01", help="fee in ether (or '…wei'), escrowed until settlement"),
    replicas: int = typer.Option(3, help="committee size"),
    quorum: int = typer.Option(2, help="matching reveals needed to accept"),
    commit_blocks: Optional[int] = typer.Option(
        None, help="commit window in blocks (default 10, 40 for a language model; at least the protocol minimum)"),
    reveal_blocks: Optional[int] = typer.Option(None, help="reveal window in blocks (default as --commit-blocks)"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="wait for settlement and print the result"),
    until: str = typer.Option("finalized", help="with --wait: 'finalized' or 'proven' (waits for the Groth16 proof)"),
    timeout: float = typer.Option(180.0, help="seconds to wait before giving up (the request stays live)"),
    key: Optional[str] = typer.Option(None, "--key", help="requester keystore name (.verinfer/keys/NAME.json; password from VERINFER_PASSWORD or prompt)"),
    dev_account: Optional[int] = typer.Option(
        None, "--dev-account", help="use anvil default account N (0-9) as requester; refused unless the chain id is 31337 (local devnet)"
    ),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL", help=RPC_HELP),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help=MANIFEST_HELP),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help=IPFS_HELP),
    ee_key: Optional[Path] = typer.Option(
        None, "--ee-key", help="EE key file of an encrypted model (from model publish --encrypt --key-out): "
        "permutes the input before it is stored and decrypts the output to the real prediction (an encrypted "
        "LLM: the prompt's token ids and the generated text)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON instead of a summary"),
) -> None:
    """Submit an inference request (store input, escrow fee) and, with --wait, show the settled result."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None or (input is None and prompt is None):
        raise ConfigError("--model and --input (or --prompt for a language model) are required "
                          "(or use: verinfer request show ID)")
    if input is not None and prompt is not None:
        raise ConfigError("pass either --input or --prompt, not both")
    if until not in ("finalized", "proven"):
        raise ConfigError(f"--until must be 'finalized' or 'proven', got {until!r}")
    if timeout <= 0:
        raise ConfigError(f"--timeout must be positive, got {timeout:g}")
    fee_wei = parse_fee(fee)
    console = Console(stderr=as_json)
    client = open_client(rpc_url, manifest, ipfs_api, key, dev_account)
    if client.account is None:
        raise ConfigError("a requester account is needed: --key NAME, or --dev-account N on a local devnet")
    info = client.model_info(model, publisher)
    prepared = prepare_input(input if input is not None else f"text:{prompt}", info.spec, client.store)
    perm_key = key_for(read_key_file(ee_key), info) if ee_key is not None else None
    if perm_key is None and is_encrypted_llm(info.spec):
        raise ConfigError(f"model {info.name} ({info.model_id_hex}) is an encrypted language model: pass --ee-key "
                          "KEYFILE (from model publish smollm2 --encrypt --key-out); plaintext token ids would "
                          "be meaningless to it")
    if perm_key is not None:
        prepared = encrypt_prepared(prepared, info, perm_key)
    need, _ = client.quote(info.model_id, client.params(replicas, quorum, commit_blocks, reveal_blocks, model=info))
    if fee_wei < need:
        raise ConfigError(f"fee {fee_wei / ETHER:g} ETH is below the market's minimum {need / ETHER:g} ETH for "
                          f"{replicas} replicas (see: verinfer request quote {model})")
    rid = client.submit(info.model_id, prepared.payload, fee_wei, replicas, quorum, commit_blocks, reveal_blocks)
    console.print(f"request [bold]{rid}[/] submitted: model {info.name} v{info.version}, fee {fee_wei / ETHER:g} ETH, "
                  f"committee {replicas} (quorum {quorum})")
    if not wait:
        if as_json:
            print(json.dumps({"requestId": rid}))
        return
    with RequestProgress(console) as progress:
        progress.add(rid, f"request {rid}")
        res = client.wait(rid, timeout=timeout, until=until, progress=progress.update)
    if perm_key is not None:
        res = decrypt_result(res, perm_key, spec=info.spec, store=client.store)
    if as_json:
        print(json.dumps(res.to_json(), indent=2))
        return
    console.print(result_panel(res, prepared.label))
    console.print(committee_table(res))


@app.command("show")
def show(
    request_id: int = typer.Argument(..., help="request id"),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL", help=RPC_HELP),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help=MANIFEST_HELP),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help=IPFS_HELP),
    ee_key: Optional[Path] = typer.Option(
        None, "--ee-key", help="EE key file of the request's encrypted model: show the decrypted prediction (an LLM: the text)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show a request: status, prediction, consensus, committee, proof, refunds, gas per step."""
    if request_id < 1:
        raise ConfigError(f"request ids start at 1, got {request_id}")
    client = open_client(rpc_url, manifest, ipfs_api)
    kf = read_key_file(ee_key) if ee_key is not None else None  # a bad file fails before any chain read
    res = client.result(request_id)
    if kf is not None:
        minfo = client.model_info(res.model_id)
        res = decrypt_result(res, key_for(kf, minfo), spec=minfo.spec, store=client.store)
    if as_json:
        print(json.dumps(res.to_json(), indent=2))
        return
    console = Console()
    console.print(result_panel(res))
    console.print(committee_table(res))


@app.command("withdraw")
def withdraw(
    key: Optional[str] = typer.Option(None, "--key", help="keystore name"),
    dev_account: Optional[int] = typer.Option(None, "--dev-account", help="anvil default account N (chain 31337 only)"),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL", help=RPC_HELP),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help=MANIFEST_HELP),
) -> None:
    """Withdraw refunds the market credited to the requester (pull payment)."""
    client = open_client(rpc_url, manifest, None, key, dev_account)
    if client.account is None:
        raise ConfigError("pass --key NAME or --dev-account N")
    amount = client.withdraw_refunds()
    Console().print(f"withdrew {amount / ETHER:g} ETH to {client.address}" if amount else "nothing to withdraw")


@app.command("quote")
def quote(
    model: str = typer.Argument(..., help="model id (0x…) or registered name, e.g. digits-mlp"),
    replicas: int = typer.Option(3, help="committee size"),
    quorum: int = typer.Option(2, help="matching reveals needed to accept"),
    commit_blocks: Optional[int] = typer.Option(None, help="commit window in blocks (default: 10 or the protocol minimum)"),
    reveal_blocks: Optional[int] = typer.Option(None, help="reveal window in blocks (default: 10 or the protocol minimum)"),
    callback_gas: int = typer.Option(0, "--callback-gas", help="gas for a consumer contract's callback (escrowed)"),
    publisher: Optional[str] = typer.Option(None, "--publisher", help="publisher address, when a name is ambiguous"),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL", help=RPC_HELP),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help=MANIFEST_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """What a request costs now: minimum fee (per committee seat) + escrowed callback deposit (the market's quote)."""
    client = open_client(rpc_url, manifest, None)
    mid = client.resolve_model(model, publisher)
    fee, deposit = client.quote(mid, client.params(replicas, quorum, commit_blocks, reveal_blocks, callback_gas))
    doc = {"modelId": "0x" + mid.hex(), "fee": fee, "callbackDeposit": deposit, "total": fee + deposit}
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    Console().print(f"minimum fee {fee / ETHER:g} ETH ({fee} wei) + callback deposit {deposit / ETHER:g} ETH "
                    f"({deposit} wei) = {(fee + deposit) / ETHER:g} ETH for model 0x{mid.hex()}")
