// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "../utils/Preview.sol";
import {Fixture} from "../utils/Fixture.sol";
import {Vm, console} from "../utils/Vm.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {InferenceMarket} from "../../src/InferenceMarket.sol";

/// @notice Found in review of the seat queue (RequestParams.queueBlocks): a requester uses the queue to grief.
///         (1) Lock its fee, or the nodes' seats, forever: the queue is bounded (MAX_QUEUE_BLOCKS, the end of the
///         epoch after the request's, the 256-block blockhash horizon); after the draw window anyone expires the
///         request with a full refund; an undrawn request holds no seat and no withdrawal lock.
///         (2) Force honest penalties by drawing at a bad moment: the commit and reveal windows count from the draw,
///         so a committee drawn at the last block of the queue still gets the whole windows.
///         (3) Make nodes burn gas on draws that fail: a short draw reverts NoSeatsYet (the caller pays, nothing
///         changes) and previewCommittee tells it for free beforehand.
contract Attack19QueueGriefingTest is Fixture {
    function _queued(uint8 queueBlocks) internal pure returns (IInferenceMarket.RequestParams memory p) {
        p = _params(3, 2);
        p.queueBlocks = queueBlocks;
    }

    function _fillSeats(address[] memory list, uint16 capacity) internal returns (uint256 filler) {
        for (uint256 i; i < list.length; ++i) {
            vm.prank(list[i]);
            nodes.setCapacity(capacity);
        }
        filler = _request(requester, FEE, _params(3, 2), modelId);
        vm.assertEq(_draw(filler).length, 3, "filler drawn: every seat taken");
    }

    function test_attack19_queueCannotLockFeeOrSeats() public {
        address[] memory list = _registerNodes(3, modelId);
        _fillSeats(list, 1);

        // queueBlocks is a uint8: the ABI decoder refuses 256 (raw calldata with the word patched)
        vm.deal(requester, 1 ether);
        bytes memory data =
            abi.encodeCall(market.requestInference, (modelId, "bafkreiinput", INPUT_HASH, _queued(255)));
        assembly {
            mstore(add(data, add(0x20, 0x104)), 256) // selector + 3 head words + 5 params words: queueBlocks
        }
        vm.prank(requester);
        (bool ok,) = address(market).call{value: FEE}(data);
        vm.assertFalse(ok, "queueBlocks 256 refused");

        // the longest queue; nobody ever frees a seat
        uint256 id = _request(requester, FEE, _queued(255), modelId);
        IInferenceMarket.Request memory r = market.getRequest(id);
        uint256 epochEnd = (uint256(r.createdBlock) / EPOCH + 2) * EPOCH - 1;
        vm.assertLe(uint256(r.drawDeadline), epochEnd, "capped by the snapshot epoch");
        vm.assertLe(uint256(r.queueDeadline), uint256(r.drawDeadline), "queue inside the draw window");
        vm.roll(r.drawBlock + 1);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NoSeatsYet.selector, id, r.queueDeadline));
        market.draw(id);
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(list[i]).inFlight), 1, "the queued request holds no seat");
            vm.assertEq(nodes.openAssignments(list[i]), 1, "and no withdrawal lock");
        }
        vm.roll(r.drawDeadline);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, r.drawDeadline));
        market.finalize(id);
        vm.roll(r.drawDeadline + 1);
        market.finalize(id); // anyone
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Expired), "expired");
        vm.assertEq(market.withdrawable(requester), FEE, "full refund");
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(list[i]), STAKE, "nobody slashed");
    }

    /// @notice With an epoch longer than the queue, the blockhash horizon is the cap: the seed stays readable.
    function test_attack19_queueCappedByBlockhashHorizon() public {
        NodeRegistry reg = new NodeRegistry(owner, address(models), address(attestations), 1 ether, 20, 5_000);
        InferenceMarket mkt = new InferenceMarket(owner, address(reg), address(models), 1024);
        vm.prank(owner);
        reg.setMarket(address(mkt));
        vm.prank(owner);
        mkt.setMinCommitBlocks(1_000);
        IInferenceMarket.RequestParams memory p = _queued(255);
        p.commitBlocks = 1_000;
        vm.deal(requester, 1 ether);
        vm.prank(requester);
        uint256 id = mkt.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, p);
        IInferenceMarket.Request memory r = mkt.getRequest(id);
        vm.assertEq(uint256(r.queueDeadline), uint256(r.drawBlock) + 255, "queue of 255 blocks");
        vm.assertEq(uint256(r.drawDeadline), uint256(r.drawBlock) + 256, "draw deadline at the blockhash horizon");
        vm.roll(r.drawDeadline + 1);
        mkt.finalize(id);
        vm.assertEq(uint256(mkt.statusOf(id)), uint256(IInferenceMarket.Status.Expired), "expired, refunded");
        vm.assertEq(mkt.withdrawable(requester), FEE, "full refund");
    }

    /// @notice The requester (or anyone) draws a queued request at the last block of the queue: the committee gets
    ///         the whole commit and reveal windows from there, commits in the last block of the commit window,
    ///         reveals in the last block of the reveal window, is paid, and nobody is penalized. CommitteeDrawn
    ///         carries the deadlines the node works to.
    function test_attack19_lateDrawKeepsFullWindows_noPenalty() public {
        address[] memory list = _registerNodes(3, modelId);
        uint256 filler = _fillSeats(list, 1);
        uint256 id = _request(requester, FEE, _queued(12), modelId);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.queueDeadline), uint256(r.drawBlock) + 12, "12-block queue");

        // the filler settles: seats are free from its reveals on
        address[] memory fc = market.getCommittee(filler);
        _commitAll(filler, fc, OUT_A);
        _revealAll(filler, fc, OUT_A);

        // the requester waits for the worst moment for the nodes: the last block of the draw window
        vm.roll(r.drawDeadline);
        vm.recordLogs();
        vm.prank(requester);
        market.draw(id);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 sig = keccak256("CommitteeDrawn(uint256,address[],uint64,uint64,uint64)");
        bool seen;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != sig) continue;
            (, uint64 cd, uint64 rd, uint64 fa) = abi.decode(logs[i].data, (address[], uint64, uint64, uint64));
            vm.assertEq(uint256(cd), block.number + 10, "event: commit deadline from the draw");
            vm.assertEq(uint256(rd), block.number + 20, "event: reveal deadline");
            vm.assertEq(uint256(fa), block.number + 20, "event: finalizeAfter (no proof window)");
            seen = true;
        }
        vm.assertTrue(seen, "CommitteeDrawn emitted");
        r = market.getRequest(id);
        vm.assertEq(uint256(r.drawnBlock), block.number, "drawnBlock stored");
        vm.assertEq(uint256(r.commitDeadline), block.number + 10, "full commit window");
        vm.assertEq(uint256(r.revealDeadline), block.number + 20, "full reveal window");

        address[] memory c = market.getCommittee(id);
        vm.roll(r.commitDeadline); // every member commits in the last block
        _commitAll(id, c, OUT_B);
        vm.roll(r.revealDeadline); // and reveals in the last block
        _revealAll(id, c, OUT_B);
        _finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(nodes.stakeOf(list[i]), STAKE, "no penalty");
            vm.assertTrue(market.withdrawable(c[i]) > 0, "paid");
        }
    }

    /// @notice Waiting for seats is free for nodes: previewCommittee shows a short committee (no tx), a draw
    ///         sent anyway reverts NoSeatsYet and changes nothing; the draw succeeds in the first block a seat is free.
    function test_attack19_waitingIsFree_drawWhenSeatsFree() public {
        address[] memory list = _registerNodes(3, modelId);
        uint256 filler = _fillSeats(list, 1);
        uint256 id = _request(requester, FEE, _queued(30), modelId);
        vm.roll(block.number + 2);
        vm.assertTrue(previewCommittee(market, id).length < 3, "preview: short, the node need not send a tx");
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.prank(list[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NoSeatsYet.selector, id, r.queueDeadline));
        market.commit(id, keccak256("c")); // commit draws first: the same revert, nothing stored
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Pending), "still queued");

        address[] memory fc = market.getCommittee(filler);
        _commitAll(filler, fc, OUT_A);
        _revealAll(filler, fc, OUT_A);
        vm.assertEq(previewCommittee(market, id).length, 3, "seats free: complete preview");
        market.draw(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Committing), "drawn from the queue");
    }

    /// @notice A requester queues many requests to starve others: queued requests hold no seat, so a later
    ///         request is drawn as soon as it can; among waiting requests, whoever draws first gets the seat.
    function test_attack19_queuedRequestsHoldNoSeats() public {
        address[] memory list = _registerNodes(3, modelId);
        for (uint256 i; i < 3; ++i) {
            vm.prank(list[i]);
            nodes.setCapacity(2);
        }
        for (uint256 k; k < 40; ++k) _request(requester, FEE, _queued(30), modelId);
        address other = address(0xBEEF);
        uint256 id = _request(other, FEE, _params(3, 2), modelId);
        vm.roll(block.number + 2);
        for (uint256 i; i < 3; ++i) vm.assertEq(uint256(nodes.getNode(list[i]).inFlight), 0, "no seat held");
        market.draw(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Committing), "drawn at once");
    }
}
