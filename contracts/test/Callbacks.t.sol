// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {Vm} from "./utils/Vm.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {ExampleConsumer} from "../src/examples/ExampleConsumer.sol";
import {
    ConsumerBase,
    RecordingConsumer,
    RevertingConsumer,
    GasBurnerConsumer,
    ReturnBombConsumer,
    ReentrantConsumer,
    HungryConsumer
} from "./utils/Consumers.sol";

contract CallbacksTest is Fixture {
    event CallbackResult(uint256 indexed requestId, bool success);
    event ResultReceived(uint256 indexed requestId, IInferenceMarket.Status status, bytes32 outputHash);
    event RefundsForwarded(address indexed to, uint256 amount);

    uint32 internal constant CB_GAS = 300_000;

    function setUp() public override {
        super.setUp();
        _registerNodes(3, modelId);
    }

    function _cbParams() internal pure returns (IInferenceMarket.RequestParams memory p) {
        p = _params(3, 2);
        p.callbackGasLimit = CB_GAS;
    }

    function _deposit() internal view returns (uint256) {
        return uint256(CB_GAS) * market.parameters().callbackGasPrice;
    }

    function _ask(ConsumerBase c) internal returns (uint256 id) {
        vm.deal(address(this), FEE + _deposit());
        id = c.ask{value: FEE + _deposit()}(modelId, INPUT_HASH, _cbParams());
    }

    function _settleAccepted(uint256 id) internal {
        address[] memory c = _draw(id);
        for (uint256 i; i < 3; ++i) _commit(id, c[i], OUT_A);
        for (uint256 i; i < 3; ++i) _reveal(id, c[i], OUT_A);
    }

    function _assertSettled(uint256 id) internal view {
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "settled");
        vm.assertEq(market.totalEscrowed(), 0, "escrow released");
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "balance");
    }

    function test_callback_success_receivesExactGas() public {
        RecordingConsumer c = new RecordingConsumer(market);
        uint256 id = _ask(c);
        _settleAccepted(id);
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, true);
        market.finalize(id);
        vm.assertEq(c.calls(), 1, "called once");
        vm.assertEq(c.lastRequestId(), id, "id");
        vm.assertEq(uint256(c.lastStatus()), uint256(IInferenceMarket.Status.Accepted), "status");
        vm.assertEq(c.lastOutputHash(), OUT_A, "hash");
        // the consumer got callbackGasLimit (minus its own dispatch), never more
        vm.assertLe(c.gasAtEntry(), CB_GAS, "no more than the limit");
        vm.assertGe(c.gasAtEntry(), CB_GAS - 3_000, "about the limit");
        _assertSettled(id);
    }

    function test_callback_depositGoesToFinalizer() public {
        RecordingConsumer c = new RecordingConsumer(market);
        uint256 id = _ask(c);
        _settleAccepted(id);
        address keeper = address(0x4EE9);
        vm.prank(keeper);
        market.finalize(id);
        vm.assertEq(market.withdrawable(keeper), _deposit(), "finalizer paid for the callback gas");
        vm.assertEq(market.getRequest(id).callbackDeposit, _deposit(), "deposit recorded");
    }

    function test_callback_onNoQuorum() public {
        RecordingConsumer c = new RecordingConsumer(market);
        uint256 id = _ask(c);
        _draw(id);
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(uint256(c.lastStatus()), uint256(IInferenceMarket.Status.NoQuorum), "status");
        vm.assertEq(c.lastOutputHash(), bytes32(0), "no hash");
        vm.assertEq(market.withdrawable(address(c)), FEE, "refund credited");
    }

    function test_callback_reverting_stillSettles() public {
        RevertingConsumer c = new RevertingConsumer(market);
        uint256 id = _ask(c);
        _settleAccepted(id);
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, false);
        market.finalize(id);
        _assertSettled(id);
        vm.assertTrue(market.getRequest(id).callbackFailed, "flagged");
        // redeliver: anyone may retry at their own gas; still failing keeps the flag
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, false);
        market.redeliver(id);
        vm.assertTrue(market.getRequest(id).callbackFailed, "still flagged");
    }

    function test_redeliver_afterFixedConsumer() public {
        RecordingConsumer c = new RecordingConsumer(market);
        uint256 id = _ask(c);
        _settleAccepted(id);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToRedeliver.selector, id));
        market.redeliver(id);
        // starve the first delivery inside the callee by sending it a failing callback: use a consumer that fails once
        FlakyConsumer f = new FlakyConsumer(market);
        vm.deal(address(this), FEE + _deposit());
        uint256 id2 = f.ask{value: FEE + _deposit()}(modelId, INPUT_HASH, _cbParams());
        _settleAccepted(id2);
        market.finalize(id2);
        vm.assertTrue(market.getRequest(id2).callbackFailed, "first delivery failed");
        f.heal();
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id2, true);
        market.redeliver(id2);
        vm.assertFalse(market.getRequest(id2).callbackFailed, "delivered");
        vm.assertEq(f.got(), OUT_A, "result");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToRedeliver.selector, id2));
        market.redeliver(id2);
    }

    // ------------------------------------------------------------------ redeliver at the caller's gas (issue 9)

    /// @dev A request whose consumer needs ~110k gas (5 fresh slots) but asked for a 40k callbackGasLimit.
    function _askHungry(HungryConsumer c) internal returns (uint256 id) {
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.callbackGasLimit = 40_000;
        uint256 dep = 40_000 * market.parameters().callbackGasPrice;
        vm.deal(address(this), FEE + dep);
        id = c.ask{value: FEE + dep}(modelId, INPUT_HASH, p);
    }

    function test_redeliver_firstDeliveryOutOfGas_secondSucceeds() public {
        HungryConsumer c = new HungryConsumer(market, 5);
        uint256 id = _askHungry(c);
        _settleAccepted(id);
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, false);
        market.finalize(id);
        vm.assertTrue(market.getRequest(id).callbackFailed, "first delivery ran out of gas");
        vm.assertEq(c.delivered(), 0, "nothing delivered with 40k");
        _assertSettled(id);

        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, true);
        market.redeliver{gas: 1_000_000}(id);
        vm.assertEq(c.delivered(), 1, "second delivery succeeded");
        vm.assertEq(c.got(), OUT_A, "settled output");
        vm.assertFalse(market.getRequest(id).callbackFailed, "flag cleared");
        // the consumer got the caller's gas, far more than its 40k limit
        vm.assertGe(c.gasAtEntry(), 900_000, "caller's gas forwarded");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToRedeliver.selector, id));
        market.redeliver(id);
    }

    function test_revert_redeliver_belowCallbackGasLimit() public {
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.callbackGasLimit = 200_000;
        RevertingConsumer rc = new RevertingConsumer(market);
        uint256 dep = 200_000 * market.parameters().callbackGasPrice;
        vm.deal(address(this), FEE + dep);
        uint256 id = rc.ask{value: FEE + dep}(modelId, INPUT_HASH, p);
        _settleAccepted(id);
        market.finalize(id);
        vm.assertTrue(market.getRequest(id).callbackFailed, "failed");
        uint256 required = (uint256(200_000) * 64) / 63 + market.REDELIVER_GAS_RESERVE();
        (bool ok, bytes memory ret) =
            address(market).call{gas: 150_000}(abi.encodeCall(IInferenceMarket.redeliver, (id)));
        vm.assertFalse(ok, "reverted");
        bytes4 sel;
        assembly {
            sel := mload(add(ret, 0x20))
        }
        vm.assertEq(sel, IInferenceMarket.InsufficientGasForCallback.selector, "error");
        uint256 gasLeft;
        uint256 req;
        assembly {
            gasLeft := mload(add(ret, 0x24))
            req := mload(add(ret, 0x44))
        }
        vm.assertEq(req, required, "names the gas the callback needs");
        vm.assertTrue(gasLeft < required, "names the gas that was left");
        vm.assertGe(gasLeft, 100_000, "gas left is the caller's");
        vm.assertTrue(market.getRequest(id).callbackFailed, "still flagged after the revert");
    }

    function test_redeliver_gasBurner_keepsReserveAndFlag() public {
        GasBurnerConsumer c = new GasBurnerConsumer(market);
        uint256 id = _ask(c);
        _settleAccepted(id);
        market.finalize(id);
        vm.assertTrue(market.getRequest(id).callbackFailed, "failed");
        // the consumer burns everything it gets; redeliver still finishes (reserve) and keeps the flag set
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, false);
        market.redeliver{gas: 1_000_000}(id);
        vm.assertTrue(market.getRequest(id).callbackFailed, "still flagged");
    }

    function test_redeliver_returndataBomb_notCopied() public {
        ReturnBombConsumer rev = new ReturnBombConsumer(market, true);
        uint256 id = _ask(rev);
        _settleAccepted(id);
        market.finalize(id);
        vm.assertTrue(market.getRequest(id).callbackFailed, "failed");
        uint256 g = gasleft();
        market.redeliver{gas: 2_000_000}(id);
        uint256 used = g - gasleft();
        // the consumer's own 200 kB memory costs ~96k; copying it back would cost as much again
        vm.assertLe(used, 150_000, "returndata not copied");
        vm.assertTrue(market.getRequest(id).callbackFailed, "still flagged");
    }

    function test_callback_burningAllGas_stillSettles() public {
        GasBurnerConsumer c = new GasBurnerConsumer(market);
        uint256 id = _ask(c);
        _settleAccepted(id);
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, false);
        uint256 g = gasleft();
        market.finalize(id);
        uint256 used = g - gasleft();
        vm.assertLe(used, 1_000_000, "bounded by callbackGasLimit plus settlement");
        _assertSettled(id);
    }

    function test_callback_returndataBomb_stillSettles() public {
        ReturnBombConsumer ret = new ReturnBombConsumer(market, false);
        uint256 id = _ask(ret);
        _settleAccepted(id);
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id, true);
        uint256 g = gasleft();
        market.finalize(id);
        vm.assertLe(g - gasleft(), 1_000_000, "returndata not copied");
        _assertSettled(id);

        ReturnBombConsumer rev = new ReturnBombConsumer(market, true);
        uint256 id2 = _ask(rev);
        _settleAccepted(id2);
        vm.expectEmit(true, false, false, true, address(market));
        emit CallbackResult(id2, false);
        market.finalize(id2);
        vm.assertEq(uint256(market.statusOf(id2)), uint256(IInferenceMarket.Status.Accepted), "settled");
    }

    function test_callback_cannotReenter() public {
        ReentrantConsumer c = new ReentrantConsumer(market);
        uint256 other = _request(requester, FEE, _params(3, 2), modelId);
        c.setOther(other);
        uint256 id = _ask(c);
        _settleAccepted(id);
        _draw(other);
        _rollPastReveal(other);
        market.finalize(id);
        vm.assertTrue(c.finalizeBlocked(), "finalize re-entry blocked");
        vm.assertTrue(c.withdrawBlocked(), "withdraw re-entry blocked");
        vm.assertEq(uint256(market.statusOf(other)), uint256(IInferenceMarket.Status.Revealing), "other untouched");
        market.finalize(other);
    }

    function test_revert_callback_insufficientGasLeft() public {
        RecordingConsumer c = new RecordingConsumer(market);
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.callbackGasLimit = 1_000_000;
        uint256 dep = 1_000_000 * market.parameters().callbackGasPrice;
        vm.deal(address(this), FEE + dep);
        uint256 id = c.ask{value: FEE + dep}(modelId, INPUT_HASH, p);
        _settleAccepted(id);
        // enough for settlement, not for the promised callback gas: the caller cannot starve the consumer
        vm.expectPartialRevert(IInferenceMarket.InsufficientGasForCallback.selector);
        market.finalize{gas: 700_000}(id);
        vm.assertEq(c.calls(), 0, "not called");
        market.finalize{gas: 2_000_000}(id);
        vm.assertEq(c.calls(), 1, "called with enough gas");
    }

    function test_noCallback_forEOAOrZeroLimit() public {
        RecordingConsumer c = new RecordingConsumer(market);
        vm.deal(address(this), FEE);
        uint256 id = c.ask{value: FEE}(modelId, INPUT_HASH, _params(3, 2)); // callbackGasLimit 0
        vm.recordLogs();
        _settleAccepted(id); // unanimous, no callback due: the last reveal settles
        _finalize(id);
        vm.assertEq(c.calls(), 0, "limit 0: no callback");
        _assertNoCallbackLog();

        IInferenceMarket.RequestParams memory p = _cbParams();
        uint256 dep = _deposit();
        vm.deal(requester, FEE + dep);
        vm.prank(requester);
        uint256 id2 = market.requestInference{value: FEE + dep}(modelId, "c", INPUT_HASH, p);
        _settleAccepted(id2);
        vm.recordLogs();
        market.finalize(id2);
        _assertNoCallbackLog();
        vm.assertEq(market.withdrawable(requester), _deposit(), "an EOA's deposit is refunded");
    }

    function _assertNoCallbackLog() internal {
        bytes32 topic = keccak256("CallbackResult(uint256,bool)");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            vm.assertTrue(logs[i].topics.length == 0 || logs[i].topics[0] != topic, "no CallbackResult");
        }
    }

    // ------------------------------------------------------------------ ExampleConsumer

    function test_exampleConsumer_flow() public {
        address dappOwner = address(0xDA99);
        vm.prank(dappOwner);
        ExampleConsumer app = new ExampleConsumer(market);
        vm.deal(dappOwner, 2 * (FEE + _deposit()));
        uint256 dep = _deposit();
        vm.prank(dappOwner);
        uint256 id = app.ask{value: FEE + dep}(modelId, "bafkreiinput", INPUT_HASH, _cbParams());
        _settleAccepted(id);
        vm.expectEmit(true, false, false, true, address(app));
        emit ResultReceived(id, IInferenceMarket.Status.Accepted, OUT_A);
        market.finalize(id);
        (IInferenceMarket.Status st, bytes32 out, bool received) = app.results(id);
        vm.assertTrue(received, "received");
        vm.assertEq(uint256(st), uint256(IInferenceMarket.Status.Accepted), "status");
        vm.assertEq(out, OUT_A, "out");

        // a no-quorum request: refund credited to the app, forwarded to its owner
        vm.prank(dappOwner);
        uint256 id2 = app.ask{value: FEE + dep}(modelId, "bafkreiinput", INPUT_HASH, _cbParams());
        _draw(id2);
        _rollPastReveal(id2);
        market.finalize(id2);
        (st,, received) = app.results(id2);
        vm.assertEq(uint256(st), uint256(IInferenceMarket.Status.NoQuorum), "no quorum");
        vm.assertEq(market.withdrawable(address(app)), FEE, "refund credited");

        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSignature("OwnableUnauthorizedAccount(address)", address(0xBAD)));
        app.withdrawRefunds();
        uint256 bal = dappOwner.balance;
        vm.expectEmit(true, false, false, true, address(app));
        emit RefundsForwarded(dappOwner, FEE);
        vm.prank(dappOwner);
        app.withdrawRefunds();
        vm.assertEq(dappOwner.balance - bal, FEE, "forwarded");
        vm.prank(dappOwner);
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.NothingToForward.selector));
        app.withdrawRefunds();
    }

    function test_revert_exampleConsumer_askPropagatesMarketErrors() public {
        ExampleConsumer app = new ExampleConsumer(market);
        vm.deal(address(this), FEE);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidReplicas.selector, uint8(4), uint8(2), uint8(7)));
        app.ask{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(4, 2));
        vm.assertEq(address(app).balance, 0, "nothing kept");
        vm.assertEq(market.totalEscrowed(), 0, "nothing escrowed");
    }

    function test_revert_exampleConsumer_onlyMarket() public {
        ExampleConsumer app = new ExampleConsumer(market);
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.NotMarket.selector, address(this)));
        app.onInferenceResult(1, IInferenceMarket.Status.Accepted, OUT_A);
    }

    function test_revert_exampleConsumer_forwardFails() public {
        NonPayableOwner np = new NonPayableOwner();
        ExampleConsumer app = np.deploy(market);
        vm.deal(address(app), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.TransferFailed.selector, address(np), 1 ether));
        np.pull(app);
    }
}

contract NonPayableOwner {
    function deploy(IInferenceMarket m) external returns (ExampleConsumer) {
        return new ExampleConsumer(m);
    }

    function pull(ExampleConsumer app) external {
        app.withdrawRefunds();
    }
}

/// @dev Fails its first delivery (until healed), then records the result.
contract FlakyConsumer is ConsumerBase {
    bool public healed;
    bytes32 public got;

    constructor(IInferenceMarket m) ConsumerBase(m) {}

    function heal() external {
        healed = true;
    }

    function onInferenceResult(uint256, IInferenceMarket.Status, bytes32 outputHash) external {
        require(healed, "not yet");
        got = outputHash;
    }
}
