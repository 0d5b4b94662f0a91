// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "../utils/Preview.sol";
import {KitTest} from "./KitTest.sol";
import {VerinferConsumer, VerinferHasher, IInferenceMarket, IModelRegistry} from "../../src/kit/VerinferConsumer.sol";
import {DigitGate} from "../../src/kit/examples/DigitGate.sol";
import {ModelRegistry} from "../../src/ModelRegistry.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {InferenceMarket} from "../../src/InferenceMarket.sol";
import {AttestationRegistry} from "../../src/AttestationRegistry.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";
import {Groth16VerifierFixture3} from "../fixtures/Groth16VerifierFixture3.sol";

/// @notice A consumer whose failure handling burns gas: its first callback runs out of gas.
contract HungryConsumer is VerinferConsumer {
    uint256 public fulfilled;
    uint256 public lastCls;
    IInferenceMarket.Status public lastStatus;
    mapping(uint256 => uint256) public scratch;

    constructor(IInferenceMarket m, VerinferHasher h) VerinferConsumer(m, h) {}

    function ask(bytes32 modelId, int256[] calldata input, IInferenceMarket.RequestParams calldata p)
        external
        payable
        returns (uint256)
    {
        return _requestVector(modelId, input, p);
    }

    function _fulfill(uint256, IInferenceMarket.Status status, bytes32, uint256 cls, int256[] memory, bool)
        internal
        override
    {
        for (uint256 i = 0; i < 5; i++) {
            scratch[i] = block.number + i + 1; // 5 fresh slots: ~110k gas
        }
        fulfilled += 1;
        lastCls = cls;
        lastStatus = status;
    }

    uint256 public settledCalls;

    function _onSettled(uint256, IInferenceMarket.Status, bytes32) internal override {
        settledCalls += 1;
    }

    function withdrawRefundsForTest(address payable to) external returns (uint256) {
        return _withdrawRefunds(to);
    }
}

/// @notice The kit against the real V2 market: on-chain input hash, delivery checked against the settled hash,
///         acting on the class, refusals, refunds, and the failed-callback retry path.
contract VerinferConsumerTest is KitTest {
    address internal owner = address(0xA11CE);
    address internal publisher = address(0xB0B);
    address internal user = address(0xCAFE);
    uint64 internal constant EPOCH = 20;

    ModelRegistry internal models;
    NodeRegistry internal nodes;
    InferenceMarket internal market;
    VerinferHasher internal hasher;
    bytes32 internal modelId;
    address[] internal nodeList;
    DigitGate internal gate;

    function setUp() public {
        vm.roll(100);
        models = new ModelRegistry();
        AttestationRegistry att = new AttestationRegistry(owner);
        nodes = new NodeRegistry(owner, address(models), address(att), 1 ether, 20, EPOCH);
        market = new InferenceMarket(owner, address(nodes), address(models), 1024);
        vm.prank(owner);
        nodes.setMarket(address(market));
        vm.prank(publisher);
        modelId = models.registerModel(
            IModelRegistry.ModelInput({
                name: "digits-mlp",
                weightsCid: "bafkreiweights",
                commitment: 777,
                verifier: address(0),
                proofMode: 0,
                executionProfileHash: keccak256("profile"),
                shardLayoutHash: keccak256("layout"),
                numLayers: 2,
                inputBits: 8,
                outputBits: 32,
                requiresTee: false
            })
        );
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 0, layerEnd: type(uint16).max});
        for (uint256 i = 0; i < 3; i++) {
            address n = address(uint160(0x1000 + i));
            nodeList.push(n);
            vm.deal(n, 2 ether);
            vm.prank(n);
            nodes.register{value: 2 ether}("http://node.local", s);
        }
        vm.roll(100 + 2 * EPOCH); // the nodes are in the epoch-start stake snapshot
        hasher = deployHasher();
        gate = new DigitGate(market, hasher, modelId, 7, false);
    }

    // ------------------------------------------------------------------ helpers

    function logitsFor(uint256 cls) internal pure returns (int256[] memory l) {
        l = new int256[](10);
        for (uint256 i = 0; i < 10; i++) {
            l[i] = i == cls ? int256(5000) : -int256(i) * 300 - 1;
        }
    }

    function pixels(uint256 seed) internal pure returns (int8[64] memory p) {
        int256[] memory xs = digitsImage(seed);
        for (uint256 i = 0; i < 64; i++) {
            p[i] = int8(xs[i]);
        }
    }

    function knock(int8[64] memory p) internal returns (uint256 id) {
        uint256 total = gate.quoteTotal(modelId, gate.params());
        vm.deal(user, total);
        vm.prank(user);
        id = gate.knock{value: total}(p);
    }

    function member(uint256 id) internal returns (address) {
        vm.roll(block.number + 2);
        return previewCommittee(market, id)[0];
    }

    /// One-node committee: commit, reveal `out`, finalize (the callback runs inside finalize).
    function settle(uint256 id, bytes32 out) internal {
        address n = member(id);
        bytes32 salt = keccak256(abi.encode("salt", id));
        vm.prank(n);
        market.commit(id, keccak256(abi.encode(id, out, salt, n)));
        vm.prank(n);
        market.reveal(id, out, salt, "bafkreioutput");
        market.finalize(id);
    }

    // ------------------------------------------------------------------ tests

    function test_knock_hashesTheInputOnChainAndPaysTheQuote() public {
        int8[64] memory p = pixels(1);
        uint256 total = gate.quoteTotal(modelId, gate.params());
        (uint256 fee, uint256 deposit) = market.quote(modelId, gate.params());
        vm.assertEq(total, fee + deposit, "quoteTotal = fee + callback deposit");
        vm.deal(user, total);
        vm.recordLogs();
        vm.prank(user);
        uint256 g = gasleft();
        uint256 id = gate.knock{value: total}(p);
        emit log_named_uint("gas DigitGate.knock, first for the model (reads the registry)", g - gasleft());
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(r.requester, address(gate), "the gate is the requester");
        vm.assertEq(r.inputHash, hasher.hashVector(digitsImage(1), 8), "inputHash computed on-chain");
        vm.assertEq(r.fee, fee, "fee = quote");
        (bool open,,,, uint8 inBits, uint8 outBits,) = gate.pending(id);
        vm.assertTrue(open, "pending");
        vm.assertEq(uint256(inBits) * 100 + outBits, 832, "bit widths read from the registry");
        vm.assertEq(gate.askedBy(id), user, "asker recorded");
        vm.deal(user, total);
        vm.prank(user);
        g = gasleft();
        uint256 id2 = gate.knock{value: total}(pixels(21));
        emit log_named_uint("gas DigitGate.knock, later requests (bit widths cached)", g - gasleft());
        vm.assertEq(market.getRequest(id2).inputHash, hasher.hashVector(digitsImage(21), 8), "second input hashed");
    }

    function test_knock_belowQuoteIsRefused() public {
        uint256 total = gate.quoteTotal(modelId, gate.params());
        vm.deal(user, total - 1);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(DigitGate.PaymentBelowQuote.selector, total - 1, total));
        gate.knock{value: total - 1}(pixels(1));
        // the base refuses to request beyond the contract's balance, whatever the consumer checks
        HungryConsumer c = new HungryConsumer(market, hasher);
        IInferenceMarket.RequestParams memory p = gate.params();
        vm.expectRevert(abi.encodeWithSelector(VerinferConsumer.InsufficientBalance.selector, total - 1, total));
        c.ask{value: total - 1}(modelId, digitsImage(1), p);
    }

    function test_acceptedSeven_opensTheGate() public {
        uint256 id = knock(pixels(2));
        int256[] memory l = logitsFor(7);
        settle(id, hasher.hashVector(l, 32));
        vm.assertFalse(gate.opened(user), "nothing happens before the vector is opened");
        uint256 g = gasleft();
        gate.deliver(id, l);
        emit log_named_uint("gas DigitGate.deliver (10 int32 logits, Accepted, gate opens)", g - gasleft());
        vm.assertTrue(gate.opened(user), "the class 7 opened the gate");
        (bool fulfilled, IInferenceMarket.Status st, uint256 cls, bool proven) = gate.resultOf(id);
        vm.assertTrue(fulfilled, "fulfilled once");
        vm.assertEq(uint256(st), uint256(IInferenceMarket.Status.Accepted), "resultOf: status");
        vm.assertEq(cls, 7, "resultOf: class");
        vm.assertFalse(proven, "consensus-only model");
        vm.expectRevert(abi.encodeWithSelector(VerinferConsumer.AlreadyFulfilled.selector, id));
        gate.deliver(id, l);
    }

    function test_acceptedOtherDigit_refuses() public {
        uint256 id = knock(pixels(3));
        int256[] memory l = logitsFor(3);
        settle(id, hasher.hashVector(l, 32));
        gate.deliver(id, l);
        vm.assertFalse(gate.opened(user), "a 3 does not open a 7-gate");
    }

    function test_deliver_refusesAVectorThatIsNotTheSettledOne() public {
        uint256 id = knock(pixels(4));
        int256[] memory settled = logitsFor(2);
        settle(id, hasher.hashVector(settled, 32));
        int256[] memory forged = logitsFor(7);
        vm.expectRevert(
            abi.encodeWithSelector(
                VerinferConsumer.OutputMismatch.selector, id, hasher.hashVector(settled, 32), hasher.hashVector(forged, 32)
            )
        );
        gate.deliver(id, forged);
        vm.assertFalse(gate.opened(user), "a forged 7 opens nothing");
    }

    function test_deliver_beforeSettlement_andUnknownRequests_revert() public {
        uint256 id = knock(pixels(5));
        vm.expectRevert(
            abi.encodeWithSelector(VerinferConsumer.NotSettled.selector, id, IInferenceMarket.Status.Pending)
        );
        gate.deliver(id, logitsFor(7));
        vm.expectRevert(abi.encodeWithSelector(VerinferConsumer.UnknownRequest.selector, id + 1));
        gate.deliver(id + 1, logitsFor(7));
    }

    function test_onlyTheMarketCallsBack() public {
        uint256 id = knock(pixels(6));
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(VerinferConsumer.NotMarket.selector, user));
        gate.onInferenceResult(id, IInferenceMarket.Status.InvalidInput, bytes32(type(uint256).max));
    }

    function test_callbackGas_acceptedAndRefusal() public {
        uint256 id = knock(pixels(7));
        vm.prank(address(market));
        uint256 g = gasleft();
        gate.onInferenceResult(id, IInferenceMarket.Status.Accepted, bytes32(uint256(1)));
        uint256 accepted = g - gasleft();
        emit log_named_uint("gas onInferenceResult, Accepted (base: record only)", accepted);
        vm.assertLe(accepted, gate.BASE_CALLBACK_GAS(), "BASE_CALLBACK_GAS covers the Accepted callback");
        uint256 id2 = knock(pixels(8));
        vm.prank(address(market));
        g = gasleft();
        gate.onInferenceResult(id2, IInferenceMarket.Status.InvalidInput, bytes32(type(uint256).max));
        uint256 refused = g - gasleft();
        emit log_named_uint("gas onInferenceResult, InvalidInput (DigitGate refuses)", refused);
        vm.assertLe(refused, gate.params().callbackGasLimit, "DigitGate's callback gas covers a refusal");
    }

    function test_invalidInput_isActedOnInTheCallback() public {
        uint256 id = knock(pixels(9));
        settle(id, bytes32(type(uint256).max));
        vm.assertEq(uint256(market.getRequest(id).status), uint256(IInferenceMarket.Status.InvalidInput), "settled");
        vm.assertFalse(market.getRequest(id).callbackFailed, "callback fit its gas");
        (bool fulfilled, IInferenceMarket.Status st, uint256 cls,) = gate.resultOf(id);
        vm.assertTrue(fulfilled, "_fulfill ran inside the market's callback");
        vm.assertEq(uint256(st), uint256(IInferenceMarket.Status.InvalidInput), "resultOf: status");
        vm.assertEq(cls, gate.NO_CLASS(), "resultOf: no class");
        vm.assertFalse(gate.opened(user), "invalid input opens nothing");
    }

    function test_noQuorum_refundPulledToAChosenAddress() public {
        // 3 replicas, quorum 2, three different answers: NoQuorum
        IInferenceMarket.RequestParams memory p = IInferenceMarket.RequestParams({
            replicas: 3, quorum: 2, commitBlocks: 10, revealBlocks: 10, callbackGasLimit: 400_000, queueBlocks: 0
        });
        HungryConsumer c = new HungryConsumer(market, hasher);
        uint256 total = c.quoteTotal(modelId, p);
        vm.deal(address(this), total);
        uint256 id = c.ask{value: total}(modelId, digitsImage(10), p);
        vm.roll(block.number + 2);
        address[] memory committee = previewCommittee(market, id);
        vm.assertEq(committee.length, 3, "three members");
        for (uint256 i = 0; i < 3; i++) {
            bytes32 salt = keccak256(abi.encode("s", i));
            vm.prank(committee[i]);
            market.commit(id, keccak256(abi.encode(id, bytes32(i + 1), salt, committee[i])));
        }
        for (uint256 i = 0; i < 2; i++) {
            vm.prank(committee[i]);
            market.reveal(id, bytes32(i + 1), keccak256(abi.encode("s", i)), "bafkreix");
        }
        vm.roll(market.getRequest(id).finalizeAfter + 1);
        market.finalize(id);
        vm.assertEq(uint256(market.getRequest(id).status), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
        vm.assertEq(c.fulfilled(), 1, "fulfilled by the callback");
        vm.assertEq(c.settledCalls(), 1, "the _onSettled hook ran in the callback");
        uint256 credited = market.withdrawable(address(c));
        vm.assertTrue(credited > 0, "the unpaid seat is refunded to the consumer");
        address payable to = payable(address(0xBEEF));
        c.withdrawRefundsForTest(to);
        vm.assertEq(to.balance, credited, "refund pulled to the chosen address");
    }

    /// A proven-mode model (real snarkjs verifier fixture) with no proof: the market waits for the proof
    /// window, then settles by consensus with proven = false — a requireProof gate refuses even a 7.
    function test_provenModel_withoutProof_waitsForTheWindow_andRequireProofRefuses() public {
        vm.prank(publisher);
        bytes32 provenId = models.registerModel(
            IModelRegistry.ModelInput({
                name: "digits-mlp-proven",
                weightsCid: "bafkreiweights",
                commitment: 777,
                verifier: address(new Groth16VerifierFixture3()),
                proofMode: 1,
                executionProfileHash: keccak256("profile"),
                shardLayoutHash: keccak256("layout"),
                numLayers: 2,
                inputBits: 8,
                outputBits: 32,
                requiresTee: false
            })
        );
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: provenId, layerStart: 0, layerEnd: type(uint16).max});
        for (uint256 i = 0; i < nodeList.length; i++) {
            vm.prank(nodeList[i]);
            nodes.setShards(s);
        }
        vm.roll(block.number + 2 * EPOCH);
        DigitGate strict = new DigitGate(market, hasher, provenId, 7, true);
        uint256 total = strict.quoteTotal(provenId, strict.params());
        vm.deal(user, total);
        vm.prank(user);
        uint256 id = strict.knock{value: total}(pixels(13));
        int256[] memory l = logitsFor(7);
        bytes32 out = hasher.hashVector(l, 32);
        address n = member(id);
        bytes32 salt = keccak256(abi.encode("salt", id));
        vm.prank(n);
        market.commit(id, keccak256(abi.encode(id, out, salt, n)));
        vm.prank(n);
        market.reveal(id, out, salt, "bafkreioutput");
        uint64 finalizeAfter = market.getRequest(id).finalizeAfter;
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, finalizeAfter));
        market.finalize(id); // the proof window is still open
        vm.expectRevert(abi.encodeWithSelector(VerinferConsumer.NotSettled.selector, id, IInferenceMarket.Status.Revealing));
        strict.deliver(id, l);
        vm.roll(finalizeAfter + 1);
        market.finalize(id);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Accepted), "consensus settled it");
        vm.assertFalse(r.proven, "no proof arrived");
        vm.recordLogs();
        strict.deliver(id, l);
        vm.assertFalse(strict.opened(user), "requireProof: a consensus-only 7 does not open the gate");
    }

    function test_requestBelowTheQuote_isRefusedWithTheQuote() public {
        IInferenceMarket.RequestParams memory p = gate.params();
        (uint256 fee, uint256 deposit) = market.quote(modelId, p);
        vm.deal(user, fee + deposit);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooLow.selector, fee - 1, fee));
        market.requestInference{value: fee - 1 + deposit}(modelId, "bafkreiinput", bytes32(uint256(1)), p);
    }

    /// Issue 9: the first delivery runs out of gas, the retry succeeds.
    function test_retry_firstCallbackOutOfGas_thenRedelivered() public {
        HungryConsumer c = new HungryConsumer(market, hasher);
        IInferenceMarket.RequestParams memory p = IInferenceMarket.RequestParams({
            replicas: 1, quorum: 1, commitBlocks: 10, revealBlocks: 10, callbackGasLimit: 40_000, queueBlocks: 0
        });
        uint256 total = c.quoteTotal(modelId, p);
        vm.deal(address(this), total);
        uint256 id = c.ask{value: total}(modelId, digitsImage(11), p);
        vm.recordLogs();
        settle(id, bytes32(type(uint256).max)); // InvalidInput: _fulfill runs in the callback and needs ~110k
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertTrue(r.callbackFailed, "first delivery ran out of gas");
        vm.assertEq(c.fulfilled(), 0, "nothing was fulfilled");
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.InvalidInput), "settlement was not blocked");
        market.redeliver{gas: 1_000_000}(id);
        vm.assertEq(c.fulfilled(), 1, "redeliver at the caller's gas succeeded");
        vm.assertEq(uint256(c.lastStatus()), uint256(IInferenceMarket.Status.InvalidInput), "with the settled outcome");
        vm.assertFalse(market.getRequest(id).callbackFailed, "flag cleared");
    }

    /// The kit's own pull path: a failed callback is recovered by anyone calling deliver (at their gas).
    function test_retry_pullPathAfterFailedCallback() public {
        HungryConsumer c = new HungryConsumer(market, hasher);
        IInferenceMarket.RequestParams memory p = IInferenceMarket.RequestParams({
            replicas: 1, quorum: 1, commitBlocks: 10, revealBlocks: 10, callbackGasLimit: 40_000, queueBlocks: 0
        });
        uint256 total = c.quoteTotal(modelId, p);
        vm.deal(address(this), total);
        uint256 id = c.ask{value: total}(modelId, digitsImage(12), p);
        settle(id, bytes32(type(uint256).max));
        vm.assertTrue(market.getRequest(id).callbackFailed, "first delivery ran out of gas");
        c.deliver(id, new int256[](0));
        vm.assertEq(c.fulfilled(), 1, "pulled");
        vm.assertEq(c.lastCls(), c.NO_CLASS(), "no class without output");
    }
}
