"""Model publishing and lookup as library calls: what `verinfer model …`, the devnet, the demo and tests share.

Why here (client side) and not in the CLI: publishing is a chain write plus content-store writes;
tests and the devnet must do it in-process, and the CLI must only parse and render.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from eth_utils import keccak

from verinfer.chain.protocol import ModelInput, Protocol
from verinfer.chain.types import ModelInfo
from verinfer.constants import PROOF_MODES, PROOF_NONE
from verinfer.errors import ConfigError, VerinferError
from verinfer.inference.ee import EEKey, encrypt_model
from verinfer.inference.lm import BUILTIN_LMS, LanguageModelSpec, with_content_ids
from verinfer.inference.runtime import Model, commitment, load_model, profile_hash
from verinfer.metainf.profiles import base_profile, document_hash, profile_document
from verinfer.models.spec import BUILTIN_MODELS, MAX_SPEC_BYTES, ModelSpec, builtin_path
from verinfer.storage.base import ContentStore
from verinfer.storage.errors import InvalidCidError
from verinfer.storage.unixfs import cid_of, parse_cid

#: every model shipped with the package, by the name `verinfer model …` and `verinfer request --model` accept
BUILTIN_NAMES: tuple[str, ...] = (*BUILTIN_MODELS, *BUILTIN_LMS)
#: `--profile`: default = the reference profile; auto = MetaInf's choice for a hardware class
PROFILES = ("default", "auto")
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class Published:
    """What `publish_model` registered."""

    model_id: bytes
    info: ModelInfo
    weights_cid: str
    tx_hash: str
    block: int
    artifacts_cid: str = ""
    artifacts_tx: str = ""
    insecure_keys: bool = False
    #: gas per publishing transaction ("deploy verifier", "register model", "set artifacts")
    gas: dict[str, int] = field(default_factory=dict)
    #: `--profile auto`: the profile registered, its stored document's CID, and how it was chosen
    profile: ExecutionProfile | None = None


@dataclass(frozen=True)
class ExecutionProfile:
    """The execution profile `--profile auto` registered (keccak(document) == executionProfileHash)."""

    document: dict[str, Any]
    cid: str
    profile_hash: bytes
    method: str
    threads: int
    batch: int
    hardware_class: str
    anchored: bool  # recorded with ModelRegistry.setArtifacts (models without a prover bundle)
    notice: str | None = None


def choose_profile(model: Model, store: ContentStore, *, hardware_class: str | None = None,
                   table: str | None = None, threads: int = 1, batch: int = 1) -> ExecutionProfile:
    """MetaInf's profile for `model` on `hardware_class`, its document stored in `store` (not yet on chain).

    Unknown hardware or a model without features falls back to the reference profile (`notice` says why).
    """
    from verinfer.metainf.api import select_publish_profile

    choice = select_publish_profile(model, base_profile(model), threads=threads, batch=batch,
                                    hardware_class=hardware_class, table=table)
    doc = profile_document(choice.profile)
    if document_hash(doc) != choice.profile_hash:
        raise VerinferError("profile document does not hash to the selected profile hash")
    return ExecutionProfile(choice.profile, store.add(doc), choice.profile_hash, choice.candidate.method,
                            choice.candidate.threads, choice.candidate.batch, choice.hardware_class, False,
                            choice.notice)


class _CidOnly:
    """A store stand-in that only computes CIDs (what `inspect` shows without writing anything)."""

    def add(self, data: bytes) -> str:
        return cid_of(data)


def builtin_names_help() -> str:
    return ", ".join(BUILTIN_NAMES)


def load_model_ref(ref: str, store: ContentStore | None = None) -> tuple[Model, bytes]:
    """A model from a spec file, a built-in name or a weights CID (fetched from `store`)."""
    path = Path(ref)
    if path.is_file():
        raw = path.read_bytes()
    elif ref in BUILTIN_MODELS or ref in BUILTIN_LMS:
        filename = BUILTIN_MODELS.get(ref) or BUILTIN_LMS[ref]
        raw = (builtin_path("digits-mlp").parent / filename).read_bytes()
    elif path.suffix == ".json" or "/" in ref:
        raise ConfigError(f"model spec file {ref} does not exist")
    else:
        try:
            parse_cid(ref)
        except InvalidCidError:
            raise ConfigError(f"unknown model {ref!r}: not a spec file, a built-in model ({builtin_names_help()}), "
                              "a 0x model id or a CID") from None
        if store is None:
            raise ConfigError(f"{ref} is a CID but no content store was given")
        raw = store.cat(ref, max_bytes=MAX_SPEC_BYTES)
    return load_model(raw), raw


def published_form(model: Model, store: ContentStore | None = None) -> Model:
    """The spec exactly as `publish_model` stores it: an LM names its weight/vocab files by CID.

    With `store=None` the CIDs are computed but nothing is written (so `inspect` shows the CID and
    commitment a publish will register)."""
    if isinstance(model, LanguageModelSpec) and model.weights_cid is None:
        return with_content_ids(model, store if store is not None else _CidOnly())
    return model


def shard_layout_hash(cuts: Sequence[int], num_layers: int) -> bytes:
    """bytes32 naming the split: zero for a single stage, else keccak(canonical {"layer_ranges": …})."""
    if not cuts:
        return b"\x00" * 32
    bounds = [0, *cuts, num_layers]
    ranges = [[bounds[i], bounds[i + 1]] for i in range(len(bounds) - 1)]
    return keccak(json.dumps({"layer_ranges": ranges}, separators=(",", ":")).encode())


def num_layers_of(model: Model) -> int:
    return model.num_layers if not isinstance(model, LanguageModelSpec) else 1


def publish_model(protocol: Protocol, store: ContentStore, model: Model, *, proof_mode: str = "none",
                  setup: str = "dev", requires_tee: bool = False, cuts: Sequence[int] = (),
                  name: str | None = None, profile: str = "default", hardware_class: str | None = None,
                  profile_table: str | None = None, ptau: Path | str | None = None) -> Published:
    """Store the canonical spec (and an LM's files, and a prover bundle) and register it in ModelRegistry.

    A proof mode builds/loads the Groth16 keys (`setup`), deploys the verifier and records the
    prover bundle's CID with setArtifacts: the verifier is fixed at registration (protocol V2).
    `profile="auto"` registers MetaInf's execution profile for `hardware_class` (default: this CPU's)
    and stores its document; without a prover bundle the document's CID is anchored with setArtifacts.
    A model the prover cannot serve (unsupported layer; a circuit larger than `ptau` allows) is refused
    in one line before anything is stored or sent.
    """
    if proof_mode not in PROOF_MODES:
        raise ConfigError(f"proof mode must be one of {', '.join(PROOF_MODES)}, got {proof_mode!r}")
    if profile not in PROFILES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if isinstance(model, LanguageModelSpec) and proof_mode != "none":
        raise ConfigError("language models have no circuit: use --proof-mode none")
    if PROOF_MODES[proof_mode] != PROOF_NONE:
        from verinfer.prover.pipeline import check_publishable

        check_publishable(model, proof_mode, ptau)  # one-line refusal before anything is stored or sent
    layers = num_layers_of(model)
    chosen = choose_profile(model, store, hardware_class=hardware_class, table=profile_table) if profile == "auto" else None
    if chosen is not None and proof_mode != "none" and chosen.profile_hash != profile_hash(model):
        raise ConfigError("a proof mode fixes the reference profile: publish with --profile default")
    model = published_form(model, store)
    cid = store.add(model.canonical_json())
    verifier, bundle_cid, value, insecure = ZERO_ADDRESS, "", commitment(model), False
    gas: dict[str, int] = {}
    artifacts: Any = None
    if PROOF_MODES[proof_mode] != PROOF_NONE:
        # the prover pulls in circom/snarkjs tooling: loaded only when a proof mode is asked for
        from verinfer.chain.verifier import deploy_verifier
        from verinfer.prover.bundle import publish_bundle
        from verinfer.prover.pipeline import prepare

        artifacts = prepare(model, mode=proof_mode, setup=setup)
        value = artifacts.commitment
        if protocol.sender is None:
            raise ConfigError("publishing needs a signing account")
        block = protocol.w3.eth.block_number
        verifier = deploy_verifier(protocol.w3, protocol.sender, artifacts)
        gas["deploy verifier"] = _creation_gas(protocol, block, verifier)
        bundle_cid = publish_bundle(store, artifacts)
        insecure = setup == "dev"
    receipt, model_id = protocol.models.register_model(ModelInput(
        name=name or model.name, weights_cid=cid, commitment=value, verifier=verifier, proof_mode=PROOF_MODES[proof_mode],
        execution_profile_hash=chosen.profile_hash if chosen else profile_hash(model), shard_layout_hash=shard_layout_hash(cuts, layers),
        num_layers=layers, input_bits=model.input_bits, output_bits=model.output_bits, requires_tee=requires_tee,
    ))
    gas["register model"] = int(receipt["gasUsed"])
    artifacts_tx = ""
    if artifacts is not None:
        art_receipt = protocol.models.set_artifacts(model_id, bundle_cid)
        artifacts_tx = "0x" + bytes(art_receipt["transactionHash"]).hex()
        gas["set artifacts"] = int(art_receipt["gasUsed"])
    elif chosen is not None:
        # no prover bundle: the artifacts slot holds the profile document, so nodes find it by model id
        art_receipt = protocol.models.set_artifacts(model_id, chosen.cid)
        artifacts_tx, bundle_cid = "0x" + bytes(art_receipt["transactionHash"]).hex(), chosen.cid
        gas["set profile"] = int(art_receipt["gasUsed"])
        chosen = replace(chosen, anchored=True)
    info = ModelInfo.from_record(protocol.models.get_model(model_id), spec=model)
    return Published(bytes(model_id), info, cid, "0x" + bytes(receipt["transactionHash"]).hex(),
                     int(receipt["blockNumber"]), bundle_cid, artifacts_tx, insecure, gas, chosen)


def publish_encrypted(protocol: Protocol, store: ContentStore, model: Model, *, key: EEKey | None = None,
                      proof_mode: str = "public", setup: str = "dev", name: str | None = None) -> tuple[Published, EEKey]:
    """Publish an equivariantly encrypted copy of `model` (its own circuit, verifier and prover bundle).

    Why a separate entry point: the registry, the nodes and the verifier only ever see the permuted
    weights; the key (every layer boundary's permutation) stays with the caller, who permutes each
    input with `ee.encrypt_input_for` and un-permutes the proven output with `ee.decrypt_output`.
    A fresh random key is drawn unless one is given.
    """
    if not isinstance(model, ModelSpec):
        raise ConfigError("equivariant encryption applies to integer MLPs and CNNs, not language models")
    key = key if key is not None else EEKey.generate(model)
    encrypted = encrypt_model(model, key)
    return publish_model(protocol, store, encrypted, proof_mode=proof_mode, setup=setup,
                         name=name or encrypted.name), key


def _creation_gas(protocol: Protocol, block: int, address: str) -> int:
    """Gas of the transaction that created `address` (searched in the blocks mined since `block`)."""
    w3 = protocol.w3
    for n in range(block + 1, w3.eth.block_number + 1):
        txs: list[Any] = list(w3.eth.get_block(n, full_transactions=True)["transactions"])
        for tx in txs:
            r = w3.eth.get_transaction_receipt(tx["hash"])
            if r.get("contractAddress") and str(r["contractAddress"]).lower() == address.lower():
                return int(r["gasUsed"])
    return 0


def list_models(protocol: Protocol, *, include_deprecated: bool = False) -> list[ModelInfo]:
    """Every registered model version (registry order), deprecated ones only when asked."""
    models = protocol.models
    out = []
    for i in range(models.model_count()):
        info = ModelInfo.from_record(models.get_model(models.model_id_at(i)))
        if include_deprecated or not info.deprecated:
            out.append(info)
    return out


def registered_model(protocol: Protocol, store: ContentStore, model_id: bytes) -> tuple[ModelInfo, bytes]:
    """A registered model's record and its spec bytes fetched by weightsCid (what `inspect 0x…` shows)."""
    if not protocol.models.exists(model_id):
        raise ConfigError(f"model id 0x{model_id.hex()} is not registered on this deployment (see: verinfer model list)")
    record = protocol.models.get_model(model_id)
    try:
        raw = store.cat(record.weights_cid, max_bytes=MAX_SPEC_BYTES)
    except VerinferError as exc:
        raise ConfigError(f"model 0x{model_id.hex()}: its weights CID {record.weights_cid} is not readable "
                          f"from this content store ({exc})") from None
    return ModelInfo.from_record(record, spec=load_model(raw)), raw
