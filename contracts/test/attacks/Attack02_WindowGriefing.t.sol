// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Issue 7 attack 2: a requester slashes a whole committee with windows nobody can meet.
///         V1: 1-block windows, every no-show slashed, NoQuorum refunded the fee; 11 rounds emptied every stake.
contract Attack02WindowGriefingTest is Fixture {
    function test_attack02_oneBlockWindowsRefused() public {
        _registerNodes(3, modelId);
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.commitBlocks = 1;
        p.revealBlocks = 1;
        vm.deal(requester, FEE);
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidCommitBlocks.selector, uint32(1), uint32(10), uint32(10_000))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
    }

    function test_attack02_unmeetableRequestsSlashNobody() public {
        address[] memory list = _registerNodes(3, modelId);
        // shortest legal windows, 11 rounds in which (say) the input never appears and nobody can reveal
        for (uint256 r; r < 11; ++r) {
            (uint256 id,) = _requestDrawn(3, 2);
            _rollPastReveal(id);
            market.finalize(id);
            vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
        }
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(list[i]), STAKE, "no-shows are not slashed without quorum");
        vm.assertEq(nodes.totalBurned(), 0, "nothing burned");
        vm.assertEq(market.withdrawable(requester), 11 * FEE, "the requester only gets its fees back");
    }
}
