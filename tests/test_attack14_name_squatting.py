"""Attack 14 (issue 7): name squatting in the SDK, on a real anvil.

Anyone can register any model name. Before the fix `Client.resolve_model` followed the newest
registration of a name from *any* publisher, so a squatter who registered "the same" model later
received every request the SDK sent by name. Now a name registered by two publishers is refused
(the error lists both), nothing is paid, and the requester picks the publisher or the 0x id.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from verinfer.chain.manifest import Manifest
from verinfer.chain.protocol import ModelInput, ModelShard, Protocol
from verinfer.chain.types import AmbiguousModelError, resolve_model_id
from verinfer.client import Client
from verinfer.inference.runtime import commitment
from verinfer.models.spec import builtin_path, load_builtin
from verinfer.storage import open_store

NAME = "digits-squat-target"
FEE = 10**16


def _publish(p: Protocol, weights_cid: str, num_layers: int) -> bytes:
    spec = load_builtin("digits-mlp")
    _, mid = p.models.register_model(ModelInput(
        name=NAME, weights_cid=weights_cid, commitment=commitment(spec), num_layers=num_layers))
    return mid


def test_sdk_refuses_a_squatted_name(protocol: Protocol, protocol_manifest: Manifest, protocol_manifest_path: Path,
                                     new_account, tmp_path: Path) -> None:
    store = open_store(root=tmp_path / "store")
    weights_cid = store.add(builtin_path("digits-mlp").read_bytes())
    spec = load_builtin("digits-mlp")
    honest: LocalAccount = new_account()
    squatter: LocalAccount = new_account()
    requester: LocalAccount = new_account()
    honest_id = _publish(protocol.as_account(honest), weights_cid, spec.num_layers)

    client = Client(protocol_manifest.rpc_url, protocol_manifest_path, requester, store)
    assert client.resolve_model(NAME) == honest_id  # one publisher: the name is unambiguous

    # The squatter registers the same name later (newer registeredAt, same spec so nodes would serve it).
    squat_id = _publish(protocol.as_account(squatter), weights_cid, spec.num_layers)
    assert squat_id != honest_id
    before = protocol.market.request_count()
    with pytest.raises(AmbiguousModelError) as err:
        client.submit(NAME, [0] * 64, FEE)
    msg = str(err.value)
    assert honest.address in msg and squatter.address in msg and "0x" + honest_id.hex() in msg
    assert "--publisher" in msg
    assert protocol.market.request_count() == before  # refused before anything was paid

    # Naming the publisher (or the id) reaches the honest model, never the squatter's.
    assert client.resolve_model(NAME, publisher=honest.address) == honest_id
    assert client.resolve_model(NAME, publisher=squatter.address) == squat_id
    for _ in range(3):  # staked nodes for the honest model (a V1 market draws the committee at request time)
        protocol.as_account(new_account()).nodes.register("http://127.0.0.1:1", [ModelShard(honest_id)], 10**18)
    rid = client.submit(client.resolve_model(NAME, publisher=honest.address), [0] * 64, FEE)
    assert bytes(protocol.market.get_request(rid).model_id) == honest_id

    # The same rule is the chain layer's: the operator CLI, auditor and node resolve through it too.
    with pytest.raises(AmbiguousModelError):
        resolve_model_id(protocol.models, NAME)
    # A deprecated squat no longer counts.
    protocol.as_account(squatter).models.deprecate(squat_id)
    assert resolve_model_id(protocol.models, NAME) == honest_id
