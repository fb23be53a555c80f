"""Monthly budgets: where a provider's spend stands against `spec.budget`, and what follows.

Pure functions of the provider body and the clock. The WithinBudget condition says:

    True  WithinBudget    below warnAtPercent of monthlyUSD
    True  BudgetWarning   at or above warnAtPercent, below the budget
    False BudgetExceeded  at or above the budget

With `onExceeded: Disable`, an exceeded provider is left out of every routing table
(`is_disabled`) until the spend falls back under the budget: the budget is raised, or a new month
starts from zero (a spend of an earlier month never disables).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from switchyard_router.usage import period_of

from . import conditions as cond
from .models import BudgetAction, BudgetSpec

WITHIN_BUDGET = "WithinBudget"
JSON = dict[str, Any]


class BudgetState(StrEnum):
    WITHIN = "WithinBudget"
    WARNING = "BudgetWarning"
    EXCEEDED = "BudgetExceeded"


def state_of(budget: BudgetSpec, cost: Decimal) -> BudgetState:
    limit = Decimal(budget.monthly_usd)
    if cost >= limit:
        return BudgetState.EXCEEDED
    if cost * 100 >= limit * budget.warn_at_percent:
        return BudgetState.WARNING
    return BudgetState.WITHIN


def budget_of(body: Mapping[str, Any]) -> BudgetSpec | None:
    raw = (body.get("spec") or {}).get("budget")
    if not isinstance(raw, Mapping):
        return None
    try:
        return BudgetSpec.model_validate(raw)
    except ValidationError:
        return None


def month_cost(spend: Mapping[str, Any] | None, now: datetime) -> Decimal:
    """The spend shown in the status, counted only when it is this month's: exact cost plus the
    estimate for abandoned answers (the provider bills those too)."""
    spend = spend or {}
    if spend.get("period") != period_of(now):
        return Decimal(0)
    try:
        return Decimal(str(spend.get("costUSD") or "0")) + Decimal(str(spend.get("estimatedCostUSD") or "0"))
    except InvalidOperation:
        return Decimal(0)


def is_disabled(body: Mapping[str, Any], now: datetime) -> bool:
    """Whether the routers must stop using this provider (budget exceeded with Disable)."""
    budget = budget_of(body)
    if budget is None or budget.on_exceeded is not BudgetAction.DISABLE:
        return False
    spend = (body.get("status") or {}).get("spend")
    return state_of(budget, month_cost(spend, now)) is BudgetState.EXCEEDED


def budget_condition(
    budget: BudgetSpec, spend: Mapping[str, Any] | None, now: datetime, generation: int | None
) -> JSON:
    cost = month_cost(spend, now)
    state = state_of(budget, cost)
    limit = Decimal(budget.monthly_usd)
    share = "" if not limit else f" ({(cost * 100 / limit).quantize(Decimal('0.1'))}%)"
    spent = f"${cost.quantize(Decimal('0.01'))} of ${budget.monthly_usd}{share} spent in {period_of(now)}"
    if state is BudgetState.EXCEEDED:
        if budget.on_exceeded is BudgetAction.DISABLE:
            then = "routing to this provider is disabled until next month or until the budget is raised"
        else:
            then = "onExceeded is Alert: routing continues"
        return cond.condition(WITHIN_BUDGET, False, state, f"budget exceeded: {spent}; {then}", generation)
    if state is BudgetState.WARNING:
        return cond.condition(
            WITHIN_BUDGET, True, state,
            f"{spent}, at or above the warning threshold of {budget.warn_at_percent}%", generation,
        )
    return cond.condition(WITHIN_BUDGET, True, state, spent, generation)


def with_budget_condition(
    body: Mapping[str, Any], spend: Mapping[str, Any] | None, now: datetime
) -> tuple[list[JSON], JSON | None]:
    """The provider's conditions with WithinBudget computed for `spend` (dropped without a
    budget), and that condition (None without a budget)."""
    status = body.get("status") or {}
    old = [dict(c) for c in status.get("conditions") or []]
    budget = budget_of(body)
    if budget is None:
        return [c for c in old if c.get("type") != WITHIN_BUDGET], None
    new = budget_condition(budget, spend, now, (body.get("metadata") or {}).get("generation"))
    return cond.merge(old, [new]), new


def transition_event(old: Mapping[str, Any] | None, new: JSON | None) -> tuple[str, str, str] | None:
    """(type, reason, message) of the Event worth posting for a budget change, or None."""
    if new is None:
        return None
    if old is None and new["reason"] == BudgetState.WITHIN:
        return None  # a budget that starts out fine is no news
    if old is not None and old.get("reason") == new["reason"]:
        return None
    kind = "Normal" if new["reason"] == BudgetState.WITHIN else "Warning"
    return kind, str(new["reason"]), str(new["message"])
