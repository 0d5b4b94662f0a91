pragma circom 2.1.6;

// Fixed-point requantisation gadgets for the integer reference semantics of §1.4:
//   acc >> shift (floor), then optional ReLU, then optional clamp to `clampBits` signed bits.
// Everything is read off ONE bit decomposition of the (offset) accumulator, so a hidden neuron
// costs K + 1 boolean constraints plus at most 4 more, where the accumulator is known (from the
// model's weights or worst-case bounds, computed by the generator) to lie in the window below.

// Boolean decomposition of a value known to lie in [0, 2^n): n constraints.
template Bits(n) {
    signal input in;
    signal output out[n];
    var lc = 0;
    for (var k = 0; k < n; k++) {
        out[k] <-- (in >> k) & 1;
        out[k] * (out[k] - 1) === 0;
        lc += out[k] * (1 << k);
    }
    lc === in;
}

// 1 if s != 0 else 0, for a small non-negative s that cannot wrap the field: 2 constraints.
template NonZero() {
    signal input in;
    signal output out;
    signal inv;
    inv <-- in != 0 ? 1 / in : 0;
    out <== in * inv;
    in * (1 - out) === 0;
}

// y = requant(acc) for acc in the window the generator proved:
//   relu = 1:                 acc in [-2^K, 2^K)
//   relu = 0, clampBits = 0:  acc in [-2^K, 2^K),                      needs K >= shift
//   relu = 0, clampBits = c:  acc in [-2^K - 2^(shift+c-1), 2^K - 2^(shift+c-1)), needs K >= shift + c
// The top bit b[K] is the sign (1 when the shifted value is at or above the window's midpoint).
template Requant(K, shift, relu, clampBits) {
    signal input acc;
    signal output out;

    var mid = 1 << K;
    var half = 0;          // offset of the clamp window (0 with ReLU: the floor is 0)
    var m = 0;             // bits of the in-range value
    if (clampBits > 0) {
        if (relu == 1) {
            m = clampBits - 1;
        } else {
            m = clampBits;
            half = 1 << (clampBits - 1);
        }
    }
    component bits = Bits(K + 1);
    bits.in <== acc + mid + half * (1 << shift);
    signal s;
    s <== bits.out[K];

    if (clampBits == 0) {
        // No clamp: floor(acc / 2^shift), then optionally max(., 0).
        var q = 0;
        for (var i = shift; i < K; i++) {
            q += bits.out[i] * (1 << (i - shift));
        }
        if (relu == 1) {
            out <== s * q;
        } else {
            var hiw = K >= shift ? 1 << (K - shift) : 0;
            out <== q + s * hiw - hiw;
        }
    } else {
        // Low m bits after the shift are the in-range value; any set bit between them and the
        // sign means "above the window" (clamp to the top).
        var top = (1 << m) - 1;
        var lowEnd = shift + m < K ? shift + m : K;
        var v = 0;
        for (var i = shift; i < lowEnd; i++) {
            v += bits.out[i] * (1 << (i - shift));
        }
        var hiSum = 0;
        for (var i = lowEnd; i < K; i++) {
            hiSum += bits.out[i];
        }
        if (lowEnd < K) {
            component nz = NonZero();
            nz.in <== hiSum;
            signal t;
            t <== nz.out * (top - v);
            out <== s * (v + t) - half;
        } else {
            out <== s * v - half;
        }
    }
}
