"""Rate limits as token buckets, so a target over its quota is skipped before anything is sent.

Requests and tokens per minute, for a provider and for each of its keys. A bucket may go below
zero when a response used more tokens than estimated: the debt delays the next request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime


class TokenBucket:
    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = float(per_minute)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def has(self, amount: float, now: float) -> bool:
        self._refill(now)
        # A request bigger than the whole bucket may go once the bucket is full.
        return self.level >= min(amount, self.capacity)

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount


class Quota:
    """A requests bucket and a tokens bucket, either of them optional."""

    __slots__ = ("requests", "tokens")

    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None, now: float) -> None:
        self.requests = TokenBucket(requests_per_minute, now) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, now) if tokens_per_minute else None

    def allows(self, tokens: int, now: float) -> bool:
        if self.requests is not None and not self.requests.has(1, now):
            return False
        return self.tokens is None or self.tokens.has(tokens, now)

    def take(self, tokens: int, now: float) -> None:
        if self.requests is not None:
            self.requests.take(1, now)
        if self.tokens is not None:
            self.tokens.take(tokens, now)

    def charge(self, tokens: int, now: float) -> None:
        """Tokens known only after the answer (output, or a better count than the estimate)."""
        if self.tokens is not None and tokens:
            self.tokens.take(tokens, now)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# (remaining, reset) header pairs: OpenAI/Groq/OpenRouter style, then Anthropic's.
_HEADER_PAIRS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
)


def parse_reset(value: str, wall_now: float) -> float | None:
    """Seconds until a quota resets: `1s`, `6m0s`, `20ms`, plain seconds, or an RFC 3339 time."""
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parts = _GO_DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(when.timestamp() - wall_now, 0.0)


def exhausted_for(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds to hold off when the provider's rate-limit headers say a quota is used up."""
    wait: float | None = None
    for remaining_name, reset_name in _HEADER_PAIRS:
        remaining = headers.get(remaining_name)
        if remaining is None or remaining.strip() != "0":
            continue
        reset = parse_reset(headers.get(reset_name, ""), wall_now)
        if reset is not None:
            wait = max(wait or 0.0, reset)
    return wait
