"""Ether amounts: the one parser and the one formatter behind every flag, profile field and message.

Amounts are exact (Decimal, never float): an amount with more decimals than its unit holds is refused,
not rounded, so `--stake 1.0000000000000000001` cannot silently stake less than the user typed.
"""

from __future__ import annotations

import re
from decimal import Decimal

from verinfer.constants import ETHER, GWEI

_UNITS = {"wei": 1, "gwei": GWEI, "ether": ETHER, "eth": ETHER}
_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]+)?\s*$")


class AmountError(ValueError):
    """An amount the user typed cannot be read; the message is one line naming the field."""


def parse_amount(value: int | str, what: str = "amount", *, default_unit: str = "ether",
                 positive: bool = False) -> int:
    """Wei from `1.5`, `0.5eth`, `2 gwei`, `1000wei` or an int (already wei).

    A number without a unit is read in `default_unit` (ether for CLI flags, wei for deploy profiles).
    """
    if isinstance(value, bool):
        raise AmountError(f"{what} must be an amount, not a boolean")
    if isinstance(value, int):
        wei = value
    else:
        text = str(value)
        if text.strip().startswith("-"):
            raise AmountError(f"{what} must be {'positive' if positive else 'non-negative'}, got {value!r}")
        if text.strip().lower() in ("nan", "inf", "infinity"):
            raise AmountError(f"{what} must be a finite amount, got {value!r}")
        m = _AMOUNT.match(text)
        if not m:
            raise AmountError(f"{what} must be a decimal amount like 1.5 (ether), 2 gwei or 1000wei, got {value!r}")
        number, unit = m.group(1), (m.group(2) or default_unit).lower()
        if unit not in _UNITS:
            raise AmountError(f"{what} has an unknown unit {unit!r} (use wei, gwei or ether), got {value!r}")
        exact = Decimal(number) * _UNITS[unit]
        if exact != exact.to_integral_value():
            places = len(str(_UNITS[unit])) - 1
            raise AmountError(f"{what} has more than {places} decimals for an amount in {unit}: {value!r}")
        wei = int(exact)
    if wei < 0:
        raise AmountError(f"{what} must be {'positive' if positive else 'non-negative'}, got {value!r}")
    if positive and wei == 0:
        raise AmountError(f"{what} must be positive, got {value!r}")
    return wei


def format_ether(wei: int) -> str:
    """`1500000000000000000` → `1.5 ETH`, exactly (no float rounding of small or huge amounts)."""
    s = format(Decimal(wei) / Decimal(ETHER), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return f"{s} ETH"
