"""Fidelity of the Anthropic Messages format, with the official `anthropic` SDK as the client."""

from __future__ import annotations

from typing import Any, Literal

import anthropic
import pydantic
import pytest
from anthropic import AsyncAnthropic
from switchyard_sim import Simulator

from .conftest import ANTHROPIC_KEY, anthropic_headers

TOOL = {
    "name": "lookup",
    "description": "Look something up",
    "input_schema": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "number"}, "tags": {"type": "array"}},
        "required": ["query", "limit", "tags"],
    },
}
OTHER_TOOL = {"name": "other", "input_schema": {"type": "object", "properties": {}}}


def client(sim: Simulator, name: str = "claude", *, key: str = ANTHROPIC_KEY) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=sim.base_url(name, "anthropic"), api_key=key, max_retries=0)


async def test_message_json(sim: Simulator) -> None:
    message = await client(sim).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=256,
        system="You are terse.",
        messages=[{"role": "user", "content": "Hello Claude"}],
    )
    assert message.id.startswith("msg_01") and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-6"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from claude (claude-sonnet-4-6). You said: Hello Claude"
    assert message.usage.input_tokens == (len("You are terse.") + len("Hello Claude")) // 4
    assert message.usage.output_tokens == 8
    assert message._request_id is not None and message._request_id.startswith("req_")


async def test_max_tokens_stop_reason(sim: Simulator) -> None:
    message = await client(sim).messages.create(
        model="m", max_tokens=2, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.stop_reason == "max_tokens"
    assert message.content[0].type == "text" and message.content[0].text == "Hello from"
    assert message.usage.output_tokens == 2


async def test_text_stream(sim: Simulator) -> None:
    async with client(sim).messages.stream(
        model="m", max_tokens=100, messages=[{"role": "user", "content": "Stream please"}]
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "Hello from claude (m). You said: Stream please"
    assert len(pieces) == 8
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 8
    assert final.usage.input_tokens == len("Stream please") // 4


async def test_stream_event_sequence(sim: Simulator, http) -> None:
    async with client(sim).messages.stream(
        model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        kinds = [event.type async for event in stream]
    # The SDK adds derived events ("text") and swallows pings.
    wire = [k for k in kinds if k != "text"]
    assert wire[:2] == ["message_start", "content_block_start"]
    assert wire[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    # On the wire: named events, a ping after the first block start, as Anthropic sends.
    body = {"model": "m", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    url = sim.base_url("claude", "anthropic") + "/v1/messages"
    async with http.post(url, json=body, headers=anthropic_headers()) as response:
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        raw = (await response.read()).decode()
    events = [block.split("\n")[0].removeprefix("event: ") for block in raw.strip().split("\n\n")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


async def test_tool_use_json_and_stream(sim: Simulator) -> None:
    c = client(sim)
    message = await c.messages.create(
        model="m",
        max_tokens=100,
        tools=[TOOL, OTHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Find it"}],
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.id.startswith("toolu_01") and block.name == "lookup"
    assert block.input == {"query": "sim", "limit": 1, "tags": []}
    assert message.usage.output_tokens == 10
    async with c.messages.stream(
        model="m",
        max_tokens=100,
        tools=[TOOL, OTHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "other"},
        messages=[{"role": "user", "content": "Find it"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].name == "other"
    assert final.content[0].input == {}


async def test_streamed_tool_input_is_assembled_by_the_sdk(sim: Simulator) -> None:
    async with client(sim).messages.stream(
        model="m",
        max_tokens=100,
        tools=[TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Find it"}],
    ) as stream:
        partials = [event.partial_json async for event in stream if event.type == "input_json"]
        final = await stream.get_final_message()
    assert len(partials) > 2
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"query": "sim", "limit": 1, "tags": []}


async def test_tool_result_and_tool_choice_none_get_text(sim: Simulator) -> None:
    c = client(sim)
    after_result = await c.messages.create(
        model="m",
        max_tokens=100,
        tools=[TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "Find it"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"query": "a"}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "found"}],
            },
        ],
    )
    assert after_result.stop_reason == "end_turn"
    assert after_result.content[0].type == "text"
    assert after_result.content[0].text.endswith("You said: Find it")
    none = await c.messages.create(
        model="m",
        max_tokens=100,
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice={"type": "none"},
        messages=[{"role": "user", "content": [{"type": "text", "text": "Find it"}]}],
    )
    assert none.stop_reason == "end_turn"


async def test_count_tokens_and_models(sim: Simulator) -> None:
    c = client(sim)
    count = await c.messages.count_tokens(model="m", messages=[{"role": "user", "content": "x" * 40}])
    assert count.input_tokens == 10
    models = [m async for m in c.models.list()]
    assert models[0].id == "claude-sonnet-4-6"
    assert all(m.type == "model" for m in models)
    model = await c.models.retrieve("claude-haiku-4-5")
    assert model.display_name == "Claude Haiku 4.5"
    unknown = await c.models.retrieve("claude-x")
    assert unknown.id == "claude-x"


async def test_authentication_errors(sim: Simulator) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await client(sim, key="sk-bad-0000aaaa").messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": caught.value.request_id,
    }


@pytest.mark.parametrize(
    ("status", "exception", "type_"),
    [
        (529, anthropic.OverloadedError, "overloaded_error"),
        (503, anthropic.ServiceUnavailableError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (504, anthropic.InternalServerError, "timeout_error"),
        (413, anthropic.APIStatusError, "request_too_large"),
    ],
)
async def test_injected_errors(
    sim: Simulator, status: int, exception: type[anthropic.APIStatusError], type_: str
) -> None:
    sim.set_faults("claude", error_rate=1.0, error_status=status)
    with pytest.raises(exception) as caught:
        await client(sim).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == type_
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
    if status == 529:
        assert caught.value.response.headers["x-should-retry"] == "true"


async def test_context_window_error(sim: Simulator) -> None:
    sim.set_faults("claude", context_window=5)
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client(sim).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "y" * 100}]
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["message"] == "prompt is too long: 25 tokens > 5 maximum"


async def test_required_header_and_fields(sim: Simulator, http) -> None:
    url = sim.base_url("claude", "anthropic") + "/v1/messages"
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    async with http.post(url, json=body, headers={"x-api-key": ANTHROPIC_KEY}) as response:
        assert response.status == 400
        error = await response.json()
        assert error["error"] == {
            "type": "invalid_request_error",
            "message": "anthropic-version: header is required",
        }
    async with http.post(url, json={**body, "max_tokens": None}, headers=anthropic_headers()) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "max_tokens: Field required"
    async with http.post(
        url, json={"max_tokens": 5, "messages": body["messages"]}, headers=anthropic_headers()
    ) as r:
        assert r.status == 400
    async with http.post(url, json={**body, "messages": []}, headers=anthropic_headers()) as response:
        assert response.status == 400
    async with http.post(url, json=body, headers={"anthropic-version": "2023-06-01"}) as response:
        assert response.status == 401
        assert (await response.json())["error"]["message"] == "x-api-key header is required"


class Contact(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=2)  # the SDK moves this bound into the description
    plan: Literal["free", "pro"]
    tags: list[str]


async def test_structured_output_with_the_sdks_parse(sim: Simulator) -> None:
    # messages.parse sends output_config.format in the SDK's own reading of what the API takes.
    message = await client(sim).messages.parse(
        model="claude-sonnet-4-6",
        max_tokens=256,
        messages=[{"role": "user", "content": "Who is Ada?"}],
        output_format=Contact,
    )
    assert message.parsed_output == Contact(name="sim", plan="free", tags=[])


def _format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize(
    ("output_config", "problem"),
    [
        (_format({"type": "object", "properties": {}}), "additionalProperties"),
        (
            _format(
                {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "minimum": 1}},
                    "additionalProperties": False,
                }
            ),
            "properties.n: unsupported keyword 'minimum'",
        ),
        (
            _format({"type": "array", "items": {"type": "string", "maxLength": 3}}),
            "items: unsupported keyword",
        ),
        (_format({"type": "array", "minItems": 2}), "minItems"),
        (_format({"anyOf": ["string"]}), "anyOf[0]: Input should be a valid dictionary"),
        ({"format": {"type": "json_schema"}}, "schema: Field required"),
        ({"format": {"type": "json_object"}}, "format.type"),
    ],
)
async def test_schemas_structured_outputs_cannot_enforce_are_refused(
    sim: Simulator, output_config: dict[str, Any], problem: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client(sim).messages.create(
            model="m",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            output_config=output_config,  # type: ignore[arg-type]
        )
    assert problem in str(caught.value)


async def test_a_strict_tool_needs_an_enforceable_schema(sim: Simulator) -> None:
    loose = {"name": "t", "strict": True, "input_schema": {"type": "object", "properties": {}}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client(sim).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}], tools=[loose]
        )
    assert "tools.0.input_schema: objects must set 'additionalProperties' to false" in str(caught.value)


async def test_prompt_caching_writes_then_reads_the_marked_prefix(sim: Simulator) -> None:
    c = client(sim)
    system = "Rules of the house. " * 40  # 800 characters: 200 tokens
    first_turn = [{"role": "user", "content": "What are the rules?"}]
    first = await c.messages.create(
        model="m", max_tokens=50, system=system, messages=first_turn, cache_control={"type": "ephemeral"}
    )
    written = first.usage.cache_creation_input_tokens or 0
    assert written >= 200 and first.usage.cache_read_input_tokens == 0
    again = await c.messages.create(
        model="m", max_tokens=50, system=system, messages=first_turn, cache_control={"type": "ephemeral"}
    )
    assert (again.usage.cache_read_input_tokens, again.usage.cache_creation_input_tokens) == (written, 0)
    # The next turn reads the earlier prefix and writes only what is new, streamed or not.
    longer = [
        *first_turn,
        {"role": "assistant", "content": "x" * 400},
        {"role": "user", "content": "y" * 400},
    ]
    async with c.messages.stream(
        model="m", max_tokens=50, system=system, messages=longer, cache_control={"type": "ephemeral"}
    ) as stream:
        final = await stream.get_final_message()
    assert final.usage.cache_read_input_tokens == written
    assert final.usage.cache_creation_input_tokens == 200
    # A breakpoint on the system prompt alone caches just that.
    marked = await c.messages.create(
        model="m",
        max_tokens=50,
        system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Something else entirely"}],
    )
    assert (marked.usage.cache_creation_input_tokens, marked.usage.cache_read_input_tokens) == (200, 0)
    assert marked.usage.input_tokens == len("Something else entirely") // 4
