"""Encrypted models from the CLI only: `model publish --encrypt --key-out`, `request --ee-key`, `request show --ee-key`.

Real components: the session anvil, the embedded content store, three `python -m verinfer.node` processes
serving the plaintext digits-mlp and its encrypted copy. Proofs are off (proof mode none): proving encrypted
models through the network is tests/test_prover_network.py's job; this file checks what a user types and sees.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, Iterator

import pytest
from cli_checks import ok, one_line_error
from web3 import Web3

from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.protocol import ModelShard, Protocol
from verinfer.client.inputs import digits_sample
from verinfer.commands.model import app as model_app
from verinfer.commands.request import app as request_app
from verinfer.constants import ETHER
from verinfer.devnet.processes import launch_node
from verinfer.errors import VerinferError
from verinfer.models import reference
from verinfer.models.spec import load_builtin
from verinfer.node.keystore import create_keystore
from verinfer.operator.registration import register

PASSWORD = "ee-cli-password"
SAMPLE = 3




class EENet:
    def __init__(self, root: Path, manifest: Path, protocol: Protocol) -> None:
        self.root, self.manifest, self.protocol = root, manifest, protocol
        self.key_path = root / "digits.eekey"
        self.enc_id = ""
        self.plain_id = ""

    def publish(self, *args: str) -> dict[str, Any]:
        res = ok(model_app, "publish", "digits-mlp", "--key-env", "EE_PUBLISHER_KEY", "--json", *args)
        return json.loads(res.stdout)

    def request(self, model: str, *extra: str) -> dict[str, Any]:
        res = ok(request_app, "--model", model, "--input", f"digits-sample:{SAMPLE}", "--key", "requester",
                  "--manifest", str(self.manifest), "--commit-blocks", "30", "--reveal-blocks", "30",
                  "--timeout", "60", "--json", *extra)
        return json.loads(res.stdout)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, w3: Web3, protocol: Protocol,
        protocol_manifest_path: Path) -> Iterator[EENet]:
    root = tmp_path_factory.mktemp("ee-cli")
    home, store = root / "home", root / "store"
    n = EENet(root, protocol_manifest_path, protocol)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERINFER_STORE", str(store))
        mp.setenv("VERINFER_MANIFEST", str(protocol_manifest_path))
        mp.setenv("VERINFER_HOME", str(home))
        mp.setenv("VERINFER_PASSWORD", PASSWORD)
        mp.setenv("COLUMNS", "200")  # rich wraps the panel at the terminal width
        mp.setenv("EE_PUBLISHER_KEY", funded_account(w3, 100 * ETHER).key.hex())
        for k in ("IPFS_API", "VERINFER_IPFS_API", "VERINFER_RPC_URL"):
            mp.delenv(k, raising=False)
        enc = n.publish("--encrypt", "--key-out", str(n.key_path))
        n.enc_id, n.plain_id = enc["model_id"], n.publish()["model_id"]
        assert enc["ee_key"] == str(n.key_path)
        create_keystore("requester", PASSWORD, home=home, private_key=funded_account(w3, 100 * ETHER).key,
                        scrypt_n=2**14, force=True)
        accts = [funded_account(w3, 100 * ETHER) for _ in range(3)]
        for i, a in enumerate(accts):
            create_keystore(f"eenode{i}", PASSWORD, home=home, private_key=a.key, scrypt_n=2**14, force=True)
            register(protocol.as_account(a), 2 * ETHER,
                     [ModelShard(bytes.fromhex(m[2:])) for m in (n.enc_id, n.plain_id)], capacity=16)
        epoch = protocol.nodes.epoch_length()
        mine(w3, epoch - w3.eth.block_number % epoch)  # stake counts from the next epoch's snapshot
        nodes = [launch_node(f"eenode{i}", rpc_url=str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                             manifest=protocol_manifest_path, state_dir=root / f"state-{i}", home=home,
                             password=PASSWORD, store_dir=store) for i in range(3)]
        try:
            for p in nodes:
                p.wait_ready()
            yield n
        finally:
            for p in nodes:
                p.terminate()


def test_publish_encrypt_writes_a_private_key_file_and_refuses_to_overwrite(net: EENet) -> None:
    mode = stat.S_IMODE(net.key_path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    doc = json.loads(net.key_path.read_text())
    assert doc["format"] == "verinfer.ee-key.v1" and doc["model_id"] == net.enc_id.lower()
    assert [len(p) for p in doc["perms"]] == [64, 32, 10]  # digits-mlp: 64 inputs, 32 hidden, 10 classes
    # the registry holds the encrypted spec (weights permuted), never the key
    view = net.protocol.models.get_model(net.enc_id)
    assert view.name.endswith(".ee") and net.protocol.models.get_model(net.plain_id).name == "digits-mlp"
    before, count = net.key_path.read_bytes(), net.protocol.models.model_count()
    one_line_error(model_app, "publish", "digits-mlp", "--key-env", "EE_PUBLISHER_KEY", "--encrypt",
                    "--key-out", str(net.key_path), needle="already exists")
    assert net.key_path.read_bytes() == before and net.protocol.models.model_count() == count  # nothing sent
    one_line_error(model_app, "publish", "digits-mlp", "--key-env", "EE_PUBLISHER_KEY", "--encrypt",
                    needle="--key-out")
    # --force replaces a (here world-readable) file and leaves it owner-only
    other = net.root / "other.eekey"
    other.write_text("old")
    other.chmod(0o644)
    out = net.publish("--encrypt", "--key-out", str(other), "--force")
    assert stat.S_IMODE(other.stat().st_mode) == 0o600
    assert json.loads(other.read_text())["model_id"] == out["model_id"].lower() != net.enc_id.lower()


def test_request_with_ee_key_gives_the_plaintext_models_prediction(net: EENet) -> None:
    x, label = digits_sample(SAMPLE)
    plain = net.request(net.plain_id)
    enc = net.request(net.enc_id, "--ee-key", str(net.key_path))
    assert plain["status"] == enc["status"] == "Accepted", (plain, enc)
    assert plain["outputSpace"] == "plain" and enc["outputSpace"] == "decrypted"
    assert enc["prediction"] == plain["prediction"] == label
    assert enc["output"] == plain["output"] == reference.run(load_builtin("digits-mlp"), x)
    assert enc["permutedOutput"] != enc["output"]  # the chain and the nodes only ever saw the permuted logits

    # show: without the key the prediction is withheld and the output marked permuted; with it, decrypted
    rid = str(enc["requestId"])
    bare = json.loads(ok(request_app, "show", rid, "--manifest", str(net.manifest), "--json").stdout)
    assert bare["prediction"] is None and bare["outputSpace"] == "permuted" and bare["output"] == enc["permutedOutput"]
    text = ok(request_app, "show", rid, "--manifest", str(net.manifest)).stdout
    assert "permuted class order" in text and "--ee-key" in text
    text = ok(request_app, "show", rid, "--manifest", str(net.manifest), "--ee-key", str(net.key_path)).stdout
    assert "logits (decrypted)" in text and " ".join(str(v) for v in plain["output"]) in text

    # another model's key, a key on a plaintext model, a missing file: one line each, nothing submitted
    other = net.root / "other.eekey"
    if not other.exists():
        net.publish("--encrypt", "--key-out", str(other))
    count = net.protocol.market.request_count()
    args = ("--input", f"digits-sample:{SAMPLE}", "--key", "requester", "--manifest", str(net.manifest))
    one_line_error(request_app, "--model", net.enc_id, *args, "--ee-key", str(other), needle="belongs to model")
    one_line_error(request_app, "--model", net.plain_id, *args, "--ee-key", str(net.key_path),
                    needle="not an encrypted model")
    one_line_error(request_app, "--model", net.enc_id, *args, "--ee-key", str(net.root / "nope"),
                    needle="cannot read EE key file")
    one_line_error(request_app, "show", rid, "--manifest", str(net.manifest), "--ee-key", str(other),
                    needle="belongs to model")
    assert net.protocol.market.request_count() == count


def test_llm_key_file_holds_pi_only_and_rejects_bad_files(tmp_path: Path) -> None:
    """The encrypted-LLM key file (docs/lm.md "Encrypted deployment"): 0600, π only, no overwrite, one-line errors."""
    import numpy as np

    from verinfer.client.ee import LLM_KEY_FORMAT, read_key_file, write_key_file
    from verinfer.errors import ConfigError
    from verinfer.inference.ee_llm import VocabKey

    perm = np.random.default_rng(1).permutation(50)
    path = write_key_file(tmp_path / "lm.eekey", VocabKey(perm), b"\xab" * 32)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert set(doc) == {"format", "model_id", "vocab_size", "vocab_perm"} and doc["format"] == LLM_KEY_FORMAT
    kf = read_key_file(path)
    assert isinstance(kf.key, VocabKey) and kf.model_id == "0x" + "ab" * 32
    assert kf.key.decrypt_ids(kf.key.encrypt_ids([0, 7, 49])) == [0, 7, 49]
    with pytest.raises(ConfigError, match="already exists"):
        write_key_file(path, VocabKey(perm), None)
    for body, needle in (({"vocab_size": 3, "vocab_perm": [0, 0, 1]}, "not a permutation"),
                         ({"vocab_size": 4, "vocab_perm": [0, 1, 2]}, "vocab_size"),
                         ({"vocab_perm": "x"}, "vocab_perm")):
        bad = tmp_path / f"bad{len(str(body))}.eekey"
        bad.write_text(json.dumps({"format": LLM_KEY_FORMAT, "model_id": "", **body}))
        with pytest.raises(VerinferError, match=needle) as exc:
            read_key_file(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(VerinferError, match="outside the key's vocabulary"):
        kf.key.decrypt_ids([50])
