"""One entry point for TEE evidence: read the files, verify as of a time, check binding / policy / replay / allow-list.

This is what `verinfer operator attest --quote FILE --collateral FILE`, an attestation verifier and the auditor
call. It returns an `Evidence` (everything AttestationRegistry records and an auditor shows) or raises
`AttestationError` whose one-line message starts with the failed step:
`parse`, `version`, `collateral`, `DCAP verification as of …`, `AMD chain`, `VCEK`, `report signature`,
`TCB policy`, `binding`, `replay`, `measurement`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_utils import keccak

from verinfer.attestation.binding import check_binding
from verinfer.attestation.dcap import (
    TCB_STATUS_CODES,
    DcapVerdict,
    check_tcb_policy,
    collateral_hash,
    load_collateral,
    trim_quote,
    verify_dcap,
)
from verinfer.attestation.record import TeeType
from verinfer.attestation.snp import parse_snp_report, verify_snp
from verinfer.attestation.verify import AttestationError

SNP_REPORT_LEN = 0x4A0


@dataclass(frozen=True)
class Evidence:
    """Verified TEE evidence, as of `as_of`: the fields AttestationRegistry.VerifiedEvidence takes, and more."""

    tee: TeeType
    measurement: bytes  # 32 bytes, the allow-listed value
    quote_hash: bytes  # keccak256(quote / report bytes)
    collateral_hash: bytes  # keccak256(canonical collateral JSON)
    report_data: bytes  # 64 bytes
    tcb_status: str  # "UpToDate", … ("n/a" for SEV-SNP: the VCEK's TCB is what the report states)
    tcb_status_code: int  # Automata numbering, what the registry stores
    advisory_ids: tuple[str, ...]
    as_of: int
    valid_until: int  # unix seconds: collateral next update (DCAP) / VCEK expiry (SEV-SNP)
    trust: str  # which root: "Intel SGX root (production)", "TEST PKI (INSECURE) sha256:…", "AMD ARK Milan"
    details: tuple[tuple[str, str], ...]  # TEE-specific fields for display (MRENCLAVE, MRTD, RTMRs, TCB…)

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line (what the CLI and auditor print)."""
        when = datetime.fromtimestamp(self.as_of, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        until = datetime.fromtimestamp(self.valid_until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = [
            f"tee: {self.tee.name}",
            f"measurement: 0x{self.measurement.hex()}",
            f"tcb status: {self.tcb_status} as of {when}",
            f"advisories: {', '.join(self.advisory_ids) or 'none'}",
            f"trust: {self.trust}",
            f"quote hash: 0x{self.quote_hash.hex()}",
            f"collateral hash: 0x{self.collateral_hash.hex()}",
            f"collateral valid until: {until}",
        ]
        out += [f"{k}: {v}" for k, v in self.details]
        return out


# ------------------------------------------------------------------------------------------------ files


def read_quote_file(path: Path) -> bytes:
    """A quote / report file: raw bytes, hex text (0x optional) or a JSON array of byte values (dstack)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AttestationError(f"parse: cannot read quote file {path}: {exc.strerror}") from None
    text = data.strip()
    if text.startswith(b"["):
        try:
            return trim_quote(bytes(json.loads(text)))
        except (ValueError, TypeError):
            raise AttestationError(f"parse: {path} is not a JSON array of bytes") from None
    try:
        hex_text = text.decode("ascii").removeprefix("0x")
        if hex_text and all(c in "0123456789abcdefABCDEF" for c in "".join(hex_text.split())):
            data = bytes.fromhex("".join(hex_text.split()))
    except UnicodeDecodeError:
        pass
    if len(data) == SNP_REPORT_LEN and int.from_bytes(data[:4], "little") in range(2, 16):
        return data
    return trim_quote(data) if len(data) >= 48 else data


def read_collateral_file(path: Path) -> dict[str, Any]:
    """Collateral JSON: Intel PCS/PCCS fields (dcap-qvl names) or, for SEV-SNP, {"vcek": hex DER, "cert_chain": PEM}."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AttestationError(f"collateral: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise AttestationError(f"collateral: {path} is not a JSON object")
    return data


BUNDLE_FORMAT = "verinfer.attestation-evidence.v1"


def evidence_bundle(quote: bytes, collateral: dict[str, Any]) -> bytes:
    """The bytes stored at the record's quoteCid: quote and collateral together, so an auditor needs one CID."""
    return json.dumps({"format": BUNDLE_FORMAT, "quote": quote.hex(), "collateral": collateral},
                      sort_keys=True, separators=(",", ":")).encode()


def parse_evidence_bundle(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """Inverse of `evidence_bundle`: (quote, collateral)."""
    try:
        d = json.loads(data)
        if d.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"format {d.get('format')!r}")
        quote, collateral = bytes.fromhex(d["quote"]), d["collateral"]
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise AttestationError(f"parse: not a {BUNDLE_FORMAT} bundle ({exc})") from None
    if not isinstance(collateral, dict):
        raise AttestationError("parse: bundle collateral is not an object")
    return quote, collateral


def snp_collateral(vcek_der: bytes, cert_chain_pem: bytes, product: str = "Milan") -> dict[str, str]:
    """SEV-SNP collateral in the JSON shape `verify_evidence` takes (VCEK and ASK/ARK chain from AMD's KDS)."""
    return {"tee": "SEV-SNP", "product": product, "vcek": vcek_der.hex(), "cert_chain": cert_chain_pem.decode()}


# ------------------------------------------------------------------------------------------------ verify


def _iso_ts(s: str) -> int:
    return int(datetime.fromisoformat(s).timestamp())


def _dcap_valid_until(coll: dict[str, Any]) -> int:
    try:
        return min(_iso_ts(json.loads(coll["tcb_info"])["nextUpdate"]),
                   _iso_ts(json.loads(coll["qe_identity"])["nextUpdate"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise AttestationError(f"collateral: no readable nextUpdate ({exc})") from None


def _from_dcap(v: DcapVerdict, coll: dict[str, Any], test_root: bool) -> Evidence:
    details: list[tuple[str, str]] = [("quote version", str(v.quote_version)), ("fmspc", v.fmspc)]
    if v.tee == "SGX":
        details += [("mrenclave", v.mr_enclave.hex()), ("mrsigner", v.mr_signer.hex())]
    else:
        details += [("mrtd", v.mr_enclave.hex())] + [(f"rtmr{i}", r.hex()) for i, r in enumerate(v.rtmrs)]
    trust = (f"TEST PKI (INSECURE, devnet only) root sha256:{v.root_fingerprint}" if test_root
             else "Intel SGX root CA (production)")
    return Evidence(
        tee=TeeType.SGX if v.tee == "SGX" else TeeType.TDX, measurement=v.measurement, quote_hash=v.quote_hash,
        collateral_hash=v.collateral_hash, report_data=v.report_data, tcb_status=v.status,
        tcb_status_code=v.tcb_status_code, advisory_ids=v.advisory_ids, as_of=v.as_of,
        valid_until=_dcap_valid_until(coll), trust=trust, details=tuple(details),
    )


def verify_evidence(quote: bytes, collateral: dict[str, Any], *, as_of: int,
                    root_ca_der: bytes | None = None) -> Evidence:
    """Verify an SGX/TDX quote (dcap-qvl) or an SEV-SNP report (AMD chain) with its collateral, as of `as_of`.

    `root_ca_der` replaces Intel's production root (only the devnet's test PKI should ever be passed here).
    """
    if collateral.get("tee") == "SEV-SNP":
        try:
            vcek = bytes.fromhex(collateral["vcek"])
            chain = collateral["cert_chain"].encode()
        except (KeyError, ValueError, AttributeError) as exc:
            raise AttestationError(f"collateral: SEV-SNP collateral needs vcek (hex DER) and cert_chain (PEM): {exc}") from None
        product = str(collateral.get("product", "Milan"))
        v = verify_snp(quote, vcek, chain, as_of=as_of, product=product)
        from cryptography import x509
        vcek_cert = x509.load_der_x509_certificate(vcek)
        rep = parse_snp_report(quote)
        details = tuple((f"tcb {k}", str(val)) for k, val in v.reported_tcb.items()) + (
            ("measurement (48 bytes)", v.measurement_raw.hex()), ("vmpl", str(rep.vmpl)),
            ("policy", hex(rep.policy)), ("chip id", v.chip_id.hex()))
        return Evidence(
            tee=TeeType.SEV_SNP, measurement=v.measurement, quote_hash=v.quote_hash,
            collateral_hash=keccak(json.dumps(collateral, sort_keys=True, separators=(",", ":")).encode()),
            report_data=v.report_data, tcb_status="n/a", tcb_status_code=0, advisory_ids=(), as_of=int(as_of),
            valid_until=int(vcek_cert.not_valid_after_utc.timestamp()), trust=f"AMD ARK {product} (pinned)",
            details=details,
        )
    coll = load_collateral(collateral)
    return _from_dcap(verify_dcap(quote, coll, as_of=as_of, root_ca_der=root_ca_der), coll, root_ca_der is not None)


def check_evidence(
    ev: Evidence,
    *,
    node: str,
    chain_id: int,
    registry: str,
    anchor_block: int,
    anchor_block_hash: bytes,
    accepted_tcb: tuple[str, ...] = ("UpToDate",),
    measurement_allowed: Callable[[bytes], bool] | None = None,
    quote_used: Callable[[bytes], bool] | None = None,
) -> None:
    """The checks the registry repeats on-chain, run first off-chain so nothing is sent that would be refused."""
    if ev.as_of > ev.valid_until:
        raise AttestationError("collateral: expired before the verification time")
    if ev.tee != TeeType.SEV_SNP and ev.tcb_status not in accepted_tcb:
        adv = f" (advisories {', '.join(ev.advisory_ids)})" if ev.advisory_ids else ""
        raise AttestationError(f"TCB policy: status {ev.tcb_status}{adv} is not accepted (accepted: {', '.join(accepted_tcb)})")
    check_binding(ev.report_data, node, chain_id, registry, anchor_block, anchor_block_hash)
    if quote_used is not None and quote_used(ev.quote_hash):
        raise AttestationError(f"replay: quote 0x{ev.quote_hash.hex()} was already used for an attestation")
    if measurement_allowed is not None and not measurement_allowed(ev.measurement):
        raise AttestationError(f"measurement: 0x{ev.measurement.hex()} is not allow-listed")


__all__ = [
    "BUNDLE_FORMAT",
    "TCB_STATUS_CODES",
    "Evidence",
    "check_evidence",
    "check_tcb_policy",
    "collateral_hash",
    "evidence_bundle",
    "parse_evidence_bundle",
    "read_collateral_file",
    "read_quote_file",
    "snp_collateral",
    "verify_evidence",
]
