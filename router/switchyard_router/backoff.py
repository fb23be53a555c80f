"""Exponential backoff with full jitter, bounded, and honouring a provider's Retry-After."""

from __future__ import annotations

import random

from .table import Backoff


def retry_delay(policy: Backoff, retry_number: int, retry_after: float | None) -> float:
    """Seconds to wait before retry `retry_number` (0 for the first retry).

    Full jitter (a random wait up to the exponential cap) keeps many clients from retrying in
    step. A provider's Retry-After is a floor: retrying sooner only earns another 429.
    """
    cap = min(policy.max, policy.base * (2**retry_number))
    delay = random.uniform(0, cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
