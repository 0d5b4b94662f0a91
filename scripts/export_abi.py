#!/usr/bin/env python3
"""Build the dApp kit (contracts/src/kit) and export its ABI JSON + bytecode to abi/.

Why a separate script: scripts/build_contracts.py (protocol artifacts in verinfer/chain/artifacts) belongs to
the contracts owner; the kit's artifacts use the same JSON format, so `verinfer.chain.artifacts.load(name, ABI_DIR)`
reads them, and a dApp developer can take abi/*.json into any toolchain.

    python scripts/export_abi.py           # build and write abi/
    python scripts/export_abi.py --check   # build and fail if abi/ is stale
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from build_contracts import BuildError, _artifact, _targets, forge_command  # noqa: E402

ABI_DIR = REPO / "abi"
KIT_SRC = "contracts/src/kit"
#: Deployable kit contracts (bytecode included).
KIT = ("Poseidon2", "Poseidon3", "Poseidon4", "Poseidon5", "Poseidon6", "VerinferHasher", "DigitGate")
#: Interfaces and the abstract base a consumer codes against (ABI only).
ABI_ONLY = ("VerinferConsumer", "IInferenceMarket", "IInferenceConsumer", "IModelRegistry")


def build_kit(out_dir: Path) -> None:
    """forge build of the kit sources only (they pull in the interfaces they import)."""
    sources = sorted(str(p.relative_to(REPO)) for p in (REPO / KIT_SRC).rglob("*.sol"))
    cmd = forge_command() + ["build", *sources, "--out", str(out_dir), "--cache-path", str(out_dir / "_cache")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"forge build failed:\n{proc.stdout}\n{proc.stderr}")


def collect(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The kit artifacts by name (one definition each, under contracts/src)."""
    targets = _targets(out_dir)
    result: dict[str, dict[str, Any]] = {}
    for name in KIT + ABI_ONLY:
        matches = [(s, f) for (s, n), f in targets.items() if n == name and s.startswith("contracts/src/")]
        if len(matches) != 1:
            raise BuildError(f"contract {name}: expected one definition in contracts/src, found {len(matches)}")
        src, f = matches[0]
        art = _artifact(name, src, f)
        if name in ABI_ONLY:
            art["bytecode"] = art["deployedBytecode"] = ""
        if name.startswith("Poseidon"):
            # its constructor returns circomlibjs's runtime: the code on chain is that hex literal
            literal = re.search(r'hex"([0-9a-f]+)"', (REPO / src).read_text())
            if literal is None:
                raise BuildError(f"{src}: no runtime hex literal")
            art["deployedBytecode"] = "0x" + literal.group(1)
        result[name] = art
    return result


def render(art: dict[str, Any]) -> str:
    return json.dumps(art, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if abi/ differs from a fresh build")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="verinfer-kit-") as tmp:
        try:
            build_kit(Path(tmp))
            arts = collect(Path(tmp))
        except BuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    stale = []
    for name, art in arts.items():
        path = ABI_DIR / f"{name}.json"
        text = render(art)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            ABI_DIR.mkdir(exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print(f"error: abi/ is stale for {', '.join(stale)} (run: python scripts/export_abi.py)", file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'wrote'} {len(arts)} artifacts in {ABI_DIR.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
