"""The world the control-plane bench puts around the operator: a counting emulated API, and R
simulated routers behind one aiohttp server.

Each simulated router is a pod in the emulated API, admitted as the webhook admits it (the
webhook's own `inject_sidecar`), Running at its own loopback address 127.0.x.y; the one server
listens on every such address at the health port and answers `GET /usage` for the pod whose
address was dialled, as a router does: its whole cumulative report, one more request counted
at each pull (so every pull carries news and the steady state has spend to fold). The same
server answers the providers' `GET /v1/models` health probes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import attrs
from aiohttp import web
from kmock import Request, action
from switchyard_operator.webhook import SidecarSettings, inject_sidecar
from switchyard_router import clock
from switchyard_router.usage import UsageCounter, UsageReport, period_of

from tests.operator.emulator import Emulator

NS = "team"
ACCOUNT = "chatbot"


@attrs.define(kw_only=True)
class CountingEmulator(Emulator):
    """The emulated API, counting the operator's requests (its token) by verb and resource."""

    counts: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)
    counted_token: str | None = None  # count only requests bearing this token (None: none)

    async def _handle(self, request: Request) -> web.StreamResponse:
        # kmock logs every request and matches each new one against that whole log (quadratic
        # in requests served): the bench keeps only the one in hand, or the emulated API, not
        # the operator, would set the pace after a few thousand requests.
        del self._requests[:-1]
        bearer = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if request.resource is not None and self.counted_token and bearer == self.counted_token:
            verbs = {action.FETCH: "get", action.LIST: "list", action.WATCH: "watch",
                     action.CREATE: "create", action.DELETE: "delete", action.UPDATE: "patch"}
            verb = verbs.get(request.action, str(request.method))
            what = (request.resource.plural or "discovery") + (f"/{request.subresource}" if request.subresource else "")
            self.counts[(verb, what)] += 1
        return await super()._handle(request)


WRITE_VERBS = ("create", "patch", "delete", "put")


def writes(counts: collections.Counter[tuple[str, str]]) -> int:
    """API writes: objects created, patched or deleted (a SubjectAccessReview is a question)."""
    return sum(n for (verb, what), n in counts.items()
               if verb in WRITE_VERBS and what != "subjectaccessreviews")


def address(index: int) -> str:
    """The i-th router's pod IP: 127.0.1.1, 127.0.1.2, ... (250 a /24)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


@dataclass
class SimulatedRouter:
    pod: str
    policy: str
    providers: list[str]
    incarnation: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started_at: Any = field(default_factory=clock.now)
    sequence: int = 0
    pulls: int = 0

    def report(self) -> bytes:
        """Cumulative: every pull counts one more request per provider, served at 1 µ$ each."""
        self.pulls += 1
        self.sequence += 1
        now = clock.now()
        counters = [
            UsageCounter(provider=p, model="m1", period=period_of(now), requests=self.sequence,
                         input_tokens=10 * self.sequence, output_tokens=5 * self.sequence,
                         cost_usd=Decimal(self.sequence) / 1_000_000)
            for p in self.providers
        ]
        report = UsageReport(
            incarnation=self.incarnation, sequence=self.sequence, pod=self.pod, namespace=NS,
            policy=self.policy, started_at=self.started_at, reported_at=now, counters=counters,
        )
        return report.model_dump_json(by_alias=True).encode()


class RouterServer:
    """One aiohttp app on every router's address (health port) and on 127.0.0.1 (probes)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.by_address: dict[str, SimulatedRouter] = {}
        self.runner: web.AppRunner | None = None

    async def usage(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        router = self.by_address.get(request.transport.get_extra_info("sockname")[0])
        if router is None:
            return web.Response(status=404)
        return web.Response(body=router.report(), content_type="application/json")

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m1", "object": "model"}]})

    async def start(self, routers: dict[str, SimulatedRouter]) -> None:
        self.by_address = routers
        app = web.Application()
        app.router.add_get("/usage", self.usage)
        app.router.add_get("/v1/models", self.models)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        for host in ["127.0.0.1", *routers]:
            await web.TCPSite(self.runner, host, self.port, backlog=1024).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def router_pod(router: SimulatedRouter, port: int) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": router.pod, "namespace": NS,
                     "annotations": {"switchyard.dev/policy": router.policy}},
        "spec": {"serviceAccountName": ACCOUNT, "containers": [{"name": "app", "image": "chatbot:1"}]},
    }
    return inject_sidecar(pod, router.policy, SidecarSettings(health_port=port))


async def gather_limited(coros: list[Any], at_once: int = 32) -> list[Any]:
    gate = asyncio.Semaphore(at_once)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))
