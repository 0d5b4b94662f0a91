"""A sharded-LLM network on an existing devnet (issue 10): SmolLM2 published with a layer-range layout,
stage nodes and committee heads as real `python -m verinfer.node` processes, all staked and registered.

Used by `verinfer demo --lm` and tests/test_lm_market.py. Stage nodes register their layer range with a
`tcp://127.0.0.1:PORT` endpoint and serve it (`--stage`); heads register the full model (so sortition
draws them) and run the pipeline through the stages they discover in NodeRegistry. A node may be both.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from verinfer.chain.devnet import find_free_port, mine
from verinfer.chain.manifest import Manifest
from verinfer.chain.protocol import ModelShard, Protocol
from verinfer.chain.tx import sender_for
from verinfer.client.ee import publish_encrypted_llm_to_file
from verinfer.client.llm import DEFAULT_LAYOUT, PublishedLlm, publish_llm
from verinfer.constants import ETHER
from verinfer.devnet.processes import NodeProcess, launch_node
from verinfer.models import gguf
from verinfer.node.keystore import create_keystore
from verinfer.operator.registration import register

PASSWORD = "verinfer-lm-dev"  # local throwaway keystores only
#: one BLAS thread per node process: several stages and heads share the cores (results do not depend on it)
BLAS_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class LmNode:
    """One operator of the LLM network: full-model head and/or stage of one layer range."""

    name: str
    head: bool = False
    stage: tuple[int, int] | None = None
    stage_fault: str | None = None
    args: list[str] = field(default_factory=list)
    account: LocalAccount | None = None
    endpoint: str = "http://127.0.0.1"
    proc: NodeProcess | None = None

    @property
    def address(self) -> str:
        assert self.account is not None
        return str(self.account.address)

    def role(self) -> str:
        parts = (["head"] if self.head else []) + ([f"stage {self.stage[0]}:{self.stage[1]}"] if self.stage else [])
        return " + ".join(parts) + (f" [fault {self.stage_fault}]" if self.stage_fault else "")


def default_nodes(lying_stage: bool = False) -> list[LmNode]:
    """3 heads that also serve the middle stage, one node per outer stage (and optionally a lying middle stage)."""
    nodes = [LmNode("stage0", stage=DEFAULT_LAYOUT[0])]
    if lying_stage:
        nodes.append(LmNode("liar", stage=DEFAULT_LAYOUT[1], stage_fault="swap:0"))
    nodes += [LmNode(f"head{i}", head=True, stage=DEFAULT_LAYOUT[1]) for i in (1, 2, 3)]
    nodes.append(LmNode("stage2", stage=DEFAULT_LAYOUT[2]))
    return nodes


class LmNetwork:
    """Publish SmolLM2, onboard `nodes` (registered in list order: discovery order), start their processes."""

    def __init__(self, root: Path, w3: Web3, manifest_path: Path, funder: LocalAccount, nodes: Sequence[LmNode], *,
                 max_new_tokens: int = 4, stake: int = 2 * ETHER, store_dir: Path | None = None,
                 checkpoint: gguf.Checkpoint | None = None, log: Callable[[str], None] | None = None,
                 stage_timeout_s: float = 120.0, detach: bool = False, ee_key_out: Path | None = None) -> None:
        self.root = Path(root)
        self.w3 = w3
        self.manifest_path = manifest_path
        self.manifest = Manifest.load(manifest_path)
        self.funder = funder
        self.nodes = list(nodes)
        self.max_new_tokens = max_new_tokens
        self.stake = stake
        self.store_dir = store_dir or self.root / "store"
        self.home = self.root / "lm-home"
        self.checkpoint = checkpoint
        self.log = log or (lambda msg: None)
        self.stage_timeout_s = stage_timeout_s
        self.detach = detach  # node processes outlive this process (`demo --keep`)
        #: publish the per-deployment ENCRYPTED version (key file written here, `client.ee`) instead of plaintext
        self.ee_key_out = ee_key_out
        self.published: PublishedLlm | None = None
        self.gas: dict[str, int] = {}

    def store(self):  # noqa: ANN201 - an EmbeddedStore over store_dir (shared with the node processes)
        from verinfer.storage import open_store

        return open_store(root=self.store_dir)

    def protocol(self, account: LocalAccount) -> Protocol:
        return Protocol(self.w3, self.manifest, account)

    @property
    def model_id(self) -> bytes:
        assert self.published is not None
        return self.published.model_id

    def publish(self) -> PublishedLlm:
        t0 = time.monotonic()
        if self.ee_key_out is not None:
            self.published = publish_encrypted_llm_to_file(self.protocol(self.funder), self.store(), self.ee_key_out,
                                                           force=True, max_new_tokens=self.max_new_tokens,
                                                           checkpoint=self.checkpoint)
        else:
            self.published = publish_llm(self.protocol(self.funder), self.store(), max_new_tokens=self.max_new_tokens,
                                         checkpoint=self.checkpoint)
        self.gas.update(self.published.gas)
        info = self.published.info
        self.log(f"model: {info.name} v{info.version} published as {info.model_id_hex[:18]}… (layout "
                 + ", ".join(f"{a}:{b}" for a, b in self.published.layout.layer_ranges)
                 + f", {self.max_new_tokens} new tokens per request, {time.monotonic() - t0:.0f}s)")
        return self.published

    def onboard(self) -> None:
        """Keystores, funding, stake + register in list order (NodeRegistry keeps that order), then the next epoch."""
        assert self.published is not None
        sender = sender_for(self.w3, self.funder)
        for n in self.nodes:
            n.account = Account.create()
            sender.transfer(n.address, self.stake + 2 * ETHER)
            create_keystore(n.name, PASSWORD, home=self.home, private_key=n.account.key, scrypt_n=2**14, force=True)
            shards = ([ModelShard(self.model_id)] if n.head else []) \
                + ([ModelShard(self.model_id, *n.stage)] if n.stage else [])
            if n.stage:
                n.endpoint = f"tcp://127.0.0.1:{find_free_port()}"
            register(self.protocol(n.account), self.stake, shards, endpoint=n.endpoint, capacity=8)
        epoch = self.protocol(self.funder).nodes.epoch_length()
        mine(self.w3, epoch - self.w3.eth.block_number % epoch)
        self.log(f"operators: {len(self.nodes)} staked and registered ("
                 + ", ".join(f"{n.name}: {n.role()}" for n in self.nodes) + ")")

    def start_nodes(self, rpc_url: str, timeout: float = 120.0) -> None:
        procs = []
        for n in self.nodes:
            extra = ["--lm-stage-timeout", str(self.stage_timeout_s), *n.args]
            if n.stage:
                extra += ["--stage", f"0x{self.model_id.hex()}:{n.stage[0]}:{n.stage[1]}"]
            if n.stage_fault:
                extra += ["--stage-fault", n.stage_fault]
            n.proc = launch_node(n.name, rpc_url=rpc_url, manifest=self.manifest_path,
                                 state_dir=self.home / "nodes" / n.name, home=self.home, password=PASSWORD,
                                 store_dir=self.store_dir, extra_args=extra + ["--no-prove"],
                                 log_path=self.root / f"{n.name}.log", env=dict(BLAS_ONE_THREAD), detach=self.detach)
            procs.append(n.proc)
        for p in procs:
            p.wait_ready(timeout)
        self.log(f"nodes: {len(procs)} `python -m verinfer.node` processes up ("
                 + ", ".join(f"{n.name} pid {n.proc.proc.pid}" for n in self.nodes if n.proc) + ")")

    @contextmanager
    def serving(self, rpc_url: str) -> Iterator[LmNetwork]:
        """Publish, onboard and start every node; stop them on exit (also when a step fails half-way)."""
        try:
            self.publish()
            self.onboard()
            self.start_nodes(rpc_url)
            yield self
        finally:
            self.stop()

    def heads(self) -> list[LmNode]:
        return [n for n in self.nodes if n.head]

    def by_name(self, name: str) -> LmNode:
        return next(n for n in self.nodes if n.name == name)

    def stop(self) -> None:
        """SIGTERM every node at once (each exits in parallel), then wait / SIGKILL one by one."""
        for n in self.nodes:
            if n.proc is not None and n.proc.alive():
                try:
                    os.killpg(n.proc.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for n in self.nodes:
            if n.proc is not None:
                n.proc.terminate(10.0)
                n.proc = None


def start_on(net: Any, *, max_new_tokens: int, log: Callable[[str], None] | None = None,
             nodes: Sequence[LmNode] | None = None, ee_key_out: Path | None = None) -> LmNetwork:
    """An LLM network on a running `LocalNetwork` (same devnet, manifest and content store): publish, onboard, start.

    The caller stops it (`LmNetwork.stop`), also when this raises half-way."""
    lm = LmNetwork(net.root / "lm", net.devnet.w3, net.manifest_path, net.dev_accounts[0],
                   list(nodes) if nodes is not None else default_nodes(), max_new_tokens=max_new_tokens,
                   store_dir=net.store_dir, log=log, detach=bool(getattr(net, "detach", False)), ee_key_out=ee_key_out)
    net.lm_network = lm  # so a failure half-way is still stopped by whoever holds `net`
    lm.publish()
    lm.onboard()
    lm.start_nodes(net.rpc_url)
    return lm
