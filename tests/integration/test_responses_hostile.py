"""A hostile endpoint behind /v1/responses: malformed answers and events, through the chat
translation (an OpenAI-compatible provider) and the pass-through (a provider of type openai),
are classified errors, never a 500; an error before the first byte still falls back; a stream
that never closes its response is cut at maxStreamBytes."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from aiohttp import web

from ..hostile import KEYS, HostileUpstream, hostile_table

ASK = {"model": "chat", "input": "secret prompt"}
SSE = {"Content-Type": "text/event-stream"}


@pytest.fixture
async def hostile():
    upstream = await HostileUpstream().start()
    yield upstream
    await upstream.stop()


def table(url: str, kind: str, **route: object) -> dict:
    found = hostile_table(url, "openai-compatible", **route)
    found["providers"][0]["type"] = kind
    return found


async def ask(url: str, body: dict) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.post(f"{url}/v1/responses", json=body) as resp:
        return resp.status, await resp.read()


def answering(response: web.StreamResponse):
    async def behaviour(request: web.BaseRequest) -> web.StreamResponse:
        return response

    return behaviour


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("openai-compatible", {"choices": "x"}),
        ("openai-compatible", {"choices": [{"message": ["x"]}]}),
        ("openai", {"object": "response", "usage": {"input_tokens": "many"}}),
        ("openai", ["not", "an", "object"]),
    ],
)
async def test_a_malformed_answer_is_a_502(hostile, start_router, kind, body):
    hostile.behaviour = answering(web.json_response(body))
    _, url = await start_router(table(hostile.url, kind, retry={"attempts": 1}), KEYS)
    status, raw = await ask(url, ASK)
    assert status == 502
    error = orjson.loads(raw)["error"]
    assert error["type"] == "api_error"
    assert "malformed" in error["message"] or "not an object" in error["message"]


@pytest.mark.parametrize(
    ("kind", "events"),
    [
        ("openai-compatible", b'data: {"choices":"x"}\n\n'),
        ("openai-compatible", b"data: [1, 2]\n\n"),
        ("openai", b"event: response.completed\ndata: [1]\n\n"),
        ("openai", b'event: response.completed\ndata: {"response":{"usage":{"input_tokens":"x"}}}\n\n'),
    ],
)
async def test_a_malformed_event_is_a_502(hostile, start_router, kind, events):
    hostile.behaviour = answering(web.Response(body=events, headers=SSE))
    _, url = await start_router(table(hostile.url, kind, retry={"attempts": 1}), KEYS)
    status, raw = await ask(url, {**ASK, "stream": True})
    assert status == 502, raw
    assert orjson.loads(raw)["error"]["type"] in ("api_error", "api_connection_error")


async def test_an_error_event_before_the_first_byte_falls_back(hostile, sim, start_router):
    events = (
        b'event: error\ndata: {"type":"error","code":"server_error","message":"down","sequence_number":0}\n\n'
    )
    hostile.behaviour = answering(web.Response(body=events, headers=SSE))
    fallback = f"{sim.url}/primary/v1"
    _, url = await start_router(
        table(hostile.url, "openai", fallback_url=fallback, retry={"attempts": 1}), KEYS
    )
    status, raw = await ask(url, {**ASK, "stream": True})
    assert status == 200
    assert b"event: response.completed" in raw and b"secret prompt" in raw


async def test_a_stream_that_never_completes_is_cut_at_max_stream_bytes(hostile, start_router):
    async def endless(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        delta = b'event: response.output_text.delta\ndata: {"delta":"' + b"x" * 1000 + b'"}\n\n'
        for _ in range(10_000):  # 10 MB unless the router stops reading
            await response.write(delta)
        return response

    hostile.behaviour = endless
    found = table(hostile.url, "openai", retry={"attempts": 1})
    found["server"] = {"maxStreamBytes": 100_000}
    _, url = await start_router(found, KEYS)
    status, raw = await ask(url, {**ASK, "stream": True})
    # Cut before the first byte reached the client (a 502), or after it (Responses' error event).
    assert len(raw) < 200_000
    last = raw.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    assert status in (200, 502) and b"maxStreamBytes" in last
    assert status == 502 or last.startswith(b"event: error")
