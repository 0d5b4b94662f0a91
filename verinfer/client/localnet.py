"""A whole verinfer network on one machine: fresh anvil, deployed protocol, published model, staked
operators and real `verinfer node run` processes.

Why in the client package: the demo, the request-side integration tests and the network benchmark
all need exactly this, from the requester's side. It drives operators and nodes only through the
`verinfer` CLI in subprocesses (never by importing `verinfer.node`), so what it exercises is what an
operator would type, and the client keeps no dependency on node internals.

Every process it starts runs in its own process group and is stopped in `stop()` (SIGTERM, then
SIGKILL), which `with LocalNetwork(...)` guarantees even on errors and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

import httpx
from eth_account.signers.local import LocalAccount

from verinfer.chain.deploy import deploy_protocol
from verinfer.chain.devnet import Devnet, find_free_port
from verinfer.chain.manifest import Manifest, ProtocolParams
from verinfer.chain.tx import TxSender
from verinfer.errors import VerinferError

ETHER = 10**18
PASSWORD = "verinfer-localnet"  # local throwaway keystores only


class LocalNetworkError(VerinferError):
    """A step of bringing the local network up failed (the message says which and why)."""


@dataclass
class NodeProcess:
    """One running `verinfer node run` subprocess."""

    name: str
    address: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def health_url(self) -> str | None:
        return self.info.get("health")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self, timeout: float = 3.0) -> dict[str, Any]:
        """GET /health; raises if the node is down or answers non-200."""
        if not self.health_url:
            raise LocalNetworkError(f"node {self.name} never reported its health endpoint")
        r = httpx.get(self.health_url, timeout=timeout)
        r.raise_for_status()
        return r.json()

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


class LocalNetwork:
    """Bring up / tear down devnet + protocol + model + `n_nodes` staked node processes."""

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        n_nodes: int = 3,
        block_time: float = 0.5,
        proof: bool | None = None,
        stake_ether: int = 10,
        model: str = "digits-mlp",
        node_faults: dict[int, str] | None = None,
        node_args: list[str] | None = None,
        detach: bool = False,
        params: ProtocolParams | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._tmp = None
        if root is None:
            self._tmp = tempfile.mkdtemp(prefix="verinfer-net-")
            root = self._tmp
        self.root = Path(root)
        self.n_nodes = n_nodes
        self.block_time = block_time
        self.proof_requested = proof
        self.proof_mode = 0
        self.stake_ether = stake_ether
        self.model_name = model
        self.node_faults = node_faults or {}
        self.node_args = node_args or []
        self.detach = detach
        self.params = params or ProtocolParams(min_commit_blocks=2, min_reveal_blocks=2, max_commit_blocks=500,
                                               max_reveal_blocks=500)
        self.log = log or (lambda msg: None)
        self.devnet: Devnet | None = None
        self.manifest: Manifest | None = None
        self.model_id: str | None = None
        self.nodes: list[NodeProcess] = []
        self.operators: list[str] = []
        self._logs: list[IO[bytes]] = []

    # ---- paths & env -------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def rpc_url(self) -> str:
        assert self.devnet is not None, "network not started"
        return self.devnet.rpc_url

    def env(self) -> dict[str, str]:
        """Environment for every CLI subprocess: one home, one manifest, one content store."""
        env = dict(os.environ)
        env.update({
            "VERINFER_HOME": str(self.home),
            "VERINFER_PASSWORD": PASSWORD,
            "VERINFER_MANIFEST": str(self.manifest_path),
            "VERINFER_STORE": str(self.store_dir),
            "VERINFER_RPC_URL": self.rpc_url if self.devnet else "",
            "PYTHONUNBUFFERED": "1",
        })
        env.pop("IPFS_API", None)
        return env

    def store(self) -> Any:
        from verinfer.storage import open_store

        return open_store(root=self.store_dir)

    @property
    def dev_accounts(self) -> list[LocalAccount]:
        assert self.devnet is not None
        return self.devnet.accounts

    def client(self, account: LocalAccount | int | None = None, **kwargs: Any) -> Any:
        """A Client for this network as dev account `account` (index) or any local account."""
        from verinfer.client.sdk import Client

        if isinstance(account, int):
            account = self.dev_accounts[account]
        return Client(self.rpc_url, str(self.manifest_path), account, self.store(), **kwargs)

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> "LocalNetwork":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "LocalNetwork":
        """Devnet → deploy → publish model → operators (keystore, fund, stake, register) → nodes."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.start_devnet()
        self.deploy()
        self.publish_model()
        self.onboard_operators()
        self.start_nodes()
        return self

    def start_devnet(self) -> None:
        self.devnet = Devnet(port=find_free_port(), state_dir=self.root / "devnet", block_time=self.block_time,
                             persist=False, n_accounts=10)
        self.devnet.start(detach=self.detach)
        pid = self.devnet.process.pid if self.devnet.process is not None else "?"
        self.log(f"devnet: anvil pid {pid} on {self.devnet.rpc_url} (chain 31337, block every {self.block_time:g}s)")

    def deploy(self) -> None:
        assert self.devnet is not None
        self.manifest = deploy_protocol(self.devnet.w3, self.dev_accounts[0], self.params)
        self.manifest.save(self.manifest_path)
        self.log(f"deployed: InferenceMarket {self.manifest.address('InferenceMarket')}, "
                 f"ExampleConsumer {self.manifest.address('ExampleConsumer')}")

    def cli(self, *args: str, timeout: float = 180.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `verinfer <args>` the way a user would (same interpreter, this network's env)."""
        cmd = [sys.executable, "-m", "verinfer.cli", *args]
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            raise LocalNetworkError(f"`verinfer {' '.join(args[:2])}` failed: {' | '.join(tail)}")
        return proc

    def publish_model(self) -> None:
        """`verinfer model publish` as dev account 0: proof mode public when asked or when the prover
        pipeline is usable here (auto), else none."""
        mode = "none"
        if self.proof_requested is None:
            mode = "public" if prover_available() else "none"
        elif self.proof_requested:
            mode = "public"
        t0 = time.monotonic()
        try:
            out = self.cli("model", "publish", self.model_name, "--dev-account", "0", "--proof-mode", mode, "--json",
                           "--rpc-url", self.rpc_url, timeout=600).stdout
        except LocalNetworkError as exc:
            if self.proof_requested is not None or mode == "none":
                raise
            # auto mode: a broken prover toolchain must not stop the network; say so and go consensus-only
            self.log(f"proof mode public unavailable ({exc}); publishing with proof mode none")
            out = self.cli("model", "publish", self.model_name, "--dev-account", "0", "--proof-mode", "none",
                           "--json", "--rpc-url", self.rpc_url, timeout=600).stdout
        info = json.loads(out[out.index("{"):])
        self.model_id = info["model_id"]
        self.proof_mode = {"none": 0, "public": 1, "private": 2}[info["proof_mode"]]
        self.log(f"model: {info['name']} v{info['version']} published as {self.model_id[:18]}… "
                 f"(weights {info['weights_cid'][:16]}…, proof mode {info['proof_mode']}"
                 + (f", verifier {info['verifier'][:10]}…" if self.proof_mode else "")
                 + f", {time.monotonic() - t0:.0f}s)")

    def _cli_parallel(self, arglists: list[list[str]], timeout: float = 180.0) -> list[str]:
        """Run several `verinfer …` commands at once (each is mostly import + scrypt time)."""
        procs = [subprocess.Popen([sys.executable, "-m", "verinfer.cli", *a], env=self.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
                 for a in arglists]
        outs = []
        try:
            for a, p in zip(arglists, procs):
                out, errs = p.communicate(timeout=timeout)
                if p.returncode != 0:
                    tail = (errs.strip() or out.strip()).splitlines()[-3:]
                    raise LocalNetworkError(f"`verinfer {' '.join(a[:2])}` failed: {' | '.join(tail)}")
                outs.append(out)
        finally:
            for p in procs:
                if p.poll() is None:
                    _terminate_group(p, 2.0)  # type: ignore[arg-type]
        return outs

    def onboard_operators(self) -> None:
        """`verinfer operator init` (encrypted keystores), fund from the devnet faucet, `operator register` (stake)."""
        assert self.model_id is not None
        names = [f"operator{i + 1}" for i in range(self.n_nodes)]
        outs = self._cli_parallel([["operator", "init", "--name", n] for n in names])
        addresses = [o.strip().splitlines()[-1].strip() for o in outs]
        sender = TxSender(self.devnet.w3, self.dev_accounts[0])  # type: ignore[union-attr]
        for a in addresses:
            sender.transfer(a, (self.stake_ether + 5) * ETHER)
        self._cli_parallel([["operator", "register", "--key", n, "--stake", str(self.stake_ether),
                             "--models", self.model_id, "--rpc-url", self.rpc_url] for n in names])
        self.operators = names
        self.log(f"operators: {len(names)} keystores created, funded, staked {self.stake_ether} ETH each and registered")

    def start_nodes(self, timeout: float = 60.0) -> None:
        """Start one `verinfer node run` per operator and wait for each to report its health port.

        The node writes `<state_dir>/node.json` (address, health URL, pid) once it listens; its
        stdout/stderr go to `<root>/<name>.log` so it never depends on this process staying alive.
        """
        for i, name in enumerate(self.operators):
            log_path = self.root / f"{name}.log"
            fh = open(log_path, "ab")
            self._logs.append(fh)
            state_dir = self.home / "nodes" / name
            (state_dir / "node.json").unlink(missing_ok=True)
            args = [sys.executable, "-m", "verinfer.cli", "node", "run", "--key", name, "--rpc-url", self.rpc_url,
                    "--manifest", str(self.manifest_path), "--state-dir", str(state_dir),
                    "--metrics-port", "0", *self.node_args]
            if i in self.node_faults:
                args += ["--fault", self.node_faults[i]]
            proc = subprocess.Popen(args, env=self.env(), stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.nodes.append(NodeProcess(name, "", proc, log_path))
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            info_file = self.home / "nodes" / node.name / "node.json"
            while True:
                if info_file.exists():
                    try:
                        info = json.loads(info_file.read_text())
                        if info.get("pid") == node.proc.pid:
                            node.info = info
                            node.address = info.get("address", "")
                            break
                    except json.JSONDecodeError:
                        pass
                if not node.alive() or time.monotonic() > deadline:
                    raise LocalNetworkError(f"node {node.name} did not start: {node.log_tail(5)}")
                time.sleep(0.1)
        self.log(f"nodes: {len(self.nodes)} `verinfer node run` processes up ("
                 + ", ".join(f"{n.name} pid {n.proc.pid}" for n in self.nodes) + ")")

    @property
    def proof_label(self) -> str:
        return {0: "none (consensus only)", 1: "public weights (Groth16 verifier on-chain)",
                2: "private weights (Groth16 verifier on-chain)"}.get(self.proof_mode, str(self.proof_mode))

    def pids(self) -> list[int]:
        """Every process this network started and that is still alive."""
        out = [n.proc.pid for n in self.nodes if n.alive()]
        if self.devnet is not None and self.devnet.process is not None and self.devnet.process.poll() is None:
            out.append(self.devnet.process.pid)
        elif self.devnet is not None and self.devnet.running_pid():
            out.append(self.devnet.running_pid())  # type: ignore[arg-type]
        return out

    def stop(self) -> None:
        """Stop nodes (SIGTERM to their process groups, SIGKILL after 10 s), then anvil; idempotent."""
        for node in self.nodes:
            _terminate_group(node.proc, 10.0)
        self.nodes = []
        if self.devnet is not None:
            try:
                self.devnet.stop()
            finally:
                self.devnet = None
        for fh in self._logs:
            try:
                fh.close()
            except OSError:
                pass
        self._logs = []
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ---- helpers for tests and benchmarks ------------------------------------------------

    def fund(self, address: str, amount: int) -> None:
        TxSender(self.devnet.w3, self.dev_accounts[0]).transfer(address, amount)  # type: ignore[union-attr]


def prover_available() -> bool:
    """The Groth16 pipeline can run here: its module imports and its npm toolchain (circom2, snarkjs) is installed."""
    try:
        from verinfer.prover import (
            pipeline,  # noqa: F401
            toolchain,
        )
    except Exception:
        return False
    try:
        toolchain.node_binary()
        nm = toolchain.node_modules()
    except Exception:
        return False
    return (nm / "circom2").is_dir() and (nm / "circomlib").is_dir()


def _terminate_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the child's whole process group, wait, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)
