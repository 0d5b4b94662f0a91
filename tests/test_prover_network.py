"""The CNN and equivariantly encrypted models proven through the network (issue 14 items 2 and 3).

Real components end to end: anvil, `publish_model` / `publish_encrypted` (circuit compile, INSECURE
groth16py dev keys, verifier deployed, prover bundle stored and anchored with setArtifacts), three
`python -m verinfer.node` processes with an EMPTY circuit cache (their only key is the publisher's
bundle, fetched by ModelRegistry.artifactsCid), requests through the SDK `Client`, proofs submitted
on-chain by a node, and `verinfer audit`'s Auditor rebuilding and re-verifying everything.

The encrypted MLP is requested with a permuted input; the node only ever sees the encrypted spec and
permuted vectors; the requester decrypts the proven output to exactly the plaintext model's logits.
The cost rows (constraints, node prove time, submitProof gas) of the plaintext and the encrypted
model are written to `$VERINFER_COST_OUT` when set (docs/prover.md "through the network").
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from web3 import Web3

from verinfer.auditor import Auditor, Verdict
from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.protocol import ModelShard, Protocol
from verinfer.chain.verifier import verify_onchain
from verinfer.client.publish import Published, publish_encrypted, publish_model
from verinfer.client.sdk import Client
from verinfer.constants import ETHER
from verinfer.devnet.processes import NodeProcess, launch_node, wait_for
from verinfer.errors import VerinferError
from verinfer.inference import ee
from verinfer.models import reference
from verinfer.models.digits import load_split
from verinfer.models.spec import ModelSpec, load_builtin, weights_commitment
from verinfer.node.keystore import create_keystore
from verinfer.operator.registration import register
from verinfer.prover import pipeline
from verinfer.prover.bundle import fetch_bundle
from verinfer.prover.types import Proof
from verinfer.storage import open_store

PASSWORD = "verinfer-dev"
REPO = Path(__file__).resolve().parent.parent
PROOF_CLAIMS = ("model.commitment", "model.verifier", "input", "output.payload", "output.reexecution",
                "quorum.outcome", "proof.tx", "proof.local", "proof.onchain", "proof.output")


@dataclass
class Net:
    w3: Web3
    protocol: Protocol
    root: Path
    store_dir: Path
    manifest_path: Path
    client: Client
    models: dict[str, Published]
    specs: dict[str, ModelSpec]
    keys: dict[str, ee.EEKey]
    nodes: list[NodeProcess]
    addresses: list[str]
    costs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _models_for_run() -> list[str]:
    """The CNN and the encrypted MLP always; behind VERINFER_SLOW the encrypted CNN (another ~30 s circom
    compile) and the CNN in private-weights mode (`:private`, a ~90 s circom compile on a 2-core box)."""
    names = ["digits-cnn", "digits-mlp", "digits-mlp.ee"]
    if os.environ.get("VERINFER_SLOW") == "1":
        names += ["digits-cnn.ee", "digits-cnn:private"]
    return names


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, w3: Web3, protocol: Protocol,
        protocol_manifest_path: Path) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("provenet")
    store_dir = root / "store"
    store = open_store(root=store_dir)
    publisher = protocol.as_account(funded_account(w3, 100 * ETHER))
    tag = secrets.token_hex(4)
    models: dict[str, Published] = {}
    specs: dict[str, ModelSpec] = {}
    keys: dict[str, ee.EEKey] = {}
    for name in _models_for_run():
        base, _, mode = name.partition(":")
        plain = load_builtin(base.removesuffix(".ee"))
        specs[name] = plain
        label = f"{base}-{mode or 'public'}-{tag}"
        if base.endswith(".ee"):  # only the requester (this test) holds the key; seeded so the circuit is cached
            models[name], keys[name] = publish_encrypted(publisher, store, plain, key=ee.EEKey.generate(plain, seed=14),
                                                         proof_mode=mode or "public", setup="dev", name=label)
        else:
            models[name] = publish_model(publisher, store, plain, proof_mode=mode or "public", setup="dev", name=label)
    home = root / "home"
    ids = [p.model_id for p in models.values()]
    per_node = int(protocol.nodes.max_shards())  # NodeRegistry reverts TooManyShards above it
    groups = [ids[i:i + per_node] for i in range(0, len(ids), per_node)]
    accts = [funded_account(w3, 100 * ETHER) for _ in range(3 * len(groups))]
    for i, a in enumerate(accts):
        create_keystore(f"node{i}", PASSWORD, home=home, private_key=a.key, scrypt_n=2**14, force=True)
        register(protocol.as_account(a), 2 * ETHER, [ModelShard(m) for m in groups[i // 3]], capacity=16)
    epoch = protocol.nodes.epoch_length()
    mine(w3, epoch - w3.eth.block_number % epoch)  # stake counts from the next epoch's snapshot
    node_cache = root / "node-circuit-cache"  # empty: the nodes can only prove with the published bundles
    launched = [launch_node(f"node{i}", rpc_url=str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                            manifest=protocol_manifest_path, state_dir=root / f"state-{i}", home=home,
                            password=PASSWORD, store_dir=store_dir,
                            env={"VERINFER_CIRCUIT_CACHE": str(node_cache)}) for i in range(len(accts))]
    nodes = [p.wait_ready() for p in launched]
    client = Client(str(w3.provider.endpoint_uri), protocol_manifest_path,  # type: ignore[attr-defined]
                    account=funded_account(w3, 100 * ETHER), store=open_store(root=store_dir))
    n = Net(w3, protocol, root, store_dir, protocol_manifest_path, client, models, specs, keys, nodes, [a.address for a in accts])
    try:
        yield n
    finally:
        for p in nodes:
            p.terminate()
        out = os.environ.get("VERINFER_COST_OUT")
        if out and n.costs:
            Path(out).write_text(json.dumps(n.costs, indent=1, sort_keys=True) + "\n")


def _request_and_prove(n: Net, name: str, x: list[int]) -> tuple[int, Any]:
    """Submit through the SDK, wait until settled AND proven by a node; returns (request id, result)."""
    mid = n.models[name].model_id
    rid = n.client.submit(mid, x, fee=ETHER // 50, replicas=3, quorum=2, commit_blocks=60, reveal_blocks=20)
    res = n.client.wait(rid, timeout=300, until="proven")
    assert res.status == "Accepted" and res.proven, (res.status, res.proven, res.error)
    return rid, res


def _proof_cost(n: Net, name: str, rid: int, spec: ModelSpec, x: list[int]) -> dict[str, Any]:
    """Constraints (bundle), the node's first proof (its log: bundle fetch + key load + prove), a warm
    prove with the same bundle here (median of 3, wall and CPU), and submitProof gas (the receipt)."""
    ev = [e for e in n.client.protocol.market.events("ProofVerified") if int(e.args["requestId"]) == rid]
    assert len(ev) == 1
    prover = Web3.to_checksum_address(ev[0].args["prover"])
    assert prover in n.addresses
    node = n.nodes[n.addresses.index(prover)]
    line = f"request {rid}: proof verified on-chain"
    wait_for(lambda: line in node.log(), 60, what="the prover's success log line")
    seconds = float(node.log().split(line + " (")[1].split("s to prove")[0])
    assert "proving with the bundle key" in node.log()
    mid = n.models[name].model_id
    cid = n.client.protocol.models.artifacts_cid(mid)
    doc = n.client.store.cat_json(cid)
    arts = fetch_bundle(n.client.store, cid, n.root / "bundles" / name,
                        expected_commitment=n.client.protocol.models.get_model(mid).commitment)
    walls, cpus = [], []
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        _, words = pipeline.prove_request(arts, spec, x, rid, prover)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    assert verify_onchain(n.w3, n.models[name].info.verifier,
                          Proof.from_calldata(words, pipeline.expected_public_signals(
                              arts, spec, x, reference.run(spec, x), rid, prover)))
    gas = int(n.w3.eth.get_transaction_receipt(ev[0].tx_hash)["gasUsed"])
    cost = {"model": name, "constraints": int(doc["constraints"]), "node_first_proof_seconds": seconds,
            "witness_prove_wall_s": round(statistics.median(walls), 4),
            "witness_prove_cpu_s": round(statistics.median(cpus), 4),
            "submit_proof_gas": gas, "verifier_deploy_gas": n.models[name].gas.get("deploy verifier", 0)}
    n.costs[name] = cost
    return cost


def _audit_passes(n: Net, rid: int) -> None:
    report = Auditor(n.protocol, open_store(root=n.store_dir)).audit(rid)
    verdicts = {c.name: c.verdict for c in report.claims}
    for claim in PROOF_CLAIMS:
        assert verdicts.get(claim) is Verdict.PASS, report.claim(claim)
    assert report.ok, [c.to_json() for c in report.failures]


@pytest.mark.parametrize("name,mode,constraints", [("digits-cnn", 1, 8249),
                                                    pytest.param("digits-cnn:private", 2, 28724, marks=pytest.mark.slow)])
def test_cnn_published_requested_proven_and_audited(net: Net, name: str, mode: int, constraints: int) -> None:
    """digits-cnn: its own verifier and bundle, a held-out digit through the SDK, a node's proof, a clean audit."""
    pub = net.models[name]
    assert pub.info.proof_mode == mode and pub.artifacts_cid and pub.insecure_keys
    assert net.client.protocol.models.artifacts_cid(pub.model_id) == pub.artifacts_cid
    if mode == 2:  # private weights: the registry holds the weights commitment the circuit recomputes
        assert pub.info.commitment == weights_commitment(net.specs[name])
    split = load_split()
    x, label = [int(v) for v in split.x_test[5]], int(split.y_test[5])
    rid, res = _request_and_prove(net, name, x)
    assert res.output_verified and res.output == reference.run(net.specs[name], x)
    assert res.prediction == label
    cost = _proof_cost(net, name, rid, net.specs[name], x)
    assert cost["constraints"] == constraints  # circom --O2, docs/prover.md section 1b
    _audit_passes(net, rid)
    # the same audit as a user runs it: `verinfer audit <id> --json` in its own process
    r = subprocess.run([sys.executable, "-m", "verinfer.cli", "audit", str(rid), "--rpc-url", net.client.rpc_url,
                        "--manifest", str(net.manifest_path), "--store", str(net.store_dir), "--json"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["status"] == "ACCEPTED" and doc["counts"]["FAIL"] == 0
    by = {c["name"]: c for c in doc["claims"]}
    assert by["proof.onchain"]["verdict"] == "PASS" and by["output.reexecution"]["verdict"] == "PASS"
    assert "prover bundle" in by["proof.local"]["detail"]  # the vk came from the publisher's bundle


@pytest.mark.parametrize("name", ["digits-mlp.ee", pytest.param("digits-cnn.ee", marks=pytest.mark.slow)])
def test_encrypted_model_proven_through_the_network_and_decrypted(net: Net, name: str) -> None:
    """Permuted input in, a node proves the permuted computation on-chain, the requester decrypts the output;
    the plaintext model, requested with the same digit, proves the same logits at the same cost."""
    plain_name = name.removesuffix(".ee")
    plain, key, pub, plain_pub = net.specs[name], net.keys[name], net.models[name], net.models[plain_name]
    enc_spec = net.client.model_info(pub.model_id).spec  # what the nodes see: the encrypted weights only
    assert enc_spec.name.endswith(".ee") and enc_spec.canonical_json() != plain.canonical_json()
    assert pub.info.commitment != plain_pub.info.commitment and pub.info.verifier != plain_pub.info.verifier
    split = load_split()
    x = [int(v) for v in split.x_test[9]]
    xe = ee.encrypt_input_for(plain, x, key)
    rid, res = _request_and_prove(net, name, xe)
    assert res.output_verified and res.output == reference.run(enc_spec, xe)
    decrypted = ee.decrypt_output(res.output, key)
    assert res.output != decrypted  # the chain holds the permuted logits (the key permutes the classes)
    enc = _proof_cost(net, name, rid, enc_spec, xe)
    _audit_passes(net, rid)

    prid, pres = _request_and_prove(net, plain_name, x)
    plain_out = pres.output
    _proof_cost(net, plain_name, prid, plain, x)
    assert decrypted == plain_out == reference.run(plain, x)  # the decrypted proven output IS the plaintext one
    assert max(range(10), key=decrypted.__getitem__) == int(split.y_test[9])
    pc = net.costs[plain_name]
    # permutations keep every neuron's weight set: the same circuit size and the same verifier template
    assert enc["constraints"] == pc["constraints"]
    assert abs(enc["submit_proof_gas"] - pc["submit_proof_gas"]) < 2_000, (enc, pc)


def test_publish_refuses_unprovable_models_in_one_line(net: Net) -> None:
    """Bad input at publish time: an unsupported layer type, and a circuit too big for the given ptau."""
    publisher = net.protocol.as_account(funded_account(net.w3, 10 * ETHER))
    store = open_store(root=net.store_dir)
    data = json.loads(load_builtin("digits-cnn").canonical_json())
    data["layers"][1]["type"] = "maxpool2d"
    with pytest.raises(VerinferError) as ei:
        from verinfer.models.spec import load as load_spec

        publish_model(publisher, store, load_spec(data), proof_mode="public", setup="dev")
    assert "maxpool2d" in str(ei.value) and "\n" not in str(ei.value)
    count = net.protocol.models.model_count()
    from verinfer.prover.toolchain import DATA_DIR

    ptau = DATA_DIR / "ptau" / "INSECURE_test_phase1_bn128_2e10.ptau"
    with pytest.raises(VerinferError) as ei:
        publish_model(publisher, store, load_builtin("digits-cnn"), proof_mode="public", setup="ceremony",
                      ptau=ptau, name="too-big")
    msg = str(ei.value)
    assert "needs a 2^14 ptau" in msg and "2^10" in msg and "\n" not in msg, msg
    assert net.protocol.models.model_count() == count  # nothing registered
