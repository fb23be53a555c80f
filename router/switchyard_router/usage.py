"""Spend that adds up: cumulative usage per (provider, model, month), reported whole.

Each router process is one incarnation (a random id). It never sends deltas: every report is the
full cumulative snapshot since the process started, numbered by a sequence. Whoever aggregates
keeps, per incarnation, the last snapshot it folded in, so a repeated or replayed report adds
nothing and a lost one is made up by the next. The last report on a graceful stop is marked final.
A process killed without warning loses at most what it served since its last report.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from . import clock
from .adapters import Usage
from .money import USD
from .table import Pricing

if TYPE_CHECKING:
    from .metrics import TargetSeries
    from .runtime import KeyRuntime, TargetRuntime

MILLION = Decimal(1_000_000)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# The report's bounds: what the operator accepts is what a router can write (counts fit int64,
# money is a non-negative finite decimal, names are Kubernetes names, one counter per provider,
# declared model and month). Anything else is refused whole, never folded in part.
COUNT = Annotated[int, Field(ge=0, le=2**63 - 1)]
NAME = Annotated[str, Field(min_length=1, max_length=253)]
MAX_COUNTERS = 4096


class UsageCounts(_Model):
    """What is counted of served answers; the operator sums these per provider."""

    requests: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)
    cost_usd: USD = Field(default=Decimal(0), alias="costUSD", ge=0, allow_inf_nan=False)
    # Served, but without a usable price or usage: counted here, never as zero cost.
    unpriced_requests: int = Field(default=0, ge=0)
    # Answers the client abandoned before the provider reported their usage (part of `requests`):
    # the provider bills them, so they are counted from an estimate, kept apart from exact cost.
    estimated_requests: int = Field(default=0, ge=0)
    estimated_cost_usd: USD = Field(default=Decimal(0), alias="estimatedCostUSD", ge=0, allow_inf_nan=False)

    def counts(self) -> dict[str, int | Decimal]:
        return {name: getattr(self, name) for name in UsageCounts.model_fields}


class UsageCounter(UsageCounts):
    model_config = ConfigDict(extra="forbid")

    requests: COUNT = 0
    input_tokens: COUNT = 0
    output_tokens: COUNT = 0
    cached_input_tokens: COUNT = 0
    reasoning_tokens: COUNT = 0
    cost_usd: USD = Field(
        default=Decimal(0), alias="costUSD", ge=0, le=10**12, max_digits=48, allow_inf_nan=False
    )
    unpriced_requests: COUNT = 0
    estimated_requests: COUNT = 0
    estimated_cost_usd: USD = Field(
        default=Decimal(0), alias="estimatedCostUSD", ge=0, le=10**12, max_digits=48, allow_inf_nan=False
    )
    provider: NAME
    model: NAME
    period: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")  # the calendar month in UTC, "2026-11"


class UsageReport(_Model):
    """What a router sends: its whole cumulative usage, never a delta."""

    model_config = ConfigDict(extra="forbid")

    incarnation: str = Field(pattern=r"^[0-9a-f]{8,64}$")
    sequence: COUNT
    final: bool = False
    pod: NAME | None = None
    namespace: NAME | None = None
    policy: NAME | None = None
    table_hash: str | None = Field(default=None, max_length=128)
    started_at: datetime
    reported_at: datetime
    counters: list[UsageCounter] = Field(default_factory=list, max_length=MAX_COUNTERS)


def period_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def cost_of(usage: Usage, pricing: Pricing | None) -> Decimal | None:
    """USD for one answer, exact in Decimal; None when it cannot be priced."""
    if pricing is None or not usage.reported:
        return None
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_price = pricing.cached_input_per_million_tokens
    if cached_price is None:
        cached, cached_price = 0, Decimal(0)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    write_price = pricing.cache_write_per_million_tokens
    if write_price is None:
        written, write_price = 0, Decimal(0)
    fresh = usage.input_tokens - cached - written
    total = (
        fresh * pricing.input_per_million_tokens
        + cached * cached_price
        + written * write_price
        + usage.output_tokens * pricing.output_per_million_tokens
    )
    return total / MILLION


@dataclass(slots=True)
class _Totals:
    """UsageCounts' fields as a plain dataclass: added to on every request."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_requests: int = 0
    estimated_requests: int = 0
    estimated_cost_usd: Decimal = Decimal(0)


def target_cost(target: TargetRuntime, usage: Usage) -> Decimal | None:
    return cost_of(usage, target.spec.pricing if target.spec else None)


class UsageLedger:
    """This process's cumulative counters; `snapshot()` is the report to send."""

    def __init__(self, *, policy: str | None = None) -> None:
        self.incarnation = uuid.uuid4().hex
        self.started_at = clock.now()
        self.sequence = 0
        self.policy = policy or os.environ.get("SWITCHYARD_POLICY") or None
        self.pod = os.environ.get("POD_NAME") or socket.gethostname()
        self.namespace = os.environ.get("POD_NAMESPACE") or None
        self._totals: dict[tuple[str, str, str], _Totals] = {}
        self._period = ""
        self._period_ends = 0.0

    def _current_period(self) -> str:
        # Formatting a date for every request showed in the bench: do it once a month.
        now = clock.time()
        if now >= self._period_ends:
            moment = datetime.fromtimestamp(now, UTC)
            self._period = period_of(moment)
            year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
            self._period_ends = datetime(year, month, 1, tzinfo=UTC).timestamp()
        return self._period

    def account(
        self, target: TargetRuntime, key: KeyRuntime, series: TargetSeries, seconds: float, usage: Usage
    ) -> Decimal | None:
        """The cost of one served answer, now (its response header tells it); the counting it
        calls for (latency, metrics, quota, spend) right after, once the answer has gone out."""
        cost = target_cost(target, usage)
        asyncio.get_running_loop().call_soon(self._count, target, key, series, seconds, usage, cost)
        return cost

    def count(
        self, target: TargetRuntime, key: KeyRuntime, series: TargetSeries, seconds: float, usage: Usage
    ) -> None:
        """`account` for an answer that has gone out already: the counting, at once."""
        self._count(target, key, series, seconds, usage, target_cost(target, usage))

    def _count(
        self,
        target: TargetRuntime,
        key: KeyRuntime,
        series: TargetSeries,
        seconds: float,
        usage: Usage,
        cost: Decimal | None,
    ) -> None:
        target.observe_latency(seconds)
        # Keyed by the bounded label: clients pinning made-up model names add no counters.
        self._add(target.provider.name, target.model_label, usage, cost)
        series.success(seconds, usage, cost)
        if usage.reported:  # the prompt estimate was charged up front; the answer's tokens now
            target.shared.charge(key, usage.output_tokens, clock.monotonic())

    def abandoned(
        self,
        target: TargetRuntime,
        series: TargetSeries,
        usage: Usage,
        *,
        final: bool,
        prompt_tokens: int,
        output_tokens: int,
    ) -> None:
        """An answer the client went away from: the provider bills it all the same. Exact when
        the provider's final usage came in before (`final`); otherwise an estimate from what is
        known: the provider's own counts so far (Anthropic and Gemini tell the prompt's at once),
        else the router's prompt estimate, and the output seen so far."""
        if final and usage.reported:
            cost = target_cost(target, usage)
            self._add(target.provider.name, target.model_label, usage, cost)
            series.billed(cost, estimated=False)
            return
        reported = usage.reported
        estimate = Usage(
            input_tokens=usage.input_tokens if reported and usage.input_tokens else prompt_tokens,
            output_tokens=max(usage.output_tokens if reported else 0, output_tokens),
            cached_input_tokens=usage.cached_input_tokens if reported else 0,
            cache_write_tokens=usage.cache_write_tokens if reported else 0,
            reported=True,
        )
        cost = target_cost(target, estimate)
        self._add(target.provider.name, target.model_label, Usage(), cost, estimated=True)
        series.billed(cost, estimated=True)

    def record(self, provider: str, model: str, usage: Usage, pricing: Pricing | None) -> Decimal | None:
        """Count one served answer; returns its cost (None when unpriced)."""
        cost = cost_of(usage, pricing)
        self._add(provider, model, usage, cost)
        return cost

    def _add(
        self, provider: str, model: str, usage: Usage, cost: Decimal | None, estimated: bool = False
    ) -> None:
        key = (provider, model, self._current_period())
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = _Totals()
        totals.requests += 1
        totals.input_tokens += usage.input_tokens
        totals.output_tokens += usage.output_tokens
        totals.cached_input_tokens += usage.cached_input_tokens
        totals.reasoning_tokens += usage.reasoning_tokens
        if cost is None:
            totals.unpriced_requests += 1
        elif estimated:
            totals.estimated_cost_usd += cost
        else:
            totals.cost_usd += cost
        if estimated:  # its tokens are a guess: the token counts stay the provider's own
            totals.estimated_requests += 1

    def snapshot(self, *, table_hash: str | None, final: bool = False, advance: bool = True) -> UsageReport:
        """The cumulative report; `advance` numbers it as a new one (a look does not)."""
        if advance:
            self.sequence += 1
        return UsageReport(
            incarnation=self.incarnation,
            sequence=self.sequence,
            final=final,
            pod=self.pod,
            namespace=self.namespace,
            policy=self.policy,
            table_hash=table_hash,
            started_at=self.started_at,
            reported_at=clock.now(),
            counters=[
                UsageCounter(provider=provider, model=model, period=period, **asdict(t))
                for (provider, model, period), t in sorted(self._totals.items())
            ],
        )
