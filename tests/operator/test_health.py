"""Health probes against the simulator: healthy, unhealthy after the threshold, recovered."""

from __future__ import annotations

import logging

import httpx
import pytest
import yaml
from switchyard_operator.kube import core_path, custom_path
from switchyard_operator.models import HealthCheckSpec, HealthState, HealthStatus
from switchyard_operator.outputs import TABLE_KEY
from switchyard_operator.probe import ProbeOutcome, next_health, probe
from switchyard_router.table import Provider
from switchyard_sim.server import Simulator

from .conftest import cm_path, eventually, provider_path
from .manifests import LOOPBACK, NS, policy, provider, secret
from .test_lifecycle import compiled_status, condition

KEY = "sk-probe-secret-1234"


@pytest.fixture
async def sim():
    simulator = Simulator(seed=1)
    await simulator.start()
    yield simulator
    await simulator.stop()


def sim_provider(sim, name, type_="openai-compatible", **spec):
    family = {"anthropic": "anthropic", "gemini": "gemini"}.get(type_, "openai")
    body = provider(name, type_=type_, secret="keys", key="K", baseURL=sim.base_url(name, family),
                    healthCheck={"interval": "100ms", "timeout": "1s", "failureThreshold": 2, **spec})
    return body


async def health_state(kube, name, state):
    body = await kube.get(provider_path(name))
    health = (body.get("status") or {}).get("health") or {}
    return body if health.get("state") == state else None


async def test_probes_flip_health_and_recompile(api, kube, operator, sim, caplog):
    caplog.set_level(logging.DEBUG)
    await kube.create(core_path("secrets", NS), secret("keys", K=KEY, grant="primary,backup"))
    await kube.create(custom_path("llmproviders", NS), sim_provider(sim, "primary"))
    await kube.create(custom_path("llmproviders", NS), sim_provider(sim, "backup", type_="anthropic"))
    await kube.create(custom_path("routingpolicies", NS), policy("p", targets=[("primary", "m1"), ("backup", "m1")]))

    body = await eventually(lambda: health_state(kube, "primary", "Healthy"))
    assert body["status"]["health"]["consecutiveFailures"] == 0
    assert body["status"]["health"]["latencyMs"] >= 0
    assert condition(body, "Healthy")["status"] == "True"
    await eventually(lambda: health_state(kube, "backup", "Healthy"))
    await eventually(lambda: compiled_status(kube, "p", "True"))

    sim.set_faults("primary", error_rate=1.0, error_status=500)
    body = await eventually(lambda: health_state(kube, "primary", "Unhealthy"))
    health = body["status"]["health"]
    assert health["consecutiveFailures"] >= 2 and "HTTP 500" in health["lastError"]
    healthy = condition(body, "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "ProbeFailed")

    async def marked(flag):
        cm = await kube.get(cm_path("p"))
        table = yaml.safe_load(cm["data"][TABLE_KEY])
        return {p["name"]: p["healthy"] for p in table["providers"]}["primary"] is flag

    await eventually(lambda: marked(False))
    pol = await kube.get(custom_path("routingpolicies", NS, "p"))
    assert pol["status"]["routes"][0]["targets"] == ["primary/m1 (unhealthy)", "backup/m1"]

    sim.set_faults("primary")  # healthy again
    await eventually(lambda: health_state(kube, "primary", "Healthy"))
    await eventually(lambda: marked(True))
    reasons = {e["reason"] for e in await kube.list(core_path("events", NS))}
    assert {"Unhealthy", "Recovered"} <= reasons

    # The key never leaves the two Secrets: not in ConfigMaps, status, events, or logs.
    for (resource, _, name), obj in api.objects.items():
        if obj.deleted or resource.plural == "secrets":
            continue
        assert KEY not in str(obj.raw), f"{resource.plural}/{name} carries the key"
    assert KEY not in caplog.text


async def test_bad_key_is_unhealthy_with_a_readable_error(api, kube, operator, sim):
    await kube.create(core_path("secrets", NS), secret("keys", K="sk-bad-key", grant="g"))
    await kube.create(custom_path("llmproviders", NS), sim_provider(sim, "g", type_="gemini"))
    body = await eventually(lambda: health_state(kube, "g", "Unhealthy"))
    assert "Unauthorized" in body["status"]["health"]["lastError"]
    assert "sk-bad-key" not in str(body)


SPEC = HealthCheckSpec()


async def test_probe_modes_and_failures(sim):
    openai = Provider(name="o", type="openai-compatible", base_url=sim.base_url("o"))
    async with httpx.AsyncClient() as http:
        ok = await probe(http, openai, KEY, HealthCheckSpec(mode="Completion", model="gpt-4o-mini"), LOOPBACK)
        assert ok.ok, ok.error
        sim.set_faults("o", hang_rate=1.0)
        slow = await probe(http, openai, KEY, HealthCheckSpec(timeout="200ms"), LOOPBACK)
        assert not slow.ok and slow.error.startswith("Timeout")
        refused = Provider(name="r", type="openai-compatible", base_url="http://127.0.0.1:9/v1")
        down = await probe(http, refused, KEY, SPEC, LOOPBACK)
        assert not down.ok and down.error.startswith("ConnectionError") and KEY not in down.error
        # Not allow-listed: nothing is sent (the simulator would have answered).
        sim.set_faults("o", hang_rate=0.0)
        pinned = await probe(http, openai, KEY, SPEC)
        assert not pinned.ok and pinned.latency_ms == 0 and pinned.error.startswith("EndpointNotAllowed")


def test_health_state_machine():
    unknown = HealthStatus()
    fail = ProbeOutcome(False, 5, "ServerError: HTTP 500")
    one = next_health(unknown, fail, 2, "t1")
    assert (one.state, one.consecutive_failures) == (HealthState.UNKNOWN, 1)
    two = next_health(one, fail, 2, "t2")
    assert (two.state, two.consecutive_failures, two.last_error) == (HealthState.UNHEALTHY, 2, "ServerError: HTTP 500")
    back = next_health(two, ProbeOutcome(True, 7), 2, "t3")
    assert (back.state, back.consecutive_failures, back.latency_ms, back.last_error) == (HealthState.HEALTHY, 0, 7, None)
    assert next_health(back, fail, 2, "t4").state is HealthState.HEALTHY
