// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IAttestationRegistry} from "./interfaces/IAttestationRegistry.sol";
import {IDcapQuoteVerifier} from "./interfaces/IDcapQuoteVerifier.sol";

/// @title AttestationRegistry
/// @notice Holds each node's TEE attestation and answers `isAttested`. A record is accepted only as evidence the
///         contract can check itself (path b: an on-chain DCAP verifier it calls) or from an authority it trusts
///         (path a: an attestation verifier named on-chain by governance). A node never declares its own record.
/// @dev Every record is bound to (node, chain id, this registry, a recent block hash) through the quote's report
///      data, carries a non-zero quote hash that is never accepted twice, and expires no later than
///      `maxAttestationAge` after it was recorded. `verifiedBy` is set from the path taken.
contract AttestationRegistry is IAttestationRegistry, Ownable2Step {
    // ------------------------------------------------------------------ constants

    /// @notice TEE kinds (same numbering as verinfer.attestation.TeeType).
    uint8 public constant TEE_SGX = 1;
    uint8 public constant TEE_TDX = 2;
    uint8 public constant TEE_SEV_SNP = 3;

    /// @notice How a record was verified; set by the contract from the path, never by the caller.
    uint8 public constant VERIFIED_BY_VERIFIER = 1;
    uint8 public constant VERIFIED_BY_ONCHAIN_DCAP = 2;

    /// @notice Version byte that starts the 64-byte report data of a verinfer binding.
    uint8 public constant BINDING_VERSION = 1;
    /// @notice Oldest anchor block a binding may name (the EVM only serves the last 256 block hashes).
    uint256 public constant BINDING_WINDOW = 256;

    /// @notice Bounds of the governance maximum age (seconds), as peers use.
    uint64 public constant MIN_MAX_AGE = 1 hours;
    uint64 public constant MAX_MAX_AGE = 7 days;

    /// @notice TCB status 0 (UpToDate / OK) in Automata's numbering; the default accepted set is {0}.
    uint8 public constant TCB_UP_TO_DATE = 0;
    /// @notice Statuses are 0..7 in Automata's numbering (7 = Unrecognized).
    uint8 public constant TCB_STATUS_COUNT = 8;

    bytes4 internal constant AUTOMATA_TEE_SGX = 0x00000000;
    bytes4 internal constant AUTOMATA_TEE_TDX = 0x00000081;
    uint256 internal constant SGX_BODY_LEN = 384;
    uint256 internal constant TDX_BODY_LEN = 584;
    uint256 internal constant OUTPUT_HEADER_LEN = 13; // version 2 + tee 4 + status 1 + fmspc 6

    // ------------------------------------------------------------------ types

    /// @notice One node's current attestation.
    struct Attestation {
        uint8 teeType; // 0 none, 1 SGX, 2 TDX, 3 SEV-SNP
        uint8 verifiedBy; // VERIFIED_BY_*
        uint8 tcbStatus; // Automata numbering; 0 for SEV-SNP
        uint64 attestedAt; // block timestamp when recorded (the "as of" time of the verification)
        uint64 expiresAt; // unix seconds, <= attestedAt + maxAttestationAge at record time
        uint64 anchorBlock; // block whose hash the report data binds
        bytes32 measurement; // SGX MRENCLAVE; TDX keccak(MRTD||RTMR0..3); SEV-SNP keccak(MEASUREMENT)
        bytes32 quoteHash; // keccak256 of the raw quote / report
        bytes32 collateralHash; // keccak256 of the collateral the verifier used (0 on the on-chain path)
        address verifier; // the attestation verifier, or the on-chain DCAP verifier contract
        string quoteCid; // where the raw quote is stored for auditors
    }

    /// @notice What an attestation verifier submits after verifying a quote off-chain (path a).
    struct VerifiedEvidence {
        address node;
        uint8 teeType;
        uint8 tcbStatus;
        uint64 validUntil; // the verifier's own bound (e.g. collateral next update); capped by maxAttestationAge
        uint64 anchorBlock;
        bytes32 measurement;
        bytes32 quoteHash;
        bytes32 collateralHash;
        bytes reportData; // the quote's 64-byte report data
        string quoteCid;
    }

    // ------------------------------------------------------------------ storage

    /// @notice Governance maximum age of any record, in seconds (MIN_MAX_AGE..MAX_MAX_AGE).
    uint64 public maxAttestationAge = 1 days;
    /// @notice Bit i set = TCB status i accepted.
    uint16 public acceptedTcbStatuses = uint16(1) << TCB_UP_TO_DATE;
    /// @notice The on-chain DCAP verifier used by path (b); zero disables that path.
    IDcapQuoteVerifier public dcapVerifier;

    /// @notice Attestation verifiers trusted for path (a).
    mapping(address verifier => bool) public isVerifier;
    /// @notice Allow-listed measurements; a revoked one disqualifies every record that names it at once.
    mapping(bytes32 measurement => bool) public measurementAllowed;
    /// @notice Quote hashes ever accepted (replay guard).
    mapping(bytes32 quoteHash => bool) public quoteUsed;

    mapping(address node => Attestation) private _attestations;

    // ------------------------------------------------------------------ errors

    error ZeroAddress();
    error NotVerifier(address caller);
    error NoDcapVerifier();
    error InvalidTeeType(uint8 teeType);
    error ZeroQuoteHash();
    error QuoteReplayed(bytes32 quoteHash);
    error MeasurementNotAllowed(bytes32 measurement);
    error TcbStatusNotAccepted(uint8 tcbStatus);
    error AttestationExpired(uint64 validUntil, uint256 nowTs);
    error MaxAgeOutOfRange(uint64 value, uint64 min, uint64 max);
    error AnchorBlockNotRecent(uint64 anchorBlock, uint256 currentBlock);
    error BindingMismatch(bytes32 expected, bytes32 got);
    error BadReportData(uint256 length);
    error DcapVerificationFailed(bytes reason);
    error BadVerifierOutput(uint256 length);
    error UnsupportedDcapTee(bytes4 tee);
    error NoAttestation(address node);
    error NotAuthorized(address caller);

    // ------------------------------------------------------------------ events

    /// @notice A record was accepted (replacing any previous one for `node`).
    event AttestationRecorded(
        address indexed node,
        uint8 teeType,
        uint8 verifiedBy,
        bytes32 indexed measurement,
        bytes32 quoteHash,
        bytes32 collateralHash,
        uint8 tcbStatus,
        uint64 attestedAt,
        uint64 expiresAt,
        address verifier,
        string quoteCid
    );
    event AttestationRevoked(address indexed node, address indexed by);
    event MeasurementAllowed(bytes32 indexed measurement, bool allowed);
    event VerifierSet(address indexed verifier, bool trusted);
    event DcapVerifierSet(address indexed dcapVerifier);
    event MaxAttestationAgeSet(uint64 maxAge);
    event AcceptedTcbStatusesSet(uint16 mask);

    /// @param initialOwner Governance (later a timelock): names verifiers, allow-lists measurements.
    constructor(address initialOwner) Ownable(initialOwner) {}

    // ------------------------------------------------------------------ path (a): attestation verifier role

    /// @notice Record an attestation for `ev.node` after verifying its quote off-chain.
    /// @dev The verifier vouches for: the quote signature chain, TCB status as of now, and that `ev.reportData`,
    ///      `ev.measurement` and `ev.quoteHash` are the quote's. The contract checks the rest itself: binding to
    ///      the node and this deployment, freshness, replay, allow-list, TCB policy, maximum age.
    function recordAttestation(VerifiedEvidence calldata ev) external {
        if (!isVerifier[msg.sender]) revert NotVerifier(msg.sender);
        if (ev.node == address(0)) revert ZeroAddress();
        if (ev.teeType < TEE_SGX || ev.teeType > TEE_SEV_SNP) revert InvalidTeeType(ev.teeType);
        if (ev.teeType != TEE_SEV_SNP) _checkTcb(ev.tcbStatus);
        // Validity windows are hours to days: a validator's few seconds of timestamp drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (ev.validUntil <= block.timestamp) revert AttestationExpired(ev.validUntil, block.timestamp);
        _checkBinding(ev.node, ev.reportData, ev.anchorBlock);
        _store(
            ev.node,
            Attestation({
                teeType: ev.teeType,
                verifiedBy: VERIFIED_BY_VERIFIER,
                tcbStatus: ev.teeType == TEE_SEV_SNP ? 0 : ev.tcbStatus,
                attestedAt: uint64(block.timestamp),
                expiresAt: _cap(ev.validUntil),
                anchorBlock: ev.anchorBlock,
                measurement: ev.measurement,
                quoteHash: ev.quoteHash,
                collateralHash: ev.collateralHash,
                verifier: msg.sender,
                quoteCid: ev.quoteCid
            })
        );
    }

    // ------------------------------------------------------------------ path (b): on-chain DCAP verifier

    /// @notice Verify the caller's own SGX/TDX quote with the on-chain DCAP verifier and record it.
    /// @dev Measurement, report data, TCB status and quote hash all come from the verifier's output and the
    ///      raw quote; nothing is taken from the caller but the quote, the anchor block and the storage CID.
    function attestOnChain(bytes calldata rawQuote, uint64 anchorBlock, string calldata quoteCid) external {
        IDcapQuoteVerifier v = dcapVerifier;
        if (address(v) == address(0)) revert NoDcapVerifier();
        (bool ok, bytes memory out) = v.verifyAndAttestOnChain(rawQuote);
        if (!ok) revert DcapVerificationFailed(out);
        (uint8 teeType, uint8 tcbStatus, bytes32 measurement, bytes memory reportData) = _parseOutput(out);
        _checkTcb(tcbStatus);
        _checkBinding(msg.sender, reportData, anchorBlock);
        _store(
            msg.sender,
            Attestation({
                teeType: teeType,
                verifiedBy: VERIFIED_BY_ONCHAIN_DCAP,
                tcbStatus: tcbStatus,
                attestedAt: uint64(block.timestamp),
                expiresAt: uint64(block.timestamp) + maxAttestationAge,
                anchorBlock: anchorBlock,
                measurement: measurement,
                quoteHash: keccak256(rawQuote),
                collateralHash: bytes32(0),
                verifier: address(v),
                quoteCid: quoteCid
            })
        );
    }

    // ------------------------------------------------------------------ revocation

    /// @notice Drop the caller's own record.
    function revokeAttestation() external {
        _revoke(msg.sender);
    }

    /// @notice Drop `node`'s record (governance or a trusted verifier, e.g. after a TCB recovery event).
    function revokeAttestationFor(address node) external {
        if (msg.sender != owner() && !isVerifier[msg.sender]) revert NotAuthorized(msg.sender);
        _revoke(node);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Allow-list (or revoke) a measurement; revocation disqualifies every node naming it at once.
    function setMeasurementAllowed(bytes32 measurement, bool allowed) external onlyOwner {
        measurementAllowed[measurement] = allowed;
        emit MeasurementAllowed(measurement, allowed);
    }

    /// @notice Name (or remove) an attestation verifier for path (a).
    function setVerifier(address verifier, bool trusted) external onlyOwner {
        if (verifier == address(0)) revert ZeroAddress();
        isVerifier[verifier] = trusted;
        emit VerifierSet(verifier, trusted);
    }

    /// @notice Set the on-chain DCAP verifier for path (b) (zero disables the path).
    function setDcapVerifier(IDcapQuoteVerifier verifier) external onlyOwner {
        dcapVerifier = verifier;
        emit DcapVerifierSet(address(verifier));
    }

    /// @notice Set the maximum age of a record; applies at once to existing records too.
    function setMaxAttestationAge(uint64 maxAge) external onlyOwner {
        if (maxAge < MIN_MAX_AGE || maxAge > MAX_MAX_AGE) revert MaxAgeOutOfRange(maxAge, MIN_MAX_AGE, MAX_MAX_AGE);
        maxAttestationAge = maxAge;
        emit MaxAttestationAgeSet(maxAge);
    }

    /// @notice Set which TCB statuses (bit i = status i) are accepted at record time.
    function setAcceptedTcbStatuses(uint16 mask) external onlyOwner {
        if (mask >> TCB_STATUS_COUNT != 0) revert TcbStatusNotAccepted(uint8(TCB_STATUS_COUNT));
        acceptedTcbStatuses = mask;
        emit AcceptedTcbStatusesSet(mask);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAttestationRegistry
    function isAttested(address node) external view returns (bool) {
        Attestation storage a = _attestations[node];
        if (a.teeType == 0) return false;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= a.expiresAt) return false;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= uint256(a.attestedAt) + maxAttestationAge) return false;
        return measurementAllowed[a.measurement];
    }

    /// @notice The stored record of `node` (teeType 0 when none).
    function getAttestation(address node) external view returns (Attestation memory) {
        return _attestations[node];
    }

    /// @notice The report data a quote for `node` anchored at `anchorBlock` must carry (64 bytes).
    /// @dev version (1 byte) || keccak256(abi.encode(node, chainid, this, anchorBlock, blockhash(anchorBlock)))
    ///      || 31 zero bytes. Reverts when the anchor block is not among the last BINDING_WINDOW blocks.
    function expectedReportData(address node, uint64 anchorBlock) public view returns (bytes memory) {
        return abi.encodePacked(BINDING_VERSION, _bindingHash(node, anchorBlock), bytes31(0));
    }

    // ------------------------------------------------------------------ internals

    function _bindingHash(address node, uint64 anchorBlock) internal view returns (bytes32) {
        if (anchorBlock >= block.number || block.number - anchorBlock > BINDING_WINDOW) {
            revert AnchorBlockNotRecent(anchorBlock, block.number);
        }
        bytes32 bh = blockhash(anchorBlock);
        if (bh == bytes32(0)) revert AnchorBlockNotRecent(anchorBlock, block.number);
        return keccak256(abi.encode(node, block.chainid, address(this), anchorBlock, bh));
    }

    function _checkBinding(address node, bytes memory reportData, uint64 anchorBlock) internal view {
        if (reportData.length != 64) revert BadReportData(reportData.length);
        bytes memory want = expectedReportData(node, anchorBlock);
        if (keccak256(reportData) != keccak256(want)) {
            bytes32 got;
            assembly {
                got := mload(add(reportData, 33))
            }
            revert BindingMismatch(_bindingHash(node, anchorBlock), got);
        }
    }

    function _checkTcb(uint8 status) internal view {
        if (status >= TCB_STATUS_COUNT || (acceptedTcbStatuses >> status) & 1 == 0) revert TcbStatusNotAccepted(status);
    }

    function _cap(uint64 validUntil) internal view returns (uint64) {
        uint64 maxAt = uint64(block.timestamp) + maxAttestationAge;
        return validUntil < maxAt ? validUntil : maxAt;
    }

    function _store(address node, Attestation memory a) internal {
        if (a.quoteHash == bytes32(0)) revert ZeroQuoteHash();
        if (quoteUsed[a.quoteHash]) revert QuoteReplayed(a.quoteHash);
        if (!measurementAllowed[a.measurement]) revert MeasurementNotAllowed(a.measurement);
        quoteUsed[a.quoteHash] = true;
        _attestations[node] = a;
        emit AttestationRecorded(
            node,
            a.teeType,
            a.verifiedBy,
            a.measurement,
            a.quoteHash,
            a.collateralHash,
            a.tcbStatus,
            a.attestedAt,
            a.expiresAt,
            a.verifier,
            a.quoteCid
        );
    }

    function _revoke(address node) internal {
        if (_attestations[node].teeType == 0) revert NoAttestation(node);
        delete _attestations[node];
        emit AttestationRevoked(node, msg.sender);
    }

    /// @dev Split Automata's packed output into (teeType, tcbStatus, measurement, reportData).
    function _parseOutput(bytes memory out)
        internal
        pure
        returns (uint8 teeType, uint8 tcbStatus, bytes32 measurement, bytes memory reportData)
    {
        if (out.length < OUTPUT_HEADER_LEN) revert BadVerifierOutput(out.length);
        bytes4 tee;
        assembly {
            tee := mload(add(out, 34)) // skip length word (32) + version (2)
        }
        tcbStatus = uint8(out[6]);
        uint256 body = OUTPUT_HEADER_LEN;
        reportData = new bytes(64);
        if (tee == AUTOMATA_TEE_SGX) {
            if (out.length < body + SGX_BODY_LEN) revert BadVerifierOutput(out.length);
            teeType = TEE_SGX;
            assembly {
                let src := add(add(out, 32), body)
                measurement := mload(add(src, 64)) // MRENCLAVE
                mstore(add(reportData, 32), mload(add(src, 320)))
                mstore(add(reportData, 64), mload(add(src, 352)))
            }
        } else if (tee == AUTOMATA_TEE_TDX) {
            if (out.length < body + TDX_BODY_LEN) revert BadVerifierOutput(out.length);
            teeType = TEE_TDX;
            bytes memory m = new bytes(240); // MRTD (48) || RTMR0..3 (4 x 48)
            assembly {
                let src := add(add(out, 32), body)
                let dst := add(m, 32)
                mcopy(dst, add(src, 136), 48)
                mcopy(add(dst, 48), add(src, 328), 192)
                mstore(add(reportData, 32), mload(add(src, 520)))
                mstore(add(reportData, 64), mload(add(src, 552)))
            }
            measurement = keccak256(m);
        } else {
            revert UnsupportedDcapTee(tee);
        }
    }
}
