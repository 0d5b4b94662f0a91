"""Deployment profiles without a chain: units, seconds → blocks (rounded up), the contracts' bounds, shipped files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verinfer.amounts import parse_amount as _parse_amount
from verinfer.chain.manifest import ProtocolParams
from verinfer.chain.profile import DEVNET_PROFILE, DeployProfile, load_profile
from verinfer.constants import ETHER, GWEI
from verinfer.errors import ConfigError

PROFILES = Path(__file__).resolve().parent.parent / "deploy" / "profiles"


def parse_amount(value: int | str) -> int:
    """How a deploy profile reads an amount: wei unless a unit is given."""
    return _parse_amount(value, default_unit="wei")


def test_amounts_with_units() -> None:
    assert parse_amount("1 ether") == ETHER and parse_amount("0.1 ether") == ETHER // 10
    assert parse_amount("2 gwei") == 2 * GWEI and parse_amount("1.5gwei") == 15 * 10**8
    assert parse_amount(12345) == 12345 and parse_amount("7") == 7 and parse_amount("7 wei") == 7
    for bad in ("-1 ether", "1 finney", "0.0000000001 gwei", "ether", "1e18"):
        with pytest.raises(ValueError):
            parse_amount(bad)
    with pytest.raises(ValueError):
        parse_amount(True)  # type: ignore[arg-type]


def test_shipped_profiles() -> None:
    assert load_profile(PROFILES / "devnet.json").params() == DEVNET_PROFILE.params() == ProtocolParams()
    l2 = load_profile(PROFILES / "example-l2.json")
    p = l2.params()
    assert l2.chain_id == 84532 and l2.block_time_seconds == 2
    assert (p.min_commit_blocks, p.min_reveal_blocks, p.proof_blocks) == (60, 60, 300)
    assert (p.epoch_length, p.unbonding_delay, p.timelock_min_delay) == (900, 43200, 172800)
    assert p.slash_amount * 4 <= p.min_stake and l2.gas.max_fee_per_gas == 5 * GWEI and l2.gas.priority_fee == 10**6


def _with(tmp_path: Path, suffix: str = ".json", **changes: object) -> Path:
    data = json.loads((PROFILES / "devnet.json").read_text()) | changes
    path = tmp_path / f"p{suffix}"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"commit_window_seconds": 9}, "commit_window_seconds gives 9 blocks at 1.0 s per block; the contracts accept 10 .. 1000 blocks"),
    ({"block_time_seconds": 0.25, "proof_window_seconds": 300}, "proof_window_seconds gives 1200 blocks"),
    ({"epoch_seconds": 4}, "epoch_seconds gives 4 blocks"),
    ({"unbonding_delay_seconds": 200_000}, "unbonding_delay_seconds gives 200000 blocks"),
    ({"min_stake": "0.001 ether"}, "min_stake gives 1000000000000000 wei"),
    ({"slash_amount": "0.26 ether"}, "slash_amount gives 260000000000000000 wei; the contracts accept 0 .. min_stake / 4"),
    ({"min_fee": "2 ether"}, "min_fee gives"),
    ({"callback_gas_price": "1001 gwei"}, "callback_gas_price gives"),
    ({"timelock_min_delay_seconds": 10}, "timelock_min_delay_seconds must exceed unbonding_delay_seconds"),
    ({"attestation_verifiers": ["0x1234"]}, "attestation_verifiers: '0x1234' is not an address"),
    ({"min_fee": "1 finney"}, "unknown unit 'finney'"),
    ({"blocks_per_epoch": 3}, "blocks_per_epoch: Extra inputs are not permitted"),
])
def test_out_of_bounds_is_one_config_error(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_profile(_with(tmp_path, **changes))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_windows_round_up_and_unreadable_files(tmp_path: Path) -> None:
    prof = DeployProfile.model_validate(json.loads((PROFILES / "devnet.json").read_text())
                                        | {"block_time_seconds": 12, "commit_window_seconds": 121,
                                           "reveal_window_seconds": 120, "proof_window_seconds": 240,
                                           "epoch_seconds": 60, "unbonding_delay_seconds": 3600})
    assert (prof.params().min_commit_blocks, prof.params().min_reveal_blocks, prof.params().epoch_length) == (11, 10, 5)
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_profile(tmp_path / "missing.json")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_profile(broken)
