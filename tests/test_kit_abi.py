"""The kit's exported ABI JSON (abi/) and the generated Poseidon wrappers match a fresh build from source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_abi_dir_is_fresh() -> None:
    proc = subprocess.run([sys.executable, "scripts/export_abi.py", "--check"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_poseidon_wrappers_are_circomlibjs_output() -> None:
    node = REPO / "node_modules" / ".bin" / "node"
    cmd = [str(node) if node.exists() else "node", "contracts/src/kit/tools/gen_poseidon.mjs", "--check"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
