// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VerinferHasher} from "../../src/kit/VerinferHasher.sol";
import {Poseidon2} from "../../src/kit/poseidon/Poseidon2.sol";
import {Poseidon3} from "../../src/kit/poseidon/Poseidon3.sol";
import {Poseidon4} from "../../src/kit/poseidon/Poseidon4.sol";
import {Poseidon5} from "../../src/kit/poseidon/Poseidon5.sol";
import {Poseidon6} from "../../src/kit/poseidon/Poseidon6.sol";

/// @notice The cheatcodes the kit tests use (forge-std is not installable offline).
interface KitVm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function prank(address sender) external;
    function deal(address account, uint256 newBalance) external;
    function roll(uint256 newHeight) external;
    function expectRevert(bytes calldata revertData) external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
    function assertEq(uint256 left, uint256 right, string calldata err) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata err) external pure;
    function assertEq(address left, address right, string calldata err) external pure;
    function assertEq(bool left, bool right, string calldata err) external pure;
    function assertEq(string calldata left, string calldata right, string calldata err) external pure;
    function assertTrue(bool condition, string calldata err) external pure;
    function assertFalse(bool condition, string calldata err) external pure;
    function assertLe(uint256 left, uint256 right, string calldata err) external pure;
}

/// @notice Base for kit tests: cheatcodes, gas logging, and a freshly deployed hasher.
abstract contract KitTest {
    KitVm internal constant vm = KitVm(address(uint160(uint256(keccak256("hevm cheat code")))));
    bool public IS_TEST = true;

    /// forge prints these with -vv (DSTest log format): the gas figures docs/dapp.md quotes.
    event log_named_uint(string key, uint256 val);

    function deployHasher() internal returns (VerinferHasher) {
        address[5] memory p = [
            address(new Poseidon2()),
            address(new Poseidon3()),
            address(new Poseidon4()),
            address(new Poseidon5()),
            address(new Poseidon6())
        ];
        return new VerinferHasher(p);
    }

    /// 64 int8 values like an 8x8 digits image (deterministic, spread over the whole int8 range).
    function digitsImage(uint256 seed) internal pure returns (int256[] memory xs) {
        xs = new int256[](64);
        for (uint256 i = 0; i < 64; i++) {
            xs[i] = int256(uint256(keccak256(abi.encode(seed, i))) % 256) - 128;
        }
    }
}
