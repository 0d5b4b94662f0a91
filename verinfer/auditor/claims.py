"""Verdicts and the report an audit produces: one verdict per claim the chain makes about a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    """PASS: re-derived and equal. FAIL: re-derived and different (or unverifiable where it must be).
    N/A: the claim does not exist for this request (no proof mode, not settled, no record)."""

    PASS = "PASS"
    FAIL = "FAIL"
    NA = "N/A"


@dataclass(frozen=True)
class Claim:
    """One checked claim: section (model/input/output/quorum/proof/attestation), name, verdict, why."""

    section: str
    name: str
    verdict: Verdict
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"section": self.section, "name": self.name, "verdict": self.verdict.value, "detail": self.detail}


@dataclass
class AuditReport:
    """Everything an audit found; `context` keeps the re-derived values for callers (not serialized)."""

    request_id: int
    status: str
    model_id: str
    model_name: str
    proof_mode: int
    claims: list[Claim] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    context: Any = None

    @property
    def ok(self) -> bool:
        """No claim failed."""
        return not any(c.verdict is Verdict.FAIL for c in self.claims)

    @property
    def failures(self) -> list[Claim]:
        return [c for c in self.claims if c.verdict is Verdict.FAIL]

    def claim(self, name: str) -> Claim:
        """The claim called `name` (e.g. "proof.local"); KeyError if the audit did not produce it."""
        for c in self.claims:
            if c.name == name:
                return c
        raise KeyError(f"no claim {name!r}; have {[c.name for c in self.claims]}")

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for c in self.claims:
            out[c.verdict.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "verinfer.audit.v1",
            "request_id": self.request_id,
            "status": self.status,
            "model_id": self.model_id,
            "model_name": self.model_name,
            "proof_mode": self.proof_mode,
            "ok": self.ok,
            "counts": self.counts(),
            "claims": [c.to_json() for c in self.claims],
            "notes": list(self.notes),
        }
