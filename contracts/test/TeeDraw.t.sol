// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {AttestationRegistry} from "../src/AttestationRegistry.sol";

/// @notice TEE-only models draw only nodes that AttestationRegistry.isAttested says may serve now (issue 11 + 7).
contract TeeDrawTest is Fixture {
    address internal constant VERIFIER = address(0x7E71F1E7);
    bytes32 internal constant MEAS = keccak256("enclave-v1");
    bytes32 internal teeModel;

    function setUp() public override {
        super.setUp();
        vm.warp(1_800_000_000);
        vm.startPrank(owner);
        attestations.setVerifier(VERIFIER, true);
        attestations.setMeasurementAllowed(MEAS, true);
        vm.stopPrank();
        teeModel = _registerModel(publisher, "tee-model", address(0), 0, true);
    }

    function _attest(address who, uint256 i) internal {
        uint64 anchor = uint64(block.number - 1);
        AttestationRegistry.VerifiedEvidence memory ev = AttestationRegistry.VerifiedEvidence({
            node: who,
            teeType: 1,
            tcbStatus: 0,
            validUntil: uint64(block.timestamp + 2 days),
            anchorBlock: anchor,
            measurement: MEAS,
            quoteHash: keccak256(abi.encode("quote", i)),
            collateralHash: keccak256("collateral"),
            reportData: attestations.expectedReportData(who, anchor),
            quoteCid: "bafkreiquote"
        });
        vm.prank(VERIFIER);
        attestations.recordAttestation(ev);
    }

    function test_teeModel_drawsOnlyAttestedNodes() public {
        address[] memory list = _registerNodes(5, teeModel);
        for (uint256 i; i < 3; ++i) _attest(list[i], i);
        for (uint256 r; r < 10; ++r) {
            uint256 id = _request(requester, FEE, _params(3, 2), teeModel);
            address[] memory c = _draw(id);
            vm.assertEq(c.length, 3, "drawn");
            for (uint256 j; j < 3; ++j) vm.assertTrue(attestations.isAttested(c[j]), "attested only");
            _commitAll(id, c, OUT_A);
            _revealAll(id, c, OUT_A);
            _finalize(id);
        }
        vm.prank(list[0]);
        attestations.revokeAttestation();
        uint256 id2 = _request(requester, FEE, _params(3, 2), teeModel);
        _draw(id2);
        vm.assertEq(uint256(market.statusOf(id2)), uint256(IInferenceMarket.Status.Expired), "two attested left: expired");
    }
}
