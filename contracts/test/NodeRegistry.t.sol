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
    event NodeRegistered(address indexed node, string endpoint, uint256 stake, INodeRegistry.ModelShard[] shards);
    event StakeAdded(address indexed node, uint256 amount, uint256 newStake);
    event EndpointUpdated(address indexed node, string endpoint);
    event ShardsUpdated(address indexed node, INodeRegistry.ModelShard[] shards);
    event UnbondRequested(address indexed node, uint64 atBlock, uint256 availableAtBlock);
    event StakeWithdrawn(address indexed node, uint256 amount);
    event Slashed(address indexed node, uint256 indexed requestId, uint256 amount);
    event AttestationSubmitted(
        address indexed node, uint8 teeType, bytes32 measurement, bytes32 quoteHash, uint64 expiresAt, uint8 verifiedBy, string quoteCid
    );
    event AttestationRevoked(address indexed node);
    event MeasurementAllowed(bytes32 indexed measurement, bool allowed);
    event ParameterChanged(bytes32 indexed name, uint256 value);
    event MarketSet(address indexed market);
    event TreasurySet(address indexed treasury);
    event SlashedWithdrawn(address indexed treasury, uint256 amount);
    event AssignmentsNoted(address[] nodes, uint64 untilBlock);

    bytes32 internal constant MEAS = keccak256("enclave-v1");
    address internal n0 = address(0x1000);

    function _attestation(address node, uint64 expiresAt) internal pure returns (INodeRegistry.Attestation memory) {
        return INodeRegistry.Attestation({
            teeType: 255,
            measurement: MEAS,
            quoteHash: keccak256("quote"),
            reportDataAddress: node,
            expiresAt: expiresAt,
            verifiedBy: 255,
            quoteCid: "bafkreiquote"
        });
    }

    function _allowMeasurement() internal {
        vm.prank(owner);
        nodes.setMeasurementAllowed(MEAS, true);
    }

    // ------------------------------------------------------------------ register

    function test_register_recordsNodeAndSets() public {
        INodeRegistry.ModelShard[] memory s = _fullShard(modelId);
        vm.deal(n0, STAKE);
        vm.expectEmit(true, false, false, true, address(nodes));
        emit NodeRegistered(n0, "http://a", STAKE, s);
        vm.prank(n0);
        nodes.register{value: STAKE}("http://a", s);

        INodeRegistry.Node memory n = nodes.getNode(n0);
        vm.assertEq(n.operator, n0, "operator");
        vm.assertEq(n.endpoint, "http://a", "endpoint");
        vm.assertEq(n.stake, STAKE, "stake");
        vm.assertEq(uint256(n.unbondingSince), 0, "active");
        vm.assertTrue(n.registered, "registered");
        vm.assertEq(nodes.stakeOf(n0), STAKE, "stakeOf");
        vm.assertEq(nodes.totalStaked(), STAKE, "total");
        vm.assertEq(address(nodes).balance, STAKE, "balance");
        address[] memory list = nodes.nodesForModel(modelId);
        vm.assertEq(list.length, 1, "set size");
        vm.assertEq(list[0], n0, "set member");
        vm.assertEq(nodes.nodeCountForModel(modelId), 1, "count");
        vm.assertEq(nodes.nodeForModelAt(modelId, 0), n0, "at");
        vm.assertEq(nodes.getShards(n0).length, 1, "shards");
        vm.assertTrue(nodes.isEligible(n0, modelId, false), "eligible");
        vm.assertFalse(nodes.isEligible(n0, modelId, true), "no tee");
    }

    function test_revert_register_paths() public {
        INodeRegistry.ModelShard[] memory s = _fullShard(modelId);
        vm.deal(n0, 10 ether);
        vm.startPrank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InsufficientStake.selector, 1 ether - 1, 1 ether));
        nodes.register{value: 1 ether - 1}("http://a", s);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.EmptyEndpoint.selector));
        nodes.register{value: STAKE}("", s);

        INodeRegistry.ModelShard[] memory bad = new INodeRegistry.ModelShard[](1);
        bad[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 2, layerEnd: 2});
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidShard.selector, modelId, uint16(2), uint16(2)));
        nodes.register{value: STAKE}("http://a", bad);
        bad[0] = INodeRegistry.ModelShard({modelId: bytes32(0), layerStart: 0, layerEnd: 2});
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidShard.selector, bytes32(0), uint16(0), uint16(2)));
        nodes.register{value: STAKE}("http://a", bad);
        bytes32 unknown = keccak256("unknown");
        bad[0] = INodeRegistry.ModelShard({modelId: unknown, layerStart: 0, layerEnd: 2});
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnknownModel.selector, unknown));
        nodes.register{value: STAKE}("http://a", bad);
        INodeRegistry.ModelShard[] memory many = new INodeRegistry.ModelShard[](17);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.TooManyShards.selector, uint256(17), uint256(16)));
        nodes.register{value: STAKE}("http://a", many);

        nodes.register{value: STAKE}("http://a", s);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.AlreadyRegistered.selector, n0));
        nodes.register{value: STAKE}("http://a", s);
        vm.stopPrank();
    }

    function test_revert_unregisteredCalls() public {
        vm.startPrank(n0);
        bytes memory err = abi.encodeWithSelector(INodeRegistry.NotRegistered.selector, n0);
        vm.expectRevert(err);
        nodes.topUp();
        vm.expectRevert(err);
        nodes.setEndpoint("x");
        vm.expectRevert(err);
        nodes.setShards(_fullShard(modelId));
        vm.expectRevert(err);
        nodes.requestUnbond();
        vm.expectRevert(err);
        nodes.withdrawStake();
        vm.expectRevert(err);
        nodes.submitAttestation(_attestation(n0, 1000));
        vm.expectRevert(err);
        nodes.revokeAttestation();
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ operator updates

    function test_topUp_endpoint_shards() public {
        _registerNode(n0, STAKE, modelId);
        vm.deal(n0, 1 ether);
        vm.expectEmit(true, false, false, true, address(nodes));
        emit StakeAdded(n0, 1 ether, STAKE + 1 ether);
        vm.prank(n0);
        nodes.topUp{value: 1 ether}();
        vm.assertEq(nodes.stakeOf(n0), STAKE + 1 ether, "stake");
        vm.assertEq(nodes.totalStaked(), STAKE + 1 ether, "total");

        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ZeroValue.selector));
        nodes.topUp();

        vm.expectEmit(true, false, false, true, address(nodes));
        emit EndpointUpdated(n0, "http://b");
        vm.prank(n0);
        nodes.setEndpoint("http://b");
        vm.assertEq(nodes.getNode(n0).endpoint, "http://b", "endpoint");
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.EmptyEndpoint.selector));
        nodes.setEndpoint("");

        // move to a partial shard of a second model: leaves the first model's set, joins the second
        bytes32 other = _registerModel(publisher, "other", address(0), 0, false);
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: other, layerStart: 0, layerEnd: 1});
        vm.expectEmit(true, false, false, true, address(nodes));
        emit ShardsUpdated(n0, s);
        vm.prank(n0);
        nodes.setShards(s);
        vm.assertEq(nodes.nodesForModel(modelId).length, 0, "left model set");
        vm.assertEq(nodes.nodesForModel(other).length, 1, "joined other set");
        vm.assertFalse(nodes.isEligible(n0, other, false), "partial shard is not the full model");
        vm.assertFalse(nodes.isEligible(n0, modelId, false), "no longer serves model");
    }

    // ------------------------------------------------------------------ unbonding

    function test_unbond_withdraw_timing() public {
        _registerNode(n0, STAKE, modelId);
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotUnbonding.selector, n0));
        nodes.withdrawStake();

        uint256 delay = nodes.unbondingDelay();
        vm.expectEmit(true, false, false, true, address(nodes));
        emit UnbondRequested(n0, 100, 100 + delay);
        vm.prank(n0);
        nodes.requestUnbond();
        vm.assertFalse(nodes.isEligible(n0, modelId, false), "unbonding is ineligible");
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.AlreadyUnbonding.selector, n0));
        nodes.requestUnbond();
        vm.deal(n0, 1 ether);
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeUnbonding.selector, n0));
        nodes.topUp{value: 1 ether}();

        vm.roll(100 + delay - 1);
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotElapsed.selector, 100 + delay - 1, 100 + delay));
        nodes.withdrawStake();

        vm.roll(100 + delay);
        uint256 before = n0.balance;
        vm.expectEmit(true, false, false, true, address(nodes));
        emit StakeWithdrawn(n0, STAKE);
        vm.prank(n0);
        nodes.withdrawStake();
        vm.assertEq(n0.balance - before, STAKE, "paid");
        vm.assertEq(nodes.totalStaked(), 0, "total");
        vm.assertEq(address(nodes).balance, 0, "registry balance");
        vm.assertFalse(nodes.getNode(n0).registered, "deregistered");
        vm.assertEq(nodes.nodesForModel(modelId).length, 0, "removed from set");
        vm.assertEq(nodes.getShards(n0).length, 0, "shards cleared");

        // can register again afterwards
        _registerNode(n0, STAKE, modelId);
        vm.assertTrue(nodes.isEligible(n0, modelId, false), "re-registered");
    }

    function testFuzz_unbond_timing(uint256 delay, uint256 wait) public {
        delay = bound(delay, 0, 10_000);
        wait = bound(wait, 0, 20_000);
        vm.prank(owner);
        nodes.setUnbondingDelay(delay);
        _registerNode(n0, STAKE, modelId);
        vm.prank(n0);
        nodes.requestUnbond();
        vm.roll(100 + wait);
        vm.prank(n0);
        if (wait < delay) {
            vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotElapsed.selector, 100 + wait, 100 + delay));
            nodes.withdrawStake();
        } else {
            nodes.withdrawStake();
            vm.assertEq(n0.balance, STAKE, "paid");
        }
    }

    function test_withdrawStake_reentrancyBlocked() public {
        ReentrantNode evil = new ReentrantNode(nodes);
        vm.deal(address(this), STAKE);
        evil.register{value: STAKE}(_fullShard(modelId));
        evil.unbond();
        vm.roll(100 + nodes.unbondingDelay());
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
        vm.roll(100 + nodes.unbondingDelay());
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.TransferFailed.selector, address(rej), STAKE));
        rej.call(address(nodes), abi.encodeCall(nodes.withdrawStake, ()));
    }

    // ------------------------------------------------------------------ attestation

    function test_attestation_lifecycle() public {
        _registerNode(n0, STAKE, modelId);
        _allowMeasurement();
        INodeRegistry.Attestation memory a = _attestation(n0, 200);
        vm.expectEmit(true, false, false, true, address(nodes));
        emit AttestationSubmitted(n0, 255, MEAS, keccak256("quote"), 200, 255, "bafkreiquote");
        vm.prank(n0);
        nodes.submitAttestation(a);
        INodeRegistry.Attestation memory got = nodes.getAttestation(n0);
        vm.assertEq(got.measurement, MEAS, "measurement");
        vm.assertEq(got.quoteCid, "bafkreiquote", "cid");
        vm.assertTrue(nodes.isEligible(n0, modelId, true), "tee eligible");

        vm.roll(200);
        vm.assertFalse(nodes.isEligible(n0, modelId, true), "expired");
        vm.roll(150);
        vm.prank(owner);
        nodes.setMeasurementAllowed(MEAS, false);
        vm.assertFalse(nodes.isEligible(n0, modelId, true), "measurement revoked");
        vm.assertTrue(nodes.isEligible(n0, modelId, false), "still eligible without tee");
        _allowMeasurement();
        vm.assertTrue(nodes.isEligible(n0, modelId, true), "allowed again");

        vm.expectEmit(true, false, false, true, address(nodes));
        emit AttestationRevoked(n0);
        vm.prank(n0);
        nodes.revokeAttestation();
        vm.assertFalse(nodes.isEligible(n0, modelId, true), "revoked");
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NoAttestation.selector, n0));
        nodes.revokeAttestation();
    }

    function test_revert_attestation_checks() public {
        _registerNode(n0, STAKE, modelId);
        INodeRegistry.Attestation memory a = _attestation(n0, 200);
        vm.startPrank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.MeasurementNotAllowed.selector, MEAS));
        nodes.submitAttestation(a);
        vm.stopPrank();
        _allowMeasurement();
        vm.startPrank(n0);
        a.teeType = 0;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidTeeType.selector, uint8(0)));
        nodes.submitAttestation(a);
        a.teeType = 2;
        a.reportDataAddress = address(0xBEEF);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ReportDataMismatch.selector, address(0xBEEF), n0));
        nodes.submitAttestation(a);
        a.reportDataAddress = n0;
        a.expiresAt = 100;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.AttestationExpired.selector, uint64(100), uint256(100)));
        nodes.submitAttestation(a);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ governance

    function test_governance_setters() public {
        vm.expectEmit(true, false, false, true, address(nodes));
        emit MeasurementAllowed(MEAS, true);
        _allowMeasurement();
        vm.assertTrue(nodes.measurementAllowed(MEAS), "allowed");

        vm.startPrank(owner);
        vm.expectEmit(true, false, false, true, address(nodes));
        emit ParameterChanged("minStake", 5 ether);
        nodes.setMinStake(5 ether);
        vm.assertEq(nodes.minStake(), 5 ether, "minStake");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("minStake"), uint256(0)));
        nodes.setMinStake(0);

        vm.expectEmit(true, false, false, true, address(nodes));
        emit ParameterChanged("unbondingDelay", 7);
        nodes.setUnbondingDelay(7);
        vm.assertEq(nodes.unbondingDelay(), 7, "delay");
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.InvalidParameter.selector, bytes32("unbondingDelay"), uint256(10_000_001))
        );
        nodes.setUnbondingDelay(10_000_001);

        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.MarketAlreadySet.selector, address(market)));
        nodes.setMarket(address(0x1234));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ZeroAddress.selector));
        nodes.setMarket(address(0));

        vm.expectEmit(true, false, false, true, address(nodes));
        emit TreasurySet(address(0x5555));
        nodes.setTreasury(address(0x5555));
        vm.assertEq(nodes.treasury(), address(0x5555), "treasury");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ZeroAddress.selector));
        nodes.setTreasury(address(0));
        vm.stopPrank();
    }

    function test_revert_governance_notOwner() public {
        bytes memory err = abi.encodeWithSignature("OwnableUnauthorizedAccount(address)", address(0xBAD));
        vm.startPrank(address(0xBAD));
        vm.expectRevert(err);
        nodes.setMeasurementAllowed(MEAS, true);
        vm.expectRevert(err);
        nodes.setMinStake(1);
        vm.expectRevert(err);
        nodes.setUnbondingDelay(1);
        vm.expectRevert(err);
        nodes.setMarket(address(1));
        vm.expectRevert(err);
        nodes.setTreasury(address(1));
        vm.stopPrank();
    }

    function test_setMarket_onceAndConstructorChecks() public {
        NodeRegistry fresh = new NodeRegistry(owner, models);
        vm.assertEq(fresh.treasury(), owner, "default treasury is owner");
        vm.expectEmit(true, false, false, true, address(fresh));
        emit MarketSet(address(0x1234));
        vm.prank(owner);
        fresh.setMarket(address(0x1234));
        vm.assertEq(fresh.market(), address(0x1234), "market");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.ZeroAddress.selector));
        new NodeRegistry(owner, IModelRegistry(address(0)));
    }

    // ------------------------------------------------------------------ slashing

    function test_slash_onlyMarket_capsAtStake_andTreasuryWithdrawal() public {
        _registerNode(n0, STAKE, modelId);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, address(this)));
        nodes.slash(n0, 1, 1);

        vm.expectEmit(true, true, false, true, address(nodes));
        emit Slashed(n0, 42, 1.5 ether);
        vm.prank(address(market));
        uint256 s1 = nodes.slash(n0, 1.5 ether, 42);
        vm.assertEq(s1, 1.5 ether, "first slash");
        vm.assertFalse(nodes.isEligible(n0, modelId, false), "below min stake");
        vm.prank(address(market));
        uint256 s2 = nodes.slash(n0, 1 ether, 43);
        vm.assertEq(s2, 0.5 ether, "capped at remaining stake");
        vm.prank(address(market));
        uint256 s3 = nodes.slash(n0, 1 ether, 44);
        vm.assertEq(s3, 0, "nothing left");
        vm.prank(address(market));
        vm.assertEq(nodes.slash(address(0x9999), 1 ether, 45), 0, "unknown node: no revert");
        vm.assertEq(nodes.slashedBalance(), STAKE, "slashed balance");
        vm.assertEq(nodes.totalStaked(), 0, "total");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.slashedBalance(), "balance invariant");

        vm.expectEmit(true, false, false, true, address(nodes));
        emit SlashedWithdrawn(treasury, STAKE);
        nodes.withdrawSlashed();
        vm.assertEq(treasury.balance, STAKE, "treasury paid");
        vm.assertEq(nodes.slashedBalance(), 0, "zeroed");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NothingToWithdraw.selector));
        nodes.withdrawSlashed();
    }

    function test_noteAssignments_locksWithdrawal() public {
        _registerNode(n0, STAKE, modelId);
        address[] memory list = new address[](1);
        list[0] = n0;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, address(this)));
        nodes.noteAssignments(list, 500);
        vm.expectEmit(false, false, false, true, address(nodes));
        emit AssignmentsNoted(list, 500);
        vm.prank(address(market));
        nodes.noteAssignments(list, 500);
        vm.prank(address(market));
        nodes.noteAssignments(list, 300); // never shortens the lock
        vm.assertEq(uint256(nodes.assignedUntil(n0)), 500, "max kept");
        vm.assertEq(nodes.withdrawableAt(n0), 0, "not unbonding");
        vm.prank(n0);
        nodes.requestUnbond();
        uint256 delay = nodes.unbondingDelay();
        vm.assertEq(nodes.withdrawableAt(n0), 500 + delay, "lock + delay");
        vm.roll(100 + delay);
        vm.prank(n0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotElapsed.selector, 100 + delay, 500 + delay));
        nodes.withdrawStake();
        vm.roll(500 + delay);
        vm.prank(n0);
        nodes.withdrawStake();
        vm.assertEq(uint256(nodes.assignedUntil(n0)), 0, "cleared on exit");
    }

    function test_revert_withdrawSlashed_treasuryRejects() public {
        RejectEther rej = new RejectEther();
        vm.prank(owner);
        nodes.setTreasury(address(rej));
        _registerNode(n0, STAKE, modelId);
        vm.prank(address(market));
        nodes.slash(n0, 1 ether, 1);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.TransferFailed.selector, address(rej), 1 ether));
        nodes.withdrawSlashed();
    }

    function testFuzz_stakeAndSlash(uint256 stake, uint256 topUp, uint256 amount) public {
        stake = bound(stake, 1 ether, 1_000_000 ether);
        topUp = bound(topUp, 0, 1_000_000 ether);
        amount = bound(amount, 0, 3_000_000 ether);
        _registerNode(n0, stake, modelId);
        if (topUp > 0) {
            vm.deal(n0, topUp);
            vm.prank(n0);
            nodes.topUp{value: topUp}();
        }
        vm.prank(address(market));
        uint256 slashed = nodes.slash(n0, amount, 1);
        uint256 total = stake + topUp;
        vm.assertEq(slashed, amount < total ? amount : total, "slashed = min(amount, stake)");
        vm.assertEq(nodes.stakeOf(n0), total - slashed, "remaining");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.slashedBalance(), "balance invariant");
        vm.assertEq(nodes.isEligible(n0, modelId, false), total - slashed >= nodes.minStake(), "eligibility");
    }
}
