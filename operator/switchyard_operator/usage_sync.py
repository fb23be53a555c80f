"""The steps behind usage: pull the routers, fold spend, judge budgets, count routers.

    policy tick (report interval) -> pull GET /usage from each router pod of the policy, check
                                     each report (usage_check), fold the good ones into the
                                     providers the policy routes to (one status write each,
                                     resourceVersion precondition, re-read and re-fold on 409),
                                     refresh status.routers (recompile when their number changed)
    a router pod terminating      -> long-poll its final report and fold it
    a router pod deleted          -> retire its last report (nothing more can come)
    provider tick                 -> the pulled reports folded, then month rollover, stale
                                     routers retired, WithinBudget, and a recompile when the
                                     provider crosses its Disable budget (also on a spec change)

Why pulling (the argument): a router writes nothing, so nobody can forge a report by writing an
object (RBAC cannot scope `create` by name, so routers allowed to write ConfigMaps could write
anyone's). The operator reads each report from the pod the webhook admitted, and that pod's
policy, fixed in its spec at admission, decides what the report may count for: only that
policy's providers. A pod of another policy has no way to answer for it or to erase it. The
rules themselves are pure and live elsewhere: spend.fold (and the exactly-once argument in its
module docstring), usage_check, budget, replicas, propagation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kopf
from switchyard_router import clock
from switchyard_router.usage import UsageReport

from . import conditions as cond
from .access import may_use_policy
from .budget import WITHIN_BUDGET, BudgetState, budget_of, transition_event, with_budget_condition
from .kube import KubeError, core_path, custom_path
from .metrics import REPORTS
from .models import BudgetAction
from .outputs import HASH_ANNOTATION, routes_name
from .propagation import routers_status
from .reconcile import (
    POLICIES,
    PROVIDERS,
    Runtime,
    recompile_for_provider,
    reconcile_policy,
    referenced_providers,
)
from .replicas import rate_limited
from .router_pods import RouterPod, router_pod
from .spend import (
    Ledger,
    expire,
    fold,
    merge_patch_for,
    parse_ledger,
    retire_pods,
    roll_over,
    spend_status,
)
from .usage_check import ReportRefused, check_report
from .usage_reports import RouterReport, RouterUnreachable, pull_raw

JSON = dict[str, Any]
Logger = logging.Logger | kopf.Logger
CONFLICT_ATTEMPTS = 8
PULLS_AT_ONCE = 16
FINAL_WAIT = 10.0  # seconds a final pull asks the router to hold its answer
FINAL_PULL_FOR = 300.0  # how long a terminating pod's final report is waited for
RIGHTS_FOR = 300.0  # how long a ServiceAccount's right to a policy is taken as answered


def _exceeded(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("reason") == BudgetState.EXCEEDED


async def fold_into_provider(
    rt: Runtime,
    namespace: str,
    name: str,
    reports: Sequence[tuple[UsageReport, bool]],
    logger: Logger,
    body: JSON | None = None,
    *,
    expire_stale: bool = False,
    gone_pods: frozenset[str] = frozenset(),
) -> Ledger | None:
    """Fold (report, pod gone) pairs into one provider's status.spend, and judge its budget.
    With `expire_stale` (the reports being every published one), retire silent routers.

    The ledger and the totals go out in one status write that carries the resourceVersion the
    fold started from; on 409 the provider is read again and the fold redone. Returns the
    provider's ledger after the write (None when the provider is gone).
    """
    path = custom_path(PROVIDERS, namespace, name)
    settings = rt.usage.fold()
    for _ in range(CONFLICT_ATTEMPTS):
        async with rt.lock(PROVIDERS, namespace, name):
            if body is None:
                body = await rt.kube.get(path)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return None
            now = clock.now()
            status: JSON = body.get("status") or {}
            old_spend: JSON = status.get("spend") or {}
            before = parse_ledger(old_spend)
            ledger = before
            for report, gone in reports:
                ledger = fold(ledger, report, name, now, settings, gone=gone)
            if gone_pods:
                ledger = retire_pods(roll_over(ledger, now), gone_pods, settings)
            if expire_stale:
                ledger = expire(roll_over(ledger, now), now, settings)
            if ledger is None or (before is None and ledger == Ledger(period=ledger.period)):
                ledger_changed, new_spend = False, old_spend  # never used: nothing to record
            else:
                ledger_changed = ledger != before
                new_spend = spend_status(ledger, cond.now()) if ledger_changed else old_spend
            conditions, budget = with_budget_condition(body, new_spend, now)
            conditions_changed = not cond.same(status.get("conditions"), conditions)
            if not ledger_changed and not conditions_changed:
                return ledger
            patch: JSON = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}}
            patch["status"] = {"conditions": conditions} if conditions_changed else {}
            if ledger_changed:
                patch["status"]["spend"] = merge_patch_for(old_spend, new_spend)
            try:
                await rt.kube.patch(custom_path(PROVIDERS, namespace, name, status=True), patch)
            except KubeError as exc:
                if exc.status != 409:
                    raise
                body = None  # someone wrote in between: read again, fold again
                continue
        previous = cond.find(status.get("conditions"), WITHIN_BUDGET)
        event = transition_event(previous, budget)
        if event is not None:
            rt.events(body, *event)
            logger.info(f"budget: {event[1]}: {event[2]}")
        spec_budget = budget_of(body)
        if (
            spec_budget is not None
            and spec_budget.on_exceeded is BudgetAction.DISABLE
            and _exceeded(previous) != _exceeded(budget)
        ):
            await recompile_for_provider(rt, namespace, name, logger)
        return ledger
    raise KubeError(409, f"LLMProvider {namespace}/{name}: gave up after {CONFLICT_ATTEMPTS} conflicts")


async def fold_for_policy(
    rt: Runtime,
    namespace: str,
    policy: str,
    reports: Sequence[tuple[UsageReport, bool]],
    logger: Logger,
) -> None:
    """Fold (report, pod gone) pairs of one policy's routers into the providers it routes to:
    a router's report never counts for a provider its policy does not use."""
    body = await rt.kube.get(custom_path(POLICIES, namespace, policy))
    mine = referenced_providers(body or {})
    for provider in await rt.kube.list(custom_path(PROVIDERS, namespace)):
        name = provider["metadata"]["name"]
        if name in mine:
            await fold_into_provider(rt, namespace, name, reports, logger, body=provider)


def _refused(rt: Runtime, pod: RouterPod, exc: ReportRefused, logger: Logger) -> None:
    REPORTS.count(pod.namespace, pod.policy, exc.reason)
    key = (pod.namespace, pod.name)
    if rt.routers.refused.get(key) != exc.message:  # told once per pod and reason, not every pull
        rt.routers.refused[key] = exc.message
        logger.warning(f"usage report of pod {pod.name} refused ({exc.reason}): {exc.message}")
        rt.events(pod.ref(), "Warning", "UsageReportRefused", f"{exc.reason}: {exc.message}")


async def pull_router(
    rt: Runtime, pod: RouterPod, logger: Logger, *, wait_final: float | None = None
) -> RouterReport | None:
    """One pull: the pod's checked report (kept as its last), or None (refused or unreachable)."""
    try:
        report = check_report(await pull_raw(rt.pull_http, pod, wait_final=wait_final), pod)
    except RouterUnreachable as exc:
        REPORTS.count(pod.namespace, pod.policy, "unreachable")
        logger.debug(f"usage of pod {pod.name} not pulled: {exc}")
        return None
    except ReportRefused as exc:
        _refused(rt, pod, exc, logger)
        return None
    REPORTS.count(pod.namespace, pod.policy, "accepted")
    rt.routers.refused.pop((pod.namespace, pod.name), None)
    pulled = RouterReport(pod.namespace, pod.name, pod.policy, report, clock.now())
    if (pod.namespace, pod.name) in rt.routers.pods:  # not if the pod was deleted meanwhile
        rt.routers.reports[(pod.namespace, pod.name)] = pulled
    return pulled


async def collect_policy(rt: Runtime, namespace: str, policy: str, logger: Logger) -> JSON | None:
    """Periodic: pull every router of the policy, fold what they said, refresh status.routers."""
    pods = [p for p in rt.routers.of_policy(namespace, policy) if p.url is not None]
    gate = asyncio.Semaphore(PULLS_AT_ONCE)

    async def pull(pod: RouterPod) -> RouterReport | None:
        async with gate:
            return await pull_router(rt, pod, logger)

    pulled = [r for r in await asyncio.gather(*(pull(p) for p in pods)) if r is not None]
    if pulled:
        await fold_for_policy(rt, namespace, policy, [(r.report, False) for r in pulled], logger)
    return await refresh_routers(rt, namespace, policy, logger)


async def refresh_routers(rt: Runtime, namespace: str, policy: str, logger: Logger) -> JSON | None:
    """Write status.routers of a policy; recompile the policies sharing its providers when its
    number of live routers changed (each router's share of the limits changes with it)."""
    body = await rt.kube.get(custom_path(POLICIES, namespace, policy))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    reports = rt.routers.reports_in(namespace)
    table = await rt.kube.get(core_path("configmaps", namespace, routes_name(policy)))
    current = ((table or {}).get("metadata", {}).get("annotations") or {}).get(HASH_ANNOTATION)
    routers = routers_status(policy, current, reports, clock.now(), rt.usage.stale_after)
    old = (body.get("status") or {}).get("routers")
    if old == routers:
        return routers
    if (old or {}).get("total", 0) != routers["total"]:
        # Only the policies sharing a rate-limited provider with this one get new tables (each
        # router's share of the limits); recompiling every policy that shares any provider made
        # a fleet's start-up cost M x M compiles (docs/performance.md).
        await reconcile_policy(rt, namespace, policy, logger)
        providers = await rt.kube.list(custom_path(PROVIDERS, namespace))
        limited = referenced_providers(body) & {p["metadata"]["name"] for p in providers if rate_limited(p)}
        if limited:
            for other in await rt.kube.list(custom_path(POLICIES, namespace)):
                if other["metadata"]["name"] != policy and limited & referenced_providers(other):
                    await reconcile_policy(rt, namespace, other["metadata"]["name"], logger)
        return routers
    async with rt.lock(POLICIES, namespace, policy):
        await rt.kube.patch(
            custom_path(POLICIES, namespace, policy, status=True), {"status": {"routers": routers}}
        )
    return routers


async def collect_final(rt: Runtime, pod: RouterPod, logger: Logger) -> None:
    """A router pod is terminating: wait for its final report (the router holds it until pulled)
    and fold it, so a graceful stop loses nothing."""
    key = (pod.namespace, pod.name)
    deadline = clock.monotonic() + FINAL_PULL_FOR
    try:
        while key in rt.routers.pods and clock.monotonic() < deadline:
            pulled = await pull_router(rt, pod, logger, wait_final=FINAL_WAIT)
            if pulled is None:
                await asyncio.sleep(min(1.0, rt.usage.report_interval))
                continue
            await fold_for_policy(rt, pod.namespace, pod.policy, [(pulled.report, False)], logger)
            if pulled.report.final:
                logger.info(f"final usage report of pod {pod.name} ({pulled.report.incarnation}) folded")
                await refresh_routers(rt, pod.namespace, pod.policy, logger)
                return
    finally:
        rt.finals.pop(pod.uid, None)


async def _may_report(rt: Runtime, pod: RouterPod, logger: Logger) -> bool:
    """A pod's usage is pulled only when its ServiceAccount may use its policy: the webhook
    checked that at admission, but a pod created while no webhook answered was not checked."""
    key = (pod.namespace, pod.service_account, pod.policy)
    allowed, until = rt.routers.rights.get(key, (False, 0.0))
    if clock.monotonic() >= until:
        allowed = await may_use_policy(rt.kube, *key)
        rt.routers.rights[key] = (allowed, clock.monotonic() + RIGHTS_FOR)
    if not allowed:
        REPORTS.count(pod.namespace, pod.policy, "NotAllowed")
        message = (
            f"ServiceAccount {pod.service_account} may not use RoutingPolicy {pod.policy}: this pod's "
            "usage is not pulled (grant the verb 'use' on the policy, e.g. with the chart's routerAccess)"
        )
        logger.warning(f"pod {pod.name}: {message}")
        rt.events(pod.ref(), "Warning", "UsageNotPulled", message)
    return allowed


async def on_pod_event(rt: Runtime, type_: str | None, body: Mapping[str, Any], logger: Logger) -> None:
    """Keep the router pods current: a terminating one gets its final pull, a deleted one's last
    report is retired (nothing more can come from it)."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
    pod = router_pod(body) if type_ != "DELETED" else None
    if pod is None:
        known = rt.routers.pods.get(key)
        last = rt.routers.forget(key)
        if known is not None and last is not None:
            await fold_for_policy(rt, known.namespace, known.policy, [(last.report, True)], logger)
            await refresh_routers(rt, known.namespace, known.policy, logger)
        return
    if key not in rt.routers.pods and not await _may_report(rt, pod, logger):
        return
    rt.routers.pods[key] = pod
    if pod.deleting and pod.uid not in rt.finals:
        rt.finals[pod.uid] = asyncio.create_task(collect_final(rt, pod, logger))


async def housekeep_provider(rt: Runtime, namespace: str, name: str, logger: Logger) -> Ledger | None:
    """Periodic: fold the pulled reports of the policies using this provider, then roll the month
    over, retire silent routers and judge the budget (which may re-enable it in a new month).

    Silence is judged only once the operator has been pulling for a whole stale window: after an
    outage (of the operator, or a failover) the ledger's routers must first have had their
    chance to be pulled, or live ones would be taken for silent."""
    users = {
        p["metadata"]["name"]
        for p in await rt.kube.list(custom_path(POLICIES, namespace))
        if name in referenced_providers(p)
    }
    reports = [(r.report, False) for r in rt.routers.reports_in(namespace) if r.policy in users]
    settled = clock.now() - rt.started_at > rt.usage.stale_after
    body = await rt.kube.get(custom_path(PROVIDERS, namespace, name))
    if body is None:
        return None
    # Routers whose pod went while no operator watched (the Pod watch saw no deletion).
    ledger = parse_ledger((body.get("status") or {}).get("spend"))
    unknown = {e.pod for e in (ledger.live.values() if ledger else ()) if e.pod}
    unknown -= {pod for (ns, pod) in rt.routers.pods if ns == namespace}
    gone = frozenset([p for p in unknown if await rt.kube.get(core_path("pods", namespace, p)) is None])
    return await fold_into_provider(
        rt, namespace, name, reports, logger, body=body, expire_stale=settled, gone_pods=gone
    )
