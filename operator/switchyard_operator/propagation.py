"""How far a policy's current table has reached: the routers running it, from their reports.

Every router report names the table digest it serves (`tableHash`); the policy's ConfigMap is
annotated with the digest of the current table. `status.routers` counts the live routers of the
policy and how many of them serve the current table, and names the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from .usage_reports import RouterReport

JSON = dict[str, Any]


def routers_status(
    policy: str,
    current_hash: str | None,
    maps: Iterable[RouterReport],
    now: datetime,
    stale_after: timedelta,
) -> JSON:
    """`status.routers` of one policy: {current, total, summary, stale: [pods not current]}."""
    live = sorted(
        (m for m in maps if m.policy == policy and m.live(now, stale_after)), key=lambda m: m.pod
    )
    behind = [m.pod for m in live if current_hash is None or m.report.table_hash != current_hash]
    current = len(live) - len(behind)
    return {
        "current": current,
        "total": len(live),
        "summary": f"{current}/{len(live)}",
        "stale": behind,
    }
