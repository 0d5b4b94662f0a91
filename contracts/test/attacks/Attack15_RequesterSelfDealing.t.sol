// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Found in review: a requester that also runs a node. Withholding its own reveal forces NoQuorum with
///         quorum == replicas, but the honest revealers are still paid; revealing a wrong answer gets it slashed.
contract Attack15RequesterSelfDealingTest is Fixture {
    function test_attack15_selfDealingRequesterStillPaysTheWorkers() public {
        address[] memory list = _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 3);
        address mine = c[0]; // the requester's own node
        _commitAll(id, c, OUT_A);
        _reveal(id, c[1], OUT_A);
        _reveal(id, c[2], OUT_A); // the requester reads the answer from these reveals and withholds its own
        _rollPastReveal(id);
        market.finalize(id);
        uint256 requesterSide = market.withdrawable(requester) + market.withdrawable(mine);
        vm.assertEq(market.withdrawable(c[1]) + market.withdrawable(c[2]), 2 * (FEE / 3), "the workers are paid");
        vm.assertLe(requesterSide, FEE - 2 * (FEE / 3), "the requester side recovers at most its own seat");
        list;
    }

    function test_attack15_selfDealerLyingIsSlashed() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commit(id, c[0], OUT_B); // the requester's node lies to push its answer
        _commit(id, c[1], OUT_A);
        _commit(id, c[2], OUT_A);
        _reveal(id, c[0], OUT_B);
        _reveal(id, c[1], OUT_A);
        _reveal(id, c[2], OUT_A);
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(c[0]), STAKE - 0.1 ether, "slashed");
        vm.assertEq(market.getRequest(id).outputHash, OUT_A, "honest majority settles");
    }
}
