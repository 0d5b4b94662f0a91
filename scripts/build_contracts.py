#!/usr/bin/env python3
"""Compile contracts with forge and refresh the committed artifacts in verinfer/chain/artifacts/.

Why committed artifacts: users and CI install verinfer without a Solidity toolchain, and a
deployed address must match exactly one reviewed bytecode.

    python scripts/build_contracts.py           # build and write artifacts
    python scripts/build_contracts.py --check   # build and fail if committed artifacts are stale

The build goes to a private temporary out/ and cache so it never races other forge runs in the checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO / "verinfer" / "chain" / "artifacts"
PROTOCOL = ("NodeRegistry", "ModelRegistry", "InferenceMarket", "ExampleConsumer", "AttestationRegistry", "StageCourt")
#: Library contracts emitted unchanged, by name and source (compiled because contracts/src imports them).
LIBRARY = {"TimelockController": "@openzeppelin/contracts/governance/TimelockController.sol"}
VERIFIER_DIR = "contracts/src/verifiers"
VERIFIER_PREFIX = "Groth16Verifier"
#: Concrete batch verifiers (BatchGroth16Verifier<Model>); the abstract base itself has no bytecode.
BATCH_VERIFIER_PREFIX = "BatchGroth16Verifier"


class BuildError(Exception):
    """forge failed or an expected contract is missing."""


def forge_command() -> list[str]:
    """The forge binary from node_modules (the npm package carries the linux binary)."""
    native = REPO / "node_modules" / "@foundry-rs" / "forge-linux-amd64" / "bin" / "forge"
    if native.exists():
        return [str(native)]
    wrapper = REPO / "node_modules" / ".bin" / "forge"
    if wrapper.exists():
        return [str(wrapper)]
    found = shutil.which("forge")
    if found:
        return [found]
    raise BuildError("forge not found: run `npm ci` in the repository root")


def forge_build(out_dir: Path) -> None:
    """Compile contracts/src (tests and scripts skipped) into `out_dir`."""
    cmd = forge_command() + [
        "build",
        "--out", str(out_dir),
        "--cache-path", str(out_dir / "_cache"),
        "--skip", "test", "--skip", "script",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"forge build failed:\n{proc.stdout}\n{proc.stderr}")


def _targets(out_dir: Path) -> dict[tuple[str, str], Path]:
    """Map (source path, contract name) -> forge artifact file, from each artifact's metadata."""
    found: dict[tuple[str, str], Path] = {}
    for f in out_dir.glob("*.sol/*.json"):
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        meta = data.get("metadata")
        if isinstance(meta, str):
            meta = json.loads(meta)
        if not meta:
            continue
        for src, name in meta.get("settings", {}).get("compilationTarget", {}).items():
            found[(src, name)] = f
    return found


def _source_hash(meta: dict[str, Any]) -> str:
    """sha256 over every source (with imports) that went into the contract, by their keccak256."""
    h = hashlib.sha256()
    for path, info in sorted(meta.get("sources", {}).items()):
        h.update(path.encode())
        h.update(str(info.get("keccak256", "")).encode())
    return "0x" + h.hexdigest()


def _artifact(name: str, src: str, forge_json: Path) -> dict[str, Any]:
    data = json.loads(forge_json.read_text())
    meta = data["metadata"]
    if isinstance(meta, str):
        meta = json.loads(meta)
    return {
        "name": name,
        "contractName": next(iter(meta["settings"]["compilationTarget"].values())),
        "source": src,
        "sourceHash": _source_hash(meta),
        "compiler": meta.get("compiler", {}).get("version", ""),
        "abi": data["abi"],
        "bytecode": data["bytecode"]["object"],
        "deployedBytecode": data["deployedBytecode"]["object"],
    }


def collect(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Artifacts to commit: the protocol contracts, LIBRARY (the governance timelock), plus every
    Groth16Verifier* and concrete BatchGroth16Verifier* in contracts/src/verifiers."""
    targets = _targets(out_dir)
    result: dict[str, dict[str, Any]] = {}
    for name in PROTOCOL:
        matches = [(src, f) for (src, n), f in targets.items() if n == name and src.startswith("contracts/src/")]
        if not matches:
            raise BuildError(f"contract {name} not found in contracts/src")
        if len(matches) > 1:
            raise BuildError(f"contract {name} defined more than once: {[m[0] for m in matches]}")
        src, f = matches[0]
        result[name] = _artifact(name, src, f)
    for name, lib_src in LIBRARY.items():
        matches = [(src, f) for (src, n), f in targets.items() if n == name and src.endswith(lib_src.split("/", 2)[2])]
        if not matches:
            raise BuildError(f"contract {name} ({lib_src}) not compiled: nothing in contracts/src imports it")
        src, f = matches[0]
        result[name] = _artifact(name, src, f)
    verifiers = sorted(
        (src, n, f) for (src, n), f in targets.items()
        if src.startswith(VERIFIER_DIR + "/")
        and (n.startswith(VERIFIER_PREFIX) or (n.startswith(BATCH_VERIFIER_PREFIX) and n != BATCH_VERIFIER_PREFIX))
    )
    counts: dict[str, int] = {}
    for _, n, _ in verifiers:
        counts[n] = counts.get(n, 0) + 1
    for src, n, f in verifiers:
        # snarkjs names every verifier Groth16Verifier: disambiguate by file name when needed.
        name = n if counts[n] == 1 else f"{n}_{Path(src).stem}"
        result[name] = _artifact(name, src, f)
    return result


def build(out_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Run a fresh forge build and return the artifacts it yields (nothing written)."""
    if out_dir is not None:
        forge_build(out_dir)
        return collect(out_dir)
    with tempfile.TemporaryDirectory(prefix="verinfer-forge-") as tmp:
        forge_build(Path(tmp))
        return collect(Path(tmp))


def write(artifacts: dict[str, dict[str, Any]], directory: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write artifacts (stable formatting, so diffs are reviewable); drop stale verifier files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, art in sorted(artifacts.items()):
        p = directory / f"{name}.json"
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(art, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, p)
        written.append(p)
    for p in directory.glob(f"{VERIFIER_PREFIX}*.json"):
        if p.stem not in artifacts:
            p.unlink()
    return written


def stale(fresh: dict[str, dict[str, Any]], directory: Path = ARTIFACTS_DIR) -> list[str]:
    """Names whose committed bytecode/ABI differ from `fresh` (or are missing / no longer built)."""
    bad = []
    for name, art in fresh.items():
        p = directory / f"{name}.json"
        if not p.exists():
            bad.append(f"{name} (missing)")
            continue
        old = json.loads(p.read_text())
        if old.get("bytecode") != art["bytecode"] or old.get("abi") != art["abi"]:
            bad.append(name)
    for p in directory.glob("*.json"):
        if p.stem not in fresh:
            bad.append(f"{p.stem} (no longer built)")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if committed artifacts differ from a fresh build")
    args = ap.parse_args(argv)
    try:
        fresh = build()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        bad = stale(fresh)
        if bad:
            print("stale artifacts: " + ", ".join(bad) + " (run: python scripts/build_contracts.py)", file=sys.stderr)
            return 1
        print(f"artifacts up to date ({len(fresh)} contracts)")
        return 0
    for p in write(fresh):
        print(f"wrote {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
