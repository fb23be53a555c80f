"""Fault settings per simulated provider, and the seeded dice that decide each request's fate."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

from switchyard_router import clock

HANG_LIMIT_S = 600.0  # a hung request still ends, so a forgotten test cannot leak forever


@dataclass(slots=True, frozen=True)
class Faults:
    """What can go wrong with one provider. The defaults mean: nothing does."""

    latency_ms: float = 0.0  # added before the first byte of every answer
    error_rate: float = 0.0  # share of requests answered with error_status
    error_status: int = 500
    retry_after: float | None = None  # seconds; 429s default to 1 when unset
    hang_rate: float = 0.0  # accept, then never answer
    reset_rate: float = 0.0  # abort the TCP connection without a response
    cut_rate: float = 0.0  # stop a stream (or a JSON body) halfway and abort the connection
    context_window: int | None = None  # estimated prompt tokens above this get the family's 400
    rate_limit_burst: int | None = None  # requests allowed per second before 429s
    chunk_delay_ms: float = 0.0  # pause between stream events (not in the original brief)

    def __post_init__(self) -> None:
        for name in ("error_rate", "hang_rate", "reset_rate", "cut_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        for name in ("latency_ms", "chunk_delay_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 400 <= self.error_status <= 599:
            raise ValueError(f"error_status must be an HTTP error status, got {self.error_status!r}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.context_window is not None and self.context_window < 1:
            raise ValueError("context_window must be at least 1")
        if self.rate_limit_burst is not None and self.rate_limit_burst < 0:
            raise ValueError("rate_limit_burst must not be negative")

    @classmethod
    def from_mapping(cls, data: object, base: Faults | None = None) -> Faults:
        """Validate JSON from the admin API; `base` supplies the fields a PATCH leaves out."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
        values = asdict(base) if base is not None else {}
        for name, value in data.items():
            values[name] = _coerce(name, value)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_active(self) -> bool:
        """True when any fault is set; a provider with default Faults behaves normally."""
        return self != _QUIET


_QUIET = Faults()
_INT_FIELDS = {"error_status", "context_window", "rate_limit_burst"}
_OPTIONAL = {"retry_after", "context_window", "rate_limit_burst"}


def _coerce(name: str, value: object) -> Any:
    if value is None:
        if name in _OPTIONAL:
            return None
        raise ValueError(f"{name} must not be null")
    # bool is an int subclass; refusing it catches `"error_rate": true` typos.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if name in _INT_FIELDS:
        if value != int(value):
            raise ValueError(f"{name} must be an integer")
        return int(value)
    return float(value)


class FaultState:
    """One provider's faults plus its own seeded RNG and rate-limit window.

    The RNG is reseeded from (seed, name) whenever faults are set, so "set faults, send N
    requests" gives the same outcomes on every run, whatever traffic came before.
    """

    __slots__ = ("_rng", "_seed_text", "_window", "_window_count", "faults")

    def __init__(self, faults: Faults, seed: int, name: str) -> None:
        self.faults = faults
        self._seed_text = f"faults:{seed}:{name}"
        self._rng = random.Random(self._seed_text)
        self._window = -1
        self._window_count = 0

    def roll(self, rate: float) -> bool:
        """True with probability `rate`; draws nothing when the rate is 0 or 1."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self._rng.random() < rate

    def over_burst(self) -> bool:
        """Count this request in the current wall-clock second; True past the allowed burst."""
        burst = self.faults.rate_limit_burst
        if burst is None:
            return False
        second = int(clock.time())
        if second != self._window:
            self._window = second
            self._window_count = 0
        self._window_count += 1
        return self._window_count > burst

    def retry_after(self) -> float:
        value = self.faults.retry_after
        return 1.0 if value is None else value
