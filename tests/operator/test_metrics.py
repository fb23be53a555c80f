"""The operator's provider gauges, fed by the LLMProvider events kopf delivers."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from switchyard_operator import cli
from switchyard_operator.kube import core_path, custom_path
from switchyard_operator.metrics import PROVIDERS, ProviderCollector, serve

from .conftest import eventually
from .manifests import NS, provider, secret


def render(collector: ProviderCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_spend_budget_and_health_per_provider():
    collector = ProviderCollector()
    collector.seen("team", "openai", {
        "spec": {"budget": {"monthlyUSD": "200"}},
        "status": {"spend": {"costUSD": "12.345678", "requests": 40}, "health": {"state": "Unhealthy"}},
    })
    collector.seen("team", "groq", {"spec": {"budget": {"monthlyUSD": "not money"}}, "status": {"health": {"state": "Unknown"}}})
    text = render(collector)
    assert 'switchyard_provider_spend_usd{namespace="team",provider="openai"} 12.345678' in text
    assert 'switchyard_provider_budget_usd{namespace="team",provider="openai"} 200.0' in text
    assert 'switchyard_provider_requests{namespace="team",provider="openai"} 40.0' in text
    assert 'switchyard_provider_healthy{namespace="team",provider="openai"} 0.0' in text
    assert 'provider="groq"' not in text
    collector.seen("team", "openai", None)
    assert 'provider="openai"' not in render(collector)


async def test_kopf_events_feed_the_gauges_and_the_port_serves_them(api, kube, operator):
    await kube.create(core_path("secrets", NS), secret("keys", OPENAI_API_KEY="sk-metrics-0000"))
    await kube.create(custom_path("llmproviders", NS), provider("openai", budget={"monthlyUSD": "50"}))

    async def seen():
        return "switchyard_provider_budget_usd" in render(PROVIDERS) and 'provider="openai"' in render(PROVIDERS)

    await eventually(seen)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve(port, host="127.0.0.1")
    # Blocking a loop that serves the emulated API is harmless here: the scrape needs none of it.
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    assert 'switchyard_provider_budget_usd{namespace="team",provider="openai"} 50.0' in body
    assert "sk-metrics-0000" not in body


def test_the_cli_takes_a_metrics_port():
    args = cli.parse_args(["-A", "--metrics-port", "9090"])
    assert args.metrics_port == 9090
