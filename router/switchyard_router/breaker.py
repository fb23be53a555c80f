"""Circuit breakers: stop sending to a target (or a key) that keeps failing, then test it again.

Closed: traffic flows. Open: nothing is sent until the cooldown ends. Half-open: one trial
request goes through; its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

from enum import IntEnum

from .table import CircuitBreakerPolicy

_BUCKETS = 10  # the failure-rate window is kept as ten time slices: O(1) memory at any rate


class BreakerState(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    __slots__ = (
        "_bucket_end",
        "_calls",
        "_failures",
        "consecutive",
        "open_until",
        "policy",
        "state",
        "trial_taken",
    )

    def __init__(self, policy: CircuitBreakerPolicy) -> None:
        self.policy = policy
        self.state = BreakerState.CLOSED
        self.consecutive = 0
        self.open_until = 0.0
        self.trial_taken = False
        self._calls = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS
        self._bucket_end = 0.0

    def available(self, now: float) -> bool:
        """Whether a request could go now (without taking the half-open trial)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return now >= self.open_until
        return not self.trial_taken

    def acquire(self, now: float) -> bool:
        """Take the right to send one request; in half-open, only one is let through."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if now < self.open_until:
                return False
            self.state = BreakerState.HALF_OPEN
            self.trial_taken = False
        if self.trial_taken:
            return False
        self.trial_taken = True
        return True

    def release(self) -> None:
        """The request ended with no verdict on the target (the client left): free the trial."""
        self.trial_taken = False

    def success(self, now: float) -> None:
        self.consecutive = 0
        self._record(now, failed=False)
        if self.state is not BreakerState.CLOSED:
            self.state = BreakerState.CLOSED
            self.trial_taken = False

    def failure(self, now: float) -> None:
        self.consecutive += 1
        self._record(now, failed=True)
        if self.state is BreakerState.HALF_OPEN or self._should_open():
            self.trip(now + self.policy.cooldown)

    def trip(self, until: float) -> None:
        """Open now, until the given time (at least: a later trip extends it)."""
        was_open = self.state is BreakerState.OPEN
        self.state = BreakerState.OPEN
        self.open_until = max(self.open_until, until) if was_open else until
        self.trial_taken = False
        self._calls = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS
        self.consecutive = 0

    def _should_open(self) -> bool:
        if self.consecutive >= self.policy.consecutive_failures:
            return True
        calls = sum(self._calls)
        if calls < self.policy.minimum_requests:
            return False
        return sum(self._failures) * 100 >= self.policy.failure_rate_percent * calls

    def _record(self, now: float, *, failed: bool) -> None:
        width = self.policy.window / _BUCKETS
        if now >= self._bucket_end:
            # Slide the window: drop the slices that ended, at most all of them.
            passed = min(_BUCKETS, int((now - self._bucket_end) / width) + 1) if width else _BUCKETS
            self._calls = self._calls[passed:] + [0] * passed
            self._failures = self._failures[passed:] + [0] * passed
            self._bucket_end = now + width
        self._calls[-1] += 1
        if failed:
            self._failures[-1] += 1
