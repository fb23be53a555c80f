"""Standard Kubernetes conditions: build, merge (keeping transition times), compare."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from switchyard_router import clock

JSON = dict[str, Any]

READY = "Ready"
HEALTHY = "Healthy"
COMPILED = "Compiled"


def now() -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: bool | None, reason: str, message: str, generation: int | None = None
) -> JSON:
    value = "Unknown" if status is None else ("True" if status else "False")
    out: JSON = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None


def merge(old: list[JSON] | None, new: Iterable[JSON]) -> list[JSON]:
    """Replace conditions by type; a condition whose status did not change keeps its time."""
    out = [dict(c) for c in old or []]
    for cond in new:
        previous = find(out, cond["type"])
        cond = dict(cond)
        if previous is not None and previous.get("status") == cond["status"]:
            cond["lastTransitionTime"] = previous.get("lastTransitionTime", cond["lastTransitionTime"])
        out = [c for c in out if c.get("type") != cond["type"]] + [cond]
    return sorted(out, key=lambda c: str(c.get("type")))


def _essence(conditions: Iterable[Mapping[str, Any]] | None) -> list[tuple[Any, ...]]:
    return sorted(
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
        for c in conditions or ()
    )


def same(a: Iterable[Mapping[str, Any]] | None, b: Iterable[Mapping[str, Any]] | None) -> bool:
    """Equal but for transition times."""
    return _essence(a) == _essence(b)


def transitioned(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Status or reason changed: worth an Event."""
    if old is None:
        return True
    return bool(old.get("status") != new.get("status") or old.get("reason") != new.get("reason"))
