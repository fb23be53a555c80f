"""Folding routers' cumulative usage reports into one provider's monthly spend, exactly once.

Why the total neither loses nor double-counts (the argument, in one place):

1. A router process (an *incarnation*, a random id) never reports deltas. Each report is its whole
   cumulative usage since it started, numbered by a strictly increasing `sequence`
   (`switchyard_router.usage.UsageReport`). A later report therefore contains everything an
   earlier one did: a report that is lost, delayed or overwritten is made up by the next one.
2. Per provider, the operator keeps a ledger inside the provider's own status, next to the total:
   `base` (usage of incarnations that are over) and, per live incarnation, the last cumulative
   folded in and its sequence. The total shown is always `base + sum(live cumulatives)`, computed
   from the ledger, never incremented on its own.
3. Folding a report is idempotent and monotone: a sequence at or below the stored one, or an
   incarnation already retired (its id is kept in a bounded `folded` list), changes nothing;
   otherwise the incarnation's cumulative is *replaced*, not added. Replays, duplicates, reordered
   events, the operator's resync after a restart and two workers racing all converge on the same
   ledger.
4. The ledger and the total are written in one status write with a resourceVersion
   precondition (409 -> re-read and fold again). A crash between reading and writing loses
   nothing (the report is folded again from its ConfigMap); a crash cannot persist one without
   the other, because they are one object.
5. An incarnation is retired (its cumulative moves into `base` and it drops out of `live`) when
   its final report is folded, when a newer incarnation of the same pod reports (a container
   restart), when its pod is gone, or when it has been silent longer than the stale window
   (judged only once the operator has been pulling for a whole stale window, so an operator
   outage does not make live routers look silent). Retiring moves a number from one
   term of the sum to another, so the total is unchanged; only later reports of that
   incarnation are ignored from then on.

The reports are pulled by the operator from each router's health port (usage_sync.py says why).
What can be lost, and only this: a router killed without warning (SIGKILL, OOM, a node lost)
loses what it served since the operator's last pull (at most one report interval); a router that
stops, or whose container restarts, while no operator replica is pulling loses what it served
since the last pull before that; an incarnation retired as stale that comes back loses what it
serves afterwards; a report of a month before the previous one that arrives after the
operator's clock turned the month twice is not shown.

Months: counters carry the month they were served in (the router's clock), and the ledger keeps
the month it is in plus the last closed one (`previous`). When the operator's clock turns the
month, the current ledger closes (it becomes `previous`, live sequences and all) and a new one
starts from zero. A report that arrives afterwards folds each of its months into its own ledger
by the same rule, so a router's last minutes of November reported at 00:00:20 on 1 December
still count for November, exactly once. The closed month's live entries retire by the same
stale rule, so it shrinks to its base soon after the last late report.
The `folded` list is bounded (oldest out): a retired incarnation's report replayed after more
than that many later retirements for the same provider would count again.

This module is pure (no I/O, the clock is a parameter): `fold` is the whole rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from switchyard_router.money import decimal_text
from switchyard_router.usage import UsageCounts, UsageReport, period_of

JSON = dict[str, Any]
DEFAULT_KEEP_FOLDED = 512
# costUSD in the status: at most 12 decimal places (the API's money pattern), rounded down so the
# shown figure never exceeds what was spent; the ledger keeps the exact value.
SHOWN_QUANTUM = Decimal("0.000000000001")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Totals(UsageCounts):
    """Usage of one provider, summed over its models."""

    model_config = ConfigDict(frozen=True)

    def __add__(self, other: UsageCounts) -> Totals:
        mine, theirs = self.counts(), other.counts()
        return Totals.model_validate({name: mine[name] + theirs[name] for name in mine})

    @property
    def empty(self) -> bool:
        return self == Totals()


class Incarnation(_Model):
    """The last cumulative folded in for one live router process."""

    pod: str | None = None
    policy: str | None = None
    sequence: int
    started_at: datetime
    seen_at: datetime  # the operator's clock when the sequence last advanced (staleness)
    usage: Totals = Field(default_factory=Totals)


class Ledger(_Model):
    """Per provider and month: retired usage plus each live incarnation's last cumulative."""

    period: str
    base: Totals = Field(default_factory=Totals)
    live: dict[str, Incarnation] = Field(default_factory=dict)
    folded: tuple[str, ...] = ()
    previous: Ledger | None = None  # the last closed month (never holds a `previous` itself)

    def total(self) -> Totals:
        out = self.base
        for entry in self.live.values():
            out = out + entry.usage
        return out

    def to_json(self) -> JSON:
        data: JSON = self.model_dump(mode="json", by_alias=True)
        return data


@dataclass(frozen=True)
class FoldSettings:
    stale_after: timedelta = timedelta(seconds=150)
    # Rewrite a live entry whose usage did not change only this often (keeps idle routers fresh
    # without one status write per report).
    heartbeat: timedelta = timedelta(seconds=50)
    keep_folded: int = DEFAULT_KEEP_FOLDED


def usage_of(report: UsageReport, provider: str, period: str) -> Totals:
    """The report's cumulative usage of one provider in one month, over all its models."""
    out = Totals()
    for c in report.counters:
        if c.provider == provider and c.period == period:
            out = out + c
    return out


def parse_ledger(spend: Mapping[str, Any] | None) -> Ledger | None:
    """The ledger stored in `status.spend.ledger`; None when absent or unreadable."""
    raw = (spend or {}).get("ledger")
    if not isinstance(raw, Mapping):
        return None
    try:
        return Ledger.model_validate(raw)
    except ValidationError:
        return None


def _retire(ledger: Ledger, ids: Iterable[str], settings: FoldSettings) -> Ledger:
    ids = [i for i in ids if i in ledger.live]
    if not ids:
        return ledger
    base = ledger.base
    for i in ids:
        base = base + ledger.live[i].usage
    live = {k: v for k, v in ledger.live.items() if k not in ids}
    folded = (ledger.folded + tuple(ids))[-settings.keep_folded :]
    return ledger.model_copy(update={"base": base, "live": live, "folded": folded})


def retire_pods(ledger: Ledger, pods: Iterable[str], settings: FoldSettings) -> Ledger:
    """Retire the incarnations of pods that no longer exist (they will never report again)."""
    gone = set(pods)
    return _retire(ledger, [k for k, v in ledger.live.items() if v.pod in gone], settings)


def roll_over(ledger: Ledger | None, now: datetime) -> Ledger:
    """The ledger for the month of `now`: a new month starts from zero (sequences are kept) and
    the month it closes is kept as `previous`, for reports that arrive late."""
    period = period_of(now)
    if ledger is None:
        return Ledger(period=period)
    if ledger.period >= period:  # same month (or a clock that went back: never reopen a month)
        return ledger
    closed = ledger.model_copy(update={"previous": None})
    live = {k: v.model_copy(update={"usage": Totals()}) for k, v in ledger.live.items()}
    return Ledger(period=period, live=live, folded=ledger.folded, previous=closed)


def expire(ledger: Ledger, now: datetime, settings: FoldSettings) -> Ledger:
    """Retire incarnations silent for longer than the stale window, in both months.

    Only once the operator has been pulling for a whole stale window: an incarnation whose fresh
    report simply has not been pulled yet (after an operator outage) must not be taken for
    silent. Folding refreshes `seen_at` whenever the sequence moved and the entry is
    older than the heartbeat, so what is still stale afterwards has stopped reporting."""
    previous = ledger.previous and _expire_month(ledger.previous, now, settings)
    current = _expire_month(ledger, now, settings)
    return current if previous == ledger.previous else current.model_copy(update={"previous": previous})


def _expire_month(ledger: Ledger, now: datetime, settings: FoldSettings) -> Ledger:
    stale = [k for k, v in ledger.live.items() if now - v.seen_at > settings.stale_after]
    return _retire(ledger, stale, settings)


def fold(
    ledger: Ledger | None,
    report: UsageReport | None,
    provider: str,
    now: datetime,
    settings: FoldSettings = FoldSettings(),
    *,
    gone: bool = False,
) -> Ledger:
    """Fold one report (or none: the month rollover only) into a provider's ledger.

    `gone` treats the report as final (its pod no longer exists, so nothing more can come).
    Returns the new ledger; it equals the old one when the report adds nothing.
    """
    state = roll_over(ledger, now)
    if report is None:
        return state
    if state.previous is not None:
        previous = _fold_month(state.previous, report, provider, now, settings, gone, closed=True)
        if previous != state.previous:
            state = state.model_copy(update={"previous": previous})
    return _fold_month(state, report, provider, now, settings, gone, closed=False)


def _fold_month(
    state: Ledger,
    report: UsageReport,
    provider: str,
    now: datetime,
    settings: FoldSettings,
    gone: bool,
    *,
    closed: bool,
) -> Ledger:
    """`fold` within one month's ledger: the report's counters of that month only. A closed
    month takes no heartbeats: its entries refresh only when their usage grows, so they go
    stale (and retire into the base) soon after the month's last late report."""
    if report.incarnation in state.folded:
        return state
    final = report.final or gone
    inc = report.incarnation
    # A newer process of the same pod overwrote the pod's ConfigMap: the older one is over.
    if report.pod:
        superseded = [
            k
            for k, v in state.live.items()
            if k != inc and v.pod == report.pod and v.started_at <= report.started_at
        ]
        state = _retire(state, superseded, settings)
    entry = state.live.get(inc)
    if entry is not None and report.sequence <= entry.sequence:
        # nothing new; but a process whose pod is gone will never report again: retire it
        return _retire(state, [inc], settings) if gone else state
    usage = usage_of(report, provider, state.period)
    if entry is None and usage.empty:
        return state  # this process has not used this provider (yet): nothing to keep
    if (
        entry is not None
        and not final
        and entry.usage == usage
        and (closed or now - entry.seen_at < settings.heartbeat)
    ):
        return state  # only the sequence moved, and the entry is fresh: skip a write
    live = dict(state.live)
    live[inc] = Incarnation(
        pod=report.pod,
        policy=report.policy,
        sequence=report.sequence,
        started_at=report.started_at,
        seen_at=now,
        usage=usage,
    )
    state = state.model_copy(update={"live": live})
    if final:
        state = _retire(state, [inc], settings)
    return state


def is_folded(ledger: Ledger | None, report: UsageReport, provider: str, now: datetime) -> bool:
    """Whether everything this report says about the provider is already in the ledger."""
    state = roll_over(ledger, now)
    months = [state] if state.previous is None else [state, state.previous]
    return all(_is_folded_month(month, report, provider) for month in months)


def _is_folded_month(state: Ledger, report: UsageReport, provider: str) -> bool:
    if report.incarnation in state.folded:
        return True
    entry = state.live.get(report.incarnation)
    if entry is not None:
        return report.sequence <= entry.sequence
    return usage_of(report, provider, state.period).empty


def shown_cost(value: Decimal) -> str:
    return decimal_text(value.quantize(SHOWN_QUANTUM, rounding=ROUND_DOWN))


def _month_totals(ledger: Ledger) -> JSON:
    total = ledger.total()
    return {
        "period": ledger.period,
        "costUSD": shown_cost(total.cost_usd),
        "requests": total.requests,
        "inputTokens": total.input_tokens,
        "outputTokens": total.output_tokens,
        "cachedInputTokens": total.cached_input_tokens,
        "reasoningTokens": total.reasoning_tokens,
        "unpricedRequests": total.unpriced_requests,
        "estimatedCostUSD": shown_cost(total.estimated_cost_usd),
        "estimatedRequests": total.estimated_requests,
    }


def spend_status(ledger: Ledger, last_update: str) -> JSON:
    """`status.spend`: the month's totals, the last closed month's, and the ledger behind them
    (all in one object, so one write carries them together)."""
    out = _month_totals(ledger)
    if ledger.previous is not None:
        out["lastMonth"] = _month_totals(ledger.previous)
    out.update(liveRouters=len(ledger.live), lastUpdate=last_update, ledger=ledger.to_json())
    return out


def merge_patch_for(old: Any, new: Any) -> Any:
    """An RFC 7386 merge patch turning `old` into `new` (null deletes keys `new` lacks)."""
    if not isinstance(new, Mapping) or not isinstance(old, Mapping):
        return new
    patch: JSON = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch_for(old[key], value)
    return patch
