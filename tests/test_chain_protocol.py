"""The protocol through verinfer.chain on a real anvil: deployment, the full request lifecycle,
decoded reverts, and the pure helpers agreeing with the contracts."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from web3 import Web3

from verinfer.chain.deploy import is_deployed
from verinfer.chain.devnet import mine
from verinfer.chain.errors import ContractError
from verinfer.chain.events import MemoryCursorStore
from verinfer.chain.manifest import Manifest, ProtocolParams
from verinfer.chain.protocol import (
    FIELD,
    INVALID_INPUT,
    ModelInput,
    ModelShard,
    Protocol,
    RequestParams,
    Status,
    TimelockController,
    commitment_hash,
    decode_event,
    model_id_for,
    request_binding,
)
from verinfer.constants import ETHER
from verinfer.errors import ConfigError


def _register_model(protocol: Protocol, publisher, name: str | None = None) -> bytes:
    p = protocol.as_account(publisher)
    name = name or f"model-{secrets.token_hex(4)}"
    _, model_id = p.models.register_model(ModelInput(name=name, weights_cid="bafyweights", commitment=12345))
    return model_id


def _next_epoch(protocol: Protocol, w3: Web3) -> None:
    """Stake counts for draws from the next epoch's snapshot: mine to the epoch boundary."""
    n = protocol.nodes.epoch_length()
    mine(w3, n - w3.eth.block_number % n)


def _staked_model(protocol: Protocol, new_account, w3: Web3, n: int, stake: int = 2 * ETHER) -> tuple[bytes, list]:
    model_id = _register_model(protocol, new_account())
    ops = [new_account() for _ in range(n)]
    for op in ops:
        protocol.as_account(op).nodes.register(f"http://{op.address[:8]}", [ModelShard(model_id)], stake=stake)
    _next_epoch(protocol, w3)
    return model_id, ops


def test_deploy_wires_and_configures(protocol: Protocol, protocol_manifest: Manifest, w3: Web3, accounts) -> None:
    assert is_deployed(w3, protocol_manifest)
    assert {"NodeRegistry", "ModelRegistry", "InferenceMarket", "ExampleConsumer", "AttestationRegistry"} <= set(
        protocol_manifest.addresses)
    p = ProtocolParams()
    assert protocol.nodes.market() == protocol_manifest.addresses["InferenceMarket"]
    assert protocol.nodes.attestation_registry() == protocol_manifest.addresses["AttestationRegistry"]
    assert (protocol.nodes.min_stake(), protocol.nodes.unbonding_delay(), protocol.nodes.epoch_length()) == (
        p.min_stake, p.unbonding_delay, p.epoch_length)
    assert (protocol.market.min_fee(), protocol.market.slash_amount(), protocol.market.proof_blocks()) == (
        p.min_fee, p.slash_amount, p.proof_blocks)
    assert (protocol.market.min_commit_blocks(), protocol.market.min_reveal_blocks()) == (10, 10)
    assert protocol.market.callback_gas_price() == p.callback_gas_price
    assert protocol.consumer.market() == protocol_manifest.addresses["InferenceMarket"]
    owner = protocol_manifest.timelock or accounts[0].address
    assert protocol.market.owner() == owner and protocol.nodes.owner() == owner


def test_manifest_roundtrip_and_connect(protocol_manifest: Manifest, devnet, tmp_path: Path, monkeypatch) -> None:
    path = protocol_manifest.save(tmp_path / "m.json")
    assert Manifest.load(path) == protocol_manifest
    monkeypatch.setenv("VERINFER_MANIFEST", str(path))
    p = Protocol.connect(devnet.rpc_url)
    assert p.market.address == protocol_manifest.addresses["InferenceMarket"]
    with pytest.raises(ConfigError, match="no deployment manifest"):
        Manifest.load(tmp_path / "missing.json")
    wrong = protocol_manifest.model_copy(update={"chain_id": 1})
    wrong.save(tmp_path / "wrong.json")
    with pytest.raises(ConfigError, match="chain 1"):
        Protocol.connect(devnet.rpc_url, tmp_path / "wrong.json")
    old = json.loads(path.read_text())
    old["format"] = "verinfer.manifest.v1"
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="redeploy"):
        Manifest.load(tmp_path / "old.json")


def test_full_request_lifecycle(protocol: Protocol, new_account, w3: Web3) -> None:
    publisher, requester = new_account(), new_account()
    model_id = _register_model(protocol, publisher, "digits")
    assert model_id == model_id_for(publisher.address, "digits", 1)
    model = protocol.models.get_model(model_id)
    assert (model.publisher, model.name, model.version, model.commitment) == (publisher.address, "digits", 1, 12345)
    core = protocol.models.get_model_core(model_id)
    assert core.exists and core.proof_mode == 0 and not core.deprecated

    stake = 2 * ETHER
    operators = [new_account() for _ in range(3)]
    for op in operators:
        protocol.as_account(op).nodes.register(f"http://{op.address[:8]}", [ModelShard(model_id)], stake=stake)
        node = protocol.nodes.get_node(op.address)
        assert node.stake == stake and node.capacity == 4 and node.in_flight == 0
        assert protocol.nodes.is_eligible(op.address, model_id)
    assert sorted(protocol.nodes.nodes_for_model(model_id)) == sorted(o.address for o in operators)
    assert protocol.nodes.eligible_stake(model_id) == 3 * stake
    _next_epoch(protocol, w3)

    params = RequestParams(replicas=3, quorum=2, commit_blocks=10, reveal_blocks=10)
    fee, deposit = protocol.market.quote(model_id, params)
    assert fee == 3 * protocol.market.min_fee() and deposit == 0
    input_hash = 987654321
    receipt, rid = protocol.as_account(requester).market.request_inference(model_id, "bafyinput", input_hash, params, fee)
    assert receipt["gasUsed"] < 200_000  # no draw at request time (constant gas)
    req = protocol.market.get_request(rid)
    assert req.status == Status.PENDING and req.fee == fee and req.requester == requester.address
    assert req.input_hash == input_hash.to_bytes(32, "big") and req.params == params
    assert req.draw_block == req.created_block + 1 and req.drawn_block == 0 and req.queue_deadline == req.draw_block
    # undrawn: the windows count from the draw, getRequest shows the latest (a draw at drawDeadline)
    assert req.draw_deadline == req.draw_block + 10 and req.commit_deadline == req.draw_deadline + 10
    ev = decode_event(protocol.events("InferenceRequested", from_block=req.created_block)[-1])
    assert (ev.request_id, ev.input_cid, ev.draw_block) == (rid, "bafyinput", req.draw_block)
    # the event's deadlines are upper bounds (drawBlock + queueBlocks + 2 * commitBlocks): never before the real ones
    assert (ev.commit_deadline, ev.reveal_deadline) == (req.draw_block + 20, req.draw_block + 30)
    assert ev.commit_deadline >= req.commit_deadline

    mine(w3, max(0, req.draw_block + 1 - w3.eth.block_number))
    preview = protocol.market.preview_committee(rid)
    assert sorted(preview) == sorted(o.address for o in operators)

    output_hash = (2**200 + 7) % FIELD
    salts = {op.address: secrets.token_bytes(32) for op in operators}
    for op in operators:  # the first commit draws
        protocol.as_account(op).market.commit(rid, commitment_hash(rid, output_hash, salts[op.address], op.address))
    assert sorted(protocol.market.get_committee(rid)) == sorted(preview)
    assert protocol.nodes.get_node(operators[0].address).in_flight == 1
    drawn = decode_event(protocol.events("CommitteeDrawn", from_block=req.created_block)[-1])
    req = protocol.market.get_request(rid)
    assert req.drawn_block == drawn.block_number and req.commit_deadline == drawn.block_number + 10
    assert (drawn.commit_deadline, drawn.reveal_deadline, drawn.finalize_after) == (
        req.commit_deadline, req.reveal_deadline, req.finalize_after)
    escrow_before = protocol.market.total_escrowed()
    for op in operators:
        protocol.as_account(op).market.reveal(rid, output_hash, salts[op.address], "bafyoutput")
        rv = protocol.market.get_reveal(rid, op.address)
        assert rv.revealed and rv.output_hash == output_hash.to_bytes(32, "big")
    revealed = [decode_event(e) for e in protocol.events("Revealed", from_block=req.created_block)]
    assert {(r.node, r.output_cid) for r in revealed if r.request_id == rid} == {(o.address, "bafyoutput") for o in operators}

    # consensus-only model, no callback, all three agree: the last reveal settled it (no finalize transaction)
    with pytest.raises(ContractError) as ei:
        protocol.as_account(requester).market.finalize(rid)
    assert ei.value.error_name == "AlreadyFinalized"
    req = protocol.market.get_request(rid)
    assert req.status == Status.ACCEPTED and req.output_hash == output_hash.to_bytes(32, "big")
    assert protocol.market.total_escrowed() == escrow_before - fee
    assert protocol.nodes.get_node(operators[0].address).in_flight == 0

    assert sum(protocol.market.withdrawable(o.address) for o in operators) == fee
    for op in operators:
        before = w3.eth.get_balance(op.address)
        owed = protocol.market.withdrawable(op.address)
        receipt = protocol.as_account(op).market.withdraw()
        cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert w3.eth.get_balance(op.address) == before + owed - cost
        assert protocol.market.withdrawable(op.address) == 0

    finals = [decode_event(e) for e in protocol.events("Finalized", from_block=req.created_block)]
    finals = [f for f in finals if f.request_id == rid]
    assert len(finals) == 1 and finals[0].status == Status.ACCEPTED and finals[0].paid_count == 3
    market_bal = w3.eth.get_balance(protocol.market.address)
    assert market_bal == protocol.market.total_escrowed() + protocol.market.total_withdrawable()


def test_invalid_input_consensus_pays_the_committee(protocol: Protocol, new_account, w3: Web3) -> None:
    model_id, operators = _staked_model(protocol, new_account, w3, 2, ETHER)
    requester = new_account()
    params = RequestParams(replicas=2, quorum=2, commit_blocks=10, reveal_blocks=10)
    fee = protocol.market.quote(model_id, params)[0]
    _, rid = protocol.as_account(requester).market.request_inference(model_id, "bafybad", 1, params, fee)
    mine(w3, 2)
    for op in operators:
        protocol.as_account(op).market.commit(rid, commitment_hash(rid, INVALID_INPUT, b"\x01" * 32, op.address))
    for op in operators:
        protocol.as_account(op).market.reveal(rid, INVALID_INPUT, b"\x01" * 32, "")  # the last one settles
    assert protocol.market.get_request(rid).status == Status.INVALID_INPUT
    # V2: the requester pays the committee for the check
    assert protocol.market.withdrawable(requester.address) == 0
    assert sum(protocol.market.withdrawable(o.address) for o in operators) == fee


def test_revert_is_decoded_custom_error(protocol: Protocol, new_account, w3: Web3) -> None:
    stranger = new_account()
    model_id, _ = _staked_model(protocol, new_account, w3, 1, ETHER)
    params = RequestParams(replicas=1, quorum=1, commit_blocks=10, reveal_blocks=10)
    _, rid = protocol.as_account(new_account()).market.request_inference(model_id, "bafyin", 5, params, 10**16)
    mine(w3, 2)
    with pytest.raises(ContractError) as ei:
        protocol.as_account(stranger).market.commit(rid, b"\x02" * 32)
    err = ei.value
    assert err.contract == "InferenceMarket" and err.error_name == "NotCommitteeMember"
    assert err.error_args == {"requestId": rid, "caller": stranger.address}
    assert str(err).startswith(f"InferenceMarket reverted in commit: NotCommitteeMember(requestId={rid}, caller=0x")

    with pytest.raises(ContractError) as ei:
        protocol.as_account(new_account()).nodes.register("http://n", [ModelShard(model_id)], stake=ETHER // 2)
    assert ei.value.error_name == "InsufficientStake"
    assert ei.value.error_args == {"provided": ETHER // 2, "required": ETHER}

    with pytest.raises(ContractError) as ei:  # a revert in a read call is decoded the same way
        protocol.models.get_model(b"\x09" * 32)
    assert ei.value.error_name == "ModelNotFound" and ei.value.error_args["modelId"] == "0x" + "09" * 32

    with pytest.raises(ContractError) as ei:  # V2 windows have protocol minimums
        protocol.as_account(new_account()).market.request_inference(
            model_id, "bafyin", 5, RequestParams(replicas=1, quorum=1, commit_blocks=1, reveal_blocks=10), 10**16)
    assert ei.value.error_name == "InvalidCommitBlocks"


def test_web3_gas_estimate_is_enough_for_request_inference(protocol: Protocol, new_account, w3: Web3) -> None:
    """Attack 12 (chain level): the request's gas does not depend on a draw, so the plain estimate holds."""
    model_id, _ = _staked_model(protocol, new_account, w3, 3, ETHER)
    requester = new_account()
    params = RequestParams(replicas=3, quorum=2, commit_blocks=10, reveal_blocks=10)
    fn = protocol.market.contract.functions.requestInference(model_id, "bafyx", (7).to_bytes(32, "big"), params.to_abi())
    value = protocol.market.quote(model_id, params)[0]
    est = fn.estimate_gas({"from": requester.address, "value": value})
    receipt, _ = protocol.as_account(requester).market.request_inference(model_id, "bafyx", 7, params, value, gas=est)
    assert receipt["status"] == 1 and receipt["gasUsed"] <= est


def test_helpers_match_contract(protocol: Protocol, new_account) -> None:
    prover = new_account().address
    for rid in (1, 2**64 + 3, 2**255):
        assert request_binding(rid, prover) == protocol.market.request_binding(rid, prover)
        assert 0 <= request_binding(rid, prover) < FIELD


def test_unbond_after_delay_with_mined_blocks(protocol: Protocol, new_account, w3: Web3) -> None:
    op = new_account()
    model_id = _register_model(protocol, new_account())
    po = protocol.as_account(op)
    po.nodes.register("http://n", [ModelShard(model_id)], stake=ETHER)
    po.nodes.set_capacity(8)
    assert protocol.nodes.get_node(op.address).capacity == 8
    r = po.nodes.request_unbond()
    at = protocol.nodes.withdrawable_at(op.address)
    assert at == r["blockNumber"] + protocol.nodes.unbonding_delay()
    assert not protocol.nodes.is_eligible(op.address, model_id)
    with pytest.raises(ContractError) as ei:
        po.nodes.withdraw_stake()
    assert ei.value.error_name == "UnbondingNotElapsed"
    mine(w3, max(0, at - w3.eth.block_number))
    before = w3.eth.get_balance(op.address)
    r = po.nodes.withdraw_stake()
    assert w3.eth.get_balance(op.address) == before + ETHER - r["gasUsed"] * r["effectiveGasPrice"]
    assert not protocol.nodes.get_node(op.address).registered


def test_every_contract_function_has_a_wrapper_method() -> None:
    """One snake_case method per contract function: a new contract function without a wrapper fails here."""
    import re

    from verinfer.chain import artifacts
    from verinfer.chain import protocol as proto

    for cls in (proto.NodeRegistry, proto.ModelRegistry, proto.InferenceMarket, proto.ExampleConsumer):
        names = {e["name"] for e in artifacts.load(cls.NAME).abi if e.get("type") == "function"}
        for n in names:
            snake = n.lower() if n.isupper() or "_" in n else re.sub(r"(?<!^)(?=[A-Z])", "_", n).lower()
            assert callable(getattr(cls, snake, None)), f"{cls.NAME}.{n} has no wrapper method {snake}()"


def test_deploy_with_custom_params_and_govern(automine_devnet) -> None:
    from verinfer.chain.deploy import deploy_protocol, has_timelock_artifact

    w3 = automine_devnet.w3
    owner = automine_devnet.accounts[0]
    params = ProtocolParams(min_stake=3 * ETHER, unbonding_delay=30, epoch_length=10, min_fee=5, slash_amount=ETHER // 2,
                            min_commit_blocks=12, min_reveal_blocks=600, proof_blocks=30, callback_gas_price=10**9)
    m = deploy_protocol(w3, owner, params)
    assert m.params == params and m.deployer == owner.address and is_deployed(w3, m)
    p = Protocol(w3, m, owner)
    assert (p.nodes.min_stake(), p.nodes.unbonding_delay(), p.nodes.epoch_length()) == (3 * ETHER, 30, 10)
    assert (p.market.min_fee(), p.market.slash_amount(), p.market.proof_blocks()) == (5, ETHER // 2, 30)
    assert (p.market.min_commit_blocks(), p.market.min_reveal_blocks()) == (12, 600)
    assert has_timelock_artifact()
    assert m.timelock and p.market.owner() == m.timelock and isinstance(p.timelock, TimelockController)
    with pytest.raises(ContractError):  # the deployer EOA no longer owns the market
        p.market.set_min_fee(7)
    p.govern(p.market, "setMinFee", 7)  # schedule + execute through the timelock (minDelay 0 on the devnet)
    assert p.market.min_fee() == 7
    with pytest.raises(ContractError) as ei:  # governance is bounded by the contract
        p.govern(p.market, "setProofBlocks", 5)
    assert ei.value.error_name in ("InvalidParameter", "FailedCall", "TimelockUnexpectedOperationState")


def test_timelock_owns_governed_contracts(protocol: Protocol, protocol_manifest: Manifest, accounts) -> None:
    """issue 7: NodeRegistry, InferenceMarket and AttestationRegistry are owned by the TimelockController; the
    deployer EOA's direct owner call reverts (OwnableUnauthorizedAccount), the same call through govern succeeds."""
    from verinfer.chain.attestation_registry import registry_of

    tl = protocol_manifest.timelock
    assert tl is not None and protocol.timelock is not None and protocol.timelock.address == tl
    registry = registry_of(protocol)
    assert protocol.nodes.owner() == tl and protocol.market.owner() == tl and registry.owner() == tl
    assert protocol.timelock.get_min_delay() == 0  # devnet only (docs/chain.md)
    deployer = accounts[0].address
    assert protocol.account.address == deployer
    for call in (lambda: protocol.nodes.set_min_stake(2 * ETHER),
                 lambda: protocol.market.set_slash_amount(ETHER // 20),
                 lambda: registry.set_measurement_allowed(b"\x07" * 32, True)):
        with pytest.raises(ContractError) as ei:
            call()
        assert ei.value.error_name == "OwnableUnauthorizedAccount"
    old_stake, old_slash = protocol.nodes.min_stake(), protocol.market.slash_amount()
    try:
        protocol.govern(protocol.nodes, "setMinStake", 2 * ETHER)
        protocol.govern(protocol.market, "setSlashAmount", ETHER // 20)
        protocol.govern(registry, "setMeasurementAllowed", b"\x07" * 32, True)
        assert protocol.nodes.min_stake() == 2 * ETHER and protocol.market.slash_amount() == ETHER // 20
        assert registry.measurement_allowed(b"\x07" * 32)
    finally:
        protocol.govern(protocol.nodes, "setMinStake", old_stake)
        protocol.govern(protocol.market, "setSlashAmount", old_slash)
        protocol.govern(registry, "setMeasurementAllowed", b"\x07" * 32, False)
    assert protocol.nodes.min_stake() == old_stake and protocol.market.slash_amount() == old_slash


def test_deploy_refuses_short_timelock_off_the_devnet(automine_devnet) -> None:
    """A zero timelock delay is allowed only on chain 31337 (the deploy profile, which knows the block time,
    requires delay > unbonding delay: tests/test_deploy_profile.py)."""
    from verinfer.chain.deploy import deploy_protocol

    w3 = automine_devnet.w3
    w3.provider.make_request("anvil_setChainId", [1337])
    try:
        assert w3.eth.chain_id == 1337
        with pytest.raises(ConfigError, match="needs a timelock delay longer than the unbonding delay"):
            deploy_protocol(w3, automine_devnet.accounts[0], ProtocolParams(unbonding_delay=20))
    finally:
        w3.provider.make_request("anvil_setChainId", [31337])
    assert w3.eth.chain_id == 31337


def test_cursor_decodes_committee_drawn(protocol: Protocol, new_account, w3: Web3) -> None:
    model_id, operators = _staked_model(protocol, new_account, w3, 1, ETHER)
    start = w3.eth.block_number
    params = RequestParams(replicas=1, quorum=1, commit_blocks=10, reveal_blocks=10)
    _, rid = protocol.as_account(new_account()).market.request_inference(model_id, "bafyc", 3, params, 10**16)
    mine(w3, 2)
    protocol.as_account(operators[0]).market.draw(rid)
    cur = protocol.market.cursor(["InferenceRequested", "CommitteeDrawn"], MemoryCursorStore(), start_block=start)
    evs = [decode_event(e) for e in cur.poll()]
    drawn = [e for e in evs if getattr(e, "committee", None) is not None and e.request_id == rid]
    assert drawn and drawn[0].committee == [operators[0].address]
