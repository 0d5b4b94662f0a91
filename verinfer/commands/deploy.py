"""`verinfer deploy`: the protocol V2 on any EVM chain, from a profile and an encrypted keystore (docs/deploy.md).

Thin: parsing and printing only. The profile → parameters conversion, the pre-flight checks (chain id, gas
ceiling, balance) and the deployment live in `verinfer.chain.profile` / `verinfer.chain.deploy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from verinfer.errors import ConfigError

TOP_LEVEL = True


def register(app: typer.Typer) -> None:
    """Attach `deploy` as a top-level command of the `verinfer` CLI."""
    app.command("deploy")(deploy)
    if app.registered_callback is None:  # keep the app a group when only this module is imported
        app.callback()(lambda: None)


def default_output(chain_id: int) -> Path:
    """.verinfer/deployments/<chain id>/manifest.json: one manifest per chain, never the devnet's."""
    return Path(".verinfer") / "deployments" / str(chain_id) / "manifest.json"


def deploy(
    rpc_url: str = typer.Option(..., "--rpc-url", help="JSON-RPC endpoint of the target chain"),
    keystore: Path = typer.Option(..., "--keystore", help="encrypted keystore JSON of the deployer (scrypt/pbkdf2)"),
    profile: Optional[Path] = typer.Option(
        None, "--profile", help="deployment profile, JSON or TOML (default: the devnet parameters, deploy/profiles/devnet.json)"),
    manifest: Optional[Path] = typer.Option(
        None, "--manifest", help="where to write the manifest (default: .verinfer/deployments/<chain id>/manifest.json)"),
    password_file: Optional[Path] = typer.Option(
        None, "--password-file", help="file holding the keystore password (else $VERINFER_PASSWORD, else a prompt)"),
    force: bool = typer.Option(False, "--force", help="overwrite a manifest whose contracts are live on this chain"),
) -> None:
    """Deploy the protocol contracts to a chain and write the manifest the other commands read."""
    from verinfer.chain.deploy import is_deployed
    from verinfer.chain.manifest import Manifest
    from verinfer.chain.profile import DEVNET_PROFILE, connect, deploy_with_profile, load_profile
    from verinfer.operator.accounts import keystore_file_signer

    prof = load_profile(profile) if profile is not None else DEVNET_PROFILE
    w3 = connect(rpc_url)
    chain_id = w3.eth.chain_id
    out = manifest or default_output(chain_id)
    if out.exists() and not force:
        try:
            old = Manifest.load(out)
        except ConfigError:
            old = None
        if old is not None and is_deployed(w3, old):
            raise ConfigError(f"{out} already describes a live deployment on chain {chain_id} (pass --force to replace it)")
    account = keystore_file_signer(keystore, password_file)
    m = deploy_with_profile(w3, account, prof)
    path = m.save(out)
    p = m.params
    print(f"deployed protocol V2 on chain {m.chain_id} from block {m.deploy_block} (profile {prof.name!r}, "
          f"deployer {m.deployer})")
    for name, address in sorted(m.addresses.items()):
        print(f"  {name:<20} {address}")
    print(f"  windows: commit >= {p.min_commit_blocks}, reveal >= {p.min_reveal_blocks}, proof {p.proof_blocks} blocks; "
          f"epoch {p.epoch_length}, unbonding {p.unbonding_delay} blocks")
    owner = m.timelock or f"{m.deployer} (no TimelockController artifact: the deployer EOA owns the protocol)"
    print(f"  owner: {owner}")
    print(f"manifest: {path}")
    print(f"use it:   export VERINFER_MANIFEST={path.resolve()} VERINFER_RPC_URL={rpc_url}")
