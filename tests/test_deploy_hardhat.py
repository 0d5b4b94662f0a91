"""`verinfer deploy` on two EVM implementations: Hardhat Network (EDR, from npm) and anvil on a non-default port.

On Hardhat Network: deploy with a keystore made here (funded from a Hardhat default account), publish the digits
model with its Groth16 verifier, run request → commit/reveal → proof → finalize from Python, assert the
settlement, and load the explorer (no `ots_` namespace there). Bad input to the command is one line, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from verinfer.chain import artifacts
from verinfer.chain.deploy import is_deployed
from verinfer.chain.devnet import Devnet, dev_accounts, find_free_port
from verinfer.chain.manifest import Manifest, ProtocolParams
from verinfer.chain.profile import DEPLOY_GAS_BUDGET, DEVNET_PROFILE, load_profile
from verinfer.chain.protocol import ModelShard, Protocol, RequestParams, Status, commitment_hash, decode_event
from verinfer.chain.tx import sender_for
from verinfer.client.publish import publish_model
from verinfer.constants import ETHER
from verinfer.explorer.app import create_app
from verinfer.explorer.db import Database
from verinfer.explorer.service import Explorer
from verinfer.models import reference
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import load_builtin
from verinfer.node.keystore import create_keystore
from verinfer.prover import pipeline
from verinfer.storage import open_store

REPO = Path(__file__).resolve().parent.parent
HH = REPO / "hardhat"
PROFILES = REPO / "deploy" / "profiles"
PASSWORD = "correct horse battery staple"
SAMPLES = Path(reference.__file__).parent / "data" / "digits-samples.json"


def _wait_rpc(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> Web3:
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"hardhat node exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if w3.eth.chain_id:
                return w3
        except Exception:
            time.sleep(0.2)
    pytest.fail(f"hardhat node did not answer on {url} within {timeout} s")


@pytest.fixture(scope="module")
def hardhat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web3]:
    """`hardhat node` (Hardhat Network / EDR) on a free loopback port; it compiles nothing and downloads nothing."""
    cli = HH / "node_modules" / ".bin" / "hardhat"
    if not cli.exists():
        pytest.fail("Hardhat is not installed: run `npm ci --prefix hardhat` (pinned in hardhat/package-lock.json)")
    port = find_free_port()
    log = tmp_path_factory.mktemp("hardhat") / "node.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(cli), "--config", "hardhat.config.cjs", "node", "--hostname", "127.0.0.1",
                                 "--port", str(port)], cwd=HH, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        w3 = _wait_rpc(f"http://127.0.0.1:{port}", proc, log)
        assert "HardhatNetwork" in w3.client_version, w3.client_version  # really the second EVM, not an anvil
        yield w3
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Devnet]:
    d = Devnet(port=find_free_port(), state_dir=tmp_path / "anvil", block_time=None, persist=False, n_accounts=4).start()
    assert d.port != 8545
    yield d
    d.stop()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VERINFER_PASSWORD", "VERINFER_MANIFEST")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "verinfer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env=env, stdin=subprocess.DEVNULL)


def _keystore(tmp: Path, w3: Web3 | None, name: str = "deployer", fund: int = 100 * ETHER) -> tuple[Path, Path, str]:
    """An encrypted keystore (low scrypt cost: test only) funded by a transfer from a default dev account."""
    address, path = create_keystore(name, PASSWORD, home=tmp, scrypt_n=2**12)
    pw = tmp / f"{name}.password"
    pw.write_text(PASSWORD + "\n")
    if w3 is not None and fund:
        sender_for(w3, dev_accounts(1)[0]).transfer(address, fund)
    return path, pw, address


def _deploy(w3: Web3, tmp: Path, profile: Path, keystore: Path, pw: Path) -> tuple[Manifest, str]:
    out = tmp / "manifest.json"
    r = _cli("deploy", "--rpc-url", _url(w3), "--keystore", str(keystore), "--password-file", str(pw),
             "--profile", str(profile), "--manifest", str(out), cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert f"manifest: {out}" in r.stdout
    return Manifest.load(out), r.stdout


def _url(w3: Web3) -> str:
    return str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def _mine(w3: Web3, n: int) -> None:
    """Hardhat Network automines one block per tx: empty blocks close windows and pass the draw block."""
    if n > 0:
        w3.provider.make_request("hardhat_mine", [hex(n)])  # type: ignore[arg-type]


def _gas_since(w3: Web3, block: int) -> int:
    return sum(int(w3.eth.get_transaction_receipt(h)["gasUsed"])
               for n in range(block, w3.eth.block_number + 1) for h in w3.eth.get_block(n)["transactions"])


def test_deploy_lifecycle_proof_and_explorer_on_hardhat_network(hardhat: Web3, tmp_path: Path) -> None:
    w3 = hardhat
    t0 = time.monotonic()
    keystore, pw, deployer = _keystore(tmp_path, w3)
    m, stdout = _deploy(w3, tmp_path, PROFILES / "devnet.json", keystore, pw)
    assert is_deployed(w3, m) and m.deployer == deployer and m.chain_id == 31337
    assert m.params == DEVNET_PROFILE.params() == load_profile(PROFILES / "devnet.json").params() == ProtocolParams()
    gas = _gas_since(w3, m.deploy_block)
    print(f"\nhardhat: deploy {time.monotonic() - t0:.1f}s, {gas:,} gas (budget {DEPLOY_GAS_BUDGET:,})")
    assert gas < DEPLOY_GAS_BUDGET
    p = Protocol(w3, m)
    assert (p.market.min_commit_blocks(), p.market.min_reveal_blocks(), p.market.proof_blocks()) == (10, 10, 20)
    assert (p.nodes.epoch_length(), p.nodes.unbonding_delay(), p.nodes.min_stake()) == (20, 20, ETHER)
    assert p.market.slash_amount() == ETHER // 10 and p.market.callback_gas_price() == 2 * 10**9

    # the digits model with its Groth16 verifier (dev keys), published from a Hardhat default account
    dev = dev_accounts(4)
    store = open_store(root=tmp_path / "store")
    spec = load_builtin("digits-mlp")
    published = publish_model(Protocol(w3, m, dev[1]), store, spec, proof_mode="public")
    model_id = published.model_id
    arts = pipeline.prepare(spec, "public", setup="dev")
    assert p.models.get_model_core(model_id).proof_mode != 0

    operators = [Account.create() for _ in range(3)]
    funder = sender_for(w3, dev[2])
    for op in operators:
        funder.transfer(op.address, 5 * ETHER)
        Protocol(w3, m, op).nodes.register(f"http://{op.address[:8]}", [ModelShard(model_id)], stake=2 * ETHER)
    n = p.nodes.epoch_length()
    _mine(w3, n - w3.eth.block_number % n)  # stake counts from the next epoch's snapshot

    requester = Protocol(w3, m, dev[3])
    x = json.loads(SAMPLES.read_text())["samples"][0]["pixels"]
    cid = store.add(json.dumps(x).encode())
    params = RequestParams(replicas=3, quorum=2, commit_blocks=10, reveal_blocks=10)
    fee, _ = p.market.quote(model_id, params)
    _, rid = requester.market.request_inference(model_id, cid, hash_vector(x, spec.input_bits), params, fee)
    req = p.market.get_request(rid)
    _mine(w3, req.draw_block + 1 - w3.eth.block_number)  # the lazy draw needs block > drawBlock

    prover = operators[0]
    out_hash, proof = pipeline.prove_request(arts, spec, x, rid, prover.address)
    salts = {op.address: os.urandom(32) for op in operators}
    for op in operators:
        Protocol(w3, m, op).market.commit(rid, commitment_hash(rid, int.from_bytes(out_hash, "big"), salts[op.address],
                                                                op.address))
    for op in operators:
        Protocol(w3, m, op).market.reveal(rid, out_hash, salts[op.address], "bafy-output")
    proof_receipt = Protocol(w3, m, prover).market.submit_proof(rid, out_hash, proof)
    escrow = p.market.total_escrowed()
    fin = requester.market.finalize(rid)

    req = p.market.get_request(rid)
    assert req.status == Status.ACCEPTED and req.proven and req.output_hash == out_hash
    assert p.market.total_escrowed() == escrow - fee
    final = [decode_event(e) for e in p.events("Finalized", from_block=req.created_block)]
    assert [(f.status, f.paid_count) for f in final if f.request_id == rid] == [(Status.ACCEPTED, 3)]
    assert sum(p.market.withdrawable(op.address) for op in operators) == fee  # all three agreed: all paid
    proved = [e.args for e in p.events("ProofVerified", from_block=req.created_block) if e.args["requestId"] == rid]
    assert [(a["prover"], a["outputHash"]) for a in proved] == [(prover.address, out_hash)]
    print(f"hardhat: lifecycle with proof {time.monotonic() - t0:.1f}s, submitProof {proof_receipt['gasUsed']:,} gas")

    # the explorer on Hardhat Network: index, overview, request JSON, a tx page without ots_ traces
    ex = Explorer(Protocol(w3, m), Database(tmp_path / "index.sqlite"), store)
    ex.indexer.sync()
    with TestClient(create_app(ex, follow=False, verify_sources_on_start=False)) as web:
        home = web.get("/")
        assert home.status_code == 200 and "verinfer explorer" in home.text
        ov = web.get("/api/overview").json()
        assert json.dumps(ov)  # serialisable counters
        d = web.get(f"/api/requests/{rid}", params={"audit": "false"}).json()
        assert d["request"]["status"] == "ACCEPTED" and d["request"]["proven"] == 1
        names = [e["name"] for e in d["timeline"]]
        assert {"InferenceRequested", "Committed", "Revealed", "ProofVerified", "Finalized"} <= set(names), names
        tx = web.get(f"/api/tx/0x{bytes(fin['transactionHash']).hex()}")
        assert tx.status_code == 200
        assert ex.ots_trace("0x" + bytes(fin["transactionHash"]).hex())["available"] is False
    print(f"hardhat: total {time.monotonic() - t0:.1f}s")


def test_deploy_bad_input_is_one_line(hardhat: Web3, tmp_path: Path) -> None:
    keystore, pw, _ = _keystore(tmp_path, hardhat, name="poor", fund=0)
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not it\n")
    bad_profile = tmp_path / "short.toml"
    bad_profile.write_text("""
name = "too short"
block_time_seconds = 12
commit_window_seconds = 60
reveal_window_seconds = 120
proof_window_seconds = 240
epoch_seconds = 240
unbonding_delay_seconds = 3600
min_stake = "1 ether"
slash_amount = "0.1 ether"
min_fee = "0.001 ether"
callback_gas_price = "2 gwei"
""")
    url = _url(hardhat)
    dead = f"http://127.0.0.1:{find_free_port()}"
    cases = [
        (["--rpc-url", url, "--password-file", str(wrong)], "wrong password for keystore"),
        (["--rpc-url", dead, "--password-file", str(pw)], f"cannot reach RPC at {dead}"),
        (["--rpc-url", url, "--password-file", str(pw), "--profile", str(bad_profile)],
         "commit_window_seconds gives 5 blocks at 12.0 s per block; the contracts accept 10 .. 1000 blocks"),
        (["--rpc-url", url, "--password-file", str(pw), "--profile", str(PROFILES / "example-l2.json")],
         "is for chain 84532, the RPC is chain 31337"),
        (["--rpc-url", url, "--password-file", str(pw)], "insufficient funds: deployer"),
    ]
    for args, expected in cases:
        r = _cli("deploy", "--keystore", str(keystore), *args, cwd=tmp_path)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("error: ") and expected in r.stderr, r.stderr


def test_deploy_on_anvil_non_default_port_with_a_toml_profile(anvil: Devnet, tmp_path: Path) -> None:
    profile = tmp_path / "slow-chain.toml"
    profile.write_text("""
name = "12 s blocks"
chain_id = 31337
block_time_seconds = 12
commit_window_seconds = 125   # -> 11 blocks (rounded up)
reveal_window_seconds = 240
proof_window_seconds = 600
epoch_seconds = 3600
unbonding_delay_seconds = 86400
min_stake = "0.5 ether"
slash_amount = "0.125 ether"  # = min_stake / 4, the contracts' cap
min_fee = "0.0001 ether"
callback_gas_price = "1.5 gwei"
attestation_verifiers = ["0x00000000000000000000000000000000000A77E5"]

[gas]
priority_fee = "1 gwei"
max_fee_per_gas = "100 gwei"
""")
    keystore, pw, deployer = _keystore(tmp_path, anvil.w3)
    m, _ = _deploy(anvil.w3, tmp_path, profile, keystore, pw)
    assert is_deployed(anvil.w3, m) and m.rpc_url.endswith(f":{anvil.port}")
    p = Protocol(anvil.w3, m)
    assert (p.market.min_commit_blocks(), p.market.min_reveal_blocks(), p.market.proof_blocks()) == (11, 20, 50)
    assert (p.nodes.epoch_length(), p.nodes.unbonding_delay()) == (300, 7200)
    assert (p.nodes.min_stake(), p.market.slash_amount(), p.market.min_fee()) == (ETHER // 2, ETHER // 8, ETHER // 10**4)
    assert p.market.callback_gas_price() == 15 * 10**8
    attest = anvil.w3.eth.contract(address=m.address("AttestationRegistry"),
                                   abi=artifacts.load("AttestationRegistry").abi)
    assert attest.functions.isVerifier(Web3.to_checksum_address("0x00000000000000000000000000000000000a77e5")).call() is True
    # a second deploy into the same manifest path is refused while that deployment is live
    r = _cli("deploy", "--rpc-url", _url(anvil.w3), "--keystore", str(keystore), "--password-file", str(pw),
             "--manifest", str(tmp_path / "manifest.json"), cwd=tmp_path)
    assert r.returncode == 1 and "already describes a live deployment" in r.stderr, r.stderr
