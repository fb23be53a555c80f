"""A loaded table made ready to serve: routes resolved to targets, keys and live state.

State (breakers, latency, in flight, key cooldowns, rate-limit buckets) lives on the runtime
objects and carries over a reload for every provider and target whose settings did not change.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from . import clock
from .adapters import ProviderAdapter, adapter_for
from .bounded import DEFAULT_LIMITS, ReadLimits
from .breaker import CircuitBreaker
from .credentials import CredentialStore
from .limits import Quota
from .table import (
    MODEL_NAME,
    MODEL_NAME_MAX,
    CircuitBreakerPolicy,
    ModelSpec,
    Provider,
    RateLimits,
    Route,
    RoutingTable,
    Target,
)

log = logging.getLogger("switchyard.router")

PINNED_ROUTES_CACHED = 256  # `<provider>/<model>` names come from clients: keep the cache bounded
KEY_REVOKED_FOR = 300.0  # a key refused with 401/403 is tried again after this long
KEY_COOLDOWN = 5.0  # a key answered 429 without Retry-After rests this long


def _quota(limits: RateLimits, now: float) -> Quota | None:
    if limits.requests_per_minute is None and limits.tokens_per_minute is None:
        return None
    return Quota(limits.requests_per_minute, limits.tokens_per_minute, now)


class KeyRuntime:
    """One API key: its quota, and a simple breaker (revoked on 401/403, cooling on 429)."""

    __slots__ = ("name", "quota", "state", "unavailable_until", "value")

    def __init__(self, name: str, value: str | None, quota: Quota | None) -> None:
        self.name = name
        self.value = value
        self.quota = quota
        self.state = "ok"
        self.unavailable_until = 0.0

    def available(self, tokens: int, now: float) -> bool:
        if now < self.unavailable_until:
            return False
        return self.quota is None or self.quota.allows(tokens, now)

    def rest(self, state: str, until: float) -> None:
        self.state = state
        self.unavailable_until = max(self.unavailable_until, until)


class ProviderRuntime:
    """What all targets of one provider share: its keys, their rotation, the provider's quota."""

    __slots__ = ("cursor", "keys", "provider", "quota")

    def __init__(self, provider: Provider, keys: list[KeyRuntime], now: float) -> None:
        self.provider = provider
        self.keys = keys
        self.cursor = 0
        self.quota = _quota(provider.limits, now)

    def available(self, tokens: int, now: float) -> bool:
        if self.quota is not None and not self.quota.allows(tokens, now):
            return False
        return any(key.available(tokens, now) for key in self.keys)

    def take_key(self, tokens: int, now: float) -> KeyRuntime | None:
        """The next usable key in rotation, its quota and the provider's charged; None if none."""
        if self.quota is not None and not self.quota.allows(tokens, now):
            return None
        count = len(self.keys)
        for step in range(count):
            key = self.keys[(self.cursor + step) % count]
            if key.available(tokens, now):
                self.cursor = (self.cursor + step + 1) % count
                if key.quota is not None:
                    key.quota.take(tokens, now)
                if self.quota is not None:
                    self.quota.take(tokens, now)
                return key
        return None

    def charge(self, key: KeyRuntime, tokens: int, now: float) -> None:
        if key.quota is not None:
            key.quota.charge(tokens, now)
        if self.quota is not None:
            self.quota.charge(tokens, now)

    def ready_at(self) -> float:
        return min((key.unavailable_until for key in self.keys), default=float("inf"))


@dataclass(eq=False, slots=True)
class TargetRuntime:
    shared: ProviderRuntime
    model: str
    spec: ModelSpec | None
    adapter: ProviderAdapter
    breaker: CircuitBreaker
    # Bounded metric label: a model the table does not declare is reported as "other".
    model_label: str
    in_flight: int = 0
    latency_ewma: float | None = None

    @property
    def provider(self) -> Provider:
        return self.shared.provider

    @property
    def context_window(self) -> int | None:
        return self.spec.context_window if self.spec else None

    def unavailable(self, prompt_tokens: int, now: float) -> str | None:
        """Why this target should be skipped now, or None when it can take the request."""
        window = self.context_window
        if window is not None and prompt_tokens > window:
            return "ContextWindow"
        if not self.breaker.available(now):
            return "CircuitOpen"
        if not self.shared.available(prompt_tokens, now):
            return "RateLimited"
        return None

    def ready_at(self) -> float:
        """When this target could take traffic again (for failing open to the soonest)."""
        return max(self.breaker.open_until, self.shared.ready_at())

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
    # When every target is unavailable, try the soonest to recover instead of refusing.
    fail_open: bool = True
    limits: ReadLimits = DEFAULT_LIMITS


class CompiledTable:
    def __init__(
        self,
        table: RoutingTable,
        credentials: CredentialStore,
        previous: CompiledTable | None = None,
    ) -> None:
        self.table = table
        self.digest = table.digest()
        self.breaker_policy: CircuitBreakerPolicy = table.circuit_breaker
        self.limits = ReadLimits.of(table.server)
        self._credentials = credentials
        self._now = clock.monotonic()
        carried_providers = previous._providers if previous else {}
        carried_targets = previous._targets if previous else {}
        self._providers: dict[tuple[bytes, tuple[str | None, ...]], ProviderRuntime] = {}
        self._targets: dict[tuple[bytes, str], TargetRuntime] = {}
        self._shared: dict[str, ProviderRuntime] = {}
        for provider in table.providers:
            self._shared[provider.name] = self._provider(provider, carried_providers)
        self._carried_targets = carried_targets
        self.routes = {route.name: self._compile(route) for route in table.routes}
        self._carried_targets = {}  # drop the reference, or every table would keep its ancestors
        self._pinned: OrderedDict[str, CompiledRoute | None] = OrderedDict()

    def _provider(
        self, provider: Provider, carried: dict[tuple[bytes, tuple[str | None, ...]], ProviderRuntime]
    ) -> ProviderRuntime:
        values = tuple(self._credentials.get(c.key) for c in provider.credentials)
        ident = (orjson.dumps(provider.model_dump(mode="json")), values)
        shared = carried.get(ident)
        if shared is None:
            keys = [
                KeyRuntime(c.name, value, _quota(c.limits, self._now))
                for c, value in zip(provider.credentials, values, strict=True)
                if value
            ]
            if not provider.credentials:
                # A provider without keys (a local vLLM, Ollama) still needs one slot to send with.
                keys = [KeyRuntime("none", None, None)]
            elif not keys:
                # Never send unauthenticated to a provider that wants a key: it is skipped instead.
                names = ", ".join(c.key for c in provider.credentials)
                log.error("provider %s has none of its keys (%s): it gets no traffic", provider.name, names)
            shared = ProviderRuntime(provider, keys, self._now)
        self._providers[ident] = shared
        return shared

    def _target(self, provider: Provider, model: str, keep: bool = True) -> TargetRuntime:
        ident = (orjson.dumps(provider.model_dump(mode="json")), model)
        shared = self._shared[provider.name]
        runtime = self._targets.get(ident) or self._carried_targets.get(ident)
        if runtime is None:
            spec = provider.model(model)
            runtime = TargetRuntime(
                shared,
                model,
                spec,
                adapter_for(provider.type),
                CircuitBreaker(self.breaker_policy),
                model if spec is not None else "other",
            )
        runtime.shared = shared  # keys may have rotated while the target stayed the same
        runtime.breaker.policy = self.breaker_policy
        if keep:  # a model a client named is not kept: clients could name millions
            self._targets[ident] = runtime
        return runtime

    def _compile(self, route: Route, keep: bool = True) -> CompiledRoute:
        runtimes = []
        for target in route.targets:
            provider = self.table.provider(target.provider)
            assert provider is not None  # the table validated its references
            runtimes.append(self._target(provider, target.model, keep))
        weights = [t.weight for t in route.targets]
        return CompiledRoute(
            route,
            runtimes,
            weights,
            current=[0] * len(runtimes),
            fail_open=self.breaker_policy.fail_open,
            limits=self.limits,
        )

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
        """`<provider>/<model>` for a model the provider declares, or any well-formed name when
        the provider allows any; None otherwise."""
        provider_name, _, provider_model = model.partition("/")
        provider = self.table.provider(provider_name)
        if provider is None or not provider_model:
            return None
        declared = provider.model(provider_model) is not None
        if not declared and not (
            provider.allow_any_model
            and len(provider_model) <= MODEL_NAME_MAX
            and MODEL_NAME.fullmatch(provider_model)
        ):
            return None
        # Its name labels metrics and usage: an undeclared model reads "other" there.
        name = model if declared else f"{provider_name}/other"
        # A pinned request keeps the retry and timeout settings of the first route using it.
        template = next(
            (r for r in self.table.routes if any(t.provider == provider_name for t in r.targets)),
            None,
        )
        target = Target(provider=provider_name, model=provider_model)
        route = Route(name=name, targets=(target,))
        if template is not None:
            route = template.model_copy(update={"name": name, "targets": (target,)})
        return self._compile(route, keep=declared)

    def model_names(self) -> list[str]:
        """What GET /v1/models lists: the routes, then each declared provider model pinned."""
        names = list(self.routes)
        for provider in self.table.providers:
            names.extend(f"{provider.name}/{spec.name}" for spec in provider.models)
        return names

    def key_values(self) -> list[str]:
        """Every key this table uses, so logs can be scrubbed of them."""
        return [key.value for shared in self._shared.values() for key in shared.keys if key.value]

    def without_keys(self) -> list[str]:
        """Providers that want keys and have none of them (their targets get no traffic)."""
        return [name for name, shared in self._shared.items() if not shared.keys]

    def uncallable_routes(self) -> list[str]:
        """Routes with no target it can call: every one of them lacks its provider's keys."""
        return [
            name for name, route in self.routes.items() if not any(t.shared.keys for t in route.targets)
        ]

    def targets(self) -> list[TargetRuntime]:
        return list(self._targets.values())
