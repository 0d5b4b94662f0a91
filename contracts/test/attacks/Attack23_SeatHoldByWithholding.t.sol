// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Residual of gas round 5 (docs/contracts.md threat row 23): a proof-less request frees its members'
///         capacity seats at settlement, not at each reveal. A member that withholds its reveal therefore keeps the
///         revealers' seats busy until the reveal deadline. The attack works, bounded and priced: the seats come
///         back at the first block finalize is allowed, the withholder is slashed and unpaid, the revealers are paid,
///         and a request that needed the seats expires with a full refund (or waits in its queue).
contract Attack23SeatHoldByWithholdingTest is Fixture {
    bytes32 internal constant OUT = keccak256("honest output");

    function test_attack23_withheldRevealHoldsSeatsOnlyUntilTheDeadline_andCostsTheWithholder() public {
        address[] memory list = _registerNodes(3, modelId);
        for (uint256 i; i < 3; ++i) {
            vm.prank(list[i]);
            nodes.setCapacity(1);
        }
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.revealBlocks = 200; // the requester's choice (<= MAX_WINDOW_BLOCKS): how long the hold can last
        uint256 a = _request(requester, FEE, p, modelId);
        address[] memory c = _draw(a);
        _commitAll(a, c, OUT);
        address griefer = c[2];
        _reveal(a, c[0], OUT);
        _reveal(a, c[1], OUT); // quorum reached; the griefer never reveals
        for (uint256 i; i < 2; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 1, "revealer's seat held until settlement");
        }

        // a request arriving now finds no free seat: with no queue it expires, fee refunded, nobody slashed
        uint256 b = _request(requester, FEE, _params(3, 2), modelId);
        vm.roll(market.getRequest(b).drawBlock + 1);
        market.draw(b);
        vm.assertEq(uint256(market.statusOf(b)), uint256(IInferenceMarket.Status.Expired), "b expired (seats busy)");

        // the hold ends with the reveal window: finalize is refused up to the deadline and allowed right after it
        uint64 deadline = market.getRequest(a).revealDeadline;
        vm.roll(deadline);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, a, deadline));
        market.finalize(a);
        vm.roll(deadline + 1);
        uint256 slash = market.parameters().slashAmount;
        market.finalize(a);
        vm.assertEq(uint256(market.statusOf(a)), uint256(IInferenceMarket.Status.Accepted), "settled on the quorum");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 0, "every seat free at settlement");
            vm.assertEq(nodes.openAssignments(c[i]), 0, "every lock free at settlement");
        }
        // priced: the withholder is slashed and unpaid; the honest revealers are paid their share
        vm.assertEq(nodes.stakeOf(griefer), STAKE - slash, "withholder slashed");
        vm.assertEq(market.withdrawable(griefer), 0, "withholder unpaid");
        vm.assertEq(market.withdrawable(c[0]) + market.withdrawable(c[1]), FEE, "revealers share the fee");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE, "honest stake intact");
        vm.assertEq(market.withdrawable(requester), FEE, "b's fee refunded in full");

        // and the network serves again at once
        (uint256 d, address[] memory cd) = _requestDrawn(3, 2);
        vm.assertEq(cd.length, 3, "drawn after the hold");
        d;
    }
}
