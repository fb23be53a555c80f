"""Timeouts for upstream reads without a timer per request.

Arming and cancelling an event-loop timer for every request showed in the bench as a few percent
of the router's CPU. Instead, every request in flight registers a `Watchdog` with its loop's one
`Ticker`, which looks at them all every `TICK` seconds: a timeout fires up to one tick late,
which is nothing next to timeouts measured in seconds.
"""

from __future__ import annotations

import asyncio
import weakref

TICK = 0.02  # seconds between checks; the lateness a timeout may have


class Ticker:
    """One loop's periodic check of the watchdogs registered with it; idle when there are none."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watched: set[Watchdog] = set()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, watchdog: Watchdog) -> None:
        self.watched.add(watchdog)
        if self.handle is None:
            self.handle = self.loop.call_at(self.loop.time() + TICK, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        for watchdog in [w for w in self.watched if w.overdue(now)]:
            watchdog.fire()
        self.handle = self.loop.call_at(now + TICK, self._tick) if self.watched else None


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


def _ticker(loop: asyncio.AbstractEventLoop) -> Ticker:
    ticker = _TICKERS.get(loop)
    if ticker is None:
        ticker = _TICKERS[loop] = Ticker(loop)
    return ticker


class Watchdog:
    """Cancels the current task's upstream read when the upstream has been silent for `idle`
    seconds, or `deadline` (loop time) has passed. Use `with watchdog:` around each read: time
    between reads (writing to a slow client) is not upstream silence. `idle` may change between
    reads (a first-token timeout, then an idle one). `stop()` when done."""

    __slots__ = ("__weakref__", "_fired", "active", "deadline", "idle", "in_read", "task", "ticker")

    def __init__(self, idle: float, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        self.ticker = _ticker(loop)
        task = asyncio.current_task()
        assert task is not None, "a watchdog watches the task that reads"
        self.task = task
        self.idle = idle
        self.deadline = deadline
        self.active = loop.time()
        self.in_read = False
        self._fired = False
        self.ticker.add(self)

    def __enter__(self) -> None:
        # Silence counts from the moment we wait for the upstream, not from the last check.
        self.in_read = True
        self.active = self.ticker.loop.time()

    def __exit__(self, *exc: object) -> None:
        self.in_read = False

    def overdue(self, now: float) -> bool:
        return self.in_read and now >= min(self.active + self.idle, self.deadline)

    def fire(self) -> None:
        self.stop()
        self._fired = True
        self.task.cancel()

    def fired(self) -> bool:
        """Whether a cancellation was ours; if so, it is taken back (the task goes on)."""
        if self._fired:
            self.task.uncancel()
        return self._fired

    def stop(self) -> None:
        self.ticker.watched.discard(self)
