"""OpenAI responses checked against OpenAI's own OpenAPI description (shared/specs)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from switchyard_sim import Simulator

from ..openai_spec import AVAILABLE, check
from .conftest import CHAT, openai_headers

TOOL = {
    "type": "function",
    "function": {
        "name": "f",
        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
    },
}


pytestmark = pytest.mark.skipif(not AVAILABLE, reason="OpenAI's OpenAPI description is not available")


async def post(http, sim: Simulator, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with http.post(sim.base_url("p") + path, json=body, headers=openai_headers()) as response:
        return response.status, await response.read()


@pytest.mark.parametrize(
    "extra",
    [{}, {"tools": [TOOL]}, {"max_tokens": 2}],
    ids=["text", "tool_call", "length"],
)
async def test_chat_completion_conforms(sim: Simulator, http, extra: dict[str, Any]) -> None:
    status, raw = await post(http, sim, "/chat/completions", {**CHAT, **extra})
    assert status == 200
    check("CreateChatCompletionResponse", orjson.loads(raw))


@pytest.mark.parametrize("extra", [{}, {"tools": [TOOL]}], ids=["text", "tool_call"])
async def test_stream_chunks_conform(sim: Simulator, http, extra: dict[str, Any]) -> None:
    body = {**CHAT, **extra, "stream": True, "stream_options": {"include_usage": True}}
    status, raw = await post(http, sim, "/chat/completions", body)
    assert status == 200
    events = [e.removeprefix(b"data: ") for e in raw.strip().split(b"\n\n")]
    assert events[-1] == b"[DONE]"
    for event in events[:-1]:
        check("CreateChatCompletionStreamResponse", orjson.loads(event))


async def test_embeddings_and_models_conform(sim: Simulator, http) -> None:
    status, raw = await post(http, sim, "/embeddings", {"model": "e", "input": ["a", "b"]})
    assert status == 200
    check("CreateEmbeddingResponse", orjson.loads(raw))
    async with http.get(sim.base_url("p") + "/models", headers=openai_headers()) as response:
        check("ListModelsResponse", await response.json())


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_errors_conform(sim: Simulator, http, status: int) -> None:
    sim.set_faults("p", error_rate=1.0, error_status=status)
    got, raw = await post(http, sim, "/chat/completions", CHAT)
    assert got == status
    check("ErrorResponse", orjson.loads(raw))


async def test_auth_and_context_errors_conform(sim: Simulator, http) -> None:
    async with http.post(sim.base_url("p") + "/chat/completions", json=CHAT) as response:
        check("ErrorResponse", await response.json())
    sim.set_faults("p", context_window=1)
    _, raw = await post(
        http, sim, "/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "x" * 99}]}
    )
    check("ErrorResponse", orjson.loads(raw))
