"""The Kubernetes API of Switchyard: LLMProvider and RoutingPolicy, spec and status.

These pydantic models are the single source of the CRDs (`python -m switchyard_operator.crdgen`):
field descriptions become `kubectl explain` text, `Field` bounds become schema ranges, and each
model's `x-kubernetes-validations` become CEL rules enforced at `kubectl apply`. The same rules
are checked here in Python, so `switchyard compile` refuses what the API server would refuse.

No floats: money is a decimal string, durations are strings such as `30s` or `250ms`.
Defaults come from the router's table model, so the API and the table cannot drift apart.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from switchyard_router.errors import ErrorKind
from switchyard_router.table import (
    Backoff,
    CircuitBreakerPolicy,
    Provider,
    RetryPolicy,
    Route,
    ServerSettings,
    Strategy,
    format_duration,
)
from switchyard_router.table import ProviderType as ProviderType

GROUP = "switchyard.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "switchyard"

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"
MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,12})?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
URL_PATTERN = r"^https?://[^\s]+$"
# Credentials belong in Secrets: these headers would put a key into the ConfigMap.
AUTH_HEADER_PATTERN = r"(?i)^(authorization|x-api-key|x-goog-api-key|api-key|proxy-authorization)$"

Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=32, examples=["30s", "250ms", "2m"]),
]
Money = Annotated[str, Field(pattern=MONEY_PATTERN, max_length=26, examples=["0.35", "12.5"])]
DnsLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]


def _duration(seconds: float | None) -> str:
    assert seconds is not None
    return format_duration(seconds)


def _table_default(model: type[BaseModel], field: str, fallback: Any = None) -> Any:
    """The router table's default for a field (the fallback while the table lacks the field)."""
    info = model.model_fields.get(field)
    return fallback if info is None else info.default


def rules(*pairs: tuple[str, str]) -> dict[str, Any]:
    """`x-kubernetes-validations` for a model's json_schema_extra: (CEL rule, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": msg} for rule, msg in pairs]}


class SpecModel(BaseModel):
    """camelCase on the wire, unknown fields refused (a typo is an error, not a silent default)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _unique(items: list[Any], key: Any) -> list[str]:
    seen: set[Any] = set()
    twice: list[str] = []
    for item in items:
        k = key(item)
        if k in seen:
            twice.append(str(k))
        seen.add(k)
    return twice


# --------------------------------------------------------------------------- LLMProvider


class SecretKeySelector(SpecModel):
    """Selects one key of a Secret in the provider's namespace."""

    name: str = Field(
        pattern=DNS_SUBDOMAIN_PATTERN,
        min_length=1,
        max_length=253,
        description="Name of the Secret, in the same namespace as the LLMProvider.",
    )
    key: str = Field(
        pattern=SECRET_KEY_PATTERN,
        min_length=1,
        max_length=253,
        description="Key inside the Secret's data whose value is the API key, e.g. OPENAI_API_KEY.",
    )


class LimitsSpec(SpecModel):
    """Client-side rate limits the router keeps under for this provider."""

    requests_per_minute: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Requests per minute; unlimited when unset."
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000_000,
        description="Tokens per minute; unlimited when unset.",
    )


class CredentialSpec(SpecModel):
    """One API key of the provider. Several keys spread load; each is referenced, never inlined."""

    name: DnsLabel = Field(
        description="Name of this credential, unique within the provider (e.g. primary, backup). "
        "The router sees it as `<provider>.<name>`.",
    )
    secret_key_ref: SecretKeySelector = Field(
        description="The Secret key that holds the API key value.",
    )
    limits: LimitsSpec = Field(
        default_factory=LimitsSpec,
        json_schema_extra={"default": {}},
        description="This key's own rate limits, on top of the provider's.",
    )


class PricingSpec(SpecModel):
    """Prices in USD per million tokens, as decimal strings (no floats for money)."""

    input_per_million_tokens: Money = Field(
        description="USD per million input (prompt) tokens, e.g. \"2.50\".",
    )
    output_per_million_tokens: Money = Field(
        description="USD per million output (completion) tokens, e.g. \"10\".",
    )
    cached_input_per_million_tokens: Money | None = Field(
        default=None,
        description="USD per million cached input tokens; when unset, cached tokens cost the input "
        "price.",
    )
    cache_write_per_million_tokens: Money | None = Field(
        default=None,
        description="USD per million input tokens written to Anthropic's prompt cache (1.25x the "
        "input price for a 5m cache, 2x for 1h); when unset, they cost the input price.",
    )


ReasoningStyleName = Literal["Effort", "AnthropicAdaptive", "AnthropicBudget", "GeminiLevel", "GeminiBudget"]


class ReasoningBudgetsSpec(SpecModel):
    """Thinking tokens per reasoning effort, for the budget styles."""

    minimal: int = Field(default=1024, ge=0, le=1_000_000, description="Tokens for effort minimal.")
    low: int = Field(default=2048, ge=0, le=1_000_000, description="Tokens for effort low.")
    medium: int = Field(default=8192, ge=0, le=1_000_000, description="Tokens for effort medium.")
    high: int = Field(default=24576, ge=0, le=1_000_000, description="Tokens for effort high.")
    xhigh: int = Field(default=32768, ge=0, le=1_000_000, description="Tokens for effort xhigh.")


class ReasoningSpec(SpecModel):
    """How the model takes reasoning control, so a client's reasoning_effort (or Anthropic
    thinking, or Responses' reasoning.effort) reaches it in its family's own terms."""

    style: ReasoningStyleName = Field(
        description="Effort: OpenAI reasoning_effort as sent; AnthropicAdaptive: thinking adaptive with "
        "output_config.effort; AnthropicBudget: thinking enabled with budgetTokens per effort; "
        "GeminiLevel: thinkingConfig.thinkingLevel; GeminiBudget: thinkingConfig.thinkingBudget.",
    )
    budgets: ReasoningBudgetsSpec = Field(
        default_factory=ReasoningBudgetsSpec,
        json_schema_extra={"default": {}},
        description="Thinking tokens per effort, for AnthropicBudget and GeminiBudget.",
    )


class ModelEntry(SpecModel):
    """A model served by the provider, with its context window and prices."""

    name: str = Field(
        min_length=1,
        max_length=256,
        description="The provider's own model id, e.g. gpt-4o-mini or claude-haiku-4-5.",
    )
    context_window: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="Maximum tokens of prompt plus completion; requests known to exceed it fall "
        "back without being sent.",
    )
    pricing: PricingSpec | None = Field(
        default=None, description="Prices used for spend accounting; unpriced when unset."
    )
    reasoning: ReasoningSpec | None = Field(
        default=None,
        description="How the model takes reasoning control; when unset, Anthropic and Gemini "
        "targets drop a client's reasoning effort and say so (x-switchyard-reasoning).",
    )


class HealthCheckMode(StrEnum):
    LIST_MODELS = "ListModels"
    COMPLETION = "Completion"


class HealthCheckSpec(SpecModel):
    """How the operator probes the provider. Unhealthy providers are avoided by routers."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "self.mode != 'Completion' || has(self.model)",
                "healthCheck.model is required when mode is Completion",
            )
        )
    )

    interval: Duration = Field(default="30s", description="Time between two probes, e.g. 30s.")
    timeout: Duration = Field(default="5s", description="Time a probe may take before it fails.")
    failure_threshold: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive failed probes before the provider is marked Unhealthy.",
    )
    mode: HealthCheckMode = Field(
        default=HealthCheckMode.LIST_MODELS,
        description="ListModels calls the provider's free authenticated list-models endpoint; "
        "Completion asks `model` for a one-token completion (costs a few tokens).",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Model for Completion probes (required when mode is Completion).",
    )

    @model_validator(mode="after")
    def _completion_needs_model(self) -> Self:
        if self.mode is HealthCheckMode.COMPLETION and not self.model:
            raise ValueError("healthCheck.model is required when mode is Completion")
        return self


class BudgetAction(StrEnum):
    DISABLE = "Disable"
    ALERT = "Alert"


class BudgetSpec(SpecModel):
    """A monthly spending budget for this provider (stored now; enforced with spend tracking)."""

    monthly_usd: Money = Field(
        alias="monthlyUSD", description="Budget in USD per calendar month, e.g. \"200\"."
    )
    warn_at_percent: int = Field(
        default=80, ge=1, le=100, description="Emit a warning Event at this share of the budget."
    )
    on_exceeded: BudgetAction = Field(
        default=BudgetAction.ALERT,
        description="Disable stops routing to the provider until next month; Alert only warns.",
    )


class LLMProviderSpec(SpecModel):
    """A vendor account: where to send requests, with which keys, models, prices and limits."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "self.type != 'openai-compatible' || has(self.baseURL)",
                "baseURL is required for type openai-compatible, e.g. http://vllm:8000/v1",
            ),
            (
                "!has(self.credentials) || self.credentials.all(c, "
                "self.credentials.exists_one(d, d.name == c.name))",
                "credential names must be unique within a provider",
            ),
            (
                "!has(self.models) || self.models.all(m, self.models.exists_one(n, n.name == m.name))",
                "model names must be unique within a provider",
            ),
            (
                "!has(self.headers) || self.headers.all(h, "
                f"!h.matches('{AUTH_HEADER_PATTERN}'))",
                "headers must not carry credentials (Authorization, x-api-key...): "
                "reference a Secret under credentials instead",
            ),
            (
                "!has(self.baseURL) || !self.baseURL.matches('[?#@]')",
                "baseURL must not carry a query (?), a fragment (#) or user:password@: credentials "
                "belong in a Secret, paths in the URL's path",
            ),
            (
                "self.type == 'anthropic' || !has(self.promptCache)",
                "promptCache applies to type anthropic only (the others cache prompts on their own): "
                "remove it",
            ),
        )
    )

    type: ProviderType = Field(
        description="Wire format and defaults: openai, anthropic, gemini, openrouter, groq, or "
        "openai-compatible (any server speaking the OpenAI API, e.g. vLLM or Ollama).",
    )
    base_url: str | None = Field(
        default=None,
        alias="baseURL",
        pattern=URL_PATTERN,
        max_length=2048,
        description="API base URL; defaulted from type (required for openai-compatible). "
        "OpenAI-compatible bases end in /v1; Anthropic and Gemini bases are hosts. Keys go only "
        "to the type's official https host or to an endpoint the platform's allow-list names "
        "(the chart's endpoints.allowed); no query, fragment or user:password@.",
    )
    credentials: list[CredentialSpec] = Field(
        default_factory=list,
        max_length=16,
        description="API keys, each read from a Secret. Empty for servers that need no key.",
    )
    models: list[ModelEntry] = Field(
        default_factory=list, max_length=256, description="Models this provider serves."
    )
    allow_any_model: bool = Field(
        default=False,
        description="Let clients pin `<provider>/<model>` for models not listed under models (a "
        "gateway such as OpenRouter serves hundreds). Names are still checked: letters, digits and "
        "`._:@+-`, up to three `/`-separated parts. Such models are unpriced and read `other` in "
        "metrics and usage.",
    )
    limits: LimitsSpec = Field(
        default_factory=LimitsSpec,
        json_schema_extra={"default": {}},
        description="Rate limits the router keeps under.",
    )
    timeout: Duration = Field(
        default=_duration(_table_default(Provider, "timeout")),
        description="Per-attempt timeout when a route sets none, e.g. 30s.",
    )
    headers: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Extra HTTP headers sent with every request (never credentials).",
    )
    default_max_tokens: int = Field(
        default=_table_default(Provider, "default_max_tokens"),
        ge=1,
        le=10_000_000,
        description="max_tokens sent when the client gives none (Anthropic requires one).",
    )
    prompt_cache: Literal["5m", "1h"] | None = Field(
        default=None,
        description="type anthropic only: mark every request for automatic prompt caching with this "
        "lifetime, unless the client marked its own breakpoints. Cache writes cost more than input, "
        "reads a tenth: worth it where prompts repeat, as in chats.",
    )
    health_check: HealthCheckSpec = Field(
        default_factory=HealthCheckSpec,
        json_schema_extra={"default": {}},
        description="Health probing by the operator.",
    )
    budget: BudgetSpec | None = Field(default=None, description="Monthly spending budget.")

    @model_validator(mode="after")
    def _checks(self) -> Self:
        problems: list[str] = []
        if self.type is ProviderType.OPENAI_COMPATIBLE and not self.base_url:
            problems.append("baseURL is required for type openai-compatible, e.g. http://vllm:8000/v1")
        for name in _unique(self.credentials, lambda c: c.name):
            problems.append(f"credentials: name {name!r} is used twice; names must be unique")
        for name in _unique(self.models, lambda m: m.name):
            problems.append(f"models: {name!r} is listed twice; model names must be unique")
        for header in self.headers:
            if re.match(AUTH_HEADER_PATTERN, header):
                problems.append(
                    f"headers: {header!r} would carry a credential into the ConfigMap; "
                    "reference a Secret under credentials instead"
                )
        if self.base_url and re.search("[?#@]", self.base_url):
            problems.append(
                "baseURL must not carry a query (?), a fragment (#) or user:password@: credentials "
                "belong in a Secret, paths in the URL's path"
            )
        if self.prompt_cache is not None and self.type is not ProviderType.ANTHROPIC:
            problems.append(
                "promptCache applies to type anthropic only (the others cache prompts on their own): "
                "remove it"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


# --------------------------------------------------------------------------- RoutingPolicy


class BackoffSpec(SpecModel):
    """Exponential backoff between retries on the same target."""

    base: Duration = Field(
        default=_duration(_table_default(Backoff, "base")), description="First delay, e.g. 200ms."
    )
    max: Duration = Field(
        default=_duration(_table_default(Backoff, "max")), description="Largest delay, e.g. 5s."
    )


class RetrySpec(SpecModel):
    """Attempts on the same target before falling back to the next one."""

    attempts: int = Field(
        default=_table_default(RetryPolicy, "attempts"),
        ge=1,
        le=10,
        description="Attempts per target, the first included (1 means no retry).",
    )
    backoff: BackoffSpec = Field(
        default_factory=BackoffSpec,
        json_schema_extra={"default": {}},
        description="Delay between attempts.",
    )


class TargetSpec(SpecModel):
    """One (provider, model) a route may send to."""

    provider: DnsLabel = Field(
        description="Name of an LLMProvider in the same namespace as the policy."
    )
    model: str = Field(
        min_length=1, max_length=256, description="The provider's model id to send to."
    )
    weight: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Share of traffic; only with strategy Weighted (defaults to 1 there).",
    )


class RouteSpec(SpecModel):
    """A model name clients ask for, and how its requests reach the providers."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "self.strategy == 'Weighted' || self.targets.all(t, !has(t.weight))",
                "weight is only allowed with strategy Weighted; remove it or set strategy: Weighted",
            ),
            (
                "self.targets.all(t, self.targets.exists_one(u, "
                "u.provider == t.provider && u.model == t.model))",
                "each (provider, model) target may appear only once per route",
            ),
        )
    )

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$",
        description="The model name clients send (\"model\": \"chat\"), unique within the policy.",
    )
    strategy: Strategy = Field(
        default=Strategy.PRIORITY,
        description="Priority tries targets in order; RoundRobin and Weighted spread load; "
        "LeastLatency, LeastBusy and LowestCost pick by live measurements or price.",
    )
    targets: list[TargetSpec] = Field(
        min_length=1,
        max_length=32,
        description="Where requests go; with Priority, the order is the fallback chain.",
    )
    retry: RetrySpec = Field(
        default_factory=RetrySpec,
        json_schema_extra={"default": {}},
        description="Retries on the same target.",
    )
    fallback_on: list[ErrorKind] | None = Field(
        default=None,
        max_length=len(ErrorKind),
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Error kinds that move on to the next target. When unset: every kind except "
        "BadRequest and ContentFiltered (a client error is never retried elsewhere).",
    )
    timeout: Duration | None = Field(
        default=None, description="Per-attempt timeout; when unset, the provider's timeout."
    )
    first_token_timeout: Duration | None = Field(
        default=None,
        description="A stream silent this long before its first byte falls back, e.g. 10s.",
    )
    deadline: Duration = Field(
        default=_duration(_table_default(Route, "deadline")),
        description="No request outlives this, whatever retries and fallbacks remain.",
    )
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Upper bound on attempts per request across all targets.",
    )

    @model_validator(mode="after")
    def _checks(self) -> Self:
        problems: list[str] = []
        if self.strategy is not Strategy.WEIGHTED:
            for i, target in enumerate(self.targets):
                if target.weight is not None:
                    problems.append(
                        f"targets[{i}].weight: weight is only allowed with strategy Weighted; "
                        "remove it or set strategy: Weighted"
                    )
        for pair in _unique(self.targets, lambda t: (t.provider, t.model)):
            problems.append(f"targets: {pair} appears twice; each (provider, model) only once")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CircuitBreakerSpec(SpecModel):
    """Stops sending to a failing target for a while."""

    consecutive_failures: int = Field(
        default=_table_default(CircuitBreakerPolicy, "consecutive_failures"),
        ge=1,
        le=1000,
        description="Failures in a row that open the breaker.",
    )
    failure_rate_percent: int = Field(
        default=_table_default(CircuitBreakerPolicy, "failure_rate_percent", 50),
        ge=1,
        le=100,
        description="Also opens when this share of the window's requests failed "
        "(once minimumRequests ran).",
    )
    window: Duration = Field(
        default=_duration(_table_default(CircuitBreakerPolicy, "window", 30.0)),
        description="Sliding window for the failure rate, e.g. 30s.",
    )
    minimum_requests: int = Field(
        default=_table_default(CircuitBreakerPolicy, "minimum_requests", 20),
        ge=1,
        le=1_000_000,
        description="Requests in the window before the failure rate counts.",
    )
    fail_open: bool = Field(
        default=_table_default(CircuitBreakerPolicy, "fail_open", True),
        description="When every target is unavailable, try the one whose cooldown ends first "
        "rather than refuse the request.",
    )
    cooldown: Duration = Field(
        default=_duration(_table_default(CircuitBreakerPolicy, "cooldown")),
        description="How long an open breaker waits before a trial request.",
    )


class ServerSpec(SpecModel):
    """Settings of the router's own HTTP server."""

    max_body_bytes: int = Field(
        default=_table_default(ServerSettings, "max_body_bytes"),
        ge=1,
        le=1024 * 1024 * 1024,
        description="Largest request body accepted, in bytes.",
    )
    max_response_bytes: int = Field(
        default=_table_default(ServerSettings, "max_response_bytes"),
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest answer read from a provider (chat or embeddings), in bytes; parsing one "
        "may take up to 4 times this in memory. Over it the attempt fails with ResponseTooLarge.",
    )
    max_event_bytes: int = Field(
        default=_table_default(ServerSettings, "max_event_bytes"),
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest server-sent event read from a provider's stream, in bytes.",
    )
    max_stream_bytes: int = Field(
        default=_table_default(ServerSettings, "max_stream_bytes"),
        ge=1024,
        le=16 * 1024 * 1024 * 1024,
        description="Most bytes read from one provider stream; over it the stream ends with an error.",
    )
    header_timeout: Duration = Field(
        default=_duration(_table_default(ServerSettings, "header_timeout")),
        description="A caller's request head must arrive within this of its first byte, or the "
        "connection is closed.",
    )
    body_timeout: Duration = Field(
        default=_duration(_table_default(ServerSettings, "body_timeout")),
        description="A request body must arrive within this after its head (else a 408).",
    )
    idle_timeout: Duration = Field(
        default=_duration(_table_default(ServerSettings, "idle_timeout")),
        description="A caller's connection with no request for this long is closed.",
    )
    max_connections: int = Field(
        default=_table_default(ServerSettings, "max_connections"),
        ge=1,
        le=1_000_000,
        description="Callers' connections open at once, per listener; more are closed at once.",
    )


class CredentialsDelivery(StrEnum):
    VOLUME = "Volume"
    API_WATCH = "APIWatch"


class RoutingPolicySpec(SpecModel):
    """Routes offered to clients, compiled with their providers into the router's table."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "self.routes.all(r, self.routes.exists_one(s, s.name == r.name))",
                "route names must be unique within a policy",
            ),
        )
    )

    routes: list[RouteSpec] = Field(
        min_length=1, max_length=128, description="Model names clients may ask for."
    )
    circuit_breaker: CircuitBreakerSpec = Field(
        default_factory=CircuitBreakerSpec,
        json_schema_extra={"default": {}},
        description="Circuit breaker applied to every target.",
    )
    server: ServerSpec = Field(
        default_factory=ServerSpec,
        json_schema_extra={"default": {}},
        description="Router server settings.",
    )
    credentials_delivery: CredentialsDelivery = Field(
        default=CredentialsDelivery.VOLUME,
        description="How the keys reach each router. Volume: the credentials Secret is mounted "
        "into the router's container only; the pod's ServiceAccount needs no access to it and the "
        "app's containers cannot read it. APIWatch: the router reads the Secret through the API "
        "(key rotations arrive within a second), so the pod's ServiceAccount must be allowed to get "
        "and watch it, and every container of the pod that mounts the ServiceAccount token, the "
        "app's included, can read the keys.",
    )

    @model_validator(mode="after")
    def _unique_routes(self) -> Self:
        twice = _unique(self.routes, lambda r: r.name)
        if twice:
            raise ValueError(f"routes: {', '.join(map(repr, twice))} used twice; names must be unique")
        return self

    def provider_names(self) -> list[str]:
        """Referenced providers, in first-use order."""
        names: list[str] = []
        for route in self.routes:
            for target in route.targets:
                if target.provider not in names:
                    names.append(target.provider)
        return names


# --------------------------------------------------------------------------- status


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(SpecModel):
    """A standard Kubernetes condition."""

    type: str = Field(max_length=316, description="Ready, Healthy or Compiled.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase reason, e.g. SecretNotGranted.")
    message: str = Field(default="", max_length=32768, description="What happened and what to do.")
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"}, description="When the status last changed."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The generation this condition was computed for."
    )


class HealthState(StrEnum):
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"


class HealthStatus(SpecModel):
    """The latest health probe results."""

    state: HealthState = Field(default=HealthState.UNKNOWN, description="Healthy, Unhealthy or Unknown.")
    latency_ms: int | None = Field(default=None, ge=0, description="Latency of the last probe.")
    consecutive_failures: int = Field(default=0, ge=0, description="Failed probes in a row.")
    last_probe_time: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}, description="Time of the last probe."
    )
    last_error: str | None = Field(
        default=None, max_length=4096, description="Error of the last failed probe (never a key)."
    )


class MonthSpend(SpecModel):
    """Spend in one month (UTC), folded from the routers' cumulative usage reports."""

    period: str | None = Field(default=None, description="The month, e.g. 2026-11.")
    cost_usd: Money | None = Field(
        default=None,
        alias="costUSD",
        description="USD spent in the month (exact to 12 decimal places, rounded down).",
    )
    requests: int | None = Field(default=None, ge=0, description="Requests counted.")
    input_tokens: int | None = Field(default=None, ge=0, description="Input tokens counted.")
    output_tokens: int | None = Field(default=None, ge=0, description="Output tokens counted.")
    cached_input_tokens: int | None = Field(
        default=None, ge=0, description="Cached input tokens counted (part of inputTokens)."
    )
    reasoning_tokens: int | None = Field(
        default=None, ge=0, description="Reasoning tokens counted (part of outputTokens)."
    )
    unpriced_requests: int | None = Field(
        default=None, ge=0, description="Requests served without a usable price or usage report."
    )
    estimated_cost_usd: Money | None = Field(
        default=None,
        alias="estimatedCostUSD",
        description="Estimated USD of answers the client abandoned before the provider reported "
        "their usage (the provider bills them); apart from costUSD.",
    )
    estimated_requests: int | None = Field(
        default=None,
        ge=0,
        description="Abandoned answers counted from an estimate (part of requests; their tokens are "
        "not in the token counts).",
    )


class SpendStatus(MonthSpend):
    """Spend in the current month (UTC) and the last closed one."""

    last_month: MonthSpend | None = Field(
        default=None,
        description="The last closed month; reports of it that arrive after the month turned "
        "still count here.",
    )
    live_routers: int | None = Field(
        default=None, ge=0, description="Router processes whose usage is still being followed."
    )
    last_update: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}, description="When spend last changed."
    )
    ledger: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="The operator's bookkeeping behind the totals (base, last cumulative report "
        "per live router process, retired processes), written in the same update as the totals.",
    )


class LLMProviderStatus(SpecModel):
    """Observed state of the provider, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The spec generation last processed."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Ready (spec and credentials usable), Healthy (probes pass) and WithinBudget.",
    )
    health: HealthStatus | None = Field(default=None, description="Latest probe results.")
    spend: SpendStatus | None = Field(default=None, description="Spend this month.")


class RouteChain(SpecModel):
    """A compiled route, readable."""

    name: str = Field(description="The route's model name.")
    strategy: str = Field(description="The route's strategy.")
    targets: list[str] = Field(
        default_factory=list, description="provider/model targets, in order."
    )


class RoutersStatus(SpecModel):
    """Routers running this policy (from their usage reports) and how many serve its current table."""

    current: int = Field(default=0, ge=0, description="Live routers serving the current table.")
    total: int = Field(default=0, ge=0, description="Live routers of this policy.")
    summary: str = Field(default="0/0", description="current/total, e.g. 3/3.")
    stale: list[str] = Field(
        default_factory=list, description="Pods of live routers not serving the current table yet."
    )


class RoutingPolicyStatus(SpecModel):
    """Observed state of the policy, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The spec generation last processed."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Compiled (the last compile succeeded) and Ready (a table is in place).",
    )
    table_hash: str | None = Field(
        default=None, description="Digest of the routing table in the ConfigMap."
    )
    config_map: str | None = Field(default=None, description="Name of the ConfigMap with the table.")
    credentials_secret: str | None = Field(
        default=None, description="Name of the Secret with the API keys for the router."
    )
    routes: list[RouteChain] = Field(
        default_factory=list, description="The routes in the ConfigMap's table."
    )
    routers: RoutersStatus | None = Field(
        default=None, description="Routers running this policy and how many serve its current table."
    )
