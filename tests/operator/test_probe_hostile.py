"""The operator's health probe against a hostile endpoint: it follows no redirect and reads a few
KB at most, however much the endpoint sends, compressed or not."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest
from aiohttp import web
from switchyard_operator.models import HealthCheckSpec
from switchyard_operator.probe import PROBE_READ_LIMIT, probe
from switchyard_router.table import Provider

from ..hostile import HostileUpstream
from .manifests import LOOPBACK

KEY = "sk-probe-hostile-key-123456"


@pytest.fixture
async def hostile():
    upstream = await HostileUpstream().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def elsewhere():
    upstream = await HostileUpstream(host="localhost").start()
    yield upstream
    await upstream.stop()


@pytest.mark.parametrize("family", ["openai-compatible", "anthropic", "gemini"])
async def test_a_probe_follows_no_redirect(hostile, elsewhere, family):
    async def redirect(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=308, headers={"Location": f"{elsewhere.url}/grab?k=1"})

    hostile.behaviour = redirect
    provider = Provider(name="p", type=family, base_url=hostile.url)
    async with httpx.AsyncClient() as http:
        outcome = await probe(http, provider, KEY, HealthCheckSpec(), LOOPBACK)
    assert not outcome.ok
    assert outcome.error.startswith("Redirected: p answered HTTP 308, a redirect to host localhost")
    assert "grab" not in outcome.error
    assert elsewhere.seen == []


@pytest.mark.parametrize("compressed", [False, True])
async def test_a_probe_reads_a_few_kilobytes_of_an_endless_answer(hostile, compressed):
    sent = 0
    block = b"x" * 65536
    if compressed:
        block = gzip.compress(b"\0" * 8 * 1024 * 1024)  # 8 MB in a few KB, sent again and again

    async def endless(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal sent
        headers = {"Content-Encoding": "gzip"} if compressed else {}
        response = web.StreamResponse(status=500, headers=headers)
        await response.prepare(request)
        try:
            for _ in range(10_000):
                await response.write(block)
                sent += len(block)
        except (ConnectionResetError, OSError):
            pass
        return response

    hostile.behaviour = endless
    provider = Provider(name="p", type="openai-compatible", base_url=hostile.url)
    async with httpx.AsyncClient() as http:
        outcome = await probe(http, provider, KEY, HealthCheckSpec(timeout="5s"), LOOPBACK)
    assert not outcome.ok and outcome.error.startswith("ServerError: HTTP 500")
    assert len(outcome.error) <= 500
    await asyncio.sleep(0.05)
    # The probe hung up after its few KB: the endpoint got to write what the socket buffers hold.
    assert sent < 16 * 1024 * 1024
    assert PROBE_READ_LIMIT <= 8192


async def test_a_probe_that_trickles_times_out_as_a_whole(hostile):
    async def trickle(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"x")
            await asyncio.sleep(0.05)
        return response

    hostile.behaviour = trickle
    provider = Provider(name="p", type="openai-compatible", base_url=hostile.url)
    async with httpx.AsyncClient() as http:
        outcome = await probe(http, provider, KEY, HealthCheckSpec(timeout="300ms"), LOOPBACK)
    assert not outcome.ok and outcome.error.startswith("Timeout")
