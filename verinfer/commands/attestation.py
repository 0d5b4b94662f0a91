"""`verinfer attestation …`: governance allow-list, record verification, the devnet's test root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from verinfer.errors import ConfigError

app = typer.Typer(help="TEE attestation records: allow-list measurements, verify records (test PKI on a devnet: INSECURE).",
                  no_args_is_help=True)

RpcOpt = typer.Option(os.environ.get("VERINFER_RPC_URL", "http://127.0.0.1:8545"), "--rpc-url", help="JSON-RPC URL.")
ManifestOpt = typer.Option(None, "--manifest", help="Deployment manifest (default .verinfer/devnet/manifest.json).")


def _protocol(rpc_url: str, manifest: Optional[Path], account=None):
    from verinfer.chain.protocol import Protocol

    return Protocol.connect(rpc_url, manifest, account)


def _owner_account(key: Optional[str], dev_account: Optional[int], password_file: Optional[Path], chain_id: int):
    if key:
        from verinfer.node.keystore import unlock

        return unlock(key, password_file)
    if dev_account is not None:
        if chain_id != 31337:
            raise ConfigError("--dev-account uses anvil's public test keys: only on a local devnet (chain id 31337)")
        from verinfer.chain.devnet import dev_accounts

        return dev_accounts(dev_account + 1)[dev_account]
    raise ConfigError("give --key NAME (the owner's keystore) or --dev-account N on a devnet")


@app.command("allow")
def allow(
    measurement: str = typer.Argument(..., help="MRENCLAVE as 64 hex chars, or 'mock' for the devnet worker enclave."),
    revoke: bool = typer.Option(False, "--revoke", help="Remove it from the allow-list instead."),
    key: Optional[str] = typer.Option(None, "--key", help="Owner keystore name."),
    dev_account: Optional[int] = typer.Option(None, "--dev-account", help="anvil test account index (devnet only)."),
    password_file: Optional[Path] = typer.Option(None, "--password-file"),
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
) -> None:
    """Governance: allow-list (or revoke) a TEE measurement in NodeRegistry."""
    from verinfer.attestation.testpki import MOCK_WORKER_MR_ENCLAVE

    if measurement == "mock":
        m = MOCK_WORKER_MR_ENCLAVE
    else:
        try:
            m = bytes.fromhex(measurement.removeprefix("0x"))
        except ValueError:
            m = b""
        if len(m) != 32:
            raise ConfigError(f"measurement must be 32 bytes of hex, got {measurement!r}")
    p = _protocol(rpc_url, manifest)
    owner = _owner_account(key, dev_account, password_file, p.w3.eth.chain_id)
    p.as_account(owner).nodes.set_measurement_allowed(m, not revoke)
    print(f"{'revoked' if revoke else 'allowed'} measurement 0x{m.hex()}")


@app.command("verify")
def verify(
    nodes: list[str] = typer.Argument(..., help="Node addresses whose on-chain records to re-verify."),
    trusted_root: Optional[Path] = typer.Option(None, "--trusted-root", help="PEM root (default: the devnet test PKI root)."),
    rpc_url: str = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
) -> None:
    """Fetch each record's quote by CID and re-run the full DCAP check; exit 1 if any fails."""
    from verinfer.attestation.operator_flow import check_record, devnet_pki

    for n in nodes:
        if not (n.startswith("0x") and len(n) == 42):
            raise ConfigError(f"not an address: {n}")
    if trusted_root is not None and not trusted_root.is_file():
        raise ConfigError(f"--trusted-root {trusted_root} is not a file")
    p = _protocol(rpc_url, manifest)
    root = trusted_root.read_bytes() if trusted_root else devnet_pki(p).root_pem
    t = Table("node", "verdict", "detail")
    failed = False
    for n in nodes:
        r = check_record(p, n, root)
        failed |= not r.ok
        t.add_row(n, "[green]PASS[/]" if r.ok else "[red]FAIL[/]", r.reason)
    Console().print(t)
    if failed:
        raise typer.Exit(1)


@app.command("root")
def root(rpc_url: str = RpcOpt, manifest: Optional[Path] = ManifestOpt) -> None:
    """Print the devnet's INSECURE test PKI root certificate (PEM), for auditors' --trusted-root."""
    from verinfer.attestation.operator_flow import devnet_pki

    print(devnet_pki(_protocol(rpc_url, manifest)).root_pem.decode(), end="")
