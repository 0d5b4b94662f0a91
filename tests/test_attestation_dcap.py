"""The devnet's labelled test PKI goes through the same dcap-qvl code as Intel-signed quotes, and every kind of
bad input fails with a one-line message naming the failed step."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from verinfer.attestation import AttestationError
from verinfer.attestation.binding import binding_report_data, check_binding
from verinfer.attestation.dcap import (
    canonical_collateral,
    check_tcb_policy,
    verify_dcap,
)
from verinfer.attestation.evidence import (
    check_evidence,
    read_collateral_file,
    read_quote_file,
    verify_evidence,
)
from verinfer.attestation.record import TeeType
from verinfer.attestation.testpki import MOCK_WORKER_MR_ENCLAVE, TestPKI

NODE = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20
REGISTRY = "0x" + "12" * 20
CHAIN = 31337
ANCHOR, ANCHOR_HASH = 100, keccak(b"block 100")
NOW = datetime.now(UTC).replace(microsecond=0)
AS_OF = int(NOW.timestamp())


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate()


@pytest.fixture(scope="module")
def quote(pki: TestPKI) -> bytes:
    return pki.quote(binding_report_data(NODE, CHAIN, REGISTRY, ANCHOR, ANCHOR_HASH))


@pytest.fixture(scope="module")
def collateral(pki: TestPKI) -> dict[str, str]:
    return pki.collateral(NOW - timedelta(hours=1))


def _check(ev, **kw):  # type: ignore[no-untyped-def]
    args = {"node": NODE, "chain_id": CHAIN, "registry": REGISTRY, "anchor_block": ANCHOR, "anchor_block_hash": ANCHOR_HASH}
    args.update(kw)
    check_evidence(ev, **args)


def test_test_pki_quote_verifies_through_dcap_qvl(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    v = verify_dcap(quote, collateral, as_of=AS_OF, root_ca_der=pki.root_der)
    assert (v.tee, v.quote_version, v.status, v.advisory_ids, v.tcb_status_code) == ("SGX", 3, "UpToDate", (), 0)
    assert v.measurement == MOCK_WORKER_MR_ENCLAVE
    assert v.fmspc.upper() == "00906ED50000"
    assert v.collateral_hash == keccak(canonical_collateral(collateral))
    ev = verify_evidence(quote, collateral, as_of=AS_OF, root_ca_der=pki.root_der)
    assert ev.tee == TeeType.SGX and ev.trust.startswith("TEST PKI (INSECURE")
    assert ev.valid_until == int((NOW - timedelta(hours=1) + timedelta(days=30)).timestamp())
    _check(ev, measurement_allowed=lambda m: m == MOCK_WORKER_MR_ENCLAVE, quote_used=lambda h: False)
    text = "\n".join(ev.lines())
    assert "tee: SGX" in text and "tcb status: UpToDate as of" in text and "advisories: none" in text


def test_production_root_refuses_the_test_pki(quote: bytes, collateral: dict[str, str]) -> None:
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*Z: Failed to parse root CA CRL .*InvalidCrlSignature"):
        verify_dcap(quote, collateral, as_of=AS_OF)  # Intel's root: the test PKI is not trusted


def test_another_test_root_is_refused(quote: bytes, collateral: dict[str, str]) -> None:
    with pytest.raises(AttestationError, match=r"^DCAP verification as of "):
        verify_dcap(quote, collateral, as_of=AS_OF, root_ca_der=TestPKI.generate().root_der)


def test_out_of_date_tcb_is_reported_with_advisories_then_refused_by_policy(pki: TestPKI, quote: bytes) -> None:
    coll = pki.collateral(NOW - timedelta(hours=1), tcb_status="OutOfDate", advisory_ids=("INTEL-SA-00615",))
    ev = verify_evidence(quote, coll, as_of=AS_OF, root_ca_der=pki.root_der)
    assert (ev.tcb_status, ev.tcb_status_code, ev.advisory_ids) == ("OutOfDate", 4, ("INTEL-SA-00615",))
    with pytest.raises(AttestationError, match=r"^TCB policy: status OutOfDate \(advisories INTEL-SA-00615\) is not accepted"):
        _check(ev)
    _check(ev, accepted_tcb=("UpToDate", "OutOfDate"))  # governance may accept it
    with pytest.raises(AttestationError, match=r"^TCB policy: status OutOfDate"):
        check_tcb_policy(verify_dcap(quote, coll, as_of=AS_OF, root_ca_der=pki.root_der))


# ------------------------------------------------------------------------------------------ bad input, step by step


def test_truncated_quote(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    for cut in (10, 200, len(quote) - 1):
        with pytest.raises(AttestationError, match=r"^parse: quote truncated"):
            verify_dcap(quote[:cut], collateral, as_of=AS_OF, root_ca_der=pki.root_der)


def test_padded_quote(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    with pytest.raises(AttestationError, match=r"^parse: quote padded: 3 bytes after the signature data$"):
        verify_dcap(quote + b"abc", collateral, as_of=AS_OF, root_ca_der=pki.root_der)


def test_wrong_version_quote(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    for version in (2, 6):
        bad = version.to_bytes(2, "little") + quote[2:]
        with pytest.raises(AttestationError, match=rf"^version: unsupported quote version {version}"):
            verify_dcap(bad, collateral, as_of=AS_OF, root_ca_der=pki.root_der)
    tdx_tag = quote[:4] + (0x81).to_bytes(4, "little") + quote[8:]
    with pytest.raises(AttestationError, match=r"^version: v3 quote with TEE type 0x81"):
        verify_dcap(tdx_tag, collateral, as_of=AS_OF, root_ca_der=pki.root_der)


def test_expired_collateral(pki: TestPKI, quote: bytes) -> None:
    old = pki.collateral(NOW - timedelta(days=40))  # next update 10 days ago
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*Z: CrlExpired"):  # CRLs checked first
        verify_dcap(quote, old, as_of=AS_OF, root_ca_der=pki.root_der)
    future = pki.collateral(NOW + timedelta(days=1))
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*Z: TCBInfo issue date is in the future$"):
        verify_dcap(quote, future, as_of=AS_OF, root_ca_der=pki.root_der)


def test_revoked_pck_certificate(pki: TestPKI, quote: bytes) -> None:
    coll = pki.collateral(NOW - timedelta(hours=1), revoke_pck=True)
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*Z: .*(certificate chain|Revoked)"):
        verify_dcap(quote, coll, as_of=AS_OF, root_ca_der=pki.root_der)


def test_revoked_tcb_level(pki: TestPKI, quote: bytes) -> None:
    coll = pki.collateral(NOW - timedelta(hours=1), tcb_status="Revoked")
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*Z: TCB status is invalid: Revoked$"):
        verify_dcap(quote, coll, as_of=AS_OF, root_ca_der=pki.root_der)


def test_tampered_report_body(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    bad = bytearray(quote)
    bad[48 + 64] ^= 1  # MRENCLAVE
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*Z: .*(signature|Signature)"):
        verify_dcap(bytes(bad), collateral, as_of=AS_OF, root_ca_der=pki.root_der)


def test_tampered_collateral(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    bad = dict(collateral)
    bad["tcb_info"] = bad["tcb_info"].replace('"tcbEvaluationDataNumber":1', '"tcbEvaluationDataNumber":2')
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*Z: Signature is invalid for tcb_info"):
        verify_dcap(quote, bad, as_of=AS_OF, root_ca_der=pki.root_der)
    missing = {k: v for k, v in collateral.items() if k != "pck_crl"}
    with pytest.raises(AttestationError, match=r"^collateral: missing field\(s\) pck_crl$"):
        verify_dcap(quote, missing, as_of=AS_OF, root_ca_der=pki.root_der)


def test_wrong_binding(pki: TestPKI, collateral: dict[str, str]) -> None:
    ev = verify_evidence(pki.quote(binding_report_data(OTHER, CHAIN, REGISTRY, ANCHOR, ANCHOR_HASH)), collateral,
                         as_of=AS_OF, root_ca_der=pki.root_der)
    with pytest.raises(AttestationError, match=r"^binding: report data does not bind node 0xabab"):
        _check(ev)
    base: dict[str, Any] = {"chain_id": CHAIN, "registry": REGISTRY, "anchor_block": ANCHOR, "anchor_block_hash": ANCHOR_HASH}
    kw: dict[str, Any]
    for kw in ({"chain_id": 1}, {"registry": OTHER}, {"anchor_block": ANCHOR + 1}, {"anchor_block_hash": bytes(32)}):
        with pytest.raises(AttestationError, match=r"^binding: "):
            check_binding(ev.report_data, OTHER, **{**base, **kw})
    legacy = pki.quote(bytes(64))  # no verinfer binding at all
    ev2 = verify_evidence(legacy, collateral, as_of=AS_OF, root_ca_der=pki.root_der)
    with pytest.raises(AttestationError, match=r"^binding: report data version 0, expected 1$"):
        _check(ev2)


def test_replayed_quote(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    ev = verify_evidence(quote, collateral, as_of=AS_OF, root_ca_der=pki.root_der)
    used = {ev.quote_hash}
    with pytest.raises(AttestationError, match=r"^replay: quote 0x[0-9a-f]{64} was already used for an attestation$"):
        _check(ev, quote_used=lambda h: h in used)


def test_measurement_not_allow_listed(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    ev = verify_evidence(quote, collateral, as_of=AS_OF, root_ca_der=pki.root_der)
    with pytest.raises(AttestationError, match=r"^measurement: 0x[0-9a-f]{64} is not allow-listed$"):
        _check(ev, measurement_allowed=lambda m: False)


def test_every_error_is_one_line(pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    bad_inputs = [quote[:100], quote + b"\x01", b"\x07\x00" + quote[2:]]
    for raw in bad_inputs:
        with pytest.raises(AttestationError) as ei:
            verify_dcap(raw, collateral, as_of=AS_OF, root_ca_der=pki.root_der)
        assert "\n" not in str(ei.value) and ":" in str(ei.value)


def test_quote_and_collateral_files(tmp_path: Path, pki: TestPKI, quote: bytes, collateral: dict[str, str]) -> None:
    (tmp_path / "q.bin").write_bytes(quote + bytes(30))  # zero-filled buffer from a quote generator
    (tmp_path / "q.hex").write_text("0x" + quote.hex() + "\n")
    (tmp_path / "q.json").write_text(json.dumps(list(quote)))
    (tmp_path / "c.json").write_text(json.dumps(collateral))
    for name in ("q.bin", "q.hex", "q.json"):
        assert read_quote_file(tmp_path / name) == quote
    assert read_collateral_file(tmp_path / "c.json") == collateral
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(AttestationError, match=r"^collateral: cannot read"):
        read_collateral_file(tmp_path / "bad.json")
    with pytest.raises(AttestationError, match=r"^parse: cannot read quote file"):
        read_quote_file(tmp_path / "missing.bin")


def test_old_pki_file_is_upgraded_and_keeps_its_root(tmp_path: Path, pki: TestPKI) -> None:
    p = tmp_path / "pki.json"
    pki.save(p)
    d = json.loads(p.read_text())
    del d["tcb_key"], d["tcb"]
    p.write_text(json.dumps(d))
    again = TestPKI.load(p)
    assert again.root_der == pki.root_der
    q = again.quote(binding_report_data(NODE, CHAIN, REGISTRY, ANCHOR, ANCHOR_HASH))
    v = verify_dcap(q, again.collateral(NOW - timedelta(hours=1)), as_of=AS_OF, root_ca_der=pki.root_der)
    assert v.status == "UpToDate"


def test_test_pki_tdx_quote_verifies_through_dcap_qvl(pki: TestPKI) -> None:
    from verinfer.attestation.dcap import tdx_measurement
    from verinfer.attestation.testpki import MOCK_TD_MRTD, MOCK_TD_RTMRS

    rd = binding_report_data(NODE, CHAIN, REGISTRY, ANCHOR, ANCHOR_HASH)
    q = pki.tdx_quote(rd)
    coll = pki.collateral(NOW - timedelta(hours=1), tee="TDX")
    ev = verify_evidence(q, coll, as_of=AS_OF, root_ca_der=pki.root_der)
    assert (ev.tee, ev.tcb_status) == (TeeType.TDX, "UpToDate")
    assert ev.measurement == tdx_measurement(MOCK_TD_MRTD, MOCK_TD_RTMRS)
    _check(ev)
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*: Unsupported QE Identity id/version .*expected TD_QE"):
        verify_dcap(q, pki.collateral(NOW - timedelta(hours=1)), as_of=AS_OF, root_ca_der=pki.root_der)
    with pytest.raises(AttestationError, match=r"^parse: quote truncated"):
        verify_dcap(q[:700], coll, as_of=AS_OF, root_ca_der=pki.root_der)
