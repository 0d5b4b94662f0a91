// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Found in review: a cartel holding 2 of 3 seats withholds its reveals to sink a request it cannot
///         win. Residual (documented): the request ends NoQuorum and the cartel escapes a no-show penalty, but it
///         earns nothing, the honest revealer is paid its seat, and the requester gets the rest back.
contract Attack16CartelWithholdsRevealsTest is Fixture {
    function test_attack16_withholdingEarnsNothing_honestPaid() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        _reveal(id, c[2], OUT_A); // the honest member
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.NoQuorum), "sunk");
        vm.assertEq(market.withdrawable(c[2]), FEE / 3, "honest revealer paid");
        vm.assertEq(market.withdrawable(c[0]) + market.withdrawable(c[1]), 0, "cartel earns nothing");
        vm.assertEq(nodes.stakeOf(c[2]), STAKE, "honest never slashed");
        vm.assertEq(market.withdrawable(requester), FEE - FEE / 3, "requester refunded the withheld seats");
    }
}
