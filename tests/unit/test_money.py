"""One written form for costs: plain fixed-point decimals at every edge."""

import json
import re
from decimal import Decimal

import pytest
from switchyard_operator.report_cli import _money
from switchyard_operator.spend import Totals, shown_cost
from switchyard_router.adapters import Usage
from switchyard_router.money import decimal_text
from switchyard_router.table import Pricing
from switchyard_router.usage import UsageLedger

PLAIN = re.compile(r"^[0-9]+(\.[0-9]*[1-9])?$")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1E-12"), "0.000000000001"),
        (Decimal("7.5E-7"), "0.00000075"),
        (Decimal(0), "0"),
        (Decimal("0E-12"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("1E+6"), "1000000"),
        (Decimal("1000000.000"), "1000000"),
        (Decimal("12345678901234567890"), "12345678901234567890"),
        (Decimal("1234567890.1234567890"), "1234567890.123456789"),
    ],
)
def test_costs_read_as_plain_decimals_at_the_edges(value, text):
    assert decimal_text(value) == text


@pytest.mark.parametrize("cost", ["1E-12", "0", "1E+6", "1234567890.1234567891"])
def test_every_place_a_cost_leaves_writes_it_plain(cost):
    # /usage and the usage report: a tiny price makes a cost str(Decimal) would write as 7.5E-7.
    ledger = UsageLedger(policy="p")
    price = Pricing(input_per_million_tokens=Decimal(cost), output_per_million_tokens=Decimal(0))
    ledger.record("openai", "m", Usage(input_tokens=1, reported=True), price)
    report = json.loads(ledger.snapshot(table_hash=None).model_dump_json(by_alias=True))
    (counter,) = report["counters"]
    assert PLAIN.match(counter["costUSD"]), counter["costUSD"]
    assert Decimal(counter["costUSD"]) == Decimal(cost) / 1_000_000
    # the table's prices, as compiled into the routes ConfigMap
    assert PLAIN.match(price.model_dump(mode="json", by_alias=True)["inputPerMillionTokens"])
    # the operator's ledger and status, and `switchyard report`
    totals = Totals(cost_usd=Decimal(cost))
    assert PLAIN.match(totals.model_dump(mode="json", by_alias=True)["costUSD"])
    assert PLAIN.match(shown_cost(Decimal(cost)))
    assert PLAIN.match(_money(Decimal(cost)))
