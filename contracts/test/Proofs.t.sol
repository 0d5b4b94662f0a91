// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {MockVerifier} from "./utils/MockVerifier.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";

/// @notice Signal layout and failure modes of submitProof with a programmable verifier (the economic paths are
///         also run against the real snarkjs verifier in RealVerifier.t.sol and attacks/Attack05).
contract ProofsTest is Fixture {
    MockVerifier internal verifier;
    bytes32 internal model1; // public weights
    bytes32 internal model2; // private weights
    address internal prover = address(0x9800F);

    function setUp() public override {
        super.setUp();
        verifier = new MockVerifier(true);
        model1 = _registerModel(publisher, "proven-public", address(verifier), 1, false);
        model2 = _registerModel(publisher, "proven-private", address(verifier), 2, false);
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](3);
        s[0] = _fullShard(model1)[0];
        s[1] = _fullShard(model2)[0];
        s[2] = _fullShard(modelId)[0];
        for (uint256 i; i < 3; ++i) {
            vm.deal(_node(i), STAKE);
            vm.prank(_node(i));
            nodes.register{value: STAKE}("http://n", s);
        }
        _nextEpoch();
    }

    function _proof() internal pure returns (uint256[8] memory p) {
        for (uint256 i; i < 8; ++i) p[i] = 1000 + i;
    }

    function _expect1(uint256 id, bytes32 out, address who) internal {
        uint256[3] memory pub = [uint256(INPUT_HASH), uint256(out), market.requestBinding(id, who)];
        verifier.setExpected(keccak256(abi.encode(_proof())), keccak256(abi.encode(pub)));
    }

    function _submit(uint256 id, bytes32 out) internal {
        vm.prank(prover);
        market.submitProof(id, out, _proof());
    }

    function _drawn(bytes32 m, uint8 k, uint8 q) internal returns (uint256 id, address[] memory c) {
        id = _request(requester, FEE, _params(k, q), m);
        c = _draw(id);
    }

    function _play(uint256 id, address[] memory c, bytes32[3] memory outs) internal {
        for (uint256 i; i < 3; ++i) _commit(id, c[i], outs[i]);
        for (uint256 i; i < 3; ++i) _reveal(id, c[i], outs[i]);
    }

    function test_proof_mode1_signalLayoutAndBinding() public {
        (uint256 id, address[] memory c) = _drawn(model1, 3, 2);
        _play(id, c, [OUT_A, OUT_A, OUT_A]);
        _expect1(id, OUT_A, prover);
        vm.prank(address(0xF00)); // someone replaying the proof: the binding is per prover
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        market.submitProof(id, OUT_A, _proof());
        uint256[8] memory swapped = _proof();
        (swapped[2], swapped[3]) = (swapped[3], swapped[2]);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        market.submitProof(id, OUT_A, swapped);
        vm.expectEmit(true, true, false, true, address(market));
        emit IInferenceMarket.ProofVerified(id, prover, OUT_A);
        _submit(id, OUT_A);
        vm.assertTrue(market.getRequest(id).proven, "proven");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyProven.selector, id));
        _submit(id, OUT_A);
    }

    function test_proof_mode2_includesCommitment() public {
        (uint256 id, address[] memory c) = _drawn(model2, 1, 1);
        _commit(id, c[0], OUT_A);
        _reveal(id, c[0], OUT_A);
        uint256[4] memory pub = [uint256(777), uint256(INPUT_HASH), uint256(OUT_A), market.requestBinding(id, prover)];
        verifier.setExpected(keccak256(abi.encode(_proof())), keccak256(abi.encode(pub)));
        _submit(id, OUT_A);
        vm.assertTrue(market.getRequest(id).proven, "proven with 4 signals");
    }

    function test_revert_proof_verifierSaysNo_orReverts_orBurnsGas() public {
        (uint256 id, address[] memory c) = _drawn(model1, 3, 2);
        _play(id, c, [OUT_A, OUT_A, OUT_A]);
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
        vm.assertLe(g - gasleft(), market.PROOF_VERIFY_GAS() + 100_000, "verifier gas is capped");
        verifier.setAnswer(true, false, false);
        _submit(id, OUT_A);
        vm.assertTrue(market.getRequest(id).proven, "finally proven");
    }

    function test_revert_proof_preconditions() public {
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, uint256(1)));
        market.submitProof(1, OUT_A, _proof());
        (uint256 id0,) = _drawn(modelId, 1, 1); // proof mode 0
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToProve.selector, id0));
        _submit(id0, OUT_A);
        uint256 pending = _request(requester, FEE, _params(3, 2), model1);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToProve.selector, pending));
        _submit(pending, OUT_A);
        (uint256 id, address[] memory c) = _drawn(model1, 3, 2);
        bytes32 big = bytes32(uint256(21888242871839275222246405745257275088548364400416034343698204186575808495617));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.OutputHashNotInField.selector, big));
        _submit(id, big);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.OutputHashNotInField.selector, INVALID));
        _submit(id, INVALID);
        _play(id, c, [OUT_A, OUT_A, OUT_A]);
        _rollPastFinalizeAfter(id);
        market.finalize(id);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyFinalized.selector, id));
        _submit(id, OUT_A);
    }

    function test_proofWindow_blocksFinalize_unlessProven() public {
        (uint256 id, address[] memory c) = _drawn(model1, 3, 2);
        _play(id, c, [OUT_A, OUT_A, OUT_A]);
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertEq(uint256(r.finalizeAfter), uint256(r.revealDeadline) + 20, "proof window");
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, r.finalizeAfter));
        market.finalize(id);
        vm.roll(r.finalizeAfter);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, id, r.finalizeAfter));
        market.finalize(id);
        _submit(id, OUT_A);
        market.finalize(id); // proven: no need to wait
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
    }

    function test_proof_slashesContradicted_rewardsProver_burnsNoShows() public {
        (uint256 id, address[] memory c) = _drawn(model1, 3, 2);
        _commit(id, c[0], OUT_B);
        _commit(id, c[1], OUT_B);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT_B);
        _reveal(id, c[1], OUT_B);
        _submit(id, OUT_A); // true output: nobody revealed it
        _rollPastReveal(id);
        market.finalize(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
        vm.assertEq(market.getRequest(id).outputHash, OUT_A, "the proven hash settles");
        vm.assertEq(nodes.stakeOf(c[0]), STAKE - 0.1 ether, "liar slashed");
        vm.assertEq(nodes.stakeOf(c[1]), STAKE - 0.1 ether, "liar slashed");
        vm.assertEq(nodes.stakeOf(c[2]), STAKE - 0.1 ether, "no-show slashed");
        vm.assertEq(market.withdrawable(prover), 0.1 ether, "prover: half of the two liars' slashes");
        vm.assertEq(nodes.totalBurned(), 0.2 ether, "rest burned");
        vm.assertEq(market.withdrawable(requester), FEE, "nobody revealed the output: fee refunded");
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "market solvent");
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.totalBurned(), "registry solvent");
    }

    function test_proof_agreeingRevealersPaid() public {
        (uint256 id, address[] memory c) = _drawn(model1, 3, 2);
        _play(id, c, [OUT_A, OUT_B, OUT_B]);
        _submit(id, OUT_A);
        market.finalize(id);
        vm.assertEq(market.withdrawable(c[0]), FEE, "the one honest revealer takes the fee");
        vm.assertEq(market.withdrawable(prover), 0.1 ether, "prover reward");
        (bool slashed, bool paid) = market.getMemberSettlement(id, c[1]);
        vm.assertTrue(slashed && !paid, "liar");
    }

    function test_invalidInputConsensus_notOverturnable() public {
        (uint256 id, address[] memory c) = _drawn(model1, 3, 2);
        _commit(id, c[0], INVALID);
        _commit(id, c[1], INVALID);
        _commit(id, c[2], INVALID);
        _reveal(id, c[0], INVALID);
        _submit(id, OUT_A); // before quorum on INVALID_INPUT a proof is accepted ...
        _reveal(id, c[1], INVALID);
        _reveal(id, c[2], INVALID);
        market.finalize(id); // ... but INVALID_INPUT consensus wins, no proof window needed
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.InvalidInput), "invalid input");
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(c[i]), STAKE, "nobody slashed");
        vm.assertEq(market.withdrawable(prover), 0, "no reward");
        // and once INVALID_INPUT has quorum, proofs are refused outright
        (uint256 id2, address[] memory c2) = _drawn(model1, 3, 2);
        _play(id2, c2, [INVALID, INVALID, OUT_A]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToProve.selector, id2));
        _submit(id2, OUT_A);
    }
}
