// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "../utils/Preview.sol";
import {Fixture} from "../utils/Fixture.sol";
import {console} from "../utils/Vm.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Found in review of the seat queue: anyone may call draw at any block of the draw window, and the draw
///         skipped nodes at capacity. A cartel with large declared capacity (its seats are always free) waits for
///         the block where the honest seed members are busy (or makes them busy with its own requests) and
///         draws: the skipped honest seats go to the next leaves of the seed, i.e. to the cartel.
///         Defence: the market's draw never skips a busy seed member (NodeRegistry waitForSeats): a queued request
///         reverts NoSeatsYet until the seed's own committee has seats, one without a queue expires (refund), so the
///         moment of the draw decides only *when* (or whether) the committee is drawn, never *who* is in it.
///         Measured below: the cartel's quorum rate in committees drawn at the cartel's moment, with the old skip
///         (the registry view with waitForSeats = false, what the market did before) and with the market's draw.
contract Attack20DrawTimingBiasTest is Fixture {
    uint256 internal constant HONEST = 9;
    uint256 internal constant CARTEL = 3; // 25 % of the stake
    uint256 internal constant VICTIMS = 40;

    function _isCartel(address a) internal pure returns (bool) {
        return uint160(a) >= uint160(_node(HONEST)) && uint160(a) < uint160(_node(HONEST + CARTEL));
    }

    function _cartelSeats(address[] memory c) internal pure returns (uint256 n) {
        for (uint256 i; i < c.length; ++i) if (_isCartel(c[i])) ++n;
    }

    uint256[] internal skipIds; // queueBlocks = 0
    uint256[] internal queueIds; // queueBlocks = 20
    uint256[] internal fillers;
    bytes32[] internal baseSkip;
    bytes32[] internal baseQueue;
    uint256 internal baseSkipQuorum;
    uint256 internal baseQueueQuorum;
    uint256 internal skipDrawn;
    uint256 internal skipQuorum;
    uint256 internal noQueueDrawn;
    uint256 internal queueWaiting;
    uint256 internal queueQuorum;

    function test_attack20_drawTimingCannotSteerQueuedCommittees() public {
        _setUpNetworkAndRequests();
        _measureAllSeatsFree();
        // ---- the cartel's moment: fill every honest seat with its own replicas-1 requests, then draw
        uint256 used;
        while (used < fillers.length && !_honestBusy()) market.draw(fillers[used++]);
        vm.assertTrue(_honestBusy(), "every honest seat taken");
        for (uint256 k; k < VICTIMS; ++k) _measureTimed(k);

        console.log("cartel 25% stake; victims", VICTIMS);
        console.log("cartel quorum, all seats free, old skip", baseSkipQuorum);
        console.log("cartel quorum, all seats free, queueBlocks=20", baseQueueQuorum);
        console.log("cartel requests drawn to fill the honest seats", used);
        console.log("old skip: drawn at the cartel's moment", skipDrawn);
        console.log("old skip: cartel quorum at the cartel's moment", skipQuorum);
        console.log("queueBlocks=0: drawn at the cartel's moment (others expire)", noQueueDrawn);
        console.log("queueBlocks=20: waiting (NoSeatsYet) at the cartel's moment", queueWaiting);
        console.log("queueBlocks=20: cartel quorum at the cartel's moment", queueQuorum);
        // the old skip was steerable: quorum in every committee drawn at the cartel's moment
        vm.assertEq(skipDrawn, VICTIMS, "skip: every committee drawable at the cartel's moment");
        vm.assertEq(skipQuorum, skipDrawn, "skip: the cartel holds quorum in every committee it times");
        vm.assertTrue(skipQuorum > 2 * baseSkipQuorum, "skip: timing multiplies the cartel's quorum rate");
        // the market's draw is not: at the cartel's moment it wins only committees the seed gave it anyway
        vm.assertLe(queueQuorum, baseQueueQuorum, "queue: no committee gained by timing");
    }

    function _setUpNetworkAndRequests() internal {
        for (uint256 i; i < HONEST + CARTEL; ++i) _registerNode(_node(i), STAKE, modelId);
        _nextEpoch();
        for (uint256 i; i < HONEST + CARTEL; ++i) {
            vm.prank(_node(i));
            nodes.setCapacity(i < HONEST ? 1 : 255); // cartel: every seat it could want, always free
        }
        IInferenceMarket.RequestParams memory q = _params(3, 2);
        q.queueBlocks = 20;
        for (uint256 k; k < VICTIMS; ++k) {
            skipIds.push(_request(requester, FEE, _params(3, 2), modelId));
            queueIds.push(_request(requester, FEE, q, modelId));
        }
        // the cartel's own requests, to make honest nodes busy (one whose seed node is busy expires: refunded)
        for (uint256 k; k < 150; ++k) fillers.push(_request(address(0xCA), FEE, _params(1, 1), modelId));
        vm.roll(block.number + 2);
    }

    function _measureAllSeatsFree() internal {
        for (uint256 k; k < VICTIMS; ++k) {
            if (_cartelSeats(_oldSkipDraw(skipIds[k])) >= 2) ++baseSkipQuorum;
            baseSkip.push(keccak256(abi.encode(previewCommittee(market, skipIds[k]))));
            address[] memory c = previewCommittee(market, queueIds[k]);
            vm.assertEq(c.length, 3, "complete when seats are free");
            baseQueue.push(keccak256(abi.encode(c)));
            if (_cartelSeats(c) >= 2) ++baseQueueQuorum;
        }
    }

    function _measureTimed(uint256 k) internal {
        address[] memory c = _oldSkipDraw(skipIds[k]);
        if (c.length == 3) {
            ++skipDrawn;
            if (_cartelSeats(c) >= 2) ++skipQuorum;
        }
        // the market's draw without a queue: the seed's committee or none (expired, refunded)
        c = previewCommittee(market, skipIds[k]);
        if (c.length == 3) {
            ++noQueueDrawn;
            vm.assertEq(keccak256(abi.encode(c)), baseSkip[k], "no queue: the seed's committee or none");
        }
        c = previewCommittee(market, queueIds[k]);
        if (c.length < 3) {
            ++queueWaiting;
            vm.expectPartialRevert(IInferenceMarket.NoSeatsYet.selector); // waits for its own committee
            market.draw(queueIds[k]);
        } else {
            vm.assertEq(keccak256(abi.encode(c)), baseQueue[k], "queued: the seed's committee or none");
            if (_cartelSeats(c) >= 2) ++queueQuorum;
        }
    }

    /// @dev What the market's draw did before (busy members skipped): the registry view with waitForSeats = false.
    function _oldSkipDraw(uint256 id) internal view returns (address[] memory) {
        return _registryDraw(id, false);
    }

    function _registryDraw(uint256 id, bool waitForSeats) internal view returns (address[] memory) {
        IInferenceMarket.Request memory r = market.getRequest(id);
        uint256 seed = uint256(keccak256(abi.encode(blockhash(r.drawBlock), id)));
        return nodes.drawCommittee(modelId, seed, r.createdBlock / EPOCH, r.params.replicas, false, waitForSeats);
    }

    function _honestBusy() internal view returns (bool) {
        for (uint256 i; i < HONEST; ++i) {
            if (nodes.getNode(_node(i)).inFlight < nodes.getNode(_node(i)).capacity) return false;
        }
        return true;
    }
}
