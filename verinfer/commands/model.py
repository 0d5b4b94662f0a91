"""`verinfer model …`: publish a quantized model (content store + ModelRegistry), inspect, evaluate.

`publish` stores the spec's canonical JSON (its CID becomes `weightsCid`), computes the
commitment (Poseidon weights commitment, or the prover's commitment for proof modes that need a
circuit), optionally sets up and deploys the Groth16 verifier, and registers everything in one
transaction. With a proof mode it also stores the prover bundle (verinfer.prover.bundle: zkey,
wasm, vk, verifier source, transcript) and records its CID with ModelRegistry.setArtifacts. Every bad input is a one-line `error: …` before anything is sent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from verinfer.errors import ConfigError, VerinferError

app = typer.Typer(help="Publish, inspect and evaluate models.", no_args_is_help=True)

DEVNET_CHAIN_ID = 31337
PROOF_MODES = {"none": 0, "public": 1, "private": 2}
SETUPS = ("dev", "ceremony", "shipped")

out = Console()
err = Console(stderr=True)


class ProverUnavailableError(VerinferError):
    """A proof mode was requested but the prover pipeline is not installed/usable."""


def resolve_model(ref: str, ipfs_api: str | None = None) -> tuple[Any, bytes]:
    """A model from a path, a built-in name (digits-mlp, digits-mlp-large, textgenrnn) or a CID."""
    from verinfer.inference.lm import BUILTIN_LMS
    from verinfer.inference.runtime import load_model
    from verinfer.models.spec import BUILTIN_MODELS, builtin_path

    path = Path(ref)
    if path.is_file():
        raw = path.read_bytes()
    elif ref in BUILTIN_MODELS or ref in BUILTIN_LMS:
        filename = BUILTIN_MODELS.get(ref) or BUILTIN_LMS[ref]
        raw = (builtin_path("digits-mlp").parent / filename).read_bytes()
    elif path.suffix == ".json" or os.sep in ref:
        raise ConfigError(f"model spec file {ref} does not exist")
    else:
        from verinfer.models.spec import MAX_SPEC_BYTES
        from verinfer.storage import open_store

        try:
            raw = open_store(ipfs_api).cat(ref, max_bytes=MAX_SPEC_BYTES)
        except VerinferError:
            raise
        except Exception as exc:  # malformed CID and the like
            raise ConfigError(f"{ref!r} is not a file, a built-in model or a readable CID: {exc}") from None
    return load_model(raw), raw


def shard_layout_hash(cuts: list[int], num_layers: int) -> bytes:
    """bytes32 naming the split: zero for a single stage, else keccak(canonical {"layer_ranges": …})."""
    from eth_utils import keccak

    if not cuts:
        return b"\x00" * 32
    bounds = [0, *cuts, num_layers]
    ranges = [[bounds[i], bounds[i + 1]] for i in range(len(bounds) - 1)]
    return keccak(json.dumps({"layer_ranges": ranges}, separators=(",", ":")).encode())


def parse_cuts(text: str | None, num_layers: int) -> list[int]:
    """`--split 1,2` → sorted distinct cut points strictly inside 1..num_layers-1."""
    if not text:
        return []
    try:
        cuts = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise ConfigError(f"--split must be comma-separated layer indices, got {text!r}") from None
    bad = [c for c in cuts if not 0 < c < num_layers]
    if bad:
        raise ConfigError(f"--split cut {bad[0]} is not strictly between 0 and {num_layers}")
    return cuts


def load_publisher(key: str | None, key_env: str | None, password_file: Path | None,
                   dev_account: int | None, chain_id: int) -> Any:
    """The publisher account: keystore, private key in an env var, or an anvil key (chain 31337 only)."""
    given = [n for n, v in (("--key", key), ("--key-env", key_env), ("--dev-account", dev_account)) if v is not None]
    if len(given) != 1:
        raise ConfigError("pass exactly one of --key NAME, --key-env VAR or --dev-account N to sign")
    if dev_account is not None:
        if chain_id != DEVNET_CHAIN_ID:
            raise ConfigError(f"--dev-account is only allowed on the devnet (chain {DEVNET_CHAIN_ID}), this is {chain_id}")
        if not 0 <= dev_account <= 9:
            raise ConfigError(f"--dev-account must be 0..9, got {dev_account}")
        from verinfer.chain.devnet import dev_accounts

        return dev_accounts(10)[dev_account]
    if key_env is not None:
        from eth_account import Account

        secret = os.environ.get(key_env, "").strip()
        if not secret:
            raise ConfigError(f"environment variable {key_env} is empty or unset")
        try:
            return Account.from_key(secret)
        except Exception:
            raise ConfigError(f"{key_env} does not hold a valid private key") from None
    from verinfer.node.keystore import unlock

    return unlock(key, password_file)  # type: ignore[arg-type]


def _prepare_proof(spec: Any, mode: str, setup: str) -> Any:
    try:
        from verinfer.prover.pipeline import prepare
    except ImportError as exc:
        raise ProverUnavailableError(f"proof mode {mode!r} needs the prover, which is not available: {exc}") from None
    return prepare(spec, mode=mode, setup=setup)


def _summary(model: Any, raw: bytes) -> dict[str, Any]:
    from verinfer.inference.runtime import commitment, profile_hash
    from verinfer.storage.unixfs import cid_of

    info: dict[str, Any] = {
        "name": model.name,
        "kind": model.kind,
        "format": model.format,
        "canonical_bytes": len(model.canonical_json()),
        "cid": cid_of(model.canonical_json()),
        "commitment": f"{commitment(model):#066x}",
        "execution_profile_hash": "0x" + profile_hash(model).hex(),
        "input_bits": model.input_bits,
        "output_bits": model.output_bits,
    }
    if raw != model.canonical_json():
        info["note"] = "the file is not in canonical form; publish stores the canonical bytes"
    if model.kind == "mlp":
        ranges = model.activation_ranges()
        info.update(
            input_shape=model.input_shape,
            parameters=model.num_parameters,
            layers=[
                {"index": i, "in": layer.in_, "out": layer.out, "shift": layer.shift, "relu": layer.relu,
                 "clamp_bits": layer.clamp_bits, "parameters": layer.in_ * layer.out + layer.out,
                 "output_range": list(ranges[i + 1])}
                for i, layer in enumerate(model.layers)
            ],
        )
    else:
        info.update(
            architecture=model.architecture, vocab_size=model.vocab_size, context_length=model.context_length,
            max_prompt_tokens=model.max_prompt_tokens, max_new_tokens=model.max_new_tokens,
            weights_sha256=model.weights_sha256,
        )
    return info


@app.command()
def inspect(
    model_ref: str = typer.Argument(..., metavar="SPEC", help="spec file, built-in name, or weights CID"),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (for a CID)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show a model's layers, sizes, static ranges, CID, commitment and execution profile."""
    model, raw = resolve_model(model_ref, ipfs_api)
    info = _summary(model, raw)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    out.print(f"[bold]{info['name']}[/bold] ({info['kind']}, {info['format']})")
    for key in ("cid", "commitment", "execution_profile_hash", "canonical_bytes", "input_bits", "output_bits"):
        print(f"  {key:24} {info[key]}")
    if "note" in info:
        out.print(f"  [yellow]{info['note']}[/yellow]")
    if model.kind == "mlp":
        print(f"  {'input_shape':24} {info['input_shape']}")
        out.print(f"  {'parameters':24} {info['parameters']:,}")
        table = Table("layer", "in", "out", "shift", "relu", "clamp", "params", "output range")
        for layer in info["layers"]:
            table.add_row(str(layer["index"]), str(layer["in"]), str(layer["out"]), str(layer["shift"]),
                          "yes" if layer["relu"] else "no", str(layer["clamp_bits"] or "-"),
                          f"{layer['parameters']:,}", f"[{layer['output_range'][0]}, {layer['output_range'][1]}]")
        out.print(table)
    else:
        for key in ("architecture", "vocab_size", "context_length", "max_prompt_tokens", "max_new_tokens",
                    "weights_sha256"):
            print(f"  {key:24} {info[key]}")


@app.command("eval")
def evaluate(
    model_ref: str = typer.Argument(..., metavar="SPEC", help="spec file, built-in name, or weights CID"),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (for a CID)"),
) -> None:
    """Held-out accuracy of a digits model (8x8 inputs) with the integer reference executor."""
    from verinfer.models import reference
    from verinfer.models.digits import load_split

    model, _ = resolve_model(model_ref, ipfs_api)
    if model.kind != "mlp" or model.input_size != 64 or model.output_size != 10:
        raise ConfigError("eval needs a digits classifier (64 inputs, 10 outputs)")
    split = load_split()
    pred = reference.run_batch(model, split.x_test).argmax(axis=1)
    correct = int((pred == split.y_test).sum())
    out.print(f"{model.name}: {correct}/{len(split.y_test)} = {correct / len(split.y_test):.2%} "
              f"held-out accuracy (int8, reference executor)")


@app.command()
def publish(
    model_ref: str = typer.Argument(..., metavar="SPEC", help="spec file or built-in name"),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL",
                                          help="RPC URL (default: the manifest's rpc_url)"),
    manifest: Optional[Path] = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST",
                                            help="deployment manifest (default: .verinfer/devnet/manifest.json)"),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (default: $IPFS_API, else the embedded store)"),
    key: Optional[str] = typer.Option(None, "--key", "--keystore", help="keystore name under $VERINFER_HOME/keys/"),
    password_file: Optional[Path] = typer.Option(None, "--password-file", help="file holding the keystore password"),
    key_env: Optional[str] = typer.Option(None, "--key-env", help="environment variable holding a hex private key"),
    dev_account: Optional[int] = typer.Option(None, "--dev-account", help="anvil development key 0..9 (devnet only)"),
    proof_mode: str = typer.Option("none", "--proof-mode", help="none | public | private"),
    setup: str = typer.Option("dev", "--setup", help="Groth16 keys for proof modes: dev (INSECURE) | ceremony | shipped"),
    requires_tee: bool = typer.Option(False, "--requires-tee", help="only attested nodes may serve it"),
    split: Optional[str] = typer.Option(None, "--split", help="split-inference cut points, e.g. 1 or 1,2"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Store the spec content-addressed and register it (and its verifier) in ModelRegistry."""
    from verinfer.inference.runtime import commitment, profile_hash

    if proof_mode not in PROOF_MODES:
        raise ConfigError(f"--proof-mode must be one of {', '.join(PROOF_MODES)}, got {proof_mode!r}")
    if setup not in SETUPS:
        raise ConfigError(f"--setup must be one of {', '.join(SETUPS)}, got {setup!r}")
    model, _ = resolve_model(model_ref, ipfs_api)
    if model.kind == "lm" and proof_mode != "none":
        raise ConfigError("language models have no circuit: use --proof-mode none")
    num_layers = model.num_layers if model.kind == "mlp" else 1
    cuts = parse_cuts(split, num_layers)

    from verinfer.chain.manifest import Manifest
    from verinfer.chain.protocol import ModelInput, Protocol

    man = Manifest.load(manifest)
    account = load_publisher(key, key_env, password_file, dev_account, man.chain_id)
    artifacts = _prepare_proof(model, proof_mode, setup) if proof_mode != "none" else None
    protocol = Protocol.connect(rpc_url or man.rpc_url, manifest, account)

    from verinfer.storage import open_store

    store = open_store(ipfs_api)
    if model.kind == "lm" and model.weights_cid is None:
        from verinfer.inference.lm import with_content_ids

        model = with_content_ids(model, store)  # weights are published content-addressed too
    cid = store.add(model.canonical_json())
    verifier = "0x" + "00" * 20
    bundle_cid = ""
    value = commitment(model)
    if artifacts is not None:
        from verinfer.prover.pipeline import deploy_verifier

        from verinfer.prover.bundle import publish_bundle

        value = artifacts.commitment
        verifier = deploy_verifier(protocol.w3, protocol.sender, artifacts)
        # zkey/wasm/vk/verifier/transcript in the store, so nodes and auditors elsewhere can fetch them
        bundle_cid = publish_bundle(store, artifacts)
    receipt, model_id = protocol.models.register_model(
        ModelInput(
            name=model.name,
            weights_cid=cid,
            commitment=value,
            verifier=verifier,
            proof_mode=PROOF_MODES[proof_mode],
            execution_profile_hash=profile_hash(model),
            shard_layout_hash=shard_layout_hash(cuts, num_layers),
            num_layers=num_layers,
            input_bits=model.input_bits,
            output_bits=model.output_bits,
            requires_tee=requires_tee,
        )
    )
    artifacts_tx = None
    if artifacts is not None:
        artifacts_tx = protocol.models.set_artifacts(model_id, bundle_cid)
    view = protocol.models.get_model(model_id)
    result = {
        "model_id": "0x" + bytes(model_id).hex(),
        "name": view.name,
        "version": view.version,
        "publisher": view.publisher,
        "weights_cid": cid,
        "commitment": f"{value:#066x}",
        "proof_mode": proof_mode,
        "verifier": verifier,
        "execution_profile_hash": "0x" + profile_hash(model).hex(),
        "shard_layout_hash": "0x" + shard_layout_hash(cuts, num_layers).hex(),
        "requires_tee": requires_tee,
        "tx": "0x" + bytes(receipt["transactionHash"]).hex(),
        "block": receipt["blockNumber"],
    }
    if artifacts_tx is not None:
        result["artifacts_cid"] = bundle_cid
        result["artifacts_tx"] = "0x" + bytes(artifacts_tx["transactionHash"]).hex()
    if artifacts is not None and setup == "dev":
        result["warning"] = "verifier keys from an INSECURE development setup: whoever ran it can forge proofs"
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(f"published [bold]{result['name']}[/bold] v{result['version']} as {result['model_id']}")
    for k in ("weights_cid", "commitment", "proof_mode", "verifier", "artifacts_cid", "execution_profile_hash", "tx",
              "block"):
        if k in result:
            print(f"  {k:24} {result[k]}")
    if "warning" in result:
        err.print(f"[yellow]warning:[/yellow] {result['warning']}")
