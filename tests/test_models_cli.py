"""`verinfer model publish|inspect|eval` against a real anvil devnet and the embedded content store."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from verinfer.client.publish import shard_layout_hash
from verinfer.commands.model import app
from verinfer.models.spec import builtin_path, load, reference_profile_hash, weights_commitment
from verinfer.storage import open_store

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch, protocol_manifest_path, new_account):
    store_dir = tmp_path / "store"
    monkeypatch.setenv("VERINFER_STORE", str(store_dir))
    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.setenv("VERINFER_MANIFEST", str(protocol_manifest_path))
    acct = new_account()
    monkeypatch.setenv("PUBLISHER_KEY", acct.key.hex())
    return {"store": store_dir, "account": acct}


def invoke(*args: str):
    res = runner.invoke(app, list(args), catch_exceptions=True)
    return res


def test_publish_registers_spec_commitment_profile(env, protocol):
    res = invoke("publish", str(builtin_path("digits-mlp")), "--key-env", "PUBLISHER_KEY", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    view = protocol.models.get_model(out["model_id"])
    spec = load(builtin_path("digits-mlp"))
    assert view.publisher == env["account"].address
    assert view.weights_cid == out["weights_cid"]
    assert view.commitment == weights_commitment(spec)
    assert view.execution_profile_hash == reference_profile_hash()
    assert view.proof_mode == 0 and not view.requires_tee
    assert (view.num_layers, view.input_bits, view.output_bits) == (2, 8, 32)
    # the registered CID resolves to the canonical spec: any node can fetch and verify it
    raw = open_store(None, env["store"]).cat(view.weights_cid)
    assert raw == spec.canonical_json() and load(raw) == spec

    # a second publish of the same name is the next version; split and TEE flags are recorded
    res2 = invoke("publish", "digits-mlp-large", "--key-env", "PUBLISHER_KEY", "--split", "1,2", "--requires-tee",
                  "--json")
    assert res2.exit_code == 0, res2.output
    view2 = protocol.models.get_model(json.loads(res2.stdout)["model_id"])
    assert view2.requires_tee and view2.num_layers == 3
    assert view2.shard_layout_hash == shard_layout_hash([1, 2], 3) != b"\x00" * 32


def test_publish_language_model(env, protocol):
    res = invoke("publish", "textgenrnn", "--key-env", "PUBLISHER_KEY", "--json")
    assert res.exit_code == 0, res.output
    view = protocol.models.get_model(json.loads(res.stdout)["model_id"])
    assert view.name == "textgenrnn" and view.output_bits == 32 and view.proof_mode == 0
    # issue 9: the manifest lists the model id by (publisher, name, version)
    from verinfer.chain.manifest import Manifest
    listed = Manifest.load(os.environ["VERINFER_MANIFEST"])
    assert listed.model_id("textgenrnn", publisher=env["account"].address) == json.loads(res.stdout)["model_id"]
    store = open_store(None, env["store"])
    published = json.loads(store.cat(view.weights_cid))
    assert published["format"] == "verinfer.lm.v1"
    weights = store.cat(published["weights_cid"])
    assert weights == (builtin_path("digits-mlp").parent / "textgenrnn_weights.hdf5").read_bytes()
    # newcomer obstacle: `inspect textgenrnn` shows the CID and commitment that publish registered
    shown = json.loads(invoke("inspect", "textgenrnn", "--json").stdout)
    assert shown["cid"] == view.weights_cid and int(shown["commitment"], 16) == view.commitment
    # ... and a registered model can be inspected by its 0x model id (read from the chain, fetched by CID)
    by_id = invoke("inspect", json.loads(res.stdout)["model_id"], "--json")
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout)["cid"] == view.weights_cid
    listing = invoke("list", "--json")
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.stdout)
    assert any(r["model_id"] == json.loads(res.stdout)["model_id"] and r["name"] == "textgenrnn"
               for r in rows["registered"])
    assert rows["builtin"] == ["digits-mlp", "digits-mlp-large", "digits-cnn", "textgenrnn"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["publish", "digits-mlp", "--key-env", "PUBLISHER_KEY", "--proof-mode", "magic"], "--proof-mode"),
        (["publish", "digits-mlp"], "exactly one of"),
        (["publish", "digits-mlp", "--key-env", "PUBLISHER_KEY", "--dev-account", "1"], "exactly one of"),
        (["publish", "digits-mlp", "--key-env", "NO_SUCH_VAR"], "NO_SUCH_VAR"),
        (["publish", "textgenrnn", "--key-env", "PUBLISHER_KEY", "--proof-mode", "public"], "no circuit"),
        (["publish", "digits-mlp", "--key-env", "PUBLISHER_KEY", "--split", "2"], "--split"),
        (["publish", "missing/spec.json", "--key-env", "PUBLISHER_KEY"], "does not exist"),
        # a mistyped built-in name names the built-ins, not a CID alphabet
        (["publish", "textgen", "--key-env", "PUBLISHER_KEY"], "built-in model (digits-mlp, digits-mlp-large, digits-cnn, textgenrnn)"),
        (["inspect", "0x" + "ab" * 32], "is not registered on this deployment"),
    ],
)
def test_publish_user_errors(env, args, needle):
    res = invoke(*args)
    assert res.exit_code != 0
    assert needle in str(res.exception) or needle in res.output


def test_inspect_and_eval(env, tmp_path):
    res = invoke("inspect", "digits-mlp-large", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    spec = load(builtin_path("digits-mlp-large"))
    assert info["parameters"] == spec.num_parameters == 50826
    assert [layer["out"] for layer in info["layers"]] == [256, 128, 10]
    assert info["layers"][0]["output_range"] == [0, 127]  # relu + clamp 8
    assert int(info["commitment"], 16) == weights_commitment(spec)
    # a CID published to the store can be inspected by CID
    cid = open_store(None, env["store"]).add(load(builtin_path("digits-mlp")).canonical_json())
    by_cid = invoke("inspect", cid, "--json")
    assert by_cid.exit_code == 0 and json.loads(by_cid.stdout)["cid"] == cid
    human = invoke("inspect", "textgenrnn")
    assert human.exit_code == 0 and "textgenrnn.char-lstm" in human.stdout
    ev = invoke("eval", "digits-mlp")
    assert ev.exit_code == 0 and "525/540" in ev.stdout
    bad = invoke("eval", "textgenrnn")
    assert bad.exit_code != 0


def _publish_with_proof(env, protocol, w3, mode):
    res = invoke("publish", "digits-mlp", "--key-env", "PUBLISHER_KEY", "--proof-mode", mode, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    view = protocol.models.get_model(out["model_id"])
    assert view.proof_mode == {"public": 1, "private": 2}[mode]
    assert view.verifier == w3.to_checksum_address(out["verifier"]) and len(w3.eth.get_code(view.verifier)) > 0
    assert view.commitment == int(out["commitment"], 16) != 0
    assert "INSECURE" in out["warning"]
    return view


def test_publish_public_weights_deploys_verifier(env, protocol, w3):
    _publish_with_proof(env, protocol, w3, "public")


@pytest.mark.slow
def test_publish_private_weights_commits_to_weights(env, protocol, w3):
    view = _publish_with_proof(env, protocol, w3, "private")
    assert view.commitment == weights_commitment(load(builtin_path("digits-mlp")))


def test_publish_with_keystore_and_dev_account(env, protocol, accounts, tmp_path, monkeypatch):
    from verinfer.node.keystore import create_keystore

    monkeypatch.setenv("VERINFER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VERINFER_PASSWORD", raising=False)
    create_keystore("publisher", "s3cret", private_key=env["account"].key, scrypt_n=2**4)
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    res = invoke("publish", "digits-mlp", "--key", "publisher", "--password-file", str(pw), "--json")
    assert res.exit_code == 0, res.output
    assert protocol.models.get_model(json.loads(res.stdout)["model_id"]).publisher == env["account"].address
    pw.write_text("wrong\n")
    bad = invoke("publish", "digits-mlp", "--key", "publisher", "--password-file", str(pw))
    assert bad.exit_code != 0 and "wrong password" in str(bad.exception)
    assert protocol.w3.eth.chain_id == 31337  # the test devnet is anvil: development keys are allowed
    dev = invoke("publish", "digits-mlp", "--dev-account", "3", "--json")
    assert dev.exit_code == 0, dev.output
    assert protocol.models.get_model(json.loads(dev.stdout)["model_id"]).publisher == accounts[3].address
