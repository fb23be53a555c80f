"""Fidelity of the OpenAI wire format, with the official `openai` SDK as the client."""

from __future__ import annotations

import json
import time
from typing import Literal

import openai
import pydantic
import pytest
from openai import AsyncOpenAI
from switchyard_sim import Simulator
from switchyard_sim.openai_api import CHAT_ARGUMENTS

from ..openai_spec import AVAILABLE, schema_properties
from .conftest import KEY

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "detailed": {"type": "boolean"},
                "optional": {"type": "string"},
            },
            "required": ["city", "days", "unit", "detailed"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def client(sim: Simulator, name: str = "primary", *, key: str = KEY, retries: int = 0) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=sim.base_url(name), api_key=key, max_retries=retries)


async def test_chat_completion_json(sim: Simulator) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France? Answer in one word please."},
    ]
    reply = await client(sim).chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.logprobs is None
    assert choice.message.role == "assistant" and choice.message.refusal is None
    expected = "Hello from primary (gpt-4o-mini). You said: " + messages[1]["content"][:40]
    assert expected.endswith("Answer in")
    assert choice.message.content == expected
    assert reply.usage is not None
    chars = len("Be brief.") + len("What is the capital of France? Answer in one word please.")
    assert reply.usage.prompt_tokens == chars // 4
    assert reply.usage.completion_tokens == len(expected.split())
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


async def test_the_same_request_gets_the_same_answer(sim: Simulator) -> None:
    c = client(sim)
    first = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    second = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.id != second.id


async def test_chat_stream_with_usage(sim: Simulator) -> None:
    stream = await client(sim).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from primary (gpt-4o-mini). You said: Tell me a story"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == len(text.split())  # one word per chunk
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == len(text.split())


async def test_chat_stream_without_usage_has_no_usage_chunk(sim: Simulator) -> None:
    stream = await client(sim).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


async def test_max_tokens_truncates_with_finish_reason_length(sim: Simulator) -> None:
    reply = await client(sim).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "Hello from primary"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    reply = await client(sim).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=2
    )
    assert reply.choices[0].message.content == "Hello from"


async def test_tool_call_from_schema(sim: Simulator) -> None:
    reply = await client(sim).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {
        "city": "sim",
        "days": 1,
        "unit": "celsius",
        "detailed": True,
    }
    assert reply.usage is not None and reply.usage.completion_tokens == 10


async def test_forced_tool_choice_and_none(sim: Simulator) -> None:
    c = client(sim)
    messages = [{"role": "user", "content": "What time is it?"}]
    forced = await c.chat.completions.create(
        model="m",
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = forced.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "get_time"
    assert json.loads(calls[0].function.arguments) == {}
    none = await c.chat.completions.create(
        model="m",
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="none",
    )
    assert none.choices[0].message.tool_calls is None
    assert none.choices[0].finish_reason == "stop"


async def test_a_tool_result_gets_a_text_answer(sim: Simulator) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = await client(sim).chat.completions.create(
        model="m",
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == "Hello from primary (m). You said: Weather in Paris?"


async def test_streamed_tool_call(sim: Simulator) -> None:
    stream = await client(sim).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id is not None and deltas[0].id.startswith("call_")
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    arguments = "".join((d.function.arguments or "") for d in deltas if d.function)
    assert json.loads(arguments)["city"] == "sim"
    assert len(deltas) > 2  # the arguments arrive in pieces
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_content_parts_are_read_as_text(sim: Simulator) -> None:
    reply = await client(sim).chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "parts"}, {"type": "text", "text": "!"}]}
        ],
    )
    assert reply.choices[0].message.content == "Hello from primary (m). You said: parts!"


async def test_embeddings_float_and_base64(sim: Simulator) -> None:
    c = client(sim)
    default = await c.embeddings.create(model="text-embedding-3-small", input="hello")  # SDK asks base64
    assert default.object == "list" and default.model == "text-embedding-3-small"
    vector = default.data[0].embedding
    assert len(vector) == 8
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-5  # unit length
    as_float = await c.embeddings.create(model="e", input="hello", encoding_format="float")
    assert as_float.data[0].embedding == vector  # both encodings carry the same float32 values
    several = await c.embeddings.create(model="e", input=["hello", "world", "hello"], dimensions=16)
    assert [d.index for d in several.data] == [0, 1, 2]
    assert all(len(d.embedding) == 16 for d in several.data)
    assert several.data[0].embedding == several.data[2].embedding
    assert several.data[0].embedding != several.data[1].embedding
    assert several.usage.prompt_tokens == 3 and several.usage.total_tokens == 3
    tokens = await c.embeddings.create(model="e", input=[[1, 2, 3], [4, 5]])
    assert len(tokens.data) == 2


async def test_embedding_input_errors(sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client(sim).embeddings.create(model="e", input=[{"bad": 1}])  # type: ignore[list-item]
    assert caught.value.param == "input"
    with pytest.raises(openai.BadRequestError):
        await client(sim).embeddings.create(model="e", input="x", dimensions=0)


async def test_models_list_and_retrieve(sim: Simulator) -> None:
    c = client(sim)
    models = [m async for m in c.models.list()]
    assert "gpt-4o-mini" in [m.id for m in models]
    assert all(m.object == "model" and m.owned_by for m in models)
    model = await c.models.retrieve("my-finetune")
    assert model.id == "my-finetune"


async def test_missing_and_bad_keys(sim: Simulator) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await client(sim, key="sk-bad-key-0000zzzz").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "invalid_api_key"
    assert "sk-bad-key-0000zzzz" not in caught.value.message  # masked like OpenAI does
    assert caught.value.request_id is not None


async def test_rate_limit_with_retry_after_disabled_retries(sim: Simulator) -> None:
    sim.set_faults("primary", error_rate=1.0, error_status=429, retry_after=2)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        await client(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.monotonic() - started < 0.5
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"
    assert sim.stats("primary")["status"] == {"429": 1}


async def test_rate_limit_retry_after_is_honoured_by_the_sdk(sim: Simulator) -> None:
    sim.set_faults("primary", error_rate=1.0, error_status=429, retry_after=0.3)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        await client(sim, retries=1).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert time.monotonic() - started >= 0.3
    assert sim.stats("primary")["requests"] == 2


@pytest.mark.parametrize(
    ("status", "exception", "type_"),
    [
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "service_unavailable_error"),
        (400, openai.BadRequestError, "invalid_request_error"),
        (403, openai.PermissionDeniedError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (502, openai.InternalServerError, "server_error"),
    ],
)
async def test_injected_errors_raise_the_sdk_classes(
    sim: Simulator, status: int, exception: type[openai.APIStatusError], type_: str
) -> None:
    sim.set_faults("primary", error_rate=1.0, error_status=status)
    with pytest.raises(exception) as caught:
        await client(sim).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert caught.value.type == type_


async def test_context_window_error(sim: Simulator) -> None:
    sim.set_faults("primary", context_window=10)
    with pytest.raises(openai.BadRequestError) as caught:
        await client(sim).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x" * 400}]
        )
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 10 tokens" in caught.value.message
    assert "resulted in 100 tokens" in caught.value.message
    ok = await client(sim).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x" * 40}]
    )
    assert ok.choices[0].finish_reason == "stop"


async def test_invalid_requests(sim: Simulator) -> None:
    c = client(sim)
    with pytest.raises(openai.BadRequestError) as caught:
        await c.chat.completions.create(model="m", messages=[])
    assert caught.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        await c.chat.completions.create(model="", messages=[{"role": "user", "content": "x"}])
    assert caught.value.param == "model"


class Forecast(pydantic.BaseModel):
    city: str
    days: int
    unit: Literal["celsius", "fahrenheit"]
    kind: Literal["forecast"]  # a const


async def test_structured_output_with_the_sdks_parse(sim: Simulator) -> None:
    completion = await client(sim).chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}], response_format=Forecast
    )
    assert completion.choices[0].message.parsed == Forecast(
        city="sim", days=1, unit="celsius", kind="forecast"
    )


async def test_json_mode_answers_an_object(sim: Simulator) -> None:
    completion = await client(sim).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "JSON"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(completion.choices[0].message.content or "") == {
        "reply": "Hello from primary (gpt-4o). You said: JSON"
    }


async def test_json_schema_needs_a_name(sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client(sim).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": {"schema": {}}},  # type: ignore[typeddict-item]
        )
    assert caught.value.param == "response_format"


async def test_unknown_arguments_are_refused_like_openai(sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client(sim).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"cache_control": {"type": "ephemeral"}},
        )
    assert "Unrecognized request argument supplied: cache_control" in str(caught.value)


@pytest.mark.skipif(not AVAILABLE, reason="OpenAI's OpenAPI description is not available")
def test_the_known_arguments_are_the_specs() -> None:
    assert schema_properties("CreateChatCompletionRequest") == CHAT_ARGUMENTS
