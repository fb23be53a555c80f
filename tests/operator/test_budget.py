"""Budgets: states, the WithinBudget condition, Events on transitions, Disable, raise, new month."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import yaml
from switchyard_operator.budget import (
    BudgetState,
    budget_condition,
    is_disabled,
    month_cost,
    state_of,
    transition_event,
    with_budget_condition,
)
from switchyard_operator.compile import compile_policy
from switchyard_operator.grants import GrantedSecret
from switchyard_operator.kube import KubeError, core_path, custom_path
from switchyard_operator.models import BudgetSpec
from switchyard_operator.outputs import TABLE_KEY
from switchyard_router.adapters import Usage

from .conftest import cm_path, eventually, provider_path
from .manifests import LOOPBACK, NS, policy, provider, secret
from .test_spend_operator import PRICE, WAIT, fast_reports, router, running_operator

__all__ = ["fast_reports"]  # the module's autouse fixture: routers report every 0.5 s

NOW = datetime(2026, 11, 15, tzinfo=UTC)
BUDGET = BudgetSpec.model_validate({"monthlyUSD": "10", "warnAtPercent": 80, "onExceeded": "Disable"})


def body(cost: str | None, period: str = "2026-11", **budget) -> dict:
    out = provider("a", budget={"monthlyUSD": "10", "warnAtPercent": 80, "onExceeded": "Disable", **budget})
    if cost is not None:
        out["status"] = {"spend": {"period": period, "costUSD": cost}}
    return out


def test_states_and_disable():
    assert state_of(BUDGET, Decimal("7.99")) is BudgetState.WITHIN
    assert state_of(BUDGET, Decimal("8")) is BudgetState.WARNING
    assert state_of(BUDGET, Decimal("10")) is BudgetState.EXCEEDED
    assert is_disabled(body("10"), NOW) and not is_disabled(body("9.99"), NOW)
    assert not is_disabled(body("10", period="2026-10"), NOW)  # last month's spend never disables
    assert not is_disabled(body("11", onExceeded="Alert"), NOW)
    assert not is_disabled(provider("a"), NOW) and not is_disabled(body(None), NOW)
    assert not is_disabled({"spec": {"budget": {"monthlyUSD": "x"}}}, NOW)
    assert month_cost({"period": "2026-11", "costUSD": "bad"}, NOW) == 0


def test_condition_messages_and_events():
    exceeded = budget_condition(BUDGET, {"period": "2026-11", "costUSD": "12.5"}, NOW, 3)
    assert (exceeded["status"], exceeded["reason"], exceeded["observedGeneration"]) == ("False", "BudgetExceeded", 3)
    assert "$12.50 of $10 (125.0%)" in exceeded["message"] and "disabled" in exceeded["message"]
    alert = BudgetSpec.model_validate({"monthlyUSD": "10", "onExceeded": "Alert"})
    assert "routing continues" in budget_condition(alert, {"period": "2026-11", "costUSD": "10"}, NOW, None)["message"]
    warn = budget_condition(BUDGET, {"period": "2026-11", "costUSD": "8"}, NOW, None)
    assert (warn["status"], warn["reason"]) == ("True", "BudgetWarning")
    within = budget_condition(BUDGET, None, NOW, None)
    assert (within["status"], within["reason"]) == ("True", "WithinBudget")
    assert transition_event(None, within) is None  # a budget that starts out fine is no news
    assert transition_event(within, warn)[:2] == ("Warning", "BudgetWarning")
    assert transition_event(warn, warn) is None and transition_event(warn, None) is None
    assert transition_event(exceeded, within)[:2] == ("Normal", "WithinBudget")
    free = BudgetSpec.model_validate({"monthlyUSD": "0"})
    assert "%" not in budget_condition(free, None, NOW, None)["message"]
    # without a budget the condition goes away
    old = {**provider("a"), "status": {"conditions": [within, {"type": "Ready", "status": "True"}]}}
    conditions, new = with_budget_condition(old, None, NOW)
    assert new is None and [c["type"] for c in conditions] == ["Ready"]


def test_compile_leaves_a_disabled_provider_out():
    providers = {"a": body("10"), "b": provider("b")}
    secrets = {"keys": GrantedSecret({"OPENAI_API_KEY": "sk"}, frozenset({"a", "b"}))}
    both = compile_policy(policy("p", targets=[("a", "m1"), ("b", "m1")]), providers, secrets, now=NOW,
                          endpoints=LOOPBACK)
    assert both.ok and both.disabled == ["a"]
    assert [p.name for p in both.table.providers] == ["b"] and both.credentials == {"b.primary": "sk"}
    solo = compile_policy(policy("p", targets=[("a", "m1")]), providers, secrets, now=NOW, endpoints=LOOPBACK)
    assert solo.ok and solo.table.routes == () and "left out" in solo.warnings[0]
    later = compile_policy(policy("p", targets=[("a", "m1")]), providers, secrets,
                           now=datetime(2026, 12, 1, tzinfo=UTC), endpoints=LOOPBACK)
    assert [p.name for p in later.table.providers] == ["a"]


# --------------------------------------------------------------------------- end to end


async def condition(kube, name):
    for c in ((await kube.get(provider_path(name))).get("status") or {}).get("conditions") or []:
        if c["type"] == "WithinBudget":
            return c
    return None


def reason_is(kube, reason):
    async def check():
        c = await condition(kube, "a")
        assert c is not None and c["reason"] == reason, c
        return c
    return check


def table_providers(kube, policy_name, names):
    async def check():
        cm = await kube.get(cm_path(policy_name))
        assert cm is not None, "no table yet"
        table = yaml.safe_load(cm["data"][TABLE_KEY])
        got = [p["name"] for p in table["providers"]]
        assert got == names, got
        return table
    return check


async def events(kube, reason):
    return [e for e in await kube.list(core_path("events", NS)) if e.get("reason") == reason]


def previous_period(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


async def test_budget_warn_exceed_disable_raise_and_a_new_month(api, kube, fleet):
    await kube.create(core_path("secrets", NS), secret(K="sk-1", grant="a,b"))
    budget = {"monthlyUSD": "0.01", "warnAtPercent": 50, "onExceeded": "Disable"}
    await kube.create(custom_path("llmproviders", NS), provider("a", secret="keys", key="K", budget=budget))
    await kube.create(custom_path("llmproviders", NS), provider("b", secret="keys", key="K"))
    await kube.create(custom_path("routingpolicies", NS), policy("chat", targets=[("a", "m1"), ("b", "m1")]))
    await kube.create(custom_path("routingpolicies", NS), policy("solo", targets=[("a", "m1")]))
    await fleet.add("pod-0")
    r = router("pod-0")

    async def spend(n):  # each request costs exactly $0.001
        for _ in range(n):
            r.record("a", "m1", Usage(input_tokens=1000, output_tokens=0, reported=True), PRICE)
        fleet.publish(r.snapshot(table_hash="h"))

    async with running_operator(api):
        await eventually(table_providers(kube, "chat", ["a", "b"]), WAIT)
        await spend(3)
        await eventually(reason_is(kube, "WithinBudget"), WAIT)
        await spend(3)
        warn = await eventually(reason_is(kube, "BudgetWarning"), WAIT)
        assert warn["status"] == "True" and "60.0%" in warn["message"]
        await eventually(lambda: events(kube, "BudgetWarning"), WAIT)
        await spend(5)
        exceeded = await eventually(reason_is(kube, "BudgetExceeded"), WAIT)
        assert exceeded["status"] == "False"
        await eventually(table_providers(kube, "chat", ["b"]), WAIT)  # Disable: a is out
        solo = await eventually(table_providers(kube, "solo", []), WAIT)
        assert solo["routes"] == []
        (event,) = await events(kube, "BudgetExceeded")
        assert event["type"] == "Warning" and event["involvedObject"]["name"] == "a"
        assert (await kube.get(provider_path("a")))["status"]["spend"]["costUSD"] == "0.011"

        await kube.patch(provider_path("a"), {"spec": {"budget": {"monthlyUSD": "1"}}})  # raised
        await eventually(reason_is(kube, "WithinBudget"), WAIT)
        await eventually(table_providers(kube, "chat", ["a", "b"]), WAIT)
        await eventually(table_providers(kube, "solo", ["a"]), WAIT)
        assert [e["type"] for e in await events(kube, "WithinBudget")] == ["Normal"]

        await kube.patch(provider_path("a"), {"spec": {"budget": {"monthlyUSD": "0.01"}}})  # lowered
        await eventually(reason_is(kube, "BudgetExceeded"), WAIT)
        await eventually(table_providers(kube, "solo", []), WAIT)

        # The month turns: as if all this had been spent last month. The router's report says
        # so too (its counters are keyed by month), else it would rightly count as this month's.
        last = previous_period((await kube.get(provider_path("a")))["status"]["spend"]["period"])
        report = r.snapshot(table_hash="h")
        for counter in report.counters:
            counter.period = last
        fleet.publish(report)
        for _ in range(10):
            current = await kube.get(provider_path("a"))
            spent = current["status"]["spend"]
            last = previous_period(spent["period"])
            patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                     "status": {"spend": {"period": last, "ledger": {"period": last}}}}
            try:
                await kube.patch(custom_path("llmproviders", NS, "a", status=True), patch)
                break
            except KubeError as exc:
                assert exc.status == 409
        # Judging the budget sees a past month at once (WithinBudget may come before the rollover
        # is written): wait for the operator's own write of the new month.
        async def rolled_over():
            spent = (await kube.get(provider_path("a")))["status"]["spend"]
            assert spent["period"] != last, spent["period"]
            return spent

        spent = await eventually(rolled_over, WAIT)
        assert (spent["costUSD"], spent["requests"]) == ("0", 0)
        await eventually(reason_is(kube, "WithinBudget"), WAIT)
        await eventually(table_providers(kube, "solo", ["a"]), WAIT)
