"""RoutingPolicy + LLMProviders + Secrets -> the router's RoutingTable and its credentials.

A plain function of plain data, shared by the operator and `switchyard compile`: no cluster,
no I/O. Every problem names the resource, the field and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from switchyard_router import clock
from switchyard_router.table import (
    Backoff,
    CircuitBreakerPolicy,
    Credential,
    ModelSpec,
    Pricing,
    Provider,
    RateLimits,
    Reasoning,
    RetryPolicy,
    Route,
    RoutingTable,
    ServerSettings,
    Strategy,
    TableError,
    Target,
    load_table,
)

from .budget import is_disabled
from .endpoints import EndpointPolicy
from .grants import GrantedSecret, opt_in_fix
from .models import LLMProviderSpec, RouteChain, RoutingPolicySpec
from .replicas import share_of
from .secrets import credential_key

JSON = dict[str, Any]
# name -> each Secret of the namespace that opted in (grants.py); others are not seen at all
SecretValues = Mapping[str, GrantedSecret]
M = TypeVar("M", bound=BaseModel)


class Reason(StrEnum):
    COMPILED = "Compiled"
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_PROVIDER = "UnknownProvider"
    SECRET_NOT_GRANTED = "SecretNotGranted"
    KEY_MISSING = "KeyMissing"
    ENDPOINT_NOT_ALLOWED = "EndpointNotAllowed"
    INVALID_TABLE = "InvalidTable"


@dataclass(frozen=True)
class Problem:
    """One thing a person must fix, with where it is."""

    reason: Reason
    resource: str  # e.g. "LLMProvider chatbot/openai"
    field: str  # e.g. "spec.credentials[0].secretKeyRef"
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.field}: {self.message}"


def summarize(problems: list[Problem], limit: int = 5) -> str:
    """One message for a condition: the first problems, and how many more."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return "; ".join(lines)


def table_fields(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the router's table model knows (the API may run ahead of a router change)."""
    return {k: v for k, v in values.items() if k in model.model_fields}


def _ref(kind: str, meta: Mapping[str, Any]) -> str:
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _loc(loc: tuple[int | str, ...], prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("function-"):
            out += f".{part}"
    return out


def spec_problems(exc: ValidationError, resource: str) -> list[Problem]:
    problems = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(Problem(Reason.INVALID_SPEC, resource, _loc(err["loc"], "spec"), message))
    return problems


def parse_spec(
    model: type[M], body: Mapping[str, Any], kind: str
) -> tuple[M | None, list[Problem]]:
    resource = _ref(kind, body.get("metadata") or {})
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        return None, [Problem(Reason.INVALID_SPEC, resource, "spec", "spec is missing")]
    try:
        return model.model_validate(spec), []
    except ValidationError as exc:
        return None, spec_problems(exc, resource)


@dataclass
class ProviderResult:
    """A provider resolved for the table: its table entry and key values, or its problems."""

    provider: Provider | None
    credentials: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    secret_names: list[str] = field(default_factory=list)


def is_healthy(body: Mapping[str, Any]) -> bool:
    """False only when probes marked the provider Unhealthy (Unknown counts as healthy)."""
    health = (body.get("status") or {}).get("health") or {}
    return bool(health.get("state") != "Unhealthy")


def _not_granted(namespace: str, provider: str, secret: str, grant: GrantedSecret | None) -> str:
    """Why a Secret may not serve a provider, and the fix. Whether an unlabelled Secret exists is
    not said: the operator never reads one, and the status must not tell Secrets apart."""
    fix = opt_in_fix(namespace, secret, grant.providers if grant else frozenset(), provider)
    if grant is None:
        return (
            f"Secret {secret!r} in namespace {namespace!r} does not exist or has not opted in; a "
            f"Secret is used only when it says so. Whoever may edit it runs: {fix} (or creates it: "
            f"kubectl -n {namespace} create secret generic {secret} --from-literal=<key>=<api key>, "
            "then the same)"
        )
    named = ", ".join(sorted(grant.providers)) or "none"
    return (
        f"Secret {secret!r} opted in for LLMProviders {named}, not {provider!r}; "
        f"whoever may edit it runs: {fix}"
    )


def resolve_provider(
    body: Mapping[str, Any], secrets: SecretValues, endpoints: EndpointPolicy | None = None
) -> ProviderResult:
    """Check one LLMProvider, its endpoint and its Secrets; build its table entry. Without an
    endpoint policy, only the official hosts are allowed."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name", ""))
    namespace = meta.get("namespace") or "default"
    resource = _ref("LLMProvider", meta)
    spec, problems = parse_spec(LLMProviderSpec, body, "LLMProvider")
    if spec is None:
        return ProviderResult(None, problems=problems)
    result = ProviderResult(None, secret_names=[c.secret_key_ref.name for c in spec.credentials])
    if spec.base_url:
        endpoint = (endpoints or EndpointPolicy()).problem(spec.type, spec.base_url)
        if endpoint is not None:  # checked before any Secret is looked at: no key for that URL
            return ProviderResult(
                None, problems=[Problem(Reason.ENDPOINT_NOT_ALLOWED, resource, "spec.baseURL", endpoint)]
            )
    credentials: list[Credential] = []
    for i, cred in enumerate(spec.credentials):
        ref = cred.secret_key_ref
        where = f"spec.credentials[{i}].secretKeyRef"
        grant = secrets.get(ref.name)
        if grant is None or name not in grant.providers:
            message = _not_granted(namespace, name, ref.name, grant)
            result.problems.append(Problem(Reason.SECRET_NOT_GRANTED, resource, where, message))
            continue
        value = grant.values.get(ref.key)
        if not value:
            # Never the Secret's other key names: the reader of this status may not read the Secret.
            result.problems.append(
                Problem(
                    Reason.KEY_MISSING,
                    resource,
                    where,
                    f"key {ref.key!r} of Secret {ref.name!r} is missing or empty; add the API key "
                    f"under {ref.key!r} or point secretKeyRef.key at the right key",
                )
            )
            continue
        key = credential_key(name, cred.name)
        credentials.append(
            Credential.model_validate(
                table_fields(Credential, {"name": cred.name, "key": key, "limits": cred.limits.model_dump()})
            )
        )
        result.credentials[key] = value
    if result.problems:
        return result
    try:
        result.provider = Provider(
            name=name,
            type=spec.type,
            base_url=spec.base_url or "",
            credentials=tuple(credentials),
            models=tuple(
                ModelSpec(
                    name=m.name,
                    context_window=m.context_window,
                    pricing=None if m.pricing is None else Pricing.model_validate(
                        m.pricing.model_dump(by_alias=False)
                    ),
                    reasoning=None if m.reasoning is None else Reasoning.model_validate(
                        m.reasoning.model_dump(by_alias=False)
                    ),
                )
                for m in spec.models
            ),
            limits=RateLimits.model_validate(spec.limits.model_dump(by_alias=False)),
            timeout=spec.timeout,  # the table parses duration strings
            headers=dict(spec.headers),
            default_max_tokens=spec.default_max_tokens,
            prompt_cache=spec.prompt_cache,
            allow_any_model=spec.allow_any_model,
            healthy=is_healthy(body),
        )
    except ValidationError as exc:
        result.problems.extend(spec_problems(exc, resource))
        result.credentials.clear()
    return result


@dataclass
class CompileResult:
    """The outcome of compiling one RoutingPolicy."""

    policy: str  # "RoutingPolicy ns/name"
    table: RoutingTable | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)  # referenced provider names
    disabled: list[str] = field(default_factory=list)  # left out: budget exceeded (Disable)
    secrets: list[str] = field(default_factory=list)  # referenced Secret names
    ungranted: list[str] = field(default_factory=list)  # providers a Secret does not (or no longer) serve

    @property
    def ok(self) -> bool:
        return self.table is not None and not self.problems

    @property
    def reason(self) -> Reason:
        return self.problems[0].reason if self.problems else Reason.COMPILED

    def digest(self) -> str:
        assert self.table is not None
        return self.table.digest()

    def table_yaml(self) -> str:
        assert self.table is not None
        return table_yaml(self.table)

    def chains(self) -> list[RouteChain]:
        assert self.table is not None
        return route_chains(self.table)


def table_yaml(table: RoutingTable) -> str:
    """The table as the router reads it (lists of sets sorted, so the text is stable)."""
    data = table.model_dump(mode="json", by_alias=True)
    for route in data["routes"]:
        route["fallbackOn"] = sorted(route["fallbackOn"])
    return yaml.safe_dump(data, sort_keys=False, width=100)


def route_chains(table: RoutingTable) -> list[RouteChain]:
    chains = []
    for route in table.routes:
        targets = []
        for target in route.targets:
            text = f"{target.provider}/{target.model}"
            if route.strategy is Strategy.WEIGHTED:
                text += f" (weight {target.weight})"
            provider = table.provider(target.provider)
            if provider is not None and not provider.healthy:
                text += " (unhealthy)"
            targets.append(text)
        chains.append(RouteChain(name=route.name, strategy=str(route.strategy), targets=targets))
    return chains


def describe_chains(table: RoutingTable) -> list[str]:
    """One readable line per route, e.g. `chat (Priority): a/x -> b/y`."""
    lines = []
    for chain in route_chains(table):
        joiner = " -> " if chain.strategy == Strategy.PRIORITY else ", "
        lines.append(f"{chain.name} ({chain.strategy}): {joiner.join(chain.targets)}")
    return lines


def _route(spec: Any, disabled: frozenset[str] = frozenset()) -> Route:
    kwargs: JSON = {
        "name": spec.name,
        "strategy": spec.strategy,
        "targets": tuple(
            Target(provider=t.provider, model=t.model, weight=1 if t.weight is None else t.weight)
            for t in spec.targets
            if t.provider not in disabled
        ),
        "retry": RetryPolicy(
            attempts=spec.retry.attempts,
            backoff=Backoff.model_validate(spec.retry.backoff.model_dump()),
        ),
        "deadline": spec.deadline,
        "timeout": spec.timeout,
        "first_token_timeout": spec.first_token_timeout,
        "max_attempts": spec.max_attempts,
    }
    if spec.fallback_on is not None:
        kwargs["fallback_on"] = frozenset(spec.fallback_on)
    return Route.model_validate(kwargs)


def compile_policy(
    policy: Mapping[str, Any],
    providers: Mapping[str, Mapping[str, Any]],
    secrets: SecretValues,
    *,
    replicas: Mapping[str, int] | None = None,
    now: datetime | None = None,
    endpoints: EndpointPolicy | None = None,
) -> CompileResult:
    """Compile one RoutingPolicy body against the LLMProvider bodies and Secret values of its
    namespace (providers and secrets keyed by name).

    `replicas` (provider -> live routers using it) divides each provider's limits among the
    routers; a provider whose budget is exceeded with onExceeded Disable is left out, with the
    routes that have no other target."""
    meta = policy.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    resource = _ref("RoutingPolicy", meta)
    result = CompileResult(policy=resource)
    spec, problems = parse_spec(RoutingPolicySpec, policy, "RoutingPolicy")
    if spec is None:
        result.problems = problems
        return result
    result.providers = spec.provider_names()

    resolved: dict[str, ProviderResult] = {}
    for name in result.providers:
        body = providers.get(name)
        if body is None:
            for i, route in enumerate(spec.routes):
                for j, target in enumerate(route.targets):
                    if target.provider == name:
                        known = ", ".join(sorted(providers)) or "none"
                        result.problems.append(
                            Problem(
                                Reason.UNKNOWN_PROVIDER,
                                resource,
                                f"spec.routes[{i}].targets[{j}].provider",
                                f"LLMProvider {name!r} not found in namespace {namespace!r} "
                                f"(known: {known}); create it or fix the name",
                            )
                        )
            continue
        resolved[name] = resolve_provider(body, secrets, endpoints)
        result.secrets.extend(s for s in resolved[name].secret_names if s not in result.secrets)
        result.problems.extend(resolved[name].problems)
        if any(p.reason is Reason.SECRET_NOT_GRANTED for p in resolved[name].problems):
            result.ungranted.append(name)
    if result.problems:
        return result

    for i, route in enumerate(spec.routes):
        for j, target in enumerate(route.targets):
            provider = resolved[target.provider].provider
            assert provider is not None
            if provider.models and provider.model(target.model) is None:
                result.warnings.append(
                    f"{resource}: spec.routes[{i}].targets[{j}].model: {target.model!r} is not "
                    f"listed under LLMProvider {target.provider!r} models (it will be unpriced)"
                )
    moment = now or clock.now()
    disabled = frozenset(n for n in resolved if is_disabled(providers[n], moment))
    result.disabled = sorted(disabled)
    routes = []
    for route in spec.routes:
        if all(t.provider in disabled for t in route.targets):
            result.warnings.append(
                f"{resource}: route {route.name!r} is left out: all its providers are over budget "
                f"({', '.join(sorted({t.provider for t in route.targets}))})"
            )
        else:
            routes.append(_route(route, disabled))
    shares = replicas or {}
    try:
        table = load_table(
            RoutingTable(
                providers=tuple(
                    share_of(r.provider, shares.get(name, 1))
                    for name, r in resolved.items()
                    if r.provider is not None and name not in disabled
                ),
                routes=tuple(routes),
                circuit_breaker=CircuitBreakerPolicy.model_validate(
                    table_fields(CircuitBreakerPolicy, spec.circuit_breaker.model_dump())
                ),
                server=ServerSettings.model_validate(table_fields(ServerSettings, spec.server.model_dump())),
            ).model_dump(mode="json", by_alias=True)
        )
    except (ValidationError, TableError) as exc:
        result.problems.append(Problem(Reason.INVALID_TABLE, resource, "spec", str(exc)))
        return result
    result.table = table
    for name, r in resolved.items():
        if name not in disabled:
            result.credentials.update(r.credentials)
    return result
