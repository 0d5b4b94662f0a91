// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {Groth16VerifierFixture3} from "../fixtures/Groth16VerifierFixture3.sol";
import {RealProofFixture} from "../fixtures/RealProofFixture.sol";

/// @notice Issue 7 attack 5: a colluding majority reveals a false output and finalizes in the same block as the
///         honest reveal, before the honest proof lands (real snarkjs verifier and proof).
contract Attack05FinalizeBeforeProofTest is Fixture {
    address internal constant PROVER = address(0x9800F);
    bytes32 internal constant TRUE_OUT = bytes32(uint256(987655));
    bytes32 internal constant LIE = bytes32(uint256(4242));

    function test_attack05_majorityCannotFinalizeBeforeProofWindow_andPaysForLying() public {
        Groth16VerifierFixture3 v = new Groth16VerifierFixture3();
        bytes32 m = _registerModel(publisher, "proven", address(v), 1, false);
        _registerNodes(3, m);
        uint256 id = _request(requester, FEE, _params(3, 2), m);
        address[] memory c = _draw(id);
        _commit(id, c[0], LIE);
        _commit(id, c[1], LIE);
        _commit(id, c[2], TRUE_OUT);
        _reveal(id, c[0], LIE);
        _reveal(id, c[1], LIE);
        _reveal(id, c[2], TRUE_OUT);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, r.finalizeAfter));
        market.finalize(id); // same block as the last reveal
        vm.roll(r.finalizeAfter - 1);
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, r.finalizeAfter));
        market.finalize(id);
        vm.prank(PROVER); // the honest proof lands inside the window
        market.submitProof(id, TRUE_OUT, RealProofFixture.proof());
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
        vm.assertEq(market.getRequest(id).outputHash, TRUE_OUT, "the true output settles");
        vm.assertEq(market.withdrawable(c[2]), FEE, "the honest node takes the whole fee");
        vm.assertEq(market.withdrawable(c[0]) + market.withdrawable(c[1]), 0, "liars unpaid");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE - 0.1 ether, "liar slashed");
        vm.assertEq(nodes.stakeOf(c[1]), STAKE - 0.1 ether, "liar slashed");
        vm.assertEq(nodes.stakeOf(c[2]), STAKE, "honest not slashed");
        vm.assertEq(market.withdrawable(PROVER), 0.1 ether, "prover rewarded with half the liars' slashes");
    }
}
