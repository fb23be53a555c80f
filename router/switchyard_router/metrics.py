"""Prometheus metrics: Switchyard's own series and the OpenTelemetry GenAI client metrics.

Label values are bounded: route and provider names come from the table, models from the table
(undeclared ones read "other"), error kinds from one enum. Never request content, never keys.
Labelled children are cached per target so the hot path does no label lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from . import clock
from .adapters import Usage
from .runtime import TargetRuntime
from .tally import Buckets, Count, TallyCollector

# OpenTelemetry GenAI semantic-convention buckets.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_CHUNK_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
_GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model")


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        # The request path's series: plain numbers, read at scrape time (see tally.py).
        self.tally = t = TallyCollector()
        r.register(t)
        self.requests = t.counter(
            "switchyard_requests",
            "Client requests by route and outcome (ok or the error kind).",
            ["route", "outcome"],
        )
        self.attempts = t.counter(
            "switchyard_attempts",
            "Upstream attempts by target and outcome.",
            ["route", "provider", "model", "outcome"],
        )
        self.fallbacks = Counter(
            "switchyard_fallbacks",
            "Moves from one target to the next, with the reason.",
            ["route", "from_provider", "to_provider", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "switchyard_retries",
            "Retries on the same target, with the reason.",
            ["route", "provider", "reason"],
            registry=r,
        )
        self.tokens = t.counter(
            "switchyard_tokens",
            "Tokens by route, provider, model and type (input, output, cached_input, cache_write).",
            ["route", "provider", "model", "type"],
        )
        self.cost = t.counter(
            "switchyard_cost_usd",
            "Spend in USD by route, provider and model (tokens times the table's prices).",
            ["route", "provider", "model"],
        )
        self.estimated_cost = t.counter(
            "switchyard_estimated_cost_usd",
            "Estimated spend in USD of answers the client abandoned before the provider reported "
            "their usage (billed all the same), apart from switchyard_cost_usd.",
            ["route", "provider", "model"],
        )
        self.abandoned = t.counter(
            "switchyard_abandoned_requests",
            "Answers the client went away from, counted as the provider bills them: usage exact "
            "(the provider reported it first) or estimated.",
            ["provider", "model", "usage"],
        )
        self.unpriced = t.counter(
            "switchyard_unpriced_requests",
            "Served requests without a price or without usage: counted, never as zero cost.",
            ["provider", "model"],
        )
        self.table_info = Gauge(
            "switchyard_table_info",
            "The routing table being served (value 1).",
            ["hash"],
            registry=r,
        )
        self.table_loads = Counter(
            "switchyard_table_loads",
            "Routing table loads by outcome.",
            ["outcome"],
            registry=r,
        )
        self.skipped = Counter(
            "switchyard_skipped_targets",
            "Targets passed over before sending (CircuitOpen, RateLimited, ContextWindow).",
            ["route", "provider", "reason"],
            registry=r,
        )
        self.limit_exceeded = Counter(
            "switchyard_upstream_limit_exceeded",
            "Upstream answers cut off at a read limit (maxResponseBytes, maxEventBytes, maxStreamBytes).",
            ["provider", "limit"],
            registry=r,
        )
        self.connections_refused = Counter(
            "switchyard_connections_refused",
            "Callers' connections closed at once because server.maxConnections were open.",
            registry=r,
        )
        self.key_errors = Counter(
            "switchyard_key_errors",
            "Errors per provider key by kind (keys by name, never value).",
            ["provider", "credential", "kind"],
            registry=r,
        )
        self.token_usage = t.histogram(
            "gen_ai_client_token_usage",
            "Number of input and output tokens used.",
            [*_GENAI, "gen_ai_token_type"],
            buckets=_TOKEN_BUCKETS,
        )
        self.duration = t.histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration.",
            [*_GENAI, "error_type"],
            buckets=_DURATION_BUCKETS,
        )
        self.first_chunk = t.histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to receive the first chunk in a streaming operation.",
            _GENAI,
            buckets=_DURATION_BUCKETS,
        )
        self.per_chunk = t.histogram(
            "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Time between chunks after the first in a streaming operation.",
            _GENAI,
            buckets=_CHUNK_BUCKETS,
        )
        self._series: dict[tuple[str, str, str, str], TargetSeries] = {}
        self._outcomes: dict[tuple[str, str], Count] = {}

    def request_done(self, route: str, outcome: str) -> None:
        """One client request ended (labelled children cached: no lookup on the hot path)."""
        child = self._outcomes.get((route, outcome))
        if child is None:
            child = self._outcomes[(route, outcome)] = self.requests.labels(route, outcome)
        child.inc()

    def series(self, route: str, provider: str, model: str, operation: str) -> TargetSeries:
        ident = (route, provider, model, operation)
        found = self._series.get(ident)
        if found is None:
            genai = (operation, provider, model, model)
            found = self._series[ident] = TargetSeries(
                ok=self.attempts.labels(route, provider, model, "ok"),
                duration_ok=self.duration.labels(*genai, ""),
                input_tokens=self.token_usage.labels(*genai, "input"),
                output_tokens=self.token_usage.labels(*genai, "output"),
                tokens_in=self.tokens.labels(route, provider, model, "input"),
                tokens_out=self.tokens.labels(route, provider, model, "output"),
                tokens_cached=self.tokens.labels(route, provider, model, "cached_input"),
                tokens_cache_write=self.tokens.labels(route, provider, model, "cache_write"),
                first_chunk=self.first_chunk.labels(*genai),
                per_chunk=self.per_chunk.labels(*genai),
                cost=self.cost.labels(route, provider, model),
                unpriced=self.unpriced.labels(provider, model),
                estimated_cost=self.estimated_cost.labels(route, provider, model),
                abandoned_exact=self.abandoned.labels(provider, model, "exact"),
                abandoned_estimated=self.abandoned.labels(provider, model, "estimated"),
            )
        return found

    def watch(self, targets: Callable[[], Iterable[TargetRuntime]]) -> None:
        """Breaker and key states, read at scrape time: nothing to update on the hot path."""
        self.registry.register(_StateCollector(targets))

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(slots=True)
class TargetSeries:
    ok: Count
    duration_ok: Buckets
    input_tokens: Buckets
    output_tokens: Buckets
    tokens_in: Count
    tokens_out: Count
    tokens_cached: Count
    tokens_cache_write: Count
    first_chunk: Buckets
    per_chunk: Buckets
    cost: Count
    unpriced: Count
    estimated_cost: Count
    abandoned_exact: Count
    abandoned_estimated: Count

    def billed(self, cost: Decimal | None, *, estimated: bool) -> None:
        """An answer the client abandoned, as the provider will bill it."""
        if estimated:
            self.abandoned_estimated.inc()
        else:
            self.abandoned_exact.inc()
        if cost is None:
            self.unpriced.inc()
        elif estimated:
            self.estimated_cost.inc(float(cost))
        else:
            self.cost.inc(float(cost))

    def success(self, seconds: float, usage: Usage, cost: Decimal | None) -> None:
        self.ok.inc()
        self.duration_ok.observe(seconds)
        if cost is None:
            self.unpriced.inc()
        else:
            self.cost.inc(float(cost))
        if usage.reported:
            self.input_tokens.observe(usage.input_tokens)
            self.output_tokens.observe(usage.output_tokens)
            self.tokens_in.inc(usage.input_tokens)
            self.tokens_out.inc(usage.output_tokens)
            if usage.cached_input_tokens:
                self.tokens_cached.inc(usage.cached_input_tokens)
            if usage.cache_write_tokens:
                self.tokens_cache_write.inc(usage.cache_write_tokens)


class _StateCollector(Collector):
    def __init__(self, targets: Callable[[], Iterable[TargetRuntime]]) -> None:
        self.targets = targets

    def collect(self) -> Iterator[Metric]:
        circuit = GaugeMetricFamily(
            "switchyard_circuit_state",
            "Circuit breaker per target: 0 closed, 1 open, 2 half-open.",
            labels=["provider", "model"],
        )
        in_flight = GaugeMetricFamily(
            "switchyard_in_flight_requests", "Upstream requests in flight per provider.", labels=["provider"]
        )
        keys = GaugeMetricFamily(
            "switchyard_key_state",
            "Per provider key (by credential name): 1 for its state (ok, cooling, revoked).",
            labels=["provider", "credential", "state"],
        )
        now = clock.monotonic()
        seen: set[tuple[str, str]] = set()
        busy: dict[str, int] = {}
        for target in self.targets():
            busy[target.provider.name] = busy.get(target.provider.name, 0) + target.in_flight
            circuit.add_metric([target.provider.name, target.model_label], int(target.breaker.state))
            for key in target.shared.keys:
                if (target.provider.name, key.name) in seen:
                    continue
                seen.add((target.provider.name, key.name))
                state = key.state if now < key.unavailable_until else "ok"
                keys.add_metric([target.provider.name, key.name, state], 1)
        for provider, count in sorted(busy.items()):
            in_flight.add_metric([provider], count)
        yield circuit
        yield in_flight
        yield keys

    def describe(self) -> Iterator[Metric]:
        return iter(())
