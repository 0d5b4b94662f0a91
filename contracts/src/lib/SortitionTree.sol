// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SortitionTree
/// @notice A 4-ary sum tree over uint64 leaf weights with per-epoch snapshots, for stake-weighted draws whose
///         gas grows with log4(leaves) only. Every tree node keeps its live value plus its value at the start
///         of the epoch it was last written in and at the start of the epoch before, so the weights at the
///         start of the current or the previous epoch stay readable (older: SnapshotTooOld).
/// @dev Tree node (level, index): level 0 are leaves; the parent of (l, i) is (l + 1, i / 4); the root is (depth, 0).
///      The tree grows upward: when leaf number 4^depth is added, a new root that copies the old one is made.
///      Leaves are never removed (a leaf of weight 0 costs no draw gas). Packed node layout, one slot:
///      [0, 32) epoch of the last write | [32, 96) live value | [96, 160) value at start of that epoch |
///      [160, 224) value at start of the epoch before.
library SortitionTree {
    // forge-lint: disable-start(unsafe-typecast) -- bit fields of a packed slot; widths documented above
    uint256 private constant K_SHIFT = 2; // K = 4 children per node

    struct Tree {
        uint32 leafCount;
        uint8 depth;
        mapping(uint256 key => uint256 packed) nodes;
        mapping(uint256 leaf => address owner) leafOwner;
        mapping(address owner => uint256 leafPlusOne) leafOf;
    }

    error SnapshotTooOld(uint64 epoch, uint64 lastWriteEpoch);
    error WeightOverflow();
    error DrawInconsistent();

    function _key(uint256 level, uint256 index) private pure returns (uint256) {
        return (level << 128) | index;
    }

    function _cur(uint256 p) private pure returns (uint64) {
        return uint64(p >> 32);
    }

    /// @dev The value of packed node `p` at the start of epoch `e` (e >= last write epoch - 1).
    function _at(uint256 p, uint64 e) private pure returns (uint64) {
        uint64 ep = uint64(uint32(p));
        if (ep < e) return uint64(p >> 32);
        if (ep == e) return uint64(p >> 96);
        if (ep == e + 1) return uint64(p >> 160);
        revert SnapshotTooOld(e, ep);
    }

    /// @dev Rolls `p` to epoch `c` (snapshots) and sets its live value to `v`.
    function _write(uint256 p, uint64 c, uint256 v) private pure returns (uint256) {
        if (v > type(uint64).max) revert WeightOverflow();
        uint64 ep = uint64(uint32(p));
        uint64 cur = uint64(p >> 32);
        uint64 startL = uint64(p >> 96);
        uint64 startPrev = uint64(p >> 160);
        if (ep < c) {
            startPrev = (ep + 1 == c) ? startL : cur;
            startL = cur;
            ep = c;
        }
        return uint256(uint32(ep)) | (v << 32) | (uint256(startL) << 96) | (uint256(startPrev) << 160);
    }

    /// @notice Sets `who`'s live weight to `weight` in epoch `epoch` (creates its leaf on the first non-zero weight).
    function set(Tree storage t, address who, uint64 weight, uint64 epoch) internal {
        uint256 idx = t.leafOf[who];
        if (idx == 0) {
            if (weight == 0) return;
            uint256 n = t.leafCount;
            uint256 d = t.depth;
            if (n > 0 && n == (uint256(1) << (K_SHIFT * d))) {
                // full: a new root above the old one, same values and snapshots
                t.nodes[_key(d + 1, 0)] = t.nodes[_key(d, 0)];
                t.depth = uint8(d + 1);
            }
            t.leafCount = uint32(n + 1);
            t.leafOf[who] = n + 1;
            t.leafOwner[n] = who;
            idx = n + 1;
        }
        uint256 leaf = idx - 1;
        uint256 lp = t.nodes[_key(0, leaf)];
        uint64 old = _cur(lp);
        if (old == weight) return;
        uint256 depth = t.depth;
        for (uint256 level; level <= depth; ++level) {
            uint256 k = _key(level, leaf >> (K_SHIFT * level));
            uint256 p = t.nodes[k];
            uint256 v = uint256(_cur(p)) + weight - old; // never negative: old is part of every ancestor
            t.nodes[k] = _write(p, epoch, v);
        }
    }

    /// @notice `who`'s live weight (0 if it has no leaf).
    function weightOf(Tree storage t, address who) internal view returns (uint64) {
        uint256 idx = t.leafOf[who];
        if (idx == 0) return 0;
        return _cur(t.nodes[_key(0, idx - 1)]);
    }

    /// @notice The live weight of leaf `leaf`.
    function leafWeight(Tree storage t, uint256 leaf) internal view returns (uint64) {
        return _cur(t.nodes[_key(0, leaf)]);
    }

    /// @notice `who`'s weight at the start of `epoch`.
    function weightAt(Tree storage t, address who, uint64 epoch) internal view returns (uint64) {
        uint256 idx = t.leafOf[who];
        if (idx == 0) return 0;
        return _at(t.nodes[_key(0, idx - 1)], epoch);
    }

    /// @notice The live total.
    function total(Tree storage t) internal view returns (uint64) {
        return _cur(t.nodes[_key(t.depth, 0)]);
    }

    /// @notice The total at the start of `epoch`.
    function totalAt(Tree storage t, uint64 epoch) internal view returns (uint64) {
        return _at(t.nodes[_key(t.depth, 0)], epoch);
    }

    /// @notice The owner of leaf `leaf`.
    function ownerOf(Tree storage t, uint256 leaf) internal view returns (address) {
        return t.leafOwner[leaf];
    }

    /// @dev Picks the child of node (cl + 1, j) that holds position x; returns it and the position within it.
    ///      ex[k] = leaf << 64 | weight of an excluded leaf.
    function _descend(Tree storage t, uint64 epoch, uint256 cl, uint256 j, uint256 x, uint256[] memory ex, uint256 exCount)
        private
        view
        returns (uint256, uint256)
    {
        uint256 shift = K_SHIFT * cl;
        uint256 end = (uint256(t.leafCount) + (uint256(1) << shift) - 1) >> shift; // nodes at level cl
        if (end > (j << K_SHIFT) + 4) end = (j << K_SHIFT) + 4;
        for (uint256 c = j << K_SHIFT; c < end; ++c) {
            uint256 v = _at(t.nodes[_key(cl, c)], epoch) - _excluded(ex, exCount, shift, c);
            if (x < v) return (c, x);
            x -= v;
        }
        revert DrawInconsistent();
    }

    function _excluded(uint256[] memory ex, uint256 exCount, uint256 shift, uint256 c) private pure returns (uint256 sum) {
        for (uint256 k; k < exCount; ++k) {
            uint256 e = ex[k];
            if ((e >> 64) >> shift == c) sum += uint64(e);
        }
    }

    /// @notice Draws a leaf with probability proportional to its weight at the start of `epoch`, leaving out
    ///         the first `exCount` leaves of `ex` (each packed as leaf << 64 | its weight at that epoch).
    /// @return leaf The drawn leaf.
    /// @return w Its weight at `epoch`; 0 if nothing is left to draw.
    function pick(
        Tree storage t,
        uint64 epoch,
        uint256 r,
        uint256[] memory ex,
        uint256 exCount
    ) internal view returns (uint256 leaf, uint64 w) {
        uint256 depth = t.depth;
        uint256 tot = _at(t.nodes[_key(depth, 0)], epoch);
        for (uint256 k; k < exCount; ++k) {
            tot -= uint64(ex[k]);
        }
        if (tot == 0) return (0, 0);
        uint256 x = r % tot;
        uint256 j = 0;
        for (uint256 level = depth; level > 0; --level) {
            (j, x) = _descend(t, epoch, level - 1, j, x, ex, exCount);
        }
        leaf = j;
        w = _at(t.nodes[_key(0, j)], epoch);
    }
    // forge-lint: disable-end(unsafe-typecast)
}
