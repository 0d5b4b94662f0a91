// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";

/// @notice Issue 7 attack 1: committee crowding by junk registrations (partial shards, unbonding, under-stake).
///         V1: 4 honest + 188 junk -> 26/40 requests reverted; 12 attacker nodes with 2.9% of eligible stake mixed in
///         won >= 2 of 3 seats in 40 of 60 committees; junk with 16 shards pushed requestInference to 3.67M gas.
contract Attack01JunkCrowdingTest is Fixture {
    address[] internal attackers;

    function _junk(uint256 i, uint256 shards) internal {
        address a = address(uint160(0x50000 + i));
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](shards);
        for (uint256 j; j < shards; ++j) {
            s[j] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 0, layerEnd: 1}); // partial
        }
        vm.deal(a, 1 ether);
        vm.prank(a);
        nodes.register{value: 1 ether}("http://junk", s);
    }

    function _setUpCrowd() internal {
        for (uint256 i; i < 4; ++i) _registerNode(_node(i), 100 ether, modelId); // honest: 400 ether
        for (uint256 i; i < 188; ++i) {
            _junk(i, 4); // max shards, all partial
            if (i % 16 == 0) {
                // the attacker's eligible nodes, mixed into the junk: 12 ether = 2.9% of eligible stake
                address a = address(uint160(0xA0000 + i));
                attackers.push(a);
                _registerNode(a, 1 ether, modelId);
            }
        }
        // nodes unbonding and nodes slashed below minStake crowd nothing either
        for (uint256 i; i < 30; ++i) {
            address u = address(uint160(0xB0000 + i));
            _registerNode(u, 1 ether, modelId);
            vm.prank(u);
            nodes.requestUnbond();
        }
        _nextEpoch();
    }

    function _attackerSeats(address[] memory c) internal view returns (uint256 seats) {
        for (uint256 i; i < c.length; ++i) {
            for (uint256 j; j < attackers.length; ++j) if (c[i] == attackers[j]) ++seats;
        }
    }

    function test_attack01_junkCannotCrowdOrCaptureCommittees() public {
        _setUpCrowd();
        vm.assertEq(attackers.length, 12, "12 attacker nodes");
        vm.assertEq(nodes.eligibleStake(modelId), 412 ether, "only honest + attacker stake is in the tree");
        uint256 expired;
        uint256 captured;
        for (uint256 r; r < 60; ++r) {
            uint256 id = _request(requester, FEE, _params(3, 2), modelId);
            vm.roll(block.number + 2);
            vm.setBlockhash(block.number - 1, keccak256(abi.encode("round", r)));
            market.draw(id);
            address[] memory c = market.getCommittee(id);
            if (market.statusOf(id) == IInferenceMarket.Status.Expired) ++expired;
            else if (_attackerSeats(c) >= 2) ++captured;
            // settle so that capacity frees up (every member reveals)
            if (c.length == 3) {
                _commitAll(id, c, OUT_A);
                _revealAll(id, c, OUT_A);
                _finalize(id);
            }
        }
        vm.assertEq(expired, 0, "no request fails for lack of eligible nodes");
        // stake-proportional chance of >= 2 of 3 seats with 2.9% of the stake is ~0.5% per committee (0.75%
        // measured over 400 draws); these 60 seeds give 3. V1 saw 40 of 60.
        vm.assertLe(captured, 5, "attacker majority only by stake-proportional chance");
    }

    function test_attack01_junkDoesNotMoveRequestGas() public {
        _registerNodes(3, modelId);
        uint256 id0 = _request(requester, FEE, _params(3, 2), modelId); // warm-up
        id0;
        _request(requester, FEE, _params(3, 2), modelId);
        uint256 before = vm.lastCallGas().gasTotalUsed;
        for (uint256 i; i < 188; ++i) _junk(i, 4);
        _request(requester, FEE, _params(3, 2), modelId);
        uint256 afterJunk = vm.lastCallGas().gasTotalUsed;
        vm.assertEq(afterJunk, before, "requestInference gas does not see junk registrations");
    }
}
