// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {AttestationRegistry} from "../src/AttestationRegistry.sol";
import {IDcapQuoteVerifier} from "../src/interfaces/IDcapQuoteVerifier.sol";
import {IAttestationRegistry} from "../src/interfaces/IAttestationRegistry.sol";

/// @dev Cheatcodes this file needs beyond utils/Vm.sol.
interface VmTime {
    function warp(uint256 newTimestamp) external;
}

/// @dev Test double of Automata's on-chain DCAP verifier: returns the packed Output the way
///      AutomataDcapAttestation.verifyAndAttestOnChain serializes it, for a quote body the test chooses.
contract DcapVerifierDouble is IDcapQuoteVerifier {
    bool public succeed = true;
    bytes4 public tee;
    uint8 public tcbStatus;
    bytes public body;

    function set(bool ok, bytes4 tee_, uint8 status, bytes calldata body_) external {
        succeed = ok;
        tee = tee_;
        tcbStatus = status;
        body = body_;
    }

    function verifyAndAttestOnChain(bytes calldata) external view returns (bool, bytes memory) {
        if (!succeed) return (false, bytes("Invalid quote"));
        string[] memory advisories = new string[](1);
        advisories[0] = "INTEL-SA-00615";
        uint16 version = tee == bytes4(0x00000081) ? 4 : 3;
        return (true, abi.encodePacked(version, tee, tcbStatus, bytes6(0x00906ed50000), body, abi.encode(advisories)));
    }
}

/// @dev Calls a target with arbitrary data; used to show that the removed self-declaring entry point is gone.
contract RawCaller {
    function call(address target, bytes calldata data) external returns (bool ok) {
        (ok,) = target.call(data);
    }
}

contract AttestationRegistryTest is TestBase {
    VmTime internal constant vmt = VmTime(address(uint160(uint256(keccak256("hevm cheat code")))));

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

    address internal owner = address(0xA11CE);
    address internal verifier = address(0x7E71F1E7);
    address internal node = address(0x1000);
    address internal other = address(0x2000);
    bytes32 internal constant MEAS = keccak256("enclave-v1");
    uint256 internal constant T0 = 1_800_000_000;

    AttestationRegistry internal reg;
    DcapVerifierDouble internal dcap;

    function setUp() public {
        vm.roll(1000);
        vmt.warp(T0);
        reg = new AttestationRegistry(owner);
        dcap = new DcapVerifierDouble();
        vm.startPrank(owner);
        reg.setVerifier(verifier, true);
        reg.setMeasurementAllowed(MEAS, true);
        reg.setDcapVerifier(dcap);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ helpers

    function _rd(address who, uint64 anchor) internal view returns (bytes memory) {
        return reg.expectedReportData(who, anchor);
    }

    function _ev(address who, bytes32 quoteHash, uint64 validUntil)
        internal
        view
        returns (AttestationRegistry.VerifiedEvidence memory)
    {
        uint64 anchor = uint64(block.number - 1);
        return AttestationRegistry.VerifiedEvidence({
            node: who,
            teeType: 1,
            tcbStatus: 0,
            validUntil: validUntil,
            anchorBlock: anchor,
            measurement: MEAS,
            quoteHash: quoteHash,
            collateralHash: keccak256("collateral"),
            reportData: _rd(who, anchor),
            quoteCid: "bafkreiquote"
        });
    }

    function _record(address who, bytes32 qh) internal {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(who, qh, uint64(T0 + 3 days));
        vm.prank(verifier);
        reg.recordAttestation(ev);
    }

    function _sgxBody(bytes32 mrenclave, bytes memory reportData) internal pure returns (bytes memory b) {
        b = new bytes(384);
        for (uint256 i = 0; i < 32; i++) b[64 + i] = mrenclave[i];
        for (uint256 i = 0; i < 64; i++) b[320 + i] = reportData[i];
    }

    function _tdxBody(bytes memory reportData) internal pure returns (bytes memory b, bytes32 measurement) {
        b = new bytes(584);
        for (uint256 i = 0; i < 48; i++) b[136 + i] = bytes1(uint8(i + 1)); // MRTD
        for (uint256 i = 0; i < 192; i++) b[328 + i] = bytes1(uint8(200 - (i % 100))); // RTMR0..3
        for (uint256 i = 0; i < 64; i++) b[520 + i] = reportData[i];
        bytes memory m = new bytes(240);
        for (uint256 i = 0; i < 48; i++) m[i] = b[136 + i];
        for (uint256 i = 0; i < 192; i++) m[48 + i] = b[328 + i];
        measurement = keccak256(m);
    }

    // ------------------------------------------------------------------ the self-declared attestation attack

    /// A node without a TEE copies an allow-listed measurement, claims verifiedBy = 2 (on-chain), leaves the quote
    /// hash at zero and asks for expiry type(uint64).max. Every way of doing so fails.
    function test_attack_selfDeclaredAttestation_fails() public {
        // 1. The old self-declaring entry point (NodeRegistry.submitAttestation's shape) does not exist here.
        RawCaller raw = new RawCaller();
        bytes memory oldCall = abi.encodeWithSignature(
            "submitAttestation((uint8,bytes32,bytes32,address,uint64,uint8,string))",
            uint8(2), MEAS, bytes32(0), address(raw), type(uint64).max, uint8(2), "x"
        );
        vm.assertFalse(raw.call(address(reg), oldCall), "no self-declared submit");

        // 2. The verifier path refuses a caller that is not a named verifier.
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, bytes32(0), type(uint64).max);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.NotVerifier.selector, node));
        reg.recordAttestation(ev);

        // 3. Even a named verifier cannot record a zero quote hash.
        vm.prank(verifier);
        vm.expectRevert(AttestationRegistry.ZeroQuoteHash.selector);
        reg.recordAttestation(ev);

        // 4. The on-chain path runs the quote through the DCAP verifier: a forged quote fails there.
        dcap.set(false, bytes4(0), 0, "");
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.DcapVerificationFailed.selector, bytes("Invalid quote")));
        reg.attestOnChain(hex"deadbeef", uint64(block.number - 1), "x");

        // 5. Expiry type(uint64).max is capped by the maximum age: 10^9 blocks / any time later it is not attested.
        ev.quoteHash = keccak256("real quote");
        vm.prank(verifier);
        reg.recordAttestation(ev);
        AttestationRegistry.Attestation memory a = reg.getAttestation(node);
        vm.assertEq(uint256(a.expiresAt), T0 + reg.maxAttestationAge(), "expiry capped");
        vm.assertEq(uint256(a.verifiedBy), 1, "verifiedBy from the path, not the caller");
        vm.assertTrue(reg.isAttested(node), "attested now");
        vm.roll(block.number + 1e9);
        vmt.warp(T0 + 1e9 * 12);
        vm.assertFalse(reg.isAttested(node), "not attested 1e9 blocks later");
    }

    // ------------------------------------------------------------------ path (a)

    function test_verifierPath_records_and_emits() public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 2 hours));
        vm.expectEmit(true, true, false, true, address(reg));
        emit AttestationRecorded(
            node, 1, 1, MEAS, keccak256("q1"), keccak256("collateral"), 0, uint64(T0), uint64(T0 + 2 hours), verifier, "bafkreiquote"
        );
        vm.prank(verifier);
        reg.recordAttestation(ev);
        AttestationRegistry.Attestation memory a = reg.getAttestation(node);
        vm.assertEq(uint256(a.teeType), 1, "tee");
        vm.assertEq(a.quoteHash, keccak256("q1"), "quote hash");
        vm.assertEq(uint256(a.expiresAt), T0 + 2 hours, "verifier's shorter bound kept");
        vm.assertEq(a.verifier, verifier, "verifier");
        vm.assertTrue(reg.quoteUsed(keccak256("q1")), "quote marked used");
        vm.assertTrue(IAttestationRegistry(address(reg)).isAttested(node), "attested");
        vmt.warp(T0 + 2 hours);
        vm.assertFalse(reg.isAttested(node), "expired at expiresAt");
    }

    function test_replayedQuote_refused_even_for_another_node() public {
        _record(node, keccak256("q1"));
        AttestationRegistry.VerifiedEvidence memory ev = _ev(other, keccak256("q1"), uint64(T0 + 1 days));
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.QuoteReplayed.selector, keccak256("q1")));
        reg.recordAttestation(ev);
        // and the same node re-submitting the same quote later
        ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.QuoteReplayed.selector, keccak256("q1")));
        reg.recordAttestation(ev);
    }

    function test_binding_for_another_node_refused() public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        ev.node = other; // report data binds `node`
        vm.prank(verifier);
        vm.expectPartialRevert(AttestationRegistry.BindingMismatch.selector);
        reg.recordAttestation(ev);
    }

    function test_binding_for_another_registry_refused() public {
        AttestationRegistry reg2 = new AttestationRegistry(owner);
        uint64 anchor = uint64(block.number - 1);
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        ev.reportData = reg2.expectedReportData(node, anchor);
        vm.prank(verifier);
        vm.expectPartialRevert(AttestationRegistry.BindingMismatch.selector);
        reg.recordAttestation(ev);
    }

    function test_binding_stale_or_future_anchor_refused() public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        vm.roll(block.number + 300); // anchor now older than 256 blocks
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.AnchorBlockNotRecent.selector, ev.anchorBlock, block.number));
        reg.recordAttestation(ev);
        ev.anchorBlock = uint64(block.number);
        vm.prank(verifier);
        vm.expectPartialRevert(AttestationRegistry.AnchorBlockNotRecent.selector);
        reg.recordAttestation(ev);
    }

    function test_reportData_wrong_length_or_version_refused() public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        ev.reportData = new bytes(32);
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.BadReportData.selector, 32));
        reg.recordAttestation(ev);
        ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        ev.reportData[0] = 0x02; // binding version 2 is not this contract's
        vm.prank(verifier);
        vm.expectPartialRevert(AttestationRegistry.BindingMismatch.selector);
        reg.recordAttestation(ev);
    }

    function test_measurement_not_allowed_and_revocation_disqualifies_at_once() public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        ev.measurement = keccak256("other enclave");
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.MeasurementNotAllowed.selector, keccak256("other enclave")));
        reg.recordAttestation(ev);

        _record(node, keccak256("q2"));
        vm.assertTrue(reg.isAttested(node), "attested");
        vm.prank(owner);
        reg.setMeasurementAllowed(MEAS, false);
        vm.assertFalse(reg.isAttested(node), "revoked measurement disqualifies at once");
    }

    function test_tcbStatus_policy() public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        ev.tcbStatus = 4; // OutOfDate
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.TcbStatusNotAccepted.selector, 4));
        reg.recordAttestation(ev);
        vm.prank(owner);
        reg.setAcceptedTcbStatuses(uint16(1 | (1 << 1) | (1 << 4)));
        vm.prank(verifier);
        reg.recordAttestation(ev);
        vm.assertEq(uint256(reg.getAttestation(node).tcbStatus), 4, "recorded status");
        vm.prank(owner);
        vm.expectPartialRevert(AttestationRegistry.TcbStatusNotAccepted.selector);
        reg.setAcceptedTcbStatuses(uint16(1 << 8));
    }

    function test_expired_validUntil_and_bad_tee_refused() public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0));
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.AttestationExpired.selector, uint64(T0), T0));
        reg.recordAttestation(ev);
        ev.validUntil = uint64(T0 + 1 days);
        ev.teeType = 255; // the old MOCK type is not a TEE
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.InvalidTeeType.selector, 255));
        reg.recordAttestation(ev);
    }

    function test_maxAge_bounds_and_lowering_applies_to_existing_records() public {
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.MaxAgeOutOfRange.selector, uint64(59 minutes), 1 hours, 7 days));
        reg.setMaxAttestationAge(59 minutes);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.MaxAgeOutOfRange.selector, uint64(8 days), 1 hours, 7 days));
        reg.setMaxAttestationAge(8 days);
        reg.setMaxAttestationAge(7 days);
        vm.stopPrank();
        _record(node, keccak256("q1")); // validUntil T0 + 3 days
        vm.assertEq(uint256(reg.getAttestation(node).expiresAt), T0 + 3 days, "within max age");
        vmt.warp(T0 + 2 hours);
        vm.assertTrue(reg.isAttested(node), "still attested");
        vm.prank(owner);
        reg.setMaxAttestationAge(1 hours);
        vm.assertFalse(reg.isAttested(node), "older than the new maximum age");
    }

    function test_revocation_by_node_owner_verifier_only() public {
        _record(node, keccak256("q1"));
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.NotAuthorized.selector, other));
        reg.revokeAttestationFor(node);
        vm.expectEmit(true, true, false, true, address(reg));
        emit AttestationRevoked(node, verifier);
        vm.prank(verifier);
        reg.revokeAttestationFor(node);
        vm.assertFalse(reg.isAttested(node), "revoked");
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.NoAttestation.selector, node));
        reg.revokeAttestation();
        _record(node, keccak256("q2"));
        vm.prank(node);
        reg.revokeAttestation();
        vm.assertEq(uint256(reg.getAttestation(node).teeType), 0, "gone");
    }

    function test_governance_is_owner_only() public {
        vm.startPrank(other);
        vm.expectRevert();
        reg.setVerifier(other, true);
        vm.expectRevert();
        reg.setMeasurementAllowed(MEAS, false);
        vm.expectRevert();
        reg.setMaxAttestationAge(2 hours);
        vm.expectRevert();
        reg.setDcapVerifier(IDcapQuoteVerifier(address(0)));
        vm.expectRevert();
        reg.setAcceptedTcbStatuses(3);
        vm.stopPrank();
        vm.prank(owner);
        reg.setVerifier(verifier, false);
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q1"), uint64(T0 + 1 days));
        vm.prank(verifier);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.NotVerifier.selector, verifier));
        reg.recordAttestation(ev);
    }

    // ------------------------------------------------------------------ fuzz

    /// Whatever expiry a verifier asks for and however much time passes, a record never outlives the maximum
    /// age, never outlives its own validUntil, and the stored expiry is capped.
    function testFuzz_record_never_outlives_caps(uint64 validUntil, uint256 dt, uint64 maxAge) public {
        maxAge = uint64(bound(maxAge, reg.MIN_MAX_AGE(), reg.MAX_MAX_AGE()));
        vm.prank(owner);
        reg.setMaxAttestationAge(maxAge);
        validUntil = uint64(bound(validUntil, T0 + 1, type(uint64).max));
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256(abi.encode(validUntil)), validUntil);
        vm.prank(verifier);
        reg.recordAttestation(ev);
        AttestationRegistry.Attestation memory a = reg.getAttestation(node);
        vm.assertLe(a.expiresAt, T0 + maxAge, "capped by max age");
        vm.assertLe(a.expiresAt, validUntil, "capped by validUntil");
        dt = bound(dt, 0, 30 days);
        vmt.warp(T0 + dt);
        bool expect = dt < a.expiresAt - T0;
        vm.assertEq(reg.isAttested(node), expect, "attested iff before expiry");
    }

    /// Any report data other than the exact binding is refused.
    function testFuzz_wrong_reportData_refused(bytes32 a, bytes32 b) public {
        AttestationRegistry.VerifiedEvidence memory ev = _ev(node, keccak256("q"), uint64(T0 + 1 days));
        bytes memory rd = abi.encodePacked(a, b);
        vm.assume(keccak256(rd) != keccak256(ev.reportData));
        ev.reportData = rd;
        vm.prank(verifier);
        vm.expectPartialRevert(AttestationRegistry.BindingMismatch.selector);
        reg.recordAttestation(ev);
    }

    // ------------------------------------------------------------------ path (b)

    function test_onchain_sgx_records_from_verifier_output() public {
        uint64 anchor = uint64(block.number - 1);
        dcap.set(true, bytes4(0), 0, _sgxBody(MEAS, _rd(node, anchor)));
        bytes memory quote = hex"030002000000000009000e00939a7233f79c4ca9940a0db3957f0607";
        vm.prank(node);
        reg.attestOnChain(quote, anchor, "bafkreiq");
        AttestationRegistry.Attestation memory a = reg.getAttestation(node);
        vm.assertEq(uint256(a.teeType), 1, "SGX");
        vm.assertEq(uint256(a.verifiedBy), 2, "on-chain");
        vm.assertEq(a.quoteHash, keccak256(quote), "hash computed by the contract");
        vm.assertEq(a.measurement, MEAS, "MRENCLAVE from output");
        vm.assertEq(a.verifier, address(dcap), "verifier contract");
        vm.assertEq(uint256(a.expiresAt), T0 + reg.maxAttestationAge(), "max age");
        vm.assertTrue(reg.isAttested(node), "attested");
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.QuoteReplayed.selector, keccak256(quote)));
        reg.attestOnChain(quote, anchor, "bafkreiq");
    }

    function test_onchain_tdx_measurement_is_mrtd_and_rtmrs() public {
        uint64 anchor = uint64(block.number - 1);
        (bytes memory body, bytes32 m) = _tdxBody(_rd(node, anchor));
        dcap.set(true, bytes4(0x00000081), 0, body);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.MeasurementNotAllowed.selector, m));
        reg.attestOnChain(hex"04", anchor, "");
        vm.prank(owner);
        reg.setMeasurementAllowed(m, true);
        vm.prank(node);
        reg.attestOnChain(hex"04", anchor, "");
        vm.assertEq(uint256(reg.getAttestation(node).teeType), 2, "TDX");
        vm.assertTrue(reg.isAttested(node), "attested");
    }

    function test_onchain_quote_bound_to_another_node_refused() public {
        uint64 anchor = uint64(block.number - 1);
        dcap.set(true, bytes4(0), 0, _sgxBody(MEAS, _rd(node, anchor)));
        vm.prank(other); // `other` replays node's genuine quote
        vm.expectPartialRevert(AttestationRegistry.BindingMismatch.selector);
        reg.attestOnChain(hex"03", anchor, "");
    }

    function test_onchain_tcb_unsupported_tee_bad_output_disabled() public {
        uint64 anchor = uint64(block.number - 1);
        dcap.set(true, bytes4(0), 6, _sgxBody(MEAS, _rd(node, anchor))); // Revoked
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.TcbStatusNotAccepted.selector, 6));
        reg.attestOnChain(hex"03", anchor, "");
        dcap.set(true, bytes4(0x00000042), 0, _sgxBody(MEAS, _rd(node, anchor)));
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(AttestationRegistry.UnsupportedDcapTee.selector, bytes4(0x00000042)));
        reg.attestOnChain(hex"03", anchor, "");
        dcap.set(true, bytes4(0x00000081), 0, _sgxBody(MEAS, _rd(node, anchor))); // TDX tag, SGX-sized body
        vm.prank(node);
        vm.expectPartialRevert(AttestationRegistry.BadVerifierOutput.selector);
        reg.attestOnChain(hex"03", anchor, "");
        vm.prank(owner);
        reg.setDcapVerifier(IDcapQuoteVerifier(address(0)));
        vm.prank(node);
        vm.expectRevert(AttestationRegistry.NoDcapVerifier.selector);
        reg.attestOnChain(hex"03", anchor, "");
    }
}
