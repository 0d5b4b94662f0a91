"""Events → entity rows: the ONE module that knows event names and argument names.

When the protocol's events change, adapt HANDLERS (and SCHEMA) here; everything else reads the
entity tables or the raw `events` table (name + decoded args as JSON), and pages render whatever
args an event has. An event with no handler is still stored and shown; it just derives nothing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable

from verinfer.chain.types import RequestStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY, requester TEXT, model_id TEXT, input_cid TEXT, input_hash TEXT, fee TEXT,
  committee TEXT, commit_deadline INTEGER, reveal_deadline INTEGER, created_block INTEGER, created_tx TEXT,
  status TEXT DEFAULT 'PENDING', output_hash TEXT, output_cid TEXT, agreeing INTEGER,
  finalized_block INTEGER, finalized_tx TEXT, proven INTEGER DEFAULT 0, prover TEXT, proof_block INTEGER,
  proof_tx TEXT, contradicted INTEGER DEFAULT 0, refunded TEXT, replicas INTEGER, quorum INTEGER,
  draw_block INTEGER, drawn_block INTEGER, drawn_tx TEXT, prover_reward TEXT DEFAULT '0', burned TEXT DEFAULT '0');
CREATE INDEX IF NOT EXISTS requests_model ON requests(model_id);
CREATE TABLE IF NOT EXISTS members (
  request_id INTEGER NOT NULL, node TEXT NOT NULL, position INTEGER, commit_block INTEGER, commit_tx TEXT,
  reveal_block INTEGER, reveal_tx TEXT, output_hash TEXT, output_cid TEXT, penalized INTEGER DEFAULT 0,
  slashed TEXT DEFAULT '0', credited TEXT DEFAULT '0', PRIMARY KEY (request_id, node));
CREATE INDEX IF NOT EXISTS members_node ON members(node);
CREATE TABLE IF NOT EXISTS nodes (
  address TEXT PRIMARY KEY, endpoint TEXT, stake TEXT DEFAULT '0', registered_block INTEGER, shards TEXT,
  unbond_available INTEGER, attestation TEXT, slashed_total TEXT DEFAULT '0', capacity INTEGER);
CREATE TABLE IF NOT EXISTS stake_history (
  node TEXT NOT NULL, block INTEGER NOT NULL, tx TEXT, kind TEXT, amount TEXT, stake_after TEXT);
CREATE INDEX IF NOT EXISTS stake_node ON stake_history(node);
CREATE TABLE IF NOT EXISTS credits (account TEXT NOT NULL, request_id INTEGER, amount TEXT, block INTEGER, tx TEXT);
CREATE INDEX IF NOT EXISTS credits_account ON credits(account);
CREATE TABLE IF NOT EXISTS models (
  model_id TEXT PRIMARY KEY, publisher TEXT, name TEXT, version INTEGER, weights_cid TEXT, commitment TEXT,
  verifier TEXT, proof_mode INTEGER, artifacts_cid TEXT, deprecated INTEGER DEFAULT 0,
  registered_block INTEGER, registered_tx TEXT);
CREATE INDEX IF NOT EXISTS models_name ON models(name);
"""

#: status codes of InferenceMarket.Finalized (protocol V2: verinfer.chain.types.RequestStatus)
STATUS_NAMES = {int(s): s.name for s in RequestStatus}

Event = dict[str, Any]  # {block, log_index, tx, contract, address, name, args}
Handler = Callable[[sqlite3.Connection, Event], None]


def _add(a: Any, b: Any) -> str:
    return str(int(a or 0) + int(b or 0))


def _requested(c: sqlite3.Connection, e: Event) -> None:
    """V2: the committee is not known yet (drawn later from blockhash(drawBlock)): status PENDING."""
    a = e["args"]
    c.execute(
        "INSERT OR REPLACE INTO requests (id, requester, model_id, input_cid, input_hash, fee, committee, "
        "commit_deadline, reveal_deadline, created_block, created_tx, status, replicas, quorum, draw_block) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (a["requestId"], a.get("requester"), a.get("modelId"), a.get("inputCid"), a.get("inputHash"),
         str(a.get("fee", 0)), json.dumps([]), a.get("commitDeadline"), a.get("revealDeadline"),
         e["block"], e["tx"], "PENDING", a.get("replicas"), a.get("quorum"), a.get("drawBlock")))


def _drawn(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    committee = list(a.get("committee", []))
    c.execute("UPDATE requests SET committee=?, drawn_block=?, drawn_tx=?, status='COMMITTING' "
              "WHERE id=? AND status='PENDING'", (json.dumps(committee), e["block"], e["tx"], a["requestId"]))
    if "commitDeadline" in a:  # the windows count from the draw: the event carries the real deadlines
        c.execute("UPDATE requests SET commit_deadline=?, reveal_deadline=? WHERE id=?",
                  (a["commitDeadline"], a["revealDeadline"], a["requestId"]))
    for i, node in enumerate(committee):
        c.execute("INSERT OR IGNORE INTO members (request_id, node, position) VALUES (?,?,?)", (a["requestId"], node, i))


def _member(c: sqlite3.Connection, rid: int, node: str) -> None:
    c.execute("INSERT OR IGNORE INTO members (request_id, node) VALUES (?,?)", (rid, node))


def _committed(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    _member(c, a["requestId"], a["node"])
    c.execute("UPDATE members SET commit_block=?, commit_tx=? WHERE request_id=? AND node=?",
              (e["block"], e["tx"], a["requestId"], a["node"]))
    c.execute("UPDATE requests SET status='COMMITTING' WHERE id=? AND status='COMMITTING'", (a["requestId"],))


def _revealed(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    _member(c, a["requestId"], a["node"])
    c.execute("UPDATE members SET reveal_block=?, reveal_tx=?, output_hash=?, output_cid=? WHERE request_id=? AND node=?",
              (e["block"], e["tx"], a.get("outputHash"), a.get("outputCid"), a["requestId"], a["node"]))
    c.execute("UPDATE requests SET status='REVEALING' WHERE id=? AND status='COMMITTING'", (a["requestId"],))


def _finalized(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    rid = a["requestId"]
    out_hash = a.get("outputHash")
    # V2: output CIDs live only in Revealed events: the settled one is an agreeing member's
    row = c.execute("SELECT output_cid FROM members WHERE request_id=? AND output_hash=? AND output_cid <> '' "
                    "ORDER BY position LIMIT 1", (rid, out_hash)).fetchone()
    c.execute("UPDATE requests SET status=?, output_hash=?, output_cid=?, agreeing=?, finalized_block=?, finalized_tx=? "
              "WHERE id=?", (STATUS_NAMES.get(a.get("status"), str(a.get("status"))), out_hash,
                             row[0] if row else None, a.get("paidCount"), e["block"], e["tx"], rid))


def _penalized(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    _member(c, a["requestId"], a["node"])
    row = c.execute("SELECT slashed FROM members WHERE request_id=? AND node=?", (a["requestId"], a["node"])).fetchone()
    c.execute("UPDATE members SET penalized=1, slashed=? WHERE request_id=? AND node=?",
              (_add(row[0] if row else 0, a.get("slashed", 0)), a["requestId"], a["node"]))


def _credited(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    c.execute("INSERT INTO credits (account, request_id, amount, block, tx) VALUES (?,?,?,?,?)",
              (a["account"], a.get("requestId"), str(a.get("amount", 0)), e["block"], e["tx"]))
    row = c.execute("SELECT credited FROM members WHERE request_id=? AND node=?", (a.get("requestId"), a["account"])).fetchone()
    if row is not None:
        c.execute("UPDATE members SET credited=? WHERE request_id=? AND node=?",
                  (_add(row[0], a.get("amount", 0)), a.get("requestId"), a["account"]))


def _refunded(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    c.execute("UPDATE requests SET refunded=? WHERE id=?", (str(a.get("amount", 0)), a["requestId"]))


def _proof(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    c.execute("UPDATE requests SET proven=1, prover=?, proof_block=?, proof_tx=? WHERE id=?",
              (a.get("prover"), e["block"], e["tx"], a["requestId"]))


def _prover_rewarded(c: sqlite3.Connection, e: Event) -> None:
    """V2: the prover's share (PROVER_REWARD_BPS) of the liars' slashes; the rest is burned."""
    a = e["args"]
    row = c.execute("SELECT prover_reward FROM requests WHERE id=?", (a["requestId"],)).fetchone()
    c.execute("UPDATE requests SET prover_reward=? WHERE id=?", (_add(row[0] if row else 0, a.get("amount", 0)),
                                                                 a["requestId"]))


def _burned(c: sqlite3.Connection, e: Event) -> None:
    """V2: slashed stake is burned (kept locked in the registry, counted in totalBurned), per request."""
    a = e["args"]
    row = c.execute("SELECT burned FROM requests WHERE id=?", (a["requestId"],)).fetchone()
    c.execute("UPDATE requests SET burned=? WHERE id=?", (_add(row[0] if row else 0, a.get("amount", 0)), a["requestId"]))


def _capacity(c: sqlite3.Connection, e: Event) -> None:
    _ensure_node(c, e["args"]["node"])
    c.execute("UPDATE nodes SET capacity=? WHERE address=?", (e["args"].get("capacity"), e["args"]["node"]))


def _stake(c: sqlite3.Connection, node: str, e: Event, kind: str, amount: Any, after: Any) -> None:
    """One stake change; `after` None = unknown (the node's registration was not indexed)."""
    c.execute("INSERT INTO stake_history (node, block, tx, kind, amount, stake_after) VALUES (?,?,?,?,?,?)",
              (node, e["block"], e["tx"], kind, str(amount), None if after is None else str(after)))
    if after is not None:
        c.execute("UPDATE nodes SET stake=? WHERE address=?", (str(after), node))


def _stake_of(c: sqlite3.Connection, node: str) -> int | None:
    """The node's stake as indexed so far, None when its registration was never indexed."""
    row = c.execute("SELECT stake, registered_block FROM nodes WHERE address=?", (node,)).fetchone()
    if row is None or row[1] is None:
        return None
    return int(row[0] or 0)


def _minus(stake: int | None, amount: Any) -> int | None:
    return None if stake is None else max(0, stake - int(amount or 0))


def _node_registered(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    c.execute("INSERT OR REPLACE INTO nodes (address, endpoint, stake, registered_block, shards, slashed_total) "
              "VALUES (?,?,?,?,?,COALESCE((SELECT slashed_total FROM nodes WHERE address=?),'0'))",
              (a["node"], a.get("endpoint"), "0", e["block"], json.dumps(a.get("shards", [])), a["node"]))
    _stake(c, a["node"], e, "register", a.get("stake", 0), a.get("stake", 0))


def _ensure_node(c: sqlite3.Connection, node: str) -> None:
    c.execute("INSERT OR IGNORE INTO nodes (address) VALUES (?)", (node,))


def _stake_added(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    _ensure_node(c, a["node"])
    _stake(c, a["node"], e, "top-up", a.get("amount", 0), a.get("newStake", 0))


def _stake_withdrawn(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    _ensure_node(c, a["node"])
    _stake(c, a["node"], e, "withdraw", a.get("amount", 0), _minus(_stake_of(c, a["node"]), a.get("amount", 0)))


def _slashed(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    _ensure_node(c, a["node"])
    row = c.execute("SELECT slashed_total FROM nodes WHERE address=?", (a["node"],)).fetchone()
    c.execute("UPDATE nodes SET slashed_total=? WHERE address=?", (_add(row[0], a.get("amount", 0)), a["node"]))
    _stake(c, a["node"], e, f"slash (request {a.get('requestId')})", a.get("amount", 0),
           _minus(_stake_of(c, a["node"]), a.get("amount", 0)))


def _unbond(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    _ensure_node(c, a["node"])
    c.execute("UPDATE nodes SET unbond_available=? WHERE address=?", (a.get("availableAt"), a["node"]))
    _stake(c, a["node"], e, "unbond requested", 0, _stake_of(c, a["node"]))


def _endpoint(c: sqlite3.Connection, e: Event) -> None:
    _ensure_node(c, e["args"]["node"])
    c.execute("UPDATE nodes SET endpoint=? WHERE address=?", (e["args"].get("endpoint"), e["args"]["node"]))


def _shards(c: sqlite3.Connection, e: Event) -> None:
    _ensure_node(c, e["args"]["node"])
    c.execute("UPDATE nodes SET shards=? WHERE address=?", (json.dumps(e["args"].get("shards", [])), e["args"]["node"]))


def _attested(c: sqlite3.Connection, e: Event) -> None:
    a = dict(e["args"])
    _ensure_node(c, a["node"])
    a["block"] = e["block"]
    c.execute("UPDATE nodes SET attestation=? WHERE address=?", (json.dumps(a, sort_keys=True), a["node"]))


def _attestation_revoked(c: sqlite3.Connection, e: Event) -> None:
    c.execute("UPDATE nodes SET attestation=NULL WHERE address=?", (e["args"]["node"],))


def _model_registered(c: sqlite3.Connection, e: Event) -> None:
    a = e["args"]
    c.execute("INSERT OR REPLACE INTO models (model_id, publisher, name, version, weights_cid, commitment, "
              "verifier, proof_mode, registered_block, registered_tx) VALUES (?,?,?,?,?,?,?,?,?,?)",
              (a["modelId"], a.get("publisher"), a.get("name"), a.get("version"), a.get("weightsCid"),
               str(a.get("commitment", "")), a.get("verifier"), a.get("proofMode"), e["block"], e["tx"]))


def _artifacts(c: sqlite3.Connection, e: Event) -> None:
    c.execute("UPDATE models SET artifacts_cid=? WHERE model_id=?", (e["args"].get("artifactsCid"), e["args"]["modelId"]))


def _deprecated(c: sqlite3.Connection, e: Event) -> None:
    c.execute("UPDATE models SET deprecated=1 WHERE model_id=?", (e["args"]["modelId"],))


HANDLERS: dict[str, Handler] = {
    "InferenceRequested": _requested,
    "CommitteeDrawn": _drawn,
    "Committed": _committed,
    "Revealed": _revealed,
    "Finalized": _finalized,
    "NodePenalized": _penalized,
    "Credited": _credited,
    "Refunded": _refunded,
    "ProofVerified": _proof,
    "ProverRewarded": _prover_rewarded,
    "Burned": _burned,
    "CapacitySet": _capacity,
    "NodeRegistered": _node_registered,
    "StakeAdded": _stake_added,
    "StakeWithdrawn": _stake_withdrawn,
    "Slashed": _slashed,
    "UnbondRequested": _unbond,
    "EndpointUpdated": _endpoint,
    "ShardsUpdated": _shards,
    "AttestationRecorded": _attested,
    "AttestationRevoked": _attestation_revoked,
    "ModelRegistered": _model_registered,
    "ArtifactsPublished": _artifacts,
    "ModelDeprecated": _deprecated,
}

#: Events that mark the phases of a request's timeline, in protocol order (page rendering).
TIMELINE = ["InferenceRequested", "CommitteeDrawn", "Committed", "Revealed", "ProofVerified", "ProverRewarded",
            "NodePenalized", "Burned", "Finalized", "Credited", "Refunded", "CallbackResult"]

#: Event args naming a request id / address / model id: used to link any event to entity pages.
REQUEST_ARG, MODEL_ARG = "requestId", "modelId"


def apply(c: sqlite3.Connection, event: Event) -> None:
    """Derive entity rows from one event (events are applied in chain order)."""
    handler = HANDLERS.get(event["name"])
    if handler is not None:
        handler(c, event)


def request_of(event: Event) -> int | None:
    """The request an event belongs to (stored in the indexed `events.request_id` column), if any."""
    v = event["args"].get(REQUEST_ARG)
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None
