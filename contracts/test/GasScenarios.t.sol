// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {console} from "./utils/Vm.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";

/// @notice Gas of a whole request lifecycle (k = 3, no callback, no proof) as transactions: run with --isolate so
///         every call is its own transaction (cold storage, 21k intrinsic gas included). Steady state: one
///         request was served before, so counters and the nodes' withdrawable balances are non-zero.
contract GasScenariosTest is Fixture {
    function _used() internal view returns (uint256) {
        return vm.lastCallGas().gasTotalUsed;
    }

    function test_gas_lifecycle_k3() public {
        address[] memory all = _registerNodes(3, modelId);
        all;
        // warm-up request (the market's counters and the nodes' balances become non-zero)
        (uint256 w, address[] memory cw) = _requestDrawn(3, 2);
        _commitAll(w, cw, OUT_A);
        _revealAll(w, cw, OUT_A);
        market.finalize(w);

        vm.deal(requester, 1 ether);
        vm.prank(requester);
        uint256 id = market.requestInference{value: FEE}(modelId, "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", INPUT_HASH, _params(3, 2));
        uint256 gRequest = _used();
        vm.roll(block.number + 2);
        address[] memory c = market.previewCommittee(id);
        uint256 gCommits;
        uint256 gFirstCommit;
        for (uint256 i; i < 3; ++i) {
            _commit(id, c[i], OUT_A);
            if (i == 0) gFirstCommit = _used();
            gCommits += _used();
        }
        uint256 gReveals;
        for (uint256 i; i < 3; ++i) {
            vm.prank(c[i]);
            market.reveal(id, OUT_A, _salt(id, c[i]), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
            gReveals += _used();
        }
        market.finalize(id);
        uint256 gFinalize = _used();
        uint256 total = gRequest + gCommits + gReveals + gFinalize;
        console.log("gas.requestInference", gRequest);
        console.log("gas.commit.first_with_draw", gFirstCommit);
        console.log("gas.commit.sum3", gCommits);
        console.log("gas.reveal.sum3", gReveals);
        console.log("gas.finalize", gFinalize);
        console.log("gas.lifecycle", total);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "settled");
    }
}
