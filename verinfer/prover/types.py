"""Value types shared by the prover modules: a Groth16 proof and a circuit's prepared artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from verinfer.prover.artifacts import CompiledCircuit
from verinfer.prover.keys import KeyMaterial


@dataclass(frozen=True)
class Proof:
    """A BN254 Groth16 proof in snarkjs coordinates (b's pairs as [c0, c1]) plus its public signals."""

    a: tuple[int, int]
    b: tuple[tuple[int, int], tuple[int, int]]
    c: tuple[int, int]
    public_signals: tuple[int, ...]

    def to_calldata(self) -> list[int]:
        """The 8 words `[a0, a1, b00, b01, b10, b11, c0, c1]` of snarkjs exportsoliditycalldata
        (b's inner pairs swapped to the EVM pairing precompile's (c1, c0) order)."""
        return [self.a[0], self.a[1], self.b[0][1], self.b[0][0], self.b[1][1], self.b[1][0], self.c[0], self.c[1]]

    @classmethod
    def from_calldata(cls, words: Sequence[int], public_signals: Sequence[int]) -> "Proof":
        w = [int(v) for v in words]
        if len(w) != 8:
            raise ValueError("a Groth16 proof has 8 words")
        return cls((w[0], w[1]), ((w[3], w[2]), (w[5], w[4])), (w[6], w[7]), tuple(int(s) for s in public_signals))

    def to_bytes(self) -> bytes:
        """256 bytes: the calldata words big-endian (groth16py's Ethereum proof blob)."""
        return b"".join(v.to_bytes(32, "big") for v in self.to_calldata())

    @classmethod
    def from_bytes(cls, blob: bytes, public_signals: Sequence[int]) -> "Proof":
        if len(blob) != 256:
            raise ValueError(f"a Groth16 proof blob has 256 bytes, got {len(blob)}")
        return cls.from_calldata([int.from_bytes(blob[i:i + 32], "big") for i in range(0, 256, 32)], public_signals)

    def to_snarkjs(self) -> tuple[dict[str, Any], list[str]]:
        """(proof.json, public.json) objects as snarkjs writes them."""
        proof = {
            "pi_a": [str(self.a[0]), str(self.a[1]), "1"],
            "pi_b": [[str(self.b[0][0]), str(self.b[0][1])], [str(self.b[1][0]), str(self.b[1][1])], ["1", "0"]],
            "pi_c": [str(self.c[0]), str(self.c[1]), "1"],
            "protocol": "groth16",
            "curve": "bn128",
        }
        return proof, [str(s) for s in self.public_signals]

    @classmethod
    def from_snarkjs(cls, proof: dict[str, Any], public: Sequence[str | int]) -> "Proof":
        a, b, c = proof["pi_a"], proof["pi_b"], proof["pi_c"]
        return cls((int(a[0]), int(a[1])), ((int(b[0][0]), int(b[0][1])), (int(b[1][0]), int(b[1][1]))),
                   (int(c[0]), int(c[1])), tuple(int(s) for s in public))

    def with_public_signals(self, public_signals: Sequence[int]) -> "Proof":
        """The same proof claimed for other public signals (for negative tests and audits)."""
        return Proof(self.a, self.b, self.c, tuple(int(s) for s in public_signals))


@dataclass
class CircuitArtifacts:
    """Everything needed to prove and verify one model in one mode, and to deploy its verifier."""

    compiled: CompiledCircuit
    keys: KeyMaterial
    commitment: int
    verifier_sol: Path
    verifier_contract: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.compiled.mode

    @property
    def vk(self) -> dict[str, Any]:
        return self.keys.vk

    @property
    def vk_path(self) -> Path:
        return self.keys.vk_path

    @property
    def zkey_path(self) -> Path | None:
        return self.keys.zkey_path

    @property
    def wasm_path(self) -> Path:
        return self.compiled.wasm_path

    @property
    def r1cs_path(self) -> Path:
        return self.compiled.r1cs_path

    @property
    def public_signal_names(self) -> tuple[str, ...]:
        return self.compiled.public_signal_names

    @property
    def insecure(self) -> bool:
        return self.keys.insecure

    @property
    def circuit_hash(self) -> str:
        return self.compiled.circuit_hash

    @property
    def n_constraints(self) -> int:
        return self.compiled.n_constraints
