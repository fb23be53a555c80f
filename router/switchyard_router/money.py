"""The one written form of a cost: every USD figure that leaves a process goes through here."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer


def decimal_text(value: Decimal) -> str:
    """Plain fixed-point notation, no exponent, no trailing zeros: Decimal('7.5E-7') ->
    '0.00000075', Decimal('1E+6') -> '1000000' (str(Decimal) gives '7.5E-7' and '1E+6')."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# A Decimal that serializes to JSON in that form.
USD = Annotated[Decimal, PlainSerializer(decimal_text, when_used="json")]
