// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Issue 7 attack 11 (node side; network test: tests/test_attacks_network.py, port helper). On-chain
///         part: windows are at least minCommitBlocks/minRevealBlocks (10) so a live node's fetch budget fits, and
///         a request that fails for everyone (no node could fetch the input) slashes nobody.
contract Attack11MissingInputTest is Fixture {
    function test_attack11_missingInputSlashesNobody_windowsHaveAFloor() public {
        address[] memory list = _registerNodes(3, modelId);
        vm.assertGe(uint256(market.parameters().minCommitBlocks), 10, "commit floor");
        vm.assertGe(uint256(market.parameters().minRevealBlocks), 10, "reveal floor");
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("minCommitBlocks"), 2));
        market.setMinCommitBlocks(2);
        // request with a missing input CID followed by a valid one: the first fails for everyone
        (uint256 bad,) = _requestDrawn(3, 2);
        (uint256 good, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(good, c, OUT_A);
        _revealAll(good, c, OUT_A);
        _finalize(good);
        _rollPastReveal(bad);
        market.finalize(bad);
        vm.assertEq(uint256(market.statusOf(bad)), uint256(IInferenceMarket.Status.NoQuorum), "missing input: no quorum");
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(list[i]), STAKE, "nobody slashed");
    }

    function test_attack11_invalidInputIsPaidWork() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, INVALID); // nodes that fetched garbage say so
        _revealAll(id, c, INVALID); // unanimous: the last reveal settles
        _finalize(id);
        vm.assertEq(market.withdrawable(c[0]) + market.withdrawable(c[1]) + market.withdrawable(c[2]), FEE, "paid");
    }
}
