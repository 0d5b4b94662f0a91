"""Start and watch real `verinfer node run` processes (tests, demo, benchmarks).

Integration tests must exercise the real daemon — its CLI parsing, keystore unlock, SQLite,
signal handling — so this spawns `python -m verinfer.cli node run …` subprocesses and talks to
them only through their public surfaces: the JSON line printed on start, `/health`, `/metrics`,
their log file, and POSIX signals.
"""

from __future__ import annotations

import json
import os
import uuid
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3

from verinfer.chain.devnet import funded_account
from verinfer.chain.protocol import ModelInput, ModelShard, Protocol, RequestParams, RequestView, Status
from verinfer.constants import ETHER
from verinfer.errors import VerinferError
from verinfer.models import spec as model_spec
from verinfer.node.keystore import create_keystore
from verinfer.storage import open_store

DEV_PASSWORD = "correct horse battery staple"


class NodeProcessError(VerinferError):
    """A spawned node did not start or answer in time."""


@dataclass
class NodeProcess:
    """A running `verinfer node run` child; logs go to `log_path`."""

    key: str
    state_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.info.get("address", ""))

    @property
    def port(self) -> int:
        return int(self.info["metrics_port"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self, timeout: float = 2.0) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=timeout).json()

    def metrics(self, timeout: float = 2.0) -> dict[str, float]:
        """Prometheus samples as {name{labels}: value} (enough for assertions)."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait (graceful path); SIGKILL if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def wait_ready(self, timeout: float = 60.0) -> "NodeProcess":
        """Block until the node printed its JSON start line; NodeProcessError if it exits or stays silent."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                self.info = json.loads(line)
                return self
            if self.proc.poll() is not None:
                raise NodeProcessError(f"node {self.key} exited with {self.proc.returncode}: {self.log()[-2000:]}")
            time.sleep(0.05)
        self.proc.kill()
        raise NodeProcessError(f"node {self.key} printed no start line in {timeout}s: {self.log()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the crash path (nothing gets flushed or cleaned up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _die_with_parent() -> None:
    """Linux: SIGTERM the child when its parent dies, so a killed test run leaks no nodes.

    The kernel ties this to the launching *thread*: launch from a long-lived thread (not a pool worker).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except Exception:  # not Linux / no libc: best effort only
        pass


def launch_node(
    key: str,
    *,
    rpc_url: str,
    manifest: Path,
    state_dir: Path,
    home: Path | None = None,
    password: str | None = None,
    password_file: Path | None = None,
    store_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    poll_interval: float = 0.3,
    env: dict[str, str] | None = None,
) -> NodeProcess:
    """Start `verinfer node run` without waiting (call `.wait_ready()`; lets several nodes boot in parallel)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "node.log"
    child_env = dict(os.environ)
    if home is not None:
        child_env["VERINFER_HOME"] = str(home)
    if password is not None:
        child_env["VERINFER_PASSWORD"] = password
    if store_dir is not None:
        child_env["VERINFER_STORE"] = str(store_dir)
    child_env.update(env or {})
    cmd = [
        sys.executable, "-m", "verinfer.cli", "node", "run",
        "--key", key, "--rpc-url", rpc_url, "--manifest", str(manifest),
        "--state-dir", str(state_dir), "--metrics-port", "0", "--poll-interval", str(poll_interval),
    ]
    if password_file is not None:
        cmd += ["--password-file", str(password_file)]
    cmd += list(extra_args)
    (state_dir / "node.json").unlink(missing_ok=True)
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=logf, stdin=subprocess.DEVNULL, env=child_env, preexec_fn=_die_with_parent
        )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    return NodeProcess(key=key, state_dir=state_dir, log_path=log_path, proc=proc)


def spawn_node(key: str, *, ready_timeout: float = 60.0, **kwargs: Any) -> NodeProcess:
    """Start a node and wait for its start line (address + status port). Same arguments as `launch_node`."""
    return launch_node(key, **kwargs).wait_ready(ready_timeout)


def sample_input(i: int = 0) -> list[int]:
    """Pixels (0..16, 64 values) of shipped digits sample i: a realistic digits-mlp input."""
    data = json.loads((Path(model_spec.builtin_path("digits-mlp")).parent / "digits-samples.json").read_text())
    sample = data["samples"][i % len(data["samples"])]
    x = sample["pixels"]
    return [int(v) for v in x]


class NodeCluster:
    """n registered node keys for a freshly published copy of digits-mlp, plus a funded requester.

    Publishing a fresh model (unique name → new model id) makes exactly these nodes eligible,
    so an n-replica committee is exactly this cluster even on a chain shared with other tests.
    Funding uses anvil_setBalance, so this is for devnets only.
    """

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
    ) -> None:
        """Publish the model (optionally with a Groth16 verifier), register `n_nodes` funded node keys."""
        self.root = root
        self.w3 = w3
        self.manifest_path = manifest_path
        self.home = root / "home"
        self.store_dir = root / "store"
        self.store = open_store(root=self.store_dir)
        self.spec = model_spec.load_builtin("digits-mlp")
        weights_cid = self.store.add(self.spec.canonical_json())
        publisher = self._funded()
        _, self.model_id = protocol.as_account(publisher).models.register_model(
            ModelInput(
                name=f"digits-node-{uuid.uuid4().hex[:8]}",
                weights_cid=weights_cid,
                commitment=model_spec.weights_commitment(self.spec) if commitment is None else commitment,
                verifier=verifier or "0x0000000000000000000000000000000000000000",
                proof_mode=proof_mode,
                execution_profile_hash=model_spec.reference_profile_hash() if profile_hash is None else profile_hash,
                num_layers=self.spec.num_layers,
                input_bits=self.spec.input_bits,
                output_bits=self.spec.output_bits,
            )
        )
        self.password = password
        self.keys = [f"node{i}" for i in range(n_nodes)]
        accts = [self._funded() for _ in range(n_nodes)]
        self.addresses = [a.address for a in accts]
        self.accounts = accts

        def enroll(i: int) -> None:
            create_keystore(self.keys[i], self.password, home=self.home, private_key=accts[i].key, scrypt_n=2**14, force=True)
            protocol.as_account(accts[i]).nodes.register("http://127.0.0.1", [ModelShard(self.model_id)], 2 * ETHER)

        # different accounts, independent nonces: registering in parallel lands them in one block
        with ThreadPoolExecutor(max_workers=n_nodes) as pool:
            list(pool.map(enroll, range(n_nodes)))
        self.protocol = protocol
        self.requester = protocol.as_account(self._funded())
        self.procs: list[NodeProcess] = []

    def _funded(self) -> LocalAccount:
        return funded_account(self.w3, 100 * ETHER)

    def state_dir(self, i: int) -> Path:
        return self.root / f"state-{self.keys[i]}"

    def start(self, i: int, *extra: str, rpc_url: str | None = None) -> NodeProcess:
        """Start node i as a real `verinfer node run` subprocess (extra CLI flags appended)."""
        return self.start_many({i: extra}, rpc_url=rpc_url)[0]

    def start_many(self, flags: dict[int, Sequence[str]], rpc_url: str | None = None) -> list[NodeProcess]:
        """Boot several nodes in parallel ({index: extra flags}); returns them once all are ready."""
        launched = [
            launch_node(
                self.keys[i], rpc_url=rpc_url or self.rpc_url, manifest=self.manifest_path, state_dir=self.state_dir(i),
                home=self.home, password=self.password, store_dir=self.store_dir, extra_args=list(extra),
            )
            for i, extra in flags.items()
        ]
        self.procs.extend(launched)
        return [p.wait_ready() for p in launched]

    @property
    def rpc_url(self) -> str:
        return str(self.w3.provider.endpoint_uri)

    def request(self, payload: bytes, input_hash: int, *, commit_blocks: int = 90, reveal_blocks: int = 90) -> int:
        """Store `payload` and request inference on it with a 3-of-… committee (windows are wide because a CPU-starved anvil mines missed blocks in bursts; early reveal/finalize keep the happy path fast)."""
        cid = self.store.add(payload)
        params = RequestParams(replicas=len(self.keys), quorum=len(self.keys) // 2 + 1, commit_blocks=commit_blocks, reveal_blocks=reveal_blocks)
        _, rid = self.requester.market.request_inference(self.model_id, cid, input_hash, params, ETHER // 100)
        return rid

    def wait_final(self, rid: int, timeout: float = 60.0) -> RequestView:
        return wait_for(
            lambda: (r := self.requester.market.get_request(rid)).status in (Status.ACCEPTED, Status.INVALID_INPUT, Status.NO_QUORUM) and r,
            timeout, what=f"request {rid} to finalize",
        )

    def stop_all(self) -> None:
        for p in self.procs:
            p.terminate()
        self.procs.clear()


def wait_for(predicate: Any, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll `predicate()` until truthy; returns its value or raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # transient (node restarting, RPC blip)
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
