"""The protocol through verinfer.chain on a real anvil: deployment, the full request lifecycle,
decoded reverts, and the pure helpers agreeing with the contracts."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from web3 import Web3

from verinfer.chain.deploy import is_deployed
from verinfer.chain.devnet import mine
from verinfer.chain.errors import ContractError
from verinfer.chain.manifest import Manifest, ProtocolParams
from verinfer.chain.protocol import (
    FIELD,
    INVALID_INPUT,
    ModelInput,
    ModelShard,
    Protocol,
    RequestParams,
    Status,
    commitment_hash,
    model_id_for,
    request_binding,
)
from verinfer.errors import ConfigError

ETHER = 10**18


def _register_model(protocol: Protocol, publisher, name: str | None = None) -> bytes:
    p = protocol.as_account(publisher)
    name = name or f"model-{secrets.token_hex(4)}"
    _, model_id = p.models.register_model(ModelInput(name=name, weights_cid="bafyweights", commitment=12345))
    return model_id


def test_deploy_wires_and_configures(protocol: Protocol, protocol_manifest: Manifest, w3: Web3, accounts) -> None:
    assert is_deployed(w3, protocol_manifest)
    assert set(protocol_manifest.addresses) == {"NodeRegistry", "ModelRegistry", "InferenceMarket", "ExampleConsumer"}
    p = ProtocolParams()
    assert protocol.nodes.market() == protocol_manifest.addresses["InferenceMarket"]
    assert protocol.nodes.min_stake() == p.min_stake
    assert protocol.nodes.unbonding_delay() == p.unbonding_delay
    assert protocol.nodes.treasury() == accounts[0].address
    assert protocol.market.max_replicas() == p.max_replicas
    assert (protocol.market.min_commit_blocks(), protocol.market.max_commit_blocks()) == (2, 100)
    assert (protocol.market.min_reveal_blocks(), protocol.market.max_reveal_blocks()) == (2, 100)
    assert protocol.market.slash_amount() == p.slash_amount
    assert protocol.market.proof_verify_gas() == p.proof_verify_gas
    assert protocol.consumer.market() == protocol_manifest.addresses["InferenceMarket"]
    assert protocol.market.owner() == accounts[0].address


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


def test_full_request_lifecycle(protocol: Protocol, new_account, w3: Web3) -> None:
    publisher, requester = new_account(), new_account()
    operators = [new_account() for _ in range(3)]
    model_id = _register_model(protocol, publisher, "digits")
    assert model_id == model_id_for(publisher.address, "digits", 1)
    model = protocol.models.get_model(model_id)
    assert (model.publisher, model.name, model.version, model.commitment) == (publisher.address, "digits", 1, 12345)

    stake = 2 * ETHER
    for op in operators:
        protocol.as_account(op).nodes.register(f"http://{op.address[:8]}", [ModelShard(model_id)], stake=stake)
        assert protocol.nodes.get_node(op.address).stake == stake
        assert protocol.nodes.is_eligible(op.address, model_id, False)
    assert sorted(protocol.nodes.nodes_for_model(model_id)) == sorted(o.address for o in operators)

    fee = 3 * 10**16
    params = RequestParams(replicas=3, quorum=2, commit_blocks=10, reveal_blocks=10)
    input_hash = 987654321
    _, rid = protocol.as_account(requester).market.request_inference(model_id, "bafyinput", input_hash, params, fee)
    req = protocol.market.get_request(rid)
    assert req.status == Status.COMMITTING and req.fee == fee and req.requester == requester.address
    assert req.input_hash == input_hash.to_bytes(32, "big") and req.params == params
    committee = protocol.market.get_committee(rid)
    assert sorted(committee) == sorted(o.address for o in operators)

    output_hash = (2**200 + 7) % FIELD
    salts = {op.address: secrets.token_bytes(32) for op in operators}
    for op in operators:
        pa = protocol.as_account(op)
        pa.market.commit(rid, commitment_hash(rid, output_hash, salts[op.address], op.address))
    for op in operators:
        protocol.as_account(op).market.reveal(rid, output_hash, salts[op.address], "bafyoutput")
        rv = protocol.market.get_reveal(rid, op.address)
        assert rv.revealed and rv.output_hash == output_hash.to_bytes(32, "big")

    escrow_before = protocol.market.total_escrowed()
    protocol.as_account(requester).market.finalize(rid)
    req = protocol.market.get_request(rid)
    assert req.status == Status.ACCEPTED and req.agreeing_count == 3
    assert req.output_hash == output_hash.to_bytes(32, "big")
    assert protocol.market.total_escrowed() == escrow_before - fee

    share = protocol.market.withdrawable(operators[0].address)
    assert share > 0 and sum(protocol.market.withdrawable(o.address) for o in operators) == fee
    for op in operators:
        before = w3.eth.get_balance(op.address)
        owed = protocol.market.withdrawable(op.address)
        receipt = protocol.as_account(op).market.withdraw()
        cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert w3.eth.get_balance(op.address) == before + owed - cost
        assert protocol.market.withdrawable(op.address) == 0

    finals = [e for e in protocol.events("Finalized", from_block=req.created_block) if e.args["requestId"] == rid]
    assert len(finals) == 1 and finals[0].args["status"] == Status.ACCEPTED
    # Contract balance invariant: market holds exactly escrow + withdrawable.
    market_bal = w3.eth.get_balance(protocol.market.address)
    assert market_bal == protocol.market.total_escrowed() + protocol.market.total_withdrawable()


def test_invalid_input_consensus_refunds(protocol: Protocol, new_account, w3: Web3) -> None:
    operators = [new_account() for _ in range(2)]
    requester = new_account()
    model_id = _register_model(protocol, new_account())
    for op in operators:
        protocol.as_account(op).nodes.register("http://n", [ModelShard(model_id)], stake=ETHER)
    fee = 10**16
    _, rid = protocol.as_account(requester).market.request_inference(
        model_id, "bafybad", 1, RequestParams(replicas=2, quorum=2, commit_blocks=5, reveal_blocks=5), fee
    )
    for op in operators:
        protocol.as_account(op).market.commit(rid, commitment_hash(rid, INVALID_INPUT, b"\x01" * 32, op.address))
    for op in operators:
        protocol.as_account(op).market.reveal(rid, INVALID_INPUT, b"\x01" * 32, "")
    protocol.market.finalize(rid)
    assert protocol.market.get_request(rid).status == Status.INVALID_INPUT
    assert protocol.market.withdrawable(requester.address) == fee


def test_revert_is_decoded_custom_error(protocol: Protocol, new_account) -> None:
    stranger = new_account()
    model_id = _register_model(protocol, new_account())
    op = new_account()
    protocol.as_account(op).nodes.register("http://n", [ModelShard(model_id)], stake=ETHER)
    _, rid = protocol.as_account(new_account()).market.request_inference(
        model_id, "bafyin", 5, RequestParams(replicas=1, quorum=1, commit_blocks=5, reveal_blocks=5), 10**16
    )
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
    r = po.nodes.request_unbond()
    at = protocol.nodes.withdrawable_at(op.address)
    assert at == r["blockNumber"] + protocol.nodes.unbonding_delay()
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


def test_deploy_with_custom_params(automine_devnet) -> None:
    from verinfer.chain.deploy import deploy_protocol

    w3 = automine_devnet.w3
    owner, treasury = automine_devnet.accounts[0], automine_devnet.accounts[5]
    params = ProtocolParams(min_stake=3 * ETHER, unbonding_delay=7, min_fee=5, max_replicas=3,
                            min_commit_blocks=3, max_commit_blocks=4, min_reveal_blocks=600, max_reveal_blocks=700,
                            slash_amount=ETHER // 2, proof_verify_gas=500_000, treasury=treasury.address)
    m = deploy_protocol(w3, owner, params)
    assert m.params == params and m.deployer == owner.address and is_deployed(w3, m)
    p = Protocol(w3, m)
    assert (p.nodes.min_stake(), p.nodes.unbonding_delay(), p.nodes.treasury()) == (3 * ETHER, 7, treasury.address)
    assert (p.market.min_fee(), p.market.max_replicas(), p.market.slash_amount(), p.market.proof_verify_gas()) == (
        5, 3, ETHER // 2, 500_000)
    # reveal min (600) is above the contract's default max (500): the max must have been raised first
    assert (p.market.min_commit_blocks(), p.market.max_commit_blocks()) == (3, 4)
    assert (p.market.min_reveal_blocks(), p.market.max_reveal_blocks()) == (600, 700)
