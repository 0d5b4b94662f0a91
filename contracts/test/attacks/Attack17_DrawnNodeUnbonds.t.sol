// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "../utils/Preview.sol";
import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";

/// @notice Found in review: (a) a drawn node unbonds to dodge its duty; (b) a node that sees the seed unbonds
///         before the draw executes to leave a committee it was about to join.
contract Attack17DrawnNodeUnbondsTest is Fixture {
    function test_attack17_drawnNodeCannotLeaveBeforeSettlement() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        vm.prank(c[0]);
        nodes.requestUnbond();
        _commit(id, c[1], OUT_A);
        _commit(id, c[2], OUT_A);
        _rollPastCommit(id);
        _reveal(id, c[1], OUT_A);
        _reveal(id, c[2], OUT_A);
        vm.roll(block.number + 1000);
        vm.prank(c[0]);
        vm.expectPartialRevert(INodeRegistry.StillAssigned.selector);
        nodes.withdrawStake();
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(c[0]), STAKE - 0.1 ether, "the no-show pays");
    }

    function test_attack17_unbondingBeforeTheDrawOnlyRemovesItself() public {
        _registerNodes(5, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.roll(block.number + 2);
        address[] memory planned = previewCommittee(market, id);
        vm.prank(planned[0]); // it dislikes its seat and leaves before anyone draws
        nodes.requestUnbond();
        address[] memory c = _draw(id);
        vm.assertEq(c.length, 3, "the seat is refilled");
        for (uint256 i; i < 3; ++i) vm.assertTrue(c[i] != planned[0], "the leaver is out");
        vm.assertFalse(nodes.isEligible(planned[0], modelId), "and out of every future draw until it withdraws");
    }
}
