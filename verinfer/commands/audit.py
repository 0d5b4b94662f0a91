"""`verinfer audit <request-id>`: one verdict per on-chain claim about a request; exit 2 on any FAIL."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from verinfer.chain.manifest import Manifest, default_manifest_path
from verinfer.chain.protocol import Protocol
from verinfer.errors import ConfigError
from verinfer.storage import open_store

TOP_LEVEL = True
EXIT_FAIL = 2  # an audited claim failed (1 is reserved for user errors: bad id, unreachable RPC, …)
PKI_FILENAME = "test-pki.json"


def _trusted_root(path: Optional[Path], manifest: Optional[Path]) -> tuple[bytes | None, str]:
    """(PEM, label): --trusted-root, else the devnet's INSECURE test PKI beside the manifest, else none."""
    if path is not None:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read --trusted-root {path}: {exc.strerror or exc}") from None
        if path.suffix == ".json":  # a test-pki.json file: take its root certificate
            try:
                pem = json.loads(pem)["root"].encode()
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f"{path} is neither a PEM certificate nor a test-pki.json file") from None
        if b"BEGIN CERTIFICATE" not in pem:
            raise ConfigError(f"--trusted-root {path} holds no PEM certificate")
        return pem, f"{path}"
    pki = (manifest or default_manifest_path()).parent / PKI_FILENAME
    if pki.exists():
        try:
            return json.loads(pki.read_text())["root"].encode(), f"devnet TEST PKI root at {pki} (INSECURE)"
        except (ValueError, KeyError):
            return None, ""
    return None, ""


def _parse_id(text: str) -> int:
    """A request id from the command line (parsed here so a typo is a one-line error)."""
    try:
        rid = int(text.strip(), 0)
    except ValueError:
        raise ConfigError(f"request id must be a positive integer, got {text!r}") from None
    if rid < 1:
        raise ConfigError(f"request ids start at 1, got {rid}")
    return rid


def audit(
    request_id: str = typer.Argument(..., help="request id to audit (decimal or 0x-hex)", metavar="REQUEST_ID"),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", help="chain RPC (default: $VERINFER_RPC_URL, else the manifest's rpc_url)"),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="deployment manifest (default: $VERINFER_MANIFEST or .verinfer/devnet/manifest.json)"),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (default: $IPFS_API, else the embedded store)"),
    store: Optional[Path] = typer.Option(None, "--store", help="embedded content store directory (default: $VERINFER_STORE or .verinfer/store)"),
    trusted_root: Optional[Path] = typer.Option(
        None, "--trusted-root", help="TEE root certificate (PEM, or a test-pki.json); default: the devnet test PKI beside the manifest"),
    vk: Optional[Path] = typer.Option(None, "--vk", help="verification key JSON to try before the shipped / locally cached keys"),
    backend: str = typer.Option("both", "--backend", help="local Groth16 verifier: both, groth16py or snarkjs"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Re-verify a request from the chain and the content store: model, input, output, quorum, proof, attestations."""
    # the auditor pulls the prover stack (py_ecc, circuits): loaded only when an audit runs, not for --help
    from verinfer.auditor import Auditor
    from verinfer.auditor.render import render_json, render_table

    rid = _parse_id(request_id)
    backends = {"both": ("groth16py", "snarkjs"), "groth16py": ("groth16py",), "snarkjs": ("snarkjs",)}.get(backend)
    if backends is None:
        raise ConfigError(f"--backend must be both, groth16py or snarkjs, got {backend!r}")
    url = rpc_url or os.environ.get("VERINFER_RPC_URL") or Manifest.load(manifest).rpc_url
    protocol = Protocol.connect(url, manifest)
    pem, label = _trusted_root(trusted_root, manifest)
    auditor = Auditor(protocol, open_store(ipfs_api, store), trusted_root_pem=pem, trusted_root_label=label,
                      vk_path=vk, backends=backends)
    report = auditor.audit(rid)
    if as_json:
        print(render_json(report))
    else:
        render_table(report, Console(width=max(140, Console().width)))
    if not report.ok:
        # SystemExit, not typer.Exit: in the app's standalone_mode=False, click turns typer.Exit into a
        # return value that the entry point drops, and the FAIL exit code would be lost
        sys.stdout.flush()
        raise SystemExit(EXIT_FAIL)


def _as_group() -> None:
    pass


def register(app: typer.Typer) -> None:
    """Add `audit` as a top-level command of the `verinfer` app."""
    app.command("audit")(audit)
    if app.registered_callback is None:
        # The entry point may import only the module being run; a Typer app with exactly one command and
        # no callback collapses into that command, and `verinfer audit 7` would then parse "audit" as the
        # request id. A no-op callback keeps the app a group whatever else is registered.
        app.callback()(_as_group)
