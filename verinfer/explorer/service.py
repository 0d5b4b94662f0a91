"""The explorer's data: one function per page, returning plain dicts that both the HTML pages and the
JSON API serve (so the two never disagree)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from verinfer.chain import artifacts
from verinfer.chain.attestation_registry import registry_of
from verinfer.chain.protocol import Protocol
from verinfer.constants import ETHER, PROOF_MODE_NAMES
from verinfer.errors import VerinferError
from verinfer.explorer import charts, checks, content, mapping, sources
from verinfer.explorer.db import Database, dumps
from verinfer.explorer.indexer import Indexer
from verinfer.storage.base import ContentStore

HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
HEX20 = re.compile(r"^0x[0-9a-fA-F]{40}$")
TEE_TYPES = {0: "none", 1: "SGX", 2: "TDX", 3: "SEV-SNP", 255: "mock (test PKI)"}
VERIFIED_BY = {0: "none", 1: "off-chain DCAP", 2: "on-chain", 255: "mock PKI (INSECURE)"}


class NotFound(Exception):
    """An id, hash or address the index does not know (the app answers 404)."""


def eth(wei: Any) -> str:
    try:
        return f"{int(wei) / ETHER:.6g} ETH"
    except (TypeError, ValueError):
        return "—"


@dataclass
class Explorer:
    """A read-only view of one deployment: protocol (no account), index, content store."""

    protocol: Protocol
    db: Database
    store: ContentStore
    trusted_root_pem: bytes | None = None
    trusted_root_label: str = ""
    solc_cache: Path | None = None
    indexer: Indexer = field(init=False)
    _audit_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _sources_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _vocabs: dict[str | None, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.protocol.account is not None:
            raise ValueError("the explorer never signs: pass a read-only Protocol")
        self.indexer = Indexer(self.protocol, self.db)

    # ------------------------------------------------------------------ helpers

    @property
    def manifest(self) -> Any:
        return self.protocol.manifest

    def head(self) -> int:
        return int(self.db.get_meta("last_block") or 0)

    def contract_names(self) -> dict[str, str]:
        return {a.lower(): n for n, a in self.manifest.addresses.items()}

    def _timeline(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT e.*, t.gas_used, t.sender, t.status AS tx_status, b.timestamp FROM events e "
            f"LEFT JOIN txs t ON t.hash = e.tx LEFT JOIN blocks b ON b.number = e.block WHERE {where} "
            f"ORDER BY e.block, e.log_index", params)
        for r in rows:
            r["args"] = json.loads(r["args"])
        return rows

    # ------------------------------------------------------------------ overview

    def overview(self) -> dict[str, Any]:
        db = self.db
        reqs = db.query("SELECT id, status, created_block, finalized_block, proven, contradicted, model_id FROM requests "
                        "ORDER BY id DESC")
        lo = int(self.manifest.deploy_block)
        hi = max(self.head(), lo)
        per_block, labels = charts.buckets([r["created_block"] for r in reqs], lo, hi)
        lat = [r["finalized_block"] - r["created_block"] for r in reqs if r["finalized_block"] is not None]
        hist: dict[int, int] = {}
        for v in lat:
            hist[v] = hist.get(v, 0) + 1
        lat_keys = list(range(min(lat), max(lat) + 1)) if lat else []
        slash_blocks = [r["block"] for r in db.query("SELECT block FROM stake_history WHERE kind LIKE 'slash%'")]
        slash_counts, slash_labels = charts.buckets(slash_blocks, lo, hi)
        accepted = sum(1 for r in reqs if r["status"] == "ACCEPTED")
        proven = sum(1 for r in reqs if r["proven"])
        counts = {s: sum(1 for r in reqs if r["status"] == s) for s in ("PENDING", "COMMITTING", "REVEALING", "ACCEPTED",
                                                                          "INVALID_INPUT", "NO_QUORUM", "EXPIRED")}
        models = {m["model_id"]: m for m in db.query("SELECT model_id, name, version FROM models")}
        recent = db.query("SELECT r.*, m.name AS model_name, m.version AS model_version FROM requests r "
                          "LEFT JOIN models m ON m.model_id = r.model_id ORDER BY r.id DESC LIMIT 25")
        return {
            "chain_id": self.manifest.chain_id,
            "deploy_block": lo,
            "indexed_to": self.head(),
            "events": db.scalar("SELECT COUNT(*) FROM events"),
            "requests": len(reqs),
            "status_counts": counts,
            "proven": proven,
            "accepted": accepted,
            "nodes": db.scalar("SELECT COUNT(*) FROM nodes"),
            "models": len(models),
            "slashes": len(slash_blocks),
            "median_settlement_blocks": sorted(lat)[len(lat) // 2] if lat else None,
            "recent_requests": recent,
            "last_error": self.indexer.last_error,
            "decode_errors": dict(self.indexer.decode_errors),
            "charts": {
                "requests_per_block": charts.bar_chart(per_block, labels, title="requests per block range"),
                "settlement_latency": charts.bar_chart([hist.get(k, 0) for k in lat_keys],
                                                       [f"{k} blocks" for k in lat_keys],
                                                       title="settlement latency (blocks)", color="#8a5cc2"),
                "proof_rate": charts.ratio_bar(proven, accepted, title="proof rate (proven / accepted)"),
                "slashes": charts.bar_chart(slash_counts, slash_labels, title="slashes", color="#c0392b"),
            },
        }

    def requests_page(self, offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        return self.db.query("SELECT r.*, m.name AS model_name FROM requests r LEFT JOIN models m ON "
                             "m.model_id = r.model_id ORDER BY r.id DESC LIMIT ? OFFSET ?", (limit, offset))

    # ------------------------------------------------------------------ request

    def request(self, rid: int, *, audit: str = "cached") -> dict[str, Any]:
        """audit: 'cached' (run once if never run or stale), 'rerun' (run now), 'none'."""
        r = self.db.one("SELECT * FROM requests WHERE id = ?", (rid,))
        if r is None:
            raise NotFound(f"request {rid} is not indexed")
        r["committee"] = json.loads(r["committee"] or "[]")
        model = self.db.one("SELECT * FROM models WHERE model_id = ?", (r["model_id"],)) or {}
        timeline = self._timeline("e.request_id = ?", (rid,))
        members = self.db.query("SELECT * FROM members WHERE request_id = ? ORDER BY COALESCE(position, 99), node", (rid,))
        for m in members:
            m["agreed"] = bool(m["output_hash"]) and m["output_hash"] == r["output_hash"]
            m["paid"] = int(m["credited"] or 0) > 0
        vocab = self._vocab(model.get("weights_cid"))
        inp = content.decode(self.store, r["input_cid"], vocab=vocab)
        out = content.decode(self.store, r["output_cid"], vocab=vocab) if r["output_cid"] else None
        result: dict[str, Any] = {"request": r, "model": model, "timeline": timeline, "members": members,
                                  "input": inp, "output": out, "audit": None, "audit_error": None,
                                  "gas_total": sum({e["tx"]: e["gas_used"] or 0 for e in timeline}.values())}
        if audit != "none":
            last_event = max((e["block"] for e in timeline), default=0)
            got = checks.cached(self.db, rid) if audit == "cached" else None
            if got is None or got["head_block"] < last_event:
                try:
                    with self._audit_lock:
                        got = checks.run(self.protocol, self.store, self.db, rid, trusted_root_pem=self.trusted_root_pem,
                                         trusted_root_label=self.trusted_root_label)
                except Exception as exc:  # the page still shows everything indexed
                    result["audit_error"] = f"{type(exc).__name__}: {exc}"
                    got = None
            result["audit"] = got
        return result

    def _vocab(self, weights_cid: str | None) -> dict[int, str] | None:
        if weights_cid not in self._vocabs:
            self._vocabs[weights_cid] = content.vocabulary(self.store, weights_cid)
        return self._vocabs[weights_cid]

    # ------------------------------------------------------------------ node

    def node(self, address: str) -> dict[str, Any]:
        if not HEX20.match(address):
            raise NotFound(f"{address!r} is not an address")
        addr = Web3.to_checksum_address(address)
        n = self.db.one("SELECT * FROM nodes WHERE address = ?", (addr,))
        if n is None:
            raise NotFound(f"no node {addr} is indexed")
        n["shards"] = json.loads(n["shards"] or "[]")
        att = json.loads(n["attestation"]) if n["attestation"] else None
        chain_head = self.protocol.w3.eth.block_number
        now = int(self.protocol.w3.eth.get_block("latest")["timestamp"])
        if att is not None:
            try:  # V2: records and the allow-list live in the AttestationRegistry
                att["measurement_allowed_now"] = registry_of(self.protocol).measurement_allowed(
                    bytes.fromhex(str(att["measurement"]).removeprefix("0x")))
            except (VerinferError, ValueError):
                att["measurement_allowed_now"] = None
            att["tee"] = TEE_TYPES.get(att.get("teeType"), str(att.get("teeType")))
            att["verified"] = VERIFIED_BY.get(att.get("verifiedBy"), str(att.get("verifiedBy")))
            att["expired"] = int(att.get("expiresAt") or 0) <= now  # unix seconds (AttestationRecorded)
            att["binding"] = "quote report data binds this address and chain id (checked per request by the audit)"
        served = self.db.query(
            "SELECT m.*, r.status, r.output_hash AS settled_hash, r.model_id FROM members m JOIN requests r ON "
            "r.id = m.request_id WHERE m.node = ? ORDER BY m.request_id DESC", (addr,))
        for s in served:
            s["agreed"] = bool(s["output_hash"]) and s["output_hash"] == s["settled_hash"]
        credits = self.db.query("SELECT * FROM credits WHERE account = ? ORDER BY block", (addr,))
        history = self.db.query("SELECT * FROM stake_history WHERE node = ? ORDER BY block", (addr,))
        slashes = [h for h in history if h["kind"].startswith("slash")]
        return {"node": n, "attestation": att, "served": served, "credits": credits,
                "earned": str(sum(int(c["amount"]) for c in credits)), "stake_history": history, "slashes": slashes,
                "slashed_total": n["slashed_total"], "head": chain_head}

    # ------------------------------------------------------------------ model

    def model(self, model_id: str) -> dict[str, Any]:
        if not HEX32.match(model_id):
            raise NotFound(f"{model_id!r} is not a model id")
        m = self.db.one("SELECT * FROM models WHERE model_id = ?", (model_id.lower(),))
        if m is None:
            raise NotFound(f"no model {model_id} is indexed")
        live: dict[str, Any] = {}
        try:
            v = self.protocol.models.get_model(m["model_id"])
            live = {"verifier": v.verifier, "proof_mode": v.proof_mode, "requires_tee": v.requires_tee,
                    "execution_profile_hash": "0x" + bytes(v.execution_profile_hash).hex(),
                    "shard_layout_hash": "0x" + bytes(v.shard_layout_hash).hex(), "num_layers": v.num_layers,
                    "input_bits": v.input_bits, "output_bits": v.output_bits, "deprecated": v.deprecated}
        except Exception as exc:
            live = {"error": str(exc)}
        bundle = self._bundle(m.get("artifacts_cid"))
        accuracy = None
        try:
            spec = json.loads(self.store.cat(m["weights_cid"], max_bytes=8 << 20))
            accuracy = spec.get("accuracy") or spec.get("metrics") if isinstance(spec, dict) else None
        except Exception:
            spec = None
        reqs = self.db.query("SELECT id, status, proven, created_block FROM requests WHERE model_id = ? ORDER BY id DESC "
                             "LIMIT 50", (m["model_id"],))
        return {"model": m, "live": live, "proof_mode_name": PROOF_MODE_NAMES.get(int(live.get("proof_mode", m.get("proof_mode")) or 0), "?"),
                "bundle": bundle, "accuracy": accuracy, "requests": reqs,
                "snippet": consumer_snippet(m, self.manifest.address("InferenceMarket"))}

    def _bundle(self, cid: str | None) -> dict[str, Any] | None:
        if not cid:
            return None
        try:
            doc = json.loads(self.store.cat(cid, max_bytes=1 << 20))
        except Exception as exc:
            return {"cid": cid, "error": f"{type(exc).__name__}: {exc}"}
        return {"cid": cid, "doc": doc}

    def models(self) -> list[dict[str, Any]]:
        return self.db.query("SELECT m.*, (SELECT COUNT(*) FROM requests r WHERE r.model_id = m.model_id) AS requests "
                             "FROM models m ORDER BY registered_block DESC")

    # ------------------------------------------------------------------ tx / address / search

    def tx(self, tx_hash: str) -> dict[str, Any]:
        if not HEX32.match(tx_hash):
            raise NotFound(f"{tx_hash!r} is not a transaction hash")
        h = tx_hash.lower()
        t = self.db.one("SELECT * FROM txs WHERE hash = ?", (h,))
        events = self._timeline("e.tx = ?", (h,))
        if t is None and not events:
            raise NotFound(f"transaction {tx_hash} emitted no protocol event (not indexed)")
        rids = sorted({int(e["args"][mapping.REQUEST_ARG]) for e in events if mapping.REQUEST_ARG in e["args"]})
        return {"tx": t, "events": events, "request_ids": rids, "trace": self.ots_trace(h)}

    def known_names(self) -> dict[str, str]:
        """lower-case address -> label (protocol contracts and registered verifiers)."""
        names = self.contract_names()
        for m in self.db.query("SELECT name, version, verifier FROM models WHERE verifier IS NOT NULL"):
            names.setdefault(m["verifier"].lower(), f"verifier of {m['name']} v{m['version']}")
        return names

    def ots_trace(self, tx_hash: str) -> dict[str, Any]:
        """Internal calls of a transaction from anvil's Otterscan namespace (`ots_traceTransaction`);
        {'available': False} on nodes without it (Hardhat Network, most public RPCs)."""
        try:
            resp = self.protocol.w3.provider.make_request(RPCEndpoint("ots_traceTransaction"), [tx_hash])
        except Exception as exc:
            return {"available": False, "why": f"{type(exc).__name__}: {exc}"}
        if "error" in resp or not isinstance(resp.get("result"), list):
            return {"available": False, "why": str(resp.get("error", "no result"))}
        names = self.known_names()
        calls = []
        for c in resp["result"][:200]:
            inp = str(c.get("input") or "0x")
            calls.append({"type": c.get("type"), "depth": int(c.get("depth", 0)), "from": c.get("from"),
                          "to": c.get("to"), "to_name": names.get(str(c.get("to") or "").lower(), ""),
                          "selector": inp[:10], "input_bytes": max(0, (len(inp) - 2) // 2),
                          "value": int(c.get("value") or "0x0", 16) if isinstance(c.get("value"), str) else c.get("value")})
        return {"available": True, "calls": calls}

    def address(self, address: str) -> dict[str, Any]:
        if not HEX20.match(address):
            raise NotFound(f"{address!r} is not an address")
        addr = Web3.to_checksum_address(address)
        contract = self.contract_names().get(addr.lower())
        reqs = self.db.query("SELECT id, status, created_block FROM requests WHERE requester = ? ORDER BY id DESC LIMIT 100",
                             (addr,))
        txs = self.db.query("SELECT * FROM txs WHERE sender = ? ORDER BY block DESC LIMIT 100", (addr,))
        models = self.db.query("SELECT model_id, name, version FROM models WHERE publisher = ? OR verifier = ?",
                               (addr, addr))
        is_node = self.db.scalar("SELECT 1 FROM nodes WHERE address = ?", (addr,)) is not None
        if not (contract or reqs or txs or models or is_node):
            raise NotFound(f"address {addr} has no indexed activity")
        return {"address": addr, "contract": contract, "requests": reqs, "txs": txs, "models": models, "is_node": is_node}

    def search(self, q: str) -> dict[str, Any]:
        """{'redirect': path} for an exact hit, else {'results': [...]} (model names)."""
        q = (q or "").strip()
        if not q:
            return {"results": []}
        if re.fullmatch(r"#?\d{1,20}", q):
            rid = int(q.lstrip("#"))
            if self.db.scalar("SELECT 1 FROM requests WHERE id = ?", (rid,)):
                return {"redirect": f"/request/{rid}"}
        if HEX32.match(q):
            h = q.lower()
            if self.db.scalar("SELECT 1 FROM txs WHERE hash = ?", (h,)) or self.db.scalar("SELECT 1 FROM events WHERE tx = ?", (h,)):
                return {"redirect": f"/tx/{h}"}
            if self.db.scalar("SELECT 1 FROM models WHERE model_id = ?", (h,)):
                return {"redirect": f"/model/{h}"}
        if HEX20.match(q):
            addr = Web3.to_checksum_address(q)
            if self.db.scalar("SELECT 1 FROM nodes WHERE address = ?", (addr,)):
                return {"redirect": f"/node/{addr}"}
            return {"redirect": f"/address/{addr}"}
        like = f"%{q}%"
        res = self.db.query("SELECT model_id, name, version, publisher FROM models WHERE name LIKE ? ORDER BY name, version "
                            "LIMIT 50", (like,))
        return {"results": res}

    # ------------------------------------------------------------------ contracts (source verification)

    def contracts(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM sources ORDER BY name")
        return [dict(json.loads(r["result"]), code_hash=r["code_hash"]) for r in rows]

    def verify_sources(self) -> list[dict[str, Any]]:
        """Recompile and compare every protocol contract and every registered verifier (slow the first time)."""
        w3 = self.protocol.w3
        with self._sources_lock:
            protocol_names = [n for n in artifacts.PROTOCOL_CONTRACTS if n in self.manifest.addresses]
            results = sources.verify_protocol(
                w3, {n: self.manifest.address(n) for n in protocol_names},
                {n: artifacts.load(n).source for n in protocol_names}, cache_dir=self.solc_cache)
            for m in self.db.query("SELECT model_id, name, version, verifier, artifacts_cid FROM models "
                                   "WHERE verifier IS NOT NULL AND verifier != ?", ("0x" + "0" * 40,)):
                results.append(self._verify_verifier(m))
            for r in results:
                r.extra["creator"] = self._creator(r.address)
            with self.db.write_lock:
                for r in results:
                    code_hash = Web3.to_hex(Web3.keccak(bytes(w3.eth.get_code(Web3.to_checksum_address(r.address)))))
                    self.db.conn.execute("INSERT OR REPLACE INTO sources (address, name, code_hash, result) VALUES (?,?,?,?)",
                                         (r.address, r.name, code_hash, dumps(r.to_json())))
                self.db.conn.commit()
        return self.contracts()

    def _creator(self, address: str) -> dict[str, Any] | None:
        """Deployer and creation tx from `ots_getContractCreator` (anvil); None where unsupported."""
        try:
            resp = self.protocol.w3.provider.make_request(RPCEndpoint("ots_getContractCreator"), [address])
        except Exception:
            return None
        res = resp.get("result") if isinstance(resp, dict) else None
        return {"creator": res.get("creator"), "tx": res.get("hash")} if isinstance(res, dict) else None

    def _verify_verifier(self, m: dict[str, Any]) -> sources.Verification:
        label = f"verifier of {m['name']} v{m['version']}"
        bundle = self._bundle(m.get("artifacts_cid"))
        doc = (bundle or {}).get("doc") or {}
        f = (doc.get("files") or {}).get("verifier_sol") if isinstance(doc, dict) else None
        if not f:
            return sources.Verification(label, m["verifier"], sources.MISMATCH, "",
                                        detail="no prover bundle with verifier_sol published for this model (setArtifacts)")
        try:
            src = self.store.cat(f["cid"], max_bytes=1 << 20).decode()
            return sources.verify_single(self.protocol.w3, label, m["verifier"], f.get("name") or "Verifier.sol", src,
                                         doc.get("verifier_contract") or "Groth16Verifier", cache_dir=self.solc_cache,
                                         origin=f"bundle {m['artifacts_cid']} → {f.get('name')} ({f['cid']})")
        except Exception as exc:
            return sources.Verification(label, m["verifier"], sources.MISMATCH, "", detail=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ dApp section

    def deployment(self) -> dict[str, Any]:
        """ABI + addresses of the deployment, the JSON a dApp developer downloads."""
        return {
            "format": "verinfer.deployment.v1",
            "chain_id": self.manifest.chain_id,
            "deploy_block": self.manifest.deploy_block,
            "contracts": {n: {"address": a, "abi": artifacts.load(n).abi} for n, a in sorted(self.manifest.addresses.items())
                          if n in artifacts.available()},
        }


def consumer_snippet(model: dict[str, Any], market: str) -> str:
    """A copy-paste Solidity consumer for `model` (mirrors contracts/src/examples/ExampleConsumer)."""
    name = re.sub(r"[^A-Za-z0-9]", "", str(model.get("name") or "Model").title()) or "Model"
    return f"""// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {{IInferenceMarket}} from "verinfer/contracts/src/interfaces/IInferenceMarket.sol";
import {{IInferenceConsumer}} from "verinfer/contracts/src/interfaces/IInferenceConsumer.sol";

/// Asks verinfer for {model.get('name')} v{model.get('version')} and receives the settled output by callback.
contract {name}Consumer is IInferenceConsumer {{
    IInferenceMarket public constant MARKET = IInferenceMarket({Web3.to_checksum_address(market)});
    bytes32 public constant MODEL_ID = {model.get('model_id')};

    mapping(uint256 => bytes32) public outputHashOf;
    error NotMarket();

    /// @notice Pay the fee plus the callback deposit (MARKET.quote) and request inference on a content-addressed input.
    function ask(string calldata inputCid, bytes32 inputHash) external payable returns (uint256 requestId) {{
        requestId = MARKET.requestInference{{value: msg.value}}(
            MODEL_ID, inputCid, inputHash,
            IInferenceMarket.RequestParams({{replicas: 3, quorum: 2, commitBlocks: 20, revealBlocks: 20,
                                             callbackGasLimit: 200_000, queueBlocks: 20}}));
    }}

    /// @notice Called by the market once the request settles (V2: the output CID is in the Revealed events).
    function onInferenceResult(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash)
        external override
    {{
        if (msg.sender != address(MARKET)) revert NotMarket();
        if (status == IInferenceMarket.Status.Accepted) outputHashOf[requestId] = outputHash;
    }}
}}
"""
