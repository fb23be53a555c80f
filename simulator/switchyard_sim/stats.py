"""Per-provider request counters. Keys are only ever seen as a short fingerprint."""

from __future__ import annotations

from typing import Any

# Outcomes without a complete HTTP response are counted under these names instead of a status.
HANG = "hang"
RESET = "reset"
CUT = "cut"


def key_fingerprint(key: str) -> str:
    """The key's last 4 characters; shorter keys than 8 would give too much away, so "****"."""
    return key[-4:] if len(key) >= 8 else "****"


class ProviderStats:
    __slots__ = ("families", "key_in_url", "keys", "models", "requests", "status", "streams")

    def __init__(self) -> None:
        self.requests = 0
        self.status: dict[str, int] = {}
        self.families: dict[str, int] = {}
        self.streams = 0
        self.key_in_url = 0
        self.keys: dict[str, int] = {}
        self.models: dict[str, int] = {}

    def record_request(self, family: str, key: str | None, key_in_url: bool) -> None:
        self.requests += 1
        self.families[family] = self.families.get(family, 0) + 1
        if key:
            fingerprint = key_fingerprint(key)
            self.keys[fingerprint] = self.keys.get(fingerprint, 0) + 1
        if key_in_url:
            self.key_in_url += 1

    def record_outcome(self, outcome: int | str) -> None:
        label = str(outcome)
        self.status[label] = self.status.get(label, 0) + 1

    def record_model(self, model: str) -> None:
        self.models[model] = self.models.get(model, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "status": dict(self.status),
            "families": dict(self.families),
            "streams": self.streams,
            "key_in_url": self.key_in_url,
            "keys": dict(self.keys),
            "models": dict(self.models),
        }
