pragma circom 2.1.6;

// Vector hash of docs/architecture.md §1.1, in-circuit.
//   u_i = x_i + 2^(bits-1); per = floor(248 / bits) values packed little-endian per word;
//   state = n; for each chunk of <= 15 words: state = Poseidon([state] ++ chunk).
// Requires circomlib's poseidon.circom on the include path (-l node_modules/circomlib/circuits).

include "poseidon.circom";

// Packed words of n signed values. Pure linear algebra: costs no constraints once --O2 folds it.
// The caller must know that every x_i lies in [-2^(bits-1), 2^(bits-1)) (range-checked or
// implied by other constraints), or the packing is not injective.
template PackWords(n, bits) {
    var per = 248 \ bits;
    var nw = (n + per - 1) \ per;
    signal input x[n];
    signal output words[nw];
    var half = 1 << (bits - 1);
    for (var j = 0; j < nw; j++) {
        var acc = 0;
        var mul = 1;
        for (var i = 0; i < per; i++) {
            if (j * per + i < n) {
                acc += (x[j * per + i] + half) * mul;
                mul *= 1 << bits;
            }
        }
        words[j] <== acc;
    }
}

// Chained Poseidon over nw words with the initial state n (the vector length), 15 words a call.
template ChainHash(n, nw) {
    signal input words[nw];
    signal output out;
    var nFull = nw \ 15;
    var rest = nw - nFull * 15;
    component full[nFull];
    signal st[nFull + 1];
    st[0] <== n;
    for (var c = 0; c < nFull; c++) {
        full[c] = Poseidon(16);
        full[c].inputs[0] <== st[c];
        for (var k = 0; k < 15; k++) {
            full[c].inputs[k + 1] <== words[c * 15 + k];
        }
        st[c + 1] <== full[c].out;
    }
    if (rest > 0) {
        component last = Poseidon(rest + 1);
        last.inputs[0] <== st[nFull];
        for (var k = 0; k < rest; k++) {
            last.inputs[k + 1] <== words[nFull * 15 + k];
        }
        out <== last.out;
    } else {
        out <== st[nFull];
    }
}

// §1.1 hash of values already known to be in range (e.g. outputs fixed by the computation).
template VectorHash(n, bits) {
    var per = 248 \ bits;
    var nw = (n + per - 1) \ per;
    signal input x[n];
    signal output out;
    component pack = PackWords(n, bits);
    for (var i = 0; i < n; i++) {
        pack.x[i] <== x[i];
    }
    component h = ChainHash(n, nw);
    for (var j = 0; j < nw; j++) {
        h.words[j] <== pack.words[j];
    }
    out <== h.out;
}

// §1.1 hash of untrusted values: each x_i is range-checked to `bits` signed bits (one boolean
// constraint per bit), which is exactly what makes the packing injective. The words are built
// from the bits, so the check costs nothing beyond the bits themselves.
template VectorHashChecked(n, bits) {
    var per = 248 \ bits;
    var nw = (n + per - 1) \ per;
    signal input x[n];
    signal output out;
    signal b[n][bits];
    var half = 1 << (bits - 1);
    for (var i = 0; i < n; i++) {
        var u = x[i] + half;
        var lc = 0;
        for (var k = 0; k < bits; k++) {
            b[i][k] <-- (u >> k) & 1;
            b[i][k] * (b[i][k] - 1) === 0;
            lc += b[i][k] * (1 << k);
        }
        lc === x[i] + half;
    }
    component h = ChainHash(n, nw);
    for (var j = 0; j < nw; j++) {
        var acc = 0;
        var sh = 0;
        for (var i = 0; i < per; i++) {
            if (j * per + i < n) {
                for (var k = 0; k < bits; k++) {
                    acc += b[j * per + i][k] * (1 << (sh + k));
                }
                sh += bits;
            }
        }
        h.words[j] <== acc;
    }
    out <== h.out;
}

// VectorHashChecked that also outputs the range-checked bits of u_i = x_i + 2^(bits-1), so a caller
// can reuse them (the private-weights circuit builds column-packed weight words from them).
// A separate template keeps VectorHashChecked's r1cs (and the shipped keys) unchanged.
template VectorHashCheckedBits(n, bits) {
    var per = 248 \ bits;
    var nw = (n + per - 1) \ per;
    signal input x[n];
    signal output out;
    signal output b[n][bits];
    var half = 1 << (bits - 1);
    for (var i = 0; i < n; i++) {
        var u = x[i] + half;
        var lc = 0;
        for (var k = 0; k < bits; k++) {
            b[i][k] <-- (u >> k) & 1;
            b[i][k] * (b[i][k] - 1) === 0;
            lc += b[i][k] * (1 << k);
        }
        lc === x[i] + half;
    }
    component h = ChainHash(n, nw);
    for (var j = 0; j < nw; j++) {
        var acc = 0;
        var sh = 0;
        for (var i = 0; i < per; i++) {
            if (j * per + i < n) {
                for (var k = 0; k < bits; k++) {
                    acc += b[j * per + i][k] * (1 << (sh + k));
                }
                sh += bits;
            }
        }
        h.words[j] <== acc;
    }
    out <== h.out;
}
