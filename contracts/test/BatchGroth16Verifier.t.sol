// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {BatchGroth16Verifier} from "../src/verifiers/BatchGroth16Verifier.sol";
import {BatchGroth16VerifierDigitsMlp} from "../src/verifiers/BatchGroth16VerifierDigitsMlp.sol";
import {Groth16VerifierDigitsMlp} from "../src/verifiers/DigitsMlpVerifier.sol";
import {DigitsBatchFixture} from "./fixtures/batch/DigitsBatchFixture.sol";

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

    /// tx gas = 21000 + calldata + execution of the external call
    function _gas(uint256 n) internal returns (uint256 txGas) {
        (uint256[8][] memory p, uint256[] memory s) = _take(n);
        bytes memory data = abi.encodeCall(BatchGroth16Verifier.verifyBatch, (p, s));
        batch.numPublic(); // warm the address, as a transaction's target is
        uint256 g0 = gasleft();
        (bool success, bytes memory ret) = address(batch).staticcall(data);
        uint256 exec = g0 - gasleft();
        vm.assertTrue(success && abi.decode(ret, (bool)), "batch of valid proofs verifies");
        txGas = 21000 + _calldataGas(data) + exec;
        emit log_named_uint(string.concat("n=", _str(n), " tx gas"), txGas);
        emit log_named_uint(string.concat("n=", _str(n), " tx gas per proof"), txGas / n);
        emit log_named_uint(string.concat("n=", _str(n), " execution gas per proof"), exec / n);
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
        vm.assertLe(g16 / 16, 72_000, "per-proof transaction gas at n = 16 (execution alone is logged)");
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

    function test_tamperedProofPoint_andSwappedProofs_fail() public {
        (uint256[8][] memory p, uint256[] memory s) = _take(4);
        (p[1], p[2]) = (p[2], p[1]); // each proof is bound to its own signals
        vm.assertFalse(batch.verifyBatch(p, s), "swapped proofs fail");
        vm.expectRevert(abi.encodeWithSelector(BatchGroth16Verifier.InvalidProofAt.selector, 1));
        batch.requireBatch(p, s);
        (p, s) = _take(4);
        p[3][7] = p[3][7] + 1; // not on the curve
        uint256 g0 = gasleft();
        vm.assertFalse(batch.verifyBatch(p, s), "off-curve point fails");
        vm.assertLe(g0 - gasleft(), 1_000_000, "a bad point cannot burn the caller's gas");
        (p, s) = _take(4);
        s[0] = s[0] + 21888242871839275222246405745257275088548364400416034343698204186575808495617;
        vm.assertFalse(batch.verifyBatch(p, s), "signal >= field fails");
    }

    function test_nonCanonicalAy_isTreatedAlikeInBatchAndSingleChecks() public view {
        (uint256[8][] memory p, uint256[] memory s) = _take(4);
        p[2][1] += 21888242871839275222246405745257275088696311157297823662689037894645226208583; // + Q
        uint256[] memory one = new uint256[](3);
        for (uint256 j; j < 3; ++j) one[j] = s[6 + j];
        vm.assertEq(batch.verifyBatch(p, s), batch.verifyOne(p[2], one), "batch and single agree");
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
