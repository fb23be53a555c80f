"""Attacks from a broken or hostile endpoint at a provider's baseURL, each performed on loopback
against a real router: keys stay with their provider, reads stay bounded, errors stay classified."""

from __future__ import annotations

import logging

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from ..hostile import KEYS, HostileUpstream, hostile_table

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "secret prompt"}]}
OK_BODY = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@pytest.fixture
async def hostile():
    upstream = await HostileUpstream().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def elsewhere():
    """Where a redirect points: it must never see a request."""
    upstream = await HostileUpstream(host="localhost").start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: dict) -> tuple[int, CIMultiDict[str], bytes]:
    async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("family", ["openai-compatible", "anthropic", "gemini"])
async def test_a_redirect_is_not_followed_and_not_retried(
    hostile, elsewhere, start_router, http, caplog, family, stream
):
    async def redirect(request: web.BaseRequest) -> web.StreamResponse:
        location = f"{elsewhere.url}/steal?token=t0ps3cret"
        return web.Response(status=307, headers={"Location": location})

    hostile.behaviour = redirect
    caplog.set_level(logging.INFO, "switchyard.router")
    router, url = await start_router(hostile_table(hostile.url, family), KEYS)
    status, _, raw = await post(http, url, {**CHAT, "stream": stream})

    assert status == 502
    error = orjson.loads(raw)["error"]
    assert "HTTP 307, a redirect to host localhost" in error["message"]
    assert elsewhere.seen == []  # neither the key nor the prompt went there
    assert len(hostile.seen) == 1  # a redirect is not retried on the same target
    assert "host localhost" in caplog.text
    assert "t0ps3cret" not in caplog.text and "steal" not in caplog.text and "t0ps3cret" not in error["message"]
    metrics = router.metrics.render().decode()
    assert 'switchyard_attempts_total{model="m",outcome="Redirected",provider="up",route="chat"} 1.0' in metrics


async def test_a_redirect_falls_back_to_the_next_target(hostile, elsewhere, sim, start_router, http):
    hostile.behaviour = lambda request: _respond(web.Response(status=302, headers={"Location": "/elsewhere"}))
    table = hostile_table(hostile.url, "anthropic", fallback_url=sim.base_url("good"))
    router, url = await start_router(table, KEYS)
    status, headers, _ = await post(http, url, CHAT)
    assert status == 200 and headers["x-switchyard-provider"] == "good"
    metrics = router.metrics.render().decode()
    assert 'from_provider="up",reason="Redirected",route="chat",to_provider="good"' in metrics


async def _respond(response: web.StreamResponse) -> web.StreamResponse:
    return response


@pytest.mark.parametrize("answer", ["json", "stream", "error"])
async def test_a_key_echoed_in_a_request_id_never_reaches_the_client(hostile, start_router, http, answer):
    key = KEYS["openai.key"]

    async def echo(request: web.BaseRequest) -> web.StreamResponse:
        headers = {"x-request-id": f"req_{key}"}
        if answer == "error":
            return web.json_response({"error": {"message": "bad"}}, status=400, headers=headers)
        if answer == "json":
            return web.json_response(OK_BODY, headers=headers)
        chunk = {**OK_BODY, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
        body = b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n"
        return web.Response(body=body, headers={**headers, "Content-Type": "text/event-stream"})

    hostile.behaviour = echo
    _, url = await start_router(hostile_table(hostile.url, "openai-compatible"), KEYS)
    status, headers, raw = await post(http, url, {**CHAT, "stream": answer == "stream"})
    assert status == (400 if answer == "error" else 200)
    assert headers["x-request-id"] == "req_[REDACTED]"
    assert key.encode() not in raw


async def test_a_request_id_that_is_not_one_is_dropped(hostile, start_router, http):
    hostile.behaviour = lambda request: _respond(web.json_response(OK_BODY, headers={"x-request-id": "a b <script>"}))
    _, url = await start_router(hostile_table(hostile.url, "openai-compatible"), KEYS)
    status, headers, _ = await post(http, url, CHAT)
    assert status == 200 and "x-request-id" not in headers
