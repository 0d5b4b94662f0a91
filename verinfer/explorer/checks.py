"""The proof verified three ways side by side, and the full `verinfer audit` verdict of a request.

The audit runs only through the auditor's public entry (`Auditor(...).audit(request_id)`); the three
verifications reuse the prover library (`backend_by_name(...).verify`, `verify_onchain`) on the proof
words, prover and verification key the audit identified, with the public signals rebuilt by the
auditor's `public_signals` (the one function that mirrors InferenceMarket._verify). Results are
cached in the index with the block they were computed at; the page re-runs them on demand.
"""

from __future__ import annotations

import json
import time
from typing import Any

from verinfer.auditor import Auditor
from verinfer.chain.protocol import Protocol
from verinfer.chain.verifier import VERIFY_GAS, verify_onchain
from verinfer.explorer.db import Database, dumps
from verinfer.prover.backends import backend_by_name
from verinfer.prover.types import Proof
from verinfer.storage.base import ContentStore


def _timed(fn: Any) -> tuple[Any, float, str | None]:
    t0 = time.perf_counter()
    try:
        return fn(), (time.perf_counter() - t0) * 1000, None
    except Exception as exc:  # one verifier failing to run is a result to show, not a crash
        return None, (time.perf_counter() - t0) * 1000, f"{type(exc).__name__}: {exc}"


def three_way(auditor: Any, report: Any) -> list[dict[str, Any]]:
    """[{method, ok (True/False/None = not run), ms, detail}] for groth16py, snarkjs and eth_call."""
    ctx = getattr(report, "context", None)
    methods = [("groth16py", "local pairing check (groth16py, arkworks)"),
               ("snarkjs", "snarkjs groth16 verify"),
               ("eth_call", "eth_call verifyProof on the registered verifier")]
    words = getattr(ctx, "proof_words", None)
    prover = getattr(ctx, "prover", None)
    if ctx is None or not words or not prover:
        return [{"method": label, "key": key, "ok": None, "ms": 0.0, "detail": "no proof submitted for this request"}
                for key, label in methods]
    pub = auditor.public_signals(ctx, prover, ctx.proven_hash)
    proof = Proof.from_calldata(list(words), pub)
    vk = getattr(ctx, "vk", None)
    out: list[dict[str, Any]] = []
    for key, label in methods[:2]:
        if vk is None:
            out.append({"method": label, "key": key, "ok": None, "ms": 0.0, "detail": "no verification key identified"})
            continue
        ok, ms, err = _timed(lambda key=key: backend_by_name(key).verify(vk.vk, proof))
        out.append({"method": label, "key": key, "ok": ok, "ms": round(ms, 1),
                    "detail": err or f"vk from {vk.source}" + (" (INSECURE setup)" if vk.insecure else "")})
    verifier = ctx.model.verifier
    ok, ms, err = _timed(lambda: verify_onchain(auditor.env.w3, verifier, proof, gas=VERIFY_GAS))
    out.append({"method": methods[2][1], "key": "eth_call", "ok": ok, "ms": round(ms, 1),
                "detail": err or f"verifier {verifier}, {VERIFY_GAS} gas"})
    for o in out:
        o["public_signals"] = [hex(s) for s in pub]
    return out


def run(protocol: Protocol, store: ContentStore, db: Database, request_id: int, *, trusted_root_pem: bytes | None = None,
        trusted_root_label: str = "") -> dict[str, Any]:
    """Audit `request_id` now, verify its proof three ways, cache and return {report, verify, ...}."""
    t0 = time.perf_counter()
    head = protocol.w3.eth.block_number
    auditor = Auditor(protocol, store, trusted_root_pem=trusted_root_pem, trusted_root_label=trusted_root_label)
    report = auditor.audit(request_id)
    verify = three_way(auditor, report)
    seconds = time.perf_counter() - t0
    rep = report.to_json()
    with db.write_lock:
        db.conn.execute("INSERT OR REPLACE INTO audits (request_id, head_block, ran_at, seconds, report, verify) "
                        "VALUES (?,?,?,?,?,?)", (request_id, head, time.time(), seconds, dumps(rep), dumps(verify)))
        db.conn.commit()
    return {"report": rep, "verify": verify, "head_block": head, "ran_at": time.time(), "seconds": seconds}


def cached(db: Database, request_id: int) -> dict[str, Any] | None:
    row = db.one("SELECT * FROM audits WHERE request_id = ?", (request_id,))
    if row is None:
        return None
    return {"report": json.loads(row["report"]), "verify": json.loads(row["verify"]), "head_block": row["head_block"],
            "ran_at": row["ran_at"], "seconds": row["seconds"]}
