"""`verinfer attestation …`: AttestationRegistry governance (allow-list), record re-verification, the devnet root."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console
from rich.table import Table

from verinfer.attestation.testpki import MOCK_WORKER_MR_ENCLAVE
from verinfer.chain.attestation_registry import check_record, devnet_pki, pki_path_for, registry_of
from verinfer.chain.devnet import dev_accounts
from verinfer.chain.manifest import Manifest
from verinfer.chain.protocol import Protocol
from verinfer.constants import DEVNET_CHAIN_ID
from verinfer.errors import ConfigError
from verinfer.node.keystore import unlock
from verinfer.storage import open_store

app = typer.Typer(help="TEE attestation records in the AttestationRegistry: allow-list measurements, re-verify "
                       "records (test PKI on a devnet: INSECURE).", no_args_is_help=True)

RpcOpt = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL", help="JSON-RPC URL (default: the manifest's rpc_url).")
ManifestOpt = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST",
                           help="Deployment manifest (default .verinfer/devnet/manifest.json).")


def _protocol(rpc_url: Optional[str], manifest: Optional[Path]) -> Protocol:
    return Protocol.connect(rpc_url or Manifest.load(manifest).rpc_url, manifest)


def _owner_account(key: Optional[str], dev_account: Optional[int], password_file: Optional[Path], chain_id: int):  # noqa: ANN202
    if key:
        return unlock(key, password_file)
    if dev_account is not None:
        if chain_id != DEVNET_CHAIN_ID:
            raise ConfigError(f"--dev-account uses anvil's public test keys: only on a local devnet (chain id {DEVNET_CHAIN_ID})")
        if not 0 <= dev_account <= 9:
            raise ConfigError(f"--dev-account must be 0..9, got {dev_account}")
        return dev_accounts(10)[dev_account]
    raise ConfigError("give --key NAME (the owner's keystore) or --dev-account N on a devnet")


def _root_der(trusted_root: Optional[Path], protocol: Protocol, manifest: Optional[Path]) -> bytes:
    if trusted_root is None:
        return devnet_pki(protocol.w3, pki_path_for(manifest)).root_der
    if not trusted_root.is_file():
        raise ConfigError(f"--trusted-root {trusted_root} is not a file")
    try:
        return x509.load_pem_x509_certificate(trusted_root.read_bytes()).public_bytes(serialization.Encoding.DER)
    except ValueError:
        raise ConfigError(f"--trusted-root {trusted_root} is not a PEM certificate") from None


@app.command("allow")
def allow(
    measurement: str = typer.Argument(..., help="measurement as 64 hex chars, or 'mock' for the devnet worker enclave."),
    revoke: bool = typer.Option(False, "--revoke", help="Remove it from the allow-list instead."),
    key: Optional[str] = typer.Option(None, "--key", help="Owner keystore name."),
    dev_account: Optional[int] = typer.Option(None, "--dev-account", help="anvil test account index (devnet only)."),
    password_file: Optional[Path] = typer.Option(None, "--password-file", help="File holding the keystore password."),
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
) -> None:
    """Governance: allow-list (or revoke) a TEE measurement in the AttestationRegistry (through the timelock)."""
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
    registry = registry_of(p, owner)
    p.as_account(owner).govern(registry, "setMeasurementAllowed", m, not revoke)
    print(f"{'revoked' if revoke else 'allowed'} measurement 0x{m.hex()}")


@app.command("verify")
def verify(
    nodes: list[str] = typer.Argument(..., help="Node addresses whose AttestationRegistry records to re-verify."),
    trusted_root: Optional[Path] = typer.Option(None, "--trusted-root", help="PEM root (default: the devnet test PKI root)."),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (default: the embedded store)."),
    rpc_url: Optional[str] = RpcOpt,
    manifest: Optional[Path] = ManifestOpt,
) -> None:
    """Fetch each record's evidence bundle by CID and re-run the full DCAP/SEV-SNP check; exit 1 if any fails."""
    for n in nodes:
        if not (n.startswith("0x") and len(n) == 42):
            raise ConfigError(f"not an address: {n}")
    p = _protocol(rpc_url, manifest)
    root = _root_der(trusted_root, p, manifest)
    store = open_store(ipfs_api)
    t = Table("node", "verdict", "detail")
    failed = False
    for n in nodes:
        r = check_record(p, n, store, root)
        failed |= not r.ok
        t.add_row(n, "[green]PASS[/]" if r.ok else "[red]FAIL[/]", r.reason)
    Console().print(t)
    if failed:
        raise typer.Exit(1)


@app.command("root")
def root(rpc_url: Optional[str] = RpcOpt, manifest: Optional[Path] = ManifestOpt) -> None:
    """Print the devnet's INSECURE test PKI root certificate (PEM), for auditors' --trusted-root."""
    p = _protocol(rpc_url, manifest)
    print(devnet_pki(p.w3, pki_path_for(manifest)).root_pem.decode(), end="")
