"""Answers from the template cache are the bytes a fresh rendering gives, with fresh ids."""

from __future__ import annotations

import json
import re

import orjson
import pytest
from switchyard_sim import Faults, Simulator
from switchyard_sim.templates import MAX_BODY_BYTES, MAX_ENTRIES, TemplateCache

from .conftest import CHAT, anthropic_headers, gemini_headers, openai_headers

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
REQUESTS = [
    ("/p/v1/chat/completions", CHAT, openai_headers()),
    (
        "/p/v1/chat/completions",
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
        openai_headers(),
    ),
    ("/p/v1/chat/completions", {**CHAT, "tools": [TOOL]}, openai_headers()),
    ("/p/v1/embeddings", {"model": "e", "input": "x"}, openai_headers()),
    ("/p/v1/models", None, openai_headers()),
    (
        "/c/v1/messages",
        {"model": "c", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]},
        anthropic_headers(),
    ),
    (
        "/c/v1/messages",
        {"model": "c", "max_tokens": 9, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        anthropic_headers(),
    ),
    ("/g/v1beta/models/m:generateContent", {"contents": [{"parts": [{"text": "hi"}]}]}, gemini_headers()),
    (
        "/g/v1beta/models/m:streamGenerateContent?alt=sse",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        gemini_headers(),
    ),
]
CREATED = re.compile(rb'"created":\d+')


async def fetch(
    http, sim: Simulator, path: str, body: object, headers: dict[str, str]
) -> tuple[int, bytes, str]:
    method = "GET" if body is None else "POST"
    async with http.request(method, sim.url + path, json=body, headers=headers) as response:
        request_id = response.headers.get("x-request-id") or response.headers.get("request-id") or ""
        return response.status, CREATED.sub(b'"created":0', await response.read()), request_id


async def test_cached_answers_match_fresh_renderings(http) -> None:
    async with Simulator(seed=5) as cached, Simulator(seed=5) as fresh:
        for name in ("p", "c", "g"):
            fresh.set_faults(name, Faults())  # any faults, even none at all, bypass the cache
        seen = []
        for _ in range(2):  # the second round is served from templates
            for path, body, headers in REQUESTS:
                expected = await fetch(http, fresh, path, body, headers)
                got = await fetch(http, cached, path, body, headers)
                assert got == expected, path
                seen.append(got[1])
        assert len(set(seen)) == len(seen) - 2  # fresh ids each time (embeddings and models have none)


async def test_created_is_the_current_time(sim: Simulator, http) -> None:
    for _ in range(2):
        async with http.post(
            sim.base_url("p") + "/chat/completions", json=CHAT, headers=openai_headers()
        ) as r:
            created = (await r.json())["created"]
        assert 1_700_000_000 < created < 4_000_000_000


@pytest.mark.parametrize("text", ["x" * (MAX_BODY_BYTES + 1), "has a \u2063 mark \u20630\u2063"])
@pytest.mark.parametrize(
    "encode", [json.dumps, lambda obj: orjson.dumps(obj).decode()], ids=["escaped", "utf8"]
)
async def test_bodies_the_cache_skips_still_answer(sim: Simulator, http, text: str, encode) -> None:
    data = encode({"model": "m", "messages": [{"role": "user", "content": text}]})
    contents = []
    for _ in range(2):
        async with http.post(
            sim.base_url("p") + "/chat/completions",
            data=data.encode(),
            headers={**openai_headers(), "Content-Type": "application/json"},
        ) as r:
            answer = await r.json()
        contents.append(answer["choices"][0]["message"]["content"])
    assert contents[0] == contents[1] == f"Hello from p (m). You said: {text[:40]}"


async def test_bad_requests_are_not_cached(sim: Simulator, http) -> None:
    for _ in range(2):
        async with http.post(
            sim.base_url("p") + "/chat/completions", json={"model": "m"}, headers=openai_headers()
        ) as r:
            assert r.status == 400


def test_the_cache_is_bounded() -> None:
    cache = TemplateCache()
    for i in range(MAX_ENTRIES + 1):
        cache._entries[i] = None  # type: ignore[assignment]
    assert len(cache._entries) == MAX_ENTRIES + 1
    cache.clear()
    assert cache.get(1) is None
