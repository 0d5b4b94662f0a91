"""`verinfer devnet up/down/status` as a user runs them (subprocesses), including persistence:
up → deploy → change state → down → up → same contracts and state."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from web3 import Web3

from verinfer.chain.devnet import dev_accounts, find_free_port, pid_alive
from verinfer.chain.manifest import Manifest
from verinfer.chain.protocol import ModelInput, Protocol


#: this checkout first on the path (an installed `verinfer` may belong to another checkout)
REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", PYTHONPATH=str(REPO))
    env.pop("VERINFER_MANIFEST", None)
    return subprocess.run([sys.executable, "-m", "verinfer.cli", "devnet", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_up_down_persists_chain(tmp_path: Path) -> None:
    port = find_free_port()
    state = tmp_path / "dev"
    r = _cli("up", "--port", str(port), "--state-dir", str(state), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "deployed now" in r.stdout
    pid = int((state / "anvil.pid").read_text())
    try:
        manifest = Manifest.load(state / "manifest.json")
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        assert manifest.rpc_url == f"http://127.0.0.1:{port}"
        assert all(w3.eth.get_code(a) for a in manifest.addresses.values())
        p = Protocol(w3, manifest, dev_accounts(2)[1])
        _, model_id = p.models.register_model(ModelInput(name="persisted", weights_cid="bafyw", commitment=7))
        block = w3.eth.block_number

        st = _cli("status", "--state-dir", str(state), cwd=tmp_path)
        assert st.returncode == 0 and f"yes (pid {pid})" in st.stdout and "live" in st.stdout

        busy = _cli("up", "--port", str(port), "--state-dir", str(state), cwd=tmp_path)
        assert busy.returncode == 1 and busy.stderr.startswith("error: a devnet is already running")
    finally:
        d = _cli("down", "--state-dir", str(state), cwd=tmp_path)
    assert d.returncode == 0, d.stderr
    assert not pid_alive(pid) and not (state / "anvil.pid").exists()
    assert (state / "state.json").stat().st_size > 0

    r2 = _cli("up", "--port", str(port), "--state-dir", str(state), cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    try:
        assert "existing deployment" in r2.stdout
        assert Manifest.load(state / "manifest.json").addresses == manifest.addresses
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        assert w3.eth.block_number >= block
        p = Protocol(w3, manifest)
        assert p.models.get_model(model_id).name == "persisted"  # state written before `down` survived
    finally:
        assert _cli("down", "--state-dir", str(state), cwd=tmp_path).returncode == 0

    r3 = _cli("up", "--fresh", "--port", str(port), "--state-dir", str(state), cwd=tmp_path)
    try:
        assert r3.returncode == 0 and "deployed now" in r3.stdout
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        assert not Protocol(w3, Manifest.load(state / "manifest.json")).models.exists(model_id)
    finally:
        _cli("down", "--state-dir", str(state), cwd=tmp_path)


def test_port_busy_is_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _cli("up", "--port", str(port), "--state-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"error: port {port} is busy (another devnet or program is listening); "
        "stop it (`verinfer devnet down`) or pick another port with --port"
    )


def test_down_when_nothing_runs(tmp_path: Path) -> None:
    r = _cli("down", "--state-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert r.returncode == 0 and "no devnet running" in r.stdout
