// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {console} from "./utils/Vm.sol";
import {StageCourt} from "../src/StageCourt.sol";
import {IStageCourt} from "../src/interfaces/IStageCourt.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {IModelRegistry} from "../src/interfaces/IModelRegistry.sol";
import {MockVerifier} from "./utils/MockVerifier.sol";

/// @notice A challenger contract whose receive() re-enters the court (withdraw, then dispute) once.
contract ReentrantChallenger {
    StageCourt internal immutable court;
    bool public reentryBlocked;
    bool internal armed;

    constructor(StageCourt c) {
        court = c;
    }

    function open(
        address stage,
        bytes32 modelId,
        uint16 lo,
        uint16 hi,
        bytes32 inputHash,
        bytes32 claimed,
        bytes calldata sig
    ) external payable returns (uint256 id) {
        (id,) = court.dispute{value: msg.value}(stage, modelId, lo, hi, inputHash, claimed, sig, "bafkreistageinput");
    }

    function pull() external {
        armed = true;
        court.withdraw();
    }

    receive() external payable {
        if (!armed) return;
        armed = false;
        try court.withdraw() {} catch {
            reentryBlocked = true;
        }
    }
}

/// @notice StageCourt against the real InferenceMarket + NodeRegistry + ModelRegistry: the jury is drawn, commits
///         and reveals here, the market's callback resolves the dispute, the registry slashes. Attack-first.
contract StageCourtTest is Fixture {
    StageCourt internal court;
    bytes32 internal lm; // a 30-layer unproven model (SmolLM2-like)
    uint256 internal constant STAGE_PK = 0x57A6E;
    uint256 internal constant OTHER_PK = 0xBADBAD;
    address internal stage;
    address internal challenger = address(0xC4A11);
    address[] internal jurors;

    bytes32 internal constant TRUE_OUT = bytes32(uint256(0x7777));
    bytes32 internal constant LIE_OUT = bytes32(uint256(0x6666));
    uint16 internal constant LO = 10;
    uint16 internal constant HI = 20;

    function setUp() public override {
        super.setUp();
        IModelRegistry.ModelInput memory m = _modelInput("smollm2-135m", address(0), 0, false);
        m.numLayers = 30;
        vm.prank(publisher);
        lm = models.registerModel(m);
        court = new StageCourt(owner, address(nodes), address(market));
        vm.prank(owner);
        nodes.setCourt(address(court));
        stage = vm.addr(STAGE_PK);
        _registerStage(stage, _stageShards(lm, LO, HI));
        jurors = _registerNodes(5, lm); // full-model nodes (the only ones the market draws), next epoch
    }

    // ------------------------------------------------------------------ helpers

    function _stageShards(bytes32 id, uint16 lo, uint16 hi) internal pure returns (INodeRegistry.ModelShard[] memory s) {
        s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: id, layerStart: lo, layerEnd: hi});
    }

    function _registerStage(address a, INodeRegistry.ModelShard[] memory shards) internal {
        vm.deal(a, STAKE);
        vm.prank(a);
        nodes.register{value: STAKE}("http://stage.local:9000", shards);
    }

    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        bytes32 eth = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, eth);
        return abi.encodePacked(r, s, v);
    }

    function _receiptSig(uint256 pk, bytes32 out) internal view returns (bytes memory) {
        return _sign(pk, court.receiptDigest(lm, LO, HI, INPUT_HASH, out));
    }

    function _dispute(address who, bytes32 claimed) internal returns (uint256 id, uint256 rid) {
        uint256 cost = court.disputeCost(lm);
        vm.deal(who, who.balance + cost);
        bytes memory sig = _receiptSig(STAGE_PK, claimed);
        vm.prank(who);
        (id, rid) = court.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, claimed, sig, "bafkreistageinput");
    }

    /// @dev The jury draws, everyone commits and reveals `out`, finalize runs the court's callback.
    function _juryAnswers(uint256 rid, bytes32 out) internal returns (address[] memory c) {
        c = _draw(rid);
        _commitAll(rid, c, out);
        _revealAll(rid, c, out);
        market.finalize(rid); // callbackGasLimit > 0: the last reveal never settles by itself
    }

    /// @dev Court solvency: what it holds or is owed by the market covers every credit and open bond.
    function _assertSolvent() internal view {
        vm.assertEq(
            address(court).balance + market.withdrawable(address(court)),
            court.totalWithdrawable() + court.openBonds(),
            "court balance + market credit == credits + open bonds"
        );
    }

    // ------------------------------------------------------------------ verdicts with a real jury

    function test_lyingStage_isSlashed_byRealJury() public {
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        vm.assertEq(court.disputeOfRequest(rid), id, "request -> dispute");
        IStageCourt.Dispute memory d = court.getDispute(id);
        vm.assertEq(uint256(d.state), uint256(IStageCourt.State.Open), "open");
        vm.assertEq(market.getRequest(rid).requester, address(court), "the court is the requester");
        uint256 bond = d.bond;
        uint256 stakeBefore = nodes.stakeOf(stage);
        uint256 burnedBefore = nodes.totalBurned();
        _assertSolvent();

        _juryAnswers(rid, TRUE_OUT);

        d = court.getDispute(id);
        vm.assertEq(uint256(d.state), uint256(IStageCourt.State.StageWrong), "stage wrong");
        uint256 slashed = court.slashAmount(); // 25% of minStake (the registry's cap)
        vm.assertEq(slashed, 0.25 ether, "slash amount");
        vm.assertEq(nodes.stakeOf(stage), stakeBefore - slashed, "stage slashed");
        vm.assertEq(nodes.totalBurned() - burnedBefore, slashed / 2, "half burned");
        vm.assertEq(court.withdrawable(challenger), bond + slashed / 2, "challenger: bond + reward");
        vm.assertEq(court.withdrawable(stage), 0, "stage gets nothing");
        _assertSolvent();

        uint256 before = challenger.balance;
        vm.prank(challenger);
        court.withdraw();
        vm.assertEq(challenger.balance - before, bond + slashed / 2, "paid out");
        vm.assertEq(address(court).balance, 0, "court empty");
        _assertSolvent();
    }

    function test_honestStage_griefingChallengerLosesBond() public {
        uint256 cost = court.disputeCost(lm);
        (uint256 id, uint256 rid) = _dispute(challenger, TRUE_OUT); // the receipt is right
        uint256 bond = court.getDispute(id).bond;
        vm.assertGe(bond, cost - bond, "bond >= jury cost");
        uint256 stakeBefore = nodes.stakeOf(stage);

        _juryAnswers(rid, TRUE_OUT);

        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.StageRight), "stage right");
        vm.assertEq(nodes.stakeOf(stage), stakeBefore, "honest stake unchanged");
        vm.assertEq(court.withdrawable(stage), bond, "bond to the stage");
        vm.assertEq(court.withdrawable(challenger), 0, "griefer gets nothing back");
        _assertSolvent();
        vm.prank(stage);
        court.withdraw();
        vm.assertEq(stage.balance, bond, "stage paid");
    }

    function test_invalidInput_bondGoesToStage() public {
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        uint256 bond = court.getDispute(id).bond;
        uint256 stakeBefore = nodes.stakeOf(stage);
        _juryAnswers(rid, INVALID);
        vm.assertEq(uint256(market.statusOf(rid)), uint256(IInferenceMarket.Status.InvalidInput), "market");
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.InputInvalid), "input invalid");
        vm.assertEq(nodes.stakeOf(stage), stakeBefore, "no slash");
        vm.assertEq(court.withdrawable(stage), bond, "bond to the stage");
        _assertSolvent();
    }

    function test_attack_stageUnbondsToEscape_stakeHeldUntilVerdict() public {
        vm.prank(stage);
        nodes.requestUnbond(); // the stage lies, then tries to leave before the jury rules
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        vm.assertEq(nodes.openAssignments(stage), 1, "held");
        vm.roll(nodes.withdrawableAt(stage) + 1);
        vm.prank(stage);
        vm.expectPartialRevert(INodeRegistry.StillAssigned.selector);
        nodes.withdrawStake();
        _juryAnswers(rid, TRUE_OUT);
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.StageWrong), "judged");
        vm.assertEq(nodes.openAssignments(stage), 0, "released at the verdict");
        uint256 before = stage.balance;
        vm.prank(stage);
        nodes.withdrawStake();
        vm.assertEq(stage.balance - before, STAKE - court.slashAmount(), "leaves with the slashed stake only");
        // only the court holds or releases
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotCourt.selector, address(this)));
        nodes.holdForDispute(stage);
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotCourt.selector, address(market)));
        nodes.releaseDispute(stage);
    }

    function test_attack_sabotagedInputDoesNotLockTheReceipt() public {
        // the stage's accomplice disputes the false receipt with a bad input payload first...
        address accomplice = address(0xACC);
        (uint256 id, uint256 rid) = _dispute(accomplice, LIE_OUT);
        _juryAnswers(rid, INVALID);
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.InputInvalid), "input invalid");
        // ...which does not make the receipt immune: an honest challenger disputes it with the real input
        (uint256 id2, uint256 rid2) = _dispute(challenger, LIE_OUT);
        _juryAnswers(rid2, TRUE_OUT);
        vm.assertEq(uint256(court.getDispute(id2).state), uint256(IStageCourt.State.StageWrong), "slashed");
        vm.assertEq(nodes.stakeOf(stage), STAKE - court.slashAmount(), "once");
        _assertSolvent();
    }

    function test_noQuorum_refundsChallenger_andReceiptStaysDisputable() public {
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        IStageCourt.Dispute memory d = court.getDispute(id);
        address[] memory c = _draw(rid);
        // two jurors disagree, the third never shows: no output reaches quorum 2
        _commit(rid, c[0], TRUE_OUT);
        _commit(rid, c[1], OUT_B);
        _rollPastCommit(rid);
        _reveal(rid, c[0], TRUE_OUT);
        _reveal(rid, c[1], OUT_B);
        _rollPastReveal(rid);
        uint256 stakeBefore = nodes.stakeOf(stage);
        market.finalize(rid);
        vm.assertEq(uint256(market.statusOf(rid)), uint256(IInferenceMarket.Status.NoQuorum), "market");
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.NoDecision), "no decision");
        vm.assertEq(nodes.stakeOf(stage), stakeBefore, "nobody judged: no slash");
        uint256 fee = market.getRequest(rid).fee;
        uint256 refund = fee - (fee / 3) * 2; // two in-time revealers were paid fee / replicas each
        vm.assertEq(court.withdrawable(challenger), d.bond + refund, "bond + jury refund");
        vm.assertEq(market.withdrawable(address(court)), refund, "the refund waits at the market");
        _assertSolvent();

        // the withdrawal pulls the court's market credit
        uint256 before = challenger.balance;
        vm.prank(challenger);
        court.withdraw();
        vm.assertEq(challenger.balance - before, d.bond + refund, "paid");
        vm.assertEq(market.withdrawable(address(court)), 0, "market credit pulled");
        _assertSolvent();

        // nobody judged the receipt: it may be disputed again, and then the stage is slashed
        (uint256 id2, uint256 rid2) = _dispute(challenger, LIE_OUT);
        vm.assertEq(id2, id + 1, "second dispute");
        _juryAnswers(rid2, TRUE_OUT);
        vm.assertEq(uint256(court.getDispute(id2).state), uint256(IStageCourt.State.StageWrong), "judged now");
        _assertSolvent();
    }

    function test_expiredJury_refundsChallenger_everything() public {
        // every full-model node unbonds: the jury can never be drawn
        for (uint256 i; i < jurors.length; ++i) {
            vm.prank(jurors[i]);
            nodes.requestUnbond();
        }
        uint256 spent = court.disputeCost(lm);
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.NotExpired.selector, id, IInferenceMarket.Status.Pending));
        court.resolveExpired(id);
        vm.roll(market.getRequest(rid).drawDeadline + 1);
        market.finalize(rid); // anyone expires the undrawn request: full refund to the court
        vm.assertEq(market.withdrawable(address(court)), spent - court.getDispute(id).bond, "jury refund waits");
        court.resolveExpired(id);
        vm.assertEq(uint256(market.statusOf(rid)), uint256(IInferenceMarket.Status.Expired), "expired");
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.NoDecision), "no decision");
        vm.assertEq(court.withdrawable(challenger), spent, "bond + fee + deposit back");
        _assertSolvent();
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.NotOpen.selector, id, IStageCourt.State.NoDecision));
        court.resolveExpired(id);
        uint256 before = challenger.balance;
        vm.prank(challenger);
        court.withdraw();
        vm.assertEq(challenger.balance - before, spent, "all of it");
        vm.assertEq(address(court).balance, 0, "court empty");
    }

    /// @dev A callback that fails (here: the registry's slash made to revert) leaves the dispute Open with every
    ///      wei in place; the market's redeliver runs it again and the verdict lands.
    function test_failedCallback_strandsNothing_redeliverResolves() public {
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        address[] memory c = _draw(rid);
        _commitAll(rid, c, TRUE_OUT);
        _revealAll(rid, c, TRUE_OUT);
        vm.mockCallRevert(address(nodes), abi.encodeWithSelector(INodeRegistry.slash.selector), "registry down");
        market.finalize(rid);
        vm.assertTrue(market.getRequest(rid).callbackFailed, "callback failed");
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.Open), "still open");
        vm.assertEq(nodes.openAssignments(stage), 1, "stake still held");
        _assertSolvent();
        vm.clearMockedCalls();
        market.redeliver(rid);
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.StageWrong), "resolved");
        vm.assertEq(nodes.stakeOf(stage), STAKE - court.slashAmount(), "slashed");
        vm.assertEq(nodes.openAssignments(stage), 0, "released");
        _assertSolvent();
    }

    function test_resolveExpired_refusesADrawnRequest() public {
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        _draw(rid);
        vm.expectRevert(
            abi.encodeWithSelector(IStageCourt.NotExpired.selector, id, IInferenceMarket.Status.Committing)
        );
        court.resolveExpired(id);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.UnknownDispute.selector, 99));
        court.resolveExpired(99);
    }

    /// @dev Any jury outcome (unanimous true / false / invalid, a split with k no-shows, or expiry) leaves the court
    ///      solvent, the stage's hold released, and pays out exactly bond + jury cost + slash reward in total.
    function testFuzz_anyOutcome_keepsCourtSolvent(uint8 kind, uint8 shows) public {
        kind = uint8(bound(kind, 0, 4));
        uint256 stakeBefore = nodes.stakeOf(stage);
        uint256 spent = court.disputeCost(lm);
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        if (kind == 4) {
            for (uint256 i; i < jurors.length; ++i) {
                vm.prank(jurors[i]);
                nodes.requestUnbond(); // nobody left to draw
            }
            vm.roll(market.getRequest(rid).drawDeadline + 1);
            market.finalize(rid);
            court.resolveExpired(id);
        } else if (kind == 3) {
            address[] memory c = _draw(rid);
            uint256 n = bound(shows, 0, 2); // at most two revealers, each with its own output: no quorum
            for (uint256 i; i < n; ++i) {
                _commit(rid, c[i], bytes32(uint256(0x100 + i)));
            }
            _rollPastCommit(rid);
            for (uint256 i; i < n; ++i) {
                _reveal(rid, c[i], bytes32(uint256(0x100 + i)));
            }
            _rollPastReveal(rid);
            market.finalize(rid);
        } else {
            _juryAnswers(rid, kind == 0 ? TRUE_OUT : kind == 1 ? LIE_OUT : INVALID);
        }
        IStageCourt.Dispute memory d = court.getDispute(id);
        vm.assertTrue(d.state != IStageCourt.State.Open, "decided");
        vm.assertEq(nodes.openAssignments(stage), 0, "hold released");
        _assertSolvent();
        uint256 slashed = stakeBefore - nodes.stakeOf(stage);
        vm.assertEq(slashed, d.state == IStageCourt.State.StageWrong ? court.slashAmount() : 0, "slash iff wrong");
        // everything the court owes is withdrawable, by the challenger or the stage
        uint256 paid;
        address[2] memory who = [challenger, stage];
        for (uint256 i; i < 2; ++i) {
            uint256 owed = court.withdrawable(who[i]);
            if (owed == 0) continue;
            uint256 b = who[i].balance;
            vm.prank(who[i]);
            court.withdraw();
            paid += who[i].balance - b;
        }
        vm.assertEq(address(court).balance, 0, "court emptied");
        vm.assertEq(market.withdrawable(address(court)), 0, "market credit pulled");
        vm.assertLe(paid, spent + slashed / 2, "never pays more than it took plus the reward");
        if (d.state == IStageCourt.State.NoDecision && kind == 4) vm.assertEq(paid, spent, "expiry: all back");
    }

    // ------------------------------------------------------------------ admission attacks

    function test_attack_forgedSignature() public {
        uint256 cost = court.disputeCost(lm);
        vm.deal(challenger, cost);
        bytes memory forged = _receiptSig(OTHER_PK, LIE_OUT);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.BadSignature.selector, vm.addr(OTHER_PK), stage));
        court.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, forged, "bafkreistageinput");
        // the stage's signature over another output does not cover this claim
        bytes memory other = _receiptSig(STAGE_PK, TRUE_OUT);
        vm.prank(challenger);
        vm.expectPartialRevert(IStageCourt.BadSignature.selector);
        court.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, other, "bafkreistageinput");
        // a malformed signature
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.BadSignature.selector, address(0), stage));
        court.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, hex"1234", "bafkreistageinput");
    }

    function test_attack_receiptReplayedOnAnotherChain() public {
        bytes memory sig = _receiptSig(STAGE_PK, LIE_OUT);
        vm.chainId(31338);
        uint256 cost = court.disputeCost(lm);
        vm.deal(challenger, cost);
        vm.prank(challenger);
        vm.expectPartialRevert(IStageCourt.BadSignature.selector);
        court.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
    }

    function test_attack_shardNotHeld() public {
        uint256 cost = court.disputeCost(lm);
        vm.deal(challenger, cost);
        // signed by the stage, but for layers 0..10 it does not serve
        bytes memory sig = _sign(STAGE_PK, court.receiptDigest(lm, 0, 10, INPUT_HASH, LIE_OUT));
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.ShardNotHeld.selector, stage, lm, uint16(0), uint16(10)));
        court.dispute{value: cost}(stage, lm, 0, 10, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
        // an unregistered signer
        address stranger = vm.addr(OTHER_PK);
        bytes memory sig2 = _receiptSig(OTHER_PK, LIE_OUT);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.ShardNotHeld.selector, stranger, lm, LO, HI));
        court.dispute{value: cost}(stranger, lm, LO, HI, INPUT_HASH, LIE_OUT, sig2, "bafkreistageinput");
    }

    function test_attack_sameReceiptTwice() public {
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        bytes32 digest = court.receiptDigest(lm, LO, HI, INPUT_HASH, LIE_OUT);
        vm.assertEq(court.disputeOfReceipt(digest), id, "receipt -> dispute");
        uint256 cost = court.disputeCost(lm);
        vm.deal(address(0xD00D), cost);
        bytes memory sig = _receiptSig(STAGE_PK, LIE_OUT);
        vm.prank(address(0xD00D));
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.AlreadyDisputed.selector, digest, id));
        court.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
        // judged: no double jeopardy either
        _juryAnswers(rid, TRUE_OUT);
        uint256 stakeAfter = nodes.stakeOf(stage);
        vm.prank(address(0xD00D));
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.AlreadyDisputed.selector, digest, id));
        court.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
        vm.assertEq(nodes.stakeOf(stage), stakeAfter, "slashed once");
    }

    function test_attack_wrongValue() public {
        uint256 cost = court.disputeCost(lm);
        vm.assertEq(cost, court.bondFor(lm) + 3 * 0.001 ether + uint256(court.JURY_CALLBACK_GAS()) * 2 gwei, "cost");
        vm.deal(challenger, cost + 1);
        bytes memory sig = _receiptSig(STAGE_PK, LIE_OUT);
        vm.startPrank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.WrongValue.selector, cost - 1, cost));
        court.dispute{value: cost - 1}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.WrongValue.selector, cost + 1, cost));
        court.dispute{value: cost + 1}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
        vm.stopPrank();
    }

    function test_attack_callbackIsMarketOnly() public {
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.NotMarket.selector, challenger));
        court.onInferenceResult(rid, IInferenceMarket.Status.Accepted, TRUE_OUT);
        vm.prank(stage);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.NotMarket.selector, stage));
        court.onInferenceResult(rid, IInferenceMarket.Status.Accepted, LIE_OUT);
        // a market call about a request that is not a dispute is ignored (never reverts)
        vm.prank(address(market));
        court.onInferenceResult(rid + 7, IInferenceMarket.Status.Accepted, TRUE_OUT);
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.Open), "still open");
        // nobody pays the court but the market and the registry
        vm.deal(challenger, 1 ether);
        vm.prank(challenger);
        (bool ok,) = address(court).call{value: 1 ether}("");
        vm.assertFalse(ok, "unexpected payment refused");
    }

    function test_attack_reentrancyThroughWithdraw() public {
        ReentrantChallenger attacker = new ReentrantChallenger(court);
        uint256 cost = court.disputeCost(lm);
        bytes memory sig = _receiptSig(STAGE_PK, LIE_OUT);
        uint256 id = attacker.open{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, sig);
        _juryAnswers(court.getDispute(id).requestId, TRUE_OUT);
        uint256 credit = court.withdrawable(address(attacker));
        vm.assertGe(credit, 1, "attacker is owed bond + reward");
        // a second, honest creditor so the court holds more than the attacker's share
        (uint256 id2, uint256 rid2) = _dispute(address(0xD00D), TRUE_OUT);
        _juryAnswers(rid2, TRUE_OUT);
        vm.assertEq(uint256(court.getDispute(id2).state), uint256(IStageCourt.State.StageRight), "second");
        uint256 courtBefore = address(court).balance;
        attacker.pull();
        vm.assertTrue(attacker.reentryBlocked(), "re-entry reverted");
        vm.assertEq(address(attacker).balance, credit, "paid exactly once");
        vm.assertEq(address(court).balance, courtBefore - credit, "court lost only the credit");
        _assertSolvent();
        vm.expectRevert(IStageCourt.NothingToWithdraw.selector);
        attacker.pull();
    }

    function test_attack_courtMustBeTheRegistrysCourt() public {
        StageCourt rogue = new StageCourt(owner, address(nodes), address(market));
        uint256 cost = rogue.disputeCost(lm);
        vm.deal(challenger, cost);
        bytes memory sig = _sign(STAGE_PK, rogue.receiptDigest(lm, LO, HI, INPUT_HASH, LIE_OUT));
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.CourtNotEnabled.selector, address(court)));
        rogue.dispute{value: cost}(stage, lm, LO, HI, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
        // and the registry takes slashes from the market and its one court only
        vm.prank(address(rogue));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, address(rogue)));
        nodes.slash(stage, 1 ether, 1, 0);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.CourtAlreadySet.selector, address(court)));
        nodes.setCourt(address(rogue));
    }

    function test_attack_provenModelRefused() public {
        MockVerifier v = new MockVerifier(true);
        bytes32 proven = _registerModel(publisher, "proven", address(v), 1, false);
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](2);
        s[0] = INodeRegistry.ModelShard({modelId: lm, layerStart: LO, layerEnd: HI});
        s[1] = INodeRegistry.ModelShard({modelId: proven, layerStart: 0, layerEnd: 1});
        vm.prank(stage);
        nodes.setShards(s);
        uint256 cost = court.disputeCost(proven);
        vm.deal(challenger, cost);
        bytes memory sig = _sign(STAGE_PK, court.receiptDigest(proven, 0, 1, INPUT_HASH, LIE_OUT));
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.ProvenModel.selector, proven, uint8(1)));
        court.dispute{value: cost}(stage, proven, 0, 1, INPUT_HASH, LIE_OUT, sig, "bafkreistageinput");
    }

    // ------------------------------------------------------------------ governance and wiring

    function test_governance_bounds() public {
        vm.expectRevert();
        court.setMinBond(1 ether); // not the owner
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.InvalidParameter.selector, bytes32("minBond"), 1));
        court.setMinBond(1);
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.InvalidParameter.selector, bytes32("minBond"), 101 ether));
        court.setMinBond(101 ether);
        court.setMinBond(0.5 ether);
        vm.stopPrank();
        vm.assertEq(court.bondFor(lm), 0.5 ether, "bond = minBond above the jury cost");
        vm.prank(owner);
        court.setMinBond(0.001 ether);
        vm.assertEq(court.bondFor(lm), court.disputeCost(lm) / 2, "bond = jury cost when minBond is lower");
        IInferenceMarket.RequestParams memory p = court.juryParams();
        vm.assertEq(p.replicas, 3, "replicas");
        vm.assertEq(p.quorum, 2, "quorum");
        vm.assertEq(p.commitBlocks, 40, "commit window: the court's floor");
        vm.prank(owner);
        market.setMinCommitBlocks(100);
        vm.assertEq(court.juryParams().commitBlocks, 100, "commit window: the market's minimum when longer");
        vm.expectRevert(abi.encodeWithSelector(IStageCourt.MarketRegistryMismatch.selector, address(nodes), address(0xBEEF)));
        new StageCourt(owner, address(0xBEEF), address(market));
        vm.expectRevert(IStageCourt.ZeroAddress.selector);
        new StageCourt(owner, address(0), address(market));
    }

    function test_receiptDigest_layout() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("verinfer.stage-receipt.v1"), block.chainid, address(nodes), lm, LO, HI, INPUT_HASH, LIE_OUT
            )
        );
        vm.assertEq(court.receiptDigest(lm, LO, HI, INPUT_HASH, LIE_OUT), expected, "digest");
        vm.assertEq(court.RECEIPT_TYPEHASH(), keccak256("verinfer.stage-receipt.v1"), "typehash");
    }

    // ------------------------------------------------------------------ gas

    /// @dev The worst case the callback gas must cover: StageWrong, the stage also holding 3 full-model shards (the
    ///      slash rewrites 3 sortition trees). Measured directly (cold court slots are warm here, so the margin
    ///      to JURY_CALLBACK_GAS must stay wide) and through the market's own callback, which gets exactly the limit.
    function test_callbackGas_worstCase() public {
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](4);
        s[0] = INodeRegistry.ModelShard({modelId: lm, layerStart: LO, layerEnd: HI});
        for (uint256 i = 1; i < 4; ++i) {
            bytes32 full = _registerModel(publisher, string(abi.encodePacked("full-", vm.toString(i))), address(0), 0, false);
            s[i] = INodeRegistry.ModelShard({modelId: full, layerStart: 0, layerEnd: type(uint16).max});
        }
        vm.prank(stage);
        nodes.setShards(s);
        (uint256 id, uint256 rid) = _dispute(challenger, LIE_OUT);
        address[] memory c = _draw(rid);
        _commitAll(rid, c, TRUE_OUT);
        _revealAll(rid, c, TRUE_OUT);

        uint256 snap = vm.snapshotState();
        vm.cool(address(court)); // as in a real finalize transaction: the court's and registry's slots are cold
        vm.cool(address(nodes));
        vm.prank(address(market));
        uint256 g = gasleft();
        court.onInferenceResult(rid, IInferenceMarket.Status.Accepted, TRUE_OUT);
        uint256 used = g - gasleft();
        console.log("StageCourt callback gas, StageWrong, 3 trees", used);
        vm.assertLe(used * 2, court.JURY_CALLBACK_GAS(), "JURY_CALLBACK_GAS >= 2x the measured worst case");
        vm.revertToState(snap);

        market.finalize(rid);
        vm.assertFalse(market.getRequest(rid).callbackFailed, "the market's callback did not fail");
        vm.assertEq(uint256(court.getDispute(id).state), uint256(IStageCourt.State.StageWrong), "resolved");
        vm.assertEq(nodes.stakeOf(stage), STAKE - court.slashAmount(), "slashed");
        vm.assertTrue(nodes.isEligible(stage, s[1].modelId), "1.75 ether >= minStake: still drawn for full models");
    }
}
