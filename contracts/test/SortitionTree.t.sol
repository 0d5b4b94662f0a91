// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {SortitionTree} from "../src/lib/SortitionTree.sol";

/// @dev Exposes the library over one tree.
contract TreeHarness {
    using SortitionTree for SortitionTree.Tree;

    SortitionTree.Tree internal t;

    function set(address who, uint64 w, uint64 epoch) external {
        t.set(who, w, epoch);
    }

    function total() external view returns (uint64) {
        return t.total();
    }

    function totalAt(uint64 e) external view returns (uint64) {
        return t.totalAt(e);
    }

    function weightOf(address who) external view returns (uint64) {
        return t.weightOf(who);
    }

    function weightAt(address who, uint64 e) external view returns (uint64) {
        return t.weightAt(who, e);
    }

    function depth() external view returns (uint8) {
        return t.depth;
    }

    function pick(uint64 e, uint256 r) external view returns (address who, uint64 w) {
        uint256[] memory ex = new uint256[](0);
        (uint256 leaf, uint64 ww) = t.pick(e, r, ex, 0);
        if (ww == 0) return (address(0), 0);
        return (t.ownerOf(leaf), ww);
    }

    /// @dev Draws k distinct leaves (without replacement).
    function pickDistinct(uint64 e, uint256 seed, uint256 k) external view returns (address[] memory out) {
        uint256[] memory ex = new uint256[](k);
        out = new address[](k);
        for (uint256 i; i < k; ++i) {
            (uint256 leaf, uint64 w) = t.pick(e, uint256(keccak256(abi.encode(seed, i))), ex, i);
            if (w == 0) {
                assembly {
                    mstore(out, i)
                }
                return out;
            }
            ex[i] = (leaf << 64) | w;
            out[i] = t.ownerOf(leaf);
        }
    }
}

contract SortitionTreeTest is TestBase {
    TreeHarness internal h;

    function setUp() public {
        h = new TreeHarness();
    }

    function _a(uint256 i) internal pure returns (address) {
        return address(uint160(0x5000 + i));
    }

    function testFuzz_total_equals_sum_of_leaves(uint256 seed, uint8 n, uint8 ops) public {
        n = uint8(bound(n, 1, 70));
        ops = uint8(bound(ops, 1, 120));
        uint64[] memory w = new uint64[](n);
        uint64 epoch = 1;
        for (uint256 k; k < ops; ++k) {
            uint256 r = uint256(keccak256(abi.encode(seed, k)));
            uint256 i = r % n;
            uint64 v = uint64((r >> 16) % 1000);
            if ((r >> 40) % 7 == 0) ++epoch;
            h.set(_a(i), v, epoch);
            w[i] = v;
        }
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            sum += w[i];
            vm.assertEq(uint256(h.weightOf(_a(i))), uint256(w[i]), "leaf");
        }
        vm.assertEq(uint256(h.total()), sum, "root == sum of leaves");
    }

    function test_snapshots_currentAndPreviousEpoch() public {
        h.set(_a(0), 100, 5);
        h.set(_a(1), 50, 5);
        vm.assertEq(uint256(h.totalAt(5)), 0, "start of epoch 5: empty");
        vm.assertEq(uint256(h.totalAt(6)), 150, "start of 6");
        h.set(_a(0), 10, 6); // change in epoch 6
        vm.assertEq(uint256(h.totalAt(6)), 150, "start of 6 unchanged");
        vm.assertEq(uint256(h.weightAt(_a(0), 6)), 100, "leaf at start of 6");
        vm.assertEq(uint256(h.totalAt(5)), 0, "start of 5 still readable");
        vm.assertEq(uint256(h.totalAt(7)), 60, "start of 7");
        h.set(_a(1), 0, 8);
        vm.assertEq(uint256(h.totalAt(8)), 60, "start of 8");
        vm.assertEq(uint256(h.totalAt(7)), 60, "start of 7 via previous-epoch slot");
        vm.expectRevert();
        h.totalAt(6); // two epochs back on a node written in 8
    }

    function test_growth_keepsTotalsAndSnapshots() public {
        for (uint256 i; i < 17; ++i) h.set(_a(i), uint64(i + 1), 1);
        vm.assertEq(uint256(h.depth()), 3, "17 leaves -> depth 3");
        vm.assertEq(uint256(h.total()), 17 * 18 / 2, "total");
        vm.assertEq(uint256(h.totalAt(1)), 0, "snapshot of the start of 1");
        vm.assertEq(uint256(h.totalAt(2)), 153, "start of 2");
    }

    function test_pick_isStakeWeighted() public {
        h.set(_a(0), 700, 1);
        h.set(_a(1), 200, 1);
        h.set(_a(2), 100, 1);
        h.set(_a(3), 0, 1); // no leaf
        uint256[3] memory hits;
        for (uint256 s; s < 2000; ++s) {
            (address who,) = h.pick(2, uint256(keccak256(abi.encode(s))));
            for (uint256 i; i < 3; ++i) if (who == _a(i)) hits[i]++;
        }
        vm.assertGe(hits[0], 1300, "~70%");
        vm.assertLe(hits[0], 1500, "~70%");
        vm.assertGe(hits[1], 320, "~20%");
        vm.assertLe(hits[1], 480, "~20%");
        vm.assertEq(hits[0] + hits[1] + hits[2], 2000, "always someone");
    }

    function testFuzz_pickDistinct_noDuplicates_noZeroWeight(uint256 seed, uint8 n, uint8 k) public {
        n = uint8(bound(n, 1, 40));
        k = uint8(bound(k, 1, 7));
        for (uint256 i; i < n; ++i) {
            uint64 w = uint64(uint256(keccak256(abi.encode(seed, i))) % 5); // some zero
            h.set(_a(i), w, 1);
        }
        address[] memory got = h.pickDistinct(2, seed, k);
        for (uint256 i; i < got.length; ++i) {
            vm.assertTrue(h.weightAt(got[i], 2) > 0, "weighted");
            for (uint256 j = i + 1; j < got.length; ++j) vm.assertTrue(got[i] != got[j], "distinct");
        }
        uint256 positive;
        for (uint256 i; i < n; ++i) if (h.weightOf(_a(i)) > 0) ++positive;
        vm.assertEq(got.length, positive < k ? positive : k, "as many as possible");
    }
}
