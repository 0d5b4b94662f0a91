"""docs/dapp.md, executed: the guide's consumer, built from the doc's code block in a fresh Foundry project that
imports the kit by remapping, deployed on a local network with real `python -m verinfer.node` processes, asks for
a digit classification and acts on the (proven) class on-chain.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from verinfer.chain import kit
from verinfer.chain.devnet import port_in_use
from verinfer.chain.errors import ChainError
from verinfer.chain.protocol import FINAL_STATUSES, Status
from verinfer.chain.tx import sender_for
from verinfer.devnet.network import LocalNetwork
from verinfer.devnet.processes import wait_for
from verinfer.devnet.samples import prover_available, sample_input, sample_label
from verinfer.inference import runtime
from verinfer.models import spec as model_spec

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "dapp.md"
KIT_PORTS = range(8760, 8800)


def guide_blocks() -> dict[str, str]:
    """Code blocks the guide marks `<!-- guide-…: PATH -->`, by PATH (the next fenced block after the marker)."""
    text = DOC.read_text()
    found = {}
    for m in re.finditer(r"<!-- guide-[a-z]+: (\S+) -->\s*```[a-z]*\n(.*?)```", text, re.S):
        found[m.group(1)] = m.group(2)
    return found


KIT_IMPORT = '"verinfer/kit/VerinferConsumer.sol"'  # how a dApp imports the kit (remapping)
IN_REPO_IMPORT = '"../VerinferConsumer.sol"'  # the same file, seen from contracts/src/kit/examples/


def test_guide_consumer_is_the_shipped_example() -> None:
    """The doc's consumer and contracts/src/kit/examples/DigitGate.sol are the same file but for the import path
    (the repository itself compiles without the `verinfer/` remapping, so its protocol bytecode is unchanged)."""
    blocks = guide_blocks()
    assert "src/DigitGate.sol" in blocks, f"{DOC} lost its marked consumer block"
    doc = blocks["src/DigitGate.sol"]
    assert doc.count(KIT_IMPORT) == 1, "the guide's consumer imports the kit with one import"
    shipped = (REPO / "contracts/src/kit/examples/DigitGate.sol").read_text()
    assert doc.replace(KIT_IMPORT, IN_REPO_IMPORT) == shipped


def forge_project(tmp: Path) -> Path:
    """A fresh Foundry project laid out as the guide says (foundry.toml + src/), kit imported by remapping."""
    blocks = guide_blocks()
    proj = tmp / "my-dapp"
    (proj / "src").mkdir(parents=True)
    toml = blocks["foundry.toml"].replace("<path-to-verinfer>", str(REPO))
    (proj / "foundry.toml").write_text(toml)
    (proj / "src" / "DigitGate.sol").write_text(blocks["src/DigitGate.sol"])
    return proj


def build(proj: Path) -> dict:
    forge = REPO / "node_modules" / ".bin" / "forge"
    t0 = time.monotonic()
    proc = subprocess.run([str(forge), "build"], cwd=proj, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"guide consumer built in {time.monotonic() - t0:.1f}s")
    return json.loads((proj / "out" / "DigitGate.sol" / "DigitGate.json").read_text())


def test_guide_end_to_end(tmp_path: Path) -> None:
    """Zero to a deployed consumer acting on a proven digit class, against 3 real node processes."""
    if not prover_available():
        pytest.fail("the Groth16 toolchain (node, circom2, circomlib) is missing: run scripts/install.sh")
    # the consumer compiles (solc-js: CPU) while the network comes up (mostly waiting for blocks and nodes)
    pool = ThreadPoolExecutor(max_workers=1)
    building = pool.submit(lambda: build(forge_project(tmp_path)))
    pool.shutdown(wait=False)  # the build runs on; .result() joins it and re-raises its failure
    port = next(p for p in KIT_PORTS if not port_in_use(p))
    with LocalNetwork(tmp_path / "net", n_nodes=3, proof=True, port=port) as net:
        art = building.result()
        assert net.proof_mode == 1, "the digits model is published with public-weights proofs"
        w3 = net.devnet.w3
        dev = net.dev_accounts[0]
        tx = sender_for(w3, dev)
        manifest = net.manifest
        market = manifest.address("InferenceMarket")

        # 1. the shared hasher (once per chain)
        kit_addrs = kit.deploy_kit(w3, tx)
        # 2. the model id by (publisher, name, version)
        models = kit.list_models(w3, manifest.address("ModelRegistry"))
        entry = next(m for m in models if m.name == "digits-mlp")
        assert entry.model_id == net.model_id and entry.proof_mode == 1 and entry.output_bits == 32
        # 3. deploy the guide's consumer: a gate for the digit of sample 0, proof required
        pixels, label = sample_input(0), sample_label(0)
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]["object"])
        receipt = tx.send(factory.constructor(market, kit_addrs["VerinferHasher"], entry.model_id, label, True))
        gate = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
        print(f"DigitGate deployed: {receipt['gasUsed']} gas")

        # 4. a user knocks with the image; the payload is stored (anyone can: its CID is fixed by the contract)
        user = net.dev_accounts[3]
        utx = sender_for(w3, user)
        params = gate.functions.params().call()
        q = kit.quote(w3, market, entry.model_id, params)
        assert gate.functions.quoteTotal(bytes.fromhex(entry.model_id[2:]), params).call() == q.total
        cid = kit.store_input(net.store(), pixels, 8)
        r = utx.send(gate.functions.knock(pixels), value=q.total)
        print(f"knock: {r['gasUsed']} gas")
        ev = gate.events.VerinferRequested().process_receipt(r, errors=DISCARD)[0]["args"]
        rid = ev["requestId"]
        assert ev["inputCid"] == cid, "the contract computed the same CID as Python"
        assert kit.store_requested_inputs(w3, gate.address, net.store(), from_block=r["blockNumber"]) == [cid]
        assert int.from_bytes(ev["inputHash"], "big") == kit.onchain_hash(w3, kit_addrs["VerinferHasher"], pixels, 8)

        # 5. real nodes draw, commit, reveal, prove and finalize
        t0 = time.monotonic()
        m = kit.contract(w3, "IInferenceMarket", market)
        wait_for(lambda: m.functions.statusOf(rid).call() in {int(s) for s in FINAL_STATUSES}, 240, what="settlement")
        status, out_hash, proven = kit.settled_output(w3, market, rid)
        print(f"settled in {time.monotonic() - t0:.1f}s: status {Status(status).name}, proven {proven}")
        assert status == Status.ACCEPTED and proven

        # 6. anyone opens the output vector; the gate checks it against the proven hash and acts on the class
        vector = kit.output_vector(w3, market, rid, net.store(), bits=entry.output_bits)
        with pytest.raises(ChainError, match="no revealed output payload hashes to the settled output"):
            kit.output_vector(w3, market, rid, net.store(), bits=8)  # wrong width: nothing matches
        mismatch = Web3.keccak(text="OutputMismatch(uint256,bytes32,bytes32)")[:4].hex().removeprefix("0x")
        with pytest.raises(ContractLogicError, match=mismatch):
            gate.functions.deliver(rid, [v + 1 for v in vector]).call()  # a forged vector is refused on-chain
        spec = runtime.load_model(model_spec.builtin_path("digits-mlp").read_bytes())
        assert runtime.execute(spec, pixels) == vector, "the opened vector is the reference logits"
        r = kit.deliver_settled(w3, utx, gate.address, rid, net.store())  # = output_vector + deliver
        print(f"deliver: {r['gasUsed']} gas")
        cls = max(range(len(vector)), key=lambda i: (vector[i], -i))
        assert cls == label, "the digits model classifies sample 0 correctly"
        assert gate.functions.opened(user.address).call(), "the proven class opened the gate"
        fulfilled = gate.events.VerinferFulfilled().process_receipt(r, errors=DISCARD)[0]["args"]
        assert fulfilled["cls"] == label and fulfilled["proven"]

        # 7. a payload nobody stores: the committee cannot fetch it and settles INVALID_INPUT; the gate's callback
        #    acts on that at once (no deliver needed) and the requester has paid the committee for the check
        other = sample_input(1)
        r = utx.send(gate.functions.knock(other), value=q.total)
        print(f"knock #2 (model bit widths cached): {r['gasUsed']} gas")
        rid2 = gate.events.VerinferRequested().process_receipt(r, errors=DISCARD)[0]["args"]["requestId"]
        t0 = time.monotonic()
        wait_for(lambda: m.functions.statusOf(rid2).call() in {int(s) for s in FINAL_STATUSES}, 240, what="settlement")
        status2, _, _ = kit.settled_output(w3, market, rid2)
        print(f"unstored payload settled in {time.monotonic() - t0:.1f}s: {Status(status2).name}")
        assert status2 == Status.INVALID_INPUT
        fulfilled, st, cls2, proven2 = gate.functions.resultOf(rid2).call()
        assert fulfilled and st == Status.INVALID_INPUT and cls2 == kit.NO_CLASS and not proven2
        assert m.functions.withdrawable(gate.address).call() == 0, "INVALID_INPUT: the fee paid the committee"
