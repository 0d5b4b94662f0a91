"""Compile an exported snarkjs Solidity verifier with solc-js (deploy/call: chain/verifier.py).

A library step: it reads the verifier source and caches {abi, bytecode} in the artifact cache;
deploying and calling the verifier belong to the chain layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verinfer.prover import toolchain
from verinfer.prover.errors import ProverError

SOLC_SHIM = toolchain.REPO_ROOT / "scripts" / "solc"


def compile_verifier(sol_path: Path, contract_name: str) -> dict[str, Any]:
    """{"abi", "bytecode"} of `contract_name` in `sol_path` (cached in the artifact cache by source sha256)."""
    sol_path = Path(sol_path)
    digest = toolchain.sha256_file(sol_path)
    cache = toolchain.cache_root() / "solc" / f"{contract_name}.{digest[:16]}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    if cache.exists():
        return json.loads(cache.read_text())
    std = {
        "language": "Solidity",
        "sources": {sol_path.name: {"content": sol_path.read_text()}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    out = toolchain.run([toolchain.node_binary(), str(SOLC_SHIM), "--standard-json"], what="solc (verifier)",
                        input_text=json.dumps(std))
    res = json.loads(out.stdout)
    errors = [e for e in res.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ProverError(f"verifier does not compile: {errors[0].get('formattedMessage', errors[0])}")
    try:
        c = res["contracts"][sol_path.name][contract_name]
    except KeyError:
        raise ProverError(f"{sol_path.name} has no contract {contract_name}") from None
    art = {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"], "contract": contract_name}
    cache.write_text(json.dumps(art))
    return art
