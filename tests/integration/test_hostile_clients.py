"""Attacks from the client side (a compromised chatbot next to the router), each performed on
loopback against a real router: names it chooses stay out of URLs, labels and reports."""

from __future__ import annotations

import asyncio

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
