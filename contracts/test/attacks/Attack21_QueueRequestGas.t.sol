// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {console} from "../utils/Vm.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Review of the seat queue, gas side (issue 7 attack 12 / the 150k target): the queue adds no work to
///         requestInference. Its gas is the same for queueBlocks 0, 20 and 255, with the network idle or with
///         every seat busy and requests queued, and stays under 150k as a transaction.
contract Attack21QueueRequestGasTest is Fixture {
    function _gas(uint8 queueBlocks) internal returns (uint256) {
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.queueBlocks = queueBlocks;
        _request(requester, FEE, p, modelId);
        return vm.lastCallGas().gasTotalUsed;
    }

    function test_attack21_requestGasFlatInQueueBlocks() public {
        address[] memory list = _registerNodes(3, modelId);
        _request(requester, FEE, _params(3, 2), modelId); // warm-up (first request of the model)
        uint256 g0 = _gas(0);
        uint256 g20 = _gas(20);
        uint256 g255 = _gas(255);
        // every seat busy, 30 requests waiting in the queue
        for (uint256 i; i < 3; ++i) {
            vm.prank(list[i]);
            nodes.setCapacity(1);
        }
        uint256 filler = _request(requester, FEE, _params(3, 2), modelId);
        _draw(filler);
        for (uint256 k; k < 30; ++k) _gas(20);
        uint256 gBusy = _gas(20);
        console.log("requestInference execution gas, queueBlocks 0", g0);
        console.log("requestInference execution gas, queueBlocks 20", g20);
        console.log("requestInference execution gas, queueBlocks 255", g255);
        console.log("requestInference execution gas, queueBlocks 20, seats busy, 30 queued", gBusy);
        vm.assertEq(g20, g0, "flat in queueBlocks");
        vm.assertEq(g255, g0, "flat in queueBlocks (max)");
        vm.assertEq(gBusy, g0, "flat in the queue's length and the seats");
        vm.assertLe(g0 + 21_000, 150_000, "under 150k as a transaction");
    }
}

/// @notice MAX_CAPACITY 255: a node holds 255 seats (inFlight is a uint8) and is never given a 256th.
contract Attack21CapacityCountersTest is Fixture {
    function test_attack21_capacity255_countersFit() public {
        address[] memory list = _registerNodes(1, modelId);
        vm.prank(list[0]);
        nodes.setCapacity(255);
        uint256[] memory ids = new uint256[](256);
        for (uint256 k; k < 256; ++k) ids[k] = _request(requester, FEE, _params(1, 1), modelId);
        vm.roll(block.number + 2);
        for (uint256 k; k < 255; ++k) market.draw(ids[k]);
        vm.assertEq(uint256(nodes.getNode(list[0]).inFlight), 255, "255 seats held");
        market.draw(ids[255]); // no queue: expires, never a 256th seat
        vm.assertEq(uint256(market.statusOf(ids[255])), uint256(IInferenceMarket.Status.Expired), "256th expired");
        vm.assertEq(uint256(nodes.getNode(list[0]).inFlight), 255, "still 255");
        for (uint256 k; k < 255; ++k) {
            _commit(ids[k], list[0], OUT_A);
            _reveal(ids[k], list[0], OUT_A); // a lone member's reveal settles and frees its seat
        }
        vm.assertEq(uint256(nodes.getNode(list[0]).inFlight), 0, "every seat freed");
        vm.assertEq(nodes.openAssignments(list[0]), 0, "every lock released");
    }
}
