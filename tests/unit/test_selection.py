from collections import Counter

import pytest
from switchyard_router import selection
from switchyard_router.credentials import CredentialStore
from switchyard_router.runtime import CompiledTable
from switchyard_router.selection import estimated_cost, order_targets
from switchyard_router.table import load_table


def compiled(strategy: str, weights=(1, 1, 1), healthy=(True, True, True), prices=True) -> CompiledTable:
    providers = []
    for i, name in enumerate(["a", "b", "c"]):
        model: dict = {"name": "m"}
        if prices:
            model["pricing"] = {"inputPerMillionTokens": str(3 - i), "outputPerMillionTokens": str(3 - i)}
        providers.append({"name": name, "type": "openai", "models": [model], "healthy": healthy[i]})
    targets = [{"provider": n, "model": "m", "weight": w} for n, w in zip("abc", weights, strict=True)]
    table = load_table(
        {"providers": providers, "routes": [{"name": "r", "strategy": strategy, "targets": targets}]}
    )
    return CompiledTable(table, CredentialStore())


def names(table: CompiledTable, prompt_tokens: int = 0) -> list[str]:
    return [t.provider.name for t in order_targets(table.routes["r"], prompt_tokens)]


def test_priority_keeps_the_listed_order():
    table = compiled("Priority")
    assert names(table) == ["a", "b", "c"]


def test_unhealthy_targets_go_last():
    table = compiled("Priority", healthy=(False, True, True))
    assert names(table) == ["b", "c", "a"]


def test_round_robin_rotates_the_first_choice():
    table = compiled("RoundRobin")
    firsts = [names(table)[0] for _ in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]
    assert names(table) == ["a", "b", "c"]


def test_smooth_weighted_round_robin_spreads_by_weight():
    table = compiled("Weighted", weights=(5, 1, 1))
    picks = [names(table)[0] for _ in range(7)]
    assert Counter(picks) == {"a": 5, "b": 1, "c": 1}
    # Smooth: the heavy target is not picked five times in a row.
    assert picks[:3] != ["a", "a", "a"] or picks[3:6] != ["a", "a", "a"]


def test_weighted_with_zero_weights_falls_back_to_priority():
    table = compiled("Weighted", weights=(0, 0, 0))
    assert names(table) == ["a", "b", "c"]


def test_least_busy_prefers_fewest_in_flight(monkeypatch):
    table = compiled("LeastBusy")
    a, b, c = table.routes["r"].targets
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 1
    assert names(table) == ["b", "c", "a"]


def test_least_latency_prefers_fast_and_measures_unknown_first(monkeypatch):
    monkeypatch.setattr(selection.random, "random", lambda: 0.99)
    table = compiled("LeastLatency")
    a, b, c = table.routes["r"].targets
    a.observe_latency(0.5)
    b.observe_latency(0.1)
    assert names(table) == ["c", "b", "a"]  # c is unmeasured
    c.observe_latency(0.3)
    c.observe_latency(0.3)
    assert names(table) == ["b", "c", "a"]


def test_least_latency_explores_sometimes(monkeypatch):
    monkeypatch.setattr(selection.random, "random", lambda: 0.0)
    monkeypatch.setattr(selection.random, "randrange", lambda n: 2)
    table = compiled("LeastLatency")
    assert names(table) == ["c", "a", "b"]


def test_lowest_cost_orders_by_price_and_unpriced_last():
    table = compiled("LowestCost")
    assert names(table, prompt_tokens=1000) == ["c", "b", "a"]
    unpriced = compiled("LowestCost", prices=False)
    assert names(unpriced) == ["a", "b", "c"]
    target = table.routes["r"].targets[0]
    assert estimated_cost(target, 1_000_000, 0) == 3


@pytest.mark.parametrize(
    "strategy", ["Priority", "RoundRobin", "Weighted", "LeastLatency", "LeastBusy", "LowestCost"]
)
def test_every_strategy_returns_every_target_once(strategy):
    table = compiled(strategy)
    for _ in range(5):
        assert sorted(names(table)) == ["a", "b", "c"]


def test_single_target_route_skips_the_strategy():
    table = load_table(
        {
            "providers": [{"name": "a", "type": "openai"}],
            "routes": [{"name": "r", "targets": [{"provider": "a", "model": "m"}]}],
        }
    )
    runtime = CompiledTable(table, CredentialStore())
    assert [t.provider.name for t in order_targets(runtime.routes["r"])] == ["a"]
