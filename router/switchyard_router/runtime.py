"""A loaded table made ready to serve: routes resolved to targets with their keys and state.

Per-target state (in flight, latency, key rotation) lives on `TargetRuntime` and carries over a
reload for every target whose provider settings did not change.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from .adapters import ProviderAdapter, adapter_for
from .credentials import CredentialStore
from .table import ModelSpec, Provider, Route, RoutingTable, Target

PINNED_ROUTES_CACHED = 256  # `<provider>/<model>` names come from clients: keep the cache bounded


@dataclass(eq=False, slots=True)
class TargetRuntime:
    provider: Provider
    model: str
    spec: ModelSpec | None
    adapter: ProviderAdapter
    keys: list[str]
    # Bounded metric label: a model the table does not declare is reported as "other".
    model_label: str
    in_flight: int = 0
    latency_ewma: float | None = None
    key_cursor: int = 0

    def next_key(self) -> str | None:
        if not self.keys:
            return None
        self.key_cursor = (self.key_cursor + 1) % len(self.keys)
        return self.keys[self.key_cursor]

    def observe_latency(self, seconds: float) -> None:
        # An exponential moving average: recent answers count most, one outlier does not rule.
        previous = self.latency_ewma
        self.latency_ewma = seconds if previous is None else previous * 0.8 + seconds * 0.2


@dataclass(eq=False, slots=True)
class CompiledRoute:
    route: Route
    targets: list[TargetRuntime]
    weights: list[int]
    cursor: int = 0
    # Smooth weighted round robin's running scores, one per target.
    current: list[int] = field(default_factory=list)


class CompiledTable:
    def __init__(
        self,
        table: RoutingTable,
        credentials: CredentialStore,
        previous: CompiledTable | None = None,
    ) -> None:
        self.table = table
        self.digest = table.digest()
        self._credentials = credentials
        self._carried = previous._targets if previous else {}
        self._targets: dict[tuple[bytes, str], TargetRuntime] = {}
        self.routes = {route.name: self._compile(route) for route in table.routes}
        self._pinned: OrderedDict[str, CompiledRoute | None] = OrderedDict()
        self._carried = {}

    def _target(self, provider: Provider, model: str) -> TargetRuntime:
        ident = (orjson.dumps(provider.model_dump(mode="json")), model)
        runtime = self._targets.get(ident) or self._carried.get(ident)
        if runtime is None:
            keys = [k for c in provider.credentials if (k := self._credentials.get(c.key))]
            spec = provider.model(model)
            runtime = TargetRuntime(
                provider,
                model,
                spec,
                adapter_for(provider.type),
                keys,
                model if spec is not None else "other",
            )
        self._targets[ident] = runtime
        return runtime

    def _compile(self, route: Route, targets: tuple[Target, ...] | None = None) -> CompiledRoute:
        chosen = targets or route.targets
        runtimes = []
        for target in chosen:
            provider = self.table.provider(target.provider)
            assert provider is not None  # the table validated its references
            runtimes.append(self._target(provider, target.model))
        weights = [t.weight for t in chosen]
        return CompiledRoute(route, runtimes, weights, current=[0] * len(runtimes))

    def resolve(self, model: str) -> CompiledRoute | None:
        """A route by name, or `<provider>/<model>` pinned to one provider."""
        route = self.routes.get(model)
        if route is not None:
            return route
        if model in self._pinned:
            return self._pinned[model]
        pinned = self._pin(model)
        if len(self._pinned) < PINNED_ROUTES_CACHED:
            self._pinned[model] = pinned
        return pinned

    def _pin(self, model: str) -> CompiledRoute | None:
        provider_name, _, provider_model = model.partition("/")
        provider = self.table.provider(provider_name)
        if provider is None or not provider_model:
            return None
        # A pinned request keeps the retry and timeout settings of the first route using it.
        template = next(
            (r for r in self.table.routes if any(t.provider == provider_name for t in r.targets)),
            None,
        )
        target = Target(provider=provider_name, model=provider_model)
        route = Route(name=model, targets=(target,))
        if template is not None:
            route = template.model_copy(update={"name": model, "targets": (target,)})
        return self._compile(route)

    def model_names(self) -> list[str]:
        """What GET /v1/models lists: the routes, then each declared provider model pinned."""
        names = list(self.routes)
        for provider in self.table.providers:
            names.extend(f"{provider.name}/{spec.name}" for spec in provider.models)
        return names

    def key_values(self) -> list[str]:
        """Every key this table uses, so logs can be scrubbed of them."""
        return [key for runtime in self._targets.values() for key in runtime.keys]
