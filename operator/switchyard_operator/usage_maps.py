"""The routers' usage ConfigMaps, as the operator reads them.

Each router process writes its whole cumulative `UsageReport` (the router's contract, imported
from `switchyard_router.usage`) as JSON under `report.json` in the ConfigMap
`switchyard-usage-<pod>` of its namespace, labelled `switchyard.dev/usage-report: "true"` and
`switchyard.dev/policy: <policy>`; it rewrites it every report interval and once more, final,
on a graceful stop. A restarted container (a new incarnation) overwrites its pod's ConfigMap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from switchyard_router.usage import UsageReport

from .kube import Kube, core_path
from .spend import DEFAULT_KEEP_FOLDED, FoldSettings

USAGE_LABEL = "switchyard.dev/usage-report"
POLICY_LABEL = "switchyard.dev/policy"
REPORT_KEY = "report.json"
NAME_PREFIX = "switchyard-usage-"
JSON = dict[str, Any]


@dataclass(frozen=True)
class UsageSettings:
    """How often routers report, and after how many silent intervals a router counts as gone.

    From the environment: SWITCHYARD_REPORT_INTERVAL (seconds, default 15) and
    SWITCHYARD_STALE_INTERVALS (default 10).
    """

    report_interval: float = 15.0
    stale_intervals: int = 10
    keep_folded: int = DEFAULT_KEEP_FOLDED

    @classmethod
    def from_env(cls) -> UsageSettings:
        return cls(
            report_interval=float(os.environ.get("SWITCHYARD_REPORT_INTERVAL", "15")),
            stale_intervals=int(os.environ.get("SWITCHYARD_STALE_INTERVALS", "10")),
        )

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.report_interval * self.stale_intervals)

    def fold(self) -> FoldSettings:
        return FoldSettings(
            stale_after=self.stale_after,
            heartbeat=self.stale_after / 3,
            keep_folded=self.keep_folded,
        )


@dataclass(frozen=True)
class UsageMap:
    """One usage ConfigMap and the report in it."""

    name: str
    namespace: str
    resource_version: str | None
    policy: str | None
    report: UsageReport

    @property
    def pod(self) -> str:
        return self.report.pod or self.name.removeprefix(NAME_PREFIX)

    def live(self, now: datetime, stale_after: timedelta) -> bool:
        """A router that still runs: not final, and reported within the stale window."""
        return not self.report.final and now - self.report.reported_at <= stale_after


def is_usage_map(body: Mapping[str, Any]) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return labels.get(USAGE_LABEL) == "true"


def parse_usage_map(body: Mapping[str, Any]) -> UsageMap | None:
    """The report in a usage ConfigMap; None when it is not one or cannot be read."""
    if not is_usage_map(body):
        return None
    meta = body.get("metadata") or {}
    raw = (body.get("data") or {}).get(REPORT_KEY)
    if not raw:
        return None
    try:
        report = UsageReport.model_validate_json(raw)
    except ValidationError:
        return None
    labels = meta.get("labels") or {}
    return UsageMap(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        resource_version=meta.get("resourceVersion"),
        policy=report.policy or labels.get(POLICY_LABEL),
        report=report,
    )


async def read_usage_maps(kube: Kube, namespace: str) -> list[UsageMap]:
    """Every readable usage ConfigMap of the namespace (label filtered here as well)."""
    items = await kube.list(core_path("configmaps", namespace) + f"?labelSelector={USAGE_LABEL}%3Dtrue")
    maps = [parse_usage_map(item) for item in items]
    return sorted((m for m in maps if m is not None), key=lambda m: m.name)


async def delete_usage_map(kube: Kube, usage: UsageMap) -> bool:
    """Delete a usage ConfigMap unless a router rewrote it since we read it (precondition)."""
    body: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if usage.resource_version:
        body["preconditions"] = {"resourceVersion": usage.resource_version}
    response = await kube.client.request(
        "DELETE", core_path("configmaps", usage.namespace, usage.name), json=body
    )
    return response.status_code < 400
