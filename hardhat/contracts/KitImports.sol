// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Builds the kit and the guide's consumer through the same import paths a Foundry project uses.
import {DigitGate} from "verinfer/kit/examples/DigitGate.sol";
import {VerinferConsumer, VerinferHasher, IInferenceMarket} from "verinfer/kit/VerinferConsumer.sol";
import {Poseidon2} from "verinfer/kit/poseidon/Poseidon2.sol";
import {Poseidon3} from "verinfer/kit/poseidon/Poseidon3.sol";
import {Poseidon4} from "verinfer/kit/poseidon/Poseidon4.sol";
import {Poseidon5} from "verinfer/kit/poseidon/Poseidon5.sol";
import {Poseidon6} from "verinfer/kit/poseidon/Poseidon6.sol";
