"""Errors of the prover a user can act on (all subclass `VerinferError`)."""

from __future__ import annotations

from verinfer.errors import VerinferError


class ProverError(VerinferError):
    """A prover step failed (toolchain missing, compile error, setup/prove/verify failure)."""


class ProverInputError(ProverError):
    """The input (or weights) cannot be proven: wrong shape or a value outside its bit width."""


class ArtifactError(ProverError):
    """A cached artifact (zkey, ptau, key, wasm) is missing or does not match its recorded hash."""


class CeremonyError(ProverError):
    """A setup ceremony step failed or its transcript does not verify."""
