"""AttestationRegistry on a real anvil chain: a test-PKI quote bound to (node, chain, registry, recent block hash),
verified by dcap-qvl as of the block time, recorded by a named verifier; replay, wrong binding, self-submission
and measurement revocation all fail or disqualify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_utils import keccak
from web3 import Web3

from verinfer.attestation import AttestationError
from verinfer.attestation.binding import binding_report_data
from verinfer.attestation.evidence import (
    check_evidence,
    evidence_bundle,
    verify_evidence,
)
from verinfer.attestation.testpki import MOCK_WORKER_MR_ENCLAVE, TestPKI
from verinfer.chain.attestation_registry import (
    VERIFIED_BY_VERIFIER,
    AttestationRegistry,
    VerifiedEvidence,
    accepted_tcb_names,
    attest_devnet,
    attest_quote,
    audit_node,
    binding_for,
    configure_devnet,
    deploy_attestation_registry,
    find_anchor_block,
    verify_and_record,
)
from verinfer.chain.devnet import funded_account
from verinfer.chain.errors import ContractError
from verinfer.chain.tx import sender_for


@pytest.fixture(scope="module")
def env(w3: Web3):  # type: ignore[no-untyped-def]
    gov, verifier, node = funded_account(w3), funded_account(w3), funded_account(w3)
    address = deploy_attestation_registry(w3, gov)

    def reg(acct):  # type: ignore[no-untyped-def]
        return AttestationRegistry(w3, address, sender_for(w3, acct))

    reg(gov).set_verifier(verifier.address, True)
    reg(gov).set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, True)
    return reg, gov, verifier, node, TestPKI.generate()


def _evidence(w3: Web3, reg: AttestationRegistry, pki: TestPKI, node: str, bind_to: str | None = None):  # type: ignore[no-untyped-def]
    """The node's side: anchor on the latest block, have the (simulated) TEE quote the binding."""
    anchor = w3.eth.get_block("latest")
    rd = binding_report_data(bind_to or node, w3.eth.chain_id, reg.address, anchor["number"], bytes(anchor["hash"]))
    quote = pki.quote(rd)
    as_of = int(anchor["timestamp"])
    ev = verify_evidence(quote, pki.collateral(datetime.fromtimestamp(as_of, UTC) - timedelta(hours=1)),
                         as_of=as_of, root_ca_der=pki.root_der)
    return ev, anchor["number"], bytes(anchor["hash"])


def test_binding_matches_the_contract(w3: Web3, env) -> None:  # type: ignore[no-untyped-def]
    reg, _, _, node, _ = env
    r = reg(node)
    anchor = w3.eth.get_block(w3.eth.block_number - 1)
    ours = binding_report_data(node.address, w3.eth.chain_id, r.address, anchor["number"], bytes(anchor["hash"]))
    assert r.expected_report_data(node.address, anchor["number"]) == ours
    other = binding_report_data(node.address, w3.eth.chain_id + 1, r.address, anchor["number"], bytes(anchor["hash"]))
    assert r.expected_report_data(node.address, anchor["number"]) != other


def test_verifier_records_checked_evidence_and_node_becomes_attested(w3: Web3, env) -> None:  # type: ignore[no-untyped-def]
    reg, gov, verifier, node, pki = env
    r = reg(verifier)
    ev, anchor, anchor_hash = _evidence(w3, r, pki, node.address)
    check_evidence(ev, node=node.address, chain_id=w3.eth.chain_id, registry=r.address, anchor_block=anchor,
                   anchor_block_hash=anchor_hash, measurement_allowed=r.measurement_allowed, quote_used=r.quote_used)
    r.record_attestation(VerifiedEvidence.from_evidence(ev, node.address, anchor, "bafkreiquote"))
    assert r.is_attested(node.address)
    rec = r.get_attestation(node.address)
    assert (rec.tee_type, rec.verified_by, rec.tcb_status) == (1, VERIFIED_BY_VERIFIER, 0)
    assert (rec.measurement, rec.quote_hash, rec.collateral_hash) == (MOCK_WORKER_MR_ENCLAVE, ev.quote_hash, ev.collateral_hash)
    assert rec.verifier == verifier.address and rec.quote_cid == "bafkreiquote" and rec.anchor_block == anchor
    assert rec.expires_at <= rec.attested_at + r.max_attestation_age()

    # replay: the same quote again is refused off-chain (replay step) and on-chain (QuoteReplayed)
    with pytest.raises(AttestationError, match=r"^replay: "):
        check_evidence(ev, node=node.address, chain_id=w3.eth.chain_id, registry=r.address, anchor_block=anchor,
                       anchor_block_hash=anchor_hash, quote_used=r.quote_used)
    with pytest.raises(ContractError, match="QuoteReplayed"):
        r.record_attestation(VerifiedEvidence.from_evidence(ev, node.address, anchor, "bafkreiquote"))

    # revoking the measurement disqualifies at once
    reg(gov).set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, False)
    try:
        assert not r.is_attested(node.address)
    finally:
        reg(gov).set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, True)
    assert r.is_attested(node.address)


def test_quote_bound_to_another_node_is_refused(w3: Web3, env) -> None:  # type: ignore[no-untyped-def]
    reg, _, verifier, node, pki = env
    r = reg(verifier)
    thief = funded_account(w3)
    ev, anchor, anchor_hash = _evidence(w3, r, pki, thief.address, bind_to=node.address)
    with pytest.raises(AttestationError, match=r"^binding: "):
        check_evidence(ev, node=thief.address, chain_id=w3.eth.chain_id, registry=r.address, anchor_block=anchor,
                       anchor_block_hash=anchor_hash)
    with pytest.raises(ContractError, match="BindingMismatch"):
        r.record_attestation(VerifiedEvidence.from_evidence(ev, thief.address, anchor))
    assert not r.is_attested(thief.address)


def test_node_cannot_record_its_own_attestation(w3: Web3, env) -> None:  # type: ignore[no-untyped-def]
    reg, _, _, node, pki = env
    r = reg(node)
    ev, anchor, _ = _evidence(w3, r, pki, node.address)
    with pytest.raises(ContractError, match="NotVerifier"):
        r.record_attestation(VerifiedEvidence.from_evidence(ev, node.address, anchor))
    with pytest.raises(ContractError, match="NoDcapVerifier"):
        r.attest_on_chain(b"\x03\x00", anchor)


def test_verifier_flow_then_auditor_reverifies_as_of_the_recorded_time(w3: Web3, env) -> None:  # type: ignore[no-untyped-def]
    reg, gov, verifier, _, pki = env
    node = funded_account(w3)
    anchor, rd = binding_for(reg(node), node.address)  # what the node's TEE must quote
    quote = pki.quote(rd)
    assert find_anchor_block(reg(node), node.address, rd) == anchor  # an operator's quote file names no block
    with pytest.raises(AttestationError, match=r"^binding: report data binds 0x[0-9a-f]{40} to none of the last 256"):
        find_anchor_block(reg(node), funded_account(w3).address, rd)
    ts = int(w3.eth.get_block("latest")["timestamp"])
    collateral = pki.collateral(datetime.fromtimestamp(ts, UTC) - timedelta(hours=1))

    stale = pki.collateral(datetime.fromtimestamp(ts, UTC) - timedelta(hours=1), tcb_status="OutOfDate")
    with pytest.raises(AttestationError, match=r"^TCB policy: status OutOfDate"):  # refused before any transaction
        verify_and_record(reg(verifier), node.address, quote, stale, anchor, root_ca_der=pki.root_der)
    assert not reg(verifier).quote_used(keccak(quote))

    bundle = evidence_bundle(quote, collateral)
    ev, receipt = verify_and_record(reg(verifier), node.address, quote, collateral, anchor, quote_cid="bafkreibundle",
                                    root_ca_der=pki.root_der)
    assert receipt["status"] == 1 and reg(verifier).is_attested(node.address)
    assert reg(verifier).get_attestation(node.address).collateral_hash == ev.collateral_hash

    audit = audit_node(reg(gov), node.address, bundle, root_ca_der=pki.root_der)
    assert audit.ok and audit.binding_ok and audit.attested_now, audit.reason
    assert audit.evidence is not None and audit.evidence.as_of == audit.record.attested_at
    text = "\n".join(audit.lines())
    for want in ("verdict: ok", "tee: SGX", "tcb status: UpToDate as of", "advisories: none", "binding: ok",
                 "eligible now: yes", "expires at: ", "TEST PKI (INSECURE"):
        assert want in text, (want, text)

    other = evidence_bundle(pki.quote(rd), collateral)  # a fresh quote (new signature) is a different quote
    assert not audit_node(reg(gov), node.address, other, root_ca_der=pki.root_der).ok
    assert "quote: bytes do not hash" in audit_node(reg(gov), node.address, other, root_ca_der=pki.root_der).reason
    prod = audit_node(reg(gov), node.address, bundle)  # Intel's root: the test PKI is not trusted
    assert not prod.ok and prod.reason.startswith("DCAP verification as of ")
    assert not audit_node(reg(gov), node.address, b"{}", root_ca_der=pki.root_der).ok

    reg(gov).set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, False)
    try:
        after = audit_node(reg(gov), node.address, bundle, root_ca_der=pki.root_der)
        assert not after.ok and "not eligible now" in after.reason
    finally:
        reg(gov).set_measurement_allowed(MOCK_WORKER_MR_ENCLAVE, True)
    assert accepted_tcb_names(0b10011) == ("UpToDate", "SWHardeningNeeded", "OutOfDate")


def test_operator_flows_store_one_bundle_and_record(w3: Web3, env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from verinfer.storage import EmbeddedStore

    reg, gov, verifier, _, pki = env
    store = EmbeddedStore(tmp_path / "store")
    # devnet: simulated TEE (test PKI), SGX and TDX
    configure_devnet(reg(gov), verifier.address)
    for tee in ("SGX", "TDX"):
        node = funded_account(w3)
        ev, _ = attest_devnet(reg(verifier), node.address, pki, store.add, tee=tee)
        rec = reg(gov).get_attestation(node.address)
        assert rec.tee_type == (1 if tee == "SGX" else 2) and ev.tee.name == tee
        audit = audit_node(reg(gov), node.address, store.cat(rec.quote_cid), root_ca_der=pki.root_der)
        assert audit.ok, audit.reason
    # an operator's files: the quote binds a block the operator chose; the CLI finds it
    node = funded_account(w3)
    _, rd = binding_for(reg(node), node.address)
    quote = pki.quote(rd)
    ts = int(w3.eth.get_block("latest")["timestamp"])
    coll = pki.collateral(datetime.fromtimestamp(ts, UTC) - timedelta(hours=1))
    ev, _ = attest_quote(reg(node), reg(verifier), node.address, quote, coll, store.add, root_ca_der=pki.root_der)
    assert reg(gov).is_attested(node.address) and ev.quote_hash == keccak(quote)
    with pytest.raises(AttestationError, match=r"^replay: "):
        attest_quote(reg(node), reg(verifier), node.address, quote, coll, store.add, root_ca_der=pki.root_der)
