"""Rate limits across router replicas without a shared store: each replica gets its share.

Every router enforces its table's limits alone. With n live routers using a provider, each one's
table carries ceil(limit / n) (at least 1), so together they stay near the provider's limit. The
count is per provider: the live routers of every policy that routes to it (live = pulled within
the stale window, counted from the reports the operator pulled). When the count changes, the operator
recompiles, and the tables carry the new share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from switchyard_router.table import Provider, RateLimits

if TYPE_CHECKING:
    from .usage_reports import RouterReport


def divide(limit: int | None, replicas: int) -> int | None:
    if limit is None or replicas <= 1:
        return limit
    return max(1, -(-limit // replicas))


def _share(limits: RateLimits, replicas: int) -> RateLimits:
    return RateLimits(
        requests_per_minute=divide(limits.requests_per_minute, replicas),
        tokens_per_minute=divide(limits.tokens_per_minute, replicas),
    )


def share_of(provider: Provider, replicas: int) -> Provider:
    """The provider as one of `replicas` routers should enforce it (its and its keys' limits)."""
    if replicas <= 1:
        return provider
    credentials = tuple(
        c.model_copy(update={"limits": _share(c.limits, replicas)}) for c in provider.credentials
    )
    return provider.model_copy(
        update={"limits": _share(provider.limits, replicas), "credentials": credentials}
    )


def live_per_policy(
    maps: Iterable[RouterReport], now: datetime, stale_after: timedelta
) -> dict[str, set[str]]:
    """Policy -> pods of its live routers."""
    out: dict[str, set[str]] = {}
    for usage in maps:
        if usage.policy and usage.live(now, stale_after):
            out.setdefault(usage.policy, set()).add(usage.pod)
    return out


def replicas_per_provider(
    providers_of: Mapping[str, Iterable[str]], live: Mapping[str, set[str]]
) -> dict[str, int]:
    """Provider -> live routers that may use it, over every policy routing to it."""
    pods: dict[str, set[str]] = {}
    for policy, providers in providers_of.items():
        for provider in providers:
            pods.setdefault(provider, set()).update(live.get(policy, set()))
    return {provider: len(p) for provider, p in pods.items()}


def rate_limited(provider: Mapping[str, Any]) -> bool:
    """Does this LLMProvider body (tolerant of an invalid spec) set any rate limit? Only those are
    divided among routers: a table routing to none of them does not change with their number."""
    spec = provider.get("spec") or {}
    credentials = spec.get("credentials")
    credentials = credentials if isinstance(credentials, list) else []
    limits = [spec.get("limits"), *(c.get("limits") for c in credentials if isinstance(c, dict))]
    return any(isinstance(lim, dict) and any(v is not None for v in lim.values()) for lim in limits)
