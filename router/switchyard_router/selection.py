"""Routing strategies: the order in which a request tries a route's targets.

The first target is the strategy's choice; the rest is the fallback order, by priority.
Targets the operator marked unhealthy go last: still a last resort, never a first choice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

from .runtime import CompiledRoute, TargetRuntime
from .table import Strategy

EXPLORATION_RATE = 0.05  # LeastLatency: share of requests that try another target first

Order = Callable[[CompiledRoute, int], list[int]]


def _priority(route: CompiledRoute, prompt_tokens: int) -> list[int]:
    return list(range(len(route.targets)))


def _first(chosen: int, count: int) -> list[int]:
    return [chosen, *(i for i in range(count) if i != chosen)]


def _round_robin(route: CompiledRoute, prompt_tokens: int) -> list[int]:
    count = len(route.targets)
    start = route.cursor % count
    route.cursor = start + 1
    return [(start + i) % count for i in range(count)]


def _weighted(route: CompiledRoute, prompt_tokens: int) -> list[int]:
    # Smooth weighted round robin (nginx): spreads picks evenly rather than in bursts.
    total = sum(route.weights)
    if total == 0:
        return _priority(route, prompt_tokens)
    best = 0
    for i, weight in enumerate(route.weights):
        route.current[i] += weight
        if route.current[i] > route.current[best]:
            best = i
    route.current[best] -= total
    return _first(best, len(route.targets))


def _least_latency(route: CompiledRoute, prompt_tokens: int) -> list[int]:
    count = len(route.targets)
    if count > 1 and random.random() < EXPLORATION_RATE:
        return _first(random.randrange(count), count)
    # Unmeasured targets sort first so each gets measured; ties keep priority order.
    return sorted(range(count), key=lambda i: route.targets[i].latency_ewma or 0.0)


def _least_busy(route: CompiledRoute, prompt_tokens: int) -> list[int]:
    return sorted(range(len(route.targets)), key=lambda i: route.targets[i].in_flight)


def estimated_cost(target: TargetRuntime, prompt_tokens: int, output_tokens: int = 256) -> Decimal | None:
    pricing = target.spec.pricing if target.spec else None
    if pricing is None:
        return None
    tokens_cost = (
        pricing.input_per_million_tokens * prompt_tokens + pricing.output_per_million_tokens * output_tokens
    )
    return tokens_cost / 1_000_000


def _lowest_cost(route: CompiledRoute, prompt_tokens: int) -> list[int]:
    costs = [estimated_cost(t, prompt_tokens) for t in route.targets]
    # Unpriced targets go last: an unknown price is not a low one.
    return sorted(range(len(costs)), key=lambda i: (costs[i] is None, costs[i] or 0))


_ORDERS: dict[Strategy, Order] = {
    Strategy.PRIORITY: _priority,
    Strategy.ROUND_ROBIN: _round_robin,
    Strategy.WEIGHTED: _weighted,
    Strategy.LEAST_LATENCY: _least_latency,
    Strategy.LEAST_BUSY: _least_busy,
    Strategy.LOWEST_COST: _lowest_cost,
}


def order_targets(route: CompiledRoute, prompt_tokens: int = 0) -> list[TargetRuntime]:
    targets = route.targets
    if len(targets) == 1:
        return [targets[0]]
    order = _ORDERS[route.route.strategy](route, prompt_tokens)
    chosen = [targets[i] for i in order]
    healthy = [t for t in chosen if t.provider.healthy]
    if len(healthy) == len(chosen):
        return chosen
    return healthy + [t for t in chosen if not t.provider.healthy]
