"""Attacks from the client side (a compromised chatbot next to the router), each performed on
loopback against a real router: names it chooses stay out of URLs, labels and reports."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import orjson
import pytest
from aiohttp import web

from ..hostile import KEYS, HostileUpstream, hostile_table

OK_BODY = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
GEMINI_OK = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
}


@pytest.fixture
async def hostile():
    upstream = await HostileUpstream().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def chat(http: aiohttp.ClientSession, url: str, model: str) -> tuple[int, dict]:
    body = {"model": model, "messages": [{"role": "user", "content": "x"}]}
    async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
        return resp.status, orjson.loads(await resp.read())


def free_models(table: dict) -> dict:
    table["providers"][0]["allowAnyModel"] = True
    return table


@pytest.mark.parametrize(
    "model",
    [
        "up/../../../admin?x=1#",
        "up/models/../../admin",
        "up/a b",
        "up/%2e%2e/admin",
        "up/x/y/z/w",
        "up/" + "a" * 129,
    ],
)
async def test_a_pinned_model_cannot_leave_the_models_url(hostile, start_router, http, model):
    hostile.behaviour = lambda request: _respond(web.json_response(GEMINI_OK))
    _, url = await start_router(free_models(hostile_table(hostile.url, "gemini")), KEYS)
    status, body = await chat(http, url, model)
    assert status == 404 and body["error"]["code"] == "model_not_found"
    assert hostile.seen == []


async def test_a_name_pinned_for_gemini_is_one_path_segment(hostile, start_router, http):
    hostile.behaviour = lambda request: _respond(web.json_response(GEMINI_OK))
    _, url = await start_router(free_models(hostile_table(hostile.url, "gemini")), KEYS)
    status, body = await chat(http, url, "up/a:b")  # a fine name elsewhere, not for Gemini
    assert status == 400 and body["error"]["message"].startswith("model: 'a:b' is not a Gemini model name")
    assert hostile.seen == []
    for model, path in (("up/tunedModels/mine-1", "/v1beta/tunedModels/mine-1:generateContent"),
                        ("up/gemini-9.9-new", "/v1beta/models/gemini-9.9-new:generateContent")):
        status, _ = await chat(http, url, model)
        assert status == 200 and hostile.seen[-1].path_qs == path


async def test_an_undeclared_model_is_refused_unless_the_provider_allows_any(hostile, start_router, http):
    hostile.behaviour = lambda request: _respond(web.json_response(OK_BODY))
    _, url = await start_router(hostile_table(hostile.url, "openai-compatible"), KEYS)
    assert (await chat(http, url, "up/m"))[0] == 200  # declared
    status, body = await chat(http, url, "up/gpt-anything")
    assert status == 404 and body["error"]["code"] == "model_not_found"
    assert len(hostile.seen) == 1


async def test_thousands_of_model_names_leave_metrics_and_usage_as_they_were(hostile, start_router, http):
    hostile.behaviour = lambda request: _respond(web.json_response(OK_BODY))
    router, url = await start_router(free_models(hostile_table(hostile.url, "openai-compatible")), KEYS)
    assert (await chat(http, url, "up/first-name"))[0] == 200
    series_before = series(router)
    for start in range(0, 2000, 100):
        results = await asyncio.gather(*(chat(http, url, f"up/name-{i}") for i in range(start, start + 100)))
        assert {status for status, _ in results} == {200}
    assert series(router) == series_before  # the same series, counting higher
    assert 'route="up/other"' in router.metrics.render().decode()
    async with http.get(f"{url}/usage") as resp:
        usage = await resp.read()
    assert len(usage) < 2000
    counters = orjson.loads(usage)["counters"]
    assert [(c["provider"], c["model"], c["requests"]) for c in counters] == [("up", "other", 2001)]
    assert len(router.table.targets()) == 1 and len(router.table._pinned) <= 256


def series(router) -> set[bytes]:
    return {line.rpartition(b" ")[0] for line in router.metrics.render().splitlines()}


async def _respond(response: web.StreamResponse) -> web.StreamResponse:
    return response


# --- slow and idle callers ---------------------------------------------------------------------

def guarded(table: dict, **server: object) -> dict:
    table["server"] = server
    return table


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the router closed the connection within `seconds` (what it sent before is skipped)."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_half_sent_request_heads_are_cut_off(hostile, start_router):
    table = guarded(hostile_table(hostile.url, "openai-compatible"), headerTimeout="300ms", idleTimeout="60s")
    _, url = await start_router(table, KEYS)
    port = int(url.rsplit(":", 1)[1])
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
    for _, writer in connections:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: app")
    # Still trickling: one more byte a while later does not buy more time.
    await asyncio.sleep(0.15)
    for _, writer in connections:
        writer.write(b"l")
    results = await asyncio.gather(*(closed_within(reader, 1.5) for reader, _ in connections))
    assert all(results), f"{results.count(False)} of 300 still open"
    for _, writer in connections:
        writer.close()
    assert hostile.seen == []


async def test_idle_connections_are_closed(hostile, start_router):
    table = guarded(hostile_table(hostile.url, "openai-compatible"), headerTimeout="60s", idleTimeout="300ms")
    _, url = await start_router(table, KEYS)
    port = int(url.rsplit(":", 1)[1])
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
    results = await asyncio.gather(*(closed_within(reader, 1.5) for reader, _ in connections))
    assert all(results)
    for _, writer in connections:
        writer.close()


async def test_a_body_that_does_not_arrive_is_a_408(hostile, start_router):
    table = guarded(hostile_table(hostile.url, "openai-compatible"), bodyTimeout="300ms")
    _, url = await start_router(table, KEYS)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\":")
    async with asyncio.timeout(2):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    writer.close()
    assert hostile.seen == []


async def test_connections_over_the_cap_are_refused_at_once(hostile, start_router, http):
    hostile.behaviour = lambda request: _respond(web.json_response(OK_BODY))
    table = guarded(hostile_table(hostile.url, "openai-compatible"), maxConnections=20, idleTimeout="60s")
    router, url = await start_router(table, KEYS)
    port = int(url.rsplit(":", 1)[1])
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(50)]
    await asyncio.sleep(0.1)
    closed = await asyncio.gather(*(closed_within(reader, 0.2) for reader, _ in connections))
    assert closed.count(True) == 30 and closed[:20] == [False] * 20  # the first twenty stay
    assert "switchyard_connections_refused_total 30.0" in router.metrics.render().decode()
    for _, writer in connections:
        writer.close()
    await asyncio.sleep(0.1)
    assert (await chat(http, url, "chat"))[0] == 200  # room again once callers leave


async def test_the_health_port_listens_where_told_and_serves_only_probes_and_metrics(hostile, start_router, http):
    router, _ = await start_router(hostile_table(hostile.url, "openai-compatible"), KEYS)
    runner = router.health_runner()
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)  # a pod IP's stand-in: one address, not all
    await site.start()
    port = runner.addresses[0][1]
    try:
        for path, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/usage", 404),
                             ("/v1/models", 404), ("/v1/chat/completions", 404)):
            async with http.get(f"http://127.0.0.2:{port}{path}") as resp:
                assert resp.status == status, path
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        await runner.cleanup()


async def test_a_stream_that_keeps_sending_ends_at_the_routes_deadline(hostile, start_router, http):
    chunk = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'

    async def endless(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(100_000):
                await response.write(chunk)
                await asyncio.sleep(0.005)
        return response

    hostile.behaviour = endless
    router, url = await start_router(hostile_table(hostile.url, "openai-compatible", deadline="1s", timeout="1s"), KEYS)
    body = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": True}
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
        raw = await resp.read()
    took = loop.time() - started
    assert 1.0 <= took < 1.5, took
    last = raw.rstrip(b"\n").rpartition(b"\n\n")[2]
    error = orjson.loads(last[6:])["error"]
    assert error["message"] == "up was still streaming at the route's deadline" and error["type"] == "timeout"
    assert 'switchyard_requests_total{outcome="Timeout",route="chat"} 1.0' in router.metrics.render().decode()
