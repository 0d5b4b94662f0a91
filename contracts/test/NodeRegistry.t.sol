// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {IModelRegistry} from "../src/interfaces/IModelRegistry.sol";

/// @dev Refuses ETH: exercises TransferFailed paths.
contract RejectEther {
    function call(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }
}

/// @dev Tries to re-enter withdrawStake from its receive hook.
contract ReentrantNode {
    NodeRegistry internal immutable reg;
    bool internal attacked;
    bool public reentryBlocked;

    constructor(NodeRegistry r) {
        reg = r;
    }

    function register(INodeRegistry.ModelShard[] calldata shards) external payable {
        reg.register{value: msg.value}("http://evil", shards);
    }

    function unbond() external {
        reg.requestUnbond();
    }

    function withdraw() external {
        reg.withdrawStake();
    }

    receive() external payable {
        if (!attacked) {
            attacked = true;
            try reg.withdrawStake() {} catch { reentryBlocked = true; }
        }
    }
}

contract NodeRegistryTest is Fixture {
    address internal n0 = address(0x1000);
    address internal n1 = address(0x1001);

    function _partialShard(bytes32 id) internal pure returns (INodeRegistry.ModelShard[] memory s) {
        s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: id, layerStart: 0, layerEnd: 1});
    }

    function test_register_recordsNode_tree_and_capacity() public {
        vm.expectEmit(true, false, false, true, address(nodes));
        emit INodeRegistry.CapacitySet(n0, 4);
        _registerNode(n0, STAKE, modelId);
        INodeRegistry.Node memory n = nodes.getNode(n0);
        vm.assertEq(n.operator, n0, "operator");
        vm.assertEq(n.stake, STAKE, "stake");
        vm.assertTrue(n.registered, "registered");
        vm.assertEq(uint256(n.capacity), 4, "default capacity");
        vm.assertEq(uint256(n.inFlight), 0, "in flight");
        vm.assertEq(n.endpoint, "http://node.local:8545", "endpoint");
        vm.assertTrue(nodes.isEligible(n0, modelId), "eligible");
        vm.assertEq(nodes.eligibleStake(modelId), STAKE, "tree total");
        vm.assertEq(nodes.totalStaked(), STAKE, "total staked");
        vm.assertEq(nodes.nodeCountForModel(modelId), 1, "listed");
        vm.assertEq(nodes.nodeForModelAt(modelId, 0), n0, "at");
        vm.assertEq(nodes.nodesForModel(modelId)[0], n0, "list");
        vm.assertEq(nodes.getShards(n0).length, 1, "shards");
        // the snapshot of the current epoch does not see it yet; the next epoch does
        uint64 e = nodes.currentEpoch();
        vm.assertEq(nodes.weightAtEpoch(modelId, n0, e), 0, "not in this epoch's snapshot");
        _nextEpoch();
        vm.assertEq(nodes.weightAtEpoch(modelId, n0, e + 1), STAKE, "in the next one");
        vm.assertEq(nodes.totalAtEpoch(modelId, e + 1), STAKE, "total at next");
    }

    function test_partialShards_listedButNeverInTree() public {
        vm.deal(n0, STAKE);
        vm.prank(n0);
        nodes.register{value: STAKE}("http://stage", _partialShard(modelId));
        vm.assertEq(nodes.nodeCountForModel(modelId), 1, "listed for discovery");
        vm.assertFalse(nodes.isEligible(n0, modelId), "not eligible");
        vm.assertEq(nodes.eligibleStake(modelId), 0, "no weight");
        // layerEnd == numLayers is also a full shard
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 0, layerEnd: 2});
        vm.prank(n0);
        nodes.setShards(s);
        vm.assertTrue(nodes.isEligible(n0, modelId), "full by numLayers");
    }

    function test_revert_register_paths() public {
        vm.deal(n0, 100 ether);
        vm.startPrank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InsufficientStake.selector, 0.5 ether, 1 ether));
        nodes.register{value: 0.5 ether}("http://x", _fullShard(modelId));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.EmptyEndpoint.selector));
        nodes.register{value: STAKE}("", _fullShard(modelId));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.EndpointTooLong.selector, 257, 256));
        nodes.register{value: STAKE}(string(new bytes(257)), _fullShard(modelId));
        INodeRegistry.ModelShard[] memory five = new INodeRegistry.ModelShard[](5);
        for (uint256 i; i < 5; ++i) five[i] = _fullShard(modelId)[0];
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.TooManyShards.selector, 5, 4));
        nodes.register{value: STAKE}("http://x", five);
        bytes32 missing = keccak256("missing");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnknownModel.selector, missing));
        nodes.register{value: STAKE}("http://x", _fullShard(missing));
        INodeRegistry.ModelShard[] memory bad = new INodeRegistry.ModelShard[](1);
        bad[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 1, layerEnd: 1});
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidShard.selector, modelId, uint16(1), uint16(1)));
        nodes.register{value: STAKE}("http://x", bad);
        bad[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 1, layerEnd: 3});
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidShard.selector, modelId, uint16(1), uint16(3)));
        nodes.register{value: STAKE}("http://x", bad);
        nodes.register{value: STAKE}("http://x", _fullShard(modelId));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.AlreadyRegistered.selector, n0));
        nodes.register{value: STAKE}("http://x", _fullShard(modelId));
        vm.stopPrank();
        vm.prank(publisher);
        models.deprecate(modelId);
        vm.deal(n1, STAKE);
        vm.prank(n1);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ModelIsDeprecated.selector, modelId));
        nodes.register{value: STAKE}("http://x", _fullShard(modelId));
    }

    function test_revert_unregisteredCalls() public {
        vm.startPrank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotRegistered.selector, n0));
        nodes.topUp();
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotRegistered.selector, n0));
        nodes.setEndpoint("x");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotRegistered.selector, n0));
        nodes.setShards(_fullShard(modelId));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotRegistered.selector, n0));
        nodes.setCapacity(2);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotRegistered.selector, n0));
        nodes.requestUnbond();
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotRegistered.selector, n0));
        nodes.withdrawStake();
        vm.stopPrank();
    }

    function test_topUp_endpoint_shards_capacity_updateTree() public {
        bytes32 other = _registerModel(publisher, "other", address(0), 0, false);
        _registerNode(n0, STAKE, modelId);
        vm.deal(n0, 1 ether);
        vm.startPrank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ZeroValue.selector));
        nodes.topUp();
        nodes.topUp{value: 1 ether}();
        vm.assertEq(nodes.eligibleStake(modelId), STAKE + 1 ether, "tree follows top-up");
        nodes.setEndpoint("http://new");
        nodes.setShards(_fullShard(other));
        vm.assertEq(nodes.eligibleStake(modelId), 0, "left the old model's tree");
        vm.assertEq(nodes.eligibleStake(other), STAKE + 1 ether, "joined the new one");
        vm.assertEq(nodes.nodeCountForModel(modelId), 0, "unlisted");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidCapacity.selector, uint16(0)));
        nodes.setCapacity(0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidCapacity.selector, uint16(256)));
        nodes.setCapacity(256);
        nodes.setCapacity(255); // MAX_CAPACITY: inFlight (uint8) never passes it
        vm.stopPrank();
        vm.assertEq(uint256(nodes.getNode(n0).capacity), 255, "capacity");
        vm.assertEq(nodes.getNode(n0).endpoint, "http://new", "endpoint");
    }

    function test_unbond_snapshotsDelay_andWithdrawTiming() public {
        _registerNode(n0, STAKE, modelId);
        vm.startPrank(n0);
        nodes.requestUnbond();
        uint256 atBlock = block.number + 20;
        vm.assertEq(nodes.withdrawableAt(n0), atBlock, "availableAt");
        vm.assertEq(nodes.eligibleStake(modelId), 0, "weight 0 at once");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.AlreadyUnbonding.selector, n0));
        nodes.requestUnbond();
        vm.deal(n0, 1);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeUnbonding.selector, n0));
        nodes.topUp{value: 1}();
        vm.stopPrank();
        // governance raising the delay does not move an unbonding already under way (attack 6)
        vm.prank(owner);
        nodes.setUnbondingDelay(100_000);
        vm.assertEq(nodes.withdrawableAt(n0), atBlock, "unchanged");
        vm.roll(atBlock - 1);
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotElapsed.selector, atBlock - 1, atBlock));
        nodes.withdrawStake();
        vm.roll(atBlock);
        uint256 before = n0.balance;
        vm.prank(n0);
        nodes.withdrawStake();
        vm.assertEq(n0.balance - before, STAKE, "paid");
        vm.assertFalse(nodes.getNode(n0).registered, "gone");
        vm.assertEq(address(nodes).balance, 0, "empty");
    }

    function test_revert_withdraw_notUnbonding() public {
        _registerNode(n0, STAKE, modelId);
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotUnbonding.selector, n0));
        nodes.withdrawStake();
    }

    function testFuzz_unbond_timing(uint64 delay, uint256 wait) public {
        delay = uint64(bound(delay, 10, 100_000));
        wait = bound(wait, 0, 200_000);
        vm.prank(owner);
        nodes.setUnbondingDelay(delay);
        _registerNode(n0, STAKE, modelId);
        vm.prank(n0);
        nodes.requestUnbond();
        uint256 start = block.number;
        vm.roll(start + wait);
        vm.prank(n0);
        if (wait < delay) {
            vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotElapsed.selector, start + wait, start + delay));
        }
        nodes.withdrawStake();
    }

    function test_withdrawStake_reentrancyBlocked() public {
        ReentrantNode evil = new ReentrantNode(nodes);
        vm.deal(address(this), STAKE);
        evil.register{value: STAKE}(_fullShard(modelId));
        evil.unbond();
        vm.roll(block.number + nodes.unbondingDelay());
        evil.withdraw();
        vm.assertTrue(evil.reentryBlocked(), "reentry must fail");
        vm.assertEq(address(evil).balance, STAKE, "paid once");
        vm.assertEq(address(nodes).balance, 0, "nothing left");
    }

    function test_revert_withdrawStake_transferFailed() public {
        RejectEther rej = new RejectEther();
        vm.deal(address(this), STAKE);
        rej.call{value: STAKE}(address(nodes), abi.encodeCall(nodes.register, ("http://r", _fullShard(modelId))));
        rej.call(address(nodes), abi.encodeCall(nodes.requestUnbond, ()));
        vm.roll(block.number + nodes.unbondingDelay());
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.TransferFailed.selector, address(rej), STAKE));
        rej.call(address(nodes), abi.encodeCall(nodes.withdrawStake, ()));
    }

    function test_governance_bounds() public {
        vm.startPrank(owner);
        nodes.setMinStake(2 ether);
        nodes.setUnbondingDelay(50);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("minStake"), 0.001 ether));
        nodes.setMinStake(0.001 ether);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("minStake"), 1001 ether));
        nodes.setMinStake(1001 ether);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("unbondingDelay"), 9));
        nodes.setUnbondingDelay(9);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("unbondingDelay"), 100_001));
        nodes.setUnbondingDelay(100_001);
        vm.stopPrank();
        vm.assertEq(nodes.minStake(), 2 ether, "minStake");
        vm.assertEq(uint256(nodes.unbondingDelay()), 50, "delay");
        vm.prank(address(0xBAD));
        vm.expectRevert();
        nodes.setMinStake(1 ether);
    }

    function test_setMarket_once_and_constructorBounds() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.MarketAlreadySet.selector, address(market)));
        nodes.setMarket(address(0x1234));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ZeroAddress.selector));
        new NodeRegistry(owner, address(0), address(0), 1 ether, 20, 20);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("epochLength"), 4));
        new NodeRegistry(owner, address(models), address(0), 1 ether, 20, 4);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("unbondingDelay"), 0));
        new NodeRegistry(owner, address(models), address(0), 1 ether, 0, 20);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("minStake"), 0));
        new NodeRegistry(owner, address(models), address(0), 0, 20, 20);
        vm.assertEq(nodes.market(), address(market), "market");
        vm.assertEq(nodes.modelRegistry(), address(models), "models");
        vm.assertEq(nodes.attestationRegistry(), address(attestations), "attestations");
    }

    function test_marketOnly_functions() public {
        _registerNode(n0, STAKE, modelId);
        address[] memory one = new address[](1);
        one[0] = n0;
        uint64 e = nodes.currentEpoch();
        vm.startPrank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, address(0xBAD)));
        nodes.slash(n0, 1 ether, 1, 0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, address(0xBAD)));
        nodes.release(one);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, address(0xBAD)));
        nodes.unlock(one, 1);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, address(0xBAD)));
        nodes.drawAndAssign(modelId, 1, e, 1, false, 1000, false);
        vm.stopPrank();
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotAssigned.selector, n0));
        nodes.release(one);
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotAssigned.selector, n0));
        nodes.unlock(one, 0);
    }

    function test_slash_cappedAtQuarterMinStake_burned_treeUpdated() public {
        _registerNode(n0, STAKE, modelId);
        vm.prank(address(market));
        (uint256 slashed, uint256 reward) = nodes.slash(n0, 10 ether, 7, 0);
        vm.assertEq(slashed, 0.25 ether, "capped at minStake/4 whatever the market asks");
        vm.assertEq(reward, 0, "no reward");
        vm.assertEq(nodes.totalBurned(), 0.25 ether, "burned");
        vm.assertEq(nodes.stakeOf(n0), STAKE - 0.25 ether, "stake");
        vm.assertEq(nodes.eligibleStake(modelId), STAKE - 0.25 ether, "tree follows");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.totalBurned(), "solvent");
        // a reward share goes to the market
        uint256 mBefore = address(market).balance;
        vm.prank(address(market));
        (slashed, reward) = nodes.slash(n0, 0.2 ether, 8, 5000);
        vm.assertEq(reward, 0.1 ether, "half");
        vm.assertEq(address(market).balance - mBefore, 0.1 ether, "sent to market");
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("rewardBps"), 10_001));
        nodes.slash(n0, 0.2 ether, 8, 10_001);
    }

    function test_slash_belowMinStake_leavesTree() public {
        vm.deal(n0, 1.1 ether);
        vm.prank(n0);
        nodes.register{value: 1.1 ether}("http://x", _fullShard(modelId));
        vm.prank(address(market));
        nodes.slash(n0, 0.2 ether, 1, 0);
        vm.assertFalse(nodes.isEligible(n0, modelId), "below minStake: weight 0");
        vm.assertEq(nodes.eligibleStake(modelId), 0, "tree empty");
    }

    function testFuzz_stakeAndSlash(uint256 stake, uint256 topUp, uint256 amount) public {
        stake = bound(stake, 1 ether, 1000 ether);
        topUp = bound(topUp, 0, 1000 ether);
        amount = bound(amount, 0, 3000 ether);
        _registerNode(n0, stake, modelId);
        if (topUp > 0) {
            vm.deal(n0, topUp);
            vm.prank(n0);
            nodes.topUp{value: topUp}();
        }
        vm.prank(address(market));
        (uint256 slashed,) = nodes.slash(n0, amount, 1, 0);
        uint256 cap = nodes.minStake() / 4;
        uint256 expect = amount < stake + topUp ? amount : stake + topUp;
        if (expect > cap) expect = cap;
        vm.assertEq(slashed, expect, "slashed");
        vm.assertEq(nodes.stakeOf(n0), stake + topUp - expect, "stake");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.totalBurned(), "solvent");
        uint256 w = nodes.stakeOf(n0) >= nodes.minStake() ? (nodes.stakeOf(n0) / 1 gwei) * 1 gwei : 0;
        vm.assertEq(nodes.eligibleStake(modelId), w, "tree == eligible stake");
    }

    function test_drawnNode_cannotWithdrawUntilSettled() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        vm.prank(c[0]);
        nodes.requestUnbond();
        vm.roll(block.number + 1000);
        uint64 until = nodes.assignedUntil(c[0]);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.StillAssigned.selector, c[0], until));
        nodes.withdrawStake();
        market.finalize(id); // nobody revealed: NoQuorum, no slash; seats released
        vm.prank(c[0]);
        nodes.withdrawStake();
        vm.assertFalse(nodes.getNode(c[0]).registered, "withdrawn after settlement");
    }

    function test_snapshot_tooOld_reverts() public {
        _registerNode(n0, STAKE, modelId);
        uint64 e = nodes.currentEpoch();
        vm.roll(block.number + 3 * EPOCH);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.SnapshotTooOld.selector, e, e + 3));
        nodes.totalAtEpoch(modelId, e);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.SnapshotTooOld.selector, e + 4, e + 3));
        nodes.drawCommittee(modelId, 1, e + 4, 1, false, false);
    }
}
