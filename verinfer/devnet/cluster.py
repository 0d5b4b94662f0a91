"""n registered node keys for a freshly published copy of digits-mlp (or `spec`) on an existing devnet (tests).

Publishing a fresh model (unique name → new model id) makes exactly these nodes eligible, so an
n-replica committee is exactly this cluster even on a chain shared with other tests. Funding uses
anvil_setBalance, so this is for devnets only.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3

from verinfer.chain.devnet import funded_account, mine
from verinfer.chain.protocol import FINAL_STATUSES, ModelInput, ModelShard, Protocol, RequestParams, RequestView
from verinfer.constants import ETHER
from verinfer.devnet.processes import NodeProcess, launch_node, terminate_all, wait_for
from verinfer.inference import runtime
from verinfer.models import spec as model_spec
from verinfer.node.keystore import create_keystore
from verinfer.operator.registration import register
from verinfer.storage import open_store

DEV_PASSWORD = "verinfer-dev"


class NodeCluster:
    """Publish the model (optionally with a Groth16 verifier), register `n_nodes` funded node keys, start nodes."""

    def __init__(
        self,
        root: Path,
        w3: Web3,
        protocol: Protocol,
        manifest_path: Path,
        n_nodes: int = 3,
        password: str = DEV_PASSWORD,
        *,
        verifier: str | None = None,
        proof_mode: int = 0,
        commitment: int | None = None,
        profile_hash: bytes | None = None,
        capacity: int | None = 16,
        stake: int = 2 * ETHER,
        spec: model_spec.ModelSpec | None = None,
    ) -> None:
        self.root = root
        self.w3 = w3
        self.manifest_path = manifest_path
        self.home = root / "home"
        self.store_dir = root / "store"
        self.store = open_store(root=self.store_dir)
        self.spec = spec or model_spec.load_builtin("digits-mlp")
        weights_cid = self.store.add(self.spec.canonical_json())
        publisher = self._funded()
        _, self.model_id = protocol.as_account(publisher).models.register_model(ModelInput(
            name=f"{self.spec.name}-node-{uuid.uuid4().hex[:8]}",
            weights_cid=weights_cid,
            commitment=runtime.commitment(self.spec) if commitment is None else commitment,
            verifier=verifier or "0x0000000000000000000000000000000000000000",
            proof_mode=proof_mode,
            execution_profile_hash=runtime.profile_hash(self.spec) if profile_hash is None else profile_hash,
            num_layers=self.spec.num_layers,
            input_bits=self.spec.input_bits,
            output_bits=self.spec.output_bits,
        ))
        self.password = password
        self.keys = [f"node{i}" for i in range(n_nodes)]
        accts = [self._funded() for _ in range(n_nodes)]
        self.addresses = [a.address for a in accts]
        self.accounts = accts

        def enroll(i: int) -> None:
            create_keystore(self.keys[i], self.password, home=self.home, private_key=accts[i].key, scrypt_n=2**14, force=True)
            register(protocol.as_account(accts[i]), stake, [ModelShard(self.model_id)], capacity=capacity)

        with ThreadPoolExecutor(max_workers=n_nodes) as pool:  # independent nonces: one block for all
            list(pool.map(enroll, range(n_nodes)))
        # stake counts for draws from the next epoch (snapshot at the epoch start)
        epoch_len = protocol.nodes.epoch_length()
        mine(w3, epoch_len - w3.eth.block_number % epoch_len)
        self.protocol = protocol
        self.requester = protocol.as_account(self._funded())
        self.procs: list[NodeProcess] = []

    def _funded(self) -> LocalAccount:
        return funded_account(self.w3, 100 * ETHER)

    def state_dir(self, i: int) -> Path:
        return self.root / f"state-{self.keys[i]}"

    def start(self, i: int, *extra: str, rpc_url: str | None = None) -> NodeProcess:
        """Start node i as a `python -m verinfer.node` process (extra flags appended)."""
        return self.start_many({i: extra}, rpc_url=rpc_url)[0]

    def start_many(self, flags: dict[int, Sequence[str]], rpc_url: str | None = None) -> list[NodeProcess]:
        """Boot several nodes in parallel ({index: extra flags}); returns them once all are ready."""
        launched = [
            launch_node(self.keys[i], rpc_url=rpc_url or self.rpc_url, manifest=self.manifest_path,
                        state_dir=self.state_dir(i), home=self.home, password=self.password, store_dir=self.store_dir,
                        extra_args=list(extra))
            for i, extra in flags.items()
        ]
        self.procs.extend(launched)
        return [p.wait_ready() for p in launched]

    @property
    def rpc_url(self) -> str:
        return str(self.w3.provider.endpoint_uri)  # type: ignore[attr-defined]

    def request(self, payload: bytes, input_hash: int, *, commit_blocks: int = 60, reveal_blocks: int = 60) -> int:
        """Store `payload` and request inference on it with an n-of-n committee, quorum n//2+1."""
        cid = self.store.add(payload)
        n = len(self.keys)
        params = RequestParams(replicas=n, quorum=n // 2 + 1, commit_blocks=commit_blocks, reveal_blocks=reveal_blocks)
        fee = max(self.requester.market.min_fee() * n, ETHER // 100)
        _, rid = self.requester.market.request_inference(self.model_id, cid, input_hash, params, fee)
        return rid

    def wait_final(self, rid: int, timeout: float = 90.0) -> RequestView:
        return wait_for(lambda: (r := self.requester.market.get_request(rid)).status in FINAL_STATUSES and r,
                        timeout, what=f"request {rid} to settle")

    def stop_all(self) -> None:
        terminate_all(self.procs)
        self.procs.clear()
