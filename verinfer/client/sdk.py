"""The dApp-side SDK: submit an inference request, wait for it to settle, read back a checked result.

Plain verbs (submit / wait / result / withdraw_refunds) in the spirit of EZKL's API. Everything a
result says is re-derived from public data: views and events of the InferenceMarket, the model
record of the ModelRegistry, and the output payload fetched from the content store and re-hashed,
so a result never trusts the node that produced it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from verinfer.chain.errors import ContractError, RecordBusyError, RequestPrunedError
from verinfer.chain.events import DecodedEvent
from verinfer.chain.manifest import Manifest
from verinfer.chain.protocol import Protocol, RequestParams, RequestView, Status
from verinfer.chain.tx import TxSender
from verinfer.chain.types import ModelInfo, resolve_model_id
from verinfer.client.inputs import decode_tokens, encode_payload, validate_payload
from verinfer.client.result import (
    FINAL_STATUSES,
    MemberResult,
    RequestResult,
    WaitUpdate,
    predicted_class,
    status_name,
)
from verinfer.constants import ETHER, FIELD, INVALID_INPUT_HASH
from verinfer.errors import ConfigError, VerinferError
from verinfer.inference.ee import is_encrypted_spec
from verinfer.inference.ee_llm import is_encrypted_llm
from verinfer.inference.runtime import load_model
from verinfer.models.hashing import hash_vector
from verinfer.models.spec import MAX_SPEC_BYTES
from verinfer.models.tensor import decode_tensor
from verinfer.storage import open_store
from verinfer.storage.base import ContentStore

DEFAULT_COMMIT_BLOCKS = 10
DEFAULT_REVEAL_BLOCKS = 10
#: Default windows are also at least this long in wall time (converted with the chain's measured block time).
#: Why: a window is what a live node has to see, fetch, compute and get its transaction mined, which takes seconds,
#: not blocks. 10 blocks are 2 min on a 12 s chain but 5 s at 0.5 s blocks, below what 3 nodes needed under a
#: 200-request burst (commit p95 > 10 blocks after the request, docs/benchmarks-network.md, issue 7 attack 13).
#: Longer windows cost nothing when every member answers: the reveal phase opens when all committed.
DEFAULT_WINDOW_SECONDS = 15.0
#: …but never more than this many blocks from the time rule (a devnet that just mined blocks instantly looks fast).
MAX_TIMED_WINDOW_BLOCKS = 64
#: A language model's first request on a node loads torch and the weights and decodes token by token
#: (6.7 s measured on the 2-core box for textgenrnn, more than 10 blocks at 0.5 s): its default windows are wider.
LM_DEFAULT_WINDOW_BLOCKS = 40
#: Default queue for seats (issue 7 load): under a burst every seat can be busy for a while; a queued request
#: waits (draw reverts NoSeatsYet) instead of expiring at once. The contract caps it at MAX_QUEUE_BLOCKS and at
#: the end of the epoch after the request's, so asking for more only bounds the wait before a refund.
DEFAULT_QUEUE_SECONDS = 60.0
MAX_QUEUE_BLOCKS = 255
#: market events that belong to one request (filtered by their requestId argument)
REQUEST_EVENTS = ["InferenceRequested", "CommitteeDrawn", "Committed", "Revealed", "Finalized", "NodePenalized",
                  "Credited", "Refunded", "ProofVerified", "ProverRewarded", "CallbackResult"]


class RequestTimeout(VerinferError):
    """`wait` gave up before the request settled (it is still live on-chain: wait again or finalize)."""


class ResultError(VerinferError):
    """The request does not exist, or its data on-chain / in the store is inconsistent."""


class MarketBusyError(VerinferError):
    """Every request record a new request may use (RecordBusy) holds an unsettled request that may not be finalized
    yet (as many requests in flight as records): retry once one settles."""


def parse_model_id(text: str) -> bytes | None:
    """A 0x-prefixed 32-byte model id, or None if `text` is a name."""
    t = text.strip()
    if t.startswith("0x") and len(t) == 66:
        try:
            return bytes.fromhex(t[2:])
        except ValueError:
            raise ConfigError(f"model id {text!r} is not hex") from None
    return None


def _label(status: Any) -> str:
    """Solidity name of a status enum member or value (`NO_QUORUM` -> `NoQuorum`)."""
    name = getattr(status, "name", None)
    if name is None:
        return status_name(int(status))
    return "".join(part.capitalize() for part in name.split("_"))


class Client:
    """Talks to one protocol deployment as one requester account (or read-only without an account).

    Every chain read and write goes through `verinfer.chain.protocol` (typed views, decoded reverts,
    the process-wide one-sender-per-key TxSender); this class adds the requester's workflow.
    """

    def __init__(
        self,
        rpc_url: str | None = None,
        manifest_path: str | Path | None = None,
        account: LocalAccount | None = None,
        store: ContentStore | None = None,
        *,
        poll_interval: float = 0.25,
    ) -> None:
        manifest = Manifest.load(manifest_path)
        self.rpc_url = rpc_url or manifest.rpc_url
        self.protocol = Protocol.connect(self.rpc_url, manifest_path, account)
        self.manifest = self.protocol.manifest
        self.w3: Web3 = self.protocol.w3
        self.account = account
        self.store: ContentStore = store if store is not None else open_store()
        self.poll_interval = poll_interval
        self._model_cache: dict[bytes, ModelInfo] = {}
        self._spb: float | None = None
        #: gas of steps this client itself sent, by request id (withdraw has no request id: kept apart)
        self.own_gas: dict[int, dict[str, list[int]]] = {}
        self.withdraw_gas: list[int] = []
        self.last_withdraw_receipt: Any = None

    # ---- plumbing --------------------------------------------------------------------------

    def use_account(self, account: LocalAccount) -> None:
        """Switch the signing account (e.g. after checking the chain id allows a dev key)."""
        self.account = account
        self.protocol = self.protocol.as_account(account)

    @property
    def sender(self) -> TxSender | None:
        return self.protocol.sender

    @property
    def chain_id(self) -> int:
        return self.manifest.chain_id

    def _need_sender(self) -> TxSender:
        if self.protocol.sender is None:
            raise ConfigError("this client has no account: pass --key NAME (or --dev-account N on a devnet)")
        return self.protocol.sender

    @property
    def address(self) -> str | None:
        return self.account.address if self.account is not None else None

    def seconds_per_block(self, sample: int = 20) -> float:
        """The chain's block time from the last `sample` block timestamps (read once per client; 1 s if too young)."""
        if self._spb is None:
            head = self.w3.eth.get_block("latest")
            n = min(sample, int(head["number"]))
            if n < 2:
                return 1.0
            old = self.w3.eth.get_block(int(head["number"]) - n)
            self._spb = max(0.1, (int(head["timestamp"]) - int(old["timestamp"])) / n)
        return self._spb

    # ---- models ----------------------------------------------------------------------------

    def resolve_model(self, model: str | bytes, publisher: str | None = None) -> bytes:
        """A model id from a 0x id or a registered name; a name two publishers registered is refused."""
        return resolve_model_id(self.protocol.models, model, publisher)

    def model_info(self, model: str | bytes, publisher: str | None = None) -> ModelInfo:
        """The model's on-chain record with its spec (any kind), fetched from the store by weightsCid (cached)."""
        mid = self.resolve_model(model, publisher)
        if mid in self._model_cache:
            return self._model_cache[mid]
        record = self.protocol.models.get_model(mid)
        raw = self.store.cat(record.weights_cid, max_bytes=MAX_SPEC_BYTES)
        info = ModelInfo.from_record(record, spec=load_model(raw))
        self._model_cache[mid] = info
        return info

    # ---- submit ----------------------------------------------------------------------------

    def prepare(self, model: str | bytes, data: Sequence[int] | bytes) -> tuple[ModelInfo, bytes, int]:
        """Encode/validate an input for `model`: (model, payload, inputHash) — nothing is sent."""
        info = self.model_info(model)
        if isinstance(data, (bytes, bytearray)):
            payload = bytes(data)
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
        model: ModelInfo | None = None,
        queue_blocks: int | None = None,
    ) -> RequestParams:
        """RequestParams; default windows are the longest of 10 blocks (40 for a language model),
        DEFAULT_WINDOW_SECONDS of blocks at the chain's block time, and the deployment's minimum. The default queue
        is DEFAULT_QUEUE_SECONDS of blocks (at most MAX_QUEUE_BLOCKS); 0 turns the queue off."""
        market = self.protocol.market
        lm = model is not None and getattr(model.spec, "kind", "") in ("lm", "llm")
        dc, dr = (LM_DEFAULT_WINDOW_BLOCKS, LM_DEFAULT_WINDOW_BLOCKS) if lm else (DEFAULT_COMMIT_BLOCKS, DEFAULT_REVEAL_BLOCKS)
        if commit_blocks is None or reveal_blocks is None:
            timed = min(MAX_TIMED_WINDOW_BLOCKS, math.ceil(DEFAULT_WINDOW_SECONDS / self.seconds_per_block()))
            dc, dr = max(dc, timed), max(dr, timed)
        cb = commit_blocks if commit_blocks is not None else max(dc, market.min_commit_blocks())
        rb = reveal_blocks if reveal_blocks is not None else max(dr, market.min_reveal_blocks())
        if not 1 <= quorum <= replicas:
            raise ConfigError(f"quorum must be between 1 and replicas ({replicas}), got {quorum}")
        if queue_blocks is None:
            queue_blocks = min(MAX_QUEUE_BLOCKS, math.ceil(DEFAULT_QUEUE_SECONDS / self.seconds_per_block()))
        if not 0 <= queue_blocks <= MAX_QUEUE_BLOCKS:
            raise ConfigError(f"queue_blocks must be between 0 and {MAX_QUEUE_BLOCKS}, got {queue_blocks}")
        return RequestParams(replicas, quorum, cb, rb, callback_gas_limit, queue_blocks)

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
        queue_blocks: int | None = None,
    ) -> int:
        """Store the input payload, escrow `fee` wei, return the new request id (queue_blocks: see `params`)."""
        info, payload, input_hash = self.prepare(model_id, data)
        cid = self.store.add(payload)
        self.await_snapshot(info, replicas)
        return self.submit_raw(
            info.model_id, cid, input_hash, fee,
            self.params(replicas, quorum, commit_blocks, reveal_blocks, callback_gas_limit, info, queue_blocks),
        )

    def await_snapshot(self, info: ModelInfo, replicas: int, poll: float = 0.5) -> bool:
        """Wait, at most into the next epoch, until this epoch's stake snapshot can seat `replicas` nodes.

        Stake registered in the current epoch counts only from the next one (the draw reads the snapshot at
        the start of the request's epoch, issue 7 attack 7), so a request sent right after operators register
        would end Expired (refunded). True when the snapshot seats a committee; False when it still does not
        after one epoch change — the request is sent anyway and the contract decides.
        """
        nodes = self.protocol.nodes
        first = nodes.current_epoch()
        while True:
            epoch = nodes.current_epoch()
            if len(nodes.draw_committee(info.model_id, 1, epoch, replicas, info.requires_tee)) >= replicas:
                return True
            if epoch > first:
                return False
            time.sleep(poll)

    def quote(self, model: str | bytes, params: RequestParams | None = None) -> tuple[int, int]:
        """(minimum fee, callback deposit) in wei that a request with `params` needs now (the market's `quote`)."""
        return self.protocol.market.quote(self.resolve_model(model), params or self.params())

    def submit_raw(
        self, model_id: str | bytes, input_cid: str, input_hash: int, fee: int, params: RequestParams | Sequence[int]
    ) -> int:
        """Send requestInference with exactly these fields, unchecked (custom payloads, fault tests)."""
        self._need_sender()
        mid = self.resolve_model(model_id)
        p = params if isinstance(params, RequestParams) else RequestParams(*params)
        try:
            receipt, rid = self.protocol.market.request_inference(mid, input_cid, input_hash, p, fee)
        except RecordBusyError as exc:
            self.free_record(exc.pending_request_id)
            receipt, rid = self.protocol.market.request_inference(mid, input_cid, input_hash, p, fee)
        self.own_gas.setdefault(rid, {})["request"] = [int(receipt["gasUsed"])]
        return rid

    #: Ids requestInference tries before RecordBusy (the contract's MAX_RECORD_TRIES).
    RECORD_TRIES = 4

    def free_record(self, pending_id: int) -> None:
        """RecordBusy(pending_id): the records of the ids tried (the first holds pending_id; the next 3 those of
        pending_id + 1 .. + 3) all hold unsettled requests. Finalize the first the contract lets anyone finalize
        (`may_finalize`: past its deadline), which frees a record for the retry; else MarketBusyError saying which
        settles first, and when."""
        market = self.protocol.market
        records = market.request_records()
        holders = sorted({market.record_holder(pending_id + t) for t in range(min(self.RECORD_TRIES, records))} - {0})
        block = self.w3.eth.block_number
        waits: list[tuple[int, int, str]] = []  # (deadline, holder, status)
        for holder in holders:
            r = market.get_request(holder)
            if r.is_final:
                return  # settled since our attempt: its record is free
            if self.may_finalize(r, self.model_info(bytes(r.model_id)), block):
                self.finalize(holder, extra_gas=r.params.callback_gas_limit)
                return
            waits.append((r.draw_deadline if r.status == Status.PENDING else r.finalize_after, holder, _label(r.status)))
        if not waits:
            return  # every blocker is gone (recycled since): just retry
        deadline, holder, status = min(waits)
        held = ", ".join(f"{h} ({s})" for _, h, s in sorted(waits, key=lambda w: w[1]))
        raise MarketBusyError(
            f"cannot submit now: every request record a new request may use is held by an unsettled request "
            f"(requests {held}); the first anyone may finalize is request {holder} ({status}), after block {deadline} "
            f"(now {block}); the market keeps at most {records} requests in flight: retry after that")

    # ---- settle ----------------------------------------------------------------------------

    def finalize(self, request_id: int, extra_gas: int = 0) -> bool:
        """Finalize a request the contract lets settle now; False if someone else already did."""
        sender = self._need_sender()
        fn = self.protocol.market.contract.functions.finalize(request_id)
        try:
            est = int(fn.estimate_gas({"from": sender.address}))
        except Exception:  # noqa: BLE001 - a revert is decoded by the send below
            est = 0
        try:
            # The consumer callback runs with a fixed gas budget that estimation under-counts (63/64 rule).
            gas = int(est * 1.3) + extra_gas + 60_000 if est else None
            receipt = sender.send(fn, gas=gas, contract="InferenceMarket")
        except ContractError as exc:
            if exc.error_name == "AlreadyFinalized":
                return False
            raise
        self.own_gas.setdefault(request_id, {})["finalize"] = [int(receipt["gasUsed"])]
        return True

    def status(self, request_id: int) -> str:
        return _label(self.protocol.market.status_of(request_id))

    def _request(self, request_id: int) -> RequestView:
        """The request's views, or ResultError in one line: a skipped/unknown id (`missing_request`), or pruned."""
        market = self.protocol.market
        try:
            return market.get_request(request_id)
        except RequestPrunedError as exc:
            raise ResultError(market.missing_request(request_id) or self.pruned_message(request_id, exc.recycled_by)) \
                from None
        except ContractError as exc:
            if exc.error_name != "RequestNotFound":
                raise
            raise ResultError(market.missing_request(request_id) or str(exc)) from None

    def pruned_message(self, request_id: int, recycled_by: int) -> str:
        """One line on a pruned request: how it settled (its Finalized event) and where its history is."""
        market = self.protocol.market
        fin = market.request_events(request_id, ["Finalized"])
        settled = (f"it settled as {Status(int(fin[0].args['status'])).label} at block {fin[0].block_number} "
                   f"(Finalized, tx {fin[0].tx_hash})" if fin else "it settled before that")
        return (f"request {request_id} is pruned: its on-chain record was recycled by request {recycled_by}; "
                f"{settled}; its history is in the market's events for request {request_id}, and `verinfer audit "
                f"{request_id}` reads its views as of block {market.history_block(request_id, recycled_by)} "
                f"(archive node)")

    def may_finalize(self, r: RequestView, model: ModelInfo, block: int) -> bool:
        """Whether this client finalizes now: never inside the proof window of a provable model (attack 10).

        Mirrors the contract: after `finalizeAfter` (= reveal deadline + proof window for proven models);
        earlier only when every member revealed and the model is consensus-only or a proof already landed.
        Finalizing right after the reveals would let a wrong majority settle before the honest proof.
        """
        if r.status in (Status.PENDING, Status.NONE):
            return block > r.draw_deadline  # never drawn: settles as Expired (full refund) after the draw window
        if block > r.finalize_after:
            return True
        everyone = r.committee_size > 0 and r.reveal_count >= r.committee_size
        return everyone and (not model.provable or r.proven)

    def wait(
        self,
        request_id: int,
        timeout: float = 120.0,
        until: str = "finalized",
        progress: Callable[[WaitUpdate], None] | None = None,
        *,
        finalize_grace_blocks: int = 1,
    ) -> RequestResult:
        """Poll until the request settles; finalize it ourselves once the contract and the proof window allow.

        All members revealed settles early only for consensus-only models (or once proven): a provable
        model's request is finalized only after its proof window (`may_finalize`).
        `until="proven"` keeps waiting after settlement for a proof when the model has a verifier.
        """
        if until not in ("finalized", "proven"):
            raise ConfigError(f"until must be 'finalized' or 'proven', got {until!r}")
        deadline = time.monotonic() + timeout
        r = self._request(request_id)
        info = self.model_info(bytes(r.model_id))
        replicas, callback_gas = r.params.replicas, r.params.callback_gas_limit
        while True:
            r = self.protocol.market.get_request(request_id)
            status = _label(r.status)
            block = self.w3.eth.block_number
            final = status in FINAL_STATUSES
            want_proof = until == "proven" and info.provable and status == "Accepted"
            done = final and (not want_proof or r.proven)
            phase = "Accepted (proven)" if status == "Accepted" and r.proven else status
            if final and not done:
                phase = "Proving"
            elif not final and block > r.reveal_deadline:
                phase = "Proof window" if info.provable and not r.proven and block <= r.finalize_after else "Finalizing"
            if progress is not None:
                progress(WaitUpdate(request_id, phase, block, r.commit_count, r.reveal_count, replicas,
                                    r.commit_deadline, r.reveal_deadline, r.created_block, done))
            if done:
                return self.result(request_id)
            if not final and self.protocol.sender is not None and self.may_finalize(r, info, block - finalize_grace_blocks + 1):
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
                    f"(block {block}, reveal deadline {r.reveal_deadline})"
                )
            time.sleep(self.poll_interval)

    # ---- read back -------------------------------------------------------------------------

    def events(self, request_id: int, from_block: int | None = None) -> list[DecodedEvent]:
        """Every market event of this request (by its requestId argument), in chain order."""
        market = self.protocol.market
        names = [n for n in REQUEST_EVENTS if any(e.get("type") == "event" and e["name"] == n for e in market.abi)]
        start = from_block if from_block is not None else self.manifest.deploy_block
        return [e for e in market.events(names, from_block=start) if int(e.args.get("requestId", -1)) == request_id]

    def result(self, request_id: int) -> RequestResult:
        """Everything public about a request; the output is fetched from the store and re-hashed."""
        market = self.protocol.market
        r = self._request(request_id)
        info = self.model_info(bytes(r.model_id))
        status = _label(r.status)
        final = status in FINAL_STATUSES
        settled = final and status in ("Accepted", "InvalidInput")
        settled_hash = int.from_bytes(bytes(r.output_hash), "big") if settled else None
        events = self.events(request_id, from_block=r.created_block)
        cids = {Web3.to_checksum_address(e.args["node"]): str(e.args.get("outputCid", ""))
                for e in events if e.name == "Revealed"}
        input_cid = next((str(e.args["inputCid"]) for e in events if e.name == "InferenceRequested"), "")

        committee: list[MemberResult] = []
        for node in market.get_committee(request_id):
            node = Web3.to_checksum_address(node)
            rv = market.get_reveal(request_id, node)
            st = market.get_member_settlement(request_id, node)
            oh = int.from_bytes(bytes(rv.output_hash), "big") if rv.revealed else None
            committee.append(MemberResult(
                node=node, committed=rv.committed, revealed=rv.revealed, output_hash=oh,
                output_cid=cids.get(node, ""), agrees=settled_hash is not None and rv.revealed and oh == settled_hash,
                slashed=st.slashed, paid=st.paid,
            ))

        output: list[int] | None = None
        verified = False
        error: str | None = None
        out_cid = next((m.output_cid for m in committee if m.agrees and m.output_cid), "")
        if status == "Accepted" and settled_hash is not None and settled_hash != INVALID_INPUT_HASH:
            if not out_cid:
                error = "no agreeing member revealed an output CID"
            else:
                try:
                    output, verified = self._fetch_output(out_cid, settled_hash, info.output_bits)
                except VerinferError as exc:
                    error = str(exc)
        prediction, text = _interpret(info, output if verified else None, self.store)

        gas = self._gas_from_events(events)
        for step, values in self.own_gas.get(request_id, {}).items():
            gas.setdefault(step, values)
        finalized_block = next((e.block_number for e in events if e.name == "Finalized"), None)
        return RequestResult(
            request_id=request_id,
            model_id=info.model_id_hex,
            requester=r.requester,
            status=status,
            fee=r.fee,
            input_cid=input_cid,
            input_hash=int.from_bytes(bytes(r.input_hash), "big"),
            created_block=r.created_block,
            commit_deadline=r.commit_deadline,
            reveal_deadline=r.reveal_deadline,
            output_hash=settled_hash,
            output_cid=out_cid,
            output=output,
            output_verified=verified,
            prediction=prediction,
            committee=committee,
            proven=bool(r.proven),
            proof_contradicted=False,  # V2: a proof after settlement reverts; before it, it decides
            proof_mode=info.proof_mode,
            refunded=sum(int(e.args["amount"]) for e in events if e.name == "Refunded"),
            slashed_total=sum(int(e.args["slashed"]) for e in events if e.name == "NodePenalized"),
            gas=gas,
            finalized_block=finalized_block,
            error=error,
            model_kind="lm" if getattr(info.spec, "kind", "") in ("lm", "llm") else "mlp",
            text=text,
            output_space="permuted" if is_encrypted_spec(info.spec) or is_encrypted_llm(info.spec) else "plain",
        )

    def _fetch_output(self, cid: str, expected: int, bits: int) -> tuple[list[int], bool]:
        """Fetch the settled output payload and check it hashes to the on-chain outputHash."""
        try:
            raw = self.store.cat(cid)
        except Exception as exc:  # noqa: BLE001 - any store failure is reported as the result's error
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

    def _gas_from_events(self, events: list[DecodedEvent]) -> dict[str, list[int]]:
        steps = {"InferenceRequested": "request", "Committed": "commit", "Revealed": "reveal",
                 "Finalized": "finalize", "ProofVerified": "submitProof"}
        gas: dict[str, list[int]] = {}
        seen: set[str] = set()
        for e in events:
            step = steps.get(e.name)
            if step is None or e.tx_hash in seen:
                continue
            seen.add(e.tx_hash)
            gas.setdefault(step, []).append(int(self.w3.eth.get_transaction_receipt(HexStr(e.tx_hash))["gasUsed"]))
        return gas

    # ---- money -----------------------------------------------------------------------------

    def withdrawable(self, address: str | None = None) -> int:
        """Wei the market owes `address` (default: this client's account)."""
        who = address or self.address
        if who is None:
            raise ConfigError("no address given and this client has no account")
        return int(self.protocol.market.withdrawable(Web3.to_checksum_address(who)))

    def withdraw_refunds(self) -> int:
        """Pull everything the market credited this account (refunds, or fees for a node); returns wei."""
        self._need_sender()
        amount = self.withdrawable()
        if amount == 0:
            return 0
        receipt = self.protocol.market.withdraw()
        self.withdraw_gas.append(int(receipt["gasUsed"]))
        self.last_withdraw_receipt = receipt
        return amount


def _interpret(info: ModelInfo, output: list[int] | None, store: ContentStore) -> tuple[int | None, str | None]:
    """A verified output for people: the argmax class of a classifier, the decoded text of a language model."""
    if output is None:
        return None, None
    if is_encrypted_llm(info.spec):
        return None, None  # permuted token ids: only the key holder can read them (client.ee.decrypt_result)
    if getattr(info.spec, "kind", "") == "llm":  # sharded transformer LM: its BPE tokenizer, by CID
        from verinfer.client.llm import decode_text

        return None, decode_text(info.spec, output, store)
    if getattr(info.spec, "kind", "") == "lm":
        return None, decode_tokens(info.spec, output, store)
    if is_encrypted_spec(info.spec):
        return None, None  # permuted class order: only the key holder can name the class (client.ee)
    return predicted_class(output), None


__all__ = ["Client", "ModelInfo", "RequestTimeout", "ResultError", "FIELD", "ETHER"]
