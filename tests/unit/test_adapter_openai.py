import copy

import orjson
import pytest
from switchyard_router.adapters import StreamState, adapter_for
from switchyard_router.adapters.openai import OpenAIAdapter
from switchyard_router.errors import ErrorKind, UpstreamError
from switchyard_router.table import Provider, ProviderType

ADAPTER = OpenAIAdapter()
GROQ = Provider(name="groq", type=ProviderType.GROQ, headers={"X-Extra": "1"})
ROUTER = Provider(name="or", type=ProviderType.OPENROUTER)


def test_every_openai_compatible_type_uses_the_pass_through():
    for kind in (ProviderType.OPENAI, ProviderType.GROQ, ProviderType.OPENROUTER, ProviderType.OPENAI_COMPATIBLE):
        assert isinstance(adapter_for(kind), OpenAIAdapter)


def test_request_replaces_model_and_asks_for_stream_usage_without_mutating():
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": {"x": 1}}
    before = copy.deepcopy(body)
    request = ADAPTER.chat_request(GROQ, "gsk-key", "llama", body, True)
    assert body == before
    sent = orjson.loads(request.body)
    assert sent["model"] == "llama"
    assert sent["stream_options"] == {"x": 1, "include_usage": True}
    assert request.url == "https://api.groq.com/openai/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer gsk-key"
    assert request.headers["X-Extra"] == "1"


def test_no_key_no_authorization_and_openrouter_attribution():
    request = ADAPTER.chat_request(ROUTER, None, "m", {"messages": []}, False)
    assert "Authorization" not in request.headers
    assert request.headers["X-Title"] == "Switchyard"
    assert "stream_options" not in orjson.loads(request.body)


MARK = {"type": "ephemeral"}
MARKED = {
    "model": "chat",
    "cache_control": MARK,
    "messages": [
        {"role": "system", "content": "Rules", "cache_control": MARK},
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": MARK}, {"type": "text", "text": "!"}]},
        {"role": "assistant", "content": None, "tool_calls": []},
        "not a message",
    ],
    "tools": [{"type": "function", "function": {"name": "t"}, "cache_control": MARK}],
}


def test_cache_breakpoints_stay_away_from_openai_and_groq():
    before = copy.deepcopy(MARKED)
    for provider in (Provider(name="oa", type=ProviderType.OPENAI), GROQ):
        sent = orjson.loads(ADAPTER.chat_request(provider, "k", "m", MARKED, False).body)
        assert b"cache_control" not in orjson.dumps(sent)
        assert sent["messages"][0] == {"role": "system", "content": "Rules"}
        assert sent["messages"][1]["content"] == [{"type": "text", "text": "hi"}, {"type": "text", "text": "!"}]
        assert sent["messages"][2:] == MARKED["messages"][2:]
        assert sent["tools"] == [{"type": "function", "function": {"name": "t"}}]
    assert before == MARKED  # the next target (Anthropic) still gets them
    plain = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    sent = orjson.loads(ADAPTER.chat_request(GROQ, "k", "m", plain, False).body)
    assert sent["messages"] == plain["messages"]


def test_openrouter_and_other_servers_get_the_breakpoints_as_sent():
    compatible = Provider(name="vllm", type=ProviderType.OPENAI_COMPATIBLE, baseURL="http://vllm/v1")
    for provider in (ROUTER, compatible):
        sent = orjson.loads(ADAPTER.chat_request(provider, "k", "m", MARKED, False).body)
        assert sent == {**MARKED, "model": "m"}


def test_json_response_passes_through_with_usage():
    body = orjson.dumps(
        {
            "id": "chatcmpl-1",
            "choices": [],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        }
    )
    out, usage = ADAPTER.chat_response(body, "m")
    assert out is body
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.reasoning_tokens) == (10, 5, 4, 2)
    assert usage.reported
    _, missing = ADAPTER.chat_response(b'{"choices": []}', "m")
    assert not missing.reported


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_a_broken_200_body_is_a_server_error(body):
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.chat_response(body, "m")
    assert caught.value.kind is ErrorKind.SERVER_ERROR


def chunk(**extra):
    return orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [], **extra})


def test_stream_drops_the_usage_chunk_the_client_did_not_ask_for():
    stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
    content = orjson.dumps({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
    assert stream.feed(None, content) == b"data: " + content + b"\n\n"
    assert stream.feed(None, chunk(usage={"prompt_tokens": 3, "completion_tokens": 1})) == b""
    assert stream.usage.input_tokens == 3
    assert stream.feed(None, b"[DONE]") == b""
    assert stream.finish() == b"data: [DONE]\n\n"


def test_stream_keeps_the_usage_chunk_when_asked_and_odd_data_passes():
    stream = ADAPTER.stream(StreamState(model="m", include_usage=True))
    usage = chunk(usage={"prompt_tokens": 3, "completion_tokens": 1})
    assert stream.feed(None, usage) == b"data: " + usage + b"\n\n"
    assert stream.feed(None, b'"usage":{ not json') == b'data: "usage":{ not json\n\n'
    null_usage = orjson.dumps({"choices": [{"index": 0, "delta": {}}], "usage": None})
    assert stream.feed(None, null_usage).startswith(b"data: ")


def test_stream_error_event_and_cut_stream():
    stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
    with pytest.raises(UpstreamError) as caught:
        stream.feed(None, orjson.dumps({"error": {"message": "overloaded", "code": "rate_limit_exceeded"}}))
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    with pytest.raises(UpstreamError) as cut:
        ADAPTER.stream(StreamState(model="m", include_usage=False)).finish()
    assert cut.value.kind is ErrorKind.CONNECTION_ERROR


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, {"error": {"message": "too long", "code": "context_length_exceeded"}}, ErrorKind.CONTEXT_LENGTH_EXCEEDED, "context_length_exceeded"),
        (400, {"error": {"message": "filtered", "code": "content_filter"}}, ErrorKind.CONTENT_FILTERED, "content_filter"),
        (400, {"error": {"message": "policy", "code": "content_policy_violation"}}, ErrorKind.CONTENT_FILTERED, "content_policy_violation"),
        (429, {"error": {"message": "quota", "code": "insufficient_quota"}}, ErrorKind.RATE_LIMITED, "insufficient_quota"),
        (401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}, ErrorKind.UNAUTHORIZED, "invalid_api_key"),
        (500, {"error": "plain string"}, ErrorKind.SERVER_ERROR, None),
        (400, {"error": {"message": "bad", "code": None}}, ErrorKind.BAD_REQUEST, None),
    ],
)
def test_errors_are_classified_from_status_and_body(status, body, kind, code):
    err = ADAPTER.error(status, {"retry-after": "3"}, orjson.dumps(body))
    assert err.kind is kind
    assert err.code == code
    assert err.retry_after == 3.0
    assert err.status == status


def test_error_bodies_that_are_not_json():
    err = ADAPTER.error(502, {}, b"<html>Bad gateway</html>")
    assert err.kind is ErrorKind.SERVER_ERROR
    assert "Bad gateway" in err.message
    empty = ADAPTER.error(503, {}, b"")
    assert empty.message == "upstream answered HTTP 503"
    listed = ADAPTER.error(500, {}, b'[{"error": {"message": "wrapped"}}]')
    assert listed.message == "wrapped"
    scalar = ADAPTER.error(500, {}, b"42")
    assert scalar.message == "upstream answered HTTP 500"


def test_embeddings_and_models_requests():
    request = ADAPTER.embeddings_request(GROQ, "k", "embed", {"model": "x", "input": "hi"})
    assert request.url.endswith("/embeddings")
    assert orjson.loads(request.body)["model"] == "embed"
    _, usage = ADAPTER.embeddings_response(b'{"data": [], "usage": {"prompt_tokens": 2, "total_tokens": 2}}', "embed", {})
    assert usage.input_tokens == 2
    models = ADAPTER.models_request(GROQ, "k")
    assert models.method == "GET" and models.url.endswith("/models")


def frame(**chunk) -> bytes:
    return b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", **chunk}) + b"\n\n"


CONTENT = frame(choices=[{"index": 0, "delta": {"content": "hi"}}], usage=None)
USAGE = frame(choices=[], usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})


def test_translate_passes_whole_events_through_as_bytes_at_any_split():
    upstream = CONTENT + CONTENT + USAGE + b"data: [DONE]\n\n"
    for cut in range(1, len(upstream)):
        stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
        out = stream.translate(upstream[:cut]) + stream.translate(upstream[cut:]) + stream.translate(b"")
        assert out == CONTENT + CONTENT + b"data: [DONE]\n\n", cut
        assert stream.usage.input_tokens == 3


def test_translate_keeps_the_usage_chunk_when_asked():
    stream = ADAPTER.stream(StreamState(model="m", include_usage=True))
    out = stream.translate(CONTENT + USAGE + b"data: [DONE]\n\n") + stream.translate(b"")
    assert out == CONTENT + USAGE + b"data: [DONE]\n\n"


def test_translate_handles_crlf_streams_through_the_decoder():
    crlf = (CONTENT + USAGE + b"data: [DONE]\n\n").replace(b"\n", b"\r\n")
    stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
    out = stream.translate(crlf[:7]) + stream.translate(crlf[7:]) + stream.translate(b"")
    assert out == CONTENT + b"data: [DONE]\n\n"


def test_translate_raises_on_an_error_event_and_a_cut_stream():
    stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
    with pytest.raises(UpstreamError):
        stream.translate(CONTENT + b'data: {"error": {"message": "boom"}}\n\n')
    cut = ADAPTER.stream(StreamState(model="m", include_usage=False))
    assert cut.translate(CONTENT) == CONTENT
    with pytest.raises(UpstreamError):
        cut.translate(b"")


def test_translate_finds_usage_in_an_earlier_event_of_the_read():
    final = frame(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
    stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
    out = stream.translate(CONTENT + USAGE + final + b"data: [DONE]\n\n") + stream.translate(b"")
    assert out == CONTENT + final + b"data: [DONE]\n\n"
    assert stream.usage.input_tokens == 3


@pytest.mark.parametrize(
    "last",
    [
        b'data: {"error": {"message": "boom"}}\n\ndata: [DONE]\n\n',  # [DONE] may follow an error
        b'event: error\ndata: {"error": {"message": "boom"}}\n\n',  # and an event may be named
    ],
)
def test_translate_raises_on_an_error_as_the_last_event(last):
    stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
    with pytest.raises(UpstreamError) as caught:
        stream.translate(CONTENT + last)
    assert caught.value.message == "boom"


def test_translate_swallows_a_done_that_is_not_the_last_event():
    stream = ADAPTER.stream(StreamState(model="m", include_usage=False))
    out = stream.translate(CONTENT + b"data: [DONE]\n\n" + CONTENT) + stream.translate(b"")
    assert out == CONTENT + CONTENT + b"data: [DONE]\n\n"
