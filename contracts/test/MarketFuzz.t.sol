// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "./utils/Preview.sol";
import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";

contract MarketFuzzTest is Fixture {
    function _assertBalances() internal view {
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "market balance");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.totalBurned(), "registry balance");
    }

    struct Case {
        uint256 fee;
        uint8 n;
        uint8 a;
        uint8 d;
        uint8 q;
    }

    /// n members: `a` reveal A, `d` reveal B, the rest never show up; quorum q (a strict majority).
    function testFuzz_settlementOutcomeAndFeeSplit(uint256 fee, uint8 n, uint8 a, uint8 d, uint8 q) public {
        Case memory k;
        k.n = uint8(bound(n, 1, 7));
        k.a = uint8(bound(a, 0, k.n));
        k.d = uint8(bound(d, 0, k.n - k.a));
        k.q = uint8(bound(q, k.n / 2 + 1, k.n));
        k.fee = bound(fee, market.parameters().minFee * k.n, 1_000 ether);
        _registerNodes(k.n, modelId);
        uint256 id = _request(requester, k.fee, _params(k.n, k.q), modelId);
        address[] memory c = _draw(id);
        for (uint256 i; i < k.a + k.d; ++i) _commit(id, c[i], i < k.a ? OUT_A : OUT_B);
        _rollPastCommit(id);
        for (uint256 i; i < k.a + k.d; ++i) _reveal(id, c[i], i < k.a ? OUT_A : OUT_B);
        _rollPastReveal(id);
        _finalize(id);
        _checkOutcome(id, c, k);
        _assertBalances();
    }

    function _checkOutcome(uint256 id, address[] memory c, Case memory k) internal view {
        bool aWins = k.a >= k.q;
        bool bWins = k.d >= k.q;
        IInferenceMarket.Request memory r = market.getRequest(id);
        uint256 credited;
        for (uint256 i; i < k.n; ++i) credited += market.withdrawable(c[i]);
        uint256 slash = market.parameters().slashAmount;
        if (aWins || bWins) {
            vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Accepted), "accepted");
            vm.assertEq(r.outputHash, aWins ? OUT_A : OUT_B, "winner");
            vm.assertEq(credited, k.fee, "whole fee to the revealers of the output");
            vm.assertEq(market.withdrawable(requester), 0, "no refund");
            vm.assertEq(nodes.totalBurned(), (k.n - (aWins ? k.a : k.d)) * slash, "dissenters and no-shows slashed");
        } else {
            vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
            uint256 share = k.fee / k.n;
            vm.assertEq(credited, share * (k.a + k.d), "every in-time revealer paid its seat");
            vm.assertEq(market.withdrawable(requester), k.fee - share * (k.a + k.d), "rest refunded");
            vm.assertEq(nodes.totalBurned(), 0, "nobody slashed without an outcome");
        }
        for (uint256 i; i < k.n; ++i) {
            (bool s, bool p) = market.getMemberSettlement(id, c[i]);
            vm.assertFalse(s && p, "never paid and slashed");
            vm.assertEq(p, market.withdrawable(c[i]) > 0, "paid flag matches credit");
        }
    }

    /// Draw at block +da (from the draw block), commit at +ca, reveal at +ra, finalize at +fa; the windows count
    /// from the draw and each step succeeds exactly in its window.
    function testFuzz_windows(uint32 cb, uint32 rb, uint256 da, uint256 ca, uint256 ra, uint256 fa) public {
        cb = uint32(bound(cb, 10, 40));
        rb = uint32(bound(rb, 10, 40));
        da = bound(da, 1, 45);
        ca = bound(ca, da, da + 45);
        ra = bound(ra, ca, ca + 90);
        fa = bound(fa, ra, ra + 120);
        _registerNodes(1, modelId);
        IInferenceMarket.RequestParams memory p = _params(1, 1);
        p.commitBlocks = cb;
        p.revealBlocks = rb;
        uint256 id = _request(requester, FEE, p, modelId);
        uint256 start = block.number + 1; // draw block
        vm.roll(start + 1);
        address n = previewCommittee(market, id)[0];
        bool canDraw = start + da <= market.getRequest(id).drawDeadline;
        vm.roll(start + da);
        market.draw(id);
        if (!canDraw) {
            vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Expired), "too late to draw");
            return;
        }
        uint64 cd = uint64(start + da + cb);
        uint64 rd = uint64(start + da + cb + rb);
        vm.assertEq(uint256(market.getRequest(id).drawnBlock), start + da, "drawnBlock");
        vm.assertEq(uint256(market.getRequest(id).commitDeadline), cd, "commit deadline from the draw");

        vm.roll(start + ca);
        bool committed = start + ca <= cd;
        if (!committed) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitPhaseOver.selector, id, cd));
        }
        _commit(id, n, OUT_A);

        vm.roll(start + ra);
        bool revealed;
        if (!committed) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotCommitted.selector, id, n));
        } else if (start + ra > rd) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RevealPhaseOver.selector, id, rd));
        } else {
            revealed = true; // a lone member that committed may reveal at once
        }
        _reveal(id, n, OUT_A);

        vm.roll(start + fa);
        if (start + fa <= rd && !revealed) {
            vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, rd));
            market.finalize(id);
            vm.roll(rd + 1);
        }
        _finalize(id); // a lone member's reveal settles at once
        vm.assertEq(
            uint256(market.statusOf(id)),
            uint256(revealed ? IInferenceMarket.Status.Accepted : IInferenceMarket.Status.NoQuorum),
            "outcome"
        );
        _assertBalances();
    }

    function testFuzz_requestFee(uint256 fee) public {
        fee = bound(fee, 0, 100 ether);
        uint256 need = market.parameters().minFee * 3;
        vm.deal(requester, fee);
        vm.prank(requester);
        if (fee < need) vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooLow.selector, fee, need));
        market.requestInference{value: fee}(modelId, "c", INPUT_HASH, _params(3, 2));
        if (fee >= need) vm.assertEq(market.totalEscrowed(), fee, "escrowed");
    }

    /// Junk (partial-shard), unbonding and under-stake nodes never sit on a committee; members are distinct.
    function testFuzz_committeeDistinctAndEligible(uint256 seed, uint8 n, uint8 k) public {
        n = uint8(bound(n, 1, 20));
        k = uint8(bound(k, 1, 7));
        for (uint256 i; i < n; ++i) {
            address a = _node(i);
            uint256 kind = uint256(keccak256(abi.encode(seed, i))) % 4;
            if (kind == 0) {
                vm.deal(a, STAKE);
                INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](1);
                s[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 0, layerEnd: 1});
                vm.prank(a);
                nodes.register{value: STAKE}("http://junk", s);
            } else {
                _registerNode(a, STAKE + i * 1 ether, modelId);
                if (kind == 1) {
                    vm.prank(a);
                    nodes.requestUnbond();
                }
            }
        }
        _nextEpoch();
        uint256 id = _request(requester, FEE, _params(k, k / 2 + 1), modelId);
        address[] memory c = _draw(id);
        if (market.statusOf(id) == IInferenceMarket.Status.Expired) {
            uint256 eligible;
            for (uint256 i; i < n; ++i) if (nodes.isEligible(_node(i), modelId)) ++eligible;
            vm.assertTrue(eligible < k, "expired only if too few eligible");
            return;
        }
        for (uint256 i; i < c.length; ++i) {
            vm.assertTrue(nodes.isEligible(c[i], modelId), "eligible");
            for (uint256 j = i + 1; j < c.length; ++j) vm.assertTrue(c[i] != c[j], "distinct");
        }
    }
}
