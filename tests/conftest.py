"""Shared pytest fixtures: one real anvil chain per session, deployed protocol, funded accounts.

Every engineer's tests use these; keep them general and fast. The chain is shared by the whole
session, so tests must not assume a pristine chain: use `new_account` for isolated keys and read
ids from return values/events rather than guessing them.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # make `scripts.*` and the package importable without install
    sys.path.insert(0, str(REPO_ROOT))

from eth_account.signers.local import LocalAccount  # noqa: E402
from web3 import Web3  # noqa: E402

from verinfer.chain.deploy import deploy_protocol  # noqa: E402
from verinfer.chain.devnet import Devnet, find_free_port, funded_account  # noqa: E402
from verinfer.chain.manifest import Manifest  # noqa: E402
from verinfer.chain.protocol import Protocol  # noqa: E402
from verinfer.constants import ETHER  # noqa: E402
from verinfer.node.daemon import METAINF_SELECT_ENV  # noqa: E402

# Every node a test starts (NodeCluster, LocalNetwork, `verinfer demo`, `verinfer node run`) inherits this: no
# background MetaInf selection (the selector and an ONNX executor: ~7 s of CPU and ~325 MB per node, in every
# cluster of every network test).
# The selection in a node process is covered by tests/test_metainf_integration.py, which turns it on per node
# (`--metainf-select`), and in-process by tests/test_metainf_node_exec.py. Operators' default is unchanged (on);
# VERINFER_NODE_METAINF_SELECT=1 runs the suite with it on (how the before/after CPU in the README was measured).
os.environ.setdefault(METAINF_SELECT_ENV, "0")

# ---------------------------------------------------------------- slow marker

def _slow_enabled(config: pytest.Config) -> bool:
    if os.environ.get("VERINFER_SLOW") == "1":
        return True
    expr = config.getoption("markexpr", default="") or ""
    return "slow" in expr and "not slow" not in expr


#: The longest files, longest first (wall per file from --time-report, 2026-12-02 08:00-08:20 after the test-speed
#: round: request faults, journey, audit, explorer, attacks, faults, demo, kit guide; test_lm_market,
#: test_prover_network and test_load_network by what they start; test_prover_cnn, test_operator_cli and test_cli_entry
#: were 94, 88 and 54 s of wall in the morning's full run). Collected first so that `pytest -n 3 --dist loadfile
#: --no-loadscope-reorder` (scripts/test.sh) starts them at once and the many short files fill the gaps, instead of
#: one long file starting last and running alone. Order only: nothing is skipped or added.
LONG_FILES = (
    "test_requests_faults_network.py",
    "test_newcomer_journey.py",
    "test_lm_market.py",
    "test_prover_network.py",
    "test_audit_request.py",
    "test_explorer_network.py",
    "test_attacks_network.py",
    "test_load_network.py",
    "test_faults_node.py",
    "test_e2e_demo.py",
    "test_prover_cnn.py",
    "test_operator_cli.py",
    "test_metainf_integration.py",
    "test_lm_smollm.py",
    "test_kit_guide.py",
    "test_cli_entry.py",
    "test_prover_bundle.py",
    "test_deploy_hardhat.py",
    "test_devnet_cli.py",
    "test_node_e2e.py",
    "test_node_prover.py",
    "test_demo_keep.py",
)


def _long_first(item: pytest.Item) -> int:
    name = item.path.name
    return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long files first (stable: each file keeps its own order); skip `@pytest.mark.slow` tests unless asked for
    (`-ra` in addopts prints the reason)."""
    items.sort(key=_long_first)
    if _slow_enabled(config):
        return
    skip = pytest.mark.skip(reason="slow test: run with VERINFER_SLOW=1 or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------- time report

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--time-report", action="store_true", default=False,
                     help="print wall and CPU seconds per test file (CPU = this process + reaped children: "
                          "anvil, node processes, CLIs); on a shared, loaded box compare CPU, not wall")


def _cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


_FILE_TIMES: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """With --time-report: charge setup + call + teardown (module fixtures included) to the test's file."""
    if not item.config.getoption("time_report"):
        return (yield)
    wall, cpu = time.monotonic(), _cpu_seconds()
    try:
        return (yield)
    finally:
        acc = _FILE_TIMES[item.nodeid.split("::")[0]]
        acc[0] += time.monotonic() - wall
        acc[1] += _cpu_seconds() - cpu


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist a worker hands its per-file times to the controller (pytest_testnodedown)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and _FILE_TIMES:
        workeroutput["file_times"] = {k: list(v) for k, v in _FILE_TIMES.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """(pytest-xdist controller) add a finished worker's per-file times to the report."""
    for path, (wall, cpu) in getattr(node, "workeroutput", {}).get("file_times", {}).items():
        _FILE_TIMES[path][0] += wall
        _FILE_TIMES[path][1] += cpu


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not config.getoption("time_report") or not _FILE_TIMES:
        return
    tr = terminalreporter
    tr.section("wall and CPU seconds per file (--time-report)")
    rows = sorted(_FILE_TIMES.items(), key=lambda kv: -kv[1][0])
    for path, (wall, cpu) in rows:
        tr.write_line(f"{wall:8.1f} s wall {cpu:8.1f} s CPU  {path}")
    tr.write_line(f"{sum(v[0] for _, v in rows):8.1f} s wall {sum(v[1] for _, v in rows):8.1f} s CPU  total "
                  f"({os.cpu_count()} cores visible)")


# ---------------------------------------------------------------- chain

def _start(tmp: Path, block_time: float | None, mixed: bool = False) -> Devnet:
    return Devnet(
        port=find_free_port(), state_dir=tmp, block_time=block_time, persist=False, n_accounts=10, mixed_mining=mixed
    ).start()


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """A fresh anvil chain for the session: a block every second (windows elapse on their own) and,
    with anvil's mixed mining, also one block per transaction (receipts come at once).

    Each tx advances the block number, so window length in seconds depends on traffic: give
    commit/reveal windows slack (>= 30 blocks when several nodes/requests run at once), and use
    `verinfer.chain.devnet.mine(w3, n)` to close a window without waiting.
    `VERINFER_DEVNET_MINING=interval` runs plain 1 s interval mining instead (block = second)."""
    mixed = os.environ.get("VERINFER_DEVNET_MINING", "mixed") != "interval"
    d = _start(tmp_path_factory.mktemp("devnet"), 1.0, mixed=mixed)
    yield d
    d.stop()


@pytest.fixture(scope="session")
def automine_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """A second, separate anvil that mines each tx immediately (for throughput-heavy tests)."""
    d = _start(tmp_path_factory.mktemp("devnet-automine"), None)
    yield d
    d.stop()


@pytest.fixture(scope="session")
def w3(devnet: Devnet) -> Web3:
    """Web3 connected to the session devnet."""
    return devnet.w3


@pytest.fixture(scope="session")
def accounts(devnet: Devnet) -> list[LocalAccount]:
    """anvil's 10 dev accounts (10,000 ETH each); index 0 deployed the protocol and owns it."""
    return devnet.accounts


@pytest.fixture
def new_account(w3: Web3) -> Callable[..., LocalAccount]:
    """Factory: a brand-new random key funded with `balance` wei (default 100 ETH) via anvil_setBalance."""

    def make(balance: int = 100 * ETHER) -> LocalAccount:
        return funded_account(w3, balance)

    return make


@pytest.fixture(scope="session")
def protocol_manifest(w3: Web3, accounts: list[LocalAccount], tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The protocol deployed once per session with default ProtocolParams (also saved to a file:
    `protocol_manifest_path`)."""
    manifest = deploy_protocol(w3, accounts[0])
    manifest.save(tmp_path_factory.mktemp("manifest") / "manifest.json")
    return manifest


@pytest.fixture(scope="session")
def protocol_manifest_path(protocol_manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a saved copy of the session manifest (for CLIs and `VERINFER_MANIFEST`)."""
    return protocol_manifest.save(tmp_path_factory.mktemp("manifest-file") / "manifest.json")


@pytest.fixture(scope="session")
def protocol(w3: Web3, protocol_manifest: Manifest, accounts: list[LocalAccount]) -> Protocol:
    """Protocol bound to account 0 (the owner). Use `protocol.as_account(acct)` for others."""
    return Protocol(w3, protocol_manifest, accounts[0])
