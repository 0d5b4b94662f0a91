"""Real, vendor-signed attestation evidence from public repositories (tests/data/attestation/*/SOURCE), verified
offline with dcap-qvl (Intel) or `cryptography` (AMD) as of the instant each vector is valid."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_utils import keccak

from verinfer.attestation import AttestationError
from verinfer.attestation.dcap import (
    declared_length,
    load_collateral,
    trim_quote,
    verify_dcap,
)
from verinfer.attestation.snp import AMD_ARK_SHA256, parse_snp_report, verify_snp

DATA = Path(__file__).parent / "data" / "attestation"
PHALA_AS_OF = int(datetime(2025, 6, 19, 12, 0, tzinfo=UTC).timestamp())
NEAR_AS_OF = 1786622400  # 2026-08-13 12:00 UTC, near/mpc VALID_ATTESTATION_TIMESTAMP
GOTDX_AS_OF = int(datetime(2023, 7, 1, 1, 0, tzinfo=UTC).timestamp())


def _b58decode(s: str) -> bytes:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = 0
    for ch in s:
        n = n * 58 + alphabet.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x00" * (len(s) - len(s.lstrip("1"))) + body


def _near_quote() -> bytes:
    return trim_quote(bytes(json.loads((DATA / "near-mpc" / "quote.json").read_text())))


def test_every_vendored_source_carries_its_licence() -> None:
    for d in sorted(p for p in DATA.iterdir() if p.is_dir()):
        assert (d / "LICENSE").read_text().strip(), d
        assert (d / "SOURCE").read_text().strip(), d


def test_phala_sgx_v3_quote_as_of_2025_06_19() -> None:
    raw = (DATA / "dcap-qvl" / "sgx_quote").read_bytes()
    v = verify_dcap(raw, load_collateral(DATA / "dcap-qvl" / "sgx_quote_collateral.json"), as_of=PHALA_AS_OF)
    assert (v.tee, v.quote_version) == ("SGX", 3)
    assert v.status == "ConfigurationAndSWHardeningNeeded"
    assert v.tcb_status_code == 2
    assert v.advisory_ids == ("INTEL-SA-00289", "INTEL-SA-00615")
    assert v.fmspc.upper() == "00A067110000"
    # fields come from the quote bytes: MRENCLAVE at header(48)+64, report data at 48+320
    assert v.mr_enclave == raw[48 + 64:48 + 96] == v.measurement
    assert v.report_data == raw[48 + 320:48 + 384]
    assert v.quote_hash == keccak(raw) and v.root_fingerprint == "intel-production"


def test_phala_tdx_v4_quote_as_of_2025_06_19() -> None:
    padded = (DATA / "dcap-qvl" / "tdx_quote").read_bytes()
    raw = trim_quote(padded)  # tappd hands out a zero-filled buffer
    assert len(padded) - len(raw) == 70 and not any(padded[len(raw):])
    with pytest.raises(AttestationError, match=r"^parse: quote padded: 70 bytes after the signature data$"):
        verify_dcap(padded, load_collateral(DATA / "dcap-qvl" / "tdx_quote_collateral.json"), as_of=PHALA_AS_OF)
    v = verify_dcap(raw, load_collateral(DATA / "dcap-qvl" / "tdx_quote_collateral.json"), as_of=PHALA_AS_OF)
    assert (v.tee, v.quote_version, v.status, v.advisory_ids) == ("TDX", 4, "UpToDate", ())
    body = raw[48:48 + 584]
    assert v.mr_enclave == body[136:184]
    assert v.rtmrs == tuple(body[328 + 48 * i:376 + 48 * i] for i in range(4))
    assert v.measurement == keccak(body[136:184] + body[328:520])


def test_real_collateral_outside_its_window_fails_naming_the_step() -> None:
    raw = trim_quote((DATA / "dcap-qvl" / "tdx_quote").read_bytes())
    coll = load_collateral(DATA / "dcap-qvl" / "tdx_quote_collateral.json")
    with pytest.raises(AttestationError, match=r"^DCAP verification as of 2025-06-18T12:00:00Z: TCBInfo issue date is in the future"):
        verify_dcap(raw, coll, as_of=PHALA_AS_OF - 86400)
    with pytest.raises(AttestationError, match=r"^DCAP verification as of 2025-08-01.*: TCBInfo expired$"):
        verify_dcap(raw, coll, as_of=int(datetime(2025, 8, 1, tzinfo=UTC).timestamp()))


def test_near_mpc_dstack_tdx_quote_binds_its_two_keys() -> None:
    raw = _near_quote()
    v = verify_dcap(raw, load_collateral(DATA / "near-mpc" / "collateral.json"), as_of=NEAR_AS_OF)
    assert (v.tee, v.quote_version, v.status) == ("TDX", 4, "UpToDate")
    # near/mpc ReportDataV1: version (2 bytes BE) || sha3-384(tls key || account key) || zero padding
    tls = _b58decode((DATA / "near-mpc" / "near_p2p_public_key.pub").read_text().strip().removeprefix("ed25519:"))
    acct = _b58decode((DATA / "near-mpc" / "near_account_public_key.pub").read_text().strip().removeprefix("ed25519:"))
    assert len(tls) == len(acct) == 32
    expected = (1).to_bytes(2, "big") + hashlib.sha3_384(tls + acct).digest()
    assert v.report_data == expected + bytes(64 - len(expected))
    assert v.report_data != (1).to_bytes(2, "big") + hashlib.sha3_384(acct + tls).digest() + bytes(14)


def test_go_tdx_guest_negative_vector_has_no_matching_tcb_level() -> None:
    file = (DATA / "go-tdx-guest" / "tdx_prod_quote_SPR_E4.dat").read_bytes()
    # go-tdx-guest appends "extra bytes(only for testing purpose)" after the quote: not zeros, so not trimmed
    assert file.endswith(b"extra bytes(only for testing purpose)\n") and trim_quote(file) == file
    with pytest.raises(AttestationError, match=r"^parse: quote padded"):
        verify_dcap(file, load_collateral(DATA / "go-tdx-guest" / "collateral.json"), as_of=GOTDX_AS_OF)
    raw = file[:declared_length(file)]
    coll = load_collateral(DATA / "go-tdx-guest" / "collateral.json")
    with pytest.raises(AttestationError, match=r"^DCAP verification as of 2023-07-01T01:00:00Z: No matching TCB level found$"):
        verify_dcap(raw, coll, as_of=GOTDX_AS_OF)


def test_a_real_quote_with_another_platforms_collateral_fails() -> None:
    raw = trim_quote((DATA / "dcap-qvl" / "tdx_quote").read_bytes())
    # near/mpc's collateral carries its own platform's PCK chain, whose key did not sign this quote's QE report
    with pytest.raises(AttestationError, match=r"^DCAP verification as of .*: Signature is invalid for qe_report in quote$"):
        verify_dcap(raw, load_collateral(DATA / "near-mpc" / "collateral.json"), as_of=NEAR_AS_OF)


# ------------------------------------------------------------------------------------------------ AMD SEV-SNP


def _snp() -> tuple[bytes, bytes, bytes]:
    d = DATA / "virtee-sev"
    report = bytes.fromhex("".join((d / "report_milan.hex").read_text().split()))
    return report, (d / "vcek_milan.der").read_bytes(), (d / "cert_chain_milan").read_bytes()


SNP_AS_OF = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())


def test_virtee_snp_milan_report_verifies_to_amd_root() -> None:
    report, vcek, chain = _snp()
    v = verify_snp(report, vcek, chain, as_of=SNP_AS_OF)
    assert v.reported_tcb == {"boot_loader": 3, "tee": 0, "snp": 8, "microcode": 0x73}
    assert v.measurement_raw == report[0x90:0xC0] and v.measurement == keccak(report[0x90:0xC0])
    assert parse_snp_report(report).version == 2
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    ark = x509.load_pem_x509_certificates(chain)[1]
    assert ark.fingerprint(hashes.SHA256()).hex() == AMD_ARK_SHA256["Milan"]


def test_snp_tampered_report_fails_at_the_signature() -> None:
    report, vcek, chain = _snp()
    bad = bytearray(report)
    bad[0x90] ^= 1  # one bit of the measurement
    with pytest.raises(AttestationError, match=r"^report signature: does not verify with the VCEK$"):
        verify_snp(bytes(bad), vcek, chain, as_of=SNP_AS_OF)


def test_snp_bad_framing_chain_and_time() -> None:
    report, vcek, chain = _snp()
    with pytest.raises(AttestationError, match=r"^parse: SEV-SNP report truncated"):
        verify_snp(report[:-1], vcek, chain, as_of=SNP_AS_OF)
    with pytest.raises(AttestationError, match=r"^parse: SEV-SNP report padded"):
        verify_snp(report + b"\x00", vcek, chain, as_of=SNP_AS_OF)
    wrong_version = (1).to_bytes(4, "little") + report[4:]
    with pytest.raises(AttestationError, match=r"^version: unsupported SEV-SNP report version 1"):
        verify_snp(wrong_version, vcek, chain, as_of=SNP_AS_OF)
    with pytest.raises(AttestationError, match=r"^AMD chain: ARK is not AMD's pinned Milan root$"):
        verify_snp(report, vcek, chain, as_of=SNP_AS_OF, ark_sha256="00" * 32)
    with pytest.raises(AttestationError, match=r"^AMD chain: .*SEV-VCEK.* is not valid at 2031"):
        verify_snp(report, vcek, chain, as_of=int(datetime(2031, 1, 1, tzinfo=UTC).timestamp()))
    _ask, ark = chain.split(b"-----END CERTIFICATE-----\n", 1)
    with pytest.raises(AttestationError, match=r"^AMD chain: VCEK is not signed by CN=ARK-Milan"):  # ASK replaced by the ARK
        verify_snp(report, vcek, ark + ark, as_of=SNP_AS_OF)
