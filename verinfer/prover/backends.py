"""Two interchangeable Groth16 provers over the same circuit and keys.

`SnarkjsBackend` is the reference (the tool that made the keys and the Solidity verifier);
`Groth16pyBackend` (arkworks) is the fast one. Both take the witness computed by the circuit's own
wasm, and each verifies the other's proofs (tests/test_prover_backends.py).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from verinfer.prover import toolchain
from verinfer.prover.errors import ProverError
from verinfer.prover.types import CircuitArtifacts, Proof
from verinfer.prover.witness import compute_witness, public_signals


class ProverBackend(Protocol):
    """prove(artifacts, witness_inputs) -> Proof; verify(vk, proof) -> bool."""

    name: str

    def prove(self, artifacts: CircuitArtifacts, witness_inputs: dict[str, Any]) -> Proof: ...

    def verify(self, vk: dict[str, Any], proof: Proof) -> bool: ...

    def prove_wtns(self, artifacts: CircuitArtifacts, wtns: Path) -> Proof: ...


class Groth16pyBackend:
    """arkworks prover (groth16py): proves from a dev key or an imported ceremony zkey."""

    name = "groth16py"

    #: proving keys kept in memory (least recently used dropped first): a node serves a few models
    MAX_KEYS = 4

    def __init__(self) -> None:
        import groth16py  # noqa: F401  (fail early when missing)

        self._pks: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()  # one load per key even with several prover threads

    def _pk(self, artifacts: CircuitArtifacts) -> Any:
        import groth16py

        km = artifacts.keys
        if km.g16_pk_path is not None:
            key = ("g16", km.record["g16_pk_sha256"])
        elif km.zkey_path is not None:
            key = ("zkey", km.record["zkey_sha256"])
        else:
            raise ProverError("no proving key: run `verinfer prover setup` first")
        with self._lock:
            if key not in self._pks:
                km.check()
                if key[0] == "g16":
                    self._pks[key] = groth16py.ProvingKey.load(str(km.g16_pk_path))
                else:
                    self._pks[key] = groth16py.import_zkey(str(km.zkey_path))[0]
                while len(self._pks) > self.MAX_KEYS:
                    self._pks.popitem(last=False)
            self._pks.move_to_end(key)
            return self._pks[key]

    def prove_wtns(self, artifacts: CircuitArtifacts, wtns: Path) -> Proof:
        """Prove from an already computed witness file."""
        import groth16py

        pk = self._pk(artifacts)
        try:
            blob = groth16py.prove_wtns(pk, str(wtns))
        except Exception as exc:
            raise ProverError(f"groth16py proving failed: {exc}") from None
        return Proof.from_bytes(bytes(blob), public_signals(artifacts.compiled, wtns))

    def prove(self, artifacts: CircuitArtifacts, witness_inputs: dict[str, Any]) -> Proof:
        wtns = compute_witness(artifacts.compiled, witness_inputs)
        try:
            return self.prove_wtns(artifacts, wtns)
        finally:
            wtns.unlink(missing_ok=True)

    def verify(self, vk: dict[str, Any], proof: Proof) -> bool:
        import groth16py

        try:
            verifier = groth16py.Verifier(groth16py.VerifyingKey.from_snarkjs(json.dumps(vk)))
            return bool(verifier.verify(proof.to_bytes(), list(proof.public_signals)))
        except Exception:
            return False  # malformed points or signals outside the field: not a valid proof


class SnarkjsBackend:
    """snarkjs 0.7.6 (`groth16 prove` / `groth16 verify`) in a Node subprocess; needs a zkey."""

    name = "snarkjs"

    def prove_wtns(self, artifacts: CircuitArtifacts, wtns: Path) -> Proof:
        if artifacts.zkey_path is None:
            raise ProverError("snarkjs proves only from a .zkey (a ceremony key); this circuit has a groth16py "
                              "dev key: use Groth16pyBackend or `verinfer prover setup --ceremony`")
        artifacts.keys.check()
        with tempfile.TemporaryDirectory(prefix="verinfer-snarkjs-") as tmp:
            pp, pub = Path(tmp) / "proof.json", Path(tmp) / "public.json"
            toolchain.run(toolchain.snarkjs_cmd() + ["groth16", "prove", str(artifacts.zkey_path), str(wtns),
                                                     str(pp), str(pub)], what="snarkjs groth16 prove")
            return Proof.from_snarkjs(json.loads(pp.read_text()), json.loads(pub.read_text()))

    def prove(self, artifacts: CircuitArtifacts, witness_inputs: dict[str, Any]) -> Proof:
        wtns = compute_witness(artifacts.compiled, witness_inputs)
        try:
            return self.prove_wtns(artifacts, wtns)
        finally:
            wtns.unlink(missing_ok=True)

    def verify(self, vk: dict[str, Any], proof: Proof) -> bool:
        proof_obj, pub = proof.to_snarkjs()
        with tempfile.TemporaryDirectory(prefix="verinfer-snarkjs-") as tmp:
            paths = {}
            for name, obj in (("vk", vk), ("proof", proof_obj), ("public", pub)):
                paths[name] = Path(tmp) / f"{name}.json"
                paths[name].write_text(json.dumps(obj))
            proc = subprocess.run(toolchain.snarkjs_cmd() + ["groth16", "verify", str(paths["vk"]),
                                                             str(paths["public"]), str(paths["proof"])],
                                  capture_output=True, text=True)
            out = proc.stdout + proc.stderr
            return proc.returncode == 0 and "OK!" in out


_SHARED: dict[str, Groth16pyBackend] = {}
_SHARED_LOCK = threading.Lock()


def best_backend() -> ProverBackend:
    """groth16py (a base dependency, ≈3× faster than snarkjs); no silent second path if it is missing.

    One instance per process, so a loaded proving key is reused by every later proof: loading an
    INSECURE dev key costs more than proving with it (digits-mlp 0.19 s vs 0.085 s CPU, digits-cnn
    0.9 s vs 0.29 s; benchmarks/profile_prove.py), and a node used to pay it on every request.
    """
    with _SHARED_LOCK:
        if "groth16py" not in _SHARED:
            _SHARED["groth16py"] = Groth16pyBackend()
        return _SHARED["groth16py"]


def backend_by_name(name: str) -> ProverBackend:
    """'groth16py' | 'snarkjs' | 'best'."""
    if name == "best":
        return best_backend()
    if name == "groth16py":
        return best_backend()
    if name == "snarkjs":
        return SnarkjsBackend()
    raise ProverError(f"unknown prover backend {name!r}: use groth16py, snarkjs or best")
