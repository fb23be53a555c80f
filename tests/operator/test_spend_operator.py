"""Spend end to end: routers' health ports, pulled -> LLMProvider status.spend, with kopf running
for real against the emulated API, router restarts, evictions and an operator restart in between."""

from __future__ import annotations

import asyncio
import contextlib
import random
from decimal import Decimal

import kopf
import pytest
from switchyard_operator.kube import core_path, custom_path
from switchyard_operator.spend import parse_ledger, shown_cost
from switchyard_router.adapters import Usage
from switchyard_router.table import Pricing
from switchyard_router.usage import UsageLedger

from .conftest import cm_path, eventually, fast_settings, provider_path
from .manifests import LOOPBACK, NS, policy, provider, secret

PRICE = Pricing(input_per_million_tokens=Decimal("1"), output_per_million_tokens=Decimal("2"))
INTERVAL = 0.5
WAIT = 20.0  # generous: this machine is shared with benchmarks


@pytest.fixture(autouse=True)
def fast_reports(monkeypatch):
    """Routers are pulled every 0.5 s here. The test routers' answers change only when a step says
    so, and a router counts as stale only after 300 intervals (150 s) unless a test says otherwise."""
    monkeypatch.setenv("SWITCHYARD_REPORT_INTERVAL", str(INTERVAL))
    monkeypatch.setenv("SWITCHYARD_STALE_INTERVALS", "300")


# --------------------------------------------------------------------------- helpers


async def start_operator(api) -> asyncio.Task:
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=kopf.get_default_registry(),
            settings=fast_settings(),
            namespaces=[NS],
            standalone=True,
            memo=kopf.Memo(connection=kopf.ConnectionInfo(server=str(api.url)), endpoints=LOOPBACK),
            ready_flag=ready,
        )
    )
    await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), task.exception()
    return task


async def stop_operator(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)


@contextlib.asynccontextmanager
async def running_operator(api):
    task = await start_operator(api)
    try:
        yield task
    finally:
        await stop_operator(task)


def router(pod: str, policy_name: str = "chat") -> UsageLedger:
    ledger = UsageLedger(policy=policy_name)
    ledger.pod = pod
    ledger.namespace = NS
    return ledger


def serve(ledger: UsageLedger, provider_name: str, n: int, rng: random.Random | None = None) -> Decimal:
    """Serve n requests; the exact sum of their costs, as the router computes each one."""
    rng = rng or random.Random(0)
    cost = Decimal(0)
    for _ in range(n):
        usage = Usage(input_tokens=rng.randint(1, 4000), output_tokens=rng.randint(1, 800), reported=True)
        cost += ledger.record(provider_name, "m1", usage, PRICE)
    return cost


async def spend_of(kube, name: str) -> dict:
    body = await kube.get(provider_path(name))
    return (body.get("status") or {}).get("spend") or {}


def spend_is(kube, name: str, cost: Decimal, requests: int):
    async def check():
        spend = await spend_of(kube, name)
        assert spend.get("costUSD") == shown_cost(cost) and spend.get("requests") == requests, (
            spend.get("costUSD"), shown_cost(cost), spend.get("requests"), requests)
        return spend
    return check


async def setup_providers(kube, *names: str, policy_name: str = "chat", **spec) -> None:
    await kube.create(core_path("secrets", NS), secret(K="sk-1", grant=",".join(names)))
    for name in names:
        await kube.create(custom_path("llmproviders", NS), provider(name, secret="keys", key="K", **spec))
    await kube.create(custom_path("routingpolicies", NS), policy(policy_name, targets=[(n, "m1") for n in names]))


# --------------------------------------------------------------------------- the test


async def test_spend_is_exact_across_router_restarts_evictions_and_an_operator_restart(api, kube, fleet):
    rng = random.Random(7)
    expected = {"a": Decimal(0), "b": Decimal(0)}
    count = {"a": 0, "b": 0}

    def serve_round(routers):
        for r in routers:
            for name in ("a", "b"):
                n = rng.randint(0, 4)
                expected[name] += serve(r, name, n, rng)
                count[name] += n

    async def exact():
        for name in ("a", "b"):
            await eventually(spend_is(kube, name, expected[name], count[name]), WAIT)

    await setup_providers(kube, "a", "b")
    routers = {pod: router(pod) for pod in ("pod-0", "pod-1", "pod-2")}
    for pod in routers:
        await fleet.add(pod)

    async with running_operator(api):
        await eventually(lambda: kube.get(cm_path("chat")), WAIT)
        sent = []
        for _ in range(3):
            serve_round(routers.values())
            for r in routers.values():
                sent.append(r.snapshot(table_hash="h1"))
                fleet.publish(sent[-1])
            await asyncio.sleep(INTERVAL)
        await exact()
        fleet.publish(sent[0])  # a replayed old report adds nothing
        await asyncio.sleep(3 * INTERVAL)
        await exact()
        fleet.publish(sent[-3])
        # pod-1's container crashes and restarts: a new incarnation answers, from sequence 1
        routers["pod-1"] = router("pod-1")
        serve_round([routers["pod-1"]])
        fleet.publish(routers["pod-1"].snapshot(table_hash="h1"))
        await exact()
        # pod-2 is scaled down: terminating, its router hands over the final report, then it goes
        serve_round([routers["pod-2"]])
        await fleet.terminate("pod-2")
        fleet.publish(routers.pop("pod-2").snapshot(table_hash="h1", final=True))
        await exact()
        await fleet.gone("pod-2")

    # the operator is down: pod-0 is evicted hard (no final report), pod-1 keeps serving
    await fleet.gone("pod-0")
    routers.pop("pod-0")
    for _ in range(3):
        serve_round(routers.values())
        fleet.publish(routers["pod-1"].snapshot(table_hash="h1"))

    async with running_operator(api):
        await exact()  # pod-1's usage while the operator was down is pulled whole

        async def pod_0_retired():  # its pod is gone: it will say nothing more
            for name in ("a", "b"):
                ledger = parse_ledger(await spend_of(kube, name))
                assert ledger is not None and {e.pod for e in ledger.live.values()} <= {"pod-1"}, ledger
            return True

        await eventually(pod_0_retired, WAIT)
        serve_round([routers["pod-1"]])
        await fleet.terminate("pod-1")
        fleet.publish(routers["pod-1"].snapshot(table_hash="h1", final=True))
        await exact()

        async def all_retired():
            for name in ("a", "b"):
                ledger = parse_ledger(await spend_of(kube, name))
                assert ledger is not None and ledger.live == {}, ledger
            return True

        await eventually(all_retired, WAIT)
        spend = await spend_of(kube, "a")
        assert spend["liveRouters"] == 0 and spend["period"] and spend["lastUpdate"]
        assert len(parse_ledger(spend).folded) == 4  # pod-0, pod-1 (twice), pod-2


async def test_a_silent_router_is_retired_and_its_total_kept(api, kube, fleet, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_STALE_INTERVALS", "3")  # 1.5 s
    await setup_providers(kube, "a")
    await fleet.add("pod-0")
    r = router("pod-0")
    cost = serve(r, "a", 3)
    async with running_operator(api):
        fleet.publish(r.snapshot(table_hash="h1"))
        await eventually(spend_is(kube, "a", cost, 3), WAIT)
        fleet.ports["pod-0"].report = None  # its router stops answering; the pod stays

        async def retired():
            ledger = parse_ledger(await spend_of(kube, "a"))
            return ledger is not None and not ledger.live and r.incarnation in ledger.folded

        await eventually(retired, WAIT)
        serve(r, "a", 2)  # it comes back after being retired: not counted (documented)
        fleet.publish(r.snapshot(table_hash="h1"))
        await asyncio.sleep(4 * INTERVAL)
        await eventually(spend_is(kube, "a", cost, 3), WAIT)
        assert (await spend_of(kube, "a"))["liveRouters"] == 0


async def test_write_conflicts_are_refolded_not_lost(api, kube):
    """Two folds racing on one provider: the resourceVersion precondition makes one re-read."""
    import logging

    from switchyard_operator.reconcile import Runtime
    from switchyard_operator.usage_sync import fold_into_provider

    await kube.create(core_path("secrets", NS), secret(K="sk-1", grant="a"))
    await kube.create(custom_path("llmproviders", NS), provider("a", secret="keys", key="K"))
    rt = Runtime(kube)
    stale_body = await kube.get(provider_path("a"))
    r1, r2 = router("pod-0"), router("pod-1")
    total = serve(r1, "a", 2) + serve(r2, "a", 3)
    log = logging.getLogger("test")
    await fold_into_provider(rt, NS, "a", [(r1.snapshot(table_hash=None), False)], log)
    # the second fold starts from the body read before the first write: 409, re-read, re-fold
    await fold_into_provider(rt, NS, "a", [(r2.snapshot(table_hash=None), False)], log, body=stale_body)
    await eventually(spend_is(kube, "a", total, 5))
    conflicts = [q for q in api if q.method.value == "PATCH" and q.url.path.endswith("/status")]
    assert len(conflicts) == 3
    assert await fold_into_provider(rt, NS, "absent", [], log) is None


def test_shown_cost_is_exact_to_the_micro_dollar():
    r = router("pod-0")
    total = serve(r, "a", 1000, random.Random(3))
    assert total == total.quantize(Decimal("0.000001"))  # whole micro-dollars at these prices
    assert shown_cost(total) == format(total.normalize(), "f")
