// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {MockVerifier} from "../utils/MockVerifier.sol";

/// @notice Issue 7 attack 10 (client side; network test: tests/test_attacks_network.py, port helper). The on-chain
///         part: a client that finalizes one block after the last reveal of a proven model is refused, and
///         getRequest tells it when it may (finalizeAfter).
contract Attack10ClientEarlyFinalizeTest is Fixture {
    function test_attack10_finalizeOneBlockAfterRevealsRefusedForProvenModels() public {
        MockVerifier v = new MockVerifier(false); // no proof arrives in this test
        bytes32 m = _registerModel(publisher, "proven", address(v), 1, false);
        _registerNodes(3, m);
        uint256 id = _request(requester, FEE, _params(3, 2), m);
        address[] memory c = _draw(id);
        _commitAll(id, c, OUT_B);
        _revealAll(id, c, OUT_B);
        vm.roll(block.number + 1);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.finalizeAfter), uint256(r.revealDeadline) + uint256(r.proofBlocks), "finalizeAfter");
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, r.finalizeAfter));
        market.finalize(id);
        vm.roll(r.finalizeAfter + 1);
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "settles after the window");
    }
}
