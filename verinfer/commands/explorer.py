"""`verinfer explorer`: the auditor's block explorer for a deployment (docs/explorer.md).

Indexes the protocol's events into SQLite (resumes after a restart, re-indexes after a chain reset)
and serves pages + a JSON API with uvicorn, on 127.0.0.1 unless told otherwise. Read-only: it never
loads a key and never sends a transaction.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from verinfer.chain.manifest import Manifest, default_manifest_path
from verinfer.chain.protocol import Protocol
from verinfer.commands.audit import _trusted_root
from verinfer.errors import ConfigError
from verinfer.storage import open_store

TOP_LEVEL = True


def register(app: typer.Typer) -> None:
    """Attach `explorer` as a top-level command of the `verinfer` CLI."""
    app.command("explorer")(explorer)
    if app.registered_callback is None:  # keep the app a group when only this module is imported
        app.callback()(lambda: None)


def default_db_path(manifest_path: Path, chain_id: int) -> Path:
    """<manifest dir>/explorer-<chain id>.sqlite: one index per deployment, next to its manifest."""
    return manifest_path.parent / f"explorer-{chain_id}.sqlite"


def explorer(
    rpc: Optional[str] = typer.Option(None, "--rpc", "--rpc-url", help="chain RPC (default: $VERINFER_RPC_URL, else the manifest's rpc_url)"),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="deployment manifest (default: $VERINFER_MANIFEST or .verinfer/devnet/manifest.json)"),
    port: int = typer.Option(8600, "--port", help="HTTP port"),
    host: str = typer.Option("127.0.0.1", "--host", help="interface to bind (loopback by default)"),
    db: Optional[Path] = typer.Option(None, "--db", help="SQLite index (default: explorer-<chain id>.sqlite beside the manifest)"),
    store: Optional[Path] = typer.Option(None, "--store", help="embedded content store directory (default: $VERINFER_STORE or .verinfer/store)"),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (default: $IPFS_API, else the embedded store)"),
    trusted_root: Optional[Path] = typer.Option(
        None, "--trusted-root", help="TEE root certificate for the audit (default: the devnet test PKI beside the manifest)"),
    poll: float = typer.Option(2.0, "--poll", help="seconds between index syncs"),
) -> None:
    """Serve the block explorer: requests, proofs verified three ways, audit verdicts, nodes, models, sources."""
    # the explorer pulls fastapi/uvicorn/jinja2 and the auditor's prover stack: loaded only when it is served
    from verinfer.explorer.app import create_app
    from verinfer.explorer.db import Database
    from verinfer.explorer.service import Explorer

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be 1..65535, got {port}")
    if not 0.1 <= poll <= 3600:
        raise ConfigError(f"--poll must be 0.1..3600 seconds, got {poll}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ConfigError(f"--host must be an IP address or localhost, got {host!r}") from None
    manifest_path = manifest or default_manifest_path()
    url = rpc or os.environ.get("VERINFER_RPC_URL") or Manifest.load(manifest_path).rpc_url
    protocol = Protocol.connect(url, manifest_path)  # no account: read-only
    pem, label = _trusted_root(trusted_root, manifest)
    db_path = db or default_db_path(manifest_path, protocol.manifest.chain_id)
    ex = Explorer(protocol, Database(db_path), open_store(ipfs_api, store), trusted_root_pem=pem,
                  trusted_root_label=label, solc_cache=db_path.parent / "explorer-solc-cache")
    first = ex.indexer.sync()
    app = create_app(ex, poll_interval=poll)
    import uvicorn

    if not loopback:
        print(f"warning: binding {host}: the explorer is reachable from other machines", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"explorer: http://{shown}:{port}/  (chain {protocol.manifest.chain_id}, indexed blocks "
          f"{first.from_block}..{first.to_block}, {first.events} new events; index {db_path})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
