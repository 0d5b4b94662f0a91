"""Typed Python face of AttestationRegistry: one snake_case method per contract function.

Writes return the receipt (reverts decoded into ContractError naming the custom error, e.g.
`QuoteReplayed`, `BindingMismatch`); reads return frozen dataclasses. `VerifiedEvidence.from_evidence`
turns a verified `verinfer.attestation.evidence.Evidence` into the struct `recordAttestation` takes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.types import TxReceipt

from verinfer.attestation.binding import binding_report_data, check_binding
from verinfer.attestation.dcap import TCB_STATUS_CODES, tdx_measurement
from verinfer.attestation.evidence import (
    Evidence,
    check_evidence,
    evidence_bundle,
    parse_evidence_bundle,
    verify_evidence,
)
from verinfer.attestation.testpki import (
    MOCK_TD_MRTD,
    MOCK_TD_RTMRS,
    MOCK_WORKER_MR_ENCLAVE,
    TestPKI,
)
from verinfer.attestation.verify import AttestationError
from verinfer.chain.deploy import deploy_contract
from verinfer.chain.manifest import default_manifest_path
from verinfer.chain.protocol import Protocol, _ContractWrapper, _view, to_bytes32
from verinfer.chain.tx import TxSender
from verinfer.constants import DEVNET_CHAIN_ID
from verinfer.errors import ConfigError, VerinferError
from verinfer.storage.base import ContentStore

VERIFIED_BY_VERIFIER = 1
VERIFIED_BY_ONCHAIN_DCAP = 2
MIN_MAX_AGE = 3600
MAX_MAX_AGE = 7 * 24 * 3600


@dataclass(frozen=True)
class VerifiedEvidence:
    """AttestationRegistry.VerifiedEvidence: what an attestation verifier records after verifying off-chain."""

    node: str
    tee_type: int
    tcb_status: int
    valid_until: int
    anchor_block: int
    measurement: bytes
    quote_hash: bytes
    collateral_hash: bytes
    report_data: bytes
    quote_cid: str = ""

    def to_abi(self) -> tuple[Any, ...]:
        return (
            Web3.to_checksum_address(self.node), self.tee_type, self.tcb_status, self.valid_until, self.anchor_block,
            to_bytes32(self.measurement), to_bytes32(self.quote_hash), to_bytes32(self.collateral_hash),
            bytes(self.report_data), self.quote_cid,
        )

    @classmethod
    def from_evidence(cls, ev: Evidence, node: str, anchor_block: int, quote_cid: str = "") -> VerifiedEvidence:
        """The struct for a verified `Evidence` (valid until its collateral's next update; the chain caps it)."""
        return cls(node=node, tee_type=int(ev.tee), tcb_status=ev.tcb_status_code, valid_until=ev.valid_until,
                   anchor_block=anchor_block, measurement=ev.measurement, quote_hash=ev.quote_hash,
                   collateral_hash=ev.collateral_hash, report_data=ev.report_data, quote_cid=quote_cid)


@dataclass(frozen=True)
class RegistryAttestation:
    """AttestationRegistry.Attestation as stored (tee_type 0 = none; times in unix seconds)."""

    tee_type: int
    verified_by: int
    tcb_status: int
    attested_at: int
    expires_at: int
    anchor_block: int
    measurement: bytes
    quote_hash: bytes
    collateral_hash: bytes
    verifier: str
    quote_cid: str


class AttestationRegistry(_ContractWrapper):
    NAME = "AttestationRegistry"

    # ---------------------------------------------------------------- writes
    def record_attestation(self, ev: VerifiedEvidence) -> TxReceipt:
        """Path (a): a named attestation verifier records evidence it verified off-chain."""
        return self._send(self.contract.functions.recordAttestation(ev.to_abi()))

    def attest_on_chain(self, raw_quote: bytes, anchor_block: int, quote_cid: str = "") -> TxReceipt:
        """Path (b): the node submits its own quote, verified by the on-chain DCAP verifier."""
        return self._send(self.contract.functions.attestOnChain(bytes(raw_quote), anchor_block, quote_cid))

    def revoke_attestation(self) -> TxReceipt:
        return self._send(self.contract.functions.revokeAttestation())

    def revoke_attestation_for(self, node: str) -> TxReceipt:
        return self._send(self.contract.functions.revokeAttestationFor(Web3.to_checksum_address(node)))

    def set_measurement_allowed(self, measurement: bytes, allowed: bool) -> TxReceipt:
        return self._send(self.contract.functions.setMeasurementAllowed(to_bytes32(measurement), allowed))

    def set_verifier(self, verifier: str, trusted: bool) -> TxReceipt:
        return self._send(self.contract.functions.setVerifier(Web3.to_checksum_address(verifier), trusted))

    def set_dcap_verifier(self, verifier: str) -> TxReceipt:
        return self._send(self.contract.functions.setDcapVerifier(Web3.to_checksum_address(verifier)))

    def set_max_attestation_age(self, seconds: int) -> TxReceipt:
        return self._send(self.contract.functions.setMaxAttestationAge(seconds))

    def set_accepted_tcb_statuses(self, mask: int) -> TxReceipt:
        return self._send(self.contract.functions.setAcceptedTcbStatuses(mask))

    # ---------------------------------------------------------------- reads
    def is_attested(self, node: str, block: int | str = "latest") -> bool:
        return bool(self._call(self.contract.functions.isAttested(Web3.to_checksum_address(node)), block))

    def get_attestation(self, node: str, block: int | str = "latest") -> RegistryAttestation:
        raw = self._call(self.contract.functions.getAttestation(Web3.to_checksum_address(node)), block)
        return _view(RegistryAttestation, self._struct("getAttestation", raw))

    def expected_report_data(self, node: str, anchor_block: int) -> bytes:
        return bytes(self._call(self.contract.functions.expectedReportData(Web3.to_checksum_address(node), anchor_block)))

    def measurement_allowed(self, measurement: bytes) -> bool:
        return bool(self._call(self.contract.functions.measurementAllowed(to_bytes32(measurement))))

    def is_verifier(self, address: str) -> bool:
        return bool(self._call(self.contract.functions.isVerifier(Web3.to_checksum_address(address))))

    def quote_used(self, quote_hash: bytes) -> bool:
        return bool(self._call(self.contract.functions.quoteUsed(to_bytes32(quote_hash))))

    def max_attestation_age(self) -> int:
        return int(self._call(self.contract.functions.maxAttestationAge()))

    def accepted_tcb_statuses(self) -> int:
        return int(self._call(self.contract.functions.acceptedTcbStatuses()))

    def dcap_verifier(self) -> str:
        return str(self._call(self.contract.functions.dcapVerifier()))


def deploy_attestation_registry(w3: Web3, deployer: LocalAccount | TxSender, owner: str | None = None) -> str:
    """Deploy AttestationRegistry(owner); returns its address (owner defaults to the deployer)."""
    if owner is None:
        owner = deployer.address if isinstance(deployer, LocalAccount) else deployer.account.address
    return deploy_contract(w3, deployer, "AttestationRegistry", Web3.to_checksum_address(owner))


# ---------------------------------------------------------------- operator, verifier and auditor flows

def accepted_tcb_names(mask: int) -> tuple[str, ...]:
    """The dcap-qvl status names a registry's accepted-status bit mask allows."""
    return tuple(name for name, code in TCB_STATUS_CODES.items() if (mask >> code) & 1)


def binding_for(registry: AttestationRegistry, node: str) -> tuple[int, bytes]:
    """(anchor block, 64-byte report data) a node's TEE must quote now: anchored on the latest block."""
    block = registry.w3.eth.get_block("latest")
    rd = binding_report_data(node, registry.w3.eth.chain_id, registry.address, int(block["number"]), bytes(block["hash"]))
    return int(block["number"]), rd


def verify_and_record(registry: AttestationRegistry, node: str, quote: bytes, collateral: dict[str, Any],
                      anchor_block: int, *, quote_cid: str = "", root_ca_der: bytes | None = None,
                      as_of: int | None = None) -> tuple[Evidence, TxReceipt]:
    """Path (a), run by an attestation verifier: verify as of the latest block time, run every check the registry
    repeats (binding, TCB mask, replay, allow-list) so nothing doomed is sent, then record. Raises AttestationError
    (step-named) before any transaction, or ContractError if the chain still refuses."""
    w3 = registry.w3
    when = int(w3.eth.get_block("latest")["timestamp"]) if as_of is None else as_of
    ev = verify_evidence(quote, collateral, as_of=when, root_ca_der=root_ca_der)
    check_evidence(ev, node=node, chain_id=w3.eth.chain_id, registry=registry.address, anchor_block=anchor_block,
                   anchor_block_hash=bytes(w3.eth.get_block(anchor_block)["hash"]),
                   accepted_tcb=accepted_tcb_names(registry.accepted_tcb_statuses()),
                   measurement_allowed=registry.measurement_allowed, quote_used=registry.quote_used)
    return ev, registry.record_attestation(VerifiedEvidence.from_evidence(ev, node, anchor_block, quote_cid))


@dataclass(frozen=True)
class NodeAttestationAudit:
    """One node's on-chain attestation re-verified from public data, as of its recorded time."""

    node: str
    ok: bool
    reason: str
    record: RegistryAttestation
    evidence: Evidence | None = None
    binding_ok: bool = False
    attested_now: bool = False

    def lines(self) -> list[str]:
        def ts(t: int) -> str:
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        r = self.record
        out = [f"node: {self.node}", f"verdict: {'ok' if self.ok else 'FAIL'} ({self.reason})"]
        if r.tee_type == 0:
            return out
        path = {VERIFIED_BY_VERIFIER: f"attestation verifier {r.verifier}",
                VERIFIED_BY_ONCHAIN_DCAP: f"on-chain DCAP verifier {r.verifier}"}.get(r.verified_by, str(r.verified_by))
        out += [f"verified by: {path}", f"attested at: {ts(r.attested_at)}", f"expires at: {ts(r.expires_at)}",
                f"eligible now: {'yes' if self.attested_now else 'no'}",
                f"binding: {'ok' if self.binding_ok else 'not checked' if self.evidence is None else 'FAIL'}"]
        if self.evidence is not None:
            out += self.evidence.lines()
        else:
            out += [f"measurement: 0x{bytes(r.measurement).hex()}", f"tcb status code: {r.tcb_status}"]
        return out


def audit_node(registry: AttestationRegistry, node: str, bundle: bytes, *,
               root_ca_der: bytes | None = None) -> NodeAttestationAudit:
    """Re-verify `node`'s record from the evidence bundle stored at its quoteCid: hashes → DCAP/SEV-SNP as of the
    recorded `attestedAt` → same measurement and TCB status → binding to the recorded anchor block → eligibility now."""
    rec = registry.get_attestation(node)
    if rec.tee_type == 0:
        return NodeAttestationAudit(node, False, "no attestation record", rec)
    now_ok = registry.is_attested(node)
    try:
        quote, collateral = parse_evidence_bundle(bundle)
        if keccak(quote) != bytes(rec.quote_hash):
            raise AttestationError("quote: bytes do not hash to the recorded quoteHash")
        ev = verify_evidence(quote, collateral, as_of=rec.attested_at, root_ca_der=root_ca_der)
        if rec.verified_by == VERIFIED_BY_VERIFIER and ev.collateral_hash != bytes(rec.collateral_hash):
            raise AttestationError("collateral: does not hash to the recorded collateralHash")
        if ev.measurement != bytes(rec.measurement):
            raise AttestationError("measurement: the quote's differs from the recorded one")
        if ev.tcb_status_code != rec.tcb_status:
            raise AttestationError(f"TCB policy: recorded status {rec.tcb_status}, re-verified {ev.tcb_status}")
    except AttestationError as exc:
        return NodeAttestationAudit(node, False, str(exc), rec, attested_now=now_ok)
    try:
        anchor_hash = bytes(registry.w3.eth.get_block(rec.anchor_block)["hash"])
        check_binding(ev.report_data, node, registry.w3.eth.chain_id, registry.address, rec.anchor_block, anchor_hash)
    except AttestationError as exc:
        return NodeAttestationAudit(node, False, str(exc), rec, ev, attested_now=now_ok)
    reason = "re-verified as of the recorded time" + ("" if now_ok else "; not eligible now (expired or revoked)")
    return NodeAttestationAudit(node, now_ok, reason, rec, ev, True, now_ok)


def find_anchor_block(registry: AttestationRegistry, node: str, report_data: bytes,
                      window: int = 256) -> int:
    """The recent block a quote's report data binds `node` to (an operator's quote file does not say which):
    scans the last `window` blocks, newest first; raises `binding:` when none matches."""
    w3 = registry.w3
    chain_id, latest = w3.eth.chain_id, w3.eth.block_number
    for number in range(latest, max(-1, latest - window), -1):
        block = w3.eth.get_block(number)
        if binding_report_data(node, chain_id, registry.address, number, bytes(block["hash"])) == report_data:
            return number
    raise AttestationError(f"binding: report data binds {node.lower()} to none of the last {window} blocks "
                           f"on chain {chain_id} for registry {registry.address} (stale or for another node)")




def attest_quote(node_view: AttestationRegistry, verifier: AttestationRegistry, node: str, quote: bytes,
                 collateral: dict[str, Any], store_add: Callable[[bytes], str], *,
                 root_ca_der: bytes | None = None) -> tuple[Evidence, TxReceipt]:
    """`operator attest --quote FILE --collateral FILE`: find the anchor the quote binds, store the evidence bundle
    (`store_add(bytes) -> cid`), and have the attestation verifier `verifier` (a registry bound to a named verifier
    account) verify and record it. Step-named AttestationError before anything is stored or sent."""
    anchor = find_anchor_block(node_view, node, verify_evidence(
        quote, collateral, as_of=int(node_view.w3.eth.get_block("latest")["timestamp"]), root_ca_der=root_ca_der,
    ).report_data)
    cid = store_add(evidence_bundle(quote, collateral))
    return verify_and_record(verifier, node, quote, collateral, anchor, quote_cid=cid, root_ca_der=root_ca_der)


def attest_devnet(verifier: AttestationRegistry, node: str, pki: TestPKI, store_add: Callable[[bytes], str], *,
                  tee: str = "SGX") -> tuple[Evidence, TxReceipt]:
    """Devnet only (chain id 31337): the node's simulated TEE quotes the binding with the INSECURE test PKI,
    collateral is issued as of the latest block, and the named verifier verifies and records it."""
    w3 = verifier.w3
    if w3.eth.chain_id != DEVNET_CHAIN_ID:
        raise AttestationError("trust: the INSECURE test PKI is only for a local devnet (chain id 31337)")
    anchor, rd = binding_for(verifier, node)
    quote = pki.tdx_quote(rd) if tee == "TDX" else pki.quote(rd)
    ts = int(w3.eth.get_block("latest")["timestamp"])
    collateral = pki.collateral(datetime.fromtimestamp(ts, UTC) - timedelta(hours=1), tee=tee)
    cid = store_add(evidence_bundle(quote, collateral))
    return verify_and_record(verifier, node, quote, collateral, anchor, quote_cid=cid, root_ca_der=pki.root_der)


def configure_devnet(governance: Protocol | AttestationRegistry, verifier: str) -> None:
    """Devnet defaults (chain id 31337 only): name `verifier` and allow-list the simulated SGX enclave and TDX VM
    that the INSECURE test PKI attests, so `attest_devnet` works out of the box.

    A Protocol (bound to the timelock's proposer) sends through `Protocol.govern` (the timelock owns the deployed
    registry); a bare AttestationRegistry is called directly (a registry its signer owns)."""
    if governance.w3.eth.chain_id != DEVNET_CHAIN_ID:
        raise AttestationError("trust: devnet defaults (test-PKI measurements) only on chain id 31337")
    measurements = (MOCK_WORKER_MR_ENCLAVE, tdx_measurement(MOCK_TD_MRTD, MOCK_TD_RTMRS))
    if isinstance(governance, Protocol):
        registry = registry_of(governance)
        governance.govern(registry, "setVerifier", Web3.to_checksum_address(verifier), True)
        for m in measurements:
            governance.govern(registry, "setMeasurementAllowed", to_bytes32(m), True)
        return
    governance.set_verifier(verifier, True)
    for m in measurements:
        governance.set_measurement_allowed(m, True)


# ---------------------------------------------------------------- operator / CLI orchestration (store + chain)
# Moved here from attestation/operator_flow.py (issue 8 item 6): the attestation package only parses and
# verifies evidence; storing bundles and sending records is chain-side work.

#: The devnet's INSECURE test PKI lives beside the deployment manifest (one root per deployment).
PKI_FILENAME = "test-pki.json"


def pki_path_for(manifest_path: Path | None) -> Path:
    """Where a deployment's devnet test PKI lives: $VERINFER_TEST_PKI, else beside the manifest."""
    if os.environ.get("VERINFER_TEST_PKI"):
        return Path(os.environ["VERINFER_TEST_PKI"])
    base = Path(manifest_path).parent if manifest_path is not None else default_manifest_path().parent
    return base / PKI_FILENAME


def devnet_pki(w3: Web3, path: Path) -> TestPKI:
    """The devnet's test PKI (created on first use); refused on any chain but the devnet's."""
    if w3.eth.chain_id != DEVNET_CHAIN_ID:
        raise ConfigError(f"the INSECURE test PKI is only for a local devnet (chain id {DEVNET_CHAIN_ID}); "
                          "give a real TEE quote and collateral")
    return TestPKI.load_or_create(path)


def registry_of(protocol: Protocol, account: LocalAccount | None = None) -> AttestationRegistry:
    """The deployment's AttestationRegistry, signing as `account` (default: the protocol's account)."""
    if "AttestationRegistry" not in protocol.manifest.addresses:
        raise ConfigError("this deployment has no AttestationRegistry (redeploy: verinfer devnet up --fresh)")
    p = protocol.as_account(account) if account is not None else protocol
    return AttestationRegistry(p.w3, p.manifest.address("AttestationRegistry"), p.sender, p.manifest.deploy_block)


@dataclass(frozen=True)
class RecordCheck:
    """One node's AttestationRegistry record re-verified from public data (what `attestation verify` prints)."""

    node: str
    ok: bool
    reason: str
    measurement: str = ""


def check_record(protocol: Protocol, node: str, store: ContentStore, root_ca_der: bytes | None) -> RecordCheck:
    """Fetch the node's evidence bundle by its quoteCid and re-verify it (`audit_node`); eligibility now counts."""
    registry = registry_of(protocol)
    rec = registry.get_attestation(node)
    if rec.tee_type == 0:
        return RecordCheck(node, False, "no attestation record")
    try:
        bundle = store.cat(rec.quote_cid, max_bytes=1 << 20)
    except VerinferError as exc:
        return RecordCheck(node, False, f"evidence bundle not retrievable: {exc}")
    audit = audit_node(registry, node, bundle, root_ca_der=root_ca_der)
    return RecordCheck(node, audit.ok, audit.reason, "0x" + bytes(rec.measurement).hex())


def attest_on_devnet(protocol: Protocol, node: str, store: ContentStore, manifest_path: Path | None, *,
                     verifier: LocalAccount, tee: str = "SGX") -> tuple[Evidence, TxReceipt]:
    """`operator attest` on a devnet: the node's simulated TEE quotes its binding with the deployment's INSECURE
    test PKI, and `verifier` (an account the registry names as attestation verifier, e.g. the deployer after
    `configure_devnet`) verifies and records it; the evidence bundle goes to `store`."""
    pki = devnet_pki(protocol.w3, pki_path_for(manifest_path))
    registry = registry_of(protocol, verifier)
    if not registry.is_verifier(verifier.address):
        raise ConfigError(f"{verifier.address} is not a named attestation verifier of this deployment "
                          "(governance: configure_devnet / AttestationRegistry.setVerifier)")
    return attest_devnet(registry, node, pki, store.add, tee=tee)
