"""Routers per policy (status.routers) and limits divided among live routers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import yaml
from switchyard_operator.kube import core_path, custom_path
from switchyard_operator.outputs import HASH_ANNOTATION, TABLE_KEY
from switchyard_operator.propagation import routers_status
from switchyard_operator.replicas import divide, live_per_policy, replicas_per_provider, share_of
from switchyard_operator.usage_reports import RouterReport, UsageSettings
from switchyard_router.table import Credential, Provider, RateLimits

from .conftest import cm_path, eventually, policy_path
from .manifests import NS, policy, provider, secret
from .test_spend_operator import WAIT, fast_reports, router, running_operator

__all__ = ["fast_reports"]

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
STALE = timedelta(seconds=150)


def usage_map(pod, policy_name="chat", table_hash="h1", final=False, age=0.0):
    report = router(pod, policy_name).snapshot(table_hash=table_hash, final=final)
    return RouterReport(NS, pod, policy_name, report, NOW - timedelta(seconds=age))


def test_divide_ceil_with_a_minimum_of_one():
    assert divide(None, 3) is None and divide(100, 0) == 100 and divide(100, 1) == 100
    assert divide(100, 3) == 34 and divide(2, 3) == 1 and divide(1, 50) == 1


def test_share_of_divides_provider_and_key_limits():
    p = Provider(name="a", type="openai", limits=RateLimits(requests_per_minute=100, tokens_per_minute=1000),
                 credentials=(Credential(name="k", key="a.k", limits=RateLimits(requests_per_minute=10)),))
    shared = share_of(p, 3)
    assert (shared.limits.requests_per_minute, shared.limits.tokens_per_minute) == (34, 334)
    assert shared.credentials[0].limits == RateLimits(requests_per_minute=4)
    assert share_of(p, 1) is p


def test_live_routers_per_policy_and_per_provider():
    maps = [usage_map("p0"), usage_map("p1"), usage_map("p2", final=True), usage_map("p3", age=200),
            usage_map("q0", "other")]
    live = live_per_policy(maps, NOW, STALE)
    assert live == {"chat": {"p0", "p1"}, "other": {"q0"}}
    assert replicas_per_provider({"chat": {"a", "b"}, "other": {"b"}, "idle": {"c"}}, live) == {
        "a": 2, "b": 3, "c": 0}


def test_routers_status():
    maps = [usage_map("p1"), usage_map("p0"), usage_map("p2", table_hash="old"), usage_map("p3", age=200)]
    assert routers_status("chat", "h1", maps, NOW, STALE) == {
        "current": 2, "total": 3, "summary": "2/3", "stale": ["p2"]}
    assert routers_status("chat", None, maps, NOW, STALE)["summary"] == "0/3"
    assert routers_status("none", "h1", maps, NOW, STALE) == {"current": 0, "total": 0, "summary": "0/0", "stale": []}


def test_usage_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_REPORT_INTERVAL", "15")
    monkeypatch.setenv("SWITCHYARD_STALE_INTERVALS", "10")
    settings = UsageSettings.from_env()
    assert settings.stale_after == timedelta(seconds=150) and settings.fold().heartbeat == timedelta(seconds=50)


# --------------------------------------------------------------------------- end to end


def limits_are(kube, rpm, tpm, key_rpm):
    async def check():
        table = yaml.safe_load((await kube.get(cm_path("chat")))["data"][TABLE_KEY])
        a = table["providers"][0]
        got = (a["limits"]["requestsPerMinute"], a["limits"]["tokensPerMinute"],
               a["credentials"][0]["limits"]["requestsPerMinute"])
        assert got == (rpm, tpm, key_rpm), got
        return True
    return check


def routers_are(kube, expected):
    async def check():
        routers = ((await kube.get(policy_path("chat"))).get("status") or {}).get("routers")
        assert routers == expected, routers
        return True
    return check


async def test_routers_are_counted_and_limits_shared_as_they_scale(api, kube, fleet):
    await kube.create(core_path("secrets", NS), secret(K="sk-1", grant="a"))
    body = provider("a", secret="keys", key="K", limits={"requestsPerMinute": 100, "tokensPerMinute": 1000})
    body["spec"]["credentials"][0]["limits"] = {"requestsPerMinute": 10}
    await kube.create(custom_path("llmproviders", NS), body)
    await kube.create(custom_path("routingpolicies", NS), policy("chat", targets=[("a", "m1")]))
    routers = {pod: router(pod) for pod in ("pod-0", "pod-1", "pod-2")}
    for pod in routers:
        await fleet.add(pod)
    async with running_operator(api):
        await eventually(lambda: kube.get(cm_path("chat")), WAIT)
        await eventually(limits_are(kube, 100, 1000, 10), WAIT)
        for r in routers.values():
            fleet.publish(r.snapshot(table_hash="older"))
        await eventually(limits_are(kube, 34, 334, 4), WAIT)  # three routers share the limits
        await eventually(routers_are(kube, {"current": 0, "total": 3, "summary": "0/3",
                                            "stale": ["pod-0", "pod-1", "pod-2"]}), WAIT)
        current = (await kube.get(cm_path("chat")))["metadata"]["annotations"][HASH_ANNOTATION]
        for pod in ("pod-0", "pod-1"):  # two routers reload the new table
            fleet.publish(routers[pod].snapshot(table_hash=current))
        await eventually(routers_are(kube, {"current": 2, "total": 3, "summary": "2/3", "stale": ["pod-2"]}), WAIT)
        # scale down: pod-2 stops gracefully
        await fleet.terminate("pod-2")
        fleet.publish(routers["pod-2"].snapshot(table_hash="older", final=True))
        await eventually(limits_are(kube, 50, 500, 5), WAIT)
        await eventually(routers_are(kube, {"current": 0, "total": 2, "summary": "0/2",
                                            "stale": ["pod-0", "pod-1"]}), WAIT)


async def test_a_router_count_change_recompiles_only_policies_sharing_a_rate_limited_provider(
    api, kube, monkeypatch
):
    """Every policy shares provider `a` (no limits): a new router of one policy changes no other
    table, so no other policy is compiled (this was M x M compiles as a fleet came up). Policies
    sharing rate-limited `b` do get recompiled: their routers' shares changed."""
    from switchyard_operator import usage_sync
    from switchyard_operator.reconcile import Runtime
    from switchyard_operator.replicas import rate_limited
    from switchyard_router import clock

    await kube.create(custom_path("llmproviders", NS), provider("a"))
    await kube.create(custom_path("llmproviders", NS), provider("b", limits={"requestsPerMinute": 60}))
    for name, targets in (("chat", [("a", "m1")]), ("other", [("a", "m1")]),
                          ("limited", [("a", "m1"), ("b", "m1")]), ("peer", [("b", "m1")])):
        await kube.create(custom_path("routingpolicies", NS), policy(name, targets=targets))
    compiled: list[str] = []

    async def reconcile(rt, namespace, name, logger):
        compiled.append(name)

    monkeypatch.setattr(usage_sync, "reconcile_policy", reconcile)
    rt = Runtime(kube)
    try:
        for pod, name in (("pod-0", "chat"), ("pod-1", "limited")):
            report = router(pod, name).snapshot(table_hash="h")
            rt.routers.reports[(NS, pod)] = RouterReport(NS, pod, name, report, clock.now())
        await usage_sync.refresh_routers(rt, NS, "chat", logging.getLogger("test"))
        assert compiled == ["chat"]
        compiled.clear()
        await usage_sync.refresh_routers(rt, NS, "limited", logging.getLogger("test"))
        assert compiled == ["limited", "peer"]
    finally:
        await rt.http.aclose()
        await rt.pull_http.aclose()
    assert not rate_limited(provider("a")) and not rate_limited({"spec": {"credentials": "bad"}})
    keyed = provider("c")
    keyed["spec"]["credentials"][0]["limits"] = {"tokensPerMinute": 5}
    assert rate_limited(keyed) and rate_limited(provider("b", limits={"requestsPerMinute": 60}))
