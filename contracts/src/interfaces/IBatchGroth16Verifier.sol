// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IBatchGroth16Verifier
/// @notice The batch entry point of verifiers/BatchGroth16Verifier.sol that InferenceMarket.submitProofBatch calls.
interface IBatchGroth16Verifier {
    /// @notice Per-proof results: one randomised pairing product for the batch, proof by proof only when it fails.
    /// @param proofs [a0, a1, b00, b01, b10, b11, c0, c1] each.
    /// @param signals numPublic() signals per proof, concatenated.
    function checkEach(uint256[8][] calldata proofs, uint256[] calldata signals) external view returns (bool[] memory);
}
