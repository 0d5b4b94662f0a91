// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {Groth16VerifierFixture3} from "../fixtures/Groth16VerifierFixture3.sol";
import {RealProofFixture} from "../fixtures/RealProofFixture.sol";

/// @notice Issue 7 attack 3: honest INVALID_INPUT revealers slashed by the requester's own proof.
///         The requester knows a preimage of inputHash (the real fixture input), publishes garbage under the CID,
///         the committee reveals INVALID_INPUT, then the requester proves model(x) with a real Groth16 proof.
contract Attack03InvalidInputProofTest is Fixture {
    address internal constant ATTACKER = address(0x9800F); // the fixture proof is bound to this prover

    function test_attack03_proofCannotOverturnInvalidInputConsensus() public {
        Groth16VerifierFixture3 v = new Groth16VerifierFixture3();
        bytes32 m = _registerModel(publisher, "public-weights", address(v), 1, false);
        address[] memory list = _registerNodes(3, m);
        uint256 id = _request(ATTACKER, FEE, _params(3, 2), m);
        vm.assertEq(id, 1, "fixture proof is bound to request 1");
        address[] memory c = _draw(id);
        _commitAll(id, c, INVALID);
        _revealAll(id, c, INVALID);
        vm.prank(ATTACKER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToProve.selector, id));
        market.submitProof(id, bytes32(uint256(987655)), RealProofFixture.proof());
        market.finalize(id); // INVALID_INPUT consensus settles without a proof window
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.InvalidInput), "invalid input");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(nodes.stakeOf(list[i]), STAKE, "no honest revealer slashed");
            vm.assertGe(market.withdrawable(list[i]), FEE / 3, "the committee is paid for the check");
        }
        vm.assertEq(market.withdrawable(ATTACKER), 0, "the requester pays for invalid input");
    }

    function test_attack03_proofBeforeQuorumStillLoses() public {
        Groth16VerifierFixture3 v = new Groth16VerifierFixture3();
        bytes32 m = _registerModel(publisher, "public-weights", address(v), 1, false);
        _registerNodes(3, m);
        uint256 id = _request(ATTACKER, FEE, _params(3, 2), m);
        address[] memory c = _draw(id);
        _commitAll(id, c, INVALID);
        _reveal(id, c[0], INVALID);
        vm.prank(ATTACKER); // races the proof in before the second INVALID_INPUT reveal
        market.submitProof(id, bytes32(uint256(987655)), RealProofFixture.proof());
        _reveal(id, c[1], INVALID);
        _reveal(id, c[2], INVALID);
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.InvalidInput), "consensus stands");
        vm.assertEq(nodes.totalBurned(), 0, "nobody slashed");
        vm.assertEq(market.withdrawable(ATTACKER), 0, "no refund, no reward");
    }
}
