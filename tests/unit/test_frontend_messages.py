"""The Messages API front-end's translation, case by case (the SDK tests in
tests/integration/test_messages_api.py run it end to end)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter
from switchyard_router.adapters.base import StreamState, Usage
from switchyard_router.adapters.openai import OpenAIStream
from switchyard_router.errors import ErrorKind, UpstreamError
from switchyard_router.frontends import messages as m
from switchyard_router.sse import SSEDecoder

EVENTS = TypeAdapter(RawMessageStreamEvent)


def body(**extra: Any) -> dict:
    return {"model": "chat", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **extra}


def refused(request: dict) -> str:
    with pytest.raises(UpstreamError) as caught:
        m.chat_request(request)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    return caught.value.message


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"messages": "x"}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
    ],
)
def test_check_refuses_what_no_target_takes(request_body: dict, message: str) -> None:
    with pytest.raises(m.MessagesRequestError) as caught:
        m.check({**body(), **request_body})
    assert caught.value.param == message


def test_a_full_conversation_becomes_a_chat_request() -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}
    request = body(
        system=[{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "document", "source": pdf, "title": "q3.pdf"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "text", "text": "Calling"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]},
                    {"type": "tool_result", "tool_use_id": "t2", "is_error": True, "content": "boom"},
                    {"type": "tool_result", "tool_use_id": "t3"},
                ],
            },
            {"role": "assistant", "content": "plain"},
        ],
        temperature=0.5,
        top_k=3,
        stop_sequences=["END"],
        metadata={"user_id": "u"},
        tools=[{"name": "f", "description": "d", "input_schema": {"type": "object"}, "strict": True}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    chat = m.chat_request(request)
    assert chat["messages"] == [
        {"role": "system", "content": "One\n\nTwo"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "q3.pdf"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Calling",
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: boom"},
        {"role": "tool", "tool_call_id": "t3", "content": ""},
        {"role": "assistant", "content": "plain"},
    ]
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "description": "d", "strict": True}}
    ]
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert (chat["temperature"], chat["top_k"], chat["stop"], chat["user"]) == (0.5, 3, ["END"], "u")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict, expected: Any) -> None:
    tools = [{"name": "f", "input_schema": {}}]
    assert m.chat_request(body(tools=tools, tool_choice=choice))["tool_choice"] == expected


def test_plain_requests_stay_plain() -> None:
    chat = m.chat_request(body(system="", metadata="not an object", tools=[], stop_sequences=[]))
    assert chat == {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    assert m.chat_request(body(system="Be"))["messages"][0] == {"role": "system", "content": "Be"}
    assert m.chat_request(body(system=[]))["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"container": "c"}, "container"),
        ({"messages": "x"}, "messages"),
        ({"system": 5}, "system"),
        ({"system": [{"type": "image"}]}, "system[0]"),
        ({"system": [{"type": "text", "text": 5}]}, "system[0].text"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": ["x"]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "search_result"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "assistant", "content": [{"type": "server_tool_use"}]}]}, "content[0].type"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": 5}]}]}, "content[0].source"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
            "content[0].source.type",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url"}}]}]},
            "content[0].source.type",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x"}}]}]},
            "content[0].source",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": [{"type": "image"}]}]}]},
            "content[0].content[0]",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result", "content": 5}]}]}, "content[0].content"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"tools": ["x"]}, "tools[0]"),
    ],
)
def test_what_has_no_counterpart_is_refused_by_name(extra: dict, named: str) -> None:
    assert named in refused(body(**extra))


def test_an_answer_becomes_a_message() -> None:
    chat = {
        "choices": [
            {
                "message": {
                    "content": "Hi",
                    "tool_calls": [
                        {"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}},
                        {"id": "c2", "function": {"name": "g", "arguments": "not json"}},
                        {"id": "c3", "function": {"name": "h", "arguments": "[1]"}},
                        {"id": "c4", "function": {"name": "k"}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    usage = Usage(input_tokens=10, output_tokens=4, cached_input_tokens=3, reported=True)
    message = Message.model_validate_json(m.message_from_chat(orjson.dumps(chat), usage, "gpt"))
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use", "tool_use", "tool_use"]
    assert [b.input for b in message.content[1:]] == [{"a": 1}, {"arguments": "not json"}, {"value": [1]}, {}]
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (7, 3)
    empty = {"choices": [{"message": {"content": None}, "finish_reason": "length"}]}
    message = Message.model_validate_json(m.message_from_chat(orjson.dumps(empty), Usage(), "gpt"))
    assert message.content == [] and message.stop_reason == "max_tokens"


def chunks(*deltas: dict, finish: str = "stop") -> bytes:
    frames = b""
    for delta in deltas:
        frames += b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": delta}]}) + b"\n\n"
    frames += b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}) + b"\n\n"
    usage = {"prompt_tokens": 5, "completion_tokens": 2}
    frames += b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\ndata: [DONE]\n\n"
    return frames


def events_of(frames: bytes) -> list[Any]:
    """The SDK's typed events (a ping, which the SDK skips, kept as its name)."""
    out: list[Any] = []
    for name, data in SSEDecoder().feed(frames):
        assert name == orjson.loads(data)["type"]  # the event line names the data's type
        out.append(EVENTS.validate_json(data) if name != "ping" else Ping())
    return out


class Ping:
    type = "ping"


def test_chunks_become_anthropics_events() -> None:
    state = StreamState("gpt", True)
    stream = m.EventsFromChunks(OpenAIStream(state), "gpt")
    upstream = chunks(
        {"role": "assistant", "content": "He"},
        {"content": "llo"},
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
        {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        finish="tool_calls",
    )
    out = stream.translate(upstream) + stream.translate(b"")
    events = events_of(out)
    assert [e.type for e in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[11].index == 1 and events[11].delta.partial_json == "1}"  # back to the first call
    assert events[13].delta.stop_reason == "tool_use" and events[13].usage.output_tokens == 2
    assert stream.usage.input_tokens == 5


def test_an_empty_answer_still_opens_and_closes_the_message() -> None:
    stream = m.EventsFromChunks(OpenAIStream(StreamState("gpt", True)), "gpt")
    out = stream.translate(b"data: [DONE]\n\n") + stream.translate(b"")
    assert [e.type for e in events_of(out)] == ["message_start", "ping", "message_delta", "message_stop"]


def test_an_anthropic_stream_passes_through_counted() -> None:
    upstream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":9}}}\n\n'
        b"event: ping\ndata: {}\n\n"
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    stream = m.PassThroughEvents(StreamState("claude", True))
    out = stream.translate(upstream) + stream.translate(b"")
    assert out == upstream
    assert (stream.usage.input_tokens, stream.usage.output_tokens) == (9, 3)
    cut = m.PassThroughEvents(StreamState("claude", True))
    cut.translate(upstream[:80])
    with pytest.raises(UpstreamError):
        cut.translate(b"")


@pytest.mark.parametrize(
    ("kind", "status", "type_"),
    [
        (ErrorKind.OVERLOADED, 529, "overloaded_error"),
        (ErrorKind.RATE_LIMITED, 429, "rate_limit_error"),
        (ErrorKind.SERVER_ERROR, 502, "api_error"),
        (ErrorKind.TIMEOUT, 504, "timeout_error"),
    ],
)
def test_errors_in_anthropics_shape(kind: ErrorKind, status: int, type_: str) -> None:
    err = UpstreamError(kind, "it failed")
    assert m.client_status(err) == status
    assert orjson.loads(m.error_body(status, "it failed", "req_1")) == {
        "type": "error",
        "error": {"type": type_, "message": "it failed"},
        "request_id": "req_1",
    }
    name, data = SSEDecoder().feed(m.error_event(err))[0]
    assert name == "error" and orjson.loads(data)["error"] == {"type": type_, "message": "it failed"}


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "adaptive"}, "medium"),
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 10000}, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, "high"),
        ({"type": "disabled"}, None),
    ],
)
def test_thinking_becomes_a_reasoning_effort(thinking: dict, effort: str | None) -> None:
    assert m.chat_request(body(thinking=thinking)).get("reasoning_effort") == effort


def test_a_thinking_budget_that_is_no_number_is_refused() -> None:
    assert "thinking.budget_tokens" in refused(body(thinking={"type": "enabled", "budget_tokens": "lots"}))
