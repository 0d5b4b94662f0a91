"""Prover bundles: publish a model's proving artifacts to the content store, fetch them elsewhere, prove.

The round trips go through an EmbeddedStore and a fresh cache directory, as a node on another
machine would: nothing is read from the publisher's circuit cache after publishing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Iterator

import pytest
from web3 import Web3

from verinfer.chain.devnet import funded_account
from verinfer.chain.protocol import ModelInput, Protocol
from verinfer.chain.verifier import deploy_verifier
from verinfer.errors import VerinferError
from verinfer.models.reference import check_input, run as reference_run
from verinfer.models.spec import load, load_builtin
from verinfer.prover import pipeline
from verinfer.prover.backends import Groth16pyBackend
from verinfer.prover.bundle import FORMAT, BundleError, bundle_document, fetch_bundle, publish_bundle
from verinfer.devnet.samples import random_spec
from verinfer.storage.embedded import EmbeddedStore

PROVER = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture(scope="module")
def digits() -> tuple:
    spec = load_builtin("digits-mlp")
    return spec, pipeline.prepare(spec, "public", setup="shipped")


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


def _prove_and_verify(arts, spec, x) -> None:
    backend = Groth16pyBackend()
    proof = pipeline.prove_for_request(arts, spec, x, 42, PROVER, backend)
    expected = pipeline.expected_public_signals(arts, spec, x, reference_run(spec, x), 42, PROVER)
    assert list(proof.public_signals) == expected
    assert backend.verify(arts.vk, proof)
    assert not backend.verify(arts.vk, proof.with_public_signals([expected[0] + 1, *expected[1:]]))


def test_round_trip_shipped_keys_prove_and_verify(digits, store: EmbeddedStore, tmp_path: Path) -> None:
    spec, arts = digits
    cid = publish_bundle(store, arts)
    doc = store.cat_json(cid)
    assert doc["format"] == FORMAT and doc["model"] == "digits-mlp" and doc["mode"] == "public"
    assert doc["setup"] == "shipped" and doc["insecure"] is True
    assert doc["circuit_hash"] == arts.circuit_hash
    assert doc["r1cs_sha256"] == arts.compiled.manifest["r1cs_sha256"]
    assert int(doc["commitment"]) == arts.commitment == pipeline.vk_commitment(arts.vk)
    assert doc["public_signal_names"] == list(arts.public_signal_names)
    assert {"zkey", "wasm", "witness_calculator", "vk", "verifier_sol", "transcript"} <= set(doc["files"])
    assert publish_bundle(store, arts) == cid  # content-addressed: publishing twice is the same bundle

    cache = tmp_path / "fetched"
    got = fetch_bundle(store, cid, cache, expected_commitment=arts.commitment, spec=spec)
    assert got.compiled.dir == cache and got.zkey_path is not None and got.zkey_path.parent.is_relative_to(cache)
    assert got.wasm_path.read_bytes() == arts.wasm_path.read_bytes()
    assert got.vk == arts.vk and got.commitment == arts.commitment
    assert got.insecure and got.mode == "public" and got.public_signal_names == arts.public_signal_names
    assert got.verifier_sol.read_text() == arts.verifier_sol.read_text()
    assert got.keys.record["zkey_sha256"] == arts.keys.record["zkey_sha256"]
    assert (got.vk_path.parent / "transcript.json").exists()

    x = [int(v) for v in check_input(spec, [(i * 5) % 13 for i in range(64)])]
    _prove_and_verify(got, spec, x)

    # a second fetch reuses the cache (key hashes re-checked)
    again = fetch_bundle(store, cid, cache)
    assert again.keys.record == got.keys.record
    # a corrupted cached key is caught, not used
    got.zkey_path.write_bytes(b"\0" + got.zkey_path.read_bytes()[1:])
    with pytest.raises(VerinferError, match="corrupt"):
        got.keys.check()
    fixed = fetch_bundle(store, cid, cache)  # the damaged cache entry is fetched again
    fixed.keys.check()


def test_tampered_commitment_is_refused(digits, store: EmbeddedStore, tmp_path: Path) -> None:
    _, arts = digits
    doc = bundle_document(store, arts)
    doc["commitment"] = str(arts.commitment + 1)  # claims another model's commitment
    cid = store.add_json(doc)
    with pytest.raises(VerinferError, match="tampered") as exc:
        fetch_bundle(store, cid, tmp_path / "c1")
    assert isinstance(exc.value, BundleError)
    assert not (tmp_path / "c1").exists()  # nothing half-fetched is left as a cache entry


def test_swapped_vk_is_refused(digits, store: EmbeddedStore, tmp_path: Path) -> None:
    """A bundle whose vk is not the one the commitment names (key substitution) is refused."""
    _, arts = digits
    doc = bundle_document(store, arts)
    vk = dict(arts.vk)
    vk["vk_alpha_1"] = list(vk["vk_alpha_1"])[:2][::-1] + ["1"]
    data = Web3.to_bytes(text=json.dumps(vk))
    doc["files"]["vk"] = {**doc["files"]["vk"], "cid": store.add(data), "size": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()}
    with pytest.raises(BundleError, match="tampered"):
        fetch_bundle(store, store.add_json(doc), tmp_path / "c2")


def test_wrong_expected_commitment_and_bad_documents(digits, store: EmbeddedStore, tmp_path: Path) -> None:
    _, arts = digits
    cid = publish_bundle(store, arts)
    with pytest.raises(BundleError, match="registered commitment"):
        fetch_bundle(store, cid, tmp_path / "c3", expected_commitment=arts.commitment + 1)
    with pytest.raises(BundleError, match="not a prover bundle"):
        fetch_bundle(store, store.add_json({"format": "something-else"}), tmp_path / "c4")
    doc = bundle_document(store, arts)
    doc["files"]["zkey"] = {**doc["files"]["zkey"], "name": "../../escape.zkey"}
    with pytest.raises(BundleError, match="unsafe file name"):
        fetch_bundle(store, store.add_json(doc), tmp_path / "c5")
    doc = bundle_document(store, arts)
    doc["files"]["wasm"] = {**doc["files"]["wasm"], "sha256": "00" * 32}
    with pytest.raises(BundleError, match="does not match"):
        fetch_bundle(store, store.add_json(doc), tmp_path / "c6")
    with pytest.raises(BundleError, match="no prover bundle CID"):
        fetch_bundle(store, "", tmp_path / "c7")
    other = EmbeddedStore(tmp_path / "empty-store")
    with pytest.raises(BundleError, match="cannot read prover bundle"):
        fetch_bundle(other, cid, tmp_path / "c8")


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    old = os.environ.get("VERINFER_CIRCUIT_CACHE")
    d = tmp_path_factory.mktemp("circuits")
    os.environ["VERINFER_CIRCUIT_CACHE"] = str(d)
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("VERINFER_CIRCUIT_CACHE", None)
        else:
            os.environ["VERINFER_CIRCUIT_CACHE"] = old


def test_private_mode_dev_key_round_trip(tiny_cache: Path, store: EmbeddedStore, tmp_path: Path) -> None:
    """Mode 2 with an INSECURE groth16py dev key (no zkey): the g16 key travels instead."""
    spec = load(random_spec(21, sizes=(5, 4, 3), name="tiny-bundle"))
    arts = pipeline.prepare(spec, "private", setup="dev")
    cid = publish_bundle(store, arts)
    doc = store.cat_json(cid)
    assert doc["mode"] == "private" and doc["setup"] == "dev" and doc["insecure"] is True
    assert "g16_pk" in doc["files"] and "zkey" not in doc["files"] and "transcript" not in doc["files"]
    got = fetch_bundle(store, cid, tmp_path / "tiny", expected_commitment=arts.commitment)
    assert got.zkey_path is None and got.keys.g16_pk_path is not None and got.keys.kind == "dev"
    _prove_and_verify(got, spec, [1, -2, 3, 4, -5])


def test_artifacts_cid_on_chain(digits, store: EmbeddedStore, w3: Web3, protocol: Protocol) -> None:
    """Publisher registers, deploys the verifier, publishes the bundle and records its CID on-chain."""
    spec, arts = digits
    publisher = funded_account(w3, 10**20)
    p = protocol.as_account(publisher)
    verifier = deploy_verifier(w3, publisher, arts)
    _, model_id = p.models.register_model(ModelInput(
        name=f"digits-bundle-{secrets.token_hex(4)}", weights_cid="bafkreidigitsbundletest",
        commitment=arts.commitment, verifier=verifier, proof_mode=1, num_layers=spec.num_layers,
        input_bits=spec.input_bits, output_bits=spec.output_bits))
    assert protocol.models.artifacts_cid(model_id) == ""
    cid = publish_bundle(store, arts)
    p.models.set_artifacts(model_id, cid)
    assert protocol.models.artifacts_cid(model_id) == cid
    ev = [e for e in protocol.models.events("ArtifactsPublished") if bytes(e.args["modelId"]) == model_id]
    assert len(ev) == 1 and ev[0].args["artifactsCid"] == cid
    with pytest.raises(VerinferError, match="ArtifactsAlreadySet"):
        p.models.set_artifacts(model_id, cid)
    model = protocol.models.get_model(model_id)
    got = fetch_bundle(store, protocol.models.artifacts_cid(model_id), expected_commitment=model.commitment)
    assert got.commitment == model.commitment


def test_model_publish_cli_publishes_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                protocol_manifest_path: Path, new_account, protocol: Protocol) -> None:
    """`verinfer model publish --proof-mode public` stores the bundle and records its CID on-chain."""
    from typer.testing import CliRunner

    from verinfer.commands.model import app
    from verinfer.storage import open_store

    store_dir = tmp_path / "store"
    monkeypatch.setenv("VERINFER_STORE", str(store_dir))
    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.setenv("VERINFER_MANIFEST", str(protocol_manifest_path))
    monkeypatch.setenv("PUBLISHER_KEY", new_account().key.hex())
    res = CliRunner().invoke(app, ["publish", "digits-mlp", "--key-env", "PUBLISHER_KEY", "--proof-mode", "public",
                                   "--setup", "shipped", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert protocol.models.artifacts_cid(out["model_id"]) == out["artifacts_cid"]
    model = protocol.models.get_model(out["model_id"])
    got = fetch_bundle(open_store(None, store_dir), out["artifacts_cid"], tmp_path / "node-cache",
                       expected_commitment=model.commitment)
    assert got.commitment == model.commitment and got.keys.record["source"].endswith(out["artifacts_cid"])


def test_node_proves_with_the_published_bundle(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                                               w3: Web3, protocol: Protocol, protocol_manifest_path: Path,
                                               digits) -> None:
    """A node with an empty circuit cache fetches the publisher's bundle via ModelRegistry.artifactsCid and proves."""
    from verinfer.chain.protocol import Status
    from verinfer.models.hashing import hash_vector
    from verinfer.models.tensor import encode_tensor
    from verinfer.devnet.cluster import NodeCluster
    from verinfer.devnet.processes import wait_for
    from verinfer.devnet.samples import sample_input

    class Cluster(NodeCluster):
        def _funded(self):  # the first funded account is the model's publisher
            acct = super()._funded()
            if not hasattr(self, "publisher"):
                self.publisher = acct
            return acct

    spec, arts = digits
    verifier = deploy_verifier(w3, protocol.account, arts)
    c = Cluster(tmp_path_factory.mktemp("node-bundle"), w3, protocol, protocol_manifest_path,
                verifier=verifier, proof_mode=1, commitment=int(arts.commitment))
    try:
        cid = publish_bundle(c.store, arts)
        protocol.as_account(c.publisher).models.set_artifacts(c.model_id, cid)
        # the nodes' prover cache is empty: only the bundle can give them a key without local setup work
        monkeypatch.setenv("VERINFER_CIRCUIT_CACHE", str(tmp_path_factory.mktemp("empty-circuit-cache")))
        nodes = c.start_many({i: [] for i in range(3)})
        x = sample_input(3)
        rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=90, reveal_blocks=10)
        assert c.wait_final(rid).status == Status.ACCEPTED
        wait_for(lambda: c.requester.market.get_request(rid).proven, 120, what="a ProofVerified")
        ev = [e for e in c.requester.market.events("ProofVerified") if int(e.args["requestId"]) == rid]
        prover = nodes[c.addresses.index(Web3.to_checksum_address(ev[0].args["prover"]))]
        # the node logs its success after the receipt; the test may see ProofVerified first
        wait_for(lambda: "proof verified on-chain" in prover.log(), 60, what="the prover's success log line")
        assert "proving with the bundle key" in prover.log()
    finally:
        c.stop_all()
