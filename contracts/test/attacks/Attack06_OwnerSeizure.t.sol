// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";

/// @notice Issue 7 attack 6: the owner seizes or freezes stake (unbounded slashAmount read at finalize + treasury
///         set to itself; unbondingDelay raised for withdrawals under way; zero delay lets a no-show escape).
contract Attack06OwnerSeizureTest is Fixture {
    function test_attack06_frontRunFinalizeWithHugeSlash_fails() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _rollPastReveal(id);
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("slashAmount"), STAKE));
        market.setSlashAmount(STAKE); // above minStake / 4
        market.setSlashAmount(0.25 ether); // the most it can do, for future requests only
        vm.stopPrank();
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - 0.1 ether, "the no-show loses the snapshotted amount only");
        // no treasury: the owner has no function to take slashed or staked funds
        (bool ok,) = address(nodes).call(abi.encodeWithSignature("setTreasury(address)", owner));
        vm.assertFalse(ok, "no setTreasury");
        (ok,) = address(nodes).call(abi.encodeWithSignature("withdrawSlashed()"));
        vm.assertFalse(ok, "no withdrawSlashed");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.totalBurned(), "burned stays locked");
    }

    function test_attack06_registryCapsEverySlash() public {
        _registerNodes(1, modelId);
        vm.prank(address(market)); // even the market (the only slasher) cannot take more than minStake / 4
        (uint256 slashed,) = nodes.slash(_node(0), STAKE, 1, 0);
        vm.assertEq(slashed, 0.25 ether, "cap");
    }

    function test_attack06_delayChangesDoNotRetimeUnbonding_andZeroDelayImpossible() public {
        _registerNodes(1, modelId);
        vm.prank(_node(0));
        nodes.requestUnbond();
        uint256 atBlock = nodes.withdrawableAt(_node(0));
        vm.startPrank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("unbondingDelay"), 10_000_000)
        );
        nodes.setUnbondingDelay(10_000_000);
        nodes.setUnbondingDelay(100_000);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("unbondingDelay"), 0));
        nodes.setUnbondingDelay(0);
        vm.stopPrank();
        vm.roll(atBlock);
        vm.prank(_node(0));
        nodes.withdrawStake();
        vm.assertEq(_node(0).balance, STAKE, "withdrawn on the original schedule");
    }

    function test_attack06_noShowCannotWithdrawBeforeSettlement() public {
        _registerNodes(3, modelId);
        vm.prank(owner);
        nodes.setUnbondingDelay(10); // the minimum
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        vm.prank(c[2]);
        nodes.requestUnbond();
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        vm.roll(block.number + 500);
        vm.prank(c[2]);
        vm.expectPartialRevert(INodeRegistry.StillAssigned.selector);
        nodes.withdrawStake();
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - 0.1 ether, "slashed before it could leave");
        vm.prank(c[2]);
        nodes.withdrawStake();
    }

    function test_attack06_ownerCannotMoveEscrow() public {
        _registerNodes(3, modelId);
        _request(requester, FEE, _params(3, 2), modelId);
        uint256 escrow = market.totalEscrowed();
        vm.startPrank(owner);
        market.setMinFee(1 ether);
        market.setCallbackGasPrice(1000 gwei);
        market.setProofBlocks(1000);
        vm.stopPrank();
        vm.assertEq(address(market).balance, escrow, "escrow untouched by every owner function");
        vm.assertEq(market.withdrawable(owner), 0, "owner credited nothing");
    }
}
