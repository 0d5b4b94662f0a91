"""The one ether-amount parser: exact, unit-aware, and every refusal a one-line message."""

from __future__ import annotations

import pytest

from verinfer.amounts import AmountError, format_ether, parse_amount


@pytest.mark.parametrize("text, wei", [
    ("1.5", 15 * 10**17), ("0.01", 10**16), (".5", 5 * 10**17), ("1000wei", 1000), ("2 gwei", 2 * 10**9),
    ("0.5eth", 5 * 10**17), ("3 ether", 3 * 10**18), ("0", 0), (" 7 ", 7 * 10**18), (42, 42),
])
def test_parse_amount_reads_ether_by_default(text: str | int, wei: int) -> None:
    assert parse_amount(text) == wei


def test_default_unit_wei_for_profiles() -> None:
    assert parse_amount("1000", default_unit="wei") == 1000
    assert parse_amount("0.1 ether", default_unit="wei") == 10**17


@pytest.mark.parametrize("text, needle", [
    ("-1", "non-negative"), ("abc", "like 1.5"), ("", "like 1.5"), ("1e18", "like 1.5"),
    ("0.0000000000000000001", "more than 18 decimals"), ("1.5 wei", "more than 0 decimals"), ("NaN", "finite"),
    ("1 btc", "unknown unit"), (True, "boolean"), (-5, "non-negative"),
])
def test_parse_amount_refuses_with_one_line(text: str, needle: str) -> None:
    with pytest.raises(AmountError, match=needle) as info:
        parse_amount(text, "--stake")
    assert "\n" not in str(info.value) and "--stake" in str(info.value)


def test_positive_refuses_zero() -> None:
    with pytest.raises(AmountError, match="positive"):
        parse_amount("0", "fee", positive=True)


@pytest.mark.parametrize("wei, text", [(15 * 10**17, "1.5 ETH"), (10**18, "1 ETH"), (1, "0.000000000000000001 ETH"),
                                       (0, "0 ETH"), (123 * 10**30, "123000000000000 ETH")])
def test_format_ether_is_exact(wei: int, text: str) -> None:
    assert format_ether(wei) == text
    assert parse_amount(text.removesuffix(" ETH")) == wei
