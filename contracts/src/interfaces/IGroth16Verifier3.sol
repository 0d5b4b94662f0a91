// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IGroth16Verifier3
/// @notice The snarkjs-exported Groth16 verifier with 3 public signals
///         (proof mode 1: inputHash, outputHash, requestBinding).
interface IGroth16Verifier3 {
    /// @notice Verifies a Groth16 proof; returns false (never reverts) on a bad proof or out-of-field signal.
    function verifyProof(
        uint256[2] calldata _pA,
        uint256[2][2] calldata _pB,
        uint256[2] calldata _pC,
        uint256[3] calldata _pubSignals
    ) external view returns (bool);
}
