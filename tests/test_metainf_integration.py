"""MetaInf wired into the network (issue 13 item 4), on the session anvil with real processes.

- `model publish --profile auto` registers keccak(stored profile document) as executionProfileHash
  and anchors the document with setArtifacts;
- `node bench` prints the candidates table and what the node would run;
- a node whose run would change the registered profile hash refuses the model (log + /health),
  and a node running the reference keeps serving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3 import Web3

from verinfer.chain.protocol import Protocol
from verinfer.devnet.cluster import NodeCluster
from verinfer.devnet.processes import wait_for
from verinfer.devnet.samples import sample_input
from verinfer.inference.lm import lm_profile_hash
from verinfer.metainf import consensus
from verinfer.metainf.consensus import Candidate
from verinfer.metainf.profiles import base_profile
from verinfer.metainf.zoo import acc_bound
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import reference_profile_hash
from verinfer.models.tensor import encode_tensor
from verinfer.node.profile import SELECTION_OFF, check_model, parse_method
from verinfer.storage import open_store

VERINFER = [sys.executable, "-m", "verinfer.cli"]
#: the hardware class the committed raw table was measured on (this CPU's class may differ)
MEASURED = "x86_64-avx2"


def cli(*args: str, store: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VERINFER_STORE=str(store))
    env.pop("IPFS_API", None)
    return subprocess.run([*VERINFER, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          timeout=timeout)


def chain_args(w3: Web3, manifest: Path) -> list[str]:
    return ["--rpc-url", str(w3.provider.endpoint_uri), "--manifest", str(manifest)]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metainf-store")


@pytest.fixture(scope="module")
def lm_auto(w3: Web3, protocol_manifest_path: Path, store_dir: Path) -> dict[str, Any]:
    """textgenrnn published with --profile auto for the measured hardware class (selector + agreement check)."""
    res = cli("model", "publish", "textgenrnn", "--profile", "auto", "--hardware-class", MEASURED,
              "--dev-account", "0", "--json", *chain_args(w3, protocol_manifest_path), store=store_dir)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_publish_auto_registers_the_profile_documents_hash(lm_auto: dict[str, Any], protocol: Protocol,
                                                           store_dir: Path) -> None:
    prof = lm_auto["profile"]
    doc = open_store(root=store_dir).cat(prof["document_cid"])
    model_id = bytes.fromhex(lm_auto["model_id"][2:])
    on_chain = bytes(protocol.models.get_model(model_id).execution_profile_hash)
    # the registered hash is keccak of the stored document, and the document is anchored with the model
    assert on_chain == keccak(doc) == bytes.fromhex(lm_auto["execution_profile_hash"][2:])
    assert protocol.models.artifacts_cid(model_id) == prof["document_cid"] and prof["anchored"]
    assert json.loads(doc) == prof["document"] and prof["hardware_class"] == MEASURED
    assert consensus.registered_candidate(prof["document"]).method == prof["method"]
    if prof["method"] == "torch_fp32":  # the selector kept the reference: the hash is the reference one
        assert on_chain == lm_profile_hash_of_builtin()
    else:  # a publisher's method: a new profile for this hardware class
        assert on_chain != lm_profile_hash_of_builtin() and prof["document"]["method"] == prof["method"]


def lm_profile_hash_of_builtin() -> bytes:
    from verinfer.client.publish import load_model_ref

    spec, _ = load_model_ref("textgenrnn")
    return lm_profile_hash(spec)


def test_publish_auto_falls_back_on_unknown_hardware_with_one_notice(w3: Web3, protocol_manifest_path: Path,
                                                                     store_dir: Path, protocol: Protocol) -> None:
    res = cli("model", "publish", "digits-mlp", "--profile", "auto", "--hardware-class", "riscv64-unmeasured",
              "--dev-account", "0", "--json", *chain_args(w3, protocol_manifest_path), store=store_dir)
    assert res.returncode == 0, res.stderr
    notices = [line for line in res.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "riscv64-unmeasured was never measured" in notices[0], res.stderr
    model_id = json.loads(res.stdout)["model_id"]
    assert bytes(protocol.models.get_model(bytes.fromhex(model_id[2:])).execution_profile_hash) == reference_profile_hash()


def test_publish_rejects_an_unknown_profile_in_one_line(w3: Web3, protocol_manifest_path: Path, store_dir: Path) -> None:
    res = cli("model", "publish", "digits-mlp", "--profile", "fastest", "--dev-account", "0",
              *chain_args(w3, protocol_manifest_path), store=store_dir)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        "error: --profile must be one of default, auto, got 'fastest'"], res.stderr


def test_node_bench_prints_the_table_for_a_registered_model(lm_auto: dict[str, Any], w3: Web3,
                                                            protocol_manifest_path: Path, store_dir: Path) -> None:
    res = cli("node", "bench", "--model", lm_auto["model_id"], "--hardware-class", MEASURED,
              *chain_args(w3, protocol_manifest_path), store=store_dir)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "output-preserving" in out and "who chooses" in out and lm_auto["profile"]["method"] in out
    assert f"node would run: {lm_auto['profile']['method']}" in out
    if lm_auto["profile"]["method"] != "torch_fp32":
        # this node's compute runs the reference (torch_fp32): under the publisher's profile it must refuse
        assert "refused: refusing to serve with torch_fp32" in out
    as_json = cli("node", "bench", "--model", lm_auto["model_id"], "--hardware-class", MEASURED, "--json",
                  *chain_args(w3, protocol_manifest_path), store=store_dir)
    doc = json.loads(as_json.stdout)
    assert doc["profile_hash"] == lm_auto["execution_profile_hash"] and doc["candidates"]
    assert {"method", "predicted_ratio", "preserving", "scope", "reason"} <= doc["candidates"][0].keys()


def test_node_bench_integer_model_marks_only_exact_kernels_preserving(store_dir: Path) -> None:
    res = cli("node", "bench", "--model", "digits-mlp", "--hardware-class", MEASURED, "--json", store=store_dir)
    assert res.returncode == 0, res.stderr
    rows = {r["method"]: r for r in json.loads(res.stdout)["candidates"]}
    assert rows["numpy_int64"]["preserving"] and rows["torch_fp32"]["preserving"]
    assert not rows["ort_int8"]["preserving"] and rows["ort_int8"]["scope"] == "publisher"


def test_check_model_refuses_a_run_that_changes_the_hash_and_accepts_the_reference() -> None:
    from verinfer.client.publish import load_model_ref

    spec, _ = load_model_ref("digits-mlp")
    mid, reg = b"\x01" * 32, reference_profile_hash()
    ok, profile = check_model(mid, spec, reg, lambda: None)
    assert ok.serving and profile is not None and ok.run == "numpy_int64"
    bad, _ = check_model(mid, spec, reg, lambda: None, Candidate("ort_int8"))
    assert not bad.serving and "\n" not in bad.reason and "would change the registered profile hash" in bad.reason
    # a registered hash that is neither the reference profile nor an anchored document: refused, not guessed
    unknown, _ = check_model(mid, spec, b"\x02" * 32, lambda: None)
    assert not unknown.serving and "no profile document is anchored" in unknown.reason


def test_parse_method_one_line_errors() -> None:
    assert parse_method("ort_int8:1:4") == Candidate("ort_int8", 1, 4)
    for bad in ("warp_drive", "torch_fp32:x", "torch_fp32:0", "torch_fp32:1:1:1"):
        with pytest.raises(Exception) as exc:
            parse_method(bad)
        assert "\n" not in str(exc.value) and "--exec-method" in str(exc.value)


def test_metainf_select_flag_beats_the_env_and_a_bad_env_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from verinfer.errors import ConfigError
    from verinfer.node.__main__ import parse
    from verinfer.node.daemon import METAINF_SELECT_ENV

    monkeypatch.delenv(METAINF_SELECT_ENV, raising=False)
    assert parse(["--key", "k"]).selection_on()  # operators' default: on
    monkeypatch.setenv(METAINF_SELECT_ENV, "0")
    assert not parse(["--key", "k"]).selection_on()
    assert parse(["--key", "k", "--metainf-select"]).selection_on()
    monkeypatch.setenv(METAINF_SELECT_ENV, "1")
    assert not parse(["--key", "k", "--no-metainf-select"]).selection_on()
    monkeypatch.setenv(METAINF_SELECT_ENV, "yes")
    with pytest.raises(ConfigError) as exc:
        parse(["--key", "k"]).check()
    assert str(exc.value) == f"{METAINF_SELECT_ENV} must be 0 or 1, got 'yes'"


def test_a_node_whose_run_would_change_the_hash_refuses_the_model(tmp_path: Path, w3: Web3, protocol: Protocol,
                                                                  protocol_manifest_path: Path) -> None:
    c = NodeCluster(tmp_path, w3, protocol, protocol_manifest_path, n_nodes=3)
    try:
        # the suite runs nodes with VERINFER_NODE_METAINF_SELECT=0 (tests/conftest.py): `good` turns it back on
        bad, good, off = c.start_many({0: ["--exec-method", "ort_int8"],
                                       1: ["--hardware-class", MEASURED, "--metainf-select"], 2: []})
        mid = "0x" + bytes(c.model_id).hex()
        refused = {p["model_id"]: p for p in bad.health()["profiles"]}[mid]
        assert not refused["serving"] and "would change the registered profile hash" in refused["reason"]
        assert any("refusing model" in line and "ort_int8" in line for line in bad.log().splitlines())
        served = {p["model_id"]: p for p in good.health()["profiles"]}[mid]
        assert served["serving"]
        # selection off: serves the registered run at once, says so in /health, builds no executor
        plain = {p["model_id"]: p for p in off.health()["profiles"]}[mid]
        assert plain["serving"] and plain["run"] == plain["selected"] == "numpy_int64", plain
        assert plain["selection_note"] == SELECTION_OFF
        # the serving node's own selection (computed in the background) is output-preserving, and executed
        selected = wait_for(lambda: {p["model_id"]: p for p in good.health()["profiles"]}[mid]["selected"], 60,
                            what="the node's MetaInf selection")
        int_profile = base_profile(c.spec)
        assert consensus.output_preserving(int_profile, Candidate(selected), acc_bound(c.spec)).preserving
        wait_for(lambda: {p["model_id"]: p for p in good.health()["profiles"]}[mid]["run"] == selected, 120,
                 what="the node to execute its selection")
        if selected != "numpy_int64":
            assert any("executing the node's selection " + selected in line for line in good.log().splitlines())
        # a request for the model: the reference node commits, the refusing node never even records it
        x = sample_input(3)
        rid = c.request(encode_tensor(x, "int8", [64]), hash_vector(x, 8), commit_blocks=10, reveal_blocks=10)
        wait_for(lambda: protocol.market.get_reveal(rid, good.address).committed, 60, what="the serving node to commit")
        wait_for(lambda: protocol.market.get_reveal(rid, off.address).committed, 60, what="the selection-off node to commit")
        assert f"request {rid}" not in bad.log()
        assert not protocol.market.get_reveal(rid, bad.address).committed
    finally:
        c.stop_all()


def test_profile_documents_are_verified_against_the_registered_hash() -> None:
    from verinfer.client.publish import load_model_ref
    from verinfer.metainf.profiles import profile_document
    from verinfer.storage.errors import ContentNotFoundError

    spec, _ = load_model_ref("textgenrnn")
    chosen = consensus.publisher_profile(base_profile(spec), Candidate("ort_fp32"), MEASURED)
    doc = profile_document(chosen)
    reg = keccak(doc)
    mid = b"\x03" * 32
    # the anchored document names the registered profile: the reference run would change it -> refused
    st, profile = check_model(mid, spec, reg, lambda: doc)
    assert profile is None and not st.serving and "would change the registered profile hash" in st.reason
    # ...and running the registered method itself keeps the hash
    ok, profile = check_model(mid, spec, reg, lambda: doc, Candidate("ort_fp32"))
    assert ok.serving and profile == chosen
    # a document that is not the registered one, or not canonical: refused with one line
    for bad in (profile_document({**chosen, "threads": 2}), json.dumps(chosen, indent=1).encode(), b"not json"):
        st, _ = check_model(mid, spec, reg, lambda bad=bad: bad, Candidate("ort_fp32"))
        assert not st.serving and "\n" not in st.reason
    # a document that cannot be fetched yet is no verdict: the caller retries
    def missing() -> bytes:
        raise ContentNotFoundError("not yet")
    with pytest.raises(ContentNotFoundError):
        check_model(mid, spec, reg, missing)
