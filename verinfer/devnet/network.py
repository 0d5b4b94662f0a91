"""A whole verinfer network on one machine: fresh anvil, deployed protocol, published model, funded and
registered operators and `python -m verinfer.node` processes.

Every process it starts runs in its own process group and is stopped in `stop()` (SIGTERM, then
SIGKILL), which `with LocalNetwork(...)` guarantees even on errors and Ctrl-C.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount

from verinfer.chain.deploy import deploy_protocol
from verinfer.chain.devnet import Devnet, find_free_port, mine
from verinfer.chain.manifest import Manifest, ManifestModel, ProtocolParams
from verinfer.chain.protocol import ModelShard, Protocol
from verinfer.chain.tx import sender_for
from verinfer.client.publish import Published, load_model_ref, publish_model
from verinfer.constants import ETHER, PROOF_MODE_NAMES
from verinfer.devnet.processes import NodeProcess, launch_node, terminate_all
from verinfer.devnet.samples import prover_available
from verinfer.errors import VerinferError
from verinfer.node.keystore import create_keystore
from verinfer.operator.registration import register

PASSWORD = "verinfer-localnet"  # local throwaway keystores only


class _SetupMiner:
    """Mines a block as soon as a transaction is pending, while the network is being set up.

    Why: with interval mining every deploy / publish / stake transaction waits for the next block (~40 of them,
    20 s at 1 s blocks); anvil can leave and re-enter interval mining only in whole seconds, so instead a thread
    asks for a block (anvil_mine) whenever the pool holds a transaction. Interval mining goes on underneath and
    is all that is left once `start()` returns, so windows measured in blocks keep their length in seconds."""

    def __init__(self, w3: Any, poll: float = 0.01) -> None:
        self.w3, self.poll = w3, poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="setup-miner", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                pending = int(self.w3.provider.make_request("txpool_status", [])["result"]["pending"], 16)
                if pending:
                    mine(self.w3, 1)
            except Exception:  # noqa: BLE001 - best effort: interval mining still mines every block
                pass

    def __enter__(self) -> "_SetupMiner":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class LocalNetworkError(VerinferError):
    """A step of bringing the local network up failed (the message says which and why)."""


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
        capacity: int | None = 64,
        detach: bool = False,
        params: ProtocolParams | None = None,
        port: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._tmp: str | None = None
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
        self.capacity = capacity
        self.detach = detach  # anvil and the node processes outlive this process (`demo --keep`)
        self.params = params or ProtocolParams()
        self.port = port
        self.log = log or (lambda msg: None)
        self.devnet: Devnet | None = None
        self.manifest: Manifest | None = None
        self.model: Published | None = None
        self.nodes: list[NodeProcess] = []
        self.operators: list[str] = []
        self.operator_accounts: list[LocalAccount] = []
        self.setup_gas: dict[str, int] = {}

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

    @property
    def model_id(self) -> str | None:
        return "0x" + self.model.model_id.hex() if self.model is not None else None

    def env(self) -> dict[str, str]:
        """Environment for `verinfer …` CLI subprocesses against this network: one home, manifest, store."""
        import os  # noqa: PLC0415

        env = dict(os.environ)
        env.update({"VERINFER_HOME": str(self.home), "VERINFER_PASSWORD": PASSWORD,
                    "VERINFER_MANIFEST": str(self.manifest_path), "VERINFER_STORE": str(self.store_dir),
                    "VERINFER_RPC_URL": self.rpc_url if self.devnet else "", "PYTHONUNBUFFERED": "1"})
        env.pop("IPFS_API", None)
        return env

    def store(self) -> Any:
        from verinfer.storage import open_store  # noqa: PLC0415

        return open_store(root=self.store_dir)

    @property
    def dev_accounts(self) -> list[LocalAccount]:
        assert self.devnet is not None
        return self.devnet.accounts

    def protocol(self, account: LocalAccount | int | None = None) -> Protocol:
        assert self.devnet is not None and self.manifest is not None
        if isinstance(account, int):
            account = self.dev_accounts[account]
        return Protocol(self.devnet.w3, self.manifest, account)

    def client(self, account: LocalAccount | int | None = None, **kwargs: Any) -> Any:
        """A Client for this network as dev account `account` (index) or any local account."""
        from verinfer.client.sdk import Client  # noqa: PLC0415  (the SDK is the consumer of this network)

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
        """Devnet → deploy → publish model → operators (keystore, fund, stake, register) → next epoch → nodes."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.start_devnet()
        assert self.devnet is not None
        with _SetupMiner(self.devnet.w3):
            self.deploy()
            self.publish_model()
            self.onboard_operators()
        self.start_nodes()
        return self

    def start_devnet(self) -> None:
        self.devnet = Devnet(port=self.port or find_free_port(), state_dir=self.root / "devnet",
                             block_time=self.block_time, persist=False, n_accounts=10)
        self.devnet.start(detach=self.detach)
        pid = self.devnet.process.pid if self.devnet.process is not None else "?"
        self.log(f"devnet: anvil pid {pid} on {self.devnet.rpc_url} (chain 31337, block every {self.block_time:g}s)")

    def deploy(self) -> None:
        assert self.devnet is not None
        self.manifest = deploy_protocol(self.devnet.w3, self.dev_accounts[0], self.params)
        self.manifest.save(self.manifest_path)
        owner = "TimelockController " + self.manifest.timelock if self.manifest.timelock else "the deployer (no timelock artifact)"
        self.log(f"deployed: InferenceMarket {self.manifest.address('InferenceMarket')}, owner {owner}")

    def publish_model(self) -> None:
        """Publish the model as dev account 0: proof mode public when asked or when the prover runs here (auto)."""
        mode = "none"
        if self.proof_requested or (self.proof_requested is None and prover_available()):
            mode = "public"
        t0 = time.monotonic()
        spec, _ = load_model_ref(self.model_name, self.store())
        self.model = publish_model(self.protocol(0), self.store(), spec, proof_mode=mode)
        info = self.model.info
        if self.manifest is not None:  # dApp developers read model ids from the manifest (issue 9)
            self.manifest.record_model(ManifestModel.of(info))
            self.manifest.save(self.manifest_path)
        self.proof_mode = info.proof_mode
        self.setup_gas.update(self.model.gas)
        self.log(f"model: {info.name} v{info.version} published as {self.model_id[:18]}… "  # type: ignore[index]
                 f"(weights {self.model.weights_cid[:16]}…, proof mode {mode}"
                 + (f", verifier {info.verifier[:10]}… deployed before registerModel" if self.proof_mode else "")
                 + f", {time.monotonic() - t0:.0f}s)")

    def onboard_operators(self) -> None:
        """Encrypted keystores, funding from dev account 0, stake + register (+ capacity) — in-process, in parallel."""
        assert self.model is not None and self.devnet is not None
        names = [f"operator{i + 1}" for i in range(self.n_nodes)]
        accounts = [Account.create() for _ in names]
        sender = sender_for(self.devnet.w3, self.dev_accounts[0])
        for a in accounts:
            sender.transfer(a.address, (self.stake_ether + 5) * ETHER)

        def enroll(i: int) -> None:
            create_keystore(names[i], PASSWORD, home=self.home, private_key=accounts[i].key, scrypt_n=2**14, force=True)
            reg = register(self.protocol(accounts[i]), self.stake_ether * ETHER, [ModelShard(self.model.model_id)],  # type: ignore[union-attr]
                           capacity=self.capacity)
            self.log(f"  {reg.describe()}")

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            list(pool.map(enroll, range(len(names))))
        self.operators = names
        self.operator_accounts = accounts
        # stake counts for draws from the next epoch (snapshot at each epoch start): skip ahead on the devnet
        w3 = self.devnet.w3
        epoch = self.params.epoch_length
        mine(w3, epoch - w3.eth.block_number % epoch)
        self.log(f"operators: {len(names)} keystores created, funded, staked {self.stake_ether} ETH each and registered")

    def start_nodes(self, timeout: float = 60.0) -> None:
        """Start one `python -m verinfer.node` per operator and wait until each listens."""
        assert self.manifest is not None
        for i, name in enumerate(self.operators):
            extra = list(self.node_args)
            if i in self.node_faults:
                extra += ["--fault", self.node_faults[i]]
            self.nodes.append(launch_node(
                name, rpc_url=self.rpc_url, manifest=self.manifest_path, state_dir=self.home / "nodes" / name,
                home=self.home, password=PASSWORD, store_dir=self.store_dir, extra_args=extra,
                log_path=self.root / f"{name}.log", detach=self.detach,
            ))
        for node in self.nodes:
            try:
                node.wait_ready(timeout)
            except VerinferError as exc:
                raise LocalNetworkError(str(exc)) from None
        self.log(f"nodes: {len(self.nodes)} `python -m verinfer.node` processes up ("
                 + ", ".join(f"{n.name} pid {n.proc.pid}" for n in self.nodes) + ")")

    @property
    def proof_label(self) -> str:
        return PROOF_MODE_NAMES.get(self.proof_mode, str(self.proof_mode))

    def pids(self) -> list[int]:
        """Every process this network started and that is still alive."""
        out = [n.proc.pid for n in self.nodes if n.alive()]
        if self.devnet is not None:
            pid = self.devnet.process.pid if self.devnet.process is not None and self.devnet.process.poll() is None \
                else self.devnet.running_pid()
            if pid:
                out.append(pid)
        return out

    def stop(self) -> None:
        """Stop nodes (SIGTERM to their process groups, SIGKILL after 10 s), then anvil; idempotent."""
        terminate_all(self.nodes, 10.0)
        self.nodes = []
        if self.devnet is not None:
            try:
                self.devnet.stop()
            finally:
                self.devnet = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ---- helpers for tests and benchmarks ------------------------------------------------

    def fund(self, address: str, amount: int) -> None:
        assert self.devnet is not None
        sender_for(self.devnet.w3, self.dev_accounts[0]).transfer(address, amount)
