"""The Anthropic adapter: OpenAI chat completions <-> Anthropic Messages, both ways.

Upstream fixtures under data/anthropic/ follow the shapes of Anthropic's documented examples
(Messages responses, the streaming event sequence with text, thinking and tool use), and are
checked against the official `anthropic` SDK's models so they cannot drift from the real wire
format. Translated responses and chunks are checked against OpenAI's own OpenAPI description.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from pydantic import TypeAdapter
from switchyard_router.adapters.anthropic import API_VERSION, JSON_OBJECT_INSTRUCTION, AnthropicAdapter
from switchyard_router.adapters.base import SSE_DONE, StreamState, Usage
from switchyard_router.errors import ErrorKind, UpstreamError
from switchyard_router.sse import SSEDecoder
from switchyard_router.table import Provider

from ..openai_spec import SPEC as OPENAI_SPEC
from ..openai_spec import validator as spec_validator

DATA = Path(__file__).parent / "data" / "anthropic"
SPEC = OPENAI_SPEC  # shared/specs beside the checkout, or the workplace's copy
KEY = "sk-ant-api03-secret-key-value"

adapter = AnthropicAdapter()


def provider(**overrides: Any) -> Provider:
    fields: dict[str, Any] = {"name": "claude", "type": "anthropic", **overrides}
    return Provider(**fields)


def upstream_body(body: dict[str, Any], stream: bool = False, **overrides: Any) -> dict[str, Any]:
    request = adapter.chat_request(provider(**overrides), KEY, "claude-sonnet-4-5", body, stream)
    result: dict[str, Any] = orjson.loads(request.body)
    return result


def bad_request(body: dict[str, Any]) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        upstream_body(body)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    return caught.value


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def events(name: str) -> list[tuple[str | None, bytes]]:
    decoder = SSEDecoder()
    return decoder.feed((DATA / name).read_bytes()) + decoder.flush()


def frames(output: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of translated SSE frames (not [DONE])."""
    payloads = [f.removeprefix(b"data: ") for f in output.split(b"\n\n") if f]
    return [orjson.loads(p) for p in payloads if p != b"[DONE]"]


# --------------------------------------------------------------------------------------------
# OpenAI's schema, with OpenAPI 3.0's `nullable` (still used in places) made JSON Schema


@pytest.fixture(scope="module")
def openai_schema() -> Any:
    if not SPEC.exists():
        pytest.skip("OpenAI spec not available")
    return spec_validator


# --------------------------------------------------------------------------------------------
# Fixtures are real Anthropic shapes


def test_fixtures_parse_with_the_official_sdk() -> None:
    for name in ("message_text.json", "message_tool_use.json"):
        Message.model_validate_json((DATA / name).read_bytes())
    event_adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    for name in ("stream_text.sse", "stream_tool_use.sse"):
        for event, data in events(name):
            if event != "ping":  # ping is not part of the SDK's event union
                assert event_adapter.validate_json(data).type == event


# --------------------------------------------------------------------------------------------
# Request


def test_request_url_and_headers() -> None:
    request = adapter.chat_request(
        provider(headers={"anthropic-beta": "prompt-caching-2024-07-31"}),
        KEY,
        "claude-sonnet-4-5",
        {"messages": [user("hi")]},
        False,
    )
    assert request.method == "POST"
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers == {
        "Content-Type": "application/json",
        "anthropic-version": API_VERSION,
        "anthropic-beta": "prompt-caching-2024-07-31",
        "x-api-key": KEY,
    }
    assert "Authorization" not in request.headers


def test_request_without_key_and_custom_base_url() -> None:
    request = adapter.chat_request(
        provider(base_url="http://sim:8080/"), None, "m", {"messages": [user("hi")]}, False
    )
    assert request.url == "http://sim:8080/v1/messages"
    assert "x-api-key" not in request.headers


def test_minimal_request() -> None:
    assert upstream_body({"model": "chat", "messages": [user("Hello, Claude")]}) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,  # provider.default_max_tokens: Anthropic requires max_tokens
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, Claude"}]}],
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, 1000),
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70}, 70),
        ({"max_tokens": 50, "max_completion_tokens": 70}, 70),
    ],
)
def test_max_tokens(fields: dict[str, Any], expected: int) -> None:
    body = {"messages": [user("hi")], **fields}
    assert upstream_body(body, default_max_tokens=1000)["max_tokens"] == expected


def test_system_and_developer_messages_move_to_system() -> None:
    single = upstream_body({"messages": [{"role": "system", "content": "Be brief."}, user("hi")]})
    assert single["system"] == "Be brief."
    several = upstream_body(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                user("hi"),
                {
                    "role": "developer",
                    "content": [
                        {"type": "text", "text": "Answer in French."},
                        {"type": "text", "text": ""},
                    ],
                },
                {"role": "assistant", "content": "Salut"},
                {"role": "system", "content": ""},  # empty: dropped
            ]
        }
    )
    assert several["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert [m["role"] for m in several["messages"]] == ["user", "assistant"]


def test_consecutive_same_role_messages_merge() -> None:
    body = {
        "messages": [
            user("one"),
            user("two"),
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
            {"role": "assistant", "content": ""},  # empty turn: dropped, Anthropic refuses it
            user("five"),
        ]
    }
    assert upstream_body(body)["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}],
        },
        {"role": "user", "content": [{"type": "text", "text": "five"}]},
    ]


def test_user_content_parts() -> None:
    body = {
        "messages": [
            user(
                [
                    {"type": "text", "text": "What is in these images?"},
                    {"type": "text", "text": ""},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "image_url", "image_url": "http://example.com/dog.webp"},
                ]
            )
        ]
    }
    assert upstream_body(body)["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these images?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "url", "url": "http://example.com/dog.webp"}},
    ]


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}, "content[0].type"),
        ("plain string", "content[0].type"),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}},
            "content[0].image_url.url",
        ),
        (
            {"type": "image_url", "image_url": {"url": "ftp://example.com/x.png"}},
            "content[0].image_url.url",
        ),
        ({"type": "image_url", "image_url": {}}, "content[0].image_url.url"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "content[0].file.file_data"),
        ({"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}}, "content[0].file.file_data"),
        ({"type": "file", "file": "x"}, "content[0].file.file_data"),
    ],
)
def test_unsupported_user_parts_are_bad_requests(part: Any, field: str) -> None:
    error = bad_request({"messages": [user([part])]})
    assert error.message.startswith(f"messages[0].{field} ")


def test_a_pdf_file_part_becomes_a_document_block() -> None:
    pdf = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "q3.pdf"}}
    bare = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}
    out = upstream_body({"messages": [user([pdf, bare, {"type": "text", "text": "Summarise"}])]})
    source = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}
    assert out["messages"][0]["content"][:2] == [
        {"type": "document", "source": source, "title": "q3.pdf"},
        {"type": "document", "source": source},
    ]
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(out)


def test_assistant_tool_calls_become_tool_use_blocks() -> None:
    body = {
        "messages": [
            user("Weather in Paris and the time?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    },
                ],
            },
        ]
    }
    assert upstream_body(body)["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
        ],
    }


def test_assistant_text_and_refusal_parts_before_tool_use() -> None:
    body = {
        "messages": [
            user("hi"),
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "refusal", "refusal": "No."},
                ],
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
        ]
    }
    assert upstream_body(body)["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "text", "text": "No."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
    ]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"id": "c", "function": {"name": "f", "arguments": "{not json"}}, ".function.arguments"),
        ({"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}, ".function.arguments"),
        ({"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}, ".function.arguments"),
        ({"function": {"name": "f", "arguments": "{}"}}, ""),
        ({"id": "c"}, ""),
    ],
)
def test_invalid_tool_calls_name_the_field(call: dict[str, Any], field: str) -> None:
    error = bad_request({"messages": [user("hi"), {"role": "assistant", "tool_calls": [call]}]})
    assert error.message.startswith(f"messages[1].tool_calls[0]{field} ")


def test_tool_results_group_into_one_user_message() -> None:
    body = {
        "messages": [
            user("Weather in Paris and the time?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": "{}"},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "time", "arguments": "{}"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "14:05"}],
            },
            user("And tomorrow?"),
            {"role": "assistant", "tool_calls": [{"id": "call_3", "function": {"name": "noop"}}]},
            {"role": "tool", "tool_call_id": "call_3", "content": ""},
            {"role": "tool", "tool_call_id": "call_4", "content": []},
        ]
    }
    messages = upstream_body(body)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, sunny"},
        {
            "type": "tool_result",
            "tool_use_id": "call_2",
            "content": [{"type": "text", "text": "14:05"}],
        },
        {"type": "text", "text": "And tomorrow?"},
    ]
    assert messages[4]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_3"},
        {"type": "tool_result", "tool_use_id": "call_4"},
    ]


def test_tool_message_without_id_is_a_bad_request() -> None:
    error = bad_request({"messages": [user("hi"), {"role": "tool", "content": "x"}]})
    assert error.message.startswith("messages[1].tool_call_id ")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def test_tools() -> None:
    body = {
        "messages": [user("hi")],
        "tools": [WEATHER_TOOL, {"type": "function", "function": {"name": "get_time"}}],
    }
    out = upstream_body(body)
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            False,
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ("none", False, {"type": "none"}),  # Anthropic's none takes no such flag
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"messages": [user("hi")], "tools": [WEATHER_TOOL]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert upstream_body(body)["tool_choice"] == expected


def test_tool_choice_without_tools_is_dropped() -> None:
    out = upstream_body(
        {"messages": [user("hi")], "tool_choice": "none", "parallel_tool_calls": False}
    )
    assert "tools" not in out and "tool_choice" not in out


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, "tool_choice "),
        (
            {"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {}}},
            "tool_choice ",
        ),
        ({"tools": [{"type": "web_search"}]}, "tools[0] "),
        ({"tools": [WEATHER_TOOL, {"type": "custom", "function": {"name": "x"}}]}, "tools[1] "),
        ({"tools": ["get_weather"]}, "tools[0] "),
        ({"n": 2}, "n "),
        ({"messages": []}, "messages "),
        ({"messages": "hi"}, "messages "),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role "),
        ({"messages": ["hi"]}, "messages[0].role "),
        ({"messages": [user(42)]}, "messages[0].content "),
        ({"messages": [{"role": "system", "content": {"text": "x"}}]}, "messages[0].content "),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0] ",
        ),
    ],
)
def test_bad_requests_name_the_field(fields: dict[str, Any], field: str) -> None:
    body = {"messages": [user("hi")], **fields}
    assert bad_request(body).message.startswith(field)


def test_sampling_stop_user_and_stream() -> None:
    body = {
        "messages": [user("hi")],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop": "\n\nHuman:",
        "user": "user-1234",
    }
    out = upstream_body(body, stream=True)
    assert out["temperature"] == 0.3
    assert out["top_p"] == 0.9
    assert out["top_k"] == 40
    assert out["stop_sequences"] == ["\n\nHuman:"]
    assert out["metadata"] == {"user_id": "user-1234"}
    assert out["stream"] is True
    listed = upstream_body({"messages": [user("hi")], "stop": ["END", "STOP"], "temperature": 0})
    assert listed["stop_sequences"] == ["END", "STOP"]
    assert listed["temperature"] == 0
    assert "stream" not in listed and "metadata" not in listed and "top_p" not in listed


def test_temperature_above_anthropics_range_is_clamped() -> None:
    assert upstream_body({"messages": [user("hi")], "temperature": 1.7})["temperature"] == 1.0


def test_input_body_is_never_mutated() -> None:
    body = {
        "model": "chat",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            user(
                [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                ]
            ),
            user("and"),
            {
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "no"}],
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"a": [1]}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "ok"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "again"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "stop": ["x"],
        "stream_options": {"include_usage": True},
    }
    before = copy.deepcopy(body)
    first = adapter.chat_request(provider(), KEY, "m", body, True).body
    assert body == before
    assert (
        adapter.chat_request(provider(), KEY, "m", body, True).body == first
    )  # a retry sees the same


# --------------------------------------------------------------------------------------------
# Response


def test_text_response(openai_schema: Any) -> None:
    raw = (DATA / "message_text.json").read_bytes()
    translated, usage = adapter.chat_response(raw, "claude-sonnet-4-5")
    out = orjson.loads(translated)
    openai_schema("CreateChatCompletionResponse").validate(out)
    assert out["id"] == "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"
    assert out["object"] == "chat.completion"
    assert isinstance(out["created"], int)
    assert out["model"] == "claude-sonnet-4-5-20250929"  # what the upstream says it ran
    assert out["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I help you today?",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert usage == Usage(
        input_tokens=12 + 100 + 2048,
        output_tokens=9,
        cached_input_tokens=2048,
        cache_write_tokens=100,  # cache_creation_input_tokens: priced apart from fresh input
        reported=True,
    )
    assert out["usage"] == usage.to_openai()
    assert out["usage"]["prompt_tokens"] == 2160 and out["usage"]["total_tokens"] == 2169


def test_tool_use_response(openai_schema: Any) -> None:
    translated, usage = adapter.chat_response((DATA / "message_tool_use.json").read_bytes(), "m")
    out = orjson.loads(translated)
    openai_schema("CreateChatCompletionResponse").validate(out)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check both cities."  # thinking is not content
    calls = choice["message"]["tool_calls"]
    assert calls == [
        {
            "id": "toolu_01A09q90qw90lq917835lq9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": calls[0]["function"]["arguments"]},
        },
        {
            "id": "toolu_01B2c3d4e5f6g7h8i9j0k1l2",
            "type": "function",
            "function": {"name": "get_time", "arguments": "{}"},
        },
    ]
    assert json.loads(calls[0]["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert usage == Usage(input_tokens=472, output_tokens=91, reasoning_tokens=12, reported=True)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("some_future_reason", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str | None, finish_reason: str) -> None:
    raw: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "stop_reason": stop_reason,
    }
    out = orjson.loads(adapter.chat_response(orjson.dumps(raw), "claude-haiku-4-5")[0])
    assert out["choices"][0]["finish_reason"] == finish_reason


def test_response_without_content_usage_or_id(openai_schema: Any) -> None:
    translated, usage = adapter.chat_response(
        b'{"type": "message", "content": []}', "claude-haiku-4-5"
    )
    out = orjson.loads(translated)
    openai_schema("CreateChatCompletionResponse").validate(out)
    assert out["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": None}
    assert out["model"] == "claude-haiku-4-5"
    assert out["id"].startswith("chatcmpl-")
    assert usage == Usage() and not usage.reported


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1]"])
def test_response_that_is_not_a_json_object(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.chat_response(body, "m")
    assert caught.value.kind is ErrorKind.SERVER_ERROR


# --------------------------------------------------------------------------------------------
# Stream


def translate(name: str, include_usage: bool = True) -> tuple[list[bytes], bytes, Any]:
    translator = adapter.stream(StreamState(model="claude-sonnet-4-5", include_usage=include_usage))
    outputs = [translator.feed(event, data) for event, data in events(name)]
    return outputs, translator.finish(), translator


def test_text_stream_event_by_event(openai_schema: Any) -> None:
    outputs, closing, translator = translate("stream_text.sse")
    # message_start, block_start, ping, delta, delta, block_stop, message_delta, message_stop
    assert [bool(o) for o in outputs] == [True, False, False, True, True, False, True, False]
    chunks = [frames(o)[0] for o in outputs if o]
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": "!"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert {c["id"] for c in chunks} == {translator.state.id}
    assert {c["model"] for c in chunks} == {"claude-opus-4-1-20250805"}  # the upstream's name
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)

    assert closing.endswith(SSE_DONE)
    (usage_chunk,) = frames(closing)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 25 + 1024
    assert usage_chunk["usage"]["prompt_tokens_details"] == {"cached_tokens": 1024}
    assert usage_chunk["usage"]["completion_tokens"] == 15
    assert translator.usage == Usage(
        input_tokens=1049, output_tokens=15, cached_input_tokens=1024, reported=True
    )
    validator = openai_schema("CreateChatCompletionStreamResponse")
    for chunk in [*chunks, usage_chunk]:
        validator.validate(chunk)


def test_tool_use_stream_event_by_event(openai_schema: Any) -> None:
    outputs, closing, translator = translate("stream_tool_use.sse", include_usage=False)
    deltas = [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
        for o in outputs
        for c in frames(o)
    ]
    assert deltas == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Okay, let's check the weather"}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": ' "San Francisco, CA"}'}}]}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_01B2c3d4e5f6g7h8i9j0k1l2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 1, "function": {"arguments": '{"tz": "PST"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert closing == SSE_DONE  # the client did not ask for usage
    assert translator.usage == Usage(
        input_tokens=472, output_tokens=89, reasoning_tokens=7, reported=True
    )
    validator = openai_schema("CreateChatCompletionStreamResponse")
    for output in outputs:
        for chunk in frames(output):
            validator.validate(chunk)

    # What an OpenAI client accumulates per tool call index is valid JSON again.
    arguments: dict[int, str] = {}
    for delta, _ in deltas:
        for call in delta.get("tool_calls", ()):
            arguments[call["index"]] = (
                arguments.get(call["index"], "") + call["function"]["arguments"]
            )
    assert {i: json.loads(a) for i, a in arguments.items()} == {
        0: {"location": "San Francisco, CA"},
        1: {"tz": "PST"},
    }


def test_stream_without_event_names_dispatches_on_type() -> None:
    translator = adapter.stream(StreamState(model="m", include_usage=True))
    outputs = [translator.feed(None, data) for _, data in events("stream_text.sse")]
    assert b"Hello" in b"".join(outputs)
    assert frames(translator.finish())[0]["usage"]["completion_tokens"] == 15


@pytest.mark.parametrize("cut_after", [0, 1, 4, 6, 7])
def test_cut_stream_raises_connection_error(cut_after: int) -> None:
    translator = adapter.stream(StreamState(model="m", include_usage=True))
    for event, data in events("stream_text.sse")[:cut_after]:
        translator.feed(event, data)
    with pytest.raises(UpstreamError) as caught:
        translator.finish()
    assert caught.value.kind is ErrorKind.CONNECTION_ERROR


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"type": "overloaded_error", "message": "Overloaded"}, ErrorKind.OVERLOADED),
        ({"type": "rate_limit_error", "message": "Rate limited"}, ErrorKind.RATE_LIMITED),
        ({"type": "api_error", "message": "Internal server error"}, ErrorKind.SERVER_ERROR),
        (
            {"type": "invalid_request_error", "message": "prompt is too long: 1 > 0"},
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
        ({"type": "something_new", "message": "?"}, ErrorKind.SERVER_ERROR),
        ("a string", ErrorKind.SERVER_ERROR),
    ],
)
def test_stream_error_event(error: Any, kind: ErrorKind) -> None:
    translator = adapter.stream(StreamState(model="m", include_usage=False))
    start, data = events("stream_text.sse")[0]
    translator.feed(start, data)
    with pytest.raises(UpstreamError) as caught:
        translator.feed("error", orjson.dumps({"type": "error", "error": error}))
    assert caught.value.kind is kind
    assert caught.value.status is None
    if isinstance(error, dict):
        assert caught.value.message == error["message"]


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]"])
def test_stream_event_that_is_not_a_json_object(data: bytes) -> None:
    translator = adapter.stream(StreamState(model="m", include_usage=False))
    with pytest.raises(UpstreamError) as caught:
        translator.feed("content_block_delta", data)
    assert caught.value.kind is ErrorKind.SERVER_ERROR


def test_stream_edge_events() -> None:
    translator = adapter.stream(StreamState(model="router-model", include_usage=True))
    feed = translator.feed

    def event(name: str, **fields: Any) -> bytes:
        return feed(name, orjson.dumps({"type": name, **fields}))

    # No model or usage in message_start: the router's name and zero usage stand.
    assert frames(event("message_start", message={}))[0]["model"] == "router-model"
    assert not translator.usage.reported
    # A text block that starts with text; a server tool block and its input are not OpenAI's.
    start = event("content_block_start", index=0, content_block={"type": "text", "text": "Hi"})
    assert frames(start)[0]["choices"][0]["delta"] == {"content": "Hi"}
    server_tool = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    assert event("content_block_start", index=1, content_block=server_tool) == b""
    json_delta = {"type": "input_json_delta", "partial_json": '{"query": "x"}'}
    assert event("content_block_delta", index=1, delta=json_delta) == b""
    citation = {"type": "citations_delta", "citation": {"type": "web_search_result_location"}}
    assert event("content_block_delta", index=2, delta=citation) == b""
    assert event("some_future_event") == b""
    # message_delta may carry cumulative input counts; no stop_reason means no finish chunk yet.
    usage = {"input_tokens": 30, "cache_read_input_tokens": 5, "output_tokens": 4}
    assert event("message_delta", delta={}, usage=usage) == b""
    assert translator.usage == Usage(
        input_tokens=35, output_tokens=4, cached_input_tokens=5, reported=True
    )
    # message_stop without any stop_reason still gives OpenAI clients their finish chunk.
    (finish,) = frames(event("message_stop"))
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert translator.finish().endswith(SSE_DONE)


# --------------------------------------------------------------------------------------------
# Errors


def error_body(type_: str, message: str) -> bytes:
    body = {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("status", "type_", "message", "kind"),
    [
        (529, "overloaded_error", "Overloaded", ErrorKind.OVERLOADED),
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            ErrorKind.RATE_LIMITED,
        ),
        (401, "authentication_error", "invalid x-api-key", ErrorKind.UNAUTHORIZED),
        (
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
            ErrorKind.UNAUTHORIZED,
        ),
        (402, "billing_error", "Payment required", ErrorKind.UNAUTHORIZED),
        (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API.",
            ErrorKind.UNAUTHORIZED,
        ),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
        (
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
        (400, "invalid_request_error", "messages.0.content: Field required", ErrorKind.BAD_REQUEST),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
        (404, "not_found_error", "model: claude-nonexistent", ErrorKind.SERVER_ERROR),
        (500, "api_error", "Internal server error", ErrorKind.SERVER_ERROR),
        (504, "timeout_error", "Request timed out", ErrorKind.TIMEOUT),
        (409, "conflict_error", "Conflict", ErrorKind.BAD_REQUEST),  # unknown to us: by status
        (503, "brand_new_error", "Unavailable", ErrorKind.OVERLOADED),
    ],
)
def test_http_errors(status: int, type_: str, message: str, kind: ErrorKind) -> None:
    error = adapter.error(status, {}, error_body(type_, message))
    assert error.kind is kind
    assert error.status == status
    assert error.message == message  # the provider's words, never the key
    assert KEY not in error.message and KEY not in str(error)


def test_rate_limit_carries_retry_after() -> None:
    headers = {"retry-after": "30", "anthropic-ratelimit-requests-remaining": "0"}
    error = adapter.error(429, headers, error_body("rate_limit_error", "slow down"))
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after == 30.0
    assert adapter.error(529, {}, error_body("overloaded_error", "Overloaded")).retry_after is None


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (
            413,
            b"<html><body>413 Request Entity Too Large</body></html>",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
            "413",
        ),
        (502, b"", ErrorKind.SERVER_ERROR, "upstream answered HTTP 502"),
        (529, b'{"type": "error", "error": "Overloaded"}', ErrorKind.OVERLOADED, "Overloaded"),
        (
            529,
            b'{"type": "error", "error": {"type": "overloaded_error"}}',
            ErrorKind.OVERLOADED,
            "overloaded_error",
        ),
        (500, b'{"type": "error", "error": {}}', ErrorKind.SERVER_ERROR, "HTTP 500"),
    ],
)
def test_errors_that_are_not_anthropics_usual_body(
    status: int, body: bytes, kind: ErrorKind, message: str
) -> None:
    error = adapter.error(status, {}, body)
    assert error.kind is kind
    assert message in error.message


@pytest.mark.parametrize(
    ("headers", "body_id", "expected"),
    [
        ({"request-id": "req_011CHeader"}, "req_011CBody", "req_011CHeader"),  # the header first
        ({}, "req_011CBody", "req_011CBody"),  # no header (a proxy dropped it): the body's
        ({}, "a b <script>", None),  # not a request id: not passed on
        ({}, 7, None),
    ],
)
def test_an_error_carries_the_providers_request_id(headers: dict, body_id: Any, expected: str | None) -> None:
    body = {"type": "error", "error": {"type": "api_error", "message": "x"}, "request_id": body_id}
    assert adapter.error(500, headers, orjson.dumps(body)).request_id == expected
    assert adapter.error(500, {}, b"[1]").request_id is None  # not an object: no id to read


# --------------------------------------------------------------------------------------------
# Probes and embeddings


def test_models_request() -> None:
    request = adapter.models_request(provider(), KEY)
    assert request.method == "GET"
    assert request.url == "https://api.anthropic.com/v1/models"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == API_VERSION
    assert request.body == b""


def test_no_embeddings() -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.embeddings_request(provider(), KEY, "m", {"input": "hi"})
    assert caught.value.kind is ErrorKind.BAD_REQUEST


# --------------------------------------------------------------------------------------------
# The official openai SDK reads what the adapter produces


def openai_client(payload: bytes, content_type: str) -> Any:
    openai = pytest.importorskip("openai")
    httpx = pytest.importorskip("httpx")

    def handler(request: Any) -> Any:
        return httpx.Response(200, content=payload, headers={"content-type": content_type})

    http_client = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(api_key="unused", base_url="http://router/v1", http_client=http_client)


def test_openai_sdk_reads_a_translated_completion() -> None:
    translated, _ = adapter.chat_response((DATA / "message_tool_use.json").read_bytes(), "m")
    client = openai_client(translated, "application/json")
    completion = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hi"}]
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["unit"] == "celsius"
    assert completion.usage.prompt_tokens == 472


def test_openai_sdk_reads_a_translated_stream() -> None:
    outputs, closing, _ = translate("stream_tool_use.sse", include_usage=True)
    client = openai_client(b"".join(outputs) + closing, "text/event-stream")
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    arguments: dict[int, str] = {}
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or ():
                arguments[call.index] = arguments.get(call.index, "") + (
                    call.function.arguments or ""
                )
    assert text == "Okay, let's check the weather"
    assert json.loads(arguments[0]) == {"location": "San Francisco, CA"}
    assert finish == "tool_calls"
    assert usage is not None and usage.completion_tokens == 89
    assert usage.completion_tokens_details.reasoning_tokens == 7


# --- structured output ------------------------------------------------------------------------

CONTACT_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"}},
    "required": ["name", "email"],
    "additionalProperties": False,
}


def test_json_schema_response_format_becomes_output_config() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "contact", "strict": True, "schema": CONTACT_SCHEMA}}
    out = upstream_body({"messages": [user("hi")], "response_format": fmt})
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": CONTACT_SCHEMA}}
    # The shape the official SDK sends, field for field.
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(out)


def test_json_object_response_format_is_an_instruction_after_the_system_prompt() -> None:
    body = {
        "messages": [{"role": "system", "content": "Be brief."}, user("hi")],
        "response_format": {"type": "json_object"},
    }
    out = upstream_body(body)
    assert out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": JSON_OBJECT_INSTRUCTION},
    ]
    assert "output_config" not in out


@pytest.mark.parametrize("fmt", [{"type": "text"}, None, "json"])
def test_text_response_format_adds_nothing(fmt: Any) -> None:
    out = upstream_body({"messages": [user("hi")], "response_format": fmt})
    assert "output_config" not in out and "system" not in out


@pytest.mark.parametrize("spec", [None, {"name": "x"}, {"name": "x", "schema": "object"}])
def test_json_schema_without_a_schema_names_the_field(spec: Any) -> None:
    body = {"messages": [user("hi")], "response_format": {"type": "json_schema", "json_schema": spec}}
    assert bad_request(body).message.startswith("response_format.json_schema.schema ")


def test_strict_tools_get_a_schema_anthropic_enforces() -> None:
    limit = {"type": "integer", "minimum": 1}
    parameters = {"type": "object", "properties": {"limit": limit}, "required": ["limit"]}
    tools = [
        {"type": "function", "function": {"name": "strict", "parameters": parameters, "strict": True}},
        {"type": "function", "function": {"name": "loose", "parameters": parameters}},
    ]
    out = upstream_body({"messages": [user("hi")], "tools": tools})
    strict, loose = out["tools"]
    assert strict["strict"] is True
    assert strict["input_schema"] == {
        "type": "object",
        "properties": {"limit": {"type": "integer", "description": "(minimum: 1)"}},
        "additionalProperties": False,
        "required": ["limit"],
    }
    assert loose["input_schema"] == parameters and "strict" not in loose
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(out)


# --- prompt caching ---------------------------------------------------------------------------

EPHEMERAL = {"type": "ephemeral"}


def test_cache_breakpoints_on_parts_messages_and_tools_reach_their_blocks() -> None:
    tool = {"type": "function", "function": {"name": "t"}, "cache_control": EPHEMERAL}
    body = {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Long rules", "cache_control": EPHEMERAL}]},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://x/a.png"}, "cache_control": EPHEMERAL},
                    {"type": "text", "text": "look"},
                ],
            },
            {"role": "assistant", "content": "seen", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            user("and now?"),
        ],
        "tools": [tool],
    }
    out = upstream_body(body)
    assert out["system"] == [{"type": "text", "text": "Long rules", "cache_control": EPHEMERAL}]
    first, second, third = out["messages"]
    assert first["content"][0]["cache_control"] == EPHEMERAL and "cache_control" not in first["content"][1]
    assert second["content"] == [{"type": "text", "text": "seen", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert "cache_control" not in third["content"][0]
    assert out["tools"][0]["cache_control"] == EPHEMERAL
    assert "cache_control" not in out  # the client placed its own breakpoints
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(out)


def test_a_system_message_breakpoint_marks_its_last_block() -> None:
    body = {"messages": [{"role": "system", "content": "Rules", "cache_control": EPHEMERAL}, user("hi")]}
    assert upstream_body(body)["system"] == [{"type": "text", "text": "Rules", "cache_control": EPHEMERAL}]


def test_provider_prompt_cache_marks_the_request_unless_the_client_did() -> None:
    out = upstream_body({"messages": [user("hi")]}, promptCache="1h")
    assert out["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(out)
    marked = [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]}]
    assert "cache_control" not in upstream_body({"messages": marked}, promptCache="1h")
    own = upstream_body({"messages": [user("hi")], "cache_control": EPHEMERAL}, promptCache="1h")
    assert own["cache_control"] == EPHEMERAL
    assert "cache_control" not in upstream_body({"messages": [user("hi")]})


def test_a_breakpoint_inside_a_tool_result_moves_onto_the_tool_result() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    result = {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": [{"type": "text", "text": "42", "cache_control": EPHEMERAL}],
    }
    body = {"messages": [user("q"), {"role": "assistant", "tool_calls": [call]}, result]}
    block = upstream_body(body)["messages"][2]["content"][0]
    assert block == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": [{"type": "text", "text": "42"}],
        "cache_control": EPHEMERAL,
    }
