"""`verinfer audit` on a real network: anvil, three `verinfer node run` processes (one lying), real
Groth16 proofs with the shipped digits keys, the embedded content store and test-PKI evidence recorded in
the AttestationRegistry.

One module-scoped network serves every test: a proven request (honest majority, faulty node
slashed), an invalid-input request, then tampered variants — a corrupted output object, a proof
checked against other public signals, a quote whose bytes no longer hash to the record, and a
model registered with a commitment no key hashes to.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from eth_account import Account
from web3 import Web3

from verinfer.attestation.evidence import evidence_bundle
from verinfer.attestation.testpki import TestPKI
from verinfer.auditor import Auditor, AuditReport, Verdict
from verinfer.chain.attestation_registry import (
    AttestationRegistry,
    attest_devnet,
    binding_for,
    configure_devnet,
    verify_and_record,
)
from verinfer.chain.devnet import funded_account
from verinfer.chain.protocol import Protocol, Status
from verinfer.devnet.cluster import NodeCluster
from verinfer.devnet.processes import wait_for
from verinfer.devnet.samples import sample_input
from verinfer.models.hashing import hash_vector
from verinfer.models.tensor import encode_tensor
from verinfer.storage import open_store

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Net:
    cluster: NodeCluster
    pki_path: Path
    root_pem: bytes
    proven_rid: int
    invalid_rid: int
    good_quote: bytes
    verifier: Any


def _registry(protocol: Protocol, account=None) -> AttestationRegistry:  # type: ignore[no-untyped-def]
    sender = protocol.as_account(account).sender if account is not None else protocol.sender
    return AttestationRegistry(protocol.w3, protocol.manifest.address("AttestationRegistry"), sender)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, w3: Web3, protocol: Protocol,
        protocol_manifest_path: Path) -> Iterator[Net]:
    from verinfer.chain.verifier import deploy_verifier
    from verinfer.models.spec import load_builtin
    from verinfer.prover import pipeline

    root = tmp_path_factory.mktemp("audit")
    arts = pipeline.prepare(load_builtin("digits-mlp"), "public", setup="shipped")
    verifier = deploy_verifier(w3, protocol.account, arts)
    c = NodeCluster(root, w3, protocol, protocol_manifest_path, verifier=verifier, proof_mode=1,
                    commitment=int(arts.commitment))
    pki = TestPKI.generate()
    pki_path = root / "test-pki.json"
    pki.save(pki_path)
    verifier_acct = funded_account(w3)
    configure_devnet(protocol, verifier_acct.address)  # timelock (account 0 proposes): name a verifier, allow-list
    attest_devnet(_registry(protocol, verifier_acct), c.addresses[0], pki, c.store.add)
    quote = b""
    c.start_many({0: [], 1: [], 2: ["--fault", "wrong-output"]})
    try:
        x = sample_input(3)
        rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=60, reveal_blocks=30)
        bad = c.request(b'{"not": "a tensor"}', hash_vector(sample_input(4), 8), commit_blocks=60, reveal_blocks=30)
        assert c.wait_final(rid, 120).status == Status.ACCEPTED
        assert c.wait_final(bad, 120).status == Status.INVALID_INPUT
        wait_for(lambda: c.requester.market.get_request(rid).proven, 120, what="the proof")
        yield Net(c, pki_path, pki.root_pem, rid, bad, quote, verifier_acct)
    finally:
        c.stop_all()


def _auditor(n: Net, store_dir: Path | None = None) -> Auditor:
    return Auditor(n.cluster.protocol, open_store(root=store_dir or n.cluster.store_dir), trusted_root_pem=n.root_pem)


def _verdicts(report: AuditReport) -> dict[str, Verdict]:
    return {c.name: c.verdict for c in report.claims}


def test_proven_request_passes_every_check(net: Net) -> None:
    report = _auditor(net).audit(net.proven_rid)
    assert report.ok, [c.to_json() for c in report.failures]
    v = _verdicts(report)
    for name in ("model.weights", "model.commitment", "model.verifier", "model.profile", "input", "output.payload",
                 "output.reexecution", "quorum.committee", "quorum.reveals", "quorum.outcome", "quorum.settlement",
                 "proof.tx", "proof.local", "proof.onchain", "proof.output"):
        assert v[name] is Verdict.PASS, report.claim(name)
    assert "shipped keys" in report.claim("model.commitment").detail
    assert "groth16py ok" in report.claim("proof.local").detail and "snarkjs ok" in report.claim("proof.local").detail
    # the lying node was out-voted and contradicted by the proof: 2 paid, 1 slashed, half of it to the prover
    detail = report.claim("quorum.settlement").detail
    assert "2 paid" in detail and "1 slashed" in detail and "to the prover" in detail, detail
    assert "re-drawn from blockhash" in report.claim("quorum.committee").detail
    a = net.cluster.addresses
    assert v[f"attestation.{a[0]}"] is Verdict.PASS
    assert v[f"attestation.{a[1]}"] is Verdict.NA and v[f"attestation.{a[2]}"] is Verdict.NA
    assert any("INSECURE" in n for n in report.notes)  # shipped keys come from a local phase 1


def test_invalid_input_request_audits_as_a_confirmed_invalid_outcome(net: Net) -> None:
    report = _auditor(net).audit(net.invalid_rid)
    assert report.ok, [c.to_json() for c in report.failures]
    inp = report.claim("input")
    assert inp.verdict is Verdict.PASS and "INVALID_INPUT outcome confirmed" in inp.detail and "keys must be" in inp.detail
    assert report.claim("output.payload").verdict is Verdict.PASS
    assert report.claim("output.reexecution").verdict is Verdict.NA
    assert report.claim("proof.local").verdict is Verdict.NA
    # V2: the requester pays the committee for checking an invalid input (only the division dust comes back)
    detail = report.claim("quorum.settlement").detail
    assert "3 paid" in detail and "0 slashed" in detail, detail


def test_corrupted_output_object_fails_the_output_claim(net: Net, tmp_path: Path) -> None:
    store_copy = tmp_path / "store"
    shutil.copytree(net.cluster.store_dir, store_copy)
    out_cid = _auditor(net).audit(net.proven_rid).context.output_cid  # V2: the CID lives in Revealed events
    block = open_store(root=store_copy).block_path(out_cid)
    raw = bytearray(block.read_bytes())
    i = raw.index(b"[") + 1  # flip a digit of the first logit: still JSON, different bytes
    raw[i] = ord("7") if raw[i] != ord("7") else ord("6")
    block.write_bytes(bytes(raw))
    report = _auditor(net, store_copy).audit(net.proven_rid)
    assert not report.ok
    c = report.claim("output.payload")
    assert c.verdict is Verdict.FAIL and out_cid in c.detail and "match" in c.detail.lower()
    # everything not resting on that object still passes
    assert report.claim("output.reexecution").verdict is Verdict.PASS
    assert report.claim("proof.onchain").verdict is Verdict.PASS


def test_proof_against_other_public_signals_fails_locally_and_on_chain(net: Net) -> None:
    auditor = _auditor(net)
    report = auditor.audit(net.proven_rid)
    ctx = report.context
    words, prover, out_hash = ctx.proof_words, ctx.prover, ctx.request.output_hash
    assert words and prover
    good = auditor.verify_proof(ctx, prover, out_hash, words)
    assert [c.verdict for c in good] == [Verdict.PASS, Verdict.PASS]
    # the same proof claimed by another account: requestBinding differs
    thief = Account.from_key(secrets.token_bytes(32)).address
    stolen = auditor.verify_proof(ctx, thief, out_hash, words)
    assert [c.verdict for c in stolen] == [Verdict.FAIL, Verdict.FAIL]
    assert "REJECTS" in stolen[0].detail and "false" in stolen[1].detail
    # another output hash with the right binding
    other = auditor.verify_proof(ctx, prover, hash_vector([1] * 10, 32), words)
    assert [c.verdict for c in other] == [Verdict.FAIL, Verdict.FAIL]
    # explicit wrong signals (the rebuilt ones with the binding negated)
    pub = auditor.public_signals(ctx, prover, out_hash)
    from verinfer.chain.protocol import FIELD

    forged = auditor.verify_proof(ctx, prover, out_hash, words, public_signals=pub[:-1] + [FIELD - pub[-1]])
    assert [c.verdict for c in forged] == [Verdict.FAIL, Verdict.FAIL]
    assert "differ from the ones rebuilt" in forged[1].detail
    # a flipped proof word
    bad_words = list(words)
    bad_words[6] ^= 1
    assert [c.verdict for c in auditor.verify_proof(ctx, prover, out_hash, bad_words)] == [Verdict.FAIL, Verdict.FAIL]


def test_tampered_attestation_evidence_fails_its_node(net: Net) -> None:
    c = net.cluster
    node1 = c.accounts[1]
    pki = TestPKI.load(net.pki_path)
    as_verifier = _registry(c.protocol, net.verifier)
    anchor, rd = binding_for(as_verifier, node1.address)
    quote = pki.quote(rd)
    ts = int(c.w3.eth.get_block("latest")["timestamp"])
    coll = pki.collateral(datetime.fromtimestamp(ts, UTC) - timedelta(hours=1))
    flipped = bytearray(quote)
    flipped[100] ^= 0x01
    # the verifier records the genuine quote's hashes but the CID points at a bundle with flipped bytes
    bad_cid = c.store.add(evidence_bundle(bytes(flipped), coll))
    verify_and_record(as_verifier, node1.address, quote, coll, anchor, quote_cid=bad_cid, root_ca_der=pki.root_der)
    try:
        report = _auditor(net).audit(net.proven_rid)
        bad = report.claim(f"attestation.{node1.address}")
        assert bad.verdict is Verdict.FAIL and "quoteHash" in bad.detail, bad
        assert report.claim(f"attestation.{c.addresses[0]}").verdict is Verdict.PASS
        assert not report.ok and [f.name for f in report.failures] == [bad.name]
        # a genuine bundle recorded for the node re-verifies, but it was recorded after the request was made:
        # it says nothing about this request (N/A here; FAIL for a member of a TEE-only model)
        attest_devnet(as_verifier, node1.address, pki, c.store.add)
        late = _auditor(net).audit(net.proven_rid).claim(f"attestation.{node1.address}")
        assert late.verdict is Verdict.NA and "not attested for this request" in late.detail, late
        # without a trusted root the evidence cannot be re-verified: N/A (the model does not require a TEE)
        no_root = Auditor(c.protocol, open_store(root=c.store_dir)).audit(net.proven_rid)
        assert no_root.claim(f"attestation.{node1.address}").verdict is Verdict.NA
    finally:
        _registry(c.protocol, node1).revoke_attestation()


def test_model_with_a_commitment_no_key_hashes_to_fails(net: Net, tmp_path: Path, w3: Web3, protocol: Protocol,
                                                        protocol_manifest_path: Path) -> None:
    model = net.cluster.protocol.models.get_model(net.cluster.model_id)
    wrong = NodeCluster(tmp_path, w3, protocol, protocol_manifest_path, n_nodes=1, verifier=model.verifier,
                        proof_mode=1, commitment=(model.commitment + 1))
    x = sample_input(1)
    rid = wrong.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8))  # nobody serves it: stays PENDING
    report = Auditor(protocol, open_store(root=wrong.store_dir)).audit(rid)
    c = report.claim("model.commitment")
    assert c.verdict is Verdict.FAIL and "no verification key" in c.detail and "shipped keys" in c.detail
    assert report.claim("model.weights").verdict is Verdict.PASS
    assert report.claim("input").verdict is Verdict.PASS
    assert report.claim("quorum.outcome").verdict is Verdict.NA
    # the CLI: table, exit 2 on a FAIL
    r = _cli(str(rid), "--rpc-url", wrong.rpc_url, "--manifest", str(protocol_manifest_path),
             "--store", str(wrong.store_dir))
    assert r.returncode == 2, r.stderr
    assert "FAIL" in r.stdout and "AUDIT FAILED" in r.stdout and "Traceback" not in r.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verinfer.cli", "audit", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_cli_json_on_the_proven_request(net: Net, protocol_manifest_path: Path) -> None:
    c = net.cluster
    r = _cli(str(net.proven_rid), "--rpc-url", c.rpc_url, "--manifest", str(protocol_manifest_path),
             "--store", str(c.store_dir), "--trusted-root", str(net.pki_path), "--json", "--backend", "groth16py")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["format"] == "verinfer.audit.v1" and doc["ok"] is True and doc["status"] == "ACCEPTED"
    assert doc["counts"]["FAIL"] == 0
    by = {x["name"]: x for x in doc["claims"]}
    assert by["proof.onchain"]["verdict"] == "PASS"
    assert by[f"attestation.{c.addresses[0]}"]["verdict"] == "PASS"
    assert "snarkjs" not in by["proof.local"]["detail"]


def test_cli_unknown_request_is_one_line_error(net: Net, protocol_manifest_path: Path) -> None:
    c = net.cluster
    for rid in ("999999", "0", "abc"):
        r = _cli(rid, "--rpc-url", c.rpc_url, "--manifest", str(protocol_manifest_path), "--store", str(c.store_dir))
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: request"), r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
    r = _cli("1", "--rpc-url", "http://127.0.0.1:9", "--manifest", str(protocol_manifest_path))
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "error:" in r.stderr


def test_private_mode_commitment_is_the_weights_commitment(net: Net, tmp_path: Path, w3: Web3, protocol: Protocol,
                                                           protocol_manifest_path: Path) -> None:
    """Mode 2: the registry's commitment must equal weights_commitment(spec) of the fetched weights.

    The model is the tiny spec of tests/test_audit_private.py, not digits-mlp: model.verifier rebuilds the
    model's private circuit to look for keys, and digits-mlp's costs ~60 s of circom on an empty cache (the rule
    checked here does not depend on the model)."""
    from verinfer.devnet.samples import random_spec
    from verinfer.models.spec import load as load_spec
    from verinfer.models.spec import weights_commitment

    tiny = load_spec(random_spec(7))
    # V2 needs a verifier for every proof mode at registration; the public-weights one stands in (it verifies
    # another key, which model.verifier reports; model.commitment is what this test is about)
    other_verifier = net.cluster.protocol.models.get_model(net.cluster.model_id).verifier
    good = NodeCluster(tmp_path / "good", w3, protocol, protocol_manifest_path, n_nodes=1, proof_mode=2,
                       verifier=other_verifier, spec=tiny)
    bad = NodeCluster(tmp_path / "bad", w3, protocol, protocol_manifest_path, n_nodes=1, proof_mode=2,
                      verifier=other_verifier, commitment=weights_commitment(tiny) ^ 1, spec=tiny)
    x = [5, -7, 100, -128, 0, 42]
    for cluster, verdict in ((good, Verdict.PASS), (bad, Verdict.FAIL)):
        assert cluster.spec is tiny
        rid = cluster.request(encode_tensor(x, "int8", [6]), hash_vector(x, 8))
        report = Auditor(protocol, open_store(root=cluster.store_dir)).audit(rid)
        c = report.claim("model.commitment")
        assert c.verdict is verdict and "weights_commitment(spec)" in c.detail, c
        assert report.claim("model.verifier").verdict is Verdict.FAIL  # the stand-in verifies the public-mode key


def test_cli_finds_the_devnet_test_pki_beside_the_manifest(net: Net, protocol_manifest_path: Path,
                                                           tmp_path: Path) -> None:
    c = net.cluster
    manifest = tmp_path / "manifest.json"
    shutil.copyfile(protocol_manifest_path, manifest)
    shutil.copyfile(net.pki_path, tmp_path / "test-pki.json")
    r = _cli(str(net.proven_rid), "--rpc-url", c.rpc_url, "--manifest", str(manifest), "--store", str(c.store_dir),
             "--json", "--backend", "groth16py")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert {x["name"]: x["verdict"] for x in doc["claims"]}[f"attestation.{c.addresses[0]}"] == "PASS"
    assert any("devnet TEST PKI" in n and "INSECURE" in n for n in doc["notes"])
    # a --trusted-root that is not a certificate is a one-line user error
    bogus = tmp_path / "root.pem"
    bogus.write_text("not a certificate")
    r = _cli(str(net.proven_rid), "--rpc-url", c.rpc_url, "--manifest", str(manifest), "--trusted-root", str(bogus))
    assert r.returncode == 1 and r.stderr.startswith("error: --trusted-root") and "Traceback" not in r.stderr
