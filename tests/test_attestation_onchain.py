"""Attestation on a real devnet through the AttestationRegistry (protocol V2): record → eligibility →
re-verify from the evidence bundle by CID → revoke / tamper, and the `verinfer attestation` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from verinfer.attestation.testpki import MOCK_WORKER_MR_ENCLAVE
from verinfer.chain.attestation_registry import (
    PKI_FILENAME,
    attest_on_devnet,
    check_record,
    configure_devnet,
    devnet_pki,
    registry_of,
)
from verinfer.chain.devnet import funded_account
from verinfer.errors import ConfigError
from verinfer.storage import EmbeddedStore


@pytest.fixture(scope="module")
def setup(protocol, w3, tmp_path_factory, protocol_manifest_path):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("attest")
    store = EmbeddedStore(tmp / "store")
    manifest = tmp / "manifest.json"
    manifest.write_bytes(Path(protocol_manifest_path).read_bytes())  # the test PKI lives beside it
    verifier = funded_account(w3)
    configure_devnet(protocol, verifier.address)  # through the timelock (account 0 proposes and executes)
    node = funded_account(w3)
    return node, verifier, store, manifest


def test_recorded_node_reverifies_and_revoked_measurement_fails(protocol, setup) -> None:  # type: ignore[no-untyped-def]
    node, verifier, store, manifest = setup
    registry = registry_of(protocol)
    assert not registry.is_attested(node.address)
    ev, _ = attest_on_devnet(protocol, node.address, store, manifest, verifier=verifier)
    assert registry.is_attested(node.address) and ev.measurement == MOCK_WORKER_MR_ENCLAVE
    assert (manifest.parent / PKI_FILENAME).is_file()
    root = devnet_pki(protocol.w3, manifest.parent / PKI_FILENAME).root_der
    ok = check_record(protocol, node.address, store, root)
    assert ok.ok, ok.reason
    # governance removes the measurement: the record no longer counts (chain and re-verification agree)
    protocol.govern(registry, "setMeasurementAllowed", MOCK_WORKER_MR_ENCLAVE, False)
    try:
        assert not registry.is_attested(node.address)
        bad = check_record(protocol, node.address, store, root)
        assert not bad.ok and "not eligible now" in bad.reason
    finally:
        protocol.govern(registry, "setMeasurementAllowed", MOCK_WORKER_MR_ENCLAVE, True)
    # evidence checked against another root fails at the chain of trust
    other = check_record(protocol, node.address, store, devnet_pki(protocol.w3, manifest.parent / "other.json").root_der)
    assert not other.ok


def test_tampered_bundle_in_store_is_caught(protocol, setup) -> None:  # type: ignore[no-untyped-def]
    node, _, store, manifest = setup
    rec = registry_of(protocol).get_attestation(node.address)
    path = store.block_path(rec.quote_cid)
    raw = bytearray(path.read_bytes())
    raw[120] ^= 1
    path.write_bytes(bytes(raw))
    root = devnet_pki(protocol.w3, manifest.parent / PKI_FILENAME).root_der
    r = check_record(protocol, node.address, store, root)
    assert not r.ok and "not retrievable" in r.reason


def test_unnamed_verifier_is_refused_before_sending(protocol, setup, w3) -> None:  # type: ignore[no-untyped-def]
    node, _, store, manifest = setup
    with pytest.raises(ConfigError, match="not a named attestation verifier"):
        attest_on_devnet(protocol, node.address, store, manifest, verifier=funded_account(w3))


def test_cli_verify_root_and_bad_address(devnet, setup, protocol) -> None:  # type: ignore[no-untyped-def]
    node, verifier, store, manifest = setup
    fresh = funded_account(protocol.w3)
    attest_on_devnet(protocol, fresh.address, store, manifest, verifier=verifier)
    env = {**os.environ, "VERINFER_STORE": str(store.root)}
    env.pop("VERINFER_TEST_PKI", None)
    base = [sys.executable, "-m", "verinfer.cli", "attestation"]
    common = ["--rpc-url", devnet.rpc_url, "--manifest", str(manifest)]
    r = subprocess.run(base + ["verify", fresh.address] + common, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    unknown = Account.create().address
    r = subprocess.run(base + ["verify", unknown] + common, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "no attestation record" in r.stdout
    r = subprocess.run(base + ["verify", "0x1234"] + common, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "not an address" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(base + ["root"] + common, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("-----BEGIN CERTIFICATE-----")
