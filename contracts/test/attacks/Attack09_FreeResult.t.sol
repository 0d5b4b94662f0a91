// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Issue 7 attack 9: a free result. With quorum == replicas one withheld reveal forced NoQuorum: the
///         requester, holding the revealed answer, got the whole fee back and the workers were unpaid.
contract Attack09FreeResultTest is Fixture {
    function test_attack09_revealedWorkIsPaidOnNoQuorum() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 3);
        _commitAll(id, c, OUT_A);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A); // the answer is public now; c[2] (e.g. the requester's friend) withholds
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
        vm.assertEq(market.withdrawable(c[0]), FEE / 3, "worker paid");
        vm.assertEq(market.withdrawable(c[1]), FEE / 3, "worker paid");
        vm.assertLe(market.withdrawable(requester), FEE - 2 * (FEE / 3), "requester refunded only the unrevealed seat");
    }
}
