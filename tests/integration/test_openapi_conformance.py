"""The router's answers, translated ones included, conform to OpenAI's own OpenAPI description."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from ..openai_spec import AVAILABLE, check
from .conftest import table_for

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="OpenAI's OpenAPI description is not available")

FAMILIES = ["primary/gpt-sim", "claude/claude-sim", "gem/gemini-sim"]
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
}


@pytest.fixture
async def post(sim, start_router):
    _, url = await start_router(table_for(sim.url))
    async with aiohttp.ClientSession() as http:

        async def send(path: str, body: dict) -> tuple[int, bytes]:
            async with http.post(f"{url}{path}", json=body) as resp:
                return resp.status, await resp.read()

        send.url = url  # type: ignore[attr-defined]
        send.http = http  # type: ignore[attr-defined]
        yield send


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("tools", [False, True])
async def test_chat_completions_conform(post, model, tools):
    body: dict = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if tools:
        body.update(tools=[TOOL], tool_choice="required")
    status, raw = await post("/v1/chat/completions", body)
    assert status == 200
    check("CreateChatCompletionResponse", orjson.loads(raw))


@pytest.mark.parametrize("model", FAMILIES)
async def test_stream_chunks_conform(post, model):
    body = {
        "model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "stream_options": {"include_usage": True}, "tools": [TOOL],
    }
    status, raw = await post("/v1/chat/completions", body)
    assert status == 200
    lines = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    assert lines[-1] == b"[DONE]"
    for data in lines[:-1]:
        check("CreateChatCompletionStreamResponse", orjson.loads(data))


@pytest.mark.parametrize("model", ["primary/embed-sim", "gem/embed-sim"])
async def test_embeddings_conform(post, model):
    status, raw = await post("/v1/embeddings", {"model": model, "input": ["a", "b"]})
    assert status == 200
    check("CreateEmbeddingResponse", orjson.loads(raw))


async def test_errors_and_models_conform(post):
    status, raw = await post("/v1/chat/completions", {"model": "missing", "messages": [{"role": "user", "content": "x"}]})
    assert status == 404
    check("ErrorResponse", orjson.loads(raw))
    async with post.http.get(f"{post.url}/v1/models") as resp:
        check("ListModelsResponse", await resp.json())
    async with post.http.get(f"{post.url}/v1/models/claude/claude-sim") as resp:
        check("Model", await resp.json())
