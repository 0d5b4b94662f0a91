"""Locating and running the Node toolchain (circom2 wasm, snarkjs) and the artifact cache.

Everything is resolved from the repository's node_modules (installed by `npm ci`), overridable
with `VERINFER_NODE_MODULES`; failures become `ProverError` with the tool's own message.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from verinfer.prover.errors import ProverError

REPO_ROOT = Path(__file__).resolve().parents[2]
CIRCUITS_LIB = REPO_ROOT / "circuits" / "lib"
DATA_DIR = Path(__file__).resolve().parent / "data"


def node_modules() -> Path:
    """The node_modules holding circom2, snarkjs and circomlib."""
    env = os.environ.get("VERINFER_NODE_MODULES")
    nm = Path(env) if env else REPO_ROOT / "node_modules"
    if not (nm / "snarkjs").is_dir():
        raise ProverError(f"snarkjs not found under {nm}: run `npm ci` in the repository root")
    return nm


def node_binary() -> str:
    found = shutil.which("node")
    if not found:
        raise ProverError("node (Node.js >= 18) is not on PATH; it runs circom2, snarkjs and witnesses")
    return found


def circom_cmd() -> list[str]:
    return [node_binary(), str(node_modules() / "circom2" / "cli.js")]


def snarkjs_cmd() -> list[str]:
    return [node_binary(), str(node_modules() / "snarkjs" / "build" / "cli.cjs")]


def circomlib_dir() -> Path:
    return node_modules() / "circomlib" / "circuits"


def cache_root() -> Path:
    """Content-addressed artifact cache: $VERINFER_CIRCUIT_CACHE or <repo>/.verinfer/circuits."""
    env = os.environ.get("VERINFER_CIRCUIT_CACHE")
    root = Path(env) if env else REPO_ROOT / ".verinfer" / "circuits"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class Completed:
    """Result of a toolchain command (stdout/stderr as text, wall seconds)."""

    stdout: str
    stderr: str
    seconds: float


def run(cmd: Sequence[str], *, cwd: Path | None = None, what: str, timeout: float | None = 3600,
        input_text: str | None = None) -> Completed:
    """Run a tool; a non-zero exit becomes ProverError carrying the tool's last output lines."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              input=input_text)
    except FileNotFoundError as exc:
        raise ProverError(f"{what}: cannot run {cmd[0]}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise ProverError(f"{what}: timed out after {timeout} s") from None
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-12:])
        raise ProverError(f"{what} failed (exit {proc.returncode}): {tail}")
    return Completed(proc.stdout, proc.stderr, dt)


@functools.lru_cache(maxsize=None)
def circom_version() -> str:
    """e.g. 'circom compiler 2.2.3' (part of the circuit hash)."""
    out = run(circom_cmd() + ["--version"], what="circom2 --version").stdout
    lines = [ln.strip() for ln in out.splitlines() if "compiler" in ln]
    return lines[-1] if lines else out.strip()


@functools.lru_cache(maxsize=None)
def snarkjs_version() -> str:
    import json

    pkg = json.loads((node_modules() / "snarkjs" / "package.json").read_text())
    return f"snarkjs {pkg['version']}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
