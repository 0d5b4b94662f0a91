"""The dApp-side SDK: submit an inference request, wait for it to settle, read back a checked result.

Plain verbs (submit / wait / result / withdraw_refunds) in the spirit of EZKL's API. Everything a
result says is re-derived from public data: views and events of the InferenceMarket, the model
record of the ModelRegistry, and the output payload fetched from the content store and re-hashed,
so a result never trusts the node that produced it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3._utils.events import EventLogErrorFlags

from verinfer.chain import artifacts
from verinfer.chain.errors import ContractError
from verinfer.chain.manifest import Manifest
from verinfer.chain.tx import TxSender, name_contract
from verinfer.client.inputs import encode_payload, validate_payload
from verinfer.client.result import (
    FINAL_STATUSES,
    MemberResult,
    RequestResult,
    WaitUpdate,
    status_name,
)
from verinfer.errors import ConfigError, VerinferError
from verinfer.models import spec as model_spec
from verinfer.models.hashing import FIELD, INVALID_INPUT_HASH, hash_vector, to_bytes32

DEFAULT_COMMIT_BLOCKS = 10
DEFAULT_REVEAL_BLOCKS = 10
ETHER = 10**18


class RequestTimeout(VerinferError):
    """`wait` gave up before the request settled (it is still live on-chain: wait again or finalize)."""


class ResultError(VerinferError):
    """The request does not exist, or its data on-chain / in the store is inconsistent."""


@dataclass(frozen=True)
class ModelInfo:
    """A registered model as the client needs it: on-chain record + the spec behind weightsCid."""

    model_id: str
    name: str
    version: int
    publisher: str
    weights_cid: str
    proof_mode: int
    verifier: str
    input_bits: int
    output_bits: int
    deprecated: bool
    spec: model_spec.ModelSpec

    @property
    def provable(self) -> bool:
        """A proof can be verified on-chain for this model (proof mode set and a verifier deployed)."""
        return self.proof_mode != 0 and int(self.verifier, 16) != 0


def parse_model_id(text: str) -> bytes | None:
    """A 0x-prefixed 32-byte model id, or None if `text` is a name."""
    t = text.strip()
    if t.startswith("0x") and len(t) == 66:
        try:
            return bytes.fromhex(t[2:])
        except ValueError:
            raise ConfigError(f"model id {text!r} is not hex") from None
    return None


class Client:
    """Talks to one protocol deployment as one requester account (or read-only without an account)."""

    def __init__(
        self,
        rpc_url: str | None = None,
        manifest_path: str | None = None,
        account: LocalAccount | None = None,
        store: Any | None = None,
        *,
        poll_interval: float = 0.25,
    ) -> None:
        self.manifest = Manifest.load(manifest_path)
        self.rpc_url = rpc_url or self.manifest.rpc_url
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 30}))
        try:
            chain_id = self.w3.eth.chain_id
        except Exception:
            raise ConfigError(f"cannot reach an Ethereum RPC at {self.rpc_url}") from None
        if chain_id != self.manifest.chain_id:
            raise ConfigError(
                f"chain id {chain_id} at {self.rpc_url} differs from the manifest's {self.manifest.chain_id}"
            )
        self.market = self._contract("InferenceMarket")
        self.models = self._contract("ModelRegistry")
        self.nodes = self._contract("NodeRegistry")
        self.consumer = self._contract("ExampleConsumer") if "ExampleConsumer" in self.manifest.addresses else None
        self.account = account
        self.sender = TxSender(self.w3, account) if account is not None else None
        if store is None:
            from verinfer.storage import open_store

            store = open_store()
        self.store = store
        self.poll_interval = poll_interval
        self._model_cache: dict[bytes, ModelInfo] = {}
        self._events: dict[bytes, str] = {
            bytes(self.w3.keccak(text=_event_signature(e))): e["name"]
            for e in self.market.abi
            if e.get("type") == "event"
        }
        #: gas of steps this client itself sent, by request id (withdraw has no request id: kept apart)
        self.own_gas: dict[int, dict[str, list[int]]] = {}
        self.withdraw_gas: list[int] = []
        self.last_withdraw_receipt: Any = None

    # ---- plumbing --------------------------------------------------------------------------

    def use_account(self, account: LocalAccount) -> None:
        """Switch the signing account (e.g. after checking the chain id allows a dev key)."""
        self.account = account
        self.sender = TxSender(self.w3, account)

    @property
    def chain_id(self) -> int:
        return self.manifest.chain_id

    def _contract(self, name: str) -> Any:
        address = Web3.to_checksum_address(self.manifest.address(name))
        name_contract(address, name)
        return self.w3.eth.contract(address=address, abi=artifacts.load(name).abi)

    def _need_sender(self) -> TxSender:
        if self.sender is None:
            raise ConfigError("this client has no account: pass --key NAME (or --dev-account N on a devnet)")
        return self.sender

    @property
    def address(self) -> str | None:
        return self.account.address if self.account is not None else None

    # ---- models ----------------------------------------------------------------------------

    def resolve_model(self, model: str | bytes) -> bytes:
        """A model id from a 0x id or a registered name (the newest non-deprecated version wins)."""
        if isinstance(model, bytes):
            return model
        mid = parse_model_id(model)
        if mid is not None:
            if not self.models.functions.exists(mid).call():
                raise ConfigError(f"model {model} is not registered")
            return mid
        best: tuple[int, int, bytes] | None = None
        count = self.models.functions.modelCount().call()
        for i in range(count):
            candidate = self.models.functions.modelIdAt(i).call()
            m = _named(self.models, "getModel", self.models.functions.getModel(candidate).call())
            name, version, deprecated, registered_at = m["name"], m["version"], m["deprecated"], m["registeredAt"]
            if name == model and not deprecated:
                key = (registered_at, version, bytes(candidate))
                if best is None or key[:2] > best[:2]:
                    best = key
        if best is None:
            raise ConfigError(f"no registered model named {model!r} (publish it: verinfer model publish)")
        return best[2]

    def model_info(self, model: str | bytes) -> ModelInfo:
        """The model's on-chain record and its spec, fetched from the store by weightsCid (cached)."""
        mid = self.resolve_model(model)
        if mid in self._model_cache:
            return self._model_cache[mid]
        m = _named(self.models, "getModel", self.models.functions.getModel(mid).call())
        raw = self.store.cat(m["weightsCid"])
        spec = model_spec.load(raw)
        info = ModelInfo(
            model_id="0x" + bytes(mid).hex(),
            name=m["name"],
            version=m["version"],
            publisher=m["publisher"],
            weights_cid=m["weightsCid"],
            verifier=m["verifier"],
            proof_mode=m["proofMode"],
            input_bits=m["inputBits"],
            output_bits=m["outputBits"],
            deprecated=m["deprecated"],
            spec=spec,
        )
        self._model_cache[mid] = info
        return info

    # ---- submit ----------------------------------------------------------------------------

    def prepare(self, model: str | bytes, data: Sequence[int] | bytes) -> tuple[ModelInfo, bytes, int]:
        """Encode/validate an input for `model`: (model, payload, inputHash) — nothing is sent."""
        info = self.model_info(model)
        if isinstance(data, (bytes, bytearray)):
            payload = bytes(data)
            vector = validate_payload(payload, info.spec)
        else:
            payload = encode_payload(list(data), info.spec)
            vector = validate_payload(payload, info.spec)
        return info, payload, hash_vector(vector, info.input_bits)

    def params(
        self,
        replicas: int = 3,
        quorum: int = 2,
        commit_blocks: int | None = None,
        reveal_blocks: int | None = None,
        callback_gas_limit: int = 0,
    ) -> tuple[int, int, int, int, int]:
        """RequestParams as the ABI tuple, defaults clamped to the deployment's window limits."""
        p = self.manifest.params
        cb = commit_blocks if commit_blocks is not None else min(max(DEFAULT_COMMIT_BLOCKS, p.min_commit_blocks), p.max_commit_blocks)
        rb = reveal_blocks if reveal_blocks is not None else min(max(DEFAULT_REVEAL_BLOCKS, p.min_reveal_blocks), p.max_reveal_blocks)
        if not 1 <= quorum <= replicas:
            raise ConfigError(f"quorum must be between 1 and replicas ({replicas}), got {quorum}")
        return (replicas, quorum, cb, rb, callback_gas_limit)

    def submit(
        self,
        model_id: str | bytes,
        data: Sequence[int] | bytes,
        fee: int,
        replicas: int = 3,
        quorum: int = 2,
        commit_blocks: int | None = None,
        reveal_blocks: int | None = None,
        callback_gas_limit: int = 0,
    ) -> int:
        """Store the input payload, escrow `fee` wei, return the new request id."""
        info, payload, input_hash = self.prepare(model_id, data)
        cid = self.store.add(payload)
        return self.submit_raw(
            info.model_id, cid, input_hash, fee,
            self.params(replicas, quorum, commit_blocks, reveal_blocks, callback_gas_limit),
        )

    def submit_raw(
        self, model_id: str | bytes, input_cid: str, input_hash: int, fee: int, params: Sequence[int]
    ) -> int:
        """Send requestInference with exactly these fields, unchecked (custom payloads, fault tests)."""
        sender = self._need_sender()
        mid = self.resolve_model(model_id)
        receipt = sender.send(
            self.market.functions.requestInference(mid, input_cid, to_bytes32(input_hash), tuple(params)),
            value=fee,
            contract="InferenceMarket",
        )
        rid = self.request_id_from_receipt(receipt)
        self.own_gas.setdefault(rid, {})["request"] = [int(receipt["gasUsed"])]
        return rid

    def request_id_from_receipt(self, receipt: Any) -> int:
        """The id in the InferenceRequested event a request (or a consumer's `ask`) emitted."""
        events = self.market.events.InferenceRequested().process_receipt(receipt, errors=EventLogErrorFlags.Discard)
        if not events:
            raise ResultError(f"transaction {receipt['transactionHash'].hex()} emitted no InferenceRequested")
        return int(events[0]["args"]["requestId"])

    # ---- settle ----------------------------------------------------------------------------

    def finalize(self, request_id: int, extra_gas: int = 0) -> bool:
        """Finalize a request whose reveal window closed; False if someone else already did."""
        sender = self._need_sender()
        fn = self.market.functions.finalize(request_id)
        try:
            est = fn.estimate_gas({"from": sender.address})
        except Exception:
            est = 0
        try:
            if est:
                # The consumer callback runs with a fixed gas budget that estimation under-counts (63/64 rule).
                receipt = sender.send(fn, gas=int(est * 1.3) + extra_gas + 60_000, contract="InferenceMarket")
            else:
                receipt = sender.send(fn, contract="InferenceMarket")
        except ContractError as exc:
            if exc.error_name == "AlreadyFinalized":
                return False
            raise
        self.own_gas.setdefault(request_id, {})["finalize"] = [int(receipt["gasUsed"])]
        return True

    def status(self, request_id: int) -> str:
        return status_name(self.market.functions.statusOf(request_id).call())

    def _raw_request(self, request_id: int) -> Any:
        count = self.market.functions.requestCount().call()
        if not 1 <= request_id <= count:
            raise ResultError(f"request {request_id} does not exist (requests 1..{count})")
        return _named(self.market, "getRequest", self.market.functions.getRequest(request_id).call())

    def wait(
        self,
        request_id: int,
        timeout: float = 120.0,
        until: str = "finalized",
        progress: Callable[[WaitUpdate], None] | None = None,
        *,
        finalize_grace_blocks: int = 1,
    ) -> RequestResult:
        """Poll until the request settles (or is proven); finalize it ourselves if nobody does.

        `until="proven"` keeps waiting after settlement for a proof when the model has a verifier
        and the request was Accepted; if the timeout hits after settlement the settled result is
        returned (proven=False) rather than an error, because the settlement itself is final.
        """
        if until not in ("finalized", "proven"):
            raise ConfigError(f"until must be 'finalized' or 'proven', got {until!r}")
        deadline = time.monotonic() + timeout
        r = self._raw_request(request_id)
        info = self.model_info(bytes(r["modelId"]))
        replicas, callback_gas = r["params"]["replicas"], r["params"]["callbackGasLimit"]
        commit_deadline, reveal_deadline, created = r["commitDeadline"], r["revealDeadline"], r["createdBlock"]
        all_revealed_at: int | None = None
        while True:
            r = _named(self.market, "getRequest", self.market.functions.getRequest(request_id).call())
            status = status_name(self.market.functions.statusOf(request_id).call())
            block = self.w3.eth.block_number
            commits, reveals, proven = r["commitCount"], r["revealCount"], r["proven"]
            final = status in FINAL_STATUSES
            want_proof = until == "proven" and info.provable and status == "Accepted"
            done = final and (not want_proof or proven)
            phase = "Proven" if status == "Accepted" and proven else status
            if final and not done:
                phase = "Proving"
            elif not final and block > reveal_deadline:
                phase = "Finalizing"
            if progress is not None:
                progress(WaitUpdate(request_id, phase, block, commits, reveals, replicas,
                                    commit_deadline, reveal_deadline, created, done))
            if done:
                return self.result(request_id)
            if not final and self.sender is not None:
                if reveals >= replicas and all_revealed_at is None:
                    all_revealed_at = block
                early = all_revealed_at is not None and block >= all_revealed_at + finalize_grace_blocks
                if block > reveal_deadline + finalize_grace_blocks or early:
                    try:
                        if self.finalize(request_id, extra_gas=callback_gas):
                            continue  # settled by us: report it on the next poll without sleeping
                    except ContractError as exc:
                        if exc.error_name != "TooEarlyToFinalize":
                            raise
            if time.monotonic() > deadline:
                if final:
                    return self.result(request_id)
                raise RequestTimeout(
                    f"request {request_id} still {status} after {timeout:.0f}s "
                    f"(block {block}, reveal deadline {reveal_deadline})"
                )
            time.sleep(self.poll_interval)

    # ---- read back -------------------------------------------------------------------------

    def events(self, request_id: int, from_block: int | None = None) -> list[dict[str, Any]]:
        """Every market event whose first or last indexed topic is this request id, in chain order."""
        topic = "0x" + request_id.to_bytes(32, "big").hex()
        start = from_block if from_block is not None else self.manifest.deploy_block
        logs = list(self.w3.eth.get_logs({"address": self.market.address, "fromBlock": start,
                                          "toBlock": "latest", "topics": [None, topic]}))
        # Credited(account indexed, amount, requestId indexed): the id is the 3rd topic.
        credited = self.w3.keccak(text="Credited(address,uint256,uint256)")
        logs += list(self.w3.eth.get_logs({"address": self.market.address, "fromBlock": start,
                                           "toBlock": "latest", "topics": [credited, None, topic]}))
        out = []
        for log in sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"])):
            name = self._events.get(bytes(log["topics"][0]))
            if name is None:
                continue
            ev = getattr(self.market.events, name)().process_log(log)
            out.append({"event": name, "args": dict(ev["args"]), "block": log["blockNumber"],
                        "tx": log["transactionHash"]})
        return out

    def result(self, request_id: int) -> RequestResult:
        """Everything public about a request; the output is fetched from the store and re-hashed."""
        r = self._raw_request(request_id)
        mid = bytes(r["modelId"])
        info = self.model_info(mid)
        status = status_name(self.market.functions.statusOf(request_id).call())
        final = status in FINAL_STATUSES
        settled_hash = int.from_bytes(bytes(r["outputHash"]), "big") if final and status != "NoQuorum" else None
        events = self.events(request_id, from_block=r["createdBlock"])

        committee: list[MemberResult] = []
        for node in self.market.functions.getCommittee(request_id).call():
            committed, revealed, out_hash, out_cid = self.market.functions.getReveal(request_id, node).call()
            slashed, paid = self.market.functions.getMemberSettlement(request_id, node).call()
            oh = int.from_bytes(bytes(out_hash), "big") if revealed else None
            committee.append(MemberResult(
                node=node, committed=committed, revealed=revealed, output_hash=oh, output_cid=out_cid,
                agrees=settled_hash is not None and revealed and oh == settled_hash,
                slashed=slashed, paid=paid,
            ))

        output: list[int] | None = None
        verified = False
        prediction: int | None = None
        error: str | None = None
        out_cid = r["outputCid"]
        if status == "Accepted" and out_cid and settled_hash is not None and settled_hash != INVALID_INPUT_HASH:
            try:
                output, verified = self._fetch_output(out_cid, settled_hash, info.output_bits)
            except VerinferError as exc:
                error = str(exc)
            if output is not None and verified and len(output) > 1:
                prediction = max(range(len(output)), key=lambda i: output[i])

        gas = self._gas_from_events(events)
        for step, values in self.own_gas.get(request_id, {}).items():
            gas.setdefault(step, values)
        finalized_block = next((e["block"] for e in events if e["event"] == "Finalized"), None)
        return RequestResult(
            request_id=request_id,
            model_id=info.model_id,
            requester=r["requester"],
            status=status,
            fee=r["fee"],
            input_cid=r["inputCid"],
            input_hash=int.from_bytes(bytes(r["inputHash"]), "big"),
            created_block=r["createdBlock"],
            commit_deadline=r["commitDeadline"],
            reveal_deadline=r["revealDeadline"],
            output_hash=settled_hash,
            output_cid=out_cid,
            output=output,
            output_verified=verified,
            prediction=prediction,
            committee=committee,
            proven=bool(r["proven"]),
            proof_contradicted=bool(r["contradicted"]),
            proof_mode=info.proof_mode,
            refunded=sum(int(e["args"]["amount"]) for e in events if e["event"] == "Refunded"),
            slashed_total=sum(int(e["args"]["slashed"]) for e in events if e["event"] == "NodePenalized"),
            gas=gas,
            finalized_block=finalized_block,
            error=error,
        )

    def _fetch_output(self, cid: str, expected: int, bits: int) -> tuple[list[int], bool]:
        """Fetch the settled output payload and check it hashes to the on-chain outputHash."""
        from verinfer.models.tensor import decode_tensor

        try:
            raw = self.store.cat(cid)
        except Exception as exc:
            raise ResultError(f"output {cid} is not in the content store: {exc}") from None
        try:
            tensor = decode_tensor(raw)
        except VerinferError as exc:
            raise ResultError(f"output {cid} is not a tensor payload: {exc}") from None
        try:
            ok = hash_vector(tensor.data, bits) == expected
        except ValueError:
            ok = False
        return tensor.data, ok

    def _gas_from_events(self, events: list[dict[str, Any]]) -> dict[str, list[int]]:
        steps = {"InferenceRequested": "request", "Committed": "commit", "Revealed": "reveal",
                 "Finalized": "finalize", "ProofVerified": "submitProof"}
        gas: dict[str, list[int]] = {}
        seen: set[bytes] = set()
        for e in events:
            step = steps.get(e["event"])
            if step is None or bytes(e["tx"]) in seen:
                continue
            seen.add(bytes(e["tx"]))
            gas.setdefault(step, []).append(int(self.w3.eth.get_transaction_receipt(e["tx"])["gasUsed"]))
        return gas

    # ---- money -----------------------------------------------------------------------------

    def withdrawable(self, address: str | None = None) -> int:
        """Wei the market owes `address` (default: this client's account)."""
        who = address or self.address
        if who is None:
            raise ConfigError("no address given and this client has no account")
        return int(self.market.functions.withdrawable(Web3.to_checksum_address(who)).call())

    def withdraw_refunds(self) -> int:
        """Pull everything the market credited this account (refunds, or fees for a node); returns wei."""
        sender = self._need_sender()
        amount = self.withdrawable()
        if amount == 0:
            return 0
        receipt = sender.send(self.market.functions.withdraw(), contract="InferenceMarket")
        self.withdraw_gas.append(int(receipt["gasUsed"]))
        self.last_withdraw_receipt = receipt
        return amount


def _named(contract: Any, fn_name: str, value: Any) -> dict[str, Any]:
    """A struct return value as {field: value} by the ABI's component names (robust to field reordering)."""
    entry = next(e for e in contract.abi if e.get("type") == "function" and e["name"] == fn_name)
    comps = entry["outputs"][0]["components"]

    def conv(cs: list[dict[str, Any]], v: Any) -> dict[str, Any]:
        out = {}
        for c, x in zip(cs, v):
            out[c["name"]] = conv(c["components"], x) if c["type"] == "tuple" else x
        return out

    return conv(comps, value)


def _event_signature(abi: dict[str, Any]) -> str:
    def typ(inp: dict[str, Any]) -> str:
        t = inp["type"]
        if t.startswith("tuple"):
            return "(" + ",".join(typ(c) for c in inp["components"]) + ")" + t[5:]
        return t

    return f"{abi['name']}(" + ",".join(typ(i) for i in abi["inputs"]) + ")"


__all__ = ["Client", "ModelInfo", "RequestTimeout", "ResultError", "FIELD", "ETHER"]
