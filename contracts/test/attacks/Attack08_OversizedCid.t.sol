// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Issue 7 attack 8: a ~40 KB output CID made finalize unaffordable and froze the fee in escrow.
contract Attack08OversizedCidTest is Fixture {
    function test_attack08_oversizedCidsRefused() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        bytes memory huge = new bytes(40_000);
        bytes32 salt = _salt(id, c[0]);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CidTooLong.selector, 40_000, 128));
        market.reveal(id, OUT_A, salt, string(huge));
        vm.deal(requester, FEE);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CidTooLong.selector, 40_000, 128));
        market.requestInference{value: FEE}(modelId, string(huge), INPUT_HASH, _params(3, 2));
    }

    function test_attack08_finalizeCostDoesNotDependOnCids() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        bytes memory maxCid = new bytes(128);
        uint256 g;
        for (uint256 i; i < 3; ++i) {
            bytes32 salt = _salt(id, c[i]);
            vm.prank(c[i]);
            g = gasleft();
            market.reveal(id, OUT_A, salt, string(maxCid)); // the last one settles (unanimous, no proof window)
        }
        vm.assertLe(g - gasleft(), 250_000, "settlement reads no CID; bounded by the committee size");
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "settled");
        vm.assertEq(market.totalEscrowed(), 0, "nothing stuck");
    }
}
