// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {BatchGroth16Verifier} from "../src/verifiers/BatchGroth16Verifier.sol";
import {BatchGroth16VerifierDigitsMlp} from "../src/verifiers/BatchGroth16VerifierDigitsMlp.sol";
import {Groth16VerifierDigitsMlp} from "../src/verifiers/DigitsMlpVerifier.sol";
import {DigitsBatchFixture} from "./fixtures/batch/DigitsBatchFixture.sol";

/// @dev The digits key with `extra` more public inputs whose IC points are the point at infinity: every digits
/// proof verifies with any extra signals < R, so the 4-signal (private-weights width) and generic paths of
/// verifyBatch run on real proofs.
contract DigitsPlusOneInput is BatchGroth16VerifierDigitsMlp {
    function numPublic() public pure override returns (uint256) {
        return 4;
    }

    function _vk() internal pure override returns (bytes memory) {
        return bytes.concat(super._vk(), new bytes(64));
    }
}

contract DigitsPlusTwoInputs is BatchGroth16VerifierDigitsMlp {
    function numPublic() public pure override returns (uint256) {
        return 5;
    }

    function _vk() internal pure override returns (bytes memory) {
        return bytes.concat(super._vk(), new bytes(128));
    }
}

/// @notice Batch verification of 1, 4 and 16 real digits-MLP proofs (shipped INSECURE key; fixture from
/// `python -m verinfer.prover.batch`), one bad proof named by index, and gas per proof.
contract BatchGroth16VerifierTest is TestBase {
    event log_named_uint(string key, uint256 val);

    BatchGroth16VerifierDigitsMlp internal batch;
    Groth16VerifierDigitsMlp internal single;

    function setUp() public {
        batch = new BatchGroth16VerifierDigitsMlp();
        single = new Groth16VerifierDigitsMlp();
    }

    function _take(uint256 n) internal pure returns (uint256[8][] memory p, uint256[] memory s) {
        uint256[8][] memory all = DigitsBatchFixture.proofs();
        uint256[] memory sigs = DigitsBatchFixture.signals();
        uint256 k = DigitsBatchFixture.K;
        p = new uint256[8][](n);
        s = new uint256[](n * k);
        for (uint256 i; i < n; ++i) {
            p[i] = all[i];
            for (uint256 j; j < k; ++j) s[i * k + j] = sigs[i * k + j];
        }
    }

    function _calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i; i < data.length; ++i) g += data[i] == 0 ? 4 : 16;
    }

    /// tx gas = 21000 + calldata + execution of the call frame (vm.lastCallGas: the verifier's own gas, without
    /// this harness's CALL). tests/test_prover_batch.py checks the same figure as an anvil transaction's gasUsed.
    function _gas(uint256 n) internal returns (uint256 txGas) {
        (uint256[8][] memory p, uint256[] memory s) = _take(n);
        bytes memory data = abi.encodeCall(BatchGroth16Verifier.verifyBatch, (p, s));
        vm.assertTrue(batch.verifyBatch(p, s), "batch of valid proofs verifies");
        uint256 exec = vm.lastCallGas().gasTotalUsed;
        txGas = 21000 + _calldataGas(data) + exec;
        emit log_named_uint(string.concat("n=", _str(n), " tx gas"), txGas);
        emit log_named_uint(string.concat("n=", _str(n), " tx gas per proof"), txGas / n);
        emit log_named_uint(string.concat("n=", _str(n), " execution gas per proof"), exec / n);
        emit log_named_uint(string.concat("n=", _str(n), " calldata gas per proof"), _calldataGas(data) / n);
    }

    function _str(uint256 v) internal pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory b;
        while (v > 0) {
            b = abi.encodePacked(bytes1(uint8(48 + (v % 10))), b);
            v /= 10;
        }
        return string(b);
    }

    function test_fixtureProofsVerifyIndividuallyOnTheSnarkjsVerifier() public view {
        (uint256[8][] memory p, uint256[] memory s) = _take(DigitsBatchFixture.N);
        for (uint256 i; i < p.length; ++i) {
            uint256[3] memory sig = [s[3 * i], s[3 * i + 1], s[3 * i + 2]];
            bool ok = single.verifyProof([p[i][0], p[i][1]], [[p[i][2], p[i][3]], [p[i][4], p[i][5]]], [p[i][6], p[i][7]], sig);
            vm.assertTrue(ok, "snarkjs verifier accepts the fixture proof");
            uint256[] memory one = new uint256[](3);
            for (uint256 j; j < 3; ++j) one[j] = sig[j];
            vm.assertTrue(batch.verifyOne(p[i], one), "batch contract's single check agrees");
        }
    }

    function test_singleSnarkjsVerifierGas() public {
        (uint256[8][] memory p, uint256[] memory s) = _take(1);
        uint256[3] memory sig = [s[0], s[1], s[2]];
        uint256 g0 = gasleft();
        bool ok = single.verifyProof([p[0][0], p[0][1]], [[p[0][2], p[0][3]], [p[0][4], p[0][5]]], [p[0][6], p[0][7]], sig);
        uint256 exec = g0 - gasleft();
        vm.assertTrue(ok, "single proof verifies");
        bytes memory cd = abi.encodeCall(Groth16VerifierDigitsMlp.verifyProof,
            ([p[0][0], p[0][1]], [[p[0][2], p[0][3]], [p[0][4], p[0][5]]], [p[0][6], p[0][7]], sig));
        emit log_named_uint("single snarkjs verifier tx gas", 21000 + _calldataGas(cd) + exec);
    }

    function test_batchOf1_4_16_verify_andGas() public {
        uint256 g1 = _gas(1);
        uint256 g4 = _gas(4);
        uint256 g16 = _gas(16);
        vm.assertLe(g16 / 16, 65_000, "issue 14: <= 65k gas per proof as a transaction at n = 16");
        vm.assertLe(g4 / 4, g1, "batching is cheaper per proof");
    }

    function test_oneBadProof_isNamed_othersStillCheck() public {
        for (uint256 bad; bad < 16; bad += 5) {
            (uint256[8][] memory p, uint256[] memory s) = _take(16);
            s[bad * 3 + 1] ^= 1; // another output hash for proof `bad`
            vm.assertFalse(batch.verifyBatch(p, s), "batch with a bad proof fails");
            vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.InvalidProofAt.selector, bad));
            batch.requireBatch(p, s);
            bool[] memory each = batch.checkEach(p, s);
            for (uint256 i; i < 16; ++i) vm.assertEq(each[i], i != bad, "only the bad proof fails");
        }
    }

    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    /// @dev verifyBatch false, requireBatch names `bad`, checkEach marks only `bad`.
    function _assertOnlyBad(uint256[8][] memory p, uint256[] memory s, uint256 bad, string memory what) internal {
        uint256 g0 = gasleft();
        vm.assertFalse(batch.verifyBatch(p, s), what);
        vm.assertLe(g0 - gasleft(), 1_200_000, "a bad point cannot burn the caller's gas");
        vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.InvalidProofAt.selector, bad));
        batch.requireBatch(p, s);
        bool[] memory each = batch.checkEach(p, s);
        for (uint256 i; i < p.length; ++i) vm.assertEq(each[i], i != bad, what);
    }

    function test_tamperedProofPoint_andSwappedProofs_fail() public {
        (uint256[8][] memory p, uint256[] memory s) = _take(4);
        (p[1], p[2]) = (p[2], p[1]); // each proof is bound to its own signals
        vm.assertFalse(batch.verifyBatch(p, s), "swapped proofs fail");
        vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.InvalidProofAt.selector, 1));
        batch.requireBatch(p, s);
        (p, s) = _take(16);
        p[9][6] = p[8][6]; // C of proof 9 := C of proof 8: a valid curve point, a wrong proof
        p[9][7] = p[8][7];
        _assertOnlyBad(p, s, 9, "a valid point from another proof fails and is named");
    }

    function test_reorderedBatch_withItsSignals_verifies() public view {
        (uint256[8][] memory p, uint256[] memory s) = _take(16);
        uint256[8][] memory q = new uint256[8][](16);
        uint256[] memory t = new uint256[](48);
        for (uint256 i; i < 16; ++i) {
            uint256 from = (i * 7 + 3) % 16; // a permutation: 7 is coprime to 16
            q[i] = p[from];
            for (uint256 j; j < 3; ++j) t[3 * i + j] = s[3 * from + j];
        }
        vm.assertTrue(batch.verifyBatch(q, t), "the order of a batch does not matter");
    }

    /// Off-curve coordinates reach each path: A_0 (negated by hand, then the pairing), C_0 (the first ecAdd),
    /// A_i and C_i (ecMul), B_i (the pairing); and a coordinate >= Q.
    function test_pointsNotOnCurve_fail_andAreNamed() public {
        uint256[9] memory at = [uint256(0), 0, 0, 5, 5, 5, 12, 15, 7];
        uint256[9] memory word = [uint256(1), 7, 2, 0, 1, 7, 3, 4, 6];
        for (uint256 c; c < at.length; ++c) {
            (uint256[8][] memory p, uint256[] memory s) = _take(16);
            p[at[c]][word[c]] += 1;
            _assertOnlyBad(p, s, at[c], "point off the curve");
        }
        (uint256[8][] memory p2, uint256[] memory s2) = _take(16);
        p2[6][6] += Q; // C_6.x + Q: the same point mod Q, but not a field element
        _assertOnlyBad(p2, s2, 6, "coordinate >= Q");
        (p2, s2) = _take(16);
        p2[5][0] += 1; // rejected by ecMul: the batch stops before the fixed pairs and the 19-pair pairing (691k)
        vm.assertFalse(batch.verifyBatch(p2, s2), "off-curve A_5");
        vm.assertLe(vm.lastCallGas().gasTotalUsed, 300_000, "a rejected point skips the pairing");
        (p2, s2) = _take(1);
        p2[0][7] += 1;
        vm.assertFalse(batch.verifyBatch(p2, s2), "n = 1: C_0 reaches only the pairing");
    }

    function test_signalsOutsideTheField_fail() public {
        for (uint256 c; c < 3; ++c) {
            (uint256[8][] memory p, uint256[] memory s) = _take(16);
            uint256 at = [uint256(0), 7, 47][c]; // proof 0 (r = 1), proofs 2 and 15
            s[at] += R; // the same value mod R: accepted by the circuit's math, rejected as snarkjs does
            _assertOnlyBad(p, s, at / 3, "signal >= R");
        }
    }

    /// Two bad proofs whose errors cancel in an unweighted sum (C_1 + G, C_2 - G) fail: the coefficients differ.
    function test_errorsThatCancelWithoutRandomness_fail() public {
        (uint256[8][] memory p, uint256[] memory s) = _take(4);
        (p[1][6], p[1][7]) = _ecAdd(p[1][6], p[1][7], 1, 2);
        (p[2][6], p[2][7]) = _ecAdd(p[2][6], p[2][7], 1, Q - 2);
        vm.assertFalse(batch.verifyBatch(p, s), "errors that cancel in a plain sum are caught");
        vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.InvalidProofAt.selector, 1));
        batch.requireBatch(p, s);
    }

    function _ecAdd(uint256 x1, uint256 y1, uint256 x2, uint256 y2) internal view returns (uint256 x, uint256 y) {
        (bool ok, bytes memory out) = address(6).staticcall(abi.encode(x1, y1, x2, y2));
        vm.assertTrue(ok, "ecAdd");
        (x, y) = abi.decode(out, (uint256, uint256));
    }

    function test_nonCanonicalAy_isRejectedByBatchAndSingleChecks() public view {
        for (uint256 at; at < 4; at += 2) {
            (uint256[8][] memory p, uint256[] memory s) = _take(4);
            p[at][1] += Q; // proof 0: negated by hand; proof 2: ecMul
            uint256[] memory one = new uint256[](3);
            for (uint256 j; j < 3; ++j) one[j] = s[3 * at + j];
            vm.assertFalse(batch.verifyBatch(p, s), "batch rejects A.y >= Q");
            vm.assertFalse(batch.verifyOne(p[at], one), "single check rejects A.y >= Q");
        }
    }

    /// k = 4 (unrolled) and k = 5 (one column at a time): real proofs with their signals at stride k verify;
    /// a real signal moved to another proof, or an extra signal >= R, fails and is named.
    function test_widerSignalRows_k4_k5() public {
        BatchGroth16Verifier[2] memory v = [BatchGroth16Verifier(new DigitsPlusOneInput()), new DigitsPlusTwoInputs()];
        for (uint256 w; w < 2; ++w) {
            uint256 k = 4 + w;
            (uint256[8][] memory p, uint256[] memory s3) = _take(16);
            uint256[] memory s = new uint256[](16 * k);
            for (uint256 i; i < 16; ++i) {
                for (uint256 j; j < 3; ++j) s[i * k + j] = s3[3 * i + j];
                for (uint256 j = 3; j < k; ++j) s[i * k + j] = uint256(keccak256(abi.encode(i, j))) % R;
            }
            vm.assertTrue(v[w].verifyBatch(p, s), "real proofs verify with k = 4 / 5");
            (s[5 * k + 1], s[6 * k + 1]) = (s[6 * k + 1], s[5 * k + 1]); // two output hashes swapped
            vm.assertFalse(v[w].verifyBatch(p, s), "swapped signals fail");
            vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.InvalidProofAt.selector, 5));
            v[w].requireBatch(p, s);
            (s[5 * k + 1], s[6 * k + 1]) = (s[6 * k + 1], s[5 * k + 1]);
            s[9 * k + k - 1] += R;
            vm.assertFalse(v[w].verifyBatch(p, s), "an extra signal >= R fails");
            vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.InvalidProofAt.selector, 9));
            v[w].requireBatch(p, s);
        }
    }

    function test_badShape_reverts() public {
        (uint256[8][] memory p, uint256[] memory s) = _take(4);
        uint256[] memory short = new uint256[](11);
        for (uint256 i; i < 11; ++i) short[i] = s[i];
        vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.BadBatchShape.selector, 4, 11, 3));
        batch.verifyBatch(p, short);
        uint256[8][] memory none = new uint256[8][](0);
        vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.BadBatchShape.selector, 0, 0, 3));
        batch.verifyBatch(none, new uint256[](0));
    }
}
