"""Spend reaches the operator by being pulled: `GET /usage` on the router's health port.

Routers write nothing to the API server. The operator finds each router from its Pod (admitted
by the webhook, its policy fixed in the pod spec) and GETs the cumulative report from the pod's
health port every report interval; a pod can only ever speak for its own policy, and no other
pod can write or erase what it says.

On a graceful stop the router stops taking requests, lets those in flight finish, takes its
final snapshot, and keeps the health port open until that snapshot has been handed to a puller
(the operator long-polls `GET /usage?wait=final` from the moment it sees the pod terminating),
or until `final_wait` has passed. A router the operator has not pulled lately does not wait.
What a SIGKILL loses: what was served since the operator's last pull (one report interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from . import clock
from .server import Router
from .usage import UsageReport

log = logging.getLogger("switchyard.router")

MAX_WAIT = 60.0  # the longest a puller may hold `?wait=final` open


class UsagePublisher:
    """Answers the operator's pulls, and hands over the final report on a graceful stop."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.last_pulled: float | None = None
        self._final: UsageReport | None = None
        self._stopping = asyncio.Event()
        self._handed_over = asyncio.Event()

    def snapshot(self) -> UsageReport:
        """The cumulative report, numbered anew (the final one, once taken, stays the answer)."""
        if self._final is not None:
            return self._final
        table = self.router.table
        return self.router.ledger.snapshot(table_hash=table.digest if table else None)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.last_pulled = clock.monotonic()
        if request.query.get("wait") == "final" and self._final is None:
            try:
                timeout = min(max(float(request.query.get("timeout", "10")), 0.0), MAX_WAIT)
            except ValueError:
                timeout = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout)
        report = self.snapshot()
        body = report.model_dump_json(by_alias=True).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write_eof(body)
        if report.final:
            self._handed_over.set()
        return response

    def finish(self) -> UsageReport:
        """Take the final snapshot (after the requests in flight are done) and release waiters."""
        if self._final is None:
            table = self.router.table
            self._final = self.router.ledger.snapshot(table_hash=table.digest if table else None, final=True)
            self._stopping.set()
        return self._final

    def recently_pulled(self, within: float) -> bool:
        return self.last_pulled is not None and clock.monotonic() - self.last_pulled <= within

    async def hand_over(self, wait: float) -> bool:
        """Wait until the final report has been pulled; False when `wait` passed first."""
        try:
            await asyncio.wait_for(self._handed_over.wait(), wait)
        except TimeoutError:
            return False
        return True
