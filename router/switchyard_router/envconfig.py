"""The routing table from the environment variables chatbot teams already use (`.env.example`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .table import ProviderType, RoutingTable, Strategy, TableError, load_table

ENV_PROVIDERS: dict[str, ProviderType] = {
    "openai": ProviderType.OPENAI,
    "anthropic": ProviderType.ANTHROPIC,
    "gemini": ProviderType.GEMINI,
    "openrouter": ProviderType.OPENROUTER,
    "groq": ProviderType.GROQ,
}

DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-3.1-flash-lite",
    "openrouter": "openai/gpt-4o-mini",
    "groq": "llama-3.1-8b-instant",
}

LOAD_BALANCE: dict[str, Strategy] = {
    "priority": Strategy.PRIORITY,
    "round_robin": Strategy.ROUND_ROBIN,
    "weighted": Strategy.WEIGHTED,
    "least_latency": Strategy.LEAST_LATENCY,
    "least_busy": Strategy.LEAST_BUSY,
    "lowest_cost": Strategy.LOWEST_COST,
}

_ROLES = ("PRIMARY_PROVIDER", "SECONDARY_PROVIDER", "FALLBACK_PROVIDER")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EnvConfigError(ValueError):
    """One message naming the variable, the value given and what is allowed."""


def _bad(variable: str, value: str, allowed: str) -> EnvConfigError:
    return EnvConfigError(f"{variable}={value!r} is invalid: {allowed}")


def _number(env: Mapping[str, str], variable: str, default: float, *, integer: bool) -> float:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number of seconds"
        raise _bad(variable, raw, f"expected {kind}") from None
    if value <= 0:
        raise _bad(variable, raw, "expected a value greater than 0")
    return value


def _key_entries(env: Mapping[str, str], prefix: str) -> list[tuple[str, str]]:
    """(store name, value) per key: `<NAME>_API_KEYS` (comma-separated) wins over `<NAME>_API_KEY`."""
    several = [k.strip() for k in env.get(f"{prefix}_API_KEYS", "").split(",") if k.strip()]
    if several:
        return [(f"{prefix}_API_KEYS#{i}", key) for i, key in enumerate(several)]
    single = env.get(f"{prefix}_API_KEY", "").strip()
    return [(f"{prefix}_API_KEY", single)] if single else []


def _keys(env: Mapping[str, str], prefix: str) -> list[str]:
    return [name for name, _ in _key_entries(env, prefix)]


def credential_values(env: Mapping[str, str]) -> dict[str, str]:
    """The values behind the key names the env table refers to."""
    return dict(entry for name in ENV_PROVIDERS for entry in _key_entries(env, name.upper()))


def _provider(env: Mapping[str, str], name: str, timeout: float) -> dict[str, Any]:
    prefix = name.upper()
    keys = _keys(env, prefix)
    provider: dict[str, Any] = {
        "name": name,
        "type": ENV_PROVIDERS[name].value,
        "credentials": [{"name": f"key-{i}", "key": key} for i, key in enumerate(keys)],
        "timeout": timeout,
        "models": [{"name": env.get(f"{prefix}_MODEL", "").strip() or DEFAULT_MODELS[name]}],
    }
    base_url = env.get(f"{prefix}_BASE_URL", "").strip()
    if base_url:
        if not base_url.startswith(("http://", "https://")):
            raise _bad(f"{prefix}_BASE_URL", base_url, "expected an http:// or https:// URL")
        provider["baseURL"] = base_url
    return provider


def table_from_env(env: Mapping[str, str]) -> RoutingTable:
    enabled_raw = env.get("ENABLE_PROVIDER_SYSTEM", "true").strip().lower() or "true"
    if enabled_raw not in _TRUE | _FALSE:
        raise _bad("ENABLE_PROVIDER_SYSTEM", enabled_raw, "expected true or false")
    chain: list[str] = []
    for role in _ROLES:
        value = env.get(role, "").strip().lower()
        if not value:
            continue
        if value not in ENV_PROVIDERS:
            raise _bad(role, value, f"expected one of {', '.join(ENV_PROVIDERS)}")
        if value not in chain:
            chain.append(value)
    if not chain:
        raise EnvConfigError(
            "PRIMARY_PROVIDER is not set: name one of "
            f"{', '.join(ENV_PROVIDERS)} (or start with --config FILE)"
        )
    if enabled_raw in _FALSE:
        chain = chain[:1]  # the provider system off: the primary alone, no fallback
    strategy_raw = env.get("PROVIDER_LOAD_BALANCE", "priority").strip().lower() or "priority"
    if strategy_raw not in LOAD_BALANCE:
        raise _bad("PROVIDER_LOAD_BALANCE", strategy_raw, f"expected one of {', '.join(LOAD_BALANCE)}")
    timeout = _number(env, "PROVIDER_TIMEOUT", 30.0, integer=False)
    attempts = int(_number(env, "PROVIDER_RETRY_ATTEMPTS", 2, integer=True))
    # Every provider with a key (or a base URL) can be pinned as `<provider>/<model>`.
    configured = [
        n for n in ENV_PROVIDERS if n in chain or _keys(env, n.upper()) or env.get(f"{n.upper()}_BASE_URL")
    ]
    providers = [_provider(env, name, timeout) for name in configured]
    for name in chain:
        if not _keys(env, name.upper()):
            raise EnvConfigError(
                f"{name.upper()}_API_KEY is not set but {name} is in the provider chain: "
                f"set {name.upper()}_API_KEY (or {name.upper()}_API_KEYS=key1,key2)"
            )
    route = {
        "name": "default",
        "strategy": LOAD_BALANCE[strategy_raw].value,
        "targets": [
            {"provider": n, "model": p["models"][0]["name"]}
            for n in chain
            for p in providers
            if p["name"] == n
        ],
        "retry": {"attempts": attempts},
        "timeout": timeout,
    }
    try:
        return load_table({"providers": providers, "routes": [route]})
    except TableError as exc:  # pragma: no cover - the env layer validates first
        raise EnvConfigError(str(exc)) from None
