from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from switchyard_router import clock
from switchyard_router.adapters import Usage
from switchyard_router.table import Pricing
from switchyard_router.usage import UsageLedger, UsageReport, cost_of, period_of

PRICE = Pricing(
    input_per_million_tokens=Decimal("2.50"),
    output_per_million_tokens=Decimal("10"),
    cached_input_per_million_tokens=Decimal("1.25"),
)


def test_cost_is_exact_decimal_with_cached_tokens_at_their_price():
    usage = Usage(input_tokens=1000, output_tokens=200, cached_input_tokens=400, reported=True)
    # 600 fresh x 2.50 + 400 cached x 1.25 + 200 out x 10, per million
    assert cost_of(usage, PRICE) == Decimal("0.004")


def test_cached_tokens_cost_full_price_without_a_cached_price():
    plain = Pricing(input_per_million_tokens=Decimal("1"), output_per_million_tokens=Decimal("2"))
    usage = Usage(input_tokens=10, output_tokens=5, cached_input_tokens=4, reported=True)
    assert cost_of(usage, plain) == Decimal("0.00002")


def test_cache_writes_cost_their_own_price_when_given():
    usage = Usage(
        input_tokens=1000, output_tokens=0, cached_input_tokens=400, cache_write_tokens=500, reported=True
    )
    written = Pricing(
        input_per_million_tokens=Decimal("2"),
        output_per_million_tokens=Decimal("10"),
        cached_input_per_million_tokens=Decimal("0.2"),
        cache_write_per_million_tokens=Decimal("2.5"),
    )
    # 100 fresh x 2 + 400 read x 0.2 + 500 written x 2.5, per million
    assert cost_of(usage, written) == Decimal("0.00153")
    # Without a write price, written tokens cost the input price.
    assert cost_of(usage, written.model_copy(update={"cache_write_per_million_tokens": None})) == Decimal(
        "0.00128"
    )


def test_no_price_or_no_usage_is_unpriced_never_zero():
    assert cost_of(Usage(5, 5, reported=True), None) is None
    assert cost_of(Usage(), PRICE) is None


def test_ledger_accumulates_per_provider_model_and_month():
    ledger = UsageLedger(policy="chatbot")
    assert ledger.record("oa", "m", Usage(100, 50, reported=True), PRICE) == Decimal("0.00075")
    ledger.record("oa", "m", Usage(100, 50, reasoning_tokens=7, reported=True), PRICE)
    assert ledger.record("oa", "m", Usage(), PRICE) is None
    ledger.record("groq", "l", Usage(1, 1, reported=True), None)
    first = ledger.snapshot(table_hash="abc")
    assert first.sequence == 1 and first.policy == "chatbot" and first.table_hash == "abc"
    by_provider = {c.provider: c for c in first.counters}
    oa = by_provider["oa"]
    assert (oa.requests, oa.input_tokens, oa.output_tokens, oa.reasoning_tokens) == (3, 200, 100, 7)
    assert oa.cost_usd == Decimal("0.0015") and oa.unpriced_requests == 1
    assert by_provider["groq"].unpriced_requests == 1
    assert oa.period == period_of(datetime.now(UTC))
    assert ledger.snapshot(table_hash="abc", advance=False).sequence == 1
    final = ledger.snapshot(table_hash="abc", final=True)
    assert final.sequence == 2 and final.final
    assert final.incarnation == first.incarnation


def test_reports_round_trip_with_money_as_strings():
    ledger = UsageLedger()
    ledger.record("oa", "m", Usage(3, 3, reported=True), PRICE)
    text = ledger.snapshot(table_hash=None).model_dump_json(by_alias=True)
    assert '"costUSD":"0.0000375"' in text
    again = UsageReport.model_validate_json(text)
    assert again.counters[0].cost_usd == Decimal("0.0000375")


def test_period_is_the_utc_month():
    assert period_of(datetime(2026, 1, 31, 23, 59, tzinfo=UTC)) == "2026-01"


@pytest.mark.parametrize(
    ("last_second", "periods"),
    [
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), ["2026-12", "2027-01"]),
        (datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), ["2028-02", "2028-03"]),  # a leap day
        (datetime(2027, 4, 30, 23, 59, 59, tzinfo=UTC), ["2027-04", "2027-05"]),
    ],
)
def test_the_month_turns_over_in_the_ledger(last_second, periods):
    with clock.use(clock.ManualClock(last_second)) as manual:
        ledger = UsageLedger()
        ledger.record("oa", "m", Usage(1, 1, reported=True), None)
        manual.advance(1)
        ledger.record("oa", "m", Usage(1, 1, reported=True), None)
        report = ledger.snapshot(table_hash=None)
    assert [c.period for c in report.counters] == periods
    assert report.started_at == last_second and report.reported_at == last_second + timedelta(seconds=1)
