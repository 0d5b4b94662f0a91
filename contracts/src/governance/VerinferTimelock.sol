// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Compiles OpenZeppelin's TimelockController unchanged so scripts/build_contracts.py can emit its artifact:
// it owns NodeRegistry, InferenceMarket and AttestationRegistry after deployment (verinfer/chain/deploy.py).
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
