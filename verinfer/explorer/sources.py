"""Source verification: the deployed runtime bytecode against a recompilation of the sources.

The protocol contracts are recompiled from the repository's committed sources (contracts/src, imports
resolved through foundry.toml's remappings, the same settings forge used) and a model's verifier
from the `verifier_sol` of its published prover bundle (the settings `verinfer.prover.solidity`
compiles with), all with solc-js standard JSON through `scripts/solc`. The comparison is Sourcify's:
immutable slots are zeroed, then

    full match     runtime bytecode identical, including the CBOR metadata (so the metadata hash: same
                   sources byte for byte, same settings)
    partial match  identical once the trailing CBOR metadata is removed from both (same code, the
                   metadata differs: comments, paths or settings that do not change the code)
    mismatch       anything else (or no code at the address)
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLC = REPO_ROOT / "scripts" / "solc"
IMPORT_RE = re.compile(r'^\s*import\s+(?:[^"\']*?\bfrom\s+)?["\']([^"\']+)["\']', re.M)
FULL, PARTIAL, MISMATCH = "full match", "partial match", "mismatch"


class SourceError(Exception):
    """A recompilation could not run (no node, no solc-js, a source missing)."""


@dataclass
class Verification:
    """Result for one address."""

    name: str
    address: str
    status: str
    source: str
    compiler: str = ""
    detail: str = ""
    deployed_metadata: str = ""
    compiled_metadata: str = ""
    code_size: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _toml_settings(root: Path) -> dict[str, Any]:
    import tomllib

    prof = tomllib.loads((root / "foundry.toml").read_text())["profile"]["default"]
    return {"remappings": list(prof.get("remappings", [])), "optimizer_runs": int(prof.get("optimizer_runs", 200)),
            "optimizer": bool(prof.get("optimizer", True)), "evm_version": prof.get("evm_version", "cancun"),
            "src": prof.get("src", "contracts/src")}


def _resolve(importer: str, path: str, remappings: list[str]) -> str:
    if path.startswith("./") or path.startswith("../"):
        return posixpath.normpath(posixpath.join(posixpath.dirname(importer), path))
    for r in remappings:
        prefix, _, target = r.partition("=")
        if path.startswith(prefix):
            return posixpath.normpath(target + path[len(prefix):])
    return posixpath.normpath(path)


def collect_sources(entry: str, root: Path = REPO_ROOT, remappings: list[str] | None = None) -> dict[str, str]:
    """`entry` and every file it imports, transitively, keyed by repository-relative path (as forge keys them)."""
    remaps = _toml_settings(root)["remappings"] if remappings is None else remappings
    out: dict[str, str] = {}
    todo = [entry]
    while todo:
        key = todo.pop()
        if key in out:
            continue
        try:
            text = (root / key).read_text()
        except OSError as exc:
            raise SourceError(f"source {key} is missing: {exc.strerror or exc}") from None
        out[key] = text
        todo += [_resolve(key, imp, remaps) for imp in IMPORT_RE.findall(text)]
    return out


def standard_json(sources: dict[str, str], targets: dict[str, str], *, remappings: list[str],
                  runs: int = 200, optimizer: bool = True, evm_version: str = "cancun") -> dict[str, Any]:
    """solc standard JSON input; `targets` maps source key -> contract name to output."""
    sel = {"evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences", "metadata"}
    return {
        "language": "Solidity",
        "sources": {k: {"content": v} for k, v in sorted(sources.items())},
        "settings": {
            "remappings": remappings,
            "optimizer": {"enabled": optimizer, "runs": runs},
            "evmVersion": evm_version,
            "metadata": {"bytecodeHash": "ipfs"},
            "libraries": {},
            "outputSelection": {k: {n: sorted(sel)} for k, n in targets.items()},
        },
    }


def compile_standard_json(std: dict[str, Any], cache_dir: Path | None = None) -> dict[str, Any]:
    """Run solc-js (scripts/solc --standard-json); cached by the sha256 of the input."""
    blob = json.dumps(std, sort_keys=True).encode()
    digest = hashlib.sha256(blob).hexdigest()
    cached = cache_dir / f"{digest}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    try:
        proc = subprocess.run(["node", str(SOLC), "--standard-json"], input=blob, capture_output=True, cwd=REPO_ROOT,
                              timeout=900)
    except FileNotFoundError:
        raise SourceError("node is not on PATH: solc-js needs Node.js") from None
    if proc.returncode != 0:
        raise SourceError(f"solc-js failed: {proc.stderr.decode(errors='replace')[:400]}")
    res = json.loads(proc.stdout)
    errors = [e for e in res.get("errors", []) if e.get("severity") == "error"]
    if errors or "contracts" not in res:
        first = errors[0] if errors else (res.get("errors") or [{"formattedMessage": "no output"}])[0]
        raise SourceError(f"sources do not compile: {str(first.get('formattedMessage', first))[:400]}")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(res))
    return res


def split_metadata(code: bytes) -> tuple[bytes, bytes]:
    """(code without its trailing CBOR metadata, the metadata) — solc appends CBOR + a 2-byte length."""
    if len(code) < 2:
        return code, b""
    n = int.from_bytes(code[-2:], "big")
    if n + 2 > len(code) or n == 0:
        return code, b""
    meta = code[-(n + 2):]
    if meta[:1] not in (b"\xa1", b"\xa2", b"\xa3", b"\xa4", b"\xa5"):  # a CBOR map header
        return code, b""
    return code[:-(n + 2)], meta


def compare(deployed: bytes, compiled: bytes, immutables: dict[str, Any] | None = None) -> tuple[str, str]:
    """(status, detail) of deployed runtime code vs compiled runtime code."""
    if not deployed:
        return MISMATCH, "no code at this address"
    d = bytearray(deployed)
    n_imm = 0
    for refs in (immutables or {}).values():
        for ref in refs:
            s, ln = int(ref["start"]), int(ref["length"])
            if s + ln <= len(d):
                d[s:s + ln] = b"\x00" * ln
                n_imm += 1
    code = bytes(d)
    note = f"; {n_imm} immutable slot(s) masked" if n_imm else ""
    if code == compiled:
        return FULL, f"runtime bytecode and metadata hash identical ({len(code)} bytes){note}"
    d_code, d_meta = split_metadata(code)
    c_code, c_meta = split_metadata(compiled)
    if d_code == c_code:
        return PARTIAL, f"code identical, metadata differs (deployed {d_meta.hex()[:24]}…, recompiled {c_meta.hex()[:24]}…){note}"
    return MISMATCH, f"runtime code differs: deployed {len(d_code)} bytes, recompiled {len(c_code)} bytes{note}"


def _runtime(res: dict[str, Any], key: str, name: str) -> tuple[bytes, dict[str, Any], str]:
    c = res["contracts"][key][name]
    meta = json.loads(c["metadata"]) if c.get("metadata") else {}
    return (bytes.fromhex(c["evm"]["deployedBytecode"]["object"]),
            c["evm"]["deployedBytecode"].get("immutableReferences") or {},
            meta.get("compiler", {}).get("version", ""))


def verify_protocol(w3: Any, addresses: dict[str, str], artifact_sources: dict[str, str],
                    cache_dir: Path | None = None, root: Path = REPO_ROOT) -> list[Verification]:
    """Verify each protocol contract {name: address} against its committed source {name: 'contracts/src/X.sol'}."""
    s = _toml_settings(root)
    sources: dict[str, str] = {}
    for src in artifact_sources.values():
        sources.update(collect_sources(src, root, s["remappings"]))
    targets = {artifact_sources[n]: n for n in addresses if n in artifact_sources}
    std = standard_json(sources, targets, remappings=s["remappings"], runs=s["optimizer_runs"],
                        optimizer=s["optimizer"], evm_version=s["evm_version"])
    res = compile_standard_json(std, cache_dir)
    out = []
    for name, addr in addresses.items():
        src = artifact_sources.get(name) or ""
        code = bytes(w3.eth.get_code(addr))
        if src is None:
            out.append(Verification(name, addr, MISMATCH, "", detail="no committed source for this contract",
                                    code_size=len(code)))
            continue
        compiled, imm, version = _runtime(res, src, name)
        status, detail = compare(code, compiled, imm)
        out.append(Verification(name, addr, status, src, version, detail, split_metadata(code)[1].hex(),
                                split_metadata(compiled)[1].hex(), len(code)))
    return out


def verify_single(w3: Any, name: str, address: str, file_name: str, source: str, contract: str,
                  cache_dir: Path | None = None, origin: str = "") -> Verification:
    """Verify one self-contained source (a snarkjs verifier) compiled as `verinfer.prover.solidity` does."""
    std = standard_json({file_name: source}, {file_name: contract}, remappings=[], runs=200)
    std["settings"].pop("remappings")
    std["settings"].pop("libraries")
    std["settings"].pop("metadata")
    res = compile_standard_json(std, cache_dir)
    compiled, imm, version = _runtime(res, file_name, contract)
    code = bytes(w3.eth.get_code(address))
    status, detail = compare(code, compiled, imm)
    return Verification(name, address, status, origin or file_name, version, detail, split_metadata(code)[1].hex(),
                        split_metadata(compiled)[1].hex(), len(code))
