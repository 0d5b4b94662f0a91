// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title VerinferHasher
/// @notice verinfer's vector hash and tensor payload on-chain, so a contract can compute the `inputHash`
///         (and the input's content id) of its own data, and check an opened output vector against a
///         settled `outputHash`, without trusting anyone off-chain.
/// @dev hashVector equals `verinfer.models.hashing.hash_vector` (docs/architecture.md §1.1): offset each
///      value by 2^(bits-1), pack floor(248/bits) per word little-endian, `state = len`, then
///      `state = Poseidon([state] + chunk)` per chunk of 15 words. The Poseidon contracts are circomlibjs's
///      generated code (arity 2..6), so one chunk of at most 5 words is supported: 155 int8 values or
///      35 int32 values. Deploy once per chain and share (Python: `verinfer.chain.kit.deploy_kit`).
contract VerinferHasher {
    /// @notice BN254 scalar field (the circuits' field).
    uint256 public constant FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Packed words one on-chain hash supports (Poseidon arity 1 + words <= 6).
    uint256 public constant MAX_WORDS = 5;
    uint256 internal constant WORD_BITS = 248;

    /// @notice circomlibjs Poseidon contracts by arity (index 0 = arity 2).
    address public immutable poseidon2;
    address public immutable poseidon3;
    address public immutable poseidon4;
    address public immutable poseidon5;
    address public immutable poseidon6;

    error InvalidBits(uint256 bits);
    error ValueOutOfRange(uint256 index, int256 value, uint256 bits);
    error VectorTooLong(uint256 length, uint256 maxLength);
    error InvalidArity(uint256 arity);
    error NotFieldElement(uint256 index, uint256 value);
    error PoseidonFailed(uint256 arity);
    error NoCodeAt(address poseidon);

    /// @param p Poseidon2..Poseidon6 addresses (contracts/src/kit/poseidon/), in arity order.
    constructor(address[5] memory p) {
        for (uint256 i = 0; i < 5; i++) {
            if (p[i].code.length == 0) revert NoCodeAt(p[i]);
        }
        poseidon2 = p[0];
        poseidon3 = p[1];
        poseidon4 = p[2];
        poseidon5 = p[3];
        poseidon6 = p[4];
    }

    /// @notice The longest vector of `bits`-wide values one on-chain hash supports.
    function maxLength(uint256 bits) public pure returns (uint256) {
        if (bits == 0 || bits > WORD_BITS) revert InvalidBits(bits);
        return MAX_WORDS * (WORD_BITS / bits);
    }

    /// @notice circomlib Poseidon over 2..6 field elements.
    function poseidon(uint256[] memory inputs) public view returns (uint256 out) {
        uint256 n = inputs.length;
        for (uint256 i = 0; i < n; i++) {
            if (inputs[i] >= FIELD) revert NotFieldElement(i, inputs[i]);
        }
        address target = _poseidonFor(n);
        // poseidon(uint256[n]) takes a static array: selector followed by n words.
        bytes4 selector = _selector(n);
        bool ok;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(add(add(ptr, 4), mul(i, 32)), mload(add(add(inputs, 32), mul(i, 32))))
            }
            ok := staticcall(gas(), target, ptr, add(4, mul(n, 32)), 0, 32)
            out := mload(0)
        }
        if (!ok) revert PoseidonFailed(n);
    }

    /// @notice verinfer's hash_vector(xs, bits) as bytes32 (the on-chain inputHash / outputHash form).
    function hashVector(int256[] memory xs, uint256 bits) public view returns (bytes32) {
        uint256[] memory words = packWords(xs, bits);
        if (words.length == 0) return bytes32(xs.length);
        uint256[] memory inputs = new uint256[](words.length + 1);
        inputs[0] = xs.length;
        for (uint256 i = 0; i < words.length; i++) {
            inputs[i + 1] = words[i];
        }
        return bytes32(poseidon(inputs));
    }

    /// @notice The §1.1 packing: offset to unsigned, floor(248/bits) values per word, little-endian.
    function packWords(int256[] memory xs, uint256 bits) public pure returns (uint256[] memory words) {
        uint256 limit = maxLength(bits);
        if (xs.length > limit) revert VectorTooLong(xs.length, limit);
        uint256 per = WORD_BITS / bits;
        // forge-lint: disable-next-line(incorrect-shift)
        int256 half = int256(1 << (bits - 1)); // 2^(bits-1), bits in 1..248 (checked by maxLength)
        uint256 n = xs.length;
        words = new uint256[]((n + per - 1) / per);
        unchecked {
            // bounds are checked above and per value below: no overflow is possible in this loop
            uint256 w = 0;
            uint256 word = 0;
            uint256 shift = 0;
            for (uint256 i = 0; i < n; i++) {
                int256 x = xs[i];
                if (x < -half || x >= half) revert ValueOutOfRange(i, x, bits);
                // casting to 'uint256' is safe because -half <= x < half was checked: 0 <= x + half < 2^bits
                // forge-lint: disable-next-line(unsafe-typecast)
                word |= uint256(x + half) << shift;
                shift += bits;
                if (shift + bits > WORD_BITS || i + 1 == n) {
                    words[w++] = word;
                    word = 0;
                    shift = 0;
                }
            }
        }
    }

    /// @notice hashVector and inputDocument in one call: everything a contract needs to request on its own data.
    function prepareInput(int256[] memory xs, uint256 bits)
        external
        view
        returns (bytes32 inputHash, bytes memory doc, string memory cid)
    {
        inputHash = hashVector(xs, bits);
        (doc, cid) = inputDocument(xs, bits);
    }

    /// @notice The canonical verinfer.tensor.v1 payload of a 1-D vector (as `verinfer.models.tensor.encode_tensor`
    ///         writes it) and its CIDv1 (raw leaf, sha256, base32) — the content id the default store gives it.
    /// @dev Valid for payloads up to one 256 KiB chunk (always true for vectors hashVector supports).
    function inputDocument(int256[] memory xs, uint256 bits) public pure returns (bytes memory doc, string memory cid) {
        uint256 limit = maxLength(bits);
        if (xs.length > limit) revert VectorTooLong(xs.length, limit);
        // forge-lint: disable-next-line(incorrect-shift)
        int256 half = int256(1 << (bits - 1)); // 2^(bits-1), bits in 1..248 (checked by maxLength)
        string memory dtype;
        if (bits <= 8) dtype = "int8";
        else if (bits <= 32) dtype = "int32";
        else revert InvalidBits(bits);
        bytes memory data = new bytes(xs.length * 12);
        uint256 len = 0;
        for (uint256 i = 0; i < xs.length; i++) {
            int256 x = xs[i];
            if (x < -half || x >= half) revert ValueOutOfRange(i, x, bits);
            if (i > 0) {
                assembly ("memory-safe") {
                    mstore8(add(add(data, 32), len), 44) // ","
                }
                len++;
            }
            len = _writeInt(data, len, x);
        }
        assembly ("memory-safe") {
            mstore(data, len)
        }
        doc = abi.encodePacked(
            '{"data":[', data, '],"dtype":"', dtype, '","format":"verinfer.tensor.v1","shape":[',
            _decimal(xs.length), "]}"
        );
        cid = cidOf(doc);
    }

    /// @notice CIDv1 (codec raw, sha2-256, multibase base32 "b…") of a single-chunk payload.
    function cidOf(bytes memory doc) public pure returns (string memory) {
        bytes memory bin = abi.encodePacked(hex"01551220", sha256(doc)); // 36 bytes
        bytes memory alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        bytes memory out = new bytes(1 + (bin.length * 8 + 4) / 5);
        out[0] = "b";
        uint256 acc = 0;
        uint256 nbits = 0;
        uint256 o = 1;
        unchecked {
            for (uint256 i = 0; i < bin.length; i++) {
                acc = ((acc << 8) | uint8(bin[i])) & 0xffff; // at most 12 pending bits matter
                nbits += 8;
                while (nbits >= 5) {
                    nbits -= 5;
                    out[o++] = alphabet[(acc >> nbits) & 31];
                }
            }
            if (nbits > 0) out[o++] = alphabet[(acc << (5 - nbits)) & 31];
        }
        return string(out);
    }

    /// @notice Index of the largest value (the first one on ties, like numpy.argmax): a classifier's class.
    function argmax(int256[] memory xs) public pure returns (uint256 best) {
        for (uint256 i = 1; i < xs.length; i++) {
            if (xs[i] > xs[best]) best = i;
        }
    }

    function _poseidonFor(uint256 n) internal view returns (address) {
        if (n == 2) return poseidon2;
        if (n == 3) return poseidon3;
        if (n == 4) return poseidon4;
        if (n == 5) return poseidon5;
        if (n == 6) return poseidon6;
        revert InvalidArity(n);
    }

    function _selector(uint256 n) internal pure returns (bytes4) {
        if (n == 2) return bytes4(keccak256("poseidon(uint256[2])"));
        if (n == 3) return bytes4(keccak256("poseidon(uint256[3])"));
        if (n == 4) return bytes4(keccak256("poseidon(uint256[4])"));
        if (n == 5) return bytes4(keccak256("poseidon(uint256[5])"));
        return bytes4(keccak256("poseidon(uint256[6])"));
    }

    /// @dev Writes decimal `x` at buf[pos..]; the caller sized buf (12 bytes per int32 value, 78 for a uint256).
    function _writeInt(bytes memory buf, uint256 pos, int256 x) private pure returns (uint256) {
        unchecked {
            uint256 u;
            if (x < 0) {
                assembly ("memory-safe") {
                    mstore8(add(add(buf, 32), pos), 45) // "-"
                }
                pos++;
                // casting to 'uint256' is safe because x < 0 here, so -x > 0 (|x| <= 2^31 for payload values)
                // forge-lint: disable-next-line(unsafe-typecast)
                u = uint256(-x);
            } else {
                // casting to 'uint256' is safe because x >= 0 here
                // forge-lint: disable-next-line(unsafe-typecast)
                u = uint256(x);
            }
            uint256 digits = 1;
            for (uint256 t = u / 10; t > 0; t /= 10) digits++;
            for (uint256 d = digits; d > 0; d--) {
                uint256 c = 48 + (u % 10);
                assembly ("memory-safe") {
                    mstore8(add(add(buf, 32), add(pos, sub(d, 1))), c)
                }
                u /= 10;
            }
            return pos + digits;
        }
    }

    function _decimal(uint256 v) private pure returns (bytes memory s) {
        s = new bytes(78);
        // casting to 'int256' is safe because v is a vector length (< 2^255)
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 n = _writeInt(s, 0, int256(v));
        assembly ("memory-safe") {
            mstore(s, n)
        }
    }
}
