// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "../utils/Preview.sol";
import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Found in review: nobody executes the draw (or only once blockhash(drawBlock) is gone, > 256 blocks),
///         hoping to pick a favourable moment. The draw window closes at min(commitDeadline, end of the next epoch,
///         drawBlock + 256); after it the request can only expire with a full refund, and nobody is slashed.
contract Attack18DrawNeverExecutedTest is Fixture {
    function test_attack18_undrawnRequestExpires() public {
        address[] memory list = _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.roll(r.drawDeadline + 1);
        market.draw(id); // too late: expires instead of drawing
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Expired), "expired");
        vm.assertEq(market.withdrawable(requester), FEE, "refunded");
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(list[i]), STAKE, "nobody slashed");
    }

    function test_attack18_blockhashOlderThan256Blocks() public {
        _registerNodes(3, modelId);
        vm.prank(owner);
        market.setMinCommitBlocks(1000);
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.commitBlocks = 2000;
        uint256 id = _request(requester, FEE, p, modelId);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertLe(uint256(r.drawDeadline), uint256(r.drawBlock) + 256, "never past the blockhash horizon");
        vm.roll(r.drawBlock + 300);
        vm.assertEq(previewCommittee(market, id).length, 0, "no preview from a lost hash");
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Expired), "expired, refunded");
    }
}
