"""Compile generated circuits into a content-addressed cache (`.verinfer/circuits/<hash>/`).

circuit hash = sha256(generated source + every included library file + circom version + mode), so
a cached build is reused exactly when it would be rebuilt bit for bit. The manifest records the
source and r1cs hashes so an auditor can regenerate the circuit from the weights CID and compare.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verinfer.prover import toolchain
from verinfer.prover.circuitgen import GeneratedCircuit, generate
from verinfer.prover.errors import ArtifactError
from verinfer.prover.spec import SpecView, spec_hash, view

LIB_FILES = ("vector_hash.circom", "gadgets.circom", "commitment.circom")
CIRCOMLIB_FILES = ("poseidon.circom", "poseidon_constants.circom")
# Included (and hashed) only when the generated source uses them, so existing circuits keep their hash.
OPTIONAL_LIB_FILES = ("conv.circom",)
CIRCUIT_NAME = "circuit"


@dataclass
class CompiledCircuit:
    """A compiled circuit in the cache: r1cs, wasm witness calculator, symbols, manifest."""

    dir: Path
    circuit_hash: str
    mode: str
    public_signal_names: tuple[str, ...]
    manifest: dict[str, Any]
    spec: SpecView

    @property
    def r1cs_path(self) -> Path:
        return self.dir / f"{CIRCUIT_NAME}.r1cs"

    @property
    def sym_path(self) -> Path:
        return self.dir / f"{CIRCUIT_NAME}.sym"

    @property
    def wasm_path(self) -> Path:
        return self.dir / f"{CIRCUIT_NAME}_js" / f"{CIRCUIT_NAME}.wasm"

    @property
    def witness_calculator(self) -> Path:
        return self.dir / f"{CIRCUIT_NAME}_js" / "witness_calculator.js"

    @property
    def n_constraints(self) -> int:
        return int(self.manifest["constraints"])


def _sources(gen: GeneratedCircuit) -> dict[str, str]:
    """relative path -> text of every file the compiler reads."""
    files = {f"{CIRCUIT_NAME}.circom": gen.source}
    for name in LIB_FILES + tuple(n for n in OPTIONAL_LIB_FILES if f'include "{n}";' in gen.source):
        files[f"lib/{name}"] = (toolchain.CIRCUITS_LIB / name).read_text()
    for name in CIRCOMLIB_FILES:
        files[f"circomlib/{name}"] = (toolchain.circomlib_dir() / name).read_text()
    return files


def circuit_hash(gen: GeneratedCircuit) -> str:
    """sha256 over (path, text) of all sources, the circom version and the mode."""
    h = hashlib.sha256()
    for rel, text in sorted(_sources(gen).items()):
        h.update(rel.encode() + b"\0" + text.encode() + b"\0")
    h.update(toolchain.circom_version().encode() + b"\0" + gen.mode.encode())
    return h.hexdigest()


def r1cs_header(path: Path) -> dict[str, int]:
    """Counts from an .r1cs header section (iden3 binary format)."""
    data = path.read_bytes()
    if data[:4] != b"r1cs":
        raise ArtifactError(f"{path} is not an r1cs file")
    n_sections = struct.unpack_from("<I", data, 8)[0]
    off = 12
    for _ in range(n_sections):
        stype, size = struct.unpack_from("<IQ", data, off)
        off += 12
        if stype == 1:
            n8 = struct.unpack_from("<I", data, off)[0]
            p = off + 4 + n8
            n_wires, n_pub_out, n_pub_in, n_prv_in = struct.unpack_from("<IIII", data, p)
            n_labels = struct.unpack_from("<Q", data, p + 16)[0]
            m = struct.unpack_from("<I", data, p + 24)[0]
            return {"wires": n_wires, "public_outputs": n_pub_out, "public_inputs": n_pub_in,
                    "private_inputs": n_prv_in, "labels": n_labels, "constraints": m}
        off += size
    raise ArtifactError(f"{path} has no header section")


def compile_circuit(spec: Any, mode: str = "public", *, force: bool = False) -> CompiledCircuit:
    """Generate and compile (or reuse from the cache) the model's circuit in `mode`."""
    sv = view(spec)
    gen = generate(sv, mode)
    chash = circuit_hash(gen)
    final = toolchain.cache_root() / chash
    manifest_path = final / "manifest.json"
    if manifest_path.exists() and not force:
        manifest = json.loads(manifest_path.read_text())
        cc = CompiledCircuit(final, chash, mode, tuple(manifest["public_signal_names"]), manifest, sv)
        if cc.r1cs_path.exists() and cc.wasm_path.exists():
            return cc
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{chash[:12]}-", dir=toolchain.cache_root()))
    try:
        for rel, text in _sources(gen).items():
            p = tmp / "src" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        # circom2 runs as WASI with the working directory as its only filesystem: relative paths.
        t0 = time.perf_counter()
        toolchain.run(
            toolchain.circom_cmd() + [f"src/{CIRCUIT_NAME}.circom", "--O2", "--r1cs", "--wasm", "--sym",
                                      "-o", ".", "-l", "src/lib", "-l", "src/circomlib"],
            cwd=tmp, what=f"circom2 compile ({sv.name}, {mode})",
        )
        compile_s = time.perf_counter() - t0
        header = r1cs_header(tmp / f"{CIRCUIT_NAME}.r1cs")
        manifest = {
            "format": "verinfer.circuit.v1",
            "circuit_hash": chash,
            "model": sv.name,
            "spec_sha256": spec_hash(sv),
            "mode": mode,
            "public_signal_names": list(gen.public_signal_names),
            "circom_version": toolchain.circom_version(),
            "circom_flags": "--O2 --r1cs --wasm --sym",
            "source_sha256": hashlib.sha256(gen.source.encode()).hexdigest(),
            "r1cs_sha256": toolchain.sha256_file(tmp / f"{CIRCUIT_NAME}.r1cs"),
            "wasm_sha256": toolchain.sha256_file(tmp / f"{CIRCUIT_NAME}_js" / f"{CIRCUIT_NAME}.wasm"),
            "requant_bits": gen.requant_bits,
            "compile_seconds": round(compile_s, 3),
            **header,
            **gen.notes,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if final.exists() and not (final / "manifest.json").exists():
            shutil.rmtree(final, ignore_errors=True)  # a broken partial entry (no manifest)
        if (final / "manifest.json").exists():
            # another process finished the same build (same hash, same content): keep its entry
            # and anything it holds (keys), refresh only the build outputs
            for name in (f"{CIRCUIT_NAME}.r1cs", f"{CIRCUIT_NAME}.sym", "manifest.json"):
                if not (final / name).exists():
                    os.replace(tmp / name, final / name)
            if not (final / f"{CIRCUIT_NAME}_js").exists():
                os.replace(tmp / f"{CIRCUIT_NAME}_js", final / f"{CIRCUIT_NAME}_js")
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            try:
                os.replace(tmp, final)
            except OSError:
                if not (final / "manifest.json").exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # lost a race to an identical build
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = json.loads(manifest_path.read_text())
    return CompiledCircuit(final, chash, mode, tuple(manifest["public_signal_names"]), manifest, sv)

