// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {MockVerifier} from "./utils/MockVerifier.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";

contract ProofsTest is Fixture {
    event ProofVerified(uint256 indexed requestId, address indexed prover, bytes32 outputHash);
    event ProofContradictsSettlement(uint256 indexed requestId, bytes32 settledOutputHash, bytes32 provenOutputHash);
    event NodePenalized(uint256 indexed requestId, address indexed node, uint256 slashed);

    MockVerifier internal verifier;
    bytes32 internal model1; // public weights
    bytes32 internal model2; // private weights
    address internal prover = address(0x9800F);

    function setUp() public override {
        super.setUp();
        verifier = new MockVerifier(true);
        model1 = _registerModel(publisher, "proven-public", address(verifier), 1, false);
        model2 = _registerModel(publisher, "proven-private", address(verifier), 2, false);
        // nodes serve all three models
        for (uint256 i; i < 3; ++i) {
            _registerNode(_node(i), STAKE, model1);
        }
    }

    function _proof() internal pure returns (uint256[8] memory p) {
        for (uint256 i; i < 8; ++i) p[i] = 1000 + i;
    }

    function _expect1(uint256 id, bytes32 out, address who) internal {
        uint256[3] memory pub = [uint256(INPUT_HASH), uint256(out), market.requestBinding(id, who)];
        verifier.setExpected(keccak256(abi.encode(_proof())), keccak256(abi.encode(pub)));
    }

    function _revealAll(uint256 id, bytes32[3] memory outs) internal {
        address[] memory c = _committee(id);
        for (uint256 i; i < 3; ++i) _commit(id, c[i], outs[i]);
        for (uint256 i; i < 3; ++i) _reveal(id, c[i], outs[i]);
    }

    function _submit(uint256 id, bytes32 out) internal {
        vm.prank(prover);
        market.submitProof(id, out, _proof());
    }

    function test_proof_mode1_signalLayoutAndBinding() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT_A);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_A);
        _expect1(id, OUT_A, prover);

        // the same proof replayed by someone else fails: the binding is per prover
        vm.prank(address(0xF00));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        market.submitProof(id, OUT_A, _proof());
        // a different proof layout fails
        uint256[8] memory swapped = _proof();
        (swapped[2], swapped[3]) = (swapped[3], swapped[2]);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        market.submitProof(id, OUT_A, swapped);

        vm.expectEmit(true, true, false, true, address(market));
        emit ProofVerified(id, prover, OUT_A);
        _submit(id, OUT_A);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertTrue(r.proven, "proven");
        vm.assertEq(r.provenOutputHash, uint256(OUT_A), "proven hash");
        vm.assertFalse(r.contradicted, "not contradicted");

        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyProven.selector, id));
        _submit(id, OUT_A);
    }

    function test_proof_mode2_includesCommitment() public {
        for (uint256 i; i < 3; ++i) {
            INodeShardsHelper.addModel(nodes, _node(i), model1, model2, vm);
        }
        uint256 id = _request(requester, FEE, _params(1, 1), model2);
        address n = _committee(id)[0];
        _commit(id, n, OUT_A);
        _reveal(id, n, OUT_A);
        uint256[4] memory pub = [uint256(777), uint256(INPUT_HASH), uint256(OUT_A), market.requestBinding(id, prover)];
        verifier.setExpected(keccak256(abi.encode(_proof())), keccak256(abi.encode(pub)));
        _submit(id, OUT_A);
        vm.assertTrue(market.getRequest(id).proven, "proven with 4 signals");
    }

    function test_revert_proof_verifierSaysNo_orReverts_orBurnsGas() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        _revealAll(id, [OUT_A, OUT_A, OUT_A]);
        verifier.setAnswer(false, false, false);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        _submit(id, OUT_A);
        verifier.setAnswer(true, true, false);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        _submit(id, OUT_A);
        verifier.setAnswer(true, false, true);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        uint256 g = gasleft();
        _submit(id, OUT_A);
        vm.assertLe(g - gasleft(), market.proofVerifyGas() + 100_000, "verifier gas is capped");
        verifier.setAnswer(true, false, false);
        _submit(id, OUT_A);
        vm.assertTrue(market.getRequest(id).proven, "finally proven");
    }

    function test_revert_proof_preconditions() public {
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, uint256(1)));
        market.submitProof(1, OUT_A, _proof());

        for (uint256 i; i < 3; ++i) {
            INodeShardsHelper.addModel(nodes, _node(i), model1, modelId, vm); // the mode-0 model
        }
        uint256 id0 = _request(requester, FEE, _params(1, 1), modelId);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.ProofsNotSupported.selector, modelId));
        market.submitProof(id0, OUT_A, _proof());

        bytes32 noVerifier = _registerModel(publisher, "later", address(0), 1, false);
        for (uint256 i; i < 3; ++i) {
            INodeShardsHelper.addModel(nodes, _node(i), model1, noVerifier, vm);
        }
        uint256 idNv = _request(requester, FEE, _params(1, 1), noVerifier);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NoVerifier.selector, noVerifier));
        market.submitProof(idNv, OUT_A, _proof());

        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToProve.selector, id));
        _submit(id, OUT_A);
        _revealAll(id, [OUT_A, OUT_A, OUT_A]);
        bytes32 big = bytes32(uint256(21888242871839275222246405745257275088548364400416034343698204186575808495617));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.OutputHashNotInField.selector, big));
        _submit(id, big);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.OutputHashNotInField.selector, INVALID));
        _submit(id, INVALID);

        vm.expectPartialRevert(IInferenceMarket.InsufficientGasForProof.selector);
        vm.prank(prover);
        market.submitProof{gas: 300_000}(id, OUT_A, _proof());
    }

    function test_proof_beforeFinalize_slashesContradictingRevealers() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        address[] memory c = _committee(id);
        _revealAll(id, [OUT_B, OUT_B, OUT_A]); // majority B is wrong
        uint256 slash = market.slashAmount();
        vm.expectEmit(true, true, false, true, address(market));
        emit NodePenalized(id, c[0], slash);
        vm.expectEmit(true, true, false, true, address(market));
        emit NodePenalized(id, c[1], slash);
        _submit(id, OUT_A);
        vm.assertEq(nodes.stakeOf(c[0]), STAKE - slash, "c0 slashed at proof time");
        vm.assertEq(nodes.stakeOf(c[1]), STAKE - slash, "c1 slashed at proof time");
        vm.assertEq(nodes.stakeOf(c[2]), STAKE, "honest kept stake");

        market.finalize(id);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Accepted), "accepted");
        vm.assertEq(r.outputHash, OUT_A, "the proof decides");
        vm.assertEq(uint256(r.agreeingCount), 1, "one agreeing");
        vm.assertEq(market.withdrawable(c[2]), FEE, "honest minority gets the whole fee");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE - slash, "not slashed twice");
        vm.assertEq(nodes.slashedBalance(), 2 * slash, "two slashes total");
    }

    function test_proof_beforeFinalize_nobodyAgrees_refunds() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        _revealAll(id, [OUT_B, OUT_B, OUT_B]);
        _submit(id, OUT_A);
        market.finalize(id);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Accepted), "accepted (proven)");
        vm.assertEq(r.outputHash, OUT_A, "proven output");
        vm.assertEq(uint256(r.agreeingCount), 0, "nobody to pay");
        vm.assertEq(market.withdrawable(requester), FEE, "fee refunded");
        vm.assertEq(nodes.slashedBalance(), 3 * market.slashAmount(), "all three slashed once");
    }

    function test_proof_afterFinalize_contradiction_flagsOnly() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        address[] memory c = _committee(id);
        _revealAll(id, [OUT_B, OUT_B, OUT_A]);
        market.finalize(id);
        vm.assertEq(market.getRequest(id).outputHash, OUT_B, "quorum picked B");
        uint256 w0 = market.withdrawable(c[0]);
        uint256 slashed = nodes.slashedBalance();

        vm.expectEmit(true, false, false, true, address(market));
        emit ProofContradictsSettlement(id, OUT_B, OUT_A);
        _submit(id, OUT_A);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertTrue(r.proven && r.contradicted, "flagged");
        vm.assertEq(r.outputHash, OUT_B, "settlement unchanged");
        vm.assertEq(market.withdrawable(c[0]), w0, "no funds move");
        vm.assertEq(nodes.slashedBalance(), slashed, "no new slashing");
    }

    function test_proof_afterFinalize_agreement() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        _revealAll(id, [OUT_A, OUT_A, OUT_B]);
        market.finalize(id);
        _submit(id, OUT_A);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertTrue(r.proven, "proven");
        vm.assertFalse(r.contradicted, "agrees");
    }

    function test_proof_afterInvalidInput_contradicts() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        _revealAll(id, [INVALID, INVALID, INVALID]);
        market.finalize(id);
        _submit(id, OUT_A);
        vm.assertTrue(market.getRequest(id).contradicted, "a valid proof contradicts 'invalid input'");
    }

    function test_proof_afterNoQuorumWithoutReveals() public {
        uint256 id = _request(requester, FEE, _params(3, 2), model1);
        _rollPastReveal(id);
        market.finalize(id);
        _submit(id, OUT_A);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertTrue(r.proven, "proven after finalize");
        vm.assertFalse(r.contradicted, "no settled output to contradict");
        vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.NoQuorum), "status unchanged");
    }
}

import {NodeRegistry} from "../src/NodeRegistry.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {Vm} from "./utils/Vm.sol";

library INodeShardsHelper {
    /// @dev Makes `node` serve both models in full.
    function addModel(NodeRegistry reg, address node, bytes32 a, bytes32 b, Vm vm) internal {
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](2);
        s[0] = INodeRegistry.ModelShard({modelId: a, layerStart: 0, layerEnd: type(uint16).max});
        s[1] = INodeRegistry.ModelShard({modelId: b, layerStart: 0, layerEnd: type(uint16).max});
        vm.prank(node);
        reg.setShards(s);
    }
}
