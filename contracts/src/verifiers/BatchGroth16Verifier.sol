// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Batch Groth16 verification (BN254) by a random linear combination.
/// @notice n proofs of ONE circuit in one call with n + 3 pairings instead of 4n:
///   prod_i e(-r_i A_i, B_i) * e((sum r_i) alpha, beta) * e(sum_i r_i L_i, gamma) * e(sum_i r_i C_i, delta) == 1
/// where L_i = IC_0 + sum_j s_ij IC_j. r_i = rho^i (r_0 = 1) with rho = seed mod R and
/// seed = keccak256(n, all proofs, k*n, all signals): the prover cannot choose its proofs after the r_i.
/// Soundness: in the exponent the product is sum_i rho^i d_i with d_i = 0 iff proof i holds; a bad proof
/// makes that a nonzero polynomial of degree < n in rho, zero with probability <= (n - 1)/R < 2^-249.
/// A batch that fails is re-checked proof by proof and reverts `InvalidProofAt(i)` naming the first
/// bad one, so the caller can resubmit the others (or accept them one by one with `checkEach`).
/// Concrete verifiers (BatchGroth16Verifier<Model>.sol) are rendered by verinfer.prover.batch from
/// the circuit's verification key and only supply `_vk()` and `numPublic()`.
abstract contract BatchGroth16Verifier {
    error InvalidProofAt(uint256 index);
    error BadBatchShape(uint256 proofs, uint256 signals, uint256 perProof);

    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    /// @dev The verification key as 32-byte words: [alpha.x, alpha.y, beta(4), gamma(4), delta(4), IC_0.x, IC_0.y,
    /// IC_1.x, ...], G2 points as (x.c1, x.c0, y.c1, y.c0). One literal, so loading it is one codecopy.
    function _vk() internal pure virtual returns (bytes memory);

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
    /// @dev One assembly pass (the math is _verifyOne's, over all proofs at once):
    ///   1. seed = keccak256(n, proofs, k*n, signals) over a copy of the calldata;
    ///   2. r_i = rho^i, rho = seed mod R (r_0 = 1: no ecMul for proof 0; then one mulmod per proof; ecMul
    ///      costs 6,000 whatever the scalar, so shorter r_i would save nothing). Per proof: the pair
    ///      (-r_i A_i, B_i) into the pairing input
    ///      (one ecMul by R - r_i gives -r_i A_i), acc += r_i C_i (ecMul + ecAdd), rsum += r_i; then
    ///      coef_j = sum_i r_i s_ij by Horner in rho (unrolled for 3 and 4 signals);
    ///   3. the three fixed pairs (rsum alpha, beta), (rsum IC_0 + sum_j coef_j IC_{j+1}, gamma), (acc, delta);
    ///   4. one pairing call, at its EIP-1108 price (a bad point cannot burn more).
    /// Memory: the pairing input P overwrites the seed copy; scratch S (5 words) and coef (k words) follow P.
    /// Every point reaches a precompile (ecMul/ecAdd for A_i and C_i, i >= 1; the first ecAdd or, when n = 1,
    /// the pairing for C_0; the pairing for A_0 and every B_i), which rejects coordinates >= Q and points off
    /// the curve (and B_i outside the subgroup); A_0.y >= Q is rejected by hand; signals must be < R.
    function verifyBatch(uint256[8][] calldata proofs, uint256[] calldata signals) public view returns (bool ok) {
        uint256 k = numPublic();
        if (proofs.length == 0 || signals.length != proofs.length * k) {
            revert BadBatchShape(proofs.length, signals.length, k);
        }
        uint256 p; // the pairing input: n + 3 pairs of 6 words, then scratch [accx, accy, cx, cy, r, rsum], coef
        assembly ("memory-safe") {
            p := mload(0x40)
            {
                // 1. seed
                let pl := shl(8, proofs.length)
                let sl := shl(5, signals.length)
                mstore(p, proofs.length)
                calldatacopy(add(p, 0x20), proofs.offset, pl)
                mstore(add(add(p, 0x20), pl), signals.length)
                calldatacopy(add(add(p, 0x40), pl), signals.offset, sl)
                mstore(0x00, keccak256(p, add(add(0x40, pl), sl)))
            }
            let s := add(p, mul(add(proofs.length, 3), 192))
            let rr := R // on the stack: with optimizer runs = 1 each use of the constant would be a codecopy
            // 2a. proof 0 (r = 1): -A_0 by hand, acc = C_0
            {
                let y := calldataload(add(proofs.offset, 0x20))
                let q := Q
                ok := lt(y, q)
                mstore(p, calldataload(proofs.offset))
                mstore(add(p, 0x20), mod(sub(q, y), q))
                calldatacopy(add(p, 0x40), add(proofs.offset, 0x40), 128)
                calldatacopy(s, add(proofs.offset, 192), 64)
            }
            // 2b. proofs 1..n-1: r_i = rho^i
            let rho := mod(mload(0x00), rr)
            {
            let r := 1
            let rsum := 1
            for { let i := 1 } lt(i, proofs.length) { i := add(i, 1) } {
                r := mulmod(r, rho, rr)
                {
                    let pr := add(proofs.offset, shl(8, i))
                    let o := add(p, mul(i, 192))
                    calldatacopy(o, pr, 64) // A
                    mstore(add(o, 0x40), sub(rr, r))
                    ok := and(ok, staticcall(6000, 7, o, 96, o, 64)) // -r A
                    calldatacopy(add(o, 0x40), add(pr, 0x40), 128) // B
                    calldatacopy(add(s, 0x40), add(pr, 192), 64) // C
                }
                mstore(add(s, 0x80), r)
                ok := and(ok, staticcall(6000, 7, add(s, 0x40), 96, add(s, 0x40), 64)) // r C
                ok := and(ok, staticcall(150, 6, s, 128, s, 64)) // acc += r C
                rsum := addmod(rsum, r, rr)
            }
            mstore(add(s, 0xa0), rsum)
            }
            // 2c. coef_j = sum_i rho^i s_ij by Horner from the last proof down (no per-proof mulmod by r_i),
            // each signal checked < R; unrolled for 3 and 4 signals, one column at a time otherwise
            switch k
            case 3 { ok := and(ok, horner3(signals.offset, proofs.length, rho, add(s, 0xc0))) }
            case 4 { ok := and(ok, horner4(signals.offset, proofs.length, rho, add(s, 0xc0))) }
            default {
                for { let j := 0 } lt(j, k) { j := add(j, 1) } {
                    let c, good := horner1(add(signals.offset, shl(5, j)), shl(5, k), proofs.length, rho, rr)
                    mstore(add(add(s, 0xc0), shl(5, j)), c)
                    ok := and(ok, good)
                }
            }
            function horner3(base, n, x, dst) -> good {
                let m := R
                let c0 := 0
                let c1 := 0
                let c2 := 0
                good := 1
                for { let ptr := add(base, mul(sub(n, 1), 96)) } 1 { ptr := sub(ptr, 96) } {
                    let v := calldataload(ptr)
                    good := and(good, lt(v, m))
                    c0 := addmod(mulmod(c0, x, m), v, m)
                    v := calldataload(add(ptr, 0x20))
                    good := and(good, lt(v, m))
                    c1 := addmod(mulmod(c1, x, m), v, m)
                    v := calldataload(add(ptr, 0x40))
                    good := and(good, lt(v, m))
                    c2 := addmod(mulmod(c2, x, m), v, m)
                    if eq(ptr, base) { break }
                }
                mstore(dst, c0)
                mstore(add(dst, 0x20), c1)
                mstore(add(dst, 0x40), c2)
            }
            function horner4(base, n, x, dst) -> good {
                let m := R
                let c0 := 0
                let c1 := 0
                let c2 := 0
                let c3 := 0
                good := 1
                for { let ptr := add(base, mul(sub(n, 1), 128)) } 1 { ptr := sub(ptr, 128) } {
                    let v := calldataload(ptr)
                    good := and(good, lt(v, m))
                    c0 := addmod(mulmod(c0, x, m), v, m)
                    v := calldataload(add(ptr, 0x20))
                    good := and(good, lt(v, m))
                    c1 := addmod(mulmod(c1, x, m), v, m)
                    v := calldataload(add(ptr, 0x40))
                    good := and(good, lt(v, m))
                    c2 := addmod(mulmod(c2, x, m), v, m)
                    v := calldataload(add(ptr, 0x60))
                    good := and(good, lt(v, m))
                    c3 := addmod(mulmod(c3, x, m), v, m)
                    if eq(ptr, base) { break }
                }
                mstore(dst, c0)
                mstore(add(dst, 0x20), c1)
                mstore(add(dst, 0x40), c2)
                mstore(add(dst, 0x60), c3)
            }
            function horner1(base, stride, n, x, m) -> c, good {
                good := 1
                for { let ptr := add(base, mul(sub(n, 1), stride)) } 1 { ptr := sub(ptr, stride) } {
                    let v := calldataload(ptr)
                    good := and(good, lt(v, m))
                    c := addmod(mulmod(c, x, m), v, m)
                    if eq(ptr, base) { break }
                }
            }
            mstore(0x40, add(add(s, 0xc0), shl(5, k))) // allocated: _vk() must not overwrite it
        }
        if (!ok) return false; // a point or signal was rejected: skip the fixed pairs and the pairing
        bytes memory vk = _vk();
        assembly ("memory-safe") {
            // 3. the fixed pairs at t = P + 192 n: [rsum alpha, beta][L, gamma][acc, delta]
            let t := add(p, mul(proofs.length, 192))
            let s := add(t, 576)
            let rsum := mload(add(s, 0xa0))
            mcopy(t, add(vk, 0x20), 64)
            mstore(add(t, 0x40), rsum)
            ok := and(ok, staticcall(6000, 7, t, 96, t, 64)) // rsum alpha
            let l := add(t, 192)
            mcopy(l, add(vk, 0x1e0), 64)
            mstore(add(l, 0x40), rsum)
            ok := and(ok, staticcall(6000, 7, l, 96, l, 64)) // rsum IC_0
            for { let j := 0 } lt(j, k) { j := add(j, 1) } {
                mcopy(add(l, 0x40), add(add(vk, 0x220), shl(6, j)), 64) // IC_{j+1}
                mstore(add(l, 0x80), mload(add(add(s, 0xc0), shl(5, j)))) // coef_j
                ok := and(ok, staticcall(6000, 7, add(l, 0x40), 96, add(l, 0x40), 64))
                ok := and(ok, staticcall(150, 6, l, 128, l, 64))
            }
            mcopy(add(t, 0x40), add(vk, 0x60), 128) // beta
            mcopy(add(l, 0x40), add(vk, 0xe0), 128) // gamma
            let d := add(t, 384)
            mcopy(d, s, 64) // acc
            mcopy(add(d, 0x40), add(vk, 0x160), 128) // delta
            // 4. the pairing
            let pairs := add(proofs.length, 3)
            ok := and(ok, staticcall(add(45000, mul(34000, pairs)), 8, p, mul(pairs, 192), 0x00, 0x20))
            ok := and(ok, eq(mload(0x00), 1))
        }
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
        bytes memory vk = _vk();
        uint256 lx = _word(vk, 14); // IC_0
        uint256 ly = _word(vk, 15);
        bool ok = true;
        for (uint256 j; j < k; ++j) {
            uint256 s = signals[off + j];
            if (s >= R) return false;
            (uint256 px, uint256 py, bool ok1) = _mul(_word(vk, 16 + 2 * j), _word(vk, 17 + 2 * j), s, ok);
            (lx, ly, ok) = _add(lx, ly, px, py, ok1);
        }
        if (!ok) return false;
        if (p[1] >= Q) return false; // as verifyBatch: a coordinate outside the field is no point
        uint256[] memory inp = new uint256[](24);
        inp[0] = p[0];
        inp[1] = p[1] == 0 ? 0 : Q - p[1];
        for (uint256 t; t < 4; ++t) inp[2 + t] = p[2 + t];
        inp[12] = lx;
        inp[13] = ly;
        inp[18] = p[6];
        inp[19] = p[7];
        for (uint256 t; t < 6; ++t) inp[6 + t] = _word(vk, t); // alpha, beta
        for (uint256 t; t < 4; ++t) {
            inp[14 + t] = _word(vk, 6 + t); // gamma
            inp[20 + t] = _word(vk, 10 + t); // delta
        }
        return _pairing(inp);
    }

    /// @dev Word i of the verification key blob (see _vk).
    function _word(bytes memory vk, uint256 i) private pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := mload(add(vk, shl(5, add(i, 1))))
        }
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
