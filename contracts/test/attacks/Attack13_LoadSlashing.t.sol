// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Issue 7 attack 13 (load; network benchmark: benchmarks/, port helper). On-chain part: nobody is given
///         more seats than its declared capacity, requests beyond the network's capacity expire with a refund
///         instead of being assigned, and requests that fail for everyone slash nobody.
contract Attack13LoadSlashingTest is Fixture {
    function test_attack13_burstRespectsCapacity_andFailuresSlashNobody() public {
        address[] memory list = _registerNodes(3, modelId);
        for (uint256 i; i < 3; ++i) {
            vm.prank(list[i]);
            nodes.setCapacity(2);
        }
        uint256[] memory ids = new uint256[](10);
        for (uint256 r; r < 10; ++r) ids[r] = _request(requester, FEE, _params(3, 2), modelId);
        vm.roll(block.number + 2);
        uint256 drawn;
        uint256 expired;
        for (uint256 r; r < 10; ++r) {
            market.draw(ids[r]);
            IInferenceMarket.Status st = market.statusOf(ids[r]);
            if (st == IInferenceMarket.Status.Expired) ++expired;
            else ++drawn;
        }
        vm.assertEq(drawn, 2, "3 nodes x capacity 2 = two 3-seat committees");
        vm.assertEq(expired, 8, "the rest expire, refunded");
        for (uint256 i; i < 3; ++i) vm.assertEq(uint256(nodes.getNode(list[i]).inFlight), 2, "at capacity, never beyond");
        // the overloaded network misses every reveal: no quorum, nobody slashed
        vm.roll(block.number + 100);
        for (uint256 r; r < 10; ++r) {
            if (market.statusOf(ids[r]) != IInferenceMarket.Status.Expired) market.finalize(ids[r]);
        }
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(nodes.stakeOf(list[i]), STAKE, "stake intact");
            vm.assertEq(uint256(nodes.getNode(list[i]).inFlight), 0, "capacity freed");
        }
        vm.assertEq(market.withdrawable(requester), 10 * FEE, "every fee back");
        // and the network still accepts requests afterwards
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        vm.assertEq(c.length, 3, "drawn");
        id;
    }
}
