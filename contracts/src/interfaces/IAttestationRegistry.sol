// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IAttestationRegistry
/// @notice The one question NodeRegistry and InferenceMarket ask about a node's TEE: may it serve a TEE-only model now?
/// @dev Implemented by AttestationRegistry (constructor(address initialOwner)). Kept separate from NodeRegistry so
///      stake accounting and attestation evidence stay one concern per contract.
interface IAttestationRegistry {
    /// @notice True iff `node` holds an attestation that the registry itself verified (or accepted from an
    ///         attestation verifier it trusts), that has not expired at this block, and whose measurement is
    ///         allow-listed right now (a revoked measurement disqualifies at once).
    function isAttested(address node) external view returns (bool);
}
