"""Responses requests into chat requests and chat answers into Responses' shapes: each rule of
frontends/responses.py, checked against what the openai SDK's types accept."""

from __future__ import annotations

import orjson
import pytest
from openai.types.responses import Response
from switchyard_router.adapters.base import StreamState, Usage
from switchyard_router.adapters.openai import OpenAIAdapter
from switchyard_router.errors import ErrorKind, UpstreamError
from switchyard_router.frontends.openai_responses import PassThroughEvents, usage_of
from switchyard_router.frontends.responses import (
    ChatEvents,
    ResponsesEvents,
    ResponseShape,
    ResponsesRequestError,
    chat_request,
)


def test_fields_with_the_same_meaning_reach_the_chat_request():
    chat = chat_request(
        {
            "model": "m",
            "input": "hi",
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_object"}},
            "max_output_tokens": 7,
            "tool_choice": "none",
        }
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 7,
        "reasoning_effort": "low",
        "tool_choice": "none",
        "response_format": {"type": "json_object"},
    }


def test_items_become_chat_messages():
    chat = chat_request(
        {
            "model": "m",
            "input": [
                {"type": "message", "role": "developer", "content": "rules"},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "https://x/a.png", "detail": "low"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": [{"type": "input_text", "text": "r"}],
                },
                {"type": "function_call", "call_id": "c3", "name": "h", "arguments": "{}"},
            ],
        }
    )
    messages = chat["messages"]
    assert messages[0] == {"role": "developer", "content": "rules"}
    assert messages[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://x/a.png", "detail": "low"},
    }
    # The refusal and the two calls after it are one assistant turn; reasoning items are left out.
    assert messages[2]["content"] == [{"type": "text", "text": "no"}]
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["c1", "c2"]
    assert messages[2]["tool_calls"][1]["function"]["arguments"] == "{}"
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}]}
    assert messages[4] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "h", "arguments": "{}"}}],
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"instructions": 3}, "instructions"),
        ({"input": []}, "input"),
        ({"input": ["text"]}, "input[0]"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": ["x"]}]}, "input[0].content[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "u"}]}]},
            "input[0].content[0].file_data",
        ),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": ["f"]}, "tools[0].type"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"prompt": {"id": "p"}}, "prompt"),
    ],
)
def test_what_cannot_be_served_names_its_field(body, param):
    with pytest.raises(ResponsesRequestError) as caught:
        chat_request({"model": "m", "input": "hi", **body})
    assert caught.value.param == param
    assert f"`{param}" in str(caught.value)


def test_a_plain_text_format_asks_for_nothing():
    assert "response_format" not in chat_request(
        {"model": "m", "input": "x", "text": {"format": {"type": "text"}}}
    )


def _chat(message: dict, finish: str = "stop") -> bytes:
    return orjson.dumps({"model": "up", "choices": [{"message": message, "finish_reason": finish}]})


def test_a_refusal_cut_short_is_an_incomplete_response_the_sdk_reads():
    raw = ResponseShape({"model": "m", "input": "x"}).from_chat(
        _chat({"role": "assistant", "content": None, "refusal": "no"}, finish="length"), Usage()
    )
    response = Response.model_validate_json(raw)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].content[0].refusal == "no"
    assert response.usage is None


def test_usage_details_carry_over():
    usage = Usage(10, 5, cached_input_tokens=4, cache_write_tokens=3, reasoning_tokens=2, reported=True)
    response = Response.model_validate_json(
        ResponseShape({"model": "m", "input": "x"}).from_chat(_chat({"content": "ok"}), usage)
    )
    assert response.usage.total_tokens == 15
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.input_tokens_details.cache_write_tokens == 3
    assert response.usage.output_tokens_details.reasoning_tokens == 2


def _events(stream: bytes) -> list[dict]:
    return [orjson.loads(line[6:]) for line in stream.split(b"\n") if line.startswith(b"data: ")]


def test_a_chat_stream_broken_midway_ends_with_error_and_response_failed():
    events = ChatEvents(
        OpenAIAdapter().stream(StreamState("m", False)), ResponsesEvents({"model": "m", "input": "x"})
    )
    first = events.translate(b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n')
    out = _events(first + events.broken(UpstreamError(ErrorKind.TIMEOUT, "slow")))
    assert [e["type"] for e in out][-2:] == ["error", "response.failed"]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert Response.model_validate(out[-1]["response"]).error.message == "slow"


def test_chat_events_feed_and_finish_like_the_family_translator():
    events = ChatEvents(
        OpenAIAdapter().stream(StreamState("m", False)), ResponsesEvents({"model": "m", "input": "x"})
    )
    out = events.feed(None, b'{"choices":[{"delta":{"content":"hi"}}]}') + events.feed(None, b"[DONE]")
    out += events.finish()
    assert [e["type"] for e in _events(out)][-1] == "response.completed"


def test_a_pass_through_stream_counts_usage_from_its_last_event():
    stream = PassThroughEvents(StreamState("m", False))
    done = orjson.dumps(
        {
            "type": "response.completed",
            "sequence_number": 1,
            "response": {"usage": {"input_tokens": 3, "output_tokens": 2}},
        }
    )
    sent = b"event: response.created\ndata: {}\n\nevent: response.completed\ndata: " + done + b"\n\n"
    assert stream.translate(sent) == sent
    assert stream.translate(b"") == b""
    assert (stream.usage.input_tokens, stream.usage.output_tokens, stream.usage.reported) == (3, 2, True)
    assert _events(stream.broken(UpstreamError(ErrorKind.TIMEOUT, "slow")))[0]["sequence_number"] == 2


def test_a_pass_through_stream_that_opens_with_an_error_can_fall_back():
    stream = PassThroughEvents(StreamState("m", False))
    with pytest.raises(UpstreamError) as caught:
        stream.translate(b'event: error\ndata: {"type":"error","code":"server_error","message":"down"}\n\n')
    assert caught.value.message == "down"


def test_a_pass_through_stream_cut_before_its_end_is_an_error():
    stream = PassThroughEvents(StreamState("m", False))
    stream.translate(b"data: {}\n\n")
    with pytest.raises(UpstreamError):
        stream.translate(b"")


def test_usage_of_a_response_without_usage_is_unreported():
    assert usage_of({"usage": None}).reported is False


def test_text_after_a_call_is_an_item_of_its_own():
    events = ResponsesEvents({"model": "m", "input": "x", "stream": True})
    out = events.frames(
        b'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]}}]}\n\n'
        b'data: {"choices":[{"delta":{"content":"after"},"finish_reason":"length"}]}\n\n'
    ) + events.end(Usage())
    final = Response.model_validate(_events(out)[-1]["response"])
    assert final.status == "incomplete"
    assert {item.type for item in final.output} == {"function_call", "message"}
