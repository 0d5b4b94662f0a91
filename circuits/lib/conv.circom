pragma circom 2.1.6;

// Commitment steps for layers that are not dense (docs/prover.md): the models package's
// weights_commitment over a conv2d kernel / a pooling layer. Included only by CNN circuits, so
// the dense circuits' sources (and the shipped keys' circuit hash) stay unchanged.

include "poseidon.circom";
include "vector_hash.circom";

// A layer whose weights are a flat vector (a conv2d kernel [oc][ic][k][k] row-major) and whose
// biases are per output channel; nIn/nOut are the layer's flattened activation sizes.
template LayerCommitFlat(nW, nB, nIn, nOut, shift, relu, clampBits) {
    signal input prev;
    signal input w[nW];
    signal input b[nB];
    signal output out;

    component hw = VectorHashCheckedBits(nW, 8);
    for (var k = 0; k < nW; k++) {
        hw.x[k] <== w[k];
    }
    component hb = VectorHashChecked(nB, 32);
    for (var i = 0; i < nB; i++) {
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

// A layer without private weights (average pooling): its weight and bias hashes are constants of
// the architecture, computed by the generator.
template LayerCommitConst(hwConst, hbConst, nIn, nOut, shift, relu, clampBits) {
    signal input prev;
    signal output out;
    component p = Poseidon(8);
    p.inputs[0] <== prev;
    p.inputs[1] <== hwConst;
    p.inputs[2] <== hbConst;
    p.inputs[3] <== nIn;
    p.inputs[4] <== nOut;
    p.inputs[5] <== shift;
    p.inputs[6] <== relu;
    p.inputs[7] <== clampBits;
    out <== p.out;
}
