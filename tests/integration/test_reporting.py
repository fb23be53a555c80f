"""The router's side of the usage pull: `GET /usage` on the health port, and the final handover."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
from aiohttp import web
from switchyard_router import clock
from switchyard_router.adapters import Usage
from switchyard_router.clock import ManualClock
from switchyard_router.reporting import UsagePublisher
from switchyard_router.server import Router
from switchyard_router.table import Pricing
from switchyard_router.usage import UsageReport

PRICE = Pricing(input_per_million_tokens=Decimal("1"), output_per_million_tokens=Decimal("2"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serving(router: Router, publisher: UsagePublisher) -> tuple[web.BaseRunner, str]:
    runner = router.health_runner({"/usage": publisher.handle})
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/usage"


async def pull(http: aiohttp.ClientSession, url: str, **params: str) -> UsageReport:
    async with http.get(url, params=params) as resp:
        assert resp.status == 200
        return UsageReport.model_validate_json(await resp.read())


async def test_each_pull_is_a_new_cumulative_report_and_the_final_one_is_handed_over() -> None:
    router = Router(policy="chat")
    publisher = UsagePublisher(router)
    runner, url = await serving(router, publisher)
    manual = ManualClock(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    try:
        with clock.use(manual):
            async with aiohttp.ClientSession() as http:
                assert not publisher.recently_pulled(45)
                router.ledger.record("oa", "m", Usage(1000, 10, reported=True), PRICE)
                first = await pull(http, url)
                router.ledger.record("oa", "m", Usage(1000, 10, reported=True), PRICE)
                second = await pull(http, url)
                assert first.policy == second.policy == "chat" and not second.final
                assert (first.sequence, second.sequence) == (1, 2)
                assert (first.counters[0].requests, second.counters[0].requests) == (1, 2)
                assert publisher.recently_pulled(45)
                manual.advance(46)
                assert not publisher.recently_pulled(45)

                # The operator long-polls a terminating router: answered when the router stops.
                waiting = asyncio.ensure_future(pull(http, url, wait="final", timeout="5"))
                await asyncio.sleep(0.1)
                assert not waiting.done()
                router.ledger.record("oa", "m", Usage(1000, 10, reported=True), PRICE)
                final = publisher.finish()
                assert publisher.finish() is final  # taken once
                got = await waiting
                assert got.final and got.sequence == 3 and got.counters[0].requests == 3
                assert await publisher.hand_over(0.1)
                assert (await pull(http, url)).sequence == 3  # the final report stays the answer

                # A bounded wait: a bad or absent timeout answers at once.
                assert (await pull(http, url, wait="final", timeout="soon")).final
    finally:
        await runner.cleanup()


async def test_no_pull_no_handover() -> None:
    router = Router()
    publisher = UsagePublisher(router)
    runner, url = await serving(router, publisher)
    try:
        async with aiohttp.ClientSession() as http:
            report = await pull(http, url, wait="final", timeout="0.05")  # not stopping: at the timeout
            assert not report.final and report.table_hash is None
            publisher.finish()
            assert not await publisher.hand_over(0.05)  # nobody pulled the final report
    finally:
        await runner.cleanup()
