"""Equivariant encryption: the node's permuted computation decrypts to the exact plaintext output."""

from __future__ import annotations

import pytest

from verinfer.inference.ee import (
    EEKey,
    EEKeyError,
    decrypt_activations,
    decrypt_output,
    encrypt_input,
    encrypt_model,
)
from verinfer.inference.runtime import ExecutionPlan, execute
from verinfer.models import reference
from verinfer.models.digits import load_split
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin, weights_commitment


@pytest.fixture(scope="module")
def spec():
    return load_builtin("digits-mlp-large")


def test_encrypted_execution_is_exact(spec):
    key = EEKey.generate(spec, seed=11)
    enc = encrypt_model(spec, key)
    assert enc.layers[0].weight != spec.layers[0].weight
    assert weights_commitment(enc) != weights_commitment(spec)
    split = load_split()
    changed = 0
    for x in split.x_test[:25].tolist():
        plain = reference.run(spec, x)
        node_out = execute(enc, encrypt_input(x, key))
        assert sorted(node_out) == sorted(plain)  # a permutation hides order, not values
        assert decrypt_output(node_out, key) == plain
        # hidden activations seen by a shard node are permuted too, and decrypt exactly
        h_enc = reference.run_layers(enc, encrypt_input(x, key), 0, 1)
        assert decrypt_activations(h_enc, key, 1) == reference.run_layers(spec, x, 0, 1)
        assert execute(enc, encrypt_input(x, key), ExecutionPlan.split(enc, [1, 2])) == node_out
        changed += node_out != plain
    assert changed == 25  # the node never sees the plaintext logit order


def test_different_keys_give_different_views(spec):
    a, b = EEKey.generate(spec, seed=1), EEKey.generate(spec, seed=2)
    x = load_split().x_test[0].tolist()
    out_a = execute(encrypt_model(spec, a), encrypt_input(x, a))
    out_b = execute(encrypt_model(spec, b), encrypt_input(x, b))
    assert out_a != out_b and hash_vector(out_a, 32) != hash_vector(out_b, 32)
    assert decrypt_output(out_a, a) == decrypt_output(out_b, b)
    assert EEKey.generate(spec).perms != EEKey.generate(spec).perms  # unseeded keys are random


def test_key_serialisation_and_mismatch(spec):
    key = EEKey.generate(spec, seed=5)
    assert EEKey.from_json(key.to_json()) == key
    small = load_builtin("digits-mlp")
    with pytest.raises(EEKeyError):
        encrypt_model(small, key)
    broken = EEKey(((0, 0),) + key.perms[1:])
    with pytest.raises(EEKeyError):
        broken.check(spec)
    with pytest.raises(EEKeyError):
        EEKey.from_json('{"format": "nope"}')
    with pytest.raises(EEKeyError):
        encrypt_input([1, 2, 3], key)
