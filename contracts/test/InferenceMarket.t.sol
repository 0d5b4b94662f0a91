// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {RejectingRequester} from "./utils/Consumers.sol";

contract InferenceMarketTest is Fixture {
    event Committed(uint256 indexed requestId, address indexed node);
    event Revealed(uint256 indexed requestId, address indexed node, bytes32 outputHash, string outputCid);
    event Finalized(
        uint256 indexed requestId, IInferenceMarket.Status status, bytes32 outputHash, string outputCid, uint256 agreeingCount
    );
    event Credited(address indexed account, uint256 amount, uint256 indexed requestId);
    event Refunded(uint256 indexed requestId, address indexed requester, uint256 amount);
    event NodePenalized(uint256 indexed requestId, address indexed node, uint256 slashed);
    event Withdrawn(address indexed account, uint256 amount);
    event ParameterChanged(bytes32 indexed name, uint256 value);
    event Slashed(address indexed node, uint256 indexed requestId, uint256 amount);

    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    function _status(uint256 id) internal view returns (uint256) {
        return uint256(market.statusOf(id));
    }

    function _assertBalances() internal view {
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "market balance");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.slashedBalance(), "registry balance");
    }

    // ================================================================== request

    function test_request_storesAndEscrows() public {
        _registerNodes(3, modelId);
        vm.roll(150);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.assertEq(id, 1, "first id");
        vm.assertEq(market.requestCount(), 1, "count");
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(r.requester, requester, "requester");
        vm.assertEq(r.modelId, modelId, "model");
        vm.assertEq(r.inputCid, "bafkreiinput", "cid");
        vm.assertEq(r.inputHash, INPUT_HASH, "hash");
        vm.assertEq(r.fee, FEE, "fee");
        vm.assertEq(uint256(r.params.replicas), 3, "replicas");
        vm.assertEq(uint256(r.params.quorum), 2, "quorum");
        vm.assertEq(uint256(r.commitDeadline), 155, "commit deadline");
        vm.assertEq(uint256(r.revealDeadline), 160, "reveal deadline");
        vm.assertEq(uint256(r.createdBlock), 150, "created");
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Committing), "status");
        vm.assertEq(market.totalEscrowed(), FEE, "escrow");
        address[] memory c = _committee(id);
        vm.assertEq(c.length, 3, "committee size");
        for (uint256 i; i < 3; ++i) {
            for (uint256 j = i + 1; j < 3; ++j) {
                vm.assertTrue(c[i] != c[j], "no duplicates");
            }
        }
        _assertBalances();
    }

    function test_request_emitsInferenceRequested() public {
        _registerNodes(1, modelId);
        address[] memory expected = new address[](1);
        expected[0] = _node(0);
        vm.deal(requester, FEE);
        vm.expectEmit(true, true, true, true, address(market));
        emit IInferenceMarket.InferenceRequested(1, requester, modelId, "bafkreiinput", INPUT_HASH, FEE, expected, 105, 110);
        vm.prank(requester);
        market.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(1, 1));
    }

    function test_revert_request_paramChecks() public {
        _registerNodes(3, modelId);
        vm.deal(requester, 10 ether);
        vm.startPrank(requester);
        uint256 minFee = market.minFee();
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooLow.selector, minFee - 1, minFee));
        market.requestInference{value: minFee - 1}(modelId, "c", INPUT_HASH, _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.EmptyInputCid.selector));
        market.requestInference{value: FEE}(modelId, "", INPUT_HASH, _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InputHashNotInField.selector, bytes32(FIELD)));
        market.requestInference{value: FEE}(modelId, "c", bytes32(FIELD), _params(3, 2));

        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(3), uint8(0), uint8(16)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(3, 0));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(2), uint8(3), uint8(16)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(2, 3));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(17), uint8(1), uint8(16)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(17, 1));

        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.commitBlocks = 0;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidCommitBlocks.selector, uint32(0), uint32(1), uint32(500))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        p.commitBlocks = 501;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidCommitBlocks.selector, uint32(501), uint32(1), uint32(500))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        p.commitBlocks = 5;
        p.revealBlocks = 0;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidRevealBlocks.selector, uint32(0), uint32(1), uint32(500))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        p.revealBlocks = 501;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InvalidRevealBlocks.selector, uint32(501), uint32(1), uint32(500))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);
        p.revealBlocks = 5;
        p.callbackGasLimit = 1_000_001;
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.CallbackGasTooHigh.selector, uint32(1_000_001), uint32(1_000_000))
        );
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, p);

        bytes32 missing = keccak256("missing");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ModelNotFound.selector, missing));
        market.requestInference{value: FEE}(missing, "c", INPUT_HASH, _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotEnoughEligibleNodes.selector, uint256(3), uint8(4)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(4, 2));
        vm.stopPrank();

        vm.prank(publisher);
        models.deprecate(modelId);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ModelDeprecated.selector, modelId));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(3, 2));
    }

    function test_request_excludesIneligibleNodes() public {
        address[] memory list = _registerNodes(4, modelId);
        // n0 unbonding, n1 slashed below min stake: only n2, n3 remain eligible
        vm.prank(list[0]);
        nodes.requestUnbond();
        vm.prank(address(market));
        nodes.slash(list[1], 1.5 ether, 0);
        vm.deal(requester, 1 ether);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotEnoughEligibleNodes.selector, uint256(2), uint8(3)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(3, 2));
        uint256 id = _request(requester, FEE, _params(2, 2), modelId);
        address[] memory c = _committee(id);
        vm.assertTrue(c[0] != list[0] && c[0] != list[1] && c[1] != list[0] && c[1] != list[1], "only eligible");
    }

    function test_request_maxCandidatesCap() public {
        _registerNodes(5, modelId);
        vm.prank(owner);
        market.setMaxCandidates(2);
        vm.deal(requester, 1 ether);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotEnoughEligibleNodes.selector, uint256(2), uint8(3)));
        market.requestInference{value: FEE}(modelId, "c", INPUT_HASH, _params(3, 2));
        uint256 id = _request(requester, FEE, _params(2, 1), modelId);
        vm.assertEq(_committee(id).length, 2, "size");
    }

    function test_committee_isStakeWeighted() public {
        address light = _node(0);
        address heavy = _node(1);
        _registerNode(light, 1 ether, modelId);
        _registerNode(heavy, 9 ether, modelId);
        uint256 heavyPicks;
        for (uint256 i; i < 200; ++i) {
            vm.prevrandao(keccak256(abi.encode(i)));
            vm.roll(200 + i);
            uint256 id = _request(requester, FEE, _params(1, 1), modelId);
            if (_committee(id)[0] == heavy) ++heavyPicks;
        }
        // expected 180 of 200; a uniform draw would give ~100
        vm.assertGe(heavyPicks, 160, "heavy node picked ~90%");
        vm.assertLe(heavyPicks, 196, "light node still picked sometimes");
    }

    function test_request_teeModelNeedsAttestation() public {
        bytes32 teeModel = _registerModel(publisher, "tee-model", address(0), 0, true);
        address[] memory list = _registerNodes(2, teeModel);
        vm.deal(requester, 1 ether);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotEnoughEligibleNodes.selector, uint256(0), uint8(1)));
        market.requestInference{value: FEE}(teeModel, "c", INPUT_HASH, _params(1, 1));

        bytes32 meas = keccak256("enclave");
        vm.prank(owner);
        nodes.setMeasurementAllowed(meas, true);
        vm.prank(list[1]);
        nodes.submitAttestation(
            INodeRegistry.Attestation({
                teeType: 255,
                measurement: meas,
                quoteHash: keccak256("q"),
                reportDataAddress: list[1],
                expiresAt: 1000,
                verifiedBy: 255,
                quoteCid: "q"
            })
        );
        uint256 id = _request(requester, FEE, _params(1, 1), teeModel);
        vm.assertEq(_committee(id)[0], list[1], "only the attested node");
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotEnoughEligibleNodes.selector, uint256(1), uint8(2)));
        market.requestInference{value: FEE}(teeModel, "c", INPUT_HASH, _params(2, 1));

        vm.roll(1000); // attestation expired
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotEnoughEligibleNodes.selector, uint256(0), uint8(1)));
        market.requestInference{value: FEE}(teeModel, "c", INPUT_HASH, _params(1, 1));
    }

    // ================================================================== commit / reveal

    function test_revert_commitPaths() public {
        _registerNodes(2, modelId);
        uint256 id = _request(requester, FEE, _params(2, 1), modelId);
        address[] memory c = _committee(id);

        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, uint256(99)));
        market.commit(99, bytes32(uint256(1)));
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotCommitteeMember.selector, id, address(0xBAD)));
        market.commit(id, bytes32(uint256(1)));
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ZeroCommitment.selector));
        market.commit(id, bytes32(0));

        vm.expectEmit(true, true, false, true, address(market));
        emit Committed(id, c[0]);
        _commit(id, c[0], OUT_A);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyCommitted.selector, id, c[0]));
        market.commit(id, bytes32(uint256(1)));

        uint64 deadline = market.getRequest(id).commitDeadline;
        vm.roll(deadline); // last block still accepts commits
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.Committing), "still committing");
        vm.roll(deadline + 1);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.Revealing), "revealing");
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitPhaseOver.selector, id, deadline));
        market.commit(id, bytes32(uint256(1)));

        _reveal(id, c[0], OUT_A);
        // c[1] never committed: finalize must wait for the reveal deadline
        uint64 revealDeadline = market.getRequest(id).revealDeadline;
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, revealDeadline));
        market.finalize(id);
        vm.roll(revealDeadline + 1);
        market.finalize(id);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.Accepted), "accepted with quorum 1");
    }

    function test_revert_revealPaths() public {
        _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        uint64 commitDeadline = market.getRequest(id).commitDeadline;
        uint64 revealDeadline = market.getRequest(id).revealDeadline;

        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, uint256(7)));
        market.reveal(7, OUT_A, bytes32(0), "");
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotCommitteeMember.selector, id, address(0xBAD)));
        market.reveal(id, OUT_A, bytes32(0), "");
        vm.prank(c[2]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NotCommitted.selector, id, c[2]));
        market.reveal(id, OUT_A, bytes32(0), "");
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RevealPhaseNotStarted.selector, id, commitDeadline));
        market.reveal(id, OUT_A, _salt(id, c[0]), "");

        vm.roll(commitDeadline + 1);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitmentMismatch.selector, id, c[0]));
        market.reveal(id, OUT_B, _salt(id, c[0]), "");
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitmentMismatch.selector, id, c[0]));
        market.reveal(id, OUT_A, bytes32(uint256(1)), "");
        // someone else's opening does not work for c[1]
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitmentMismatch.selector, id, c[1]));
        market.reveal(id, OUT_A, _salt(id, c[0]), "");

        vm.expectEmit(true, true, false, true, address(market));
        emit Revealed(id, c[0], OUT_A, string(abi.encodePacked("cid-", OUT_A)));
        _reveal(id, c[0], OUT_A);
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyRevealed.selector, id, c[0]));
        market.reveal(id, OUT_A, _salt(id, c[0]), "");

        vm.roll(revealDeadline); // last block still accepts reveals
        vm.roll(revealDeadline + 1);
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RevealPhaseOver.selector, id, revealDeadline));
        market.reveal(id, OUT_A, _salt(id, c[1]), "");

        market.finalize(id);
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyFinalized.selector, id));
        market.reveal(id, OUT_A, _salt(id, c[1]), "");
        vm.prank(c[2]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyFinalized.selector, id));
        market.commit(id, bytes32(uint256(1)));
    }

    function test_getReveal() public {
        _registerNodes(1, modelId);
        uint256 id = _request(requester, FEE, _params(1, 1), modelId);
        address n = _committee(id)[0];
        (bool committed, bool revealed, bytes32 out, string memory cid) = market.getReveal(id, n);
        vm.assertFalse(committed || revealed, "nothing yet");
        _commit(id, n, OUT_A);
        _reveal(id, n, OUT_A); // sole member committed: reveal opens early
        (committed, revealed, out, cid) = market.getReveal(id, n);
        vm.assertTrue(committed && revealed, "flags");
        vm.assertEq(out, OUT_A, "out");
        vm.assertEq(cid, string(abi.encodePacked("cid-", OUT_A)), "cid");
    }

    // ================================================================== finalize

    function test_lifecycle_acceptedWithDissenterAndNoShow() public {
        _registerNodes(4, modelId);
        uint256 id = _request(requester, FEE, _params(4, 2), modelId);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        _commit(id, c[2], OUT_B);
        // c[3] never shows up
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _reveal(id, c[2], OUT_B);

        IInferenceMarket.Request memory before = market.getRequest(id);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, before.revealDeadline));
        market.finalize(id);
        _rollPastReveal(id);

        uint256 slash = market.slashAmount();
        string memory cidA = string(abi.encodePacked("cid-", OUT_A));
        vm.expectEmit(true, true, false, true, address(market));
        emit Credited(c[0], FEE / 2, id);
        vm.expectEmit(true, true, false, true, address(market));
        emit Credited(c[1], FEE / 2, id);
        vm.expectEmit(true, false, false, true, address(market));
        emit Finalized(id, IInferenceMarket.Status.Accepted, OUT_A, cidA, 2);
        vm.expectEmit(true, true, false, true, address(nodes));
        emit Slashed(c[2], id, slash);
        vm.expectEmit(true, true, false, true, address(market));
        emit NodePenalized(id, c[2], slash);
        vm.expectEmit(true, true, false, true, address(nodes));
        emit Slashed(c[3], id, slash);
        market.finalize(id);

        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Accepted), "accepted");
        vm.assertEq(r.outputHash, OUT_A, "winner");
        vm.assertEq(r.outputCid, cidA, "cid");
        vm.assertEq(uint256(r.agreeingCount), 2, "agreeing");
        vm.assertEq(uint256(r.revealCount), 3, "reveals");
        vm.assertEq(market.withdrawable(c[0]), FEE / 2, "c0 credited");
        vm.assertEq(market.withdrawable(c[1]), FEE / 2, "c1 credited");
        vm.assertEq(market.withdrawable(c[2]), 0, "dissenter unpaid");
        vm.assertEq(market.withdrawable(requester), 0, "no refund");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE, "c0 stake intact");
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - slash, "dissenter slashed");
        vm.assertEq(nodes.stakeOf(c[3]), STAKE - slash, "no-show slashed");
        vm.assertEq(nodes.slashedBalance(), 2 * slash, "slashed pool");
        (bool s0, bool p0) = market.getMemberSettlement(id, c[0]);
        (bool s2, bool p2) = market.getMemberSettlement(id, c[2]);
        (bool s3, bool p3) = market.getMemberSettlement(id, c[3]);
        vm.assertTrue(!s0 && p0, "c0 paid");
        vm.assertTrue(s2 && !p2, "c2 slashed");
        vm.assertTrue(s3 && !p3, "c3 slashed");
        vm.assertEq(market.totalEscrowed(), 0, "escrow released");
        vm.assertEq(market.totalWithdrawable(), FEE, "withdrawable");
        _assertBalances();

        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyFinalized.selector, id));
        market.finalize(id);

        uint256 bal = c[0].balance;
        vm.expectEmit(true, false, false, true, address(market));
        emit Withdrawn(c[0], FEE / 2);
        vm.prank(c[0]);
        market.withdraw();
        vm.assertEq(c[0].balance - bal, FEE / 2, "paid out");
        vm.prank(c[0]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToWithdraw.selector));
        market.withdraw();
        _assertBalances();
    }

    function test_finalize_remainderGoesToFirstAgreeing() public {
        _registerNodes(3, modelId);
        uint256 fee = 0.01 ether + 2; // not divisible by 3
        uint256 id = _request(requester, fee, _params(3, 2), modelId);
        address[] memory c = _committee(id);
        for (uint256 i; i < 3; ++i) _commit(id, c[i], OUT_A);
        for (uint256 i; i < 3; ++i) _reveal(id, c[i], OUT_A);
        market.finalize(id); // early: everyone revealed
        uint256 share = fee / 3;
        vm.assertEq(market.withdrawable(c[0]), share + (fee - 3 * share), "first gets remainder");
        vm.assertEq(market.withdrawable(c[1]), share, "share");
        vm.assertEq(market.withdrawable(c[2]), share, "share");
        vm.assertEq(market.totalWithdrawable(), fee, "all of the fee");
    }

    function test_finalize_invalidInputRefundsFully() public {
        _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        address[] memory c = _committee(id);
        _commit(id, c[0], INVALID);
        _commit(id, c[1], INVALID);
        _commit(id, c[2], OUT_A);
        _reveal(id, c[0], INVALID); // all committed: reveal opens before the commit deadline
        _reveal(id, c[1], INVALID);
        _reveal(id, c[2], OUT_A);
        vm.expectEmit(true, true, false, true, address(market));
        emit Refunded(id, requester, FEE);
        market.finalize(id);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.InvalidInput), "invalid input");
        vm.assertEq(r.outputHash, INVALID, "outcome");
        vm.assertEq(uint256(r.agreeingCount), 0, "nobody paid");
        vm.assertEq(market.withdrawable(requester), FEE, "full refund");
        vm.assertEq(market.withdrawable(c[0]), 0, "no pay");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE, "agreeing not slashed");
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - market.slashAmount(), "dissenter slashed");
        uint256 bal = requester.balance;
        vm.prank(requester);
        market.withdraw();
        vm.assertEq(requester.balance - bal, FEE, "refund paid");
        _assertBalances();
    }

    function test_finalize_noQuorumTieRefunds() public {
        _registerNodes(4, modelId);
        uint256 id = _request(requester, FEE, _params(4, 2), modelId);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        _commit(id, c[2], OUT_B);
        _commit(id, c[3], OUT_B);
        for (uint256 i; i < 4; ++i) {
            _reveal(id, c[i], i < 2 ? OUT_A : OUT_B);
        }
        market.finalize(id);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.NoQuorum), "tie = no quorum");
        vm.assertEq(r.outputHash, bytes32(0), "no outcome");
        vm.assertEq(market.withdrawable(requester), FEE, "refund");
        for (uint256 i; i < 4; ++i) {
            vm.assertEq(nodes.stakeOf(c[i]), STAKE, "revealers not slashed without a winner");
        }
        _assertBalances();
    }

    function test_finalize_noQuorumBelowThresholdSlashesNoShows() public {
        _registerNodes(3, modelId);
        uint256 id = _request(requester, FEE, _params(3, 3), modelId);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.NoQuorum), "2 < quorum 3");
        vm.assertEq(market.withdrawable(requester), FEE, "refund");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE, "revealer kept stake");
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - market.slashAmount(), "no-show slashed");
    }

    function test_finalize_nobodyShowsUp() public {
        _registerNodes(2, modelId);
        uint256 id = _request(requester, FEE, _params(2, 1), modelId);
        address[] memory c = _committee(id);
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, market.getRequest(id).revealDeadline)
        );
        market.finalize(id);
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE - market.slashAmount(), "no-show 0");
        vm.assertEq(nodes.stakeOf(c[1]), STAKE - market.slashAmount(), "no-show 1");
        vm.assertEq(market.withdrawable(requester), FEE, "refund");
    }

    function test_finalize_earlyWhenAllRevealed() public {
        _registerNodes(2, modelId);
        uint256 id = _request(requester, FEE, _params(2, 2), modelId);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT_A);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.Committing), "committing");
        _commit(id, c[1], OUT_A);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.Revealing), "all committed: revealing");
        _reveal(id, c[0], OUT_A);
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, market.getRequest(id).revealDeadline)
        );
        market.finalize(id);
        _reveal(id, c[1], OUT_A);
        vm.assertEq(block.number, 100, "same block as the request");
        market.finalize(id);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.Accepted), "accepted early");
        vm.assertEq(market.withdrawable(c[0]) + market.withdrawable(c[1]), FEE, "paid");
    }

    function test_finalize_slashCappedAtRemainingStake() public {
        _registerNodes(1, modelId);
        vm.prank(owner);
        market.setSlashAmount(5 ether);
        uint256 id = _request(requester, FEE, _params(1, 1), modelId);
        address n = _committee(id)[0];
        _rollPastReveal(id);
        vm.expectEmit(true, true, false, true, address(market));
        emit NodePenalized(id, n, STAKE);
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(n), 0, "all stake slashed");
        vm.assertEq(nodes.slashedBalance(), STAKE, "pool");
    }

    function test_committeeMemberCannotUnbondOutOfSlash() public {
        _registerNodes(2, modelId);
        vm.prank(owner);
        nodes.setUnbondingDelay(3);
        uint256 id = _request(requester, FEE, _params(2, 1), modelId);
        address[] memory c = _committee(id);
        uint64 rd = market.getRequest(id).revealDeadline;
        vm.assertEq(uint256(nodes.assignedUntil(c[1])), rd, "assignment recorded");
        vm.prank(c[1]);
        nodes.requestUnbond();
        vm.assertEq(nodes.withdrawableAt(c[1]), rd + 3, "locked past the reveal deadline");
        vm.roll(block.number + 3); // plain unbonding delay elapsed, assignment lock not
        vm.prank(c[1]);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotElapsed.selector, block.number, rd + 3));
        nodes.withdrawStake();
        _commit(id, c[0], OUT_A);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_A);
        _rollPastReveal(id);
        uint256 slash = market.slashAmount();
        vm.expectEmit(true, true, false, true, address(market));
        emit NodePenalized(id, c[1], slash);
        market.finalize(id);
        vm.assertEq(_status(id), uint256(IInferenceMarket.Status.Accepted), "settled");
        vm.roll(rd + 3);
        vm.prank(c[1]);
        nodes.withdrawStake();
        vm.assertEq(c[1].balance, STAKE - slash, "withdrew what was left after the slash");
    }

    function test_finalize_slashAmountZero_flagsWithoutSlashing() public {
        _registerNodes(2, modelId);
        vm.prank(owner);
        market.setSlashAmount(0);
        uint256 id = _request(requester, FEE, _params(2, 1), modelId);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT_A);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_A);
        _rollPastReveal(id);
        vm.expectEmit(true, true, false, true, address(market));
        emit NodePenalized(id, c[1], 0);
        market.finalize(id);
        vm.assertEq(nodes.stakeOf(c[1]), STAKE, "no stake taken");
        vm.assertEq(nodes.slashedBalance(), 0, "pool empty");
        (bool s1,) = market.getMemberSettlement(id, c[1]);
        vm.assertTrue(s1, "still recorded as penalized");
        vm.assertEq(market.withdrawable(c[0]), FEE, "sole agreeing node gets the fee");
    }

    function test_finalize_emitsNoQuorumEvent() public {
        _registerNodes(1, modelId);
        uint256 id = _request(requester, FEE, _params(1, 1), modelId);
        _rollPastReveal(id);
        vm.expectEmit(true, true, false, true, address(market));
        emit Refunded(id, requester, FEE);
        vm.expectEmit(true, false, false, true, address(market));
        emit Finalized(id, IInferenceMarket.Status.NoQuorum, bytes32(0), "", 0);
        market.finalize(id);
    }

    function test_revert_finalize_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, uint256(1)));
        market.finalize(1);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, uint256(1)));
        market.getRequest(1);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, uint256(1)));
        market.getCommittee(1);
        vm.assertEq(_status(1), 0, "None");
    }

    // ================================================================== withdraw

    function test_revert_withdraw_transferFailed() public {
        _registerNodes(1, modelId);
        RejectingRequester rej = new RejectingRequester(market);
        vm.deal(address(this), FEE);
        uint256 id = rej.ask{value: FEE}(modelId, INPUT_HASH, _params(1, 1));
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(market.withdrawable(address(rej)), FEE, "credited");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TransferFailed.selector, address(rej), FEE));
        rej.pull();
        vm.assertEq(market.withdrawable(address(rej)), FEE, "still credited");
    }

    // ================================================================== governance

    function test_governance_setters() public {
        vm.startPrank(owner);
        vm.expectEmit(true, false, false, true, address(market));
        emit ParameterChanged("minFee", 1);
        market.setMinFee(1);
        vm.assertEq(market.minFee(), 1, "minFee");
        market.setMaxReplicas(5);
        vm.assertEq(uint256(market.maxReplicas()), 5, "maxReplicas");
        market.setMaxCommitBlocks(50);
        market.setMinCommitBlocks(3);
        market.setMaxRevealBlocks(60);
        market.setMinRevealBlocks(4);
        vm.assertEq(uint256(market.minCommitBlocks()), 3, "minCommit");
        vm.assertEq(uint256(market.maxCommitBlocks()), 50, "maxCommit");
        vm.assertEq(uint256(market.minRevealBlocks()), 4, "minReveal");
        vm.assertEq(uint256(market.maxRevealBlocks()), 60, "maxReveal");
        vm.expectEmit(true, false, false, true, address(market));
        emit ParameterChanged("slashAmount", 0);
        market.setSlashAmount(0);
        market.setProofVerifyGas(600_000);
        vm.assertEq(market.proofVerifyGas(), 600_000, "proofGas");
        market.setMaxCallbackGas(200_000);
        vm.assertEq(uint256(market.maxCallbackGas()), 200_000, "cbGas");
        market.setMaxCandidates(100);
        vm.assertEq(market.maxCandidates(), 100, "maxCandidates");
        vm.stopPrank();
    }

    function test_revert_governance_invalidValues() public {
        vm.startPrank(owner);
        _expectInvalid("maxReplicas", 0);
        market.setMaxReplicas(0);
        _expectInvalid("maxReplicas", 65);
        market.setMaxReplicas(65);
        _expectInvalid("minCommitBlocks", 0);
        market.setMinCommitBlocks(0);
        _expectInvalid("minCommitBlocks", 501);
        market.setMinCommitBlocks(501);
        market.setMinCommitBlocks(10);
        _expectInvalid("maxCommitBlocks", 9);
        market.setMaxCommitBlocks(9);
        _expectInvalid("maxCommitBlocks", 1_000_001);
        market.setMaxCommitBlocks(1_000_001);
        _expectInvalid("minRevealBlocks", 0);
        market.setMinRevealBlocks(0);
        _expectInvalid("minRevealBlocks", 501);
        market.setMinRevealBlocks(501);
        market.setMinRevealBlocks(10);
        _expectInvalid("maxRevealBlocks", 9);
        market.setMaxRevealBlocks(9);
        _expectInvalid("maxRevealBlocks", 1_000_001);
        market.setMaxRevealBlocks(1_000_001);
        _expectInvalid("proofVerifyGas", 49_999);
        market.setProofVerifyGas(49_999);
        _expectInvalid("proofVerifyGas", 5_000_001);
        market.setProofVerifyGas(5_000_001);
        _expectInvalid("maxCallbackGas", 5_000_001);
        market.setMaxCallbackGas(5_000_001);
        _expectInvalid("maxCandidates", 0);
        market.setMaxCandidates(0);
        _expectInvalid("maxCandidates", 513);
        market.setMaxCandidates(513);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("registry"), uint256(0)));
        new InferenceMarket(INodeRegistry(address(0)), models, owner);
    }

    function _expectInvalid(bytes32 name, uint256 value) internal {
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, name, value));
    }

    function test_revert_governance_notOwner() public {
        bytes memory err = abi.encodeWithSignature("OwnableUnauthorizedAccount(address)", address(0xBAD));
        vm.startPrank(address(0xBAD));
        vm.expectRevert(err);
        market.setMinFee(1);
        vm.expectRevert(err);
        market.setMaxReplicas(1);
        vm.expectRevert(err);
        market.setMinCommitBlocks(1);
        vm.expectRevert(err);
        market.setMaxCommitBlocks(1);
        vm.expectRevert(err);
        market.setMinRevealBlocks(1);
        vm.expectRevert(err);
        market.setMaxRevealBlocks(1);
        vm.expectRevert(err);
        market.setSlashAmount(1);
        vm.expectRevert(err);
        market.setProofVerifyGas(100_000);
        vm.expectRevert(err);
        market.setMaxCallbackGas(1);
        vm.expectRevert(err);
        market.setMaxCandidates(1);
        vm.stopPrank();
    }

    function test_ownable2Step_transfer() public {
        vm.prank(owner);
        market.transferOwnership(address(0xD00D));
        vm.assertEq(market.owner(), owner, "pending only");
        vm.prank(address(0xD00D));
        market.acceptOwnership();
        vm.assertEq(market.owner(), address(0xD00D), "accepted");
    }

    function test_requestBinding_formula() public view {
        uint256 b = market.requestBinding(7, address(0xABC));
        vm.assertEq(b, uint256(keccak256(abi.encode(uint256(7), address(0xABC)))) % FIELD, "binding");
        vm.assertTrue(b < FIELD, "in field");
    }
}
