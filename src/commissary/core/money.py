"""Money: exact decimals with one rounding rule (half-up to the cent)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import PlainSerializer

CENT = Decimal("0.01")
MAX_PRICE = Decimal("100000.00")


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    return round_money(unit_price * quantity)


def money_text(value: Decimal) -> str:
    return f"{value:.2f}"


# Money in API answers: a string with two decimals ("12.50"), so no client parses it as a float.
MoneyOut = Annotated[Decimal, PlainSerializer(money_text, return_type=str, when_used="json")]
