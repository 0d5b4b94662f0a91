"""A model that requires a TEE: every agreeing node must pass the attestation check (its AttestationRegistry
record, re-verified from the evidence bundle by CID), and a node whose record disappears (revoked) makes the
audit FAIL; for an ordinary model it would be N/A."""

from __future__ import annotations

import secrets
from pathlib import Path

from web3 import Web3

from verinfer.attestation.testpki import TestPKI
from verinfer.auditor import Auditor, Verdict
from verinfer.chain.attestation_registry import AttestationRegistry, attest_devnet, configure_devnet, registry_of
from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.protocol import (
    ModelInput,
    ModelShard,
    Protocol,
    RequestParams,
    Status,
    commitment_hash,
)
from verinfer.constants import ETHER
from verinfer.devnet.samples import sample_input
from verinfer.models import reference
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin, reference_profile_hash, weights_commitment
from verinfer.models.tensor import encode_output, encode_tensor
from verinfer.storage import open_store


def _funded(w3: Web3):
    return funded_account(w3)


def test_tee_model_requires_every_agreeing_node_to_pass(w3: Web3, protocol: Protocol, tmp_path: Path) -> None:
    spec = load_builtin("digits-mlp")
    store = open_store(root=tmp_path / "store")
    pki = TestPKI.generate()
    gov = registry_of(protocol)
    publisher, node, requester, verifier = _funded(w3), _funded(w3), _funded(w3), _funded(w3)
    configure_devnet(protocol, verifier.address)  # through the timelock
    _, model_id = protocol.as_account(publisher).models.register_model(ModelInput(
        name=f"digits-tee-{secrets.token_hex(4)}", weights_cid=store.add(spec.canonical_json()),
        commitment=weights_commitment(spec), execution_profile_hash=reference_profile_hash(),
        num_layers=spec.num_layers, input_bits=spec.input_bits, output_bits=spec.output_bits, requires_tee=True))
    np = protocol.as_account(node)
    np.nodes.register("http://127.0.0.1", [ModelShard(model_id)], 2 * ETHER)
    as_verifier = AttestationRegistry(w3, gov.address, protocol.as_account(verifier).sender)
    attest_devnet(as_verifier, node.address, pki, store.add)  # simulated TEE, INSECURE test PKI (devnet only)
    n = protocol.nodes.epoch_length()
    mine(w3, n - w3.eth.block_number % n)  # stake counts for draws from the next epoch's snapshot

    x = sample_input(6)
    params = RequestParams(replicas=1, quorum=1, commit_blocks=20, reveal_blocks=20)
    _, rid = protocol.as_account(requester).market.request_inference(
        model_id, store.add(encode_tensor(x, "int8", [64])), hash_vector(x, 8), params, ETHER // 100)
    mine(w3, max(0, protocol.market.get_request(rid).draw_block + 1 - w3.eth.block_number))
    out = reference.run(spec, x)
    salt = secrets.token_bytes(32)
    np.market.commit(rid, commitment_hash(rid, hash_vector(out, 32), salt, node.address))  # draws (attested only)
    np.market.reveal(rid, hash_vector(out, 32), salt, store.add(encode_output(out, 32)))  # the only reveal settles
    assert protocol.market.get_request(rid).status == Status.ACCEPTED

    name = f"attestation.{node.address}"
    report = Auditor(protocol, store, trusted_root_pem=pki.root_pem).audit(rid)
    assert report.ok, [c.to_json() for c in report.failures]
    assert report.claim(name).verdict is Verdict.PASS and "valid when the request was made" in report.claim(name).detail
    # no trusted root: the evidence cannot be re-verified, and a TEE model needs it
    no_root = Auditor(protocol, store).audit(rid).claim(name)
    assert no_root.verdict is Verdict.FAIL and "no trusted root" in no_root.detail
    # another root: the quote does not chain to it
    other = Auditor(protocol, store, trusted_root_pem=TestPKI.generate().root_pem).audit(rid).claim(name)
    assert other.verdict is Verdict.FAIL, other
    # the node revokes its record: a TEE model's result now rests on an unattested node
    AttestationRegistry(w3, gov.address, np.sender).revoke_attestation()
    revoked = Auditor(protocol, store, trusted_root_pem=pki.root_pem).audit(rid)
    assert revoked.claim(name).verdict is Verdict.FAIL and "requires a TEE" in revoked.claim(name).detail
    assert not revoked.ok
