"""The SGX DCAP v3 path end to end on the test PKI: layout, every verification step, and tampering."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import pytest

from verinfer.attestation import AttestationError, QuoteFormatError, parse_quote, report_data_for, verify_quote
from verinfer.attestation.quote import HEADER_LEN, REPORT_BODY_LEN
from verinfer.attestation.record import make_mock_record, quote_hash
from verinfer.attestation.testpki import MOCK_WORKER_MR_ENCLAVE, TestPKI

ADDR = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate()


@pytest.fixture(scope="module")
def quote(pki: TestPKI) -> bytes:
    return pki.quote(report_data_for(ADDR, 31337))


def test_layout_matches_intel_v3(quote: bytes) -> None:
    version, key_type = struct.unpack_from("<HH", quote, 0)
    assert (version, key_type) == (3, 2)
    q = parse_quote(quote)
    # the MRENCLAVE sits at offset 112 of the quote (48-byte header + 64 into the report body)
    assert quote[112:144] == MOCK_WORKER_MR_ENCLAVE == q.report.mr_enclave
    # report data is the last 64 bytes of the report body
    assert quote[HEADER_LEN + 320 : HEADER_LEN + REPORT_BODY_LEN] == q.report.report_data
    (sig_len,) = struct.unpack_from("<I", quote, HEADER_LEN + REPORT_BODY_LEN)
    assert HEADER_LEN + REPORT_BODY_LEN + 4 + sig_len == len(quote)
    assert b"BEGIN CERTIFICATE" in q.cert_data and q.cert_type == 5


def test_valid_quote_verifies_and_binds_address(pki: TestPKI, quote: bytes) -> None:
    vq = verify_quote(quote, pki.root_pem, expected_address=ADDR, expected_chain_id=31337)
    assert vq.bound_address == ADDR and vq.chain_id == 31337
    assert vq.mr_enclave == MOCK_WORKER_MR_ENCLAVE


def test_wrong_binding_rejected(pki: TestPKI, quote: bytes) -> None:
    with pytest.raises(AttestationError, match="binds"):
        verify_quote(quote, pki.root_pem, expected_address="0x" + "11" * 20)
    with pytest.raises(AttestationError, match="chain"):
        verify_quote(quote, pki.root_pem, expected_chain_id=1)


@pytest.mark.parametrize(
    "offset,step",
    [
        (HEADER_LEN + 64, "quote"),  # flip a bit of MRENCLAVE: quote signature breaks
        (HEADER_LEN + 320, "quote"),  # report data
        (HEADER_LEN + REPORT_BODY_LEN + 4 + 64 + 64 + 10, "QE report"),  # QE report body
        (HEADER_LEN + REPORT_BODY_LEN + 4 + 10, "quote"),  # the ECDSA signature itself
    ],
)
def test_tampered_quote_fails_at_the_right_step(pki: TestPKI, quote: bytes, offset: int, step: str) -> None:
    bad = bytearray(quote)
    bad[offset] ^= 0x01
    with pytest.raises(AttestationError, match=step):
        verify_quote(bytes(bad), pki.root_pem)


def test_swapped_attestation_key_breaks_qe_binding(pki: TestPKI, quote: bytes) -> None:
    other = TestPKI.generate()
    other_quote = other.quote(report_data_for(ADDR, 31337))
    off = HEADER_LEN + REPORT_BODY_LEN + 4 + 64
    spliced = quote[:off] + other_quote[off : off + 64] + quote[off + 64 :]
    with pytest.raises(AttestationError, match="QE report data"):
        verify_quote(spliced, pki.root_pem)


def test_untrusted_root_rejected(quote: bytes) -> None:
    with pytest.raises(AttestationError, match="trusted root"):
        verify_quote(quote, TestPKI.generate().root_pem)


def test_expired_chain_rejected(pki: TestPKI, quote: bytes) -> None:
    later = datetime.now(timezone.utc) + timedelta(days=4000)
    with pytest.raises(AttestationError, match="not valid"):
        verify_quote(quote, pki.root_pem, now=later)


@pytest.mark.parametrize("cut", [0, 10, HEADER_LEN + 5, 700, -1])
def test_truncated_or_padded_quote_is_a_format_error(quote: bytes, cut: int) -> None:
    raw = quote + b"\x00" if cut == -1 else quote[:cut]
    with pytest.raises(QuoteFormatError):
        parse_quote(raw)


def test_pki_persists(tmp_path, pki: TestPKI) -> None:
    p = tmp_path / "pki.json"
    pki.save(p)
    again = TestPKI.load_or_create(p)
    q = again.quote(report_data_for(ADDR, 5))
    verify_quote(q, pki.root_pem, expected_address=ADDR, expected_chain_id=5)
    assert oct(p.stat().st_mode & 0o777) == "0o600"


def test_mock_record_fields(pki: TestPKI) -> None:
    stored: dict[str, bytes] = {}

    def put(b: bytes) -> str:
        stored["q"] = b
        return "bafytestcid"

    rec, q = make_mock_record(pki, ADDR, 31337, put, expires_at=1000)
    assert stored["q"] == q and rec.quoteHash == quote_hash(q) and rec.quoteCid == "bafytestcid"
    assert rec.measurement == MOCK_WORKER_MR_ENCLAVE and rec.verifiedBy == 255 and rec.teeType == 1
