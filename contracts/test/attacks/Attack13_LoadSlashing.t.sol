// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "../utils/Preview.sol";
import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";
import {MockVerifier} from "../utils/MockVerifier.sol";

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

    /// @notice Proven models: the capacity seat is released at reveal, the withdrawal lock only at finalize (which
    ///         waits for the proof window): a node at capacity that revealed is drawn for a new request before the
    ///         first one settles, but cannot withdraw until every request it sat on is finalized.
    function test_attack13_seatFreedAtReveal_withdrawLockedUntilFinalize() public {
        MockVerifier v = new MockVerifier(true);
        bytes32 proven = _registerModel(publisher, "proven-load", address(v), 1, false);
        address[] memory list = _registerNodes(3, proven);
        for (uint256 i; i < 3; ++i) {
            vm.prank(list[i]);
            nodes.setCapacity(1);
        }
        uint256 a = _request(requester, FEE, _params(3, 2), proven);
        uint256 b = _request(requester, FEE, _params(3, 2), proven);
        address[] memory c = _draw(a);
        vm.assertEq(c.length, 3, "first request drawn");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 1, "at capacity");
            vm.assertEq(nodes.openAssignments(c[i]), 1, "locked");
        }
        vm.assertTrue(previewCommittee(market, b).length < 3, "at capacity: not drawable before the reveal");
        bytes32 out = keccak256("out");
        _commitAll(a, c, out);
        _revealAll(a, c, out);
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 0, "seat freed at reveal");
            vm.assertEq(nodes.openAssignments(c[i]), 1, "still locked until finalize");
        }
        vm.assertEq(uint256(market.statusOf(a)), uint256(IInferenceMarket.Status.Revealing), "a in its proof window");
        market.draw(b);
        vm.assertEq(uint256(market.statusOf(b)), uint256(IInferenceMarket.Status.Committing), "b drawn, not expired");
        vm.assertEq(market.getCommittee(b).length, 3, "same nodes drawn again");
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.openAssignments(c[i]), 2, "two open assignments");

        // the withdrawal lock holds until both requests are finalized
        vm.prank(c[0]);
        nodes.requestUnbond();
        vm.roll(nodes.withdrawableAt(c[0]) + 1000);
        uint64 until = nodes.assignedUntil(c[0]);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.StillAssigned.selector, c[0], until));
        nodes.withdrawStake();
        market.finalize(a);
        vm.assertEq(uint256(market.statusOf(a)), uint256(IInferenceMarket.Status.Accepted), "a accepted");
        vm.assertEq(nodes.openAssignments(c[0]), 1, "b still open");
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.StillAssigned.selector, c[0], until));
        nodes.withdrawStake();
        market.finalize(b); // nobody revealed b: NoQuorum, nobody slashed; lock and seat released here
        vm.assertEq(nodes.openAssignments(c[0]), 0, "unlocked");
        vm.assertEq(uint256(nodes.getNode(c[1]).inFlight), 0, "non-revealer's seat released at finalize");
        uint256 before = c[0].balance;
        vm.prank(c[0]);
        nodes.withdrawStake();
        vm.assertEq(c[0].balance - before, STAKE, "withdrawn after settlement");
    }

    /// @notice Proof-less models: settlement follows the last reveal (or the reveal deadline), so a revealer keeps
    ///         its capacity seat until the settlement frees the whole committee's; the withdrawal lock goes there
    ///         too. A queued request waits for those seats and is drawn right after the settlement.
    function test_attack13_proofLessSeatHeldUntilSettlement() public {
        address[] memory list = _registerNodes(3, modelId);
        for (uint256 i; i < 3; ++i) {
            vm.prank(list[i]);
            nodes.setCapacity(1);
        }
        IInferenceMarket.RequestParams memory pa = _params(3, 2);
        pa.callbackGasLimit = 50_000; // a callback is due, so the last reveal does not settle `a`: finalize does
        (, uint256 dep) = market.quote(modelId, pa);
        uint256 a = _request(requester, FEE + dep, pa, modelId);
        IInferenceMarket.RequestParams memory pb = _params(3, 2);
        pb.queueBlocks = 20; // b waits for seats instead of expiring
        uint256 b = _request(requester, FEE, pb, modelId);
        address[] memory c = _draw(a);
        bytes32 out = keccak256("out");
        _commitAll(a, c, out);
        _revealAll(a, c, out);
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 1, "proof-less: seat held after the reveal");
            vm.assertEq(nodes.openAssignments(c[i]), 1, "locked until settlement");
        }
        vm.assertEq(uint256(market.statusOf(a)), uint256(IInferenceMarket.Status.Revealing), "a not settled");
        vm.assertTrue(previewCommittee(market, b).length < 3, "seats still held: b cannot be drawn yet");
        uint64 queueDeadline = market.getRequest(b).queueDeadline;
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NoSeatsYet.selector, b, queueDeadline));
        market.draw(b);
        market.finalize(a);
        vm.assertEq(uint256(market.statusOf(a)), uint256(IInferenceMarket.Status.Accepted), "a accepted");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 0, "settlement frees every seat");
            vm.assertEq(nodes.openAssignments(c[i]), 0, "and every lock");
        }
        market.draw(b);
        vm.assertEq(uint256(market.statusOf(b)), uint256(IInferenceMarket.Status.Committing), "b drawn after it");
        vm.assertEq(market.getCommittee(b).length, 3, "on the freed seats");
    }
}
