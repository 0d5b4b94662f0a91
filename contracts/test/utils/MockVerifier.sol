// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Test double for the snarkjs verifiers (3 and 4 public signals). Answers a configurable bool;
///         when expectations are set it answers true only for exactly that proof and those public signals,
///         so tests check the market's signal layout. It can also revert or burn all its gas.
contract MockVerifier {
    bool public answer;
    bool public shouldRevert;
    bool public burnGas;
    bytes32 public expectedProofHash; // keccak256(abi.encode(a, b, c)); 0 = any
    bytes32 public expectedSignalsHash; // keccak256(abi.encode(pubSignals)); 0 = any

    constructor(bool answer_) {
        answer = answer_;
    }

    function setAnswer(bool answer_, bool shouldRevert_, bool burnGas_) external {
        answer = answer_;
        shouldRevert = shouldRevert_;
        burnGas = burnGas_;
    }

    function setExpected(bytes32 proofHash, bytes32 signalsHash) external {
        expectedProofHash = proofHash;
        expectedSignalsHash = signalsHash;
    }

    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[3] calldata pub
    ) external view returns (bool) {
        return _answer(keccak256(abi.encode(a, b, c)), keccak256(abi.encode(pub)));
    }

    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[4] calldata pub
    ) external view returns (bool) {
        return _answer(keccak256(abi.encode(a, b, c)), keccak256(abi.encode(pub)));
    }

    function _answer(bytes32 proofHash, bytes32 signalsHash) private view returns (bool) {
        if (shouldRevert) revert("mock verifier revert");
        if (burnGas) {
            uint256 x;
            while (true) {
                x = uint256(keccak256(abi.encode(x)));
            }
        }
        if (expectedProofHash != bytes32(0) && expectedProofHash != proofHash) return false;
        if (expectedSignalsHash != bytes32(0) && expectedSignalsHash != signalsHash) return false;
        return answer;
    }
}
