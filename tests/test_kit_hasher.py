"""The on-chain kit hasher equals verinfer's Python hashes and payload encoding (anvil, real contracts)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

import pytest
from web3 import Web3

from verinfer.chain import kit
from verinfer.chain.devnet import Devnet, funded_account, port_in_use
from verinfer.models.hashing import FIELD, hash_vector, poseidon
from verinfer.storage.unixfs import cid_of

KIT_PORTS = range(8750, 8800)  # this suite's anvil ports (kept apart from other suites)


def kit_devnet(tmp: Path) -> Devnet:
    """A fresh automining anvil on the first free port of KIT_PORTS."""
    port = next(p for p in KIT_PORTS if not port_in_use(p))
    return Devnet(port=port, state_dir=tmp, block_time=None, persist=False, n_accounts=4).start()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Web3, dict[str, str]]]:
    d = kit_devnet(tmp_path_factory.mktemp("kit-hasher"))
    try:
        w3 = d.w3
        acct = funded_account(w3)
        gas: dict[str, int] = {}
        addrs = kit.deploy_kit(w3, acct, gas=gas)
        print("\ndeploy_kit gas: " + ", ".join(f"{k} {v:,}" for k, v in gas.items()) + f"; total {sum(gas.values()):,}")
        assert set(gas) == set(addrs)
        yield w3, addrs
    finally:
        d.stop()


def test_poseidon_matches_python_every_arity(chain: tuple[Web3, dict[str, str]]) -> None:
    w3, addrs = chain
    rng = random.Random(7)
    for n in kit.POSEIDON_ARITIES:
        for inputs in ([0] * n, [FIELD - 1] * n, [rng.randrange(FIELD) for _ in range(n)]):
            assert kit.onchain_poseidon(w3, addrs["VerinferHasher"], inputs) == poseidon(inputs)


def test_hash_vector_matches_python(chain: tuple[Web3, dict[str, str]]) -> None:
    w3, addrs = chain
    rng = random.Random(11)
    cases = [([], 8), ([-128] * 64, 8), ([127] * 64, 8), ([5], 4)]
    for bits in (1, 4, 8, 16, 32, 64, 124, 248):
        half = 1 << (bits - 1)
        for length in (1, kit.max_length(bits) // 2 + 1, kit.max_length(bits)):
            cases.append(([rng.randrange(-half, half) for _ in range(length)], bits))
    # the digits model: 64 int8 pixels in, 10 int32 logits out
    cases.append(([rng.randrange(-128, 128) for _ in range(64)], 8))
    cases.append(([rng.randrange(-(1 << 31), 1 << 31) for _ in range(10)], 32))
    for xs, bits in cases:
        assert kit.onchain_hash(w3, addrs["VerinferHasher"], xs, bits) == hash_vector(xs, bits), (len(xs), bits)


def _custom_error(call, signature: str) -> None:
    """Assert that an eth_call reverts with the custom error `signature` (its selector leads the data)."""
    from web3.exceptions import ContractCustomError

    with pytest.raises(ContractCustomError) as info:
        call()
    selector = Web3.keccak(text=signature)[:4].hex()
    assert selector.removeprefix("0x") in str(info.value.args[0]), (signature, info.value.args[0])


def test_hasher_refuses_what_python_refuses(chain: tuple[Web3, dict[str, str]]) -> None:
    w3, addrs = chain
    h = addrs["VerinferHasher"]
    _custom_error(lambda: kit.onchain_hash(w3, h, [128], 8), "ValueOutOfRange(uint256,int256,uint256)")
    with pytest.raises(ValueError):
        hash_vector([128], 8)
    _custom_error(lambda: kit.onchain_hash(w3, h, [-129], 8), "ValueOutOfRange(uint256,int256,uint256)")
    too_long = [0] * (kit.max_length(8) + 1)
    _custom_error(lambda: kit.onchain_hash(w3, h, too_long, 8), "VectorTooLong(uint256,uint256)")
    _custom_error(lambda: kit.onchain_hash(w3, h, [0], 0), "InvalidBits(uint256)")
    _custom_error(lambda: kit.onchain_poseidon(w3, h, [FIELD, 1]), "NotFieldElement(uint256,uint256)")
    _custom_error(lambda: kit.onchain_poseidon(w3, h, [1] * 7), "InvalidArity(uint256)")


def test_input_document_and_cid_match_the_store(chain: tuple[Web3, dict[str, str]]) -> None:
    w3, addrs = chain
    c = kit.contract(w3, "VerinferHasher", addrs["VerinferHasher"])
    rng = random.Random(3)
    for xs, bits in (
        ([rng.randrange(-128, 128) for _ in range(64)], 8),
        ([0, -1, 2147483647, -2147483648, 10], 32),
        ([7], 8),
    ):
        doc, cid = c.functions.inputDocument(xs, bits).call()
        assert bytes(doc) == kit.input_document(xs, bits)
        assert cid == cid_of(bytes(doc)) == cid_of(kit.input_document(xs, bits))
        h, doc2, cid2 = c.functions.prepareInput(xs, bits).call()
        assert (int.from_bytes(h, "big"), bytes(doc2), cid2) == (hash_vector(xs, bits), bytes(doc), cid)


def test_deployed_poseidon_code_is_circomlibjs_runtime(chain: tuple[Web3, dict[str, str]]) -> None:
    """What runs on-chain is exactly the runtime the generator embedded (abi/PoseidonN.json deployedBytecode)."""
    w3, addrs = chain
    for n in kit.POSEIDON_ARITIES:
        code = w3.eth.get_code(addrs[f"Poseidon{n}"])
        assert "0x" + code.hex().removeprefix("0x") == kit.artifact(f"Poseidon{n}").deployed_bytecode


def test_python_kit_refuses_bad_input(chain: tuple[Web3, dict[str, str]]) -> None:
    from verinfer.errors import ConfigError

    w3, addrs = chain
    with pytest.raises(ConfigError, match="does not fit int8"):
        kit.input_document([200], 8)
    with pytest.raises(ConfigError, match="bits must be in"):
        kit.max_length(0)
    with pytest.raises(ConfigError, match="32 bytes"):
        kit.quote(w3, addrs["VerinferHasher"], "0x1234", (1, 1, 10, 10, 0))
