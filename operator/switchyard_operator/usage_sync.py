"""The reconcile steps behind usage reports: fold spend, judge budgets, count routers, tidy up.

    a usage ConfigMap changed -> fold its report into every provider's status (one write each,
                                 resourceVersion precondition, re-read and re-fold on 409);
                                 delete it once its final report is folded; refresh the
                                 policy's routers (recompile when their number changed)
    provider tick             -> every published report folded, then month rollover, stale
                                 routers retired, WithinBudget, and a recompile when the
                                 provider crosses its Disable budget (also on a spec change)
    policy tick               -> routers whose pod is gone are retired and their ConfigMaps
                                 deleted; routers status refreshed

The rules themselves are pure and live elsewhere: spend.fold (and the exactly-once argument in
its module docstring), budget, replicas, propagation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import kopf
from switchyard_router import clock
from switchyard_router.usage import UsageReport

from . import conditions as cond
from .budget import WITHIN_BUDGET, BudgetState, budget_of, transition_event, with_budget_condition
from .kube import KubeError, core_path, custom_path
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
from .spend import (
    Ledger,
    expire,
    fold,
    is_folded,
    merge_patch_for,
    parse_ledger,
    roll_over,
    spend_status,
)
from .usage_maps import UsageMap, delete_usage_map, read_usage_maps

JSON = dict[str, Any]
Logger = logging.Logger | kopf.Logger
CONFLICT_ATTEMPTS = 8


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


async def fold_usage_map(
    rt: Runtime, namespace: str, usage: UsageMap, logger: Logger, *, gone: bool = False
) -> bool:
    """Fold one router's report into every provider of the namespace; delete its ConfigMap once
    its final report (or, its pod being gone, its last one) is folded everywhere. A final report
    stays readable for one report interval first (for people and tools watching it); the
    policy's sweep deletes it then. True when the ConfigMap was deleted."""
    report = usage.report
    folded = True
    now = clock.now()
    for body in await rt.kube.list(custom_path(PROVIDERS, namespace)):
        name = body["metadata"]["name"]
        ledger = await fold_into_provider(rt, namespace, name, [(report, gone)], logger, body=body)
        if ledger is not None and not is_folded(ledger, report, name, now):
            folded = False  # e.g. a report of the previous month's process after a rollover
    grace = timedelta(seconds=rt.usage.report_interval)
    if folded and (gone or (report.final and now - report.reported_at >= grace)):
        deleted = await delete_usage_map(rt.kube, usage)
        if deleted:
            logger.info(f"usage of {usage.pod} ({report.incarnation}) folded; deleted {usage.name}")
        return deleted
    return False


async def refresh_routers(
    rt: Runtime, namespace: str, policy: str, logger: Logger, maps: list[UsageMap] | None = None
) -> JSON | None:
    """Write status.routers of a policy; recompile the policies sharing its providers when its
    number of live routers changed (each router's share of the limits changes with it)."""
    body = await rt.kube.get(custom_path(POLICIES, namespace, policy))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    if maps is None:
        maps = await read_usage_maps(rt.kube, namespace)
    table = await rt.kube.get(core_path("configmaps", namespace, routes_name(policy)))
    current = ((table or {}).get("metadata", {}).get("annotations") or {}).get(HASH_ANNOTATION)
    routers = routers_status(policy, current, maps, clock.now(), rt.usage.stale_after)
    old = (body.get("status") or {}).get("routers")
    if old == routers:
        return routers
    if (old or {}).get("total", 0) != routers["total"]:
        mine = referenced_providers(body)
        for other in await rt.kube.list(custom_path(POLICIES, namespace)):
            if other["metadata"]["name"] == policy or mine & referenced_providers(other):
                await reconcile_policy(rt, namespace, other["metadata"]["name"], logger)
        return routers
    async with rt.lock(POLICIES, namespace, policy):
        await rt.kube.patch(
            custom_path(POLICIES, namespace, policy, status=True), {"status": {"routers": routers}}
        )
    return routers


async def on_usage_map(rt: Runtime, namespace: str, usage: UsageMap, logger: Logger) -> None:
    """A router wrote its report. The policy's routers are refreshed when what this router says
    about itself changed (a new process, another table, final); the periodic sweep notices
    routers that fall silent."""
    deleted = await fold_usage_map(rt, namespace, usage, logger)
    report = usage.report
    key = (namespace, usage.name)
    said = (usage.policy, report.incarnation, report.table_hash, report.final, deleted)
    if usage.policy and rt.routers_seen.get(key) != said:
        await refresh_routers(rt, namespace, usage.policy, logger)
    rt.routers_seen[key] = said


async def housekeep_provider(rt: Runtime, namespace: str, name: str, logger: Logger) -> Ledger | None:
    """Periodic: fold every published report, then roll the month over, retire silent routers
    and judge the budget (which may re-enable a provider in a new month)."""
    maps = await read_usage_maps(rt.kube, namespace)
    reports = [(m.report, False) for m in maps]
    return await fold_into_provider(rt, namespace, name, reports, logger, expire_stale=True)


async def _pod_exists(rt: Runtime, namespace: str, pod: str) -> bool:
    return await rt.kube.get(core_path("pods", namespace, pod)) is not None


async def sweep_policy(rt: Runtime, namespace: str, policy: str, logger: Logger) -> JSON | None:
    """Periodic: retire the routers of a policy whose pods are gone (their last report is all
    there will be), finish final reports left behind, refresh status.routers."""
    now = clock.now()
    overdue = timedelta(seconds=2 * rt.usage.report_interval)
    maps = await read_usage_maps(rt.kube, namespace)
    retired = False
    for usage in maps:
        if usage.policy != policy:
            continue
        if usage.report.final:
            retired |= await fold_usage_map(rt, namespace, usage, logger)
        elif now - usage.report.reported_at > overdue and not await _pod_exists(rt, namespace, usage.pod):
            logger.info(f"router pod {usage.pod} is gone: folding its last report")
            retired |= await fold_usage_map(rt, namespace, usage, logger, gone=True)
    return await refresh_routers(rt, namespace, policy, logger, None if retired else maps)
