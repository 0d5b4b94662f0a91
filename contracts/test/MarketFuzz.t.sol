// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";

contract MarketFuzzTest is Fixture {
    function _assertBalances() internal view {
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "market balance");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.slashedBalance(), "registry balance");
    }

    struct Case {
        uint256 fee;
        uint8 n;
        uint8 a;
        uint8 d;
        uint8 q;
    }

    /// n members: `a` reveal A, `d` reveal B, the rest never show up; quorum q.
    function testFuzz_settlementOutcomeAndFeeSplit(uint256 fee, uint8 n, uint8 a, uint8 d, uint8 q) public {
        Case memory k;
        k.n = uint8(bound(n, 1, 8));
        k.a = uint8(bound(a, 0, k.n));
        k.d = uint8(bound(d, 0, k.n - k.a));
        k.q = uint8(bound(q, 1, k.n));
        k.fee = bound(fee, market.minFee(), 1_000 ether);
        _registerNodes(k.n, modelId);
        uint256 id = _request(requester, k.fee, _params(k.n, k.q), modelId);
        address[] memory c = _committee(id);
        for (uint256 i; i < k.a + k.d; ++i) _commit(id, c[i], i < k.a ? OUT_A : OUT_B);
        _rollPastCommit(id);
        for (uint256 i; i < k.a + k.d; ++i) _reveal(id, c[i], i < k.a ? OUT_A : OUT_B);
        _rollPastReveal(id);
        market.finalize(id);
        _checkOutcome(id, c, k);
        _assertBalances();
    }

    function _checkOutcome(uint256 id, address[] memory c, Case memory k) internal view {
        bool aWins = k.a > k.d && k.a >= k.q;
        bool bWins = k.d > k.a && k.d >= k.q;
        IInferenceMarket.Request memory r = market.getRequest(id);
        uint256 credited;
        for (uint256 i; i < k.n; ++i) credited += market.withdrawable(c[i]);
        uint256 slash = market.slashAmount();
        if (aWins || bWins) {
            vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Accepted), "accepted");
            vm.assertEq(r.outputHash, aWins ? OUT_A : OUT_B, "winner");
            vm.assertEq(uint256(r.agreeingCount), aWins ? k.a : k.d, "agreeing");
            vm.assertEq(credited, k.fee, "whole fee to agreeing nodes");
            vm.assertEq(market.withdrawable(requester), 0, "no refund");
            vm.assertEq(nodes.slashedBalance(), (k.n - (aWins ? k.a : k.d)) * slash, "losers and no-shows slashed");
        } else {
            vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
            vm.assertEq(credited, 0, "no node paid");
            vm.assertEq(market.withdrawable(requester), k.fee, "refund");
            vm.assertEq(nodes.slashedBalance(), (k.n - k.a - k.d) * slash, "only no-shows slashed");
        }
        for (uint256 i; i < k.n; ++i) {
            (bool s, bool p) = market.getMemberSettlement(id, c[i]);
            vm.assertFalse(s && p, "never paid and slashed");
            vm.assertEq(p, market.withdrawable(c[i]) > 0, "paid flag matches credit");
        }
    }

    /// Commit at block +ca, reveal at +ra, finalize at +fa; each succeeds exactly inside its window.
    function testFuzz_windows(uint32 cb, uint32 rb, uint256 ca, uint256 ra, uint256 fa) public {
        cb = uint32(bound(cb, 1, 50));
        rb = uint32(bound(rb, 1, 50));
        ca = bound(ca, 0, 60);
        ra = bound(ra, ca, 120);
        fa = bound(fa, ra, 200);
        _registerNodes(2, modelId);
        IInferenceMarket.RequestParams memory p = _params(2, 1);
        p.commitBlocks = cb;
        p.revealBlocks = rb;
        uint256 start = block.number;
        uint256 id = _request(requester, FEE, p, modelId);
        address n = _committee(id)[0];
        uint64 cd = uint64(start + cb);
        uint64 rd = uint64(start + cb + rb);

        vm.roll(start + ca);
        bool committed = start + ca <= cd;
        if (!committed) vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitPhaseOver.selector, id, cd));
        _commit(id, n, OUT_A);

        vm.roll(start + ra);
        bool revealed;
        if (!committed) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotCommitted.selector, id, n));
        } else if (start + ra <= cd) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RevealPhaseNotStarted.selector, id, cd));
        } else if (start + ra > rd) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RevealPhaseOver.selector, id, rd));
        } else {
            revealed = true;
        }
        _reveal(id, n, OUT_A);

        vm.roll(start + fa);
        if (start + fa <= rd) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, rd));
            market.finalize(id);
            vm.roll(rd + 1);
        }
        market.finalize(id);
        vm.assertEq(
            uint256(market.statusOf(id)),
            uint256(revealed ? IInferenceMarket.Status.Accepted : IInferenceMarket.Status.NoQuorum),
            "outcome"
        );
        _assertBalances();
    }

    function testFuzz_slashAmountAndStake(uint256 stake, uint256 amount) public {
        stake = bound(stake, 1 ether, 100 ether);
        amount = bound(amount, 0, 200 ether);
        vm.prank(owner);
        market.setSlashAmount(amount);
        address n = _node(0);
        _registerNode(n, stake, modelId);
        uint256 id = _request(requester, FEE, _params(1, 1), modelId);
        _rollPastReveal(id);
        market.finalize(id);
        uint256 expected = amount < stake ? amount : stake;
        vm.assertEq(nodes.stakeOf(n), stake - expected, "slashed min(amount, stake)");
        vm.assertEq(nodes.slashedBalance(), expected, "pool");
        (bool s,) = market.getMemberSettlement(id, n);
        vm.assertTrue(s, "flagged even when nothing was left to take");
        _assertBalances();
    }

    function testFuzz_requestFee(uint256 fee) public {
        fee = bound(fee, 0, 10_000 ether);
        _registerNodes(1, modelId);
        vm.deal(requester, fee);
        vm.prank(requester);
        if (fee < market.minFee()) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooLow.selector, fee, market.minFee()));
            market.requestInference{value: fee}(modelId, "c", INPUT_HASH, _params(1, 1));
        } else {
            uint256 id = market.requestInference{value: fee}(modelId, "c", INPUT_HASH, _params(1, 1));
            vm.assertEq(market.getRequest(id).fee, fee, "fee");
            vm.assertEq(market.totalEscrowed(), fee, "escrowed");
        }
        _assertBalances();
    }

    function testFuzz_committeeDistinctAndEligible(uint256 seed, uint8 n, uint8 k) public {
        n = uint8(bound(n, 1, 12));
        k = uint8(bound(k, 1, n));
        for (uint256 i; i < n; ++i) {
            _registerNode(_node(i), 1 ether + bound(uint256(keccak256(abi.encode(seed, i))), 0, 50 ether), modelId);
        }
        vm.prevrandao(bytes32(seed));
        uint256 id = _request(requester, FEE, _params(k, 1), modelId);
        address[] memory c = _committee(id);
        vm.assertEq(c.length, k, "size");
        for (uint256 i; i < k; ++i) {
            vm.assertTrue(nodes.isEligible(c[i], modelId, false), "eligible");
            for (uint256 j = i + 1; j < k; ++j) {
                vm.assertTrue(c[i] != c[j], "distinct");
            }
        }
    }
}
