"""StageCourt through verinfer.chain on a real anvil: the pure receipt digest equals the contract's, a signed
lying receipt is disputed, a real staked jury (three full-model nodes) re-answers through the market, the
callback slashes the stage and the challenger withdraws; reverts are decoded; the deployment wires the court."""

from __future__ import annotations

import re
import secrets

import pytest
from web3 import Web3

from verinfer.chain import artifacts
from verinfer.chain.court import (
    RECEIPT_TYPEHASH,
    DisputeOpenedEvent,
    DisputeResolvedEvent,
    StageCourt,
    StageReceipt,
    Verdict,
    court_for,
    dispute_cost,
    dispute_events,
    get_dispute,
    open_dispute,
    receipt_digest,
    recover_receipt_signer,
    sign_receipt,
)
from verinfer.chain.devnet import mine
from verinfer.chain.errors import ContractError
from verinfer.chain.manifest import Manifest
from verinfer.chain.protocol import ModelInput, ModelShard, Protocol, Status, commitment_hash
from verinfer.constants import ETHER

INPUT_HASH = (12345).to_bytes(32, "big")
TRUE_OUT = (0x7777).to_bytes(32, "big")
LIE_OUT = (0x6666).to_bytes(32, "big")


def _lm_with_stage_and_jury(protocol: Protocol, new_account, w3: Web3) -> tuple[bytes, object, list]:
    """A 30-layer unproven model, a stage serving layers 10..20, three full-model jurors (next epoch)."""
    publisher, stage = new_account(), new_account()
    _, model_id = protocol.as_account(publisher).models.register_model(
        ModelInput(name=f"smollm2-{secrets.token_hex(4)}", weights_cid="bafyweights", commitment=1, num_layers=30))
    protocol.as_account(stage).nodes.register("http://stage", [ModelShard(model_id, 10, 20)], stake=2 * ETHER)
    jurors = [new_account() for _ in range(3)]
    for j in jurors:
        protocol.as_account(j).nodes.register(f"http://{j.address[:8]}", [ModelShard(model_id)], stake=2 * ETHER)
    n = protocol.nodes.epoch_length()
    mine(w3, n - w3.eth.block_number % n)
    return model_id, stage, jurors


def _court(protocol: Protocol, account=None) -> StageCourt:
    return court_for(protocol.as_account(account) if account is not None else protocol)


def test_deploy_wires_the_court(protocol: Protocol, protocol_manifest: Manifest) -> None:
    court = _court(protocol)
    assert protocol.court is not None and protocol.court.address == court.address
    assert protocol.nodes.court() == court.address == protocol_manifest.addresses["StageCourt"]
    assert court.node_registry() == protocol.nodes.address and court.market() == protocol.market.address
    assert court.owner() == (protocol_manifest.timelock or protocol.address)
    assert court.receipt_typehash() == RECEIPT_TYPEHASH
    jp = court.jury_params()
    assert (jp.replicas, jp.quorum, jp.commit_blocks, jp.reveal_blocks, jp.queue_blocks) == (3, 2, 40, 40, 60)
    assert jp.callback_gas_limit == court.jury_callback_gas() == 400_000
    old = court.min_bond()
    protocol.govern("StageCourt", "setMinBond", ETHER // 2)  # owner-only, through the timelock
    try:
        assert court.min_bond() == ETHER // 2 and court.bond_for(b"\x01" * 32) == ETHER // 2
    finally:
        protocol.govern("StageCourt", "setMinBond", old)


def test_receipt_digest_equals_the_contract_and_signatures_recover(protocol: Protocol, new_account, w3: Web3) -> None:
    court = _court(protocol)
    stage = new_account()
    for lo, hi in ((10, 20), (0, 0xFFFF), (29, 30)):
        r = StageReceipt(secrets.token_bytes(32), lo, hi, secrets.token_bytes(32), secrets.token_bytes(32))
        pure = receipt_digest(w3.eth.chain_id, protocol.nodes.address, r.model_id, lo, hi, r.input_hash, r.output_hash)
        assert pure == court.receipt_digest(r) == r.digest(w3.eth.chain_id, protocol.nodes.address)
        sig = sign_receipt(stage, w3.eth.chain_id, protocol.nodes.address, r)
        assert len(sig) == 65
        assert recover_receipt_signer(w3.eth.chain_id, protocol.nodes.address, r, sig) == stage.address
        # another registry (another deployment) or chain: another digest, another signer
        assert recover_receipt_signer(w3.eth.chain_id + 1, protocol.nodes.address, r, sig) != stage.address


def test_lying_stage_is_slashed_by_a_real_jury(protocol: Protocol, new_account, w3: Web3) -> None:
    model_id, stage, jurors = _lm_with_stage_and_jury(protocol, new_account, w3)
    challenger = new_account()
    court = _court(protocol, challenger)
    chain_id, registry = w3.eth.chain_id, protocol.nodes.address
    receipt = StageReceipt(model_id, 10, 20, INPUT_HASH, LIE_OUT)
    sig = sign_receipt(stage, chain_id, registry, receipt)
    cost = dispute_cost(court, model_id)
    assert cost == court.bond_for(model_id) + 3 * protocol.market.min_fee() + 400_000 * protocol.market.callback_gas_price()
    stake_before = protocol.nodes.stake_of(stage.address)

    tx, dispute_id, rid = court.dispute(stage.address, receipt, sig, "bafystageinput")
    print(f"dispute gas {tx['gasUsed']}")
    assert tx["gasUsed"] < 450_000  # measured 2026-12-02: see docs/contracts.md "StageCourt"
    d = get_dispute(court, dispute_id)
    assert d.is_open and d.stage == stage.address and d.challenger == challenger.address
    assert (d.lo, d.hi, d.input_hash, d.claimed_output_hash, d.request_id) == (10, 20, INPUT_HASH, LIE_OUT, rid)
    assert d.bond + d.jury_cost == cost and court.dispute_of_request(rid) == dispute_id
    assert court.dispute_of_receipt(receipt.digest(chain_id, registry)) == dispute_id
    req = protocol.market.get_request(rid)
    assert req.requester == court.address and req.model_id == model_id and req.params == court.jury_params()

    # the jury: the first commit draws; every juror re-executes and answers the true output
    mine(w3, max(0, req.draw_block + 1 - w3.eth.block_number))
    salts = {j.address: secrets.token_bytes(32) for j in jurors}
    for j in jurors:
        protocol.as_account(j).market.commit(rid, commitment_hash(rid, TRUE_OUT, salts[j.address], j.address))
    for j in jurors:
        protocol.as_account(j).market.reveal(rid, TRUE_OUT, salts[j.address], "bafystageoutput")
    fin = protocol.as_account(jurors[0]).market.finalize(rid)
    print(f"finalize + StageWrong callback gas {fin['gasUsed']}")
    assert protocol.market.get_request(rid).status == Status.ACCEPTED
    assert not protocol.market.get_request(rid).callback_failed

    d = get_dispute(court, dispute_id)
    slashed = court.slash_amount()
    assert d.state == Verdict.STAGE_WRONG and slashed == protocol.nodes.min_stake() // 4
    assert protocol.nodes.stake_of(stage.address) == stake_before - slashed
    owed = court.withdrawable(challenger.address)
    assert owed == d.bond + slashed // 2

    evs = [e for e in dispute_events(court, from_block=req.created_block) if e.dispute_id == dispute_id]
    assert [type(e) for e in evs] == [DisputeOpenedEvent, DisputeResolvedEvent]
    opened, resolved = evs
    assert isinstance(opened, DisputeOpenedEvent) and isinstance(resolved, DisputeResolvedEvent)
    assert (opened.request_id, opened.stage, opened.claimed_output_hash, opened.model_id) == (
        rid, stage.address, LIE_OUT, model_id)
    assert (resolved.verdict, resolved.slashed, resolved.block_number) == (
        Verdict.STAGE_WRONG, slashed, fin["blockNumber"])

    before = w3.eth.get_balance(challenger.address)
    w = court.withdraw()
    assert w3.eth.get_balance(challenger.address) == before + owed - w["gasUsed"] * w["effectiveGasPrice"]
    assert court.withdrawable(challenger.address) == 0

    # no double jeopardy: the judged receipt cannot be disputed again (decoded custom error)
    with pytest.raises(ContractError) as ei:
        open_dispute(court, stage.address, receipt, sig, "bafystageinput")
    assert ei.value.error_name == "AlreadyDisputed"


def test_dispute_reverts_are_decoded(protocol: Protocol, new_account, w3: Web3) -> None:
    model_id, stage, _ = _lm_with_stage_and_jury(protocol, new_account, w3)
    court = _court(protocol, new_account())
    chain_id, registry = w3.eth.chain_id, protocol.nodes.address
    receipt = StageReceipt(model_id, 10, 20, INPUT_HASH, LIE_OUT)
    forged = sign_receipt(new_account(), chain_id, registry, receipt)
    with pytest.raises(ContractError) as ei:
        court.dispute(stage.address, receipt, forged, "bafystageinput")
    assert ei.value.error_name == "BadSignature"
    sig = sign_receipt(stage, chain_id, registry, receipt)
    with pytest.raises(ContractError) as ei:
        court.dispute(stage.address, receipt, sig, "bafystageinput", value=dispute_cost(court, model_id) - 1)
    assert ei.value.error_name == "WrongValue"
    other = StageReceipt(model_id, 0, 10, INPUT_HASH, LIE_OUT)
    with pytest.raises(ContractError) as ei:
        court.dispute(stage.address, other, sign_receipt(stage, chain_id, registry, other), "bafystageinput")
    assert ei.value.error_name == "ShardNotHeld"
    with pytest.raises(ContractError) as ei:
        court.get_dispute(10**9)
    assert ei.value.error_name == "UnknownDispute"


def test_every_court_function_has_a_wrapper_method() -> None:
    names = {e["name"] for e in artifacts.load("StageCourt").abi if e.get("type") == "function"}
    for n in names:
        snake = n.lower() if n.isupper() or "_" in n else re.sub(r"(?<!^)(?=[A-Z])", "_", n).lower()
        assert callable(getattr(StageCourt, snake, None)), f"StageCourt.{n} has no wrapper method {snake}()"


def test_expired_jury_refunds_the_challenger(protocol: Protocol, new_account, w3: Web3) -> None:
    """No full-model node serves the model: the jury is never drawn; resolve_expired expires the request at the
    market, then the court refunds bond + fee + deposit and releases the stage's hold."""
    publisher, stage, challenger = new_account(), new_account(), new_account()
    _, model_id = protocol.as_account(publisher).models.register_model(
        ModelInput(name=f"nojury-{secrets.token_hex(4)}", weights_cid="bafyweights", commitment=1, num_layers=30))
    protocol.as_account(stage).nodes.register("http://stage", [ModelShard(model_id, 0, 10)], stake=2 * ETHER)
    court = _court(protocol, challenger)
    receipt = StageReceipt(model_id, 0, 10, INPUT_HASH, LIE_OUT)
    sig = sign_receipt(stage, w3.eth.chain_id, protocol.nodes.address, receipt)
    cost = dispute_cost(court, model_id)
    dispute_id, rid = open_dispute(court, stage.address, receipt, sig, "bafystageinput")
    assert protocol.nodes.open_assignments(stage.address) == 1  # held until the verdict
    with pytest.raises(ContractError) as ei:
        court.resolve_expired(dispute_id)  # the draw window is still open: the market refuses to expire it
    assert ei.value.error_name == "TooEarlyToFinalize"
    mine(w3, protocol.market.get_request(rid).draw_deadline + 1 - w3.eth.block_number)
    court.resolve_expired(dispute_id)
    assert protocol.market.get_request(rid).status == Status.EXPIRED
    assert get_dispute(court, dispute_id).state == Verdict.NO_DECISION
    assert protocol.nodes.open_assignments(stage.address) == 0
    assert court.withdrawable(challenger.address) == cost
    before = w3.eth.get_balance(challenger.address)
    w = court.withdraw()  # pulls the court's refund from the market
    assert w3.eth.get_balance(challenger.address) == before + cost - w["gasUsed"] * w["effectiveGasPrice"]
