"""The compiled routing table: the one schema the router reads.

The router owns it; the operator imports it and produces it from LLMProvider and RoutingPolicy
resources; a YAML file or environment variables produce it for a router running on its own.
It never holds a secret: a credential names a key that the credential store resolves.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .errors import ErrorKind
from .money import decimal_text

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `250ms`, `30s`, `2m`, `1h` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 250ms or 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration; use a number with ms, s, m or h, e.g. 30s")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"


Duration = Annotated[
    float, BeforeValidator(parse_duration), PlainSerializer(format_duration, when_used="json")
]
Money = Annotated[Decimal, Field(ge=0), PlainSerializer(decimal_text, when_used="json")]


class ProviderType(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OPENROUTER = "openrouter"
    GROQ = "groq"
    OPENAI_COMPATIBLE = "openai-compatible"


# Each official SDK's convention: OpenAI-compatible bases end in /v1, Anthropic and Gemini are hosts.
DEFAULT_BASE_URLS: dict[ProviderType, str] = {
    ProviderType.OPENAI: "https://api.openai.com/v1",
    ProviderType.ANTHROPIC: "https://api.anthropic.com",
    ProviderType.GEMINI: "https://generativelanguage.googleapis.com",
    ProviderType.OPENROUTER: "https://openrouter.ai/api/v1",
    ProviderType.GROQ: "https://api.groq.com/openai/v1",
}


class Strategy(StrEnum):
    PRIORITY = "Priority"
    ROUND_ROBIN = "RoundRobin"
    WEIGHTED = "Weighted"
    LEAST_LATENCY = "LeastLatency"
    LEAST_BUSY = "LeastBusy"
    LOWEST_COST = "LowestCost"


DEFAULT_FALLBACK_ON: frozenset[ErrorKind] = frozenset(ErrorKind) - {
    ErrorKind.BAD_REQUEST,
    ErrorKind.CONTENT_FILTERED,
}


# A set, written sorted so that equal tables hash equal.
ErrorKinds = Annotated[frozenset[ErrorKind], PlainSerializer(sorted, when_used="json")]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Pricing(_Model):
    """USD per million tokens, as decimal strings (no floats for money)."""

    input_per_million_tokens: Money
    output_per_million_tokens: Money
    cached_input_per_million_tokens: Money | None = None
    cache_write_per_million_tokens: Money | None = None


class ReasoningStyle(StrEnum):
    """How a model takes reasoning control, in its family's own terms."""

    EFFORT = "Effort"  # OpenAI's reasoning_effort, as the client sent it
    ANTHROPIC_ADAPTIVE = "AnthropicAdaptive"  # thinking {type: adaptive}, output_config.effort
    ANTHROPIC_BUDGET = "AnthropicBudget"  # thinking {type: enabled, budget_tokens}
    GEMINI_LEVEL = "GeminiLevel"  # thinkingConfig.thinkingLevel (low, high)
    GEMINI_BUDGET = "GeminiBudget"  # thinkingConfig.thinkingBudget


class ReasoningBudgets(_Model):
    """Thinking tokens for each effort, for the budget styles (Anthropic's minimum is 1024)."""

    minimal: int = Field(default=1024, ge=0)
    low: int = Field(default=2048, ge=0)
    medium: int = Field(default=8192, ge=0)
    high: int = Field(default=24576, ge=0)
    xhigh: int = Field(default=32768, ge=0)


class Reasoning(_Model):
    style: ReasoningStyle
    budgets: ReasoningBudgets = ReasoningBudgets()


class ModelSpec(_Model):
    name: str = Field(min_length=1)
    context_window: int | None = Field(default=None, gt=0)
    pricing: Pricing | None = None
    # Declared: a client's reasoning_effort reaches the model in its family's terms; undeclared,
    # Anthropic and Gemini targets drop it (x-switchyard-reasoning says so).
    reasoning: Reasoning | None = None


class RateLimits(_Model):
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)


class Credential(_Model):
    """One API key of a provider. `key` names an entry of the credential store, never a value."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    # This key's own quota, on top of the provider's.
    limits: RateLimits = RateLimits()


class Provider(_Model):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    type: ProviderType
    base_url: str = Field(default="", alias="baseURL")
    credentials: tuple[Credential, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    limits: RateLimits = RateLimits()
    timeout: Duration = 30.0
    headers: dict[str, str] = Field(default_factory=dict)
    # Anthropic requires max_tokens; used when the client gives none.
    default_max_tokens: int = Field(default=4096, gt=0)
    # Anthropic only: how long a request's prompt stays cached (each request is marked).
    prompt_cache: Literal["5m", "1h"] | None = None
    # Clients may pin `<provider>/<model>` only for the models above, unless this allows any
    # (a gateway such as OpenRouter with hundreds): names are still checked (MODEL_NAME).
    allow_any_model: bool = False
    # Set by the operator's health probes: routers prefer healthy providers.
    healthy: bool = True

    @model_validator(mode="after")
    def _default_base_url(self) -> Self:
        if not self.base_url:
            default = DEFAULT_BASE_URLS.get(self.type)
            if default is None:
                raise ValueError("baseURL is required for type openai-compatible, e.g. http://vllm:8000/v1")
            object.__setattr__(self, "base_url", default)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.prompt_cache is not None and self.type is not ProviderType.ANTHROPIC:
            raise ValueError(
                "promptCache applies to type anthropic only (the others cache prompts on their own): "
                "remove it"
            )
        return self

    def model(self, name: str) -> ModelSpec | None:
        for spec in self.models:
            if spec.name == name:
                return spec
        return None


# A model name a client may pin: what providers' names use (gpt-4o-2024-08-06,
# meta-llama/llama-3.1-70b-instruct:free, models/gemini-2.5-pro), nothing a URL treats specially.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]*(/[A-Za-z0-9][A-Za-z0-9._:@+-]*){0,2}")
MODEL_NAME_MAX = 128


class Backoff(_Model):
    base: Duration = 0.2
    max: Duration = 5.0


class RetryPolicy(_Model):
    """Attempts on the same target before falling back (1 means no retry)."""

    attempts: int = Field(default=2, ge=1, le=10)
    backoff: Backoff = Backoff()


class Target(_Model):
    provider: str
    model: str = Field(min_length=1)
    weight: int = Field(default=1, ge=0, le=1000)


class Route(_Model):
    name: str = Field(min_length=1)
    strategy: Strategy = Strategy.PRIORITY
    targets: tuple[Target, ...] = Field(min_length=1)
    retry: RetryPolicy = RetryPolicy()
    fallback_on: ErrorKinds = DEFAULT_FALLBACK_ON
    # Per attempt; when unset, the provider's timeout applies.
    timeout: Duration | None = None
    # A stream that sends nothing for this long falls back (only before the client got a byte).
    first_token_timeout: Duration | None = None
    # No request outlives this, whatever retries and fallbacks remain.
    deadline: Duration = 120.0
    # An upper bound on attempts per request across every target.
    max_attempts: int | None = Field(default=None, ge=1)


class CircuitBreakerPolicy(_Model):
    """Per target: opens after N consecutive failures, or a failure rate over a sliding window."""

    consecutive_failures: int = Field(default=5, ge=1)
    # Opens when this share of the window's requests failed (and at least minimumRequests ran).
    failure_rate_percent: int = Field(default=50, ge=1, le=100)
    window: Duration = 30.0
    minimum_requests: int = Field(default=20, ge=1)
    cooldown: Duration = 30.0
    # When every target is unavailable, try the one whose cooldown ends first rather than refuse.
    fail_open: bool = True


MiB = 1024 * 1024


class ServerSettings(_Model):
    # The largest request body a client may send.
    max_body_bytes: int = Field(default=10 * MiB, gt=0)
    # Reads from upstreams, bounded whatever an endpoint sends: breaching one is an attempt
    # failed with ResponseTooLarge. Defaults sized from what providers really send:
    # A whole answer (chat or embeddings). 1,000 embeddings of 3,072 dimensions in base64 (the
    # SDKs' default encoding) are 16 MB; 128,000 output tokens of text are about 0.5 MB.
    # Parsing one may take up to 4 times this in memory (structure-heavy JSON is refused first).
    max_response_bytes: int = Field(default=16 * MiB, gt=0)
    # One server-sent event: a generated image arrives inline in one event (1-3 MB).
    max_event_bytes: int = Field(default=4 * MiB, gt=0)
    # A whole stream: 128,000 output tokens at one event each, about 1 KB with logprobs.
    max_stream_bytes: int = Field(default=128 * MiB, gt=0)
    # Callers' connections (the API's and the health port's, each): a request's head must arrive
    # within headerTimeout of its first byte, its body within bodyTimeout after that; a
    # connection idle this long is closed; connections beyond maxConnections are refused.
    header_timeout: Duration = Field(default=10.0, gt=0)
    body_timeout: Duration = Field(default=30.0, gt=0)
    idle_timeout: Duration = Field(default=60.0, gt=0)
    max_connections: int = Field(default=1024, gt=0)


class RoutingTable(_Model):
    version: int = 1
    providers: tuple[Provider, ...] = ()
    routes: tuple[Route, ...] = ()
    circuit_breaker: CircuitBreakerPolicy = CircuitBreakerPolicy()
    server: ServerSettings = ServerSettings()

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems: list[str] = []
        known = [p.name for p in self.providers]
        for field, names in (("providers", known), ("routes", [r.name for r in self.routes])):
            for i, name in enumerate(names):
                if name in names[:i]:
                    problems.append(f"{field}[{i}].name: {name!r} is used twice; names must be unique")
        for i, route in enumerate(self.routes):
            for j, target in enumerate(route.targets):
                if target.provider not in known:
                    problems.append(
                        f"routes[{i}].targets[{j}].provider: unknown provider {target.provider!r}; "
                        f"define it under providers (known: {', '.join(known) or 'none'})"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def provider(self, name: str) -> Provider | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None

    def digest(self) -> str:
        """A content hash, stable across key order: routers report it, the operator annotates it."""
        canonical = orjson.dumps(self.model_dump(mode="json", by_alias=True), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:16]


class TableError(ValueError):
    """An invalid table, with one readable line per problem, each naming the field path."""


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "table"


def load_table(data: Any) -> RoutingTable:
    try:
        return RoutingTable.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            lines.append(f"{_path(loc)}: {message}")
        raise TableError("invalid routing table:\n  " + "\n  ".join(lines)) from None
