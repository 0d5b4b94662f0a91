"""A newcomer's journey through the CLI only (issue 8), on a non-default port, checking each message.

devnet up → publish a classifier and the text-generation LM → operators init, fund, register → nodes →
request a digit and a text generation → show → audit → the mistakes a newcomer makes (a mistyped model
name, a model id where a spec is expected, an unknown request, a prompt for a classifier) each get one
clear line. Everything runs as a user would: `python -m verinfer.cli …` subprocesses with env vars, no
--rpc-url on commands that should take it from the manifest.

Steps that do not depend on each other (the three operators, the two requests, the reads, the mistakes) run
side by side: each CLI start-up costs ~2 s of CPU, and in sequence they made this the suite's longest test. Calls
that send from the same key never overlap (nonces); the checks are the ones a sequential run makes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
N_OPERATORS = 3
PASSWORD = "journey-password"


def _free_port(start: int = 8711, end: int = 8749) -> int:
    for port in range(start, end):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8711..8749")


class Journey:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "devnet"
        self.env = {**os.environ, "VERINFER_HOME": str(root / "home"), "VERINFER_STORE": str(root / "store"),
                    "VERINFER_MANIFEST": str(self.state / "manifest.json"), "VERINFER_PASSWORD": PASSWORD,
                    "COLUMNS": "200", "NO_COLOR": "1",
                    "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        for k in ("VERINFER_RPC_URL", "IPFS_API", "VERINFER_IPFS_API", "VERINFER_TEST_PKI"):
            self.env.pop(k, None)
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.timings: list[tuple[str, float]] = []  # (command, wall s), printed at the end

    def cli(self, *args: str, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "verinfer.cli", *args], capture_output=True, text=True,
                           env=self.env, cwd=self.root, timeout=timeout)
        self.timings.append((" ".join(args[:2]), time.monotonic() - t0))
        if ok:
            assert r.returncode == 0, f"verinfer {' '.join(args)}\n{r.stdout}\n{r.stderr}"
        return r

    def error(self, *args: str, needle: str) -> str:
        """A user mistake: exit 1, exactly one line `error: …` containing `needle`, no traceback."""
        r = self.cli(*args, ok=False)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:"), (args, r.stdout, r.stderr)
        assert needle in lines[0], (needle, lines[0])
        assert "Traceback" not in r.stderr
        return lines[0]

    def start_node(self, key: str) -> None:
        log = open(self.root / f"{key}.log", "wb")  # noqa: SIM115 - closed with the process
        self.nodes.append(subprocess.Popen([sys.executable, "-m", "verinfer.cli", "node", "run", "--key", key,
                                            "--poll-interval", "0.2"], env=self.env, cwd=self.root,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def parallel(self, *calls: Callable[[], Any]) -> list[Any]:
        """Run independent steps side by side; results in call order, the first failure re-raised."""
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(c) for c in calls]
            return [f.result() for f in futures]

    def stop(self) -> None:
        for p in self.nodes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.nodes:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.cli("devnet", "down", "--state-dir", str(self.state), ok=False)


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    j = Journey(tmp_path_factory.mktemp("journey"))
    try:
        yield j
    finally:
        j.stop()


def test_newcomer_journey(journey: Journey) -> None:
    j = journey
    port = _free_port()
    t0 = time.monotonic()
    # --help names the built-in models and shows flags without a type
    req_help, pub_help = j.parallel(lambda: j.cli("request", "--help"), lambda: j.cli("model", "publish", "--help"))
    assert "textgenrnn" in req_help.stdout and "digits-mlp" in req_help.stdout
    assert "<bool>" not in req_help.stdout and "<bool>" not in pub_help.stdout

    up = j.cli("devnet", "up", "--port", str(port), "--state-dir", str(j.state))  # default 1 s blocks, as a newcomer
    manifest = json.loads((j.state / "manifest.json").read_text())
    assert manifest["rpc_url"].endswith(f":{port}"), (manifest["rpc_url"], up.stdout)

    # publish a classifier and the shipped language model (one key: one after the other)
    digits = j.cli("model", "publish", "digits-mlp", "--dev-account", "0", "--json")
    lm = j.cli("model", "publish", "textgenrnn", "--dev-account", "0", "--json")
    lm_id = json.loads(lm.stdout)["model_id"]
    assert json.loads(digits.stdout)["name"] == "digits-mlp"
    # inspect by name shows what publish registered; inspect by 0x model id reads the chain
    listing, by_name, by_id = j.parallel(lambda: j.cli("model", "list"),
                                         lambda: j.cli("model", "inspect", "textgenrnn", "--json"),
                                         lambda: j.cli("model", "inspect", lm_id, "--json"))
    assert "digits-mlp" in listing.stdout and "textgenrnn" in listing.stdout and lm_id in listing.stdout
    assert json.loads(by_name.stdout)["cid"] == json.loads(lm.stdout)["weights_cid"]
    assert json.loads(by_id.stdout)["kind"] == "lm"

    # operators: init, fund, register for both models, run a node each (each operator its own key: side by side)
    def onboard(i: int) -> None:
        key = f"op{i}"
        out = j.cli("operator", "init", "--name", key).stdout
        assert re.search(r"0x[0-9a-fA-F]{40}", out), out
        j.cli("operator", "fund", "--amount", "10", "--key", key)
        reg = j.cli("operator", "register", "--stake", "2", "--models", "digits-mlp,textgenrnn", "--key", key)
        assert "2 full model(s)" in reg.stdout + reg.stderr and "shard(s)" not in reg.stdout + reg.stderr
        status = j.cli("operator", "status", "--key", key).stdout
        assert "eligible" in status
        j.start_node(key)

    j.parallel(*(lambda i=i: onboard(i) for i in range(N_OPERATORS)))

    # a digit and a text generation through the same request path (two requester keys: side by side)
    digit, text = j.parallel(
        lambda: j.cli("request", "--model", "digits-mlp", "--input", "digits-sample:3", "--dev-account", "1",
                      "--json", "--timeout", "240"),
        lambda: j.cli("request", "--model", "textgenrnn", "--prompt", "hello world", "--dev-account", "2",
                      "--timeout", "300"))
    d = json.loads(digit.stdout)
    assert d["status"] in ("Accepted", "Proven") and d["outputVerified"] and d["prediction"] is not None
    assert "text" in text.stdout and "Accepted" in text.stdout, text.stdout
    submitted = re.search(r"request (\d+) submitted", text.stdout)
    assert submitted, text.stdout
    lm_rid = int(submitted.group(1))
    shown, lm_shown, audit_lm, audit_digit = j.parallel(
        lambda: j.cli("request", "show", str(d["requestId"]), "--json"),
        lambda: j.cli("request", "show", str(lm_rid), "--json"),
        lambda: j.cli("audit", str(lm_rid), "--json"),
        lambda: j.cli("audit", str(d["requestId"]), "--json"))
    shown_doc = json.loads(shown.stdout)
    assert shown_doc["status"] == d["status"] and shown_doc["prediction"] == d["prediction"]
    lm_doc = json.loads(lm_shown.stdout)
    assert lm_doc["modelKind"] == "lm" and lm_doc["text"] and lm_doc["status"] == "Accepted"

    # audits pass, and the LM's verdict speaks of token ids, not an argmax class
    doc = json.loads(audit_lm.stdout)
    assert doc["ok"], [c for c in doc["claims"] if c["verdict"] == "FAIL"]
    reexec = next(c for c in doc["claims"] if c["name"] == "output.reexecution")
    assert "token id" in reexec["detail"] and "argmax" not in reexec["detail"] and "class" not in reexec["detail"]
    assert json.loads(audit_digit.stdout)["ok"]

    # the mistakes, each one clear line (none of them sends a transaction)
    j.parallel(
        lambda: j.error("model", "publish", "textgen", "--dev-account", "0",
                        needle="built-in model (digits-mlp, digits-mlp-large, digits-cnn, textgenrnn)"),
        lambda: j.error("model", "inspect", "0x" + "ab" * 32, needle="is not registered on this deployment"),
        lambda: j.error("request", "--model", "textgen", "--input", "digits-sample:1", "--dev-account", "1",
                        needle="no registered model named 'textgen'"),
        lambda: j.error("request", "--model", "digits-mlp", "--prompt", "hi", "--dev-account", "1",
                        needle="is a classifier"),
        lambda: j.error("request", "show", "999", needle="request 999 does not exist"),
        lambda: j.error("request", "--model", "digits-mlp", "--input", "digits-sample:1", "--dev-account", "1",
                        "--fee", "1wei", needle="below the market's minimum"))

    # down and up again keeps the port and the deployment
    j.cli("devnet", "down", "--state-dir", str(j.state))
    j.cli("devnet", "up", "--state-dir", str(j.state))
    again = json.loads((j.state / "manifest.json").read_text())
    assert again["rpc_url"] == manifest["rpc_url"]
    assert lm_id in j.cli("model", "list").stdout
    print(f"journey took {time.monotonic() - t0:.0f} s; slowest CLI calls (wall s, overlapping):")
    for cmd, secs in sorted(j.timings, key=lambda t: -t[1])[:8]:
        print(f"  {secs:6.1f}  verinfer {cmd}")
