"""Intel SGX / TDX DCAP quotes verified by `dcap-qvl`, the one verifier for both TEEs and both roots.

Intel's production root (built into dcap-qvl) and the devnet's labelled test root (`testpki`, passed as
`root_ca_der`) go through the same dcap-qvl code: PCK chain + CRLs → TCB info and QE identity signatures
and validity windows → QE report → attestation key → quote signature → TCB level match. Verification is
"as of" an explicit unix time (the registering block's timestamp), so an auditor re-running it later with
the same quote, collateral and time gets the same answer.

Every failure raises `AttestationError` whose one-line message starts with the step that failed.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dcap_qvl  # ships a .pyi for its extension
from eth_utils import keccak

from verinfer.attestation.verify import AttestationError

SGX_BODY_LEN = 384
TDX10_BODY_LEN = 584
TDX15_BODY_LEN = 648
HEADER_LEN = 48
TEE_TYPE_SGX = 0x00000000
TEE_TYPE_TDX = 0x00000081

# TCB status names as dcap-qvl reports them, numbered like Automata's on-chain TCBStatus enum
# (the numbering AttestationRegistry stores and its accepted-status mask uses).
TCB_STATUS_CODES: dict[str, int] = {
    "UpToDate": 0,
    "SWHardeningNeeded": 1,
    "ConfigurationAndSWHardeningNeeded": 2,
    "ConfigurationNeeded": 3,
    "OutOfDate": 4,
    "OutOfDateConfigurationNeeded": 5,
    "Revoked": 6,
}
TCB_STATUS_UNRECOGNIZED = 7
COLLATERAL_FIELDS = (
    "pck_crl_issuer_chain", "root_ca_crl", "pck_crl", "tcb_info_issuer_chain", "tcb_info",
    "tcb_info_signature", "qe_identity_issuer_chain", "qe_identity", "qe_identity_signature",
)


def _fail(step: str, detail: str) -> AttestationError:
    return AttestationError(f"{step}: {' '.join(str(detail).split())}")


@dataclass(frozen=True)
class DcapVerdict:
    """What a verified SGX/TDX quote proves, as of `as_of`."""

    tee: str  # "SGX" | "TDX"
    quote_version: int
    status: str  # dcap-qvl TCB status, e.g. "UpToDate"
    tcb_status_code: int  # Automata numbering (0 UpToDate … 6 Revoked, 7 unrecognized)
    advisory_ids: tuple[str, ...]
    measurement: bytes  # 32 bytes: SGX MRENCLAVE; TDX keccak(MRTD || RTMR0..3)
    mr_enclave: bytes  # SGX MRENCLAVE (32) or TDX MRTD (48)
    mr_signer: bytes  # SGX MRSIGNER (32); empty for TDX
    rtmrs: tuple[bytes, ...]  # TDX RTMR0..3; empty for SGX
    report_data: bytes  # 64 bytes
    fmspc: str
    quote_hash: bytes  # keccak256(raw quote)
    collateral_hash: bytes  # keccak256 of the canonical collateral JSON
    as_of: int  # unix seconds the verification was done "as of"
    root_fingerprint: str  # sha256 of the trusted root's DER ("intel-production" when dcap-qvl's built-in root)


# ----------------------------------------------------------------------------------------------- collateral


def canonical_collateral(collateral: dict[str, Any]) -> bytes:
    """The collateral's canonical bytes (sorted keys, no spaces): what `collateral_hash` commits to."""
    missing = [k for k in COLLATERAL_FIELDS if k not in collateral]
    if missing:
        raise _fail("collateral", f"missing field(s) {', '.join(missing)}")
    fields = {k: collateral[k] for k in (*COLLATERAL_FIELDS, "pck_certificate_chain") if collateral.get(k) is not None}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def collateral_hash(collateral: dict[str, Any]) -> bytes:
    """keccak256 of the canonical collateral: recorded on-chain so an auditor re-verifies with the same bytes."""
    return keccak(canonical_collateral(collateral))


def load_collateral(source: Path | str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Read collateral JSON (dcap-qvl / PCCS field names; byte fields hex) from a file, bytes or dict."""
    if isinstance(source, dict):
        data: Any = source
    else:
        try:
            text = Path(source).read_text() if isinstance(source, (str, Path)) else source.decode()
            data = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail("collateral", f"cannot read collateral JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _fail("collateral", "collateral JSON is not an object")
    canonical_collateral(data)  # field check
    return data


def _to_qvl(collateral: dict[str, Any]) -> Any:
    try:
        return dcap_qvl.QuoteCollateralV3.from_json(canonical_collateral(collateral).decode())
    except ValueError as exc:
        raise _fail("collateral", f"malformed collateral: {exc}") from None


# ----------------------------------------------------------------------------------------------- framing


def declared_length(raw: bytes) -> int:
    """The length the quote's own header and length fields declare (raises `parse:`/`version:` if unreadable)."""
    return _frame(raw)[2]


def trim_quote(raw: bytes) -> bytes:
    """Drop zero bytes after the declared end: TDX quote generators hand out fixed-size, zero-filled buffers.

    Only zeros are dropped; anything else after the declared end stays and fails `check_framing` as padding.
    """
    n = declared_length(raw)
    if len(raw) > n and not any(raw[n:]):
        return raw[:n]
    return raw


def check_framing(raw: bytes) -> tuple[int, int]:
    """Exact-length check of a v3/v4/v5 quote: (version, tee type). Truncated, padded and unknown versions fail here."""
    version, tee_type, expected = _frame(raw)
    if len(raw) < expected:
        raise _fail("parse", f"quote truncated: {len(raw)} bytes, its signature data needs {expected}")
    if len(raw) > expected:
        raise _fail("parse", f"quote padded: {len(raw) - expected} bytes after the signature data")
    return version, tee_type


def _frame(raw: bytes) -> tuple[int, int, int]:
    if len(raw) < HEADER_LEN:
        raise _fail("parse", f"quote truncated: {len(raw)} bytes, a header alone is {HEADER_LEN}")
    version, key_type, tee_type = struct.unpack_from("<HHI", raw, 0)
    if version == 3:
        if tee_type != TEE_TYPE_SGX:
            raise _fail("version", f"v3 quote with TEE type {tee_type:#x} (v3 is SGX only)")
        body_end = HEADER_LEN + SGX_BODY_LEN
    elif version == 4:
        if tee_type not in (TEE_TYPE_SGX, TEE_TYPE_TDX):
            raise _fail("version", f"unknown TEE type {tee_type:#x}")
        body_end = HEADER_LEN + (TDX10_BODY_LEN if tee_type == TEE_TYPE_TDX else SGX_BODY_LEN)
    elif version == 5:
        if len(raw) < HEADER_LEN + 6:
            raise _fail("parse", f"quote truncated: {len(raw)} bytes, no v5 body descriptor")
        _body_type, body_size = struct.unpack_from("<HI", raw, HEADER_LEN)
        body_end = HEADER_LEN + 6 + body_size
    else:
        raise _fail("version", f"unsupported quote version {version} (SGX v3, TDX v4/v5)")
    if key_type != 2:
        raise _fail("version", f"unsupported attestation key type {key_type} (ECDSA P-256 only)")
    if len(raw) < body_end + 4:
        raise _fail("parse", f"quote truncated: {len(raw)} bytes, body and signature length need {body_end + 4}")
    (sig_len,) = struct.unpack_from("<I", raw, body_end)
    return version, tee_type, body_end + 4 + sig_len


# ----------------------------------------------------------------------------------------------- verify


def tdx_measurement(mr_td: bytes, rtmrs: tuple[bytes, ...]) -> bytes:
    """The 32-byte TDX measurement AttestationRegistry allow-lists: keccak256(MRTD || RTMR0 || … || RTMR3)."""
    return keccak(mr_td + b"".join(rtmrs))


def verify_dcap(raw: bytes, collateral: dict[str, Any], *, as_of: int, root_ca_der: bytes | None = None) -> DcapVerdict:
    """Verify an SGX v3 / TDX v4-v5 quote with dcap-qvl as of `as_of` (unix seconds).

    `root_ca_der=None` trusts Intel's production SGX root (built into dcap-qvl); otherwise the given root
    (the devnet's labelled test root) is the only trust anchor.
    """
    version, _tee_type = check_framing(raw)
    coll = _to_qvl(collateral)
    try:
        if root_ca_der is None:
            report = dcap_qvl.verify(raw, coll, int(as_of))
        else:
            report = dcap_qvl.verify_with_root_ca(raw, coll, root_ca_der, int(as_of))
    except ValueError as exc:
        when = datetime.fromtimestamp(int(as_of), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = str(exc).removeprefix("Verification failed: ")
        raise _fail(f"DCAP verification as of {when}", detail) from None
    parsed = dcap_qvl.parse_quote(raw)
    body = parsed.report
    status = str(report.status)
    rtmrs: tuple[bytes, ...]
    if parsed.is_tdx():
        rtmrs = (bytes(body.rt_mr0), bytes(body.rt_mr1), bytes(body.rt_mr2), bytes(body.rt_mr3))
        mr = bytes(body.mr_td)
        measurement, signer, tee = tdx_measurement(mr, rtmrs), b"", "TDX"
    else:
        rtmrs = ()
        mr = bytes(body.mr_enclave)
        measurement, signer, tee = mr, bytes(body.mr_signer), "SGX"
    return DcapVerdict(
        tee=tee,
        quote_version=version,
        status=status,
        tcb_status_code=TCB_STATUS_CODES.get(status, TCB_STATUS_UNRECOGNIZED),
        advisory_ids=tuple(report.advisory_ids),
        measurement=measurement,
        mr_enclave=mr,
        mr_signer=signer,
        rtmrs=rtmrs,
        report_data=bytes(body.report_data),
        fmspc=parsed.fmspc(),
        quote_hash=keccak(raw),
        collateral_hash=collateral_hash(collateral),
        as_of=int(as_of),
        root_fingerprint="intel-production" if root_ca_der is None else hashlib.sha256(root_ca_der).hexdigest(),
    )


def check_tcb_policy(verdict: DcapVerdict, accepted: tuple[str, ...] = ("UpToDate",)) -> None:
    """Refuse a TCB status governance does not accept (the same policy AttestationRegistry enforces on-chain)."""
    if verdict.status not in accepted:
        adv = f" (advisories {', '.join(verdict.advisory_ids)})" if verdict.advisory_ids else ""
        raise _fail("TCB policy", f"status {verdict.status}{adv} is not accepted (accepted: {', '.join(accepted)})")
