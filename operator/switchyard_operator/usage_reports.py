"""The routers the operator pulls usage from, and the last report each one gave.

Each router serves its whole cumulative `UsageReport` (the router's contract, imported from
`switchyard_router.usage`) at `GET /usage` on its pod's health port. The operator knows the
router pods from its watch on Pods (router_pods.py) and keeps, per pod, the last report that
passed usage_check, with the time it pulled it. Nothing of this is written to the API: the
ledgers in the providers' status are the durable record (spend.py), and after a restart the
first pull round fills this in again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from switchyard_router.usage import UsageReport

from .router_pods import RouterPod
from .spend import DEFAULT_KEEP_FOLDED, FoldSettings
from .usage_check import MAX_REPORT_BYTES, ReportRefused


@dataclass(frozen=True)
class UsageSettings:
    """How often routers are pulled, and after how many silent intervals a router counts as gone.

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
class RouterReport:
    """The last accepted report of one router pod, and when the operator pulled it."""

    namespace: str
    pod: str
    policy: str
    report: UsageReport
    pulled_at: datetime

    def live(self, now: datetime, stale_after: timedelta) -> bool:
        """A router that still runs: not final, and pulled within the stale window."""
        return not self.report.final and now - self.pulled_at <= stale_after


Key = tuple[str, str]  # (namespace, pod name)


@dataclass
class Routers:
    """Router pods as the Pod watch last saw them, and their last accepted reports."""

    pods: dict[Key, RouterPod] = field(default_factory=dict)
    reports: dict[Key, RouterReport] = field(default_factory=dict)
    # The last refusal per pod, so a router that keeps sending a bad report is told once.
    refused: dict[Key, str] = field(default_factory=dict)
    # (namespace, ServiceAccount, policy) -> (may use it, until when on the monotonic clock)
    rights: dict[tuple[str, str, str], tuple[bool, float]] = field(default_factory=dict)

    def of_policy(self, namespace: str, policy: str) -> list[RouterPod]:
        return sorted(
            (p for (ns, _), p in self.pods.items() if ns == namespace and p.policy == policy),
            key=lambda p: p.name,
        )

    def reports_in(self, namespace: str) -> list[RouterReport]:
        return sorted((r for (ns, _), r in self.reports.items() if ns == namespace), key=lambda r: r.pod)

    def forget(self, key: Key) -> RouterReport | None:
        """The pod is gone: drop it, and hand back its last report (to retire it)."""
        self.pods.pop(key, None)
        self.refused.pop(key, None)
        return self.reports.pop(key, None)

    def __iter__(self) -> Iterator[RouterPod]:
        return iter(list(self.pods.values()))


class RouterUnreachable(Exception):
    pass


async def pull_raw(http: httpx.AsyncClient, pod: RouterPod, *, wait_final: float | None = None) -> bytes:
    """The body of `GET /usage` on the pod's health port, read to at most MAX_REPORT_BYTES + 1.

    `wait_final`: ask the router to hold the answer until its final report is ready (it is
    terminating) or that many seconds have passed.
    """
    url = pod.url
    if url is None:
        raise RouterUnreachable(f"pod {pod.name} has no address or health port yet")
    params = {"wait": "final", "timeout": f"{wait_final:g}"} if wait_final else None
    timeout = httpx.Timeout(5.0, read=(wait_final or 0) + 5.0)
    try:
        async with http.stream("GET", url, params=params, timeout=timeout) as response:
            if response.status_code != 200:
                raise RouterUnreachable(f"GET {url}: HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_REPORT_BYTES:
                    raise ReportRefused("TooLarge", f"the report is over {MAX_REPORT_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise RouterUnreachable(f"GET {url}: {type(exc).__name__}") from None
