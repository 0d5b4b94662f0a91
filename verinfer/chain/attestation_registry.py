"""Typed Python face of AttestationRegistry: one snake_case method per contract function.

Writes return the receipt (reverts decoded into ContractError naming the custom error, e.g.
`QuoteReplayed`, `BindingMismatch`); reads return frozen dataclasses. `VerifiedEvidence.from_evidence`
turns a verified `verinfer.attestation.evidence.Evidence` into the struct `recordAttestation` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

from verinfer.chain.deploy import deploy_contract
from verinfer.chain.protocol import _ContractWrapper, _view, to_bytes32
from verinfer.chain.tx import TxSender

if TYPE_CHECKING:
    from verinfer.attestation.evidence import Evidence

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
