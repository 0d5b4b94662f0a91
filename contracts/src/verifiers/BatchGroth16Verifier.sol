// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Batch Groth16 verification (BN254) by a random linear combination.
/// @notice n proofs of ONE circuit in one call with n + 3 pairings instead of 4n:
///   prod_i e(-r_i A_i, B_i) * e((sum r_i) alpha, beta) * e(sum_i r_i L_i, gamma) * e(sum_i r_i C_i, delta) == 1
/// where L_i = IC_0 + sum_j s_ij IC_j. r_0 = 1 and r_i = keccak256(seed, i) mod R for i > 0, with
/// seed = keccak256(n, all proofs, k*n, all signals): the prover cannot choose its proofs after the r_i.
/// A batch that fails is re-checked proof by proof and reverts `InvalidProofAt(i)` naming the first
/// bad one, so the caller can resubmit the others (or accept them one by one with `checkEach`).
/// Concrete verifiers (BatchGroth16Verifier<Model>.sol) are rendered by verinfer.prover.batch from
/// the circuit's verification key and only supply `_vk()` and `numPublic()`.
abstract contract BatchGroth16Verifier {
    error InvalidProofAt(uint256 index);
    error BadBatchShape(uint256 proofs, uint256 signals, uint256 perProof);

    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    /// @dev g = [alpha.x, alpha.y, beta(4), gamma(4), delta(4)] with G2 as (x.c1, x.c0, y.c1, y.c0);
    /// ic = [IC0.x, IC0.y, IC1.x, IC1.y, ...].
    function _vk() internal pure virtual returns (uint256[14] memory g, uint256[] memory ic);

    /// @notice Public signals per proof.
    function numPublic() public pure virtual returns (uint256);

    /// @notice snarkjs-compatible single check (3 public signals), so one contract is a model's only verifier:
    ///         InferenceMarket.submitProof calls this, submitProofBatch calls checkEach.
    function verifyProof(uint256[2] calldata a, uint256[2][2] calldata b, uint256[2] calldata c, uint256[3] calldata pub)
        external
        view
        returns (bool)
    {
        uint256[] memory s = new uint256[](3);
        for (uint256 j; j < 3; ++j) s[j] = pub[j];
        return _snark(a, b, c, s);
    }

    /// @notice snarkjs-compatible single check (4 public signals: private-weights circuits).
    function verifyProof(uint256[2] calldata a, uint256[2][2] calldata b, uint256[2] calldata c, uint256[4] calldata pub)
        external
        view
        returns (bool)
    {
        uint256[] memory s = new uint256[](4);
        for (uint256 j; j < 4; ++j) s[j] = pub[j];
        return _snark(a, b, c, s);
    }

    /// @dev false (not a revert) for a signal count this circuit does not have, as a snarkjs verifier would.
    function _snark(uint256[2] calldata a, uint256[2][2] calldata b, uint256[2] calldata c, uint256[] memory s)
        private
        view
        returns (bool)
    {
        if (s.length != numPublic()) return false;
        uint256[8] memory p = [a[0], a[1], b[0][0], b[0][1], b[1][0], b[1][1], c[0], c[1]];
        return this.verifyOne(p, s); // a self-call: _verifyOne reads calldata
    }

    /// @notice One proof (calldata layout [a0, a1, b00, b01, b10, b11, c0, c1], as InferenceMarket takes it).
    function verifyOne(uint256[8] calldata proof, uint256[] calldata signals) public view returns (bool) {
        if (signals.length != numPublic()) revert BadBatchShape(1, signals.length, numPublic());
        return _verifyOne(proof, signals, 0);
    }

    /// @notice true iff every proof verifies (one randomised pairing product).
    function verifyBatch(uint256[8][] calldata proofs, uint256[] calldata signals) public view returns (bool) {
        uint256 k = numPublic();
        uint256 n = proofs.length;
        if (n == 0 || signals.length != n * k) revert BadBatchShape(n, signals.length, k);
        bytes32 seed = _seed(proofs, signals);
        uint256[] memory inp = new uint256[]((n + 3) * 6);
        uint256[] memory coef = new uint256[](k);
        Acc memory a = Acc(0, 0, 0, true);
        if (!_accumulate(proofs, signals, seed, inp, coef, a)) return false;
        if (!_tail(inp, n * 6, coef, a)) return false;
        return _pairing(inp);
    }

    /// @dev Per proof: r_i, (-r_i A_i, B_i) into the pairing input, sum r_i C_i and sum r_i into `a`,
    /// coef_j += r_i s_ij. Assembly only to keep the per-proof overhead small (the math is _verifyOne's).
    /// Returns false when a precompile rejects a point or a signal is outside the field.
    function _accumulate(
        uint256[8][] calldata proofs,
        uint256[] calldata signals,
        bytes32 seed,
        uint256[] memory inp,
        uint256[] memory coef,
        Acc memory a
    ) internal view returns (bool ok) {
        uint256 k = coef.length;
        ok = true;
        assembly ("memory-safe") {
            // scratch: [cx, cy, qx, qy, r] (unallocated memory, free again afterwards)
            let acc := mload(0x40)
            mstore(acc, 0)
            mstore(add(acc, 32), 0)
            let rsum := 0
            for { let i := 0 } lt(i, proofs.length) { i := add(i, 1) } {
                let pr := add(proofs.offset, mul(i, 256))
                let r := 1
                if i {
                    mstore(0x00, seed)
                    mstore(0x20, i)
                    r := mod(keccak256(0x00, 0x40), R)
                }
                let o := add(add(inp, 32), mul(i, 192))
                calldatacopy(o, pr, 64) // A
                mstore(add(o, 32), mod(mload(add(o, 32)), Q)) // A.y reduced as in _verifyOne / snarkjs
                calldatacopy(add(acc, 64), add(pr, 192), 64) // C
                if i {
                    mstore(add(o, 64), r)
                    ok := and(ok, staticcall(6000, 7, o, 96, o, 64)) // r A
                    mstore(add(acc, 128), r)
                    ok := and(ok, staticcall(6000, 7, add(acc, 64), 96, add(acc, 64), 64)) // r C
                }
                ok := and(ok, staticcall(150, 6, acc, 128, acc, 64)) // sum r C
                mstore(add(o, 32), mod(sub(Q, mod(mload(add(o, 32)), Q)), Q)) // -(r A)
                calldatacopy(add(o, 64), add(pr, 64), 128) // B
                rsum := addmod(rsum, r, R)
                let sig := add(signals.offset, mul(mul(i, k), 32))
                for { let j := 0 } lt(j, k) { j := add(j, 1) } {
                    let sv := calldataload(add(sig, mul(j, 32)))
                    if iszero(lt(sv, R)) { ok := 0 }
                    let c := add(add(coef, 32), mul(j, 32))
                    mstore(c, addmod(mload(c), mulmod(r, sv, R), R))
                }
            }
            mstore(a, rsum)
            mstore(add(a, 32), mload(acc))
            mstore(add(a, 64), mload(add(acc, 32)))
        }
    }

    /// @dev keccak256 over the ABI encoding of the proofs and signals exactly as they sit in calldata
    /// (head words of the two arrays, then their bodies): every proof and signal enters the seed.
    function _seed(uint256[8][] calldata proofs, uint256[] calldata signals) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            let pl := mul(proofs.length, 256)
            let sl := mul(signals.length, 32)
            mstore(m, proofs.length)
            calldatacopy(add(m, 32), proofs.offset, pl)
            mstore(add(add(m, 32), pl), signals.length)
            calldatacopy(add(add(m, 64), pl), signals.offset, sl)
            h := keccak256(m, add(add(64, pl), sl))
        }
    }

    struct Acc {
        uint256 rsum;
        uint256 cx;
        uint256 cy;
        bool ok;
    }

    /// @dev The three fixed pairs: ((sum r) alpha, beta), (sum r_i L_i, gamma), (sum r_i C_i, delta).
    function _tail(uint256[] memory inp, uint256 o2, uint256[] memory coef, Acc memory a) internal view returns (bool) {
        (uint256[14] memory g, uint256[] memory ic) = _vk();
        // sum_i r_i L_i = (sum r_i) IC0 + sum_j coef_j IC_{j+1}
        (uint256 lx, uint256 ly, bool ok) = _mul(ic[0], ic[1], a.rsum, a.ok);
        for (uint256 j; j < coef.length; ++j) {
            uint256 px;
            uint256 py;
            (px, py, ok) = _mul(ic[2 * j + 2], ic[2 * j + 3], coef[j], ok);
            (lx, ly, ok) = _add(lx, ly, px, py, ok);
        }
        uint256 alx;
        uint256 aly;
        (alx, aly, ok) = _mul(g[0], g[1], a.rsum, ok);
        inp[o2] = alx;
        inp[o2 + 1] = aly;
        inp[o2 + 6] = lx;
        inp[o2 + 7] = ly;
        inp[o2 + 12] = a.cx;
        inp[o2 + 13] = a.cy;
        for (uint256 t; t < 4; ++t) {
            inp[o2 + 2 + t] = g[2 + t];
            inp[o2 + 8 + t] = g[6 + t];
            inp[o2 + 14 + t] = g[10 + t];
        }
        return ok;
    }

    /// @notice Reverts `InvalidProofAt(i)` with the first invalid proof of a failing batch.
    function requireBatch(uint256[8][] calldata proofs, uint256[] calldata signals) external view {
        if (verifyBatch(proofs, signals)) return;
        for (uint256 i; i < proofs.length; ++i) {
            if (!_verifyOne(proofs[i], signals, i * numPublic())) revert InvalidProofAt(i);
        }
        revert InvalidProofAt(type(uint256).max); // unreachable unless the batch check is unsound
    }

    /// @notice Per-proof results (batch first; one by one only when the batch fails).
    function checkEach(uint256[8][] calldata proofs, uint256[] calldata signals) external view returns (bool[] memory ok) {
        ok = new bool[](proofs.length);
        if (verifyBatch(proofs, signals)) {
            for (uint256 i; i < ok.length; ++i) ok[i] = true;
            return ok;
        }
        for (uint256 i; i < ok.length; ++i) ok[i] = _verifyOne(proofs[i], signals, i * numPublic());
    }

    function _verifyOne(uint256[8] calldata p, uint256[] calldata signals, uint256 off) internal view returns (bool) {
        uint256 k = numPublic();
        (uint256[14] memory g, uint256[] memory ic) = _vk();
        uint256 lx = ic[0];
        uint256 ly = ic[1];
        bool ok = true;
        for (uint256 j; j < k; ++j) {
            uint256 s = signals[off + j];
            if (s >= R) return false;
            (uint256 px, uint256 py, bool ok1) = _mul(ic[2 * j + 2], ic[2 * j + 3], s, ok);
            (lx, ly, ok) = _add(lx, ly, px, py, ok1);
        }
        if (!ok) return false;
        uint256[] memory inp = new uint256[](24);
        inp[0] = p[0];
        inp[1] = p[1] == 0 ? 0 : Q - (p[1] % Q);
        for (uint256 t; t < 4; ++t) inp[2 + t] = p[2 + t];
        inp[6] = g[0];
        inp[7] = g[1];
        inp[12] = lx;
        inp[13] = ly;
        inp[18] = p[6];
        inp[19] = p[7];
        for (uint256 t; t < 4; ++t) {
            inp[8 + t] = g[2 + t];
            inp[14 + t] = g[6 + t];
            inp[20 + t] = g[10 + t];
        }
        return _pairing(inp);
    }

    function _mul(uint256 x, uint256 y, uint256 s, bool okIn) internal view returns (uint256 rx, uint256 ry, bool ok) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, x)
            mstore(add(m, 32), y)
            mstore(add(m, 64), s)
            ok := and(okIn, staticcall(6000, 7, m, 96, m, 64))
            rx := mload(m)
            ry := mload(add(m, 32))
        }
    }

    function _add(uint256 x1, uint256 y1, uint256 x2, uint256 y2, bool okIn)
        internal
        view
        returns (uint256 rx, uint256 ry, bool ok)
    {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, x1)
            mstore(add(m, 32), y1)
            mstore(add(m, 64), x2)
            mstore(add(m, 96), y2)
            ok := and(okIn, staticcall(150, 6, m, 128, m, 64))
            rx := mload(m)
            ry := mload(add(m, 32))
        }
    }

    function _pairing(uint256[] memory inp) internal view returns (bool) {
        uint256 len = inp.length * 32;
        uint256 cost = 45_000 + 34_000 * (inp.length / 6); // EIP-1108 price: a bad point cannot burn more
        bool success;
        uint256 res;
        assembly ("memory-safe") {
            success := staticcall(cost, 8, add(inp, 32), len, 0x00, 0x20)
            res := mload(0x00)
        }
        return success && res == 1;
    }
}
