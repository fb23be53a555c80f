"""The one place Switchyard reads the time: the router, the operator and the simulator ask here.

Billing months, budgets, certificate lifetimes, report staleness and probe times all hang off
the calendar, so tests must be able to put the process on any date (a month's last second, a
leap day) without waiting for it. One process-wide source, swapped with `use()`, means no
reader can be left out of an injection: a module that reads `time` or `datetime` directly is a
bug (tests/unit/test_clock.py greps for it).
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


class Clock:
    """The system's clocks: wall time (UTC) and a monotonic clock for durations."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return _time.time()

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (cooldowns, windows, latencies)."""
        return _time.monotonic()

    def now(self) -> datetime:
        """The wall time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)


class ManualClock(Clock):
    """A clock that moves only when told: both readings advance together."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock: start must be timezone-aware (e.g. tzinfo=UTC)")
        self._wall = start.timestamp()
        self._mono = 1000.0  # any origin: monotonic readings only ever mean differences

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("ManualClock.advance: seconds must be >= 0 (use set() to go back)")
        self._wall += seconds
        self._mono += seconds

    def set(self, moment: datetime) -> None:
        """Move the wall clock to `moment` (the monotonic clock stays: it never goes back)."""
        self._wall = moment.timestamp()


_current: Clock = Clock()


def time() -> float:
    return _current.time()


def monotonic() -> float:
    return _current.monotonic()


def now() -> datetime:
    return _current.now()


def current() -> Clock:
    return _current


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Run a block on `clock`, then restore the one before."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
