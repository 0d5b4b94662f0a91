"""Sharded LLM serving for the node daemon (issue 10): stage servers and the accountable head.

Two roles, both on ordinary staked nodes:

* **stage** (`--stage MODEL:LO:HI`): the node registered the layer range [LO, HI) of an LLM model in
  NodeRegistry with an endpoint `tcp://HOST:PORT`; at start it checks both on-chain, fetches only its
  layers (each tensor sha256-checked against the spec, the range's shard commitment checked against the
  registered layout) and serves them with `pipeline.StageServer` on that endpoint. Discovery is the
  registry: heads read the endpoints and shards from NodeRegistry, nothing else.
* **head** (any full-model node drawn into a committee for an LLM request): `LlmHead.compute` replaces
  the single-process compute for `verinfer.llm.v1` models. It validates the prompt (every defect is
  INVALID_INPUT, as for every model), discovers the stages on-chain, runs `pipeline.run_request` with
  `replicas` endpoints compared bit for bit per stage (failover and tie-break from the rest), and
  commits `tokens_hash(tokens)` through the unchanged commit–reveal market.

Accountability (docs/lm.md "Accountability"): the head is the party the market judges for the tokens. A
head whose tokens differ from the committee majority is slashed by the existing market rule, whoever made
it wrong. A stage signs a receipt for every answer (`receipt_signer`); a head checks each one
(`recover_receipt_signer`), routes around a stage whose replicas disagree, records the fault
(`<state-dir>/lm-faults.jsonl`) and disputes the liar's signed receipt in the StageCourt (`open_stage_dispute`):
the market draws a jury of heads that re-run the stage on the transcript (`LlmHead.stage_check`) and the
court slashes the stage when the jury's output differs from what it signed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import coincurve

from verinfer.chain import court
from verinfer.chain.errors import ContractError
from verinfer.chain.protocol import Status
from verinfer.chain.types import resolve_model_id
from verinfer.constants import FIELD
from verinfer.errors import ConfigError, VerinferError
from verinfer.inference import pipeline, runtime
from verinfer.inference.llama_int import IntModel
from verinfer.models import gguf
from verinfer.models.gguf import ShardLayout
from verinfer.models.spec import MAX_SPEC_BYTES
from verinfer.models.tensor import encode_output
from verinfer.node.chainio import NodeChain
from verinfer.node.compute import MAX_INPUT_BYTES, Outcome, compute, fetch_payload

log = logging.getLogger("verinfer.node")

#: `--stage-fault` (TEST/DEMO ONLY): what a misbehaving stage does from its N-th FORWARD on (pipeline.StageServer)
STAGE_FAULTS = ("lie", "swap", "garbage", "stall", "die")


def parse_stage(text: str) -> tuple[str, int, int]:
    """`MODEL:LO:HI` (MODEL a 0x id or a registered name) → (model, lo, hi); one-line error otherwise."""
    parts = text.strip().rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise ConfigError(f"--stage must be MODEL:LO:HI (e.g. smollm2-135m-instruct:10:20), got {text!r}")
    try:
        lo, hi = int(parts[1]), int(parts[2])
    except ValueError:
        raise ConfigError(f"--stage layer range must be integers, got {parts[1]!r}:{parts[2]!r}") from None
    if not 0 <= lo < hi:
        raise ConfigError(f"--stage layer range [{lo}, {hi}) is empty")
    return parts[0], lo, hi


def parse_stage_fault(text: str) -> str:
    """`KIND[:N]` with KIND in STAGE_FAULTS: misbehave from the N-th forward (default 0)."""
    kind, _, n = text.partition(":")
    if kind not in STAGE_FAULTS or (n and not n.isdigit()):
        raise ConfigError(f"--stage-fault must be KIND[:N] with KIND one of {', '.join(STAGE_FAULTS)}, got {text!r}")
    return f"{kind}:{n or 0}"


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """`tcp://HOST:PORT` (the form a stage node registers) → (host, port); ConfigError otherwise."""
    text = endpoint.strip()
    if not text.startswith("tcp://"):
        raise ConfigError(f"a stage node's registered endpoint must be tcp://HOST:PORT, got {endpoint!r} "
                          "(set it with `verinfer operator register --endpoint tcp://HOST:PORT`)")
    host, _, port = text[6:].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"stage endpoint {endpoint!r} is not tcp://HOST:PORT")
    return host, int(port)


# ------------------------------------------------------------------ stage receipts: signing and verifying

def _receipt_digest(chain_id: int, registry: str, ctx: pipeline.StageContext, input_hash: int, output_hash: int) -> bytes:
    return court.receipt_digest(chain_id, registry, ctx.model_id, ctx.lo, ctx.hi, input_hash, output_hash)


def receipt_signer(private_key: bytes, chain_id: int, registry: str) -> Callable[[pipeline.StageContext], pipeline.StageSigner]:
    """The stage's receipt signer from the node key: an EIP-191 personal signature (r | s | v, v in 27/28) over
    `StageCourt.receiptDigest`, which binds chain id and NodeRegistry (a receipt cannot be replayed elsewhere).
    coincurve directly: ~0.1 ms a signature, on every answered FORWARD."""
    key = coincurve.PrivateKey(bytes(private_key))

    def for_context(ctx: pipeline.StageContext) -> pipeline.StageSigner:
        def sign(input_hash: int, output_hash: int) -> bytes:
            return court.sign_digest(key, _receipt_digest(chain_id, registry, ctx, input_hash, output_hash))
        return pipeline.StageSigner(ctx, sign)
    return for_context


def recover_receipt_signer(chain_id: int, registry: str, ctx: pipeline.StageContext,
                           receipt: pipeline.Receipt) -> str | None:
    """The (lower-case hex) address that signed `receipt` (None: malformed, or a high-s / bad-v signature the court's
    ECDSA would refuse)."""
    return court.recover_digest_signer(
        _receipt_digest(chain_id, registry, ctx, receipt.input_hash, receipt.output_hash), receipt.signature)


def stage_context(model_id: bytes, lo: int, hi: int, shard: str) -> pipeline.StageContext:
    """The receipts' context of a registered shard (`shard`: the layout's 0x commitment)."""
    return pipeline.StageContext(bytes(model_id), lo, hi, bytes.fromhex(shard.removeprefix("0x")))


def _load_spec(store: Any, weights_cid: str) -> gguf.LlmSpec:
    return gguf.load_spec(store.cat(weights_cid, max_bytes=MAX_SPEC_BYTES))


@dataclass
class StageService:
    """A running stage of this node: what it serves and where (reported in node.json / health)."""

    model_id: bytes
    lo: int
    hi: int
    endpoint: str
    shard: str
    server: pipeline.StageServer

    def describe(self) -> dict[str, Any]:
        return {"model_id": "0x" + self.model_id.hex(), "layers": [self.lo, self.hi], "endpoint": self.endpoint,
                "shard_commitment": self.shard, "adversary": self.server.adversary}

    def close(self) -> None:
        self.server.close()


def start_stage(chain: NodeChain, store: Any, stage: str, fault: str | None = None) -> StageService:
    """Serve the registered layer range `stage` on the registered endpoint (both read from NodeRegistry)."""
    ref, lo, hi = parse_stage(stage)
    p = chain.p
    model_id = resolve_model_id(p.models, ref)
    me = chain.address
    ranges = [(s.layer_start, s.layer_end) for s in p.nodes.get_shards(me) if bytes(s.model_id) == model_id]
    if (lo, hi) not in ranges:
        raise ConfigError(f"{me} has not registered layers {lo}:{hi} of model 0x{model_id.hex()[:16]}… "
                          f"(registered: {ranges or 'none'}); register with --shards 0x{model_id.hex()}:{lo}:{hi}")
    host, port = parse_endpoint(p.nodes.get_node(me).endpoint)
    info = chain.model(model_id)
    spec = _load_spec(store, info.weights_cid)
    layout = _layout(chain, store, model_id, spec)
    shard = layout.commitment_of(lo, hi)
    t0 = time.perf_counter()
    part = IntModel(gguf.fetch(spec, store, (lo, hi), globals_=False), (lo, hi), globals_=False)
    try:
        # receipts: signed with the node key over StageCourt.receiptDigest (chain id + NodeRegistry from the manifest)
        signer = receipt_signer(bytes(chain.account.key), int(chain.manifest.chain_id), p.nodes.address)(
            stage_context(model_id, lo, hi, shard))
        server = pipeline.StageServer(part, host, port, adversary=parse_stage_fault(fault) if fault else None,
                                      info={"shard": shard, "profile": "0x" + gguf.llm_profile_hash(spec).hex(),
                                            "model_id": "0x" + model_id.hex(), "operator": me},
                                      signer=signer).start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} for the stage: {exc.strerror}") from None
    log.info("stage %s layers %d:%d (shard %s…) serving on tcp://%s:%d, loaded in %.1fs%s", spec.name, lo, hi,
             shard[:14], host, server.port, time.perf_counter() - t0,
             f" [stage fault: {server.adversary}]" if server.adversary else "")
    return StageService(model_id, lo, hi, f"tcp://{host}:{server.port}", shard, server)


def open_stage_dispute(chain: NodeChain, stage: str, ctx: pipeline.StageContext, receipt: pipeline.Receipt,
                       input_cid: str) -> tuple[int, int, int, int]:
    """Open a StageCourt dispute over `receipt` (bond + jury fee from this node's account, through the node's
    thread-safe TxSender): (dispute id, jury request id, gas used, wei paid)."""
    c = court.court_for(chain.p)
    cost = c.dispute_cost(ctx.model_id)
    tx, dispute_id, request_id = c.dispute(
        stage, court.StageReceipt(ctx.model_id, ctx.lo, ctx.hi, receipt.input_hash.to_bytes(32, "big"),
                                  receipt.output_hash.to_bytes(32, "big")), receipt.signature, input_cid, value=cost)
    return dispute_id, request_id, int(tx["gasUsed"]), cost


@dataclass(frozen=True)
class StageEvidence:
    """One stage fault seen by this head (a lie also carries the liar's signed receipt, which `dispute_lies` files)."""

    request_id: int | None
    model_id: str
    stage: int
    layers: tuple[int, int]
    endpoint: str
    operator: str
    kind: str
    step: int
    detail: str
    receipt: dict[str, str] | None = None  # inputHash, outputHash, signature (0x hex) of the lying answer


class LlmHead:
    """The committee member's side of an LLM request: discover stages on-chain, run, hash the tokens."""

    def __init__(self, chain: NodeChain, state_dir: Path, *, replicas: int = 2, timeout_s: float = 20.0,
                 disputes: bool = True) -> None:
        if not 1 <= replicas <= 8:
            raise ConfigError(f"--lm-replicas must be 1..8, got {replicas}")
        if timeout_s <= 0:
            raise ConfigError(f"--lm-stage-timeout must be positive, got {timeout_s}")
        self.chain = chain
        self.replicas = replicas
        self.timeout_s = timeout_s
        self.evidence_path = Path(state_dir) / "lm-faults.jsonl"
        self.disputes_path = Path(state_dir) / "lm-disputes.jsonl"
        self.disputes = disputes  # open a StageCourt dispute against a stage caught lying (`--no-lm-disputes`)
        self.local_stage: StageService | None = None  # this node's own stage: its layers serve stage checks too
        self._stage_models: dict[tuple[bytes, int, int], IntModel] = {}
        self._dispute_threads: list[threading.Thread] = []
        self.disputes_opened = 0
        self._heads: dict[bytes, IntModel] = {}
        self._lock = threading.Lock()
        self.faults_seen = 0
        self._operators: dict[str, str] = {}  # stage endpoint -> operator address (for the evidence)

    def health(self, stage: StageService | None) -> dict[str, Any]:
        """The LLM part of /health: the stage this node serves (if any) and the stage faults it saw as a head."""
        return {"lm_stage": stage.describe() if stage else None, "lm_stage_faults_seen": self.faults_seen,
                "lm_disputes_opened": self.disputes_opened}

    def compute(self, store: Any, spec: Any, input_cid: str, input_hash: int, *, fetch_timeout_s: float = 10.0,
                corrupt_output: bool = False, lm_files: Path | None = None, model_id: bytes | None = None,
                request_id: int | None = None) -> Outcome:
        """A drop-in for `verinfer.node.compute.compute`: LLM specs here, every other model as before."""
        if not isinstance(spec, gguf.LlmSpec):
            return compute(store, spec, input_cid, input_hash, fetch_timeout_s=fetch_timeout_s,
                           corrupt_output=corrupt_output, lm_files=lm_files)
        if model_id is None:
            raise VerinferError("an LLM request needs its model id to discover the stages")
        payload = fetch_payload(store, input_cid, fetch_timeout_s)
        if isinstance(payload, Outcome):
            return payload
        # the one input rule (runtime.admit): [n] int32 ids in the vocabulary, prompt + new tokens within the context,
        # or a stage-check transcript (a StageCourt jury request) of this model
        admitted = runtime.admit(spec, payload, input_hash, model_id=model_id)
        if isinstance(admitted, runtime.Outcome):
            return Outcome.invalid(admitted.invalid_reason or "input rejected")
        if isinstance(admitted, pipeline.StageCheck):
            return self.stage_check(store, spec, model_id, payload, input_hash, request_id, corrupt_output)
        ids = admitted
        if request_id is not None:
            self.draw_before_generation(request_id)
        stages, layout = self.stages(model_id, spec, store)
        contexts = [stage_context(model_id, lo, hi, layout.commitment_of(lo, hi)) for lo, hi in layout.layer_ranges]
        t0 = time.perf_counter()
        res = pipeline.run_request(spec, self.head(model_id, spec, store), ids, stages, spec.max_new_tokens,
                                   replicas=self.replicas, timeout=self.timeout_s, stop_at_eos=True,
                                   contexts=contexts, verify=self.verify_receipt)
        seconds = time.perf_counter() - t0
        self.record_faults(res.faults, layout, model_id, request_id)
        self.dispute_lies(store, res.faults, request_id)
        tokens = list(res.tokens)
        if corrupt_output:  # `--fault wrong-output`: a head that reveals other tokens than it computed
            tokens[0] = (tokens[0] + 1) % int(spec.config["vocab_size"])
        out_payload = encode_output(tokens, spec.output_bits)
        log.info("request %s: %d token(s) through %d stage(s) (%s) in %.2fs, %d stage fault(s), %d failover(s)%s",
                 request_id, len(tokens), len(stages), ", ".join(f"{a}:{b}" for a, b in layout.layer_ranges), seconds,
                 len(res.faults), len(res.recoveries_s),
                 f" (prefix replayed in {', '.join(f'{r:.2f}s' for r in res.recoveries_s)})" if res.recoveries_s else "")
        return Outcome(output_hash=pipeline.tokens_hash(tokens), output_cid=store.add(out_payload), outputs=tokens,
                       inference_seconds=seconds)

    # ------------------------------------------------------------------ receipts, stage checks, disputes

    def verify_receipt(self, endpoint: str, ctx: pipeline.StageContext, receipt: pipeline.Receipt) -> bool:
        """True when `receipt` is signed by the operator that registered `endpoint` (NodeRegistry, `stages`)."""
        op = self._operators.get(endpoint)
        p = self.chain.p
        return op is not None and recover_receipt_signer(int(self.chain.manifest.chain_id), p.nodes.address, ctx,
                                                         receipt) == op.lower()

    def stage_model(self, spec: gguf.LlmSpec, store: Any, model_id: bytes, lo: int, hi: int) -> IntModel:
        """Layers lo..hi for a stage check: this node's own stage model if it serves that range, else fetched once."""
        own = self.local_stage
        if own is not None and (own.model_id, own.lo, own.hi) == (bytes(model_id), lo, hi):
            return own.server.model
        with self._lock:
            key = (bytes(model_id), lo, hi)
            model = self._stage_models.get(key)
            if model is None:
                model = IntModel(gguf.fetch(spec, store, (lo, hi), globals_=False), (lo, hi), globals_=False)
                self._stage_models[key] = model
            return model

    def stage_check(self, store: Any, spec: gguf.LlmSpec, model_id: bytes, payload: bytes, input_hash: int,
                    request_id: int | None, corrupt_output: bool = False) -> Outcome:
        """A StageCourt jury request: re-run layers lo..hi over the transcript under `runtime.decide` (the auditor's
        rule too); the outcome's hash is the stage output hash a receipt signs."""
        t0 = time.perf_counter()
        out = runtime.decide(spec, None, payload, input_hash, model_id=model_id,
                             stage_run=lambda c: pipeline.replay_stage_check(
                                 self.stage_model(spec, store, model_id, c.context.lo, c.context.hi), c))
        if out.is_invalid or out.output_payload is None:
            return Outcome.invalid(out.invalid_reason or "stage check rejected")
        out_hash = out.output_hash
        if corrupt_output:  # `--fault wrong-output`: reveal another hash than computed
            out_hash = (out_hash + 1) % FIELD
        check = pipeline.parse_stage_check(payload, int(spec.config["d_model"]), spec.num_layers, spec.max_context)
        log.info("request %s: stage check of layers %d:%d over %d FORWARD(s) (%d positions) re-run in %.2fs: output "
                 "%s", request_id, check.context.lo, check.context.hi, len(check.frames),
                 sum(f[1].shape[0] for f in check.frames), time.perf_counter() - t0, f"{out_hash:#x}"[:14])
        return Outcome(output_hash=out_hash, output_cid=store.add(out.output_payload),
                       inference_seconds=out.inference_seconds)

    def dispute_lies(self, store: Any, faults: list[pipeline.Fault], request_id: int | None) -> None:
        """For each signed lie: upload the liar's stage-check payload and open a StageCourt dispute, in a background
        thread (a dispute never delays this request's commit or any other request's)."""
        lies = [f for f in faults if f.kind == "lie" and f.receipt is not None and f.context is not None]
        if not lies or not self.disputes:
            return
        for f in lies:
            t = threading.Thread(target=self._dispute, args=(store, f, request_id), daemon=True,
                                 name=f"dispute-{request_id}-{f.stage}")
            t.start()
            self._dispute_threads.append(t)

    def _dispute(self, store: Any, f: pipeline.Fault, request_id: int | None) -> None:
        assert f.receipt is not None and f.context is not None
        op = self._operators.get(f.endpoint, "")
        ctx, r = f.context, f.receipt
        payload = pipeline.encode_stage_check(ctx, f.frames)
        if len(payload) > MAX_INPUT_BYTES:  # the jury would fetch it as INVALID_INPUT and the bond go to the stage
            log.warning("request %s: no dispute against stage %s (%s, layers %d:%d): its %d-byte transcript exceeds "
                        "the %d-byte input limit", request_id, f.endpoint, op or "?", ctx.lo, ctx.hi, len(payload),
                        MAX_INPUT_BYTES)
            return
        try:
            cid = store.add(payload)
            t0 = time.perf_counter()
            dispute_id, jury_request, gas, cost = open_stage_dispute(self.chain, op, ctx, r, cid)
        except (VerinferError, ValueError, OSError) as exc:
            log.warning("request %s: no dispute against stage %s (%s, layers %d:%d): %s", request_id, f.endpoint,
                        op or "?", ctx.lo, ctx.hi, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.disputes_opened += 1
        row = {"request_id": request_id, "dispute_id": dispute_id, "jury_request_id": jury_request, "stage": op,
               "endpoint": f.endpoint, "layers": [ctx.lo, ctx.hi], "input_hash": f"{r.input_hash:#066x}",
               "claimed_output_hash": f"{r.output_hash:#066x}", "input_cid": cid, "payload_bytes": len(payload),
               "gas": gas, "cost_wei": cost, "seconds": round(time.perf_counter() - t0, 3)}
        log.warning("request %s: opened dispute %d against stage %s (%s, layers %d:%d): jury request %d, %d-byte "
                    "transcript %s, bond + fee %d wei, gas %d", request_id, dispute_id, f.endpoint, op, ctx.lo, ctx.hi,
                    jury_request, len(payload), cid, cost, gas)
        with self._lock, self.disputes_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def draw_before_generation(self, request_id: int) -> None:
        """Draw the committee now if nobody has: a sharded generation (tens of seconds, plus a stage timeout per
        stalled stage) can outlast the draw window (drawDeadline: at most the end of the epoch after the
        request's, 40 blocks on the devnet), and the first commit, which would draw, comes only after it."""
        try:
            if self.chain.get_request(request_id).status == Status.PENDING:
                self.chain.draw(request_id)
                log.info("request %d: drew the committee before the sharded generation", request_id)
        except ContractError as exc:
            if exc.error_name not in ("AlreadyDrawn", "AlreadyFinalized", "DrawWindowOver", "DrawNotReady"):
                raise

    def head(self, model_id: bytes, spec: gguf.LlmSpec, store: Any) -> IntModel:
        """Embedding, final norm and LM head of the model (cached): the head never holds a layer."""
        with self._lock:
            model = self._heads.get(model_id)
            if model is None:
                model = self._heads[model_id] = IntModel(gguf.fetch(spec, store, (0, 0)), (0, 0))
            return model

    def stages(self, model_id: bytes, spec: gguf.LlmSpec, store: Any) -> tuple[list[list[str]], ShardLayout]:
        """Endpoints per stage from NodeRegistry (registry order), each checked by HELLO against the layout.

        An endpoint that does not answer is left in (the pipeline fails over past it); one that answers
        with another shard commitment or profile is dropped: it would serve other weights.
        """
        p = self.chain.p
        layout = _layout(self.chain, store, model_id, spec)
        profile = "0x" + gguf.llm_profile_hash(spec).hex()
        by_range: dict[tuple[int, int], list[str]] = {r: [] for r in layout.layer_ranges}
        for node in self.chain.read(lambda: p.nodes.nodes_for_model(model_id)):
            view = self.chain.read(lambda n=node: p.nodes.get_node(n))  # type: ignore[misc]
            if not view.registered or view.unbonding_since:
                continue
            for s in self.chain.read(lambda n=node: p.nodes.get_shards(n)):  # type: ignore[misc]
                key = (int(s.layer_start), int(s.layer_end))
                if bytes(s.model_id) != model_id or key not in by_range:
                    continue
                try:
                    host, port = parse_endpoint(view.endpoint)
                except ConfigError:
                    log.warning("stage node %s registered %d:%d with a non-tcp endpoint %r; skipped", node, *key,
                                view.endpoint)
                    continue
                ep = f"{host}:{port}"
                if not self._announces_other_shard(ep, layout.commitment_of(*key), profile):
                    by_range[key].append(ep)
                    self._operators[ep] = node
        missing = [f"{a}:{b}" for (a, b), eps in by_range.items() if not eps]
        if missing:
            raise VerinferError(f"no live stage node registered for layers {', '.join(missing)} of {spec.name}")
        return [by_range[r] for r in layout.layer_ranges], layout

    def _announces_other_shard(self, ep: str, shard: str, profile: str) -> bool:
        """True only for a stage that answers with a shard or profile other than the registered layout's.

        An endpoint that does not answer now is kept as a candidate: the pipeline tries it, records a `down`
        fault and fails over if it is still down, so one slow handshake does not drop a live stage for good.
        """
        try:
            conn = pipeline.StageConn(ep, min(self.timeout_s, 5.0))
        except pipeline.StageFault:
            return False
        try:
            hello = conn.hello()
        except pipeline.StageFault:
            return False
        finally:
            conn.close()
        if hello.get("shard") != shard or hello.get("profile") != profile:
            log.warning("stage %s announces shard %s / profile %s, the registered layout says %s / %s: not used",
                        ep, str(hello.get("shard"))[:14], str(hello.get("profile"))[:14], shard[:14], profile[:14])
            return True
        return False

    def record_faults(self, faults: list[pipeline.Fault], layout: ShardLayout, model_id: bytes,
                      request_id: int | None) -> None:
        """Log each stage fault and append it to `<state-dir>/lm-faults.jsonl` (evidence, not a slash)."""
        if not faults:
            return
        ops = self._operators
        with self._lock, self.evidence_path.open("a") as f:
            for fl in faults:
                r = fl.receipt
                ev = StageEvidence(request_id, "0x" + model_id.hex(), fl.stage, layout.layer_ranges[fl.stage],
                                   fl.endpoint, ops.get(fl.endpoint, ""), fl.kind, fl.step, fl.detail[:300],
                                   None if r is None else {"input_hash": f"{r.input_hash:#066x}",
                                                           "output_hash": f"{r.output_hash:#066x}",
                                                           "signature": "0x" + r.signature.hex()})
                self.faults_seen += 1
                log.warning("request %s: stage %d (layers %d:%d) at %s (operator %s) fault %s at step %d: %s; routed "
                            "around it", request_id, fl.stage, *ev.layers, fl.endpoint, ev.operator or "?", fl.kind,
                            fl.step, ev.detail)
                f.write(json.dumps(asdict(ev)) + "\n")


def _layout(chain: NodeChain, store: Any, model_id: bytes, spec: gguf.LlmSpec) -> ShardLayout:
    """The model's registered shard layout (document by artifactsCid, pinned by shardLayoutHash, matching `spec`)."""
    info = chain.model(model_id)
    cid = chain.artifacts_cid(model_id)
    return gguf.registered_layout(cid, store, info.shard_layout_hash, spec)


def check_options(stage: str | None, fault: str | None, replicas: int, timeout_s: float) -> None:
    """One-line errors for the LLM flags of `verinfer node run`, before anything is unlocked or opened."""
    if stage is not None:
        parse_stage(stage)
    if fault is not None:
        if stage is None:
            raise ConfigError("--stage-fault needs --stage (it makes this node's stage misbehave)")
        parse_stage_fault(fault)
    if not 1 <= replicas <= 8:
        raise ConfigError(f"--lm-replicas must be 1..8, got {replicas}")
    if timeout_s <= 0:
        raise ConfigError(f"--lm-stage-timeout must be positive, got {timeout_s}")
