// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KitTest} from "./KitTest.sol";
import {VerinferHasher} from "../../src/kit/VerinferHasher.sol";

/// @notice The on-chain hasher: reference vectors, packing rules, refusals and gas. Equality with Python's
///         hash_vector on random vectors of every width is tests/test_kit_hasher.py (anvil).
contract VerinferHasherTest is KitTest {
    VerinferHasher internal h;

    function setUp() public {
        h = deployHasher();
    }

    function test_poseidon_circomlibjsReferenceVectors() public view {
        uint256[] memory a = new uint256[](2);
        (a[0], a[1]) = (1, 2);
        vm.assertEq(h.poseidon(a), 0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a, "poseidon([1,2])");
        uint256[] memory b = new uint256[](4);
        (b[0], b[1], b[2], b[3]) = (1, 2, 3, 4);
        vm.assertEq(h.poseidon(b), 0x299c867db6c1fdd79dcefa40e4510b9837e60ebb1ce0663dbaa525df65250465, "poseidon([1..4])");
    }

    function test_hashVector_isPoseidonOfLengthAndPackedWords() public view {
        int256[] memory xs = digitsImage(1);
        uint256[] memory words = h.packWords(xs, 8);
        vm.assertEq(words.length, 3, "64 int8 values = 31 + 31 + 2 per word");
        uint256[] memory inputs = new uint256[](4);
        inputs[0] = 64;
        for (uint256 i = 0; i < 3; i++) {
            inputs[i + 1] = words[i];
        }
        vm.assertEq(h.hashVector(xs, 8), bytes32(h.poseidon(inputs)), "state = len, then Poseidon([state] + words)");
        // little-endian offset packing: element 0 sits in the low byte of word 0
        vm.assertEq(words[0] & 0xff, uint256(xs[0] + 128), "x0 + 128 in bits 0..7");
        vm.assertEq((words[1] >> 8) & 0xff, uint256(xs[32] + 128), "x32 = word 1, slot 1");
        vm.assertLe(words[0], (uint256(1) << 248) - 1, "248 bits per word");
    }

    function testFuzz_hashVector_bindsEveryElement(uint256 seed, uint8 index) public view {
        int256[] memory xs = digitsImage(seed);
        bytes32 before = h.hashVector(xs, 8);
        uint256 i = index % 64;
        xs[i] = xs[i] == 127 ? int256(-128) : xs[i] + 1;
        vm.assertTrue(h.hashVector(xs, 8) != before, "changing one pixel changes the hash");
    }

    function test_hashVector_emptyIsItsLength() public view {
        vm.assertEq(h.hashVector(new int256[](0), 8), bytes32(0), "no chunks: state = len = 0");
    }

    function test_refusals() public {
        int256[] memory xs = new int256[](1);
        xs[0] = 128;
        vm.expectRevert(abi.encodeWithSelector(VerinferHasher.ValueOutOfRange.selector, 0, int256(128), 8));
        h.hashVector(xs, 8);
        vm.expectRevert(abi.encodeWithSelector(VerinferHasher.VectorTooLong.selector, 156, 155));
        h.hashVector(new int256[](156), 8);
        vm.expectRevert(abi.encodeWithSelector(VerinferHasher.InvalidBits.selector, 249));
        h.hashVector(xs, 249);
        vm.expectRevert(abi.encodeWithSelector(VerinferHasher.InvalidBits.selector, 64));
        h.inputDocument(new int256[](1), 64);
    }

    function test_inputDocument_isTheCanonicalTensorPayload() public view {
        int256[] memory xs = new int256[](3);
        (xs[0], xs[1], xs[2]) = (int256(-128), int256(0), int256(127));
        (bytes memory doc, string memory cid) = h.inputDocument(xs, 8);
        vm.assertEq(
            string(doc),
            '{"data":[-128,0,127],"dtype":"int8","format":"verinfer.tensor.v1","shape":[3]}',
            "sorted keys, compact separators (verinfer.models.tensor.encode_tensor)"
        );
        vm.assertEq(bytes(cid).length, 59, "b + 58 base32 chars (CIDv1 raw sha2-256)");
        vm.assertEq(cid, h.cidOf(doc), "cid of the document");
    }

    function test_argmax_firstOnTies() public view {
        int256[] memory xs = new int256[](4);
        (xs[0], xs[1], xs[2], xs[3]) = (int256(-5), int256(9), int256(9), int256(3));
        vm.assertEq(h.argmax(xs), 1, "numpy.argmax: first maximum");
    }

    function test_gas_digits() public {
        int256[] memory img = digitsImage(2);
        uint256 g = gasleft();
        h.hashVector(img, 8);
        uint256 used = g - gasleft();
        emit log_named_uint("gas hashVector(64 x int8) [call from a contract]", used);
        vm.assertLe(used, 120_000, "digits input hash");

        int256[] memory logits = new int256[](10);
        for (uint256 i = 0; i < 10; i++) {
            logits[i] = int256(i) * 1_000_003 - 4_000_000;
        }
        g = gasleft();
        h.hashVector(logits, 32);
        used = g - gasleft();
        emit log_named_uint("gas hashVector(10 x int32) [call from a contract]", used);
        vm.assertLe(used, 100_000, "digits output hash");

        g = gasleft();
        h.inputDocument(img, 8);
        used = g - gasleft();
        emit log_named_uint("gas inputDocument(64 x int8) [payload + CID]", used);
        vm.assertLe(used, 120_000, "digits payload + CID");

        uint256[] memory p4 = new uint256[](4);
        g = gasleft();
        h.poseidon(p4);
        emit log_named_uint("gas poseidon(4 inputs)", g - gasleft());
        uint256[] memory p = new uint256[](2);
        g = gasleft();
        h.poseidon(p);
        emit log_named_uint("gas poseidon(2 inputs)", g - gasleft());
        uint256[] memory p6 = new uint256[](6);
        g = gasleft();
        h.poseidon(p6);
        emit log_named_uint("gas poseidon(6 inputs)", g - gasleft());
    }
}
