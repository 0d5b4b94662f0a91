"""Compiled contract artifacts, committed as JSON so a user never needs a Solidity compiler.

`scripts/build_contracts.py` regenerates `verinfer/chain/artifacts/<Name>.json` from a forge build;
everything at runtime (deploy, wrappers, error decoding) reads only these files.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verinfer.errors import ConfigError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"

#: The protocol's own contracts, in deployment order.
PROTOCOL_CONTRACTS = ("NodeRegistry", "ModelRegistry", "InferenceMarket", "ExampleConsumer", "StageCourt")


@dataclass(frozen=True)
class Artifact:
    """ABI and bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str = ""
    source: str = ""
    source_hash: str = ""
    compiler: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def artifact_path(name: str, directory: Path | None = None) -> Path:
    """Where the committed artifact of contract `name` lives."""
    return (directory or ARTIFACTS_DIR) / f"{name}.json"


def available(directory: Path | None = None) -> list[str]:
    """Names of all committed artifacts (sorted)."""
    d = directory or ARTIFACTS_DIR
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.json"))


@functools.lru_cache(maxsize=None)
def _load_cached(path: str) -> Artifact:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no contract artifact {p.name} in {p.parent} (run: python scripts/build_contracts.py)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"contract artifact {p} is not valid JSON: {exc}") from None
    bytecode = data.get("bytecode", "")
    if bytecode and not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return Artifact(
        name=data.get("name", p.stem),
        abi=data["abi"],
        bytecode=bytecode,
        deployed_bytecode=data.get("deployedBytecode", ""),
        source=data.get("source", ""),
        source_hash=data.get("sourceHash", ""),
        compiler=data.get("compiler", ""),
    )


def load(name: str, directory: Path | None = None) -> Artifact:
    """Load the committed artifact of contract `name` (cached; files are immutable at runtime)."""
    return _load_cached(str(artifact_path(name, directory)))


def load_all(directory: Path | None = None) -> list[Artifact]:
    """Every committed artifact, e.g. to decode errors that bubble up from any called contract."""
    return [load(n, directory) for n in available(directory)]
