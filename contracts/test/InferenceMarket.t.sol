// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";

contract InferenceMarketTest is Fixture {
    function test_smoke_lifecycle() public {
        _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.roll(block.number + 2);
        address[] memory prev = market.previewCommittee(id);
        vm.assertEq(prev.length, 3, "preview");
        address[] memory c = _draw(id);
        vm.assertEq(c.length, 3, "drawn");
        vm.assertEq(c[0], prev[0], "same as preview");
        _commitAll(id, c, OUT_A);
        _revealAll(id, c, OUT_A);
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
        vm.assertEq(market.withdrawable(c[0]), FEE / 3, "paid");
    }
}
