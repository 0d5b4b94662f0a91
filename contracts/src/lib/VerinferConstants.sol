// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title VerinferConstants
/// @notice Wire-level constants shared by every verinfer contract (see docs/architecture.md §1).
library VerinferConstants {
    /// @notice The BN254 scalar field order; every Groth16 public signal must be below it.
    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice The "invalid input" outcome hash (type(uint256).max); never a field element.
    bytes32 internal constant INVALID_INPUT = bytes32(type(uint256).max);

    /// @notice Shard layer end that means "up to the last layer" (a full-model shard is [0, FULL_MODEL_END)).
    uint16 internal constant FULL_MODEL_END = type(uint16).max;

    /// @notice Proof modes stored in ModelRegistry.
    uint8 internal constant PROOF_NONE = 0;
    uint8 internal constant PROOF_PUBLIC_WEIGHTS = 1;
    uint8 internal constant PROOF_PRIVATE_WEIGHTS = 2;
}
