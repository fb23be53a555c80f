"""The operator's own metrics: each provider's monthly spend, budget and health, for alerts.

Read at scrape time from the last version of each LLMProvider the operator saw, so the alert
rules (budget at 80% and 100%, provider down) need nothing but Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
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
            if (limit := _usd(((body.get("spec") or {}).get("budget") or {}).get("monthlyUSD"))) is not None:
                budget.add_metric(labels, limit)
            state = (status.get("health") or {}).get("state")
            if state in ("Healthy", "Unhealthy"):
                healthy.add_metric(labels, 1.0 if state == "Healthy" else 0.0)
        yield from (spend, budget, requests, healthy)

    def describe(self) -> Iterator[Metric]:
        return iter(())


PROVIDERS = ProviderCollector()


def serve(port: int, host: str = "0.0.0.0") -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PROVIDERS)
    start_http_server(port, addr=host, registry=registry)
    return registry
