// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "./utils/Preview.sol";
import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {RejectingRequester} from "./utils/Consumers.sol";

contract InferenceMarketTest is Fixture {
    event ParameterChanged(bytes32 indexed name, uint256 value);

    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    function _status(uint256 id) internal view returns (IInferenceMarket.Status) {
        return market.statusOf(id);
    }

    /// @dev previewCommittee is a free function (no external call): expectRevert needs this external hop.
    function previewExt(uint256 id) external view returns (address[] memory) {
        return previewCommittee(market, id);
    }

    function _assertBalances() internal view {
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "market balance");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.totalBurned(), "registry balance");
    }

    // ================================================================== the last unanimous reveal settles (gas round 4)

    /// A unanimous request without proof window or callback is settled by its last reveal: the same outcome,
    /// payments, seat and lock releases as a finalize in that block, and no finalize transaction. Proof-less: a
    /// revealer keeps its capacity seat until the settlement frees the whole committee's (one registry call).
    function test_reveal_lastUnanimousRevealSettles() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Revealing), "open until the last reveal");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 1, "proof-less: every seat held until settlement");
            vm.assertEq(nodes.openAssignments(c[i]), 1, "locked until settlement");
        }
        _reveal(id, c[2], OUT_A);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Accepted), "settled by the last reveal");
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(r.outputHash, OUT_A, "settled output");
        for (uint256 i; i < 3; ++i) {
            vm.assertGe(market.withdrawable(c[i]), FEE / 3, "every revealer paid");
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 0, "seat released");
            vm.assertEq(nodes.openAssignments(c[i]), 0, "lock released");
            (bool slashed, bool paid) = market.getMemberSettlement(id, c[i]);
            vm.assertTrue(paid && !slashed, "paid, not slashed");
            vm.assertEq(nodes.stakeOf(c[i]), STAKE, "stake intact");
        }
        vm.assertEq(market.totalEscrowed(), 0, "nothing left in escrow");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyFinalized.selector, id));
        market.finalize(id);
        _assertBalances();
    }

    /// A dissenting reveal (someone is to be slashed) never settles in a reveal: finalize does, as before.
    function test_reveal_dissentLeavesSettlementToFinalize() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        _commit(id, c[2], OUT_B);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _reveal(id, c[2], OUT_B);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Revealing), "not settled by a reveal");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 1, "proof-less: seats held until finalize");
        }
        market.finalize(id);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Accepted), "finalize settles");
        (bool slashed,) = market.getMemberSettlement(id, c[2]);
        vm.assertTrue(slashed, "dissenter slashed at finalize");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 0, "finalize frees every seat");
            vm.assertEq(nodes.openAssignments(c[i]), 0, "and every lock");
        }
        _assertBalances();
    }

    /// With too little gas for the settlement the last reveal still counts (the settlement waits for finalize), so
    /// a node whose gas estimate predates the other reveals is never failed by it.
    function test_reveal_lastRevealWithLittleGasStillCounts() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        bytes32 salt = _salt(id, c[2]);
        vm.prank(c[2]);
        market.reveal{gas: 100_000}(id, OUT_A, salt, "cid");
        (, bool revealed,) = market.getReveal(id, c[2]);
        vm.assertTrue(revealed, "the reveal counts");
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Revealing), "settlement left to finalize");
        vm.assertEq(uint256(nodes.getNode(c[2]).inFlight), 1, "proof-less: the seat waits for the settlement");
        market.finalize(id);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Accepted), "finalize settles");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(nodes.openAssignments(c[i]), 0, "locks released");
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 0, "seats released at finalize");
        }
        _assertBalances();
    }

    // ================================================================== same-output reveals (gas round 3)

    /// Reveals equal to the first revealer's output keep a bit instead of their own slot; every view and the
    /// settlement must read as if each member's output were stored, also when the first revealer dissents.
    function test_reveal_sameAsFirst_viewsAndSettlement() public {
        _registerNodes(5, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(5, 3);
        bytes32[5] memory outs = [OUT_B, OUT_A, OUT_B, OUT_A, OUT_A]; // first revealer (c[0]) is a dissenter
        for (uint256 i; i < 5; ++i) _commit(id, c[i], outs[i]);
        for (uint256 i; i < 5; ++i) _reveal(id, c[i], outs[i]);
        for (uint256 i; i < 5; ++i) {
            (bool committed, bool revealed, bytes32 out) = market.getReveal(id, c[i]);
            vm.assertTrue(committed && revealed, "committed and revealed");
            vm.assertEq(out, outs[i], "each member's own output");
        }
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "A has quorum 3");
        vm.assertEq(market.getRequest(id).outputHash, OUT_A, "settled A");
        for (uint256 i; i < 5; ++i) {
            (bool slashed, bool paid) = market.getMemberSettlement(id, c[i]);
            vm.assertEq(paid, outs[i] == OUT_A, "A revealers paid");
            vm.assertEq(slashed, outs[i] == OUT_B, "B revealers slashed");
            (,, bytes32 out) = market.getReveal(id, c[i]);
            vm.assertEq(out, outs[i], "outputs readable after settlement");
        }
        _assertBalances();
    }

    // ================================================================== request

    function test_request_storesEscrowsAndDoesNotDraw() public {
        _registerNodes(3, modelId);
        uint256 created = block.number;
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.assertEq(id, 1, "first id");
        vm.assertEq(market.requestCount(), 1, "count");
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(r.requester, requester, "requester");
        vm.assertEq(r.modelId, modelId, "model");
        vm.assertEq(r.inputHash, INPUT_HASH, "hash");
        vm.assertEq(r.fee, FEE, "fee");
        vm.assertEq(uint256(r.params.replicas), 3, "replicas");
        vm.assertEq(uint256(r.createdBlock), created, "created");
        vm.assertEq(uint256(r.drawBlock), created + 1, "draw block");
        vm.assertEq(uint256(r.queueDeadline), created + 1, "no queue");
        vm.assertEq(uint256(r.drawDeadline), created + 11, "draw deadline: drawBlock + commitBlocks");
        vm.assertEq(uint256(r.drawnBlock), 0, "not drawn");
        // undrawn: the windows count from the draw, so getRequest shows the latest they can end
        vm.assertEq(uint256(r.commitDeadline), created + 21, "commit deadline (latest)");
        vm.assertEq(uint256(r.revealDeadline), created + 31, "reveal deadline (latest)");
        vm.assertEq(uint256(r.finalizeAfter), created + 31, "no proof window for mode 0");
        vm.assertEq(r.slashAmount, 0.1 ether, "slash snapshot");
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Pending), "pending");
        vm.assertEq(_committee(id).length, 0, "no committee yet");
        vm.assertEq(market.totalEscrowed(), FEE, "escrow");
        _assertBalances();
    }

    function test_request_emitsInferenceRequested() public {
        _registerNodes(1, modelId);
        uint64 b = uint64(block.number);
        vm.deal(requester, FEE);
        vm.expectEmit(true, true, true, true, address(market));
        emit IInferenceMarket.InferenceRequested(
            1, requester, modelId, "bafkreiinput", INPUT_HASH, FEE, 1, 1, b + 1, b + 21, b + 31
        ); // drawBlock and upper bounds of the commit/reveal deadlines (drawBlock + queueBlocks + 2 * commitBlocks)
        vm.prank(requester);
        market.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(1, 1));
    }

    function test_revert_request_paramChecks() public {
        vm.deal(requester, 10 ether);
        vm.startPrank(requester);
        uint256 need = market.parameters().minFee * 3;
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooLow.selector, need - 1, need));
        market.requestInference{value: need - 1}(modelId, "c", INPUT_HASH, _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.EmptyInputCid.selector));
        market.requestInference{value: FEE}(modelId, "", INPUT_HASH, _params(3, 2));
        bytes memory longCid = new bytes(129);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CidTooLong.selector, 129, 128));
        market.requestInference{value: FEE}(modelId, string(longCid), INPUT_HASH, _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InputHashNotInField.selector, bytes32(FIELD)));
        market.requestInference{value: FEE}(modelId, "c", bytes32(FIELD), _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(3), uint8(0), uint8(7)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(3, 0));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(2), uint8(3), uint8(7)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(2, 3));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(8), uint8(5), uint8(7)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(8, 5));
        // quorum must be a strict majority
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(4), uint8(2), uint8(7)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(4, 2));

        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.commitBlocks = 9;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidCommitBlocks.selector, uint32(9), uint32(10), uint32(10_000))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        p.commitBlocks = 10_001;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidCommitBlocks.selector, uint32(10_001), uint32(10), uint32(10_000))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        p.commitBlocks = 10;
        p.revealBlocks = 1;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidRevealBlocks.selector, uint32(1), uint32(10), uint32(10_000))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        p.revealBlocks = 10;
        p.callbackGasLimit = 2_000_001;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.CallbackGasTooHigh.selector, uint32(2_000_001), uint32(2_000_000))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        // the callback deposit comes on top of the fee
        p.callbackGasLimit = 100_000;
        uint256 deposit = 100_000 * market.parameters().callbackGasPrice;
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooLow.selector, need - 1, need));
        market.requestInference{value: need - 1 + deposit}(modelId, "c", INPUT_HASH, p);

        bytes32 missing = keccak256("missing");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ModelNotFound.selector, missing));
        market.requestInference{value: FEE}(missing, "c", INPUT_HASH, _params(3, 2));
        vm.stopPrank();
        vm.prank(publisher);
        models.deprecate(modelId);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ModelDeprecated.selector, modelId));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(3, 2));
    }

    function test_quote_matchesRequirements() public view {
        IInferenceMarket.RequestParams memory p = _params(5, 3);
        p.callbackGasLimit = 123_456;
        (uint256 fee, uint256 dep) = market.quote(modelId, p);
        vm.assertEq(fee, market.parameters().minFee * 5, "fee");
        vm.assertEq(dep, 123_456 * market.parameters().callbackGasPrice, "deposit");
    }

    // ================================================================== draw

    function test_draw_notReadyThenDrawsDistinctEligible() public {
        _registerNodes(5, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        uint64 drawBlock = market.getRequest(id).drawBlock;
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.DrawNotReady.selector, id, drawBlock));
        market.draw(id);
        vm.roll(drawBlock);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.DrawNotReady.selector, id, drawBlock));
        this.previewExt(id);
        vm.roll(drawBlock + 1);
        address[] memory preview = previewCommittee(market, id);
        vm.recordLogs();
        market.draw(id);
        address[] memory c = _committee(id);
        vm.assertEq(c.length, 3, "size");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(c[i], preview[i], "draw == preview");
            vm.assertTrue(nodes.isEligible(c[i], modelId), "eligible");
            vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 1, "seat assigned");
            for (uint256 j = i + 1; j < 3; ++j) vm.assertTrue(c[i] != c[j], "distinct");
        }
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Committing), "committing");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyDrawn.selector, id));
        market.draw(id);
        vm.assertEq(previewCommittee(market, id)[0], c[0], "preview returns the stored committee");
    }

    function test_draw_tooFewEligible_expiresWithFullRefund() public {
        _registerNodes(2, modelId);
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.callbackGasLimit = 50_000;
        uint256 deposit = 50_000 * market.parameters().callbackGasPrice;
        uint256 id = _request(requester, FEE + deposit, p, modelId);
        _draw(id);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Expired), "expired");
        vm.assertEq(market.withdrawable(requester), FEE + deposit, "fee and deposit refunded");
        vm.assertEq(uint256(nodes.getNode(_node(0)).inFlight), 0, "no seat taken");
        vm.assertEq(market.totalEscrowed(), 0, "nothing escrowed");
        _assertBalances();
    }

    function test_commit_drawsImplicitly_andExpiredReturnsQuietly() public {
        address[] memory list = _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.roll(block.number + 2);
        address[] memory preview = previewCommittee(market, id);
        _commit(id, preview[0], OUT_A);
        vm.assertEq(_committee(id).length, 3, "drawn by the first commit");
        (bool committed,,) = market.getReveal(id, preview[0]);
        vm.assertTrue(committed, "committed");
        list;
        // a request whose draw cannot succeed: the commit that tries it expires it without reverting
        vm.prank(list[0]);
        nodes.requestUnbond();
        uint256 id2 = _request(requester, FEE, _params(3, 2), modelId);
        vm.roll(block.number + 2);
        _commit(id2, list[1], OUT_A);
        vm.assertEq(uint256(_status(id2)), uint256(IInferenceMarket.Status.Expired), "expired");
    }

    function test_finalize_pendingAfterDrawDeadline_expires() public {
        _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.roll(r.drawDeadline);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, r.drawDeadline));
        market.finalize(id);
        vm.roll(r.drawDeadline + 1);
        market.finalize(id);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Expired), "expired");
        vm.assertEq(market.withdrawable(requester), FEE, "refund");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyFinalized.selector, id));
        market.finalize(id);
    }

    function test_drawDeadline_isBoundedByEpochAndCommitWindow() public {
        _registerNodes(3, modelId);
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.commitBlocks = 500;
        uint256 id = _request(requester, FEE, p, modelId);
        IInferenceMarket.Request memory r = market.getRequest(id);
        uint256 epochEnd = (r.createdBlock / EPOCH + 2) * EPOCH - 1;
        vm.assertEq(uint256(r.drawDeadline), epochEnd, "end of the next epoch");
        vm.assertLe(uint256(r.drawDeadline), uint256(r.commitDeadline), "before commit deadline");
    }

    // ================================================================== commit / reveal

    function test_revert_commitPaths() public {
        _registerNodes(4, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        address outsider;
        for (uint256 i; i < 4; ++i) {
            bool inC;
            for (uint256 j; j < 3; ++j) if (c[j] == _node(i)) inC = true;
            if (!inC) outsider = _node(i);
        }
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotCommitteeMember.selector, id, outsider));
        market.commit(id, keccak256("x"));
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ZeroCommitment.selector));
        market.commit(id, bytes32(0));
        _commit(id, c[0], OUT_A);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyCommitted.selector, id, c[0]));
        market.commit(id, keccak256("y"));
        uint64 cd = market.getRequest(id).commitDeadline;
        vm.roll(cd + 1);
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitPhaseOver.selector, id, cd));
        market.commit(id, keccak256("z"));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, 99));
        market.commit(99, keccak256("z"));
    }

    function test_revert_revealPaths() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        uint64 cd = market.getRequest(id).commitDeadline;
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RevealPhaseNotStarted.selector, id, cd));
        market.reveal(id, OUT_A, _salt(id, c[0]), "cid");
        vm.roll(cd + 1);
        vm.prank(c[2]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotCommitted.selector, id, c[2]));
        market.reveal(id, OUT_A, _salt(id, c[2]), "cid");
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitmentMismatch.selector, id, c[0]));
        market.reveal(id, OUT_B, _salt(id, c[0]), "cid");
        bytes memory longCid = new bytes(129);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CidTooLong.selector, 129, 128));
        market.reveal(id, OUT_A, _salt(id, c[0]), string(longCid));
        _reveal(id, c[0], OUT_A);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyRevealed.selector, id, c[0]));
        market.reveal(id, OUT_A, _salt(id, c[0]), "cid");
        uint64 rd = market.getRequest(id).revealDeadline;
        vm.roll(rd + 1);
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RevealPhaseOver.selector, id, rd));
        market.reveal(id, OUT_A, _salt(id, c[1]), "cid");
    }

    function test_revealOpensEarlyWhenAllCommitted_andGetReveal() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], INVALID);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Committing), "committing");
        _commit(id, c[2], OUT_A);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Revealing), "revealing");
        vm.expectEmit(true, true, false, true, address(market));
        emit IInferenceMarket.Revealed(id, c[0], OUT_A, string(abi.encodePacked("cid-", OUT_A)));
        _reveal(id, c[0], OUT_A);
        (bool committed, bool revealed, bytes32 out) = market.getReveal(id, c[0]);
        vm.assertTrue(committed && revealed, "flags");
        vm.assertEq(out, OUT_A, "hash");
        (committed, revealed, out) = market.getReveal(id, c[1]);
        vm.assertTrue(committed && !revealed, "committed only");
        vm.assertEq(out, bytes32(0), "hidden until revealed");
        vm.prank(c[1]);
        market.reveal(id, INVALID, _salt(id, c[1]), ""); // empty cid allowed
    }

    // ================================================================== finalize

    function test_lifecycle_acceptedWithDissenterAndNoShow() public {
        _registerNodes(4, modelId);
        IInferenceMarket.RequestParams memory p = _params(4, 3);
        uint256 id = _request(requester, FEE, p, modelId);
        address[] memory c = _draw(id);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        _commit(id, c[2], OUT_A);
        _commit(id, c[3], OUT_B);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _reveal(id, c[3], OUT_B);
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, market.getRequest(id).revealDeadline)
        );
        market.finalize(id);
        _reveal(id, c[2], OUT_A);
        market.finalize(id); // all revealed: early
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
        vm.assertEq(market.getRequest(id).outputHash, OUT_A, "output");
        uint256 share = FEE / 3;
        vm.assertEq(market.withdrawable(c[0]), share + (FEE - share * 3), "first payee gets the dust");
        vm.assertEq(market.withdrawable(c[1]), share, "paid");
        vm.assertEq(market.withdrawable(c[3]), 0, "dissenter unpaid");
        vm.assertEq(nodes.stakeOf(c[3]), STAKE - 0.1 ether, "dissenter slashed");
        vm.assertEq(nodes.totalBurned(), 0.1 ether, "burned");
        (bool slashed, bool paid) = market.getMemberSettlement(id, c[3]);
        vm.assertTrue(slashed && !paid, "flags");
        for (uint256 i; i < 4; ++i) vm.assertEq(uint256(nodes.getNode(c[i]).inFlight), 0, "released");
        _assertBalances();
    }

    function test_finalize_noShowSlashedOnlyWhenSettled() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - 0.1 ether, "no-show slashed when quorum was reached");
        vm.assertEq(market.withdrawable(c[0]) + market.withdrawable(c[1]), FEE, "revealers share the whole fee");
    }

    function test_finalize_noQuorum_paysRevealersRefundsRest_noSlash() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 3);
        _commitAll(id, c, OUT_A);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
        vm.assertEq(market.withdrawable(c[0]), FEE / 3, "revealer paid its seat");
        vm.assertEq(market.withdrawable(c[1]), FEE / 3, "revealer paid its seat");
        vm.assertEq(market.withdrawable(requester), FEE - 2 * (FEE / 3), "rest refunded");
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(c[i]), STAKE, "nobody slashed on NoQuorum");
        _assertBalances();
    }

    function test_finalize_invalidInput_paysCommittee() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, INVALID);
        _revealAll(id, c, INVALID); // unanimous: the last reveal settles
        _finalize(id);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.InvalidInput), "invalid");
        vm.assertEq(market.getRequest(id).outputHash, INVALID, "hash");
        vm.assertEq(market.withdrawable(requester), 0, "requester pays for the check");
        vm.assertEq(market.withdrawable(c[1]), FEE / 3, "committee paid");
    }

    function test_finalize_nobodyShowsUp_refundNoSlash() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
        vm.assertEq(market.withdrawable(requester), FEE, "full refund");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE, "no slash");
    }

    function test_finalize_slashCappedAtRemainingStakeAndMinStakeQuarter() public {
        _registerNodes(3, modelId);
        vm.prank(owner);
        market.setSlashAmount(0.25 ether); // the cap: minStake / 4
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("slashAmount"), 0.25 ether + 1));
        market.setSlashAmount(0.25 ether + 1);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - 0.25 ether, "slashed by the snapshot amount");
    }

    function test_revert_finalize_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, 7));
        market.finalize(7);
    }

    // ================================================================== payments

    function test_withdraw_and_withdrawTo() public {
        _registerNodes(3, modelId);
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        _revealAll(id, c, OUT_A);
        _finalize(id);
        uint256 amount = market.withdrawable(c[0]);
        address payable dest = payable(address(0xDE57));
        vm.prank(c[0]);
        market.withdrawTo(dest);
        vm.assertEq(dest.balance, amount, "paid to another address");
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToWithdraw.selector));
        market.withdraw();
        uint256 before = c[1].balance;
        vm.prank(c[1]);
        market.withdraw();
        vm.assertEq(c[1].balance - before, FEE / 3, "withdraw");
        vm.prank(c[2]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ZeroAddress.selector));
        market.withdrawTo(payable(address(0)));
        _assertBalances();
    }

    function test_revert_withdraw_transferFailed() public {
        _registerNodes(2, modelId);
        RejectingRequester rr = new RejectingRequester(market);
        vm.deal(address(this), FEE);
        uint256 id = rr.ask{value: FEE}(modelId, INPUT_HASH, _params(3, 2));
        _draw(id); // too few nodes: expired and refunded
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TransferFailed.selector, address(rr), FEE));
        rr.pull();
    }

    function test_receive_onlyFromRegistry() public {
        vm.deal(address(this), 1 ether);
        (bool ok,) = address(market).call{value: 1}("");
        vm.assertFalse(ok, "stray ether refused");
    }

    // ================================================================== governance

    function test_governance_setters_bounded_snapshotted() public {
        _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.startPrank(owner);
        vm.expectEmit(true, false, false, true, address(market));
        emit ParameterChanged("minFee", 0.002 ether);
        market.setMinFee(0.002 ether);
        market.setMinCommitBlocks(20);
        market.setMinRevealBlocks(30);
        market.setSlashAmount(0.2 ether);
        market.setProofBlocks(40);
        market.setCallbackGasPrice(5 gwei);
        vm.stopPrank();
        vm.assertEq(market.parameters().minFee, 0.002 ether, "minFee");
        vm.assertEq(uint256(market.parameters().minCommitBlocks), 20, "commit");
        vm.assertEq(uint256(market.parameters().minRevealBlocks), 30, "reveal");
        vm.assertEq(market.parameters().slashAmount, 0.2 ether, "slash");
        vm.assertEq(uint256(market.parameters().proofBlocks), 40, "proof");
        vm.assertEq(market.parameters().callbackGasPrice, 5 gwei, "cb price");
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(r.slashAmount, 0.1 ether, "old request keeps its slash amount");
        vm.assertEq(uint256(r.proofBlocks), 20, "old request keeps its proof window");
    }

    function test_revert_governance_outOfBounds() public {
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("minFee"), 1 ether + 1));
        market.setMinFee(1 ether + 1);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("minCommitBlocks"), 9));
        market.setMinCommitBlocks(9);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("minCommitBlocks"), 1001));
        market.setMinCommitBlocks(1001);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("minRevealBlocks"), 1));
        market.setMinRevealBlocks(1);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("proofBlocks"), 9));
        market.setProofBlocks(9);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("proofBlocks"), 1001));
        market.setProofBlocks(1001);
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("callbackGasPrice"), 1001 gwei)
        );
        market.setCallbackGasPrice(1001 gwei);
        vm.stopPrank();
    }

    function test_revert_governance_notOwner() public {
        vm.startPrank(address(0xBAD));
        vm.expectRevert();
        market.setMinFee(1);
        vm.expectRevert();
        market.setSlashAmount(1);
        vm.expectRevert();
        market.setProofBlocks(20);
        vm.expectRevert();
        market.setCallbackGasPrice(1);
        vm.expectRevert();
        market.setMinCommitBlocks(20);
        vm.expectRevert();
        market.setMinRevealBlocks(20);
        vm.stopPrank();
    }

    function test_ownable2Step_transfer() public {
        vm.prank(owner);
        market.transferOwnership(address(0xB055));
        vm.assertEq(market.owner(), owner, "pending");
        vm.prank(address(0xB055));
        market.acceptOwnership();
        vm.assertEq(market.owner(), address(0xB055), "accepted");
    }

    function test_requestBinding_formula() public view {
        vm.assertEq(
            market.requestBinding(5, address(0xABC)),
            uint256(keccak256(abi.encode(uint256(5), address(0xABC)))) % FIELD,
            "binding"
        );
    }

    function test_constructor_checks() public {
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ZeroAddress.selector));
        new InferenceMarket(owner, address(0), address(models), 1024);
    }
}
