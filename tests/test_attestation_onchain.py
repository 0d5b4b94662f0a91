"""The attestation record on a real devnet: issue → store → anchor → eligibility → re-verify → tamper."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
from eth_account import Account

from verinfer.attestation import operator_flow
from verinfer.attestation.testpki import MOCK_WORKER_MR_ENCLAVE
from verinfer.chain.errors import ContractError
from verinfer.chain.devnet import funded_account
from verinfer.chain.protocol import ModelInput, ModelShard
from verinfer.storage import EmbeddedStore

ETHER = 10**18


def _funded(w3):
    return funded_account(w3)


@pytest.fixture(scope="module")
def setup(protocol, w3, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attest")
    store = EmbeddedStore(tmp / "store")
    pki_path = tmp / "pki.json"
    publisher = protocol.as_account(_funded(w3))
    _, model_id = publisher.models.register_model(
        ModelInput(name=f"tee-{secrets.token_hex(4)}", weights_cid="bafkqaaa", commitment=1, requires_tee=True))
    node = _funded(w3)
    p = protocol.as_account(node)
    p.nodes.register("http://127.0.0.1:1", [ModelShard(model_id)], stake=protocol.nodes.min_stake())
    return p, store, pki_path, model_id


def test_unlisted_measurement_is_refused_on_chain(protocol, setup) -> None:
    p, store, pki_path, _ = setup
    protocol.nodes.set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, False)
    with pytest.raises(ContractError) as e:
        operator_flow.attest(p, store=store, pki_path=pki_path)
    assert "MeasurementNotAllowed" in e.value.error_name


def test_attested_node_becomes_eligible_and_record_reverifies(protocol, setup) -> None:
    p, store, pki_path, model_id = setup
    node = p.account.address
    assert not protocol.nodes.is_eligible(node, model_id, True)
    protocol.nodes.set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, True)
    operator_flow.attest(p, store=store, pki_path=pki_path)
    rec = protocol.nodes.get_attestation(node)
    assert bytes(rec.measurement) == MOCK_WORKER_MR_ENCLAVE and rec.verified_by == 255
    assert protocol.nodes.is_eligible(node, model_id, True)
    root = operator_flow.devnet_pki(p, pki_path).root_pem
    ok = operator_flow.check_record(protocol, node, root, store=store)
    assert ok.ok, ok.reason

    # governance revokes the measurement: the record stops counting, on-chain and for the auditor
    protocol.nodes.set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, False)
    assert not protocol.nodes.is_eligible(node, model_id, True)
    bad = operator_flow.check_record(protocol, node, root, store=store)
    assert not bad.ok and "allow-listed" in bad.reason
    protocol.nodes.set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, True)


def test_tampered_quote_in_store_is_caught(protocol, setup) -> None:
    p, store, pki_path, _ = setup
    node = p.account.address
    rec = protocol.nodes.get_attestation(node)
    # corrupt the stored block on disk: the content store itself refuses it
    path = store.block_path(rec.quote_cid)
    raw = bytearray(path.read_bytes())
    raw[120] ^= 1
    path.write_bytes(bytes(raw))
    root = operator_flow.devnet_pki(p, pki_path).root_pem
    r = operator_flow.check_record(protocol, node, root, store=store)
    assert not r.ok and "not retrievable" in r.reason


def test_quote_for_another_key_is_refused_before_sending(protocol, setup, new_account, tmp_path) -> None:
    p, store, pki_path, _ = setup
    pki = operator_flow.devnet_pki(p, pki_path)
    from verinfer.attestation import report_data_for

    other = Account.create().address
    q = tmp_path / "q.bin"
    q.write_bytes(pki.quote(report_data_for(other, 31337)))
    from verinfer.errors import ConfigError

    with pytest.raises(ConfigError, match="binds"):
        operator_flow.attest(p, q, store=store, pki_path=pki_path)


def test_cli_verify_and_bad_address(protocol_manifest_path, devnet, setup, tmp_path) -> None:
    p, store, pki_path, _ = setup
    env = {"VERINFER_TEST_PKI": str(pki_path), "VERINFER_STORE": str(store.root), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    base = [sys.executable, "-m", "verinfer.cli", "attestation"]
    common = ["--rpc-url", devnet.rpc_url, "--manifest", str(protocol_manifest_path)]
    r = subprocess.run(base + ["verify", "0x1234"] + common, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "not an address" in r.stderr
    assert "Traceback" not in r.stderr
