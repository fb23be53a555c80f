"""The operator's traces: a span per reconcile and per probe, received by an OTLP/HTTP
collector on loopback; the probe's request carries its span's traceparent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from switchyard_operator.kube import core_path, custom_path
from switchyard_router import tracing
from switchyard_sim.server import Simulator

from ..otlp import Collector, attributes_of
from .conftest import LOOPBACK, eventually, running_operator
from .manifests import NS, policy, secret
from .test_health import health_state, sim_provider
from .test_lifecycle import compiled_status

KEY = "sk-traced-probe-secret-5678"


@pytest.fixture
async def sim():
    simulator = Simulator(seed=1)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def collector(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Collector]:
    sink = Collector()
    await sink.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert tracing.configure(service="switchyard-operator")
    yield sink
    tracing.stop()
    assert sink.runner is not None
    await sink.runner.cleanup()


async def test_reconciles_and_probes_are_spans(api, kube, sim, collector):
    async with running_operator(api, LOOPBACK):
        await kube.create(core_path("secrets", NS), secret("keys", K=KEY, grant="primary,down"))
        await kube.create(custom_path("llmproviders", NS), sim_provider(sim, "primary"))
        await kube.create(custom_path("llmproviders", NS), sim_provider(sim, "down", type_="anthropic"))
        sim.set_faults("down", error_rate=1.0, error_status=500)
        await kube.create(custom_path("routingpolicies", NS), policy("p", targets=[("primary", "m1")]))
        await eventually(lambda: compiled_status(kube, "p", "True"))
        await eventually(lambda: health_state(kube, "primary", "Healthy"))
        await eventually(lambda: health_state(kube, "down", "Unhealthy"))
        seen = sim.last_request("primary")
    await asyncio.to_thread(tracing.stop)  # exports what is buffered
    spans = collector.spans()
    assert spans[0][0]["service.name"] == "switchyard-operator"
    names = {span.name for _, span in spans}
    assert {f"reconcile RoutingPolicy {NS}/p", f"reconcile LLMProvider {NS}/primary"} <= names
    reconcile = next(s for _, s in spans if s.name == f"reconcile RoutingPolicy {NS}/p")
    assert attributes_of(reconcile.attributes) == {"k8s.namespace.name": NS, "switchyard.resource": "p"}

    probes = [s for _, s in spans if s.name == f"probe {NS}/primary"]
    assert any(s.status.code == Status.STATUS_CODE_OK for s in probes)
    # A probe still in flight when the operator stops ends cancelled.
    for s in probes:
        if s.status.code != Status.STATUS_CODE_OK:
            assert attributes_of(s.attributes)["error.type"] == "CancelledError"
    assert attributes_of(probes[0].attributes)["switchyard.provider.type"] == "openai-compatible"
    # The probe's request carried its span's traceparent.
    assert seen is not None
    trace_id, span_id = seen["headers"]["traceparent"].split("-")[1:3]
    assert any(s.trace_id.hex() == trace_id and s.span_id.hex() == span_id for s in probes)

    failed = [s for _, s in spans if s.name == f"probe {NS}/down"]
    assert failed and failed[0].status.code == Status.STATUS_CODE_ERROR
    assert attributes_of(failed[0].attributes)["error.type"] == "ServerError"
    assert KEY.encode() not in b"".join(collector.raw)
