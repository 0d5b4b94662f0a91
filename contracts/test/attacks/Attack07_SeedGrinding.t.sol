// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "../utils/Preview.sol";
import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Issue 7 attack 7: seed grinding. V1: the seed was known before the victim's request was mined and
///         topUp(k wei) changed every draw; a cartel with 11.8% of stake went from 1/20 to 13/20 victim committees.
///         V2: the seed is blockhash(createdBlock + 1), the weights are the snapshot at the start of the request's
///         epoch, so no stake change made once the seed can be known moves the draw.
contract Attack07SeedGrindingTest is Fixture {
    address[] internal cartel;

    function _setUp() internal {
        for (uint256 i; i < 15; ++i) _registerNode(_node(i), 10 ether, modelId); // honest 150 ether
        for (uint256 i; i < 2; ++i) {
            address a = address(uint160(0xCA000 + i));
            cartel.push(a);
            _registerNode(a, 10 ether, modelId); // 20 / 170 = 11.8%
        }
        _nextEpoch();
    }

    /// @dev previewCommittee is a free function (no external call): expectRevert needs this external hop.
    function previewExt(uint256 id) external view returns (address[] memory) {
        return previewCommittee(market, id);
    }

    function _cartelSeats(address[] memory c) internal view returns (uint256 s) {
        for (uint256 i; i < c.length; ++i) for (uint256 j; j < cartel.length; ++j) if (c[i] == cartel[j]) ++s;
    }

    function test_attack07_topUpsAfterRequestDoNotMoveTheDraw() public {
        _setUp();
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.roll(block.number + 2);
        address[] memory honestDraw = previewCommittee(market, id);
        // the cartel sees the seed block and tries every small top-up (and an unbond of a member)
        for (uint256 k = 1; k <= 40; ++k) {
            uint256 snap = vm.snapshotState();
            vm.deal(cartel[k % 2], k);
            vm.prank(cartel[k % 2]);
            nodes.topUp{value: k}();
            address[] memory c = previewCommittee(market, id);
            for (uint256 i; i < 3; ++i) vm.assertEq(c[i], honestDraw[i], "stake moved after the snapshot is ignored");
            vm.revertToState(snap);
        }
    }

    function test_attack07_frontRunTopUpsGainNothing() public {
        _setUp();
        uint256 quorumNoGrind;
        uint256 quorumGrind;
        for (uint256 r; r < 20; ++r) {
            uint256 snap = vm.snapshotState();
            uint256 id = _request(requester, FEE, _params(3, 2), modelId);
            vm.roll(block.number + 2);
            vm.setBlockhash(block.number - 1, keccak256(abi.encode("victim", r)));
            if (_cartelSeats(previewCommittee(market, id)) >= 2) ++quorumNoGrind;
            vm.revertToState(snap);
            // grinding: the best of 40 top-ups in the same epoch, front-running the victim's request
            uint256 best;
            for (uint256 k = 1; k <= 40; ++k) {
                uint256 s2 = vm.snapshotState();
                vm.deal(cartel[0], k);
                vm.prank(cartel[0]);
                nodes.topUp{value: k}();
                uint256 id2 = _request(requester, FEE, _params(3, 2), modelId);
                vm.roll(block.number + 2);
                vm.setBlockhash(block.number - 1, keccak256(abi.encode("victim", r)));
                uint256 s = _cartelSeats(previewCommittee(market, id2));
                if (s > best) best = s;
                vm.revertToState(s2);
            }
            if (best >= 2) ++quorumGrind;
        }
        vm.assertEq(quorumGrind, quorumNoGrind, "grinding top-ups changes no committee");
        vm.assertLe(quorumGrind, 3, "about 3 * 0.118^2 of committees by chance");
    }

    function test_attack07_seedUnknownAtRequestTime() public {
        _setUp();
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.drawBlock), block.number + 1, "seeded by the next block's hash");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.DrawNotReady.selector, id, r.drawBlock));
        this.previewExt(id);
        // different hashes of the draw block give different committees: the seed really comes from it
        vm.roll(r.drawBlock + 1);
        uint256 differ;
        address[] memory first;
        for (uint256 k; k < 10; ++k) {
            vm.setBlockhash(r.drawBlock, keccak256(abi.encode("h", k)));
            address[] memory c = previewCommittee(market, id);
            if (k == 0) first = c;
            else if (c[0] != first[0] || c[1] != first[1] || c[2] != first[2]) ++differ;
        }
        vm.assertGe(differ, 5, "the draw follows blockhash(drawBlock)");
    }
}
