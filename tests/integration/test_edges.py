"""Edge cases that need an upstream misbehaving in ways the simulator has no switch for."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import orjson
import pytest
import uvloop
from aiohttp import web
from openai import AsyncOpenAI
from switchyard_router.credentials import CredentialStore
from switchyard_router.server import Router
from switchyard_router.table import load_table

from .conftest import KEYS, client_gone_settles, settle, table_for

FIRST = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":null}]}\n\n'


@pytest.fixture
async def stalling_upstream():
    """An OpenAI-compatible upstream that sends one chunk, then nothing (until released)."""
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(FIRST)
        await release.wait()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    release.set()
    await runner.cleanup()


REST = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def test_a_stream_that_ends_within_one_loop_turn_goes_out_as_one_body():
    """On uvloop (the router's loop in production), bytes arriving while the first frames are
    translated are read before the answer starts: one body with a Content-Length, no chunks."""

    async def scenario() -> None:
        async def upstream(request: web.BaseRequest) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(FIRST)
            await asyncio.sleep(0)  # the rest a loop turn later: the router reads FIRST alone
            await response.write_eof(REST)
            return response

        upstream_runner = web.ServerRunner(web.Server(upstream))
        await upstream_runner.setup()
        await web.TCPSite(upstream_runner, "127.0.0.1", 0).start()
        router = Router()
        base_url = f"http://127.0.0.1:{upstream_runner.addresses[0][1]}/v1"
        router.load(load_table(one_provider(base_url)), CredentialStore({}))
        runner = router.runner()
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        body = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": True}
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"http://127.0.0.1:{runner.addresses[0][1]}/v1/chat/completions", json=body) as resp,
            ):
                assert resp.status == 200
                assert resp.headers.get("Transfer-Encoding") is None
                text = await resp.text()
                assert resp.headers["Content-Length"] == str(len(text.encode()))
                assert '"content":"hi"' in text and '"finish_reason":"stop"' in text
                assert text.endswith("data: [DONE]\n\n")
        finally:
            await runner.cleanup()
            await upstream_runner.cleanup()

    uvloop.run(scenario())


def one_provider(base_url: str, **route) -> dict:
    return {
        "providers": [{"name": "up", "type": "openai-compatible", "baseURL": base_url}],
        "routes": [{"name": "chat", "targets": [{"provider": "up", "model": "m"}], **route}],
    }


async def test_a_stream_that_stalls_after_its_first_byte_ends_with_an_error(stalling_upstream, start_router):
    router, url = await start_router(one_provider(stalling_upstream, timeout="300ms"), {})
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="stalled"):
        async for _ in stream:
            pass
    assert 'switchyard_requests_total{outcome="Timeout",route="chat"} 1.0' in router.metrics.render().decode()


async def test_a_client_that_leaves_mid_stream_frees_the_upstream(stalling_upstream, start_router):
    router, url = await start_router(one_provider(stalling_upstream, timeout="5s"), {})
    async with aiohttp.ClientSession() as http:
        body = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": True}
        resp = await http.post(f"{url}/v1/chat/completions", json=body)
        assert await resp.content.readany()
        resp.close()
    await client_gone_settles(router)


async def test_a_stream_whose_every_target_fails_is_a_json_error(sim, start_router):
    _, url = await start_router(table_for(sim.url, retry={"attempts": 1}))
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, error_rate=1.0, error_status=500)
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert caught.value.status_code == 502


async def test_a_zero_deadline_answers_without_any_attempt(sim, start_router):
    _, url = await start_router(table_for(sim.url, deadline="0s"))
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 504
    assert sim.stats().get("primary", {}).get("requests", 0) == 0


async def test_a_chunked_body_over_the_limit_is_a_413(sim, start_router):
    table = table_for(sim.url)
    table["server"] = {"maxBodyBytes": 1024}
    _, url = await start_router(table)

    async def chunks():
        for _ in range(10):
            yield b"x" * 512

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/chat/completions", data=chunks()) as resp,
    ):
        assert resp.status == 413


async def test_reloading_swaps_the_table_and_keeps_target_state(sim, start_router):
    router, _ = await start_router(table_for(sim.url))
    old = router.table
    old.routes["chat"].targets[0].observe_latency(0.5)
    new = router.load(load_table(table_for(sim.url, strategy="RoundRobin")), CredentialStore({}))
    assert new.digest != old.digest
    # Unchanged providers keep their state (latency, in-flight, key rotation).
    assert new.routes["chat"].targets[0] is old.routes["chat"].targets[0]
    metrics = router.metrics.render().decode()
    assert f'hash="{old.digest}"' not in metrics and f'hash="{new.digest}"' in metrics


async def test_pinned_routes_are_cached_within_bounds(sim, start_router):
    from switchyard_router import runtime

    free = table_for(sim.url)
    free["providers"][0]["allowAnyModel"] = True
    router, _ = await start_router(free)
    table = router.table
    assert table.resolve("primary/a") is table.resolve("primary/a")
    assert table.resolve("nobody/x") is None
    assert table.resolve("primary/") is None
    assert table.resolve("claude/undeclared") is None  # claude allows only its declared models
    for i in range(runtime.PINNED_ROUTES_CACHED + 5):
        table.resolve(f"primary/m{i}")
    assert len(table._pinned) == runtime.PINNED_ROUTES_CACHED
    pinned = table.resolve("primary/m-undeclared")
    assert pinned.route.name == "primary/other"
    assert pinned.targets[0].model_label == "other"
    assert pinned.targets[0].shared.keys[0].value == "sk-primary-secret-0001"
    assert len(table.targets()) == 3  # the route's: models clients named are not kept
    keyless = load_table(one_provider("http://127.0.0.1:9/v1"))
    from switchyard_router.runtime import CompiledTable

    # A provider without keys still gets one slot, sending no Authorization header.
    slot = CompiledTable(keyless, CredentialStore()).routes["chat"].targets[0].shared.keys
    assert [(k.name, k.value) for k in slot] == [("none", None)]


async def test_a_reload_that_lowers_the_body_limit_applies_to_chunked_bodies(sim, start_router):
    router, url = await start_router(table_for(sim.url))
    smaller = table_for(sim.url)
    smaller["server"] = {"maxBodyBytes": 100}
    router.load(load_table(smaller), CredentialStore({}))

    async def chunks():
        yield b'{"model": "chat", "messages": [{"role": "user", "content": "'
        yield b"x" * 200
        yield b'"}]}'

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/chat/completions", data=chunks()) as resp,
    ):
        assert resp.status == 413


async def test_a_reload_that_raises_the_body_limit_lets_larger_bodies_in(sim, start_router):
    small = table_for(sim.url)
    small["server"] = {"maxBodyBytes": 1024}
    router, url = await start_router(small)
    body = {"model": "chat", "messages": [{"role": "user", "content": "x" * 4000}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
            assert resp.status == 413
        larger = table_for(sim.url)
        larger["server"] = {"maxBodyBytes": 8192}
        router.load(load_table(larger), CredentialStore(KEYS))
        async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
        # A body sent in chunks has no Content-Length: aiohttp's own cap is the new limit too.
        async with http.post(f"{url}/v1/chat/completions", data=_chunked(orjson.dumps(body))) as resp:
            assert resp.status == 200


async def _chunked(data: bytes):
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


async def test_a_client_leaving_a_half_open_trial_frees_it(sim, start_router):
    table = table_for(sim.url, retry={"attempts": 1}, timeout="5s")
    table["circuitBreaker"] = {"consecutiveFailures": 1, "cooldown": "1ms"}
    router, url = await start_router(table)
    breaker = router.table.routes["chat"].targets[0].breaker
    breaker.trip(0)  # open, cooldown already over: the next request is the half-open trial
    sim.set_faults("primary", hang_rate=1.0)
    async with aiohttp.ClientSession() as http:
        body = {"model": "chat", "messages": [{"role": "user", "content": "x"}]}
        with pytest.raises(asyncio.TimeoutError):
            await http.post(f"{url}/v1/chat/completions", json=body, timeout=aiohttp.ClientTimeout(total=0.3))
    await settle(lambda: not breaker.trial_taken)
    assert not breaker.trial_taken  # the next request may try again
