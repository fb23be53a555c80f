"""The operator's own metrics: each provider's monthly spend, budget and health, for alerts,
and what became of the usage reports it pulled from the routers.

Read at scrape time from the last version of each LLMProvider the operator saw, so the alert
rules (budget at 80% and 100%, provider down) need nothing but Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LABELS = ["namespace", "provider"]


def _usd(value: object) -> float | None:
    try:
        return float(Decimal(str(value))) if value is not None else None
    except InvalidOperation:
        return None


class ProviderCollector(Collector):
    def __init__(self) -> None:
        self.providers: dict[tuple[str, str], Mapping[str, Any]] = {}

    def seen(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> None:
        """The provider as last seen; None when it was deleted."""
        if body is None:
            self.providers.pop((namespace, name), None)
        else:
            self.providers[(namespace, name)] = body

    def collect(self) -> Iterator[Metric]:
        spend = GaugeMetricFamily(
            "switchyard_provider_spend_usd", "This month's spend (status.spend).", labels=_LABELS
        )
        budget = GaugeMetricFamily(
            "switchyard_provider_budget_usd", "The monthly budget (spec.budget).", labels=_LABELS
        )
        estimated = GaugeMetricFamily(
            "switchyard_provider_estimated_spend_usd",
            "This month's estimated spend on abandoned answers (status.spend.estimatedCostUSD).",
            labels=_LABELS,
        )
        requests = GaugeMetricFamily("switchyard_provider_requests", "This month's requests.", labels=_LABELS)
        healthy = GaugeMetricFamily(
            "switchyard_provider_healthy", "1 when the last probes passed.", labels=_LABELS
        )
        for (namespace, name), body in sorted(self.providers.items()):
            labels = [namespace, name]
            status = body.get("status") or {}
            spent = status.get("spend") or {}
            if (cost := _usd(spent.get("costUSD"))) is not None:
                spend.add_metric(labels, cost)
                requests.add_metric(labels, float(spent.get("requests") or 0))
                estimated.add_metric(labels, _usd(spent.get("estimatedCostUSD")) or 0.0)
            if (limit := _usd(((body.get("spec") or {}).get("budget") or {}).get("monthlyUSD"))) is not None:
                budget.add_metric(labels, limit)
            state = (status.get("health") or {}).get("state")
            if state in ("Healthy", "Unhealthy"):
                healthy.add_metric(labels, 1.0 if state == "Healthy" else 0.0)
        yield from (spend, estimated, budget, requests, healthy)

    def describe(self) -> Iterator[Metric]:
        return iter(())


class ReportCollector(Collector):
    """`switchyard_usage_reports_total{namespace,policy,outcome}`: outcome `accepted`,
    `unreachable`, or the reason a report was refused (`Invalid`, `TooLarge`, `WrongPod`)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}

    def count(self, namespace: str, policy: str, outcome: str) -> None:
        key = (namespace, policy, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "switchyard_usage_reports",
            "Usage reports pulled from routers, by what became of them.",
            labels=["namespace", "policy", "outcome"],
        )
        for labels, value in sorted(self.counts.items()):
            family.add_metric(list(labels), float(value))
        yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())


PROVIDERS = ProviderCollector()
REPORTS = ReportCollector()


def serve(port: int, host: str = "0.0.0.0") -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PROVIDERS)
    registry.register(REPORTS)
    start_http_server(port, addr=host, registry=registry)
    return registry
