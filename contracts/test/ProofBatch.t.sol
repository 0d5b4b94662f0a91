// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {console} from "./utils/Vm.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {BatchGroth16VerifierDigitsMlp} from "../src/verifiers/BatchGroth16VerifierDigitsMlp.sol";
import {Groth16VerifierDigitsMlp} from "../src/verifiers/DigitsMlpVerifier.sol";
import {DigitsBatchFixture} from "./fixtures/batch/DigitsBatchFixture.sol";

/// @notice InferenceMarket.submitProofBatch with 1, 4 and 16 real digits-MLP proofs (fixtures/batch: requests
///         1..16, prover 0xabab..ab, shipped INSECURE key). The batch verifier is the model version's verifier,
///         fixed at registration (issue 7 attack 4); a bad proof is named and nothing of its batch is accepted.
///         Gas per proof for docs/gas.md: `bash contracts/gas-report.sh` runs the gas tests with --isolate.
contract ProofBatchTest is Fixture {
    address internal constant PROVER = 0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB;
    BatchGroth16VerifierDigitsMlp internal batchVerifier;
    bytes32 internal batchModel;

    function setUp() public override {
        super.setUp();
        batchVerifier = new BatchGroth16VerifierDigitsMlp();
        // the batch verifier is the model's one verifier: submitProof and submitProofBatch both use it
        batchModel = _registerModel(publisher, "digits-mlp-batch", address(batchVerifier), 1, false);
        _registerNodes(8, batchModel); // 8 nodes x capacity 4 seats: room for 16 single-member committees
    }

    /// @dev Requests 1..n with the fixture's input hashes, each drawn (a committee of one).
    function _requests(uint256 n) internal {
        uint256[] memory s = DigitsBatchFixture.signals();
        IInferenceMarket.RequestParams memory p = _params(1, 1);
        for (uint256 i; i < n; ++i) {
            vm.deal(requester, FEE);
            vm.prank(requester);
            uint256 id = market.requestInference{value: FEE}(batchModel, "bafkreiinput", bytes32(s[3 * i]), p);
            vm.assertEq(id, i + 1, "fixture proofs are bound to requests 1..16");
        }
        vm.roll(block.number + 2);
        for (uint256 i; i < n; ++i) market.draw(i + 1);
    }

    function _batch(uint256 from, uint256 n)
        internal
        pure
        returns (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs)
    {
        uint256[8][] memory all = DigitsBatchFixture.proofs();
        uint256[] memory s = DigitsBatchFixture.signals();
        ids = new uint256[](n);
        outs = new bytes32[](n);
        proofs = new uint256[8][](n);
        for (uint256 i; i < n; ++i) {
            ids[i] = from + i + 1;
            outs[i] = bytes32(s[3 * (from + i) + 1]);
            proofs[i] = all[from + i];
        }
    }

    function test_batchOf4_settlesInOneTransaction() public {
        _requests(4);
        (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs) = _batch(0, 4);
        vm.prank(PROVER);
        market.submitProofBatch(ids, outs, proofs);
        for (uint256 i; i < 4; ++i) {
            IInferenceMarket.Request memory r = market.getRequest(ids[i]);
            vm.assertTrue(r.proven, "proven by the batch");
            vm.roll(r.finalizeAfter + 1);
            market.finalize(ids[i]);
            r = market.getRequest(ids[i]);
            vm.assertEq(uint256(r.status), uint256(IInferenceMarket.Status.Accepted), "settled");
            vm.assertEq(r.outputHash, outs[i], "to the proven output");
        }
        vm.assertEq(market.totalEscrowed(), 0, "nothing left in escrow");
    }

    function test_oneBadProof_isNamed_nothingAccepted_othersResubmitted() public {
        _requests(4);
        (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs) = _batch(0, 4);
        (,, uint256[8][] memory pristine) = _batch(0, 4);
        uint256[8] memory good = pristine[2];
        proofs[2][7] ^= 1; // tampered C.y
        vm.prank(PROVER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProofAt.selector, 2, ids[2]));
        market.submitProofBatch(ids, outs, proofs);
        for (uint256 i; i < 4; ++i) vm.assertFalse(market.getRequest(ids[i]).proven, "atomic: nothing accepted");
        // someone else's proof (binding to another prover) is named the same way
        proofs[2] = good;
        vm.prank(address(0xF00));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProofAt.selector, 0, ids[0]));
        market.submitProofBatch(ids, outs, proofs);
        // the others go through as a batch, the named one on its own
        (uint256[] memory ids3, bytes32[] memory outs3, uint256[8][] memory proofs3) = _batch(0, 2);
        vm.prank(PROVER);
        market.submitProofBatch(ids3, outs3, proofs3);
        vm.prank(PROVER);
        market.submitProof(ids[2], outs[2], good);
        vm.assertTrue(market.getRequest(ids[0]).proven && market.getRequest(ids[2]).proven, "resubmitted");
        // a request already proven cannot be proven again in a batch (nor twice in one)
        vm.prank(PROVER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyProven.selector, ids[0]));
        market.submitProofBatch(ids, outs, proofs);
        uint256[] memory dup = new uint256[](2);
        bytes32[] memory dupOut = new bytes32[](2);
        uint256[8][] memory dupProofs = new uint256[8][](2);
        (dup[0], dup[1]) = (ids[3], ids[3]);
        (dupOut[0], dupOut[1]) = (outs[3], outs[3]);
        (dupProofs[0], dupProofs[1]) = (proofs[3], proofs[3]);
        vm.prank(PROVER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyProven.selector, ids[3]));
        market.submitProofBatch(dup, dupOut, dupProofs);
    }

    /// @dev The worst case of the per-proof recheck: the bad proof is the last of 16 and the caller sends barely
    ///      more than the market's BATCH_GAS_BASE + BATCH_GAS_PER_PROOF * n. With 250k per proof the recheck
    ///      (~4.29M) ran out of gas and the batch reverted BatchUnsupported instead of naming the bad proof.
    function test_badLastProofOf16_isNamedWithTheGasTheMarketAsksFor() public {
        _requests(16);
        (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs) = _batch(0, 16);
        proofs[15][7] ^= 1; // tampered C.y
        vm.prank(PROVER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProofAt.selector, 15, ids[15]));
        market.submitProofBatch{gas: 150_000 + 300_000 * 16 + 20_000}(ids, outs, proofs);
    }

    function test_batchVerifierIsFixedPerVersion() public {
        // the version's verifier is the batch verifier; the registry has no way to change it later
        (bool ok,) = address(models).call(
            abi.encodeWithSignature("setVerifier(bytes32,address,uint8)", batchModel, address(0xBEEF), uint8(1))
        );
        vm.assertFalse(ok, "no setVerifier");
        vm.assertEq(models.getModelCore(batchModel).verifier, address(batchVerifier), "fixed at registration");
        // a version registered with a single-proof snarkjs verifier cannot be batch-proven at all
        Groth16VerifierDigitsMlp single = new Groth16VerifierDigitsMlp();
        bytes32 singleModel = _registerModel(publisher, "digits-mlp-single", address(single), 1, false);
        _registerNode(address(0x5000), STAKE, singleModel);
        _nextEpoch();
        _requests(1);
        vm.deal(requester, FEE);
        vm.prank(requester);
        uint256 other = market.requestInference{value: FEE}(singleModel, "bafkreiinput", INPUT_HASH, _params(1, 1));
        vm.roll(block.number + 2);
        market.draw(other);
        (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs) = _batch(0, 1);
        uint256[] memory otherIds = new uint256[](1);
        otherIds[0] = other;
        vm.prank(PROVER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.BatchUnsupported.selector, singleModel));
        market.submitProofBatch(otherIds, outs, proofs);
        // one batch, one version: a request of another version is named
        uint256[] memory mixed = new uint256[](2);
        bytes32[] memory mixedOut = new bytes32[](2);
        uint256[8][] memory mixedProofs = new uint256[8][](2);
        (mixed[0], mixed[1]) = (ids[0], other);
        (mixedOut[0], mixedOut[1]) = (outs[0], outs[0]);
        (mixedProofs[0], mixedProofs[1]) = (proofs[0], proofs[0]);
        vm.prank(PROVER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.BatchModelMismatch.selector, 1, other));
        market.submitProofBatch(mixed, mixedOut, mixedProofs);
        // shape and consensus-only requests are refused with their own errors
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.BatchShape.selector, 1, 2, 2));
        market.submitProofBatch(otherIds, mixedOut, mixedProofs);
    }

    function test_singleProof_throughTheBatchVerifiersSnarkjsEntry() public {
        _requests(1);
        (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs) = _batch(0, 1);
        vm.prank(PROVER);
        market.submitProof(ids[0], outs[0], proofs[0]);
        vm.assertTrue(market.getRequest(ids[0]).proven, "submitProof works with the batch verifier");
    }

    // ---- gas per proof (docs/gas.md; meaningful with --isolate: one transaction per call)

    function _gasBatch(uint256 n) internal {
        _requests(n);
        (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs) = _batch(0, n);
        vm.prank(PROVER);
        market.submitProofBatch(ids, outs, proofs);
        uint256 used = vm.lastCallGas().gasTotalUsed;
        for (uint256 i; i < n; ++i) vm.assertTrue(market.getRequest(ids[i]).proven, "proven");
        string memory tag = n == 1 ? "n1" : n == 4 ? "n4" : "n16";
        console.log(string.concat("gas.batch.", tag, ".tx"), used);
        console.log(string.concat("gas.batch.", tag, ".tx_per_proof"), used / n);
    }

    function test_gas_batch_n1() public {
        _gasBatch(1);
    }

    function test_gas_batch_n4() public {
        _gasBatch(4);
    }

    function test_gas_batch_n16() public {
        _gasBatch(16);
    }

    function test_gas_single_submitProof() public {
        _requests(1);
        (uint256[] memory ids, bytes32[] memory outs, uint256[8][] memory proofs) = _batch(0, 1);
        vm.prank(PROVER);
        market.submitProof(ids[0], outs[0], proofs[0]);
        console.log("gas.batch.single.tx", vm.lastCallGas().gasTotalUsed);
    }
}
