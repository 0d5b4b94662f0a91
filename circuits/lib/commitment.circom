pragma circom 2.1.6;

// One step of the models package's weights_commitment (docs/models.md):
//   c' = Poseidon([c, hash_vector(W row-major, 8), hash_vector(b, 32), in, out, shift, relu, clamp])
// Every weight and bias is range-checked by VectorHashChecked: that is what binds the private
// witnesses to the committed model (without it, two weight sets could pack to the same words).

include "poseidon.circom";
include "vector_hash.circom";

template LayerCommit(nIn, nOut, shift, relu, clampBits) {
    signal input prev;
    signal input w[nOut][nIn];
    signal input b[nOut];
    signal output out;
    // The range-checked bits of u_ij = w_ij + 128 (row-major), reused by column-packed products.
    signal output wbits[nOut * nIn][8];

    component hw = VectorHashCheckedBits(nIn * nOut, 8);
    for (var i = 0; i < nOut; i++) {
        for (var j = 0; j < nIn; j++) {
            hw.x[i * nIn + j] <== w[i][j];
        }
    }
    for (var k = 0; k < nOut * nIn; k++) {
        for (var t = 0; t < 8; t++) {
            wbits[k][t] <== hw.b[k][t];
        }
    }
    component hb = VectorHashChecked(nOut, 32);
    for (var i = 0; i < nOut; i++) {
        hb.x[i] <== b[i];
    }
    component p = Poseidon(8);
    p.inputs[0] <== prev;
    p.inputs[1] <== hw.out;
    p.inputs[2] <== hb.out;
    p.inputs[3] <== nIn;
    p.inputs[4] <== nOut;
    p.inputs[5] <== shift;
    p.inputs[6] <== relu;
    p.inputs[7] <== clampBits;
    out <== p.out;
}
