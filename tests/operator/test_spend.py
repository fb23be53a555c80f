"""The fold (switchyard_operator.spend): replays, reordering, restarts, final, stale, month rollover."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from switchyard_operator.spend import (
    FoldSettings,
    Ledger,
    Totals,
    decimal_text,
    expire,
    fold,
    is_folded,
    merge_patch_for,
    parse_ledger,
    shown_cost,
    spend_status,
    usage_of,
)
from switchyard_router import clock
from switchyard_router.adapters import Usage
from switchyard_router.table import Pricing
from switchyard_router.usage import UsageLedger, UsageReport, period_of

T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
PRICE = Pricing(input_per_million_tokens=Decimal("0.35"), output_per_million_tokens=Decimal("0.40"))
SETTINGS = FoldSettings(stale_after=timedelta(seconds=150), heartbeat=timedelta(seconds=50), keep_folded=4)


@pytest.fixture(autouse=True)
def on_t0():
    """Routers stamp usage with their clock's month: put them in T0's month, whatever today is."""
    with clock.use(clock.ManualClock(T0)) as manual:
        yield manual


def router(pod="pod-a", policy="chat"):
    ledger = UsageLedger(policy=policy)
    ledger.pod = pod
    return ledger


def serve(ledger, n, provider="openai", model="m1", tokens=(1000, 37)):
    """Serve n requests; returns the exact sum of their costs."""
    cost = Decimal(0)
    for i in range(n):
        usage = Usage(input_tokens=tokens[0] + i, output_tokens=tokens[1] + i, reported=True)
        cost += ledger.record(provider, model, usage, PRICE)
    return cost


def run(ledger_state, reports, now=T0, provider="openai", **kw):
    for report in reports:
        ledger_state = fold(ledger_state, report, provider, now, SETTINGS, **kw)
    return ledger_state


def test_replayed_and_reordered_reports_count_once():
    r = router()
    expected = Decimal(0)
    reports = []
    for _ in range(6):
        expected += serve(r, 3)
        reports.append(r.snapshot(table_hash="h"))
    in_order = run(None, reports)
    assert in_order.total().cost_usd == expected and in_order.total().requests == 18
    shuffled = reports * 3
    random.Random(5).shuffle(shuffled)
    state = run(None, shuffled)
    assert state.total() == in_order.total()
    # a stale (lower sequence) report after the newest changes nothing
    assert run(state, reports[:3]) == state
    assert is_folded(state, reports[2], "openai", T0)


def test_lost_reports_are_made_up_by_the_next_one():
    r = router()
    expected = serve(r, 2)
    r.snapshot(table_hash="h")  # lost
    expected += serve(r, 5)
    state = run(None, [r.snapshot(table_hash="h")])
    assert state.total().cost_usd == expected and state.total().requests == 7


def test_other_providers_and_months_are_not_counted():
    r = router()
    mine = serve(r, 2)
    serve(r, 3, provider="anthropic")
    report = r.snapshot(table_hash="h")
    report.counters.append(report.counters[0].model_copy(update={"period": "2026-10", "requests": 99}))
    state = run(None, [report])
    assert state.total().requests == 2 and state.total().cost_usd == mine
    assert run(None, [report], provider="groq") == Ledger(period="2026-11")
    assert usage_of(report, "anthropic", "2026-11").requests == 3


def test_final_folds_into_base_and_late_reports_add_nothing():
    r = router()
    serve(r, 4)
    early = r.snapshot(table_hash="h")
    final = r.snapshot(table_hash="h", final=True)
    state = run(None, [early, final])
    assert state.live == {} and state.base.requests == 4 and state.folded == (r.incarnation,)
    assert run(state, [early, final, final]) == state
    assert is_folded(state, final, "openai", T0)
    # a final first (the earlier one lost), then the earlier one replayed
    assert run(None, [final, early]).total().requests == 4


def test_restarted_container_supersedes_its_predecessor():
    old = router("pod-a")
    total = serve(old, 3)
    state = run(None, [old.snapshot(table_hash="h")])
    new = router("pod-a")
    new.started_at = old.started_at + timedelta(seconds=40)
    total += serve(new, 2)
    later = T0 + timedelta(seconds=40)
    state = run(state, [new.snapshot(table_hash="h")], now=later)
    assert set(state.live) == {new.incarnation} and old.incarnation in state.folded
    assert state.total().cost_usd == total and state.total().requests == 5
    # the old process's last report, replayed, is ignored
    assert run(state, [old.snapshot(table_hash="h")], now=later) == state


def test_several_routers_and_a_gone_pod():
    a, b = router("pod-a"), router("pod-b")
    total = serve(a, 3) + serve(b, 4)
    ra, rb = a.snapshot(table_hash="h"), b.snapshot(table_hash="h")
    state = run(None, [ra, rb])
    assert len(state.live) == 2 and state.total().cost_usd == total
    gone = fold(state, rb, "openai", T0, SETTINGS, gone=True)  # pod-b evicted: its last report is all
    assert set(gone.live) == {a.incarnation} and gone.total() == state.total()


def test_stale_incarnations_retire_and_cannot_come_back():
    r = router()
    serve(r, 2)
    state = run(None, [r.snapshot(table_hash="h")])
    later = T0 + timedelta(seconds=151)
    quiet = expire(fold(state, None, "openai", later, SETTINGS), later, SETTINGS)
    assert quiet.live == {} and quiet.base.requests == 2
    serve(r, 5)
    assert run(quiet, [r.snapshot(table_hash="h")], now=later).total().requests == 2


def test_idle_router_heartbeat_keeps_it_live_without_a_write_per_report():
    r = router()
    serve(r, 1)
    state = run(None, [r.snapshot(table_hash="h")])
    # same usage, newer sequence, fresh entry: unchanged (no status write)
    assert fold(state, r.snapshot(table_hash="h"), "openai", T0 + timedelta(seconds=15), SETTINGS) == state
    beat = fold(state, r.snapshot(table_hash="h"), "openai", T0 + timedelta(seconds=60), SETTINGS)
    assert beat.live[r.incarnation].seen_at == T0 + timedelta(seconds=60)
    assert expire(beat, T0 + timedelta(seconds=200), SETTINGS).live  # not stale


def test_month_rollover_starts_from_zero():
    r = router()
    moment = datetime(2026, 11, 30, 23, 59, 50, tzinfo=UTC)
    r._totals.clear()
    r.record("openai", "m1", Usage(input_tokens=10, output_tokens=1, reported=True), PRICE)
    report = r.snapshot(table_hash="h")
    report = report.model_copy(update={"counters": [c.model_copy(update={"period": "2026-11"}) for c in report.counters]})
    state = run(None, [report], now=moment)
    assert state.period == "2026-11" and state.total().requests == 1
    december = moment + timedelta(seconds=20)
    rolled = fold(state, None, "openai", december, SETTINGS)
    assert rolled.period == "2026-12" and rolled.total() == Totals() and r.incarnation in rolled.live
    nov_counter = report.counters[0]
    dec_counter = nov_counter.model_copy(update={"period": "2026-12", "requests": 2, "cost_usd": Decimal("0.5")})
    next_report = report.model_copy(update={"sequence": 2, "counters": [nov_counter, dec_counter]})
    dec = run(rolled, [next_report, report], now=december)
    assert dec.total().requests == 2 and dec.total().cost_usd == Decimal("0.5")


@pytest.mark.parametrize(
    "last_second",
    [
        datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
        datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC),  # the year turns too
        datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),  # a leap day ends the month
    ],
)
def test_a_late_report_of_the_closed_month_counts_there_exactly_once(on_t0, last_second):
    on_t0.set(last_second - timedelta(seconds=30))
    r = router()
    closed = serve(r, 2)
    state = run(None, [r.snapshot(table_hash="h")], now=clock.now())
    on_t0.set(last_second)
    closed += serve(r, 3)  # served in the month's last second, not reported before it ends
    on_t0.advance(5)  # the operator's clock turns the month first
    state = fold(state, None, "openai", clock.now(), SETTINGS)
    this_month = serve(r, 4)
    on_t0.advance(15)
    late = r.snapshot(table_hash="h")
    state = run(state, [late, late], now=clock.now())
    assert state.period == period_of(clock.now()) and state.previous is not None
    assert state.previous.period == period_of(last_second)
    assert state.previous.total().cost_usd == closed and state.previous.total().requests == 5
    assert state.total().cost_usd == this_month and state.total().requests == 4
    assert is_folded(state, late, "openai", clock.now())
    shown = spend_status(state, "now")
    assert shown["lastMonth"]["period"] == period_of(last_second)
    assert Decimal(shown["lastMonth"]["costUSD"]) == shown_quantized(closed)
    assert shown["requests"] == 4 and shown["lastMonth"]["requests"] == 5
    # the ledger goes to the status and comes back: the same state
    assert parse_ledger(shown) == state


def shown_quantized(value: Decimal) -> Decimal:
    return Decimal(shown_cost(value))


def test_the_closed_month_shrinks_to_its_base_and_only_the_last_one_is_kept(on_t0):
    on_t0.set(datetime(2026, 11, 30, 23, 59, 0, tzinfo=UTC))
    r = router()
    november = serve(r, 2)
    state = run(None, [r.snapshot(table_hash="h")], now=clock.now())
    on_t0.set(datetime(2026, 12, 1, 0, 0, 10, tzinfo=UTC))
    state = fold(state, None, "openai", clock.now(), SETTINGS)
    assert r.incarnation in state.previous.live
    # a live router's reports carry no news for November: no heartbeat rewrites the closed month
    on_t0.advance(60)
    serve(r, 1)
    before = state.previous
    state = run(state, [r.snapshot(table_hash="h")], now=clock.now())
    assert state.previous == before
    on_t0.advance(200)  # past the stale window since November last changed
    state = run(state, [r.snapshot(table_hash="h")], now=clock.now())  # December's heartbeat
    state = expire(state, clock.now(), SETTINGS)
    assert not state.previous.live and state.previous.total().cost_usd == november
    assert r.incarnation in state.live  # still live in December
    on_t0.set(datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC))
    state = fold(state, None, "openai", clock.now(), SETTINGS)
    assert state.previous.period == "2026-12" and state.previous.previous is None
    # a clock that goes back does not reopen a month
    assert fold(state, None, "openai", datetime(2026, 12, 31, tzinfo=UTC), SETTINGS) == state


def test_folded_list_is_bounded():
    state = None
    ids = []
    for i in range(6):
        r = router(f"pod-{i}")
        serve(r, 1)
        ids.append(r.incarnation)
        state = run(state, [r.snapshot(table_hash="h", final=True)])
    assert state.folded == tuple(ids[-4:]) and state.base.requests == 6


def test_status_carries_totals_and_ledger_together():
    r = router()
    serve(r, 3)
    report = r.snapshot(table_hash="h")
    report.counters[0] = report.counters[0].model_copy(
        update={"cost_usd": Decimal("1.0000000000009"), "cached_input_tokens": 5, "reasoning_tokens": 2,
                "unpriced_requests": 1})
    state = run(None, [report])
    status = spend_status(state, "2026-11-10T12:00:00Z")
    assert status["costUSD"] == "1"  # rounded down to 12 places; the ledger keeps it exactly
    assert status["ledger"]["live"][r.incarnation]["usage"]["costUSD"] == "1.0000000000009"
    assert (status["cachedInputTokens"], status["reasoningTokens"], status["unpricedRequests"]) == (5, 2, 1)
    assert status["liveRouters"] == 1
    assert parse_ledger(status) == state
    assert parse_ledger({}) is None and parse_ledger({"ledger": {"period": 3, "live": "x"}}) is None
    assert decimal_text(Decimal("3.5E-7")) == "0.00000035" and decimal_text(Decimal("0E-8")) == "0"
    assert shown_cost(Decimal("12.5")) == "12.5"


def test_merge_patch_deletes_what_is_gone():
    old = {"ledger": {"live": {"a": {"x": 1}, "b": {"x": 2}}, "base": {"requests": 1}}, "period": "p"}
    new = {"ledger": {"live": {"b": {"x": 3}}, "base": {"requests": 1}}, "period": "p"}
    assert merge_patch_for(old, new) == {"ledger": {"live": {"a": None, "b": {"x": 3}}}}
    assert merge_patch_for(None, new) == new


def test_exactness_over_many_routers_restarts_and_replays():
    """Randomised: routers start, serve, report (some reports lost or replayed), restart, stop
    with or without a final report; the folded total equals the sum of per-request costs."""
    rng = random.Random(11)
    settings = FoldSettings(stale_after=timedelta(hours=1), heartbeat=timedelta(seconds=50))
    now = T0
    expected = Decimal(0)
    requests = 0
    state: Ledger | None = None
    pods = {f"pod-{i}": router(f"pod-{i}") for i in range(4)}
    sent: list[UsageReport] = []
    for step in range(300):
        now += timedelta(seconds=5)
        pod = rng.choice(sorted(pods))
        r = pods[pod]
        n = rng.randint(0, 3)
        expected += serve(r, n, tokens=(rng.randint(1, 5000), rng.randint(1, 900)))
        requests += n
        report = r.snapshot(table_hash="h")
        if rng.random() < 0.8:
            state = fold(state, report, "openai", now, settings)
        sent.append(report)
        if rng.random() < 0.2:  # replay something old
            state = fold(state, rng.choice(sent), "openai", now, settings)
        if step % 37 == 0:  # graceful restart: the final report is folded, then a new process
            state = fold(state, r.snapshot(table_hash="h", final=True), "openai", now, settings)
            pods[pod] = router(pod)
            pods[pod].started_at = now
    for r in pods.values():  # the end: everyone stops gracefully
        state = fold(state, r.snapshot(table_hash="h", final=True), "openai", now, settings)
    assert state is not None and state.live == {}
    assert state.total().cost_usd == expected and state.total().requests == requests
