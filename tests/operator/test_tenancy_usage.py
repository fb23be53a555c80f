"""Forged usage (issue 18, finding 4), performed against the real operator on the emulated API.

Team A's pod tries to trip team B's budget and to hide or inflate spend: a ConfigMap written the
way routers used to report, a report naming another pod and policy, negative and absurd numbers,
unknown fields, an oversized body, and a well-formed report counting a provider its policy does
not route to. Each is refused (an Event on the pod, a metric) or simply not counted, and team
B's provider keeps its spend and its place in B's routes.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from switchyard_operator.kube import core_path, custom_path
from switchyard_operator.metrics import REPORTS
from switchyard_router.adapters import Usage

from .conftest import eventually, provider_path
from .manifests import NS, policy, provider, secret
from .test_budget import table_providers
from .test_spend_operator import INTERVAL, PRICE, WAIT, fast_reports, router, running_operator, spend_of

__all__ = ["fast_reports"]


async def setup(kube) -> None:
    await kube.create(core_path("secrets", NS), secret(K="sk-1", grant="b-only,shared"))
    budget = {"monthlyUSD": "1", "onExceeded": "Disable"}
    await kube.create(custom_path("llmproviders", NS), provider("b-only", secret="keys", key="K", budget=budget))
    await kube.create(custom_path("llmproviders", NS), provider("shared", secret="keys", key="K", budget=budget))
    await kube.create(custom_path("routingpolicies", NS), policy("team-a", targets=[("shared", "m1")]))
    await kube.create(custom_path("routingpolicies", NS), policy("team-b", targets=[("b-only", "m1"), ("shared", "m1")]))


async def refusals(kube, pod: str) -> list[str]:
    events = await kube.list(core_path("events", NS))
    return [e["message"] for e in events
            if e.get("reason") == "UsageReportRefused" and e["involvedObject"]["name"] == pod]


def metric_lines(policy: str = "team-a") -> list[str]:
    registry = CollectorRegistry()
    registry.register(REPORTS)
    return [line for line in generate_latest(registry).decode().splitlines() if f'policy="{policy}"' in line]


async def test_forged_usage_is_refused_reported_and_harmless(api, kube, fleet):
    await setup(kube)
    honest = router("a-0", "team-a")
    honest.record("shared", "m1", Usage(input_tokens=1000, output_tokens=0, reported=True), PRICE)
    await fleet.add("a-0", policy="team-a")
    await fleet.add("a-1", policy="team-a")
    fleet.publish(honest.snapshot(table_hash="h"))
    forger = router("a-1", "team-a")
    good = forger.snapshot(table_hash="h").model_dump(mode="json", by_alias=True)

    def counter(provider_name: str, **numbers) -> dict:
        return {"provider": provider_name, "model": "m1", "period": good["reportedAt"][:7], **numbers}

    async with running_operator(api):
        await eventually(table_providers(kube, "team-b", ["b-only", "shared"]), WAIT)
        # The way routers reported before: a usage ConfigMap anyone who writes ConfigMaps can write.
        await kube.create(core_path("configmaps", NS), {
            "metadata": {"name": "switchyard-usage-b-0", "labels": {
                "switchyard.dev/usage-report": "true", "switchyard.dev/policy": "team-b"}},
            "data": {"report.json": json.dumps({**good, "pod": "b-0", "policy": "team-b", "counters": [
                counter("b-only", requests=1, costUSD="1000000")]})},
        })
        cases = {
            "speaks for team B's pod": (
                {**good, "pod": "b-0", "policy": "team-b", "counters": [counter("b-only", costUSD="1000000")]},
                "WrongPod: the report speaks for pod team/b-0 of policy team-b"),
            "negative spend hides cost": (
                {**good, "counters": [counter("shared", requests=-5, costUSD="-3")]},
                "Invalid: not a usage report: counters.0.requests: Input should be greater than or equal to 0"),
            "an infinite cost": (
                {**good, "counters": [counter("shared", costUSD="Infinity")]},
                "Invalid: not a usage report: counters.0.costUSD: Input should be a finite number"),
            "an unknown field": ({**good, "bonus": 1}, "Invalid: not a usage report: bonus: Extra inputs are not permitted"),
            "a counter twice": (
                {**good, "counters": [counter("shared", requests=1)] * 2},
                "Invalid: counter shared/m1/"),
            "not JSON at all": (b"\x00" * 64, "Invalid: not a usage report"),
            "two megabytes": (b" " * (2 << 20), "TooLarge: the report is over 1048576 bytes"),
        }
        for name, (body, expected) in cases.items():
            fleet.publish(body if isinstance(body, bytes) else json.dumps(body).encode(), pod="a-1")

            async def told(expected=expected, name=name):
                messages = await refusals(kube, "a-1")
                assert any(m.startswith(expected) for m in messages), (name, messages)
                return True

            await eventually(told, WAIT)
        assert all("1000000" not in m and "Infinity" not in m for m in await refusals(kube, "a-1"))
        assert any('outcome="WrongPod"' in line for line in metric_lines())
        assert any('outcome="Invalid"' in line for line in metric_lines())
        assert any('outcome="TooLarge"' in line for line in metric_lines())

        # Well formed, but counting a provider team A does not route to: not counted there.
        forger.record("b-only", "m1", Usage(input_tokens=10**9, output_tokens=0, reported=True), PRICE)
        forger.record("shared", "m1", Usage(input_tokens=2000, output_tokens=0, reported=True), PRICE)
        forged = forger.snapshot(table_hash="h")
        fleet.publish(forged)

        async def shared_counted():
            spend = await spend_of(kube, "shared")
            assert spend.get("requests") == 2, spend  # a-0's one, a-1's shared one
            return spend

        spend = await eventually(shared_counted, WAIT)
        assert Decimal(spend["costUSD"]) == Decimal("0.003")
        await asyncio.sleep(4 * INTERVAL)
        assert not (await spend_of(kube, "b-only")).get("requests")
        # Team B's provider is still within budget, and still in team B's routes.
        await eventually(table_providers(kube, "team-b", ["b-only", "shared"]), WAIT)
        body = await kube.get(provider_path("b-only"))
        within = [c for c in body["status"]["conditions"] if c["type"] == "WithinBudget"]
        assert not within or within[0]["status"] == "True"


async def test_a_pod_admitted_without_the_webhook_counts_for_nothing(api, kube, fleet):
    # Created while no webhook answered (failurePolicy: Ignore), a pod of team A's ServiceAccount
    # carries a hand-made router that claims team B's policy. Its reports are not pulled.
    await setup(kube)
    await fleet.grant("team-a", "team-a")
    await fleet.add("sneaky", policy="team-b", granted=False, serviceAccountName="team-a")
    forger = router("sneaky", "team-b")
    forger.record("b-only", "m1", Usage(input_tokens=10**9, output_tokens=0, reported=True), PRICE)
    fleet.publish(forger.snapshot(table_hash="h"))
    async with running_operator(api):
        async def told():
            events = await kube.list(core_path("events", NS))
            messages = [e["message"] for e in events if e.get("reason") == "UsageNotPulled"]
            assert messages == [
                "ServiceAccount team-a may not use RoutingPolicy team-b: this pod's usage is not pulled "
                "(grant the verb 'use' on the policy, e.g. with the chart's routerAccess)"], messages
            return True

        await eventually(told, WAIT)
        await asyncio.sleep(4 * INTERVAL)
        assert fleet.ports["sneaky"].pulls == 0
        assert not (await spend_of(kube, "b-only")).get("requests")
        assert any('policy="team-b"' in line and 'outcome="NotAllowed"' in line for line in metric_lines("team-b"))
