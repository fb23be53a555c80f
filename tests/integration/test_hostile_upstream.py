"""Attacks from a broken or hostile endpoint at a provider's baseURL, each performed on loopback
against a real router: keys stay with their provider, reads stay bounded, errors stay classified."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import logging
import tracemalloc

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from ..hostile import KEYS, HostileUpstream, hostile_table

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "secret prompt"}]}
OK_BODY = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@pytest.fixture
async def hostile():
    upstream = await HostileUpstream().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def elsewhere():
    """Where a redirect points: it must never see a request."""
    upstream = await HostileUpstream(host="localhost").start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: dict) -> tuple[int, CIMultiDict[str], bytes]:
    async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("family", ["openai-compatible", "anthropic", "gemini"])
async def test_a_redirect_is_not_followed_and_not_retried(
    hostile, elsewhere, start_router, http, caplog, family, stream
):
    async def redirect(request: web.BaseRequest) -> web.StreamResponse:
        location = f"{elsewhere.url}/steal?token=t0ps3cret"
        return web.Response(status=307, headers={"Location": location})

    hostile.behaviour = redirect
    caplog.set_level(logging.INFO, "switchyard.router")
    router, url = await start_router(hostile_table(hostile.url, family), KEYS)
    status, _, raw = await post(http, url, {**CHAT, "stream": stream})

    assert status == 502
    error = orjson.loads(raw)["error"]
    assert "HTTP 307, a redirect to host localhost" in error["message"]
    assert elsewhere.seen == []  # neither the key nor the prompt went there
    assert len(hostile.seen) == 1  # a redirect is not retried on the same target
    assert "host localhost" in caplog.text
    assert "t0ps3cret" not in caplog.text and "steal" not in caplog.text and "t0ps3cret" not in error["message"]
    metrics = router.metrics.render().decode()
    assert 'switchyard_attempts_total{model="m",outcome="Redirected",provider="up",route="chat"} 1.0' in metrics


async def test_a_redirect_falls_back_to_the_next_target(hostile, elsewhere, sim, start_router, http):
    hostile.behaviour = lambda request: _respond(web.Response(status=302, headers={"Location": "/elsewhere"}))
    table = hostile_table(hostile.url, "anthropic", fallback_url=sim.base_url("good"))
    router, url = await start_router(table, KEYS)
    status, headers, _ = await post(http, url, CHAT)
    assert status == 200 and headers["x-switchyard-provider"] == "good"
    metrics = router.metrics.render().decode()
    assert 'from_provider="up",reason="Redirected",route="chat",to_provider="good"' in metrics


async def _respond(response: web.StreamResponse) -> web.StreamResponse:
    return response


@pytest.mark.parametrize("answer", ["json", "stream", "error"])
async def test_a_key_echoed_in_a_request_id_never_reaches_the_client(hostile, start_router, http, answer):
    key = KEYS["openai.key"]

    async def echo(request: web.BaseRequest) -> web.StreamResponse:
        headers = {"x-request-id": f"req_{key}"}
        if answer == "error":
            return web.json_response({"error": {"message": "bad"}}, status=400, headers=headers)
        if answer == "json":
            return web.json_response(OK_BODY, headers=headers)
        chunk = {**OK_BODY, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
        body = b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n"
        return web.Response(body=body, headers={**headers, "Content-Type": "text/event-stream"})

    hostile.behaviour = echo
    _, url = await start_router(hostile_table(hostile.url, "openai-compatible"), KEYS)
    status, headers, raw = await post(http, url, {**CHAT, "stream": answer == "stream"})
    assert status == (400 if answer == "error" else 200)
    assert headers["x-request-id"] == "req_[REDACTED]"
    assert key.encode() not in raw


# What an upstream says in headers that a client may see: its request id (redacted) and, on a 429
# or 503, how long to wait (as a number the router writes itself).
PASSED_ON = {"x-request-id", "retry-after", "retry-after-ms"}


@pytest.mark.parametrize("family", ["openai-compatible", "anthropic"])
@pytest.mark.parametrize("answer", ["json", "stream", "error", "rate-limited"])
async def test_no_upstream_header_carries_a_key_to_the_client(hostile, start_router, http, family, answer):
    key = KEYS[{"openai-compatible": "openai.key", "anthropic": "anthropic.key"}[family]]
    names = ["x-request-id", "request-id", "set-cookie", "www-authenticate", "location", "via",
             "x-upstream-debug", "content-location", "link", "x-api-key", "authorization", "warning"]

    async def echo(request: web.BaseRequest) -> web.StreamResponse:
        headers = CIMultiDict((name, f"req_{key}") for name in names)
        headers["retry-after"] = f"1 {key}"  # not a number: not passed on
        if answer == "rate-limited":
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers=headers)
        if answer == "error":
            return web.json_response({"error": {"message": "bad"}}, status=400, headers=headers)
        if answer == "json":
            body = OK_BODY if family == "openai-compatible" else ANTHROPIC_OK
            return web.json_response(body, headers=headers)
        headers["Content-Type"] = "text/event-stream"
        if family == "anthropic":
            return web.Response(body=ANTHROPIC_START + ANTHROPIC_END, headers=headers)
        chunk = {**OK_BODY, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
        return web.Response(body=b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n", headers=headers)

    hostile.behaviour = echo
    _, url = await start_router(hostile_table(hostile.url, family, retry={"attempts": 1}), KEYS)
    status, headers, raw = await post(http, url, {**CHAT, "stream": answer == "stream"})
    assert status == {"error": 400, "rate-limited": 429}.get(answer, 200), raw
    assert not [(name, value) for name, value in headers.items() if key in value]
    from_upstream = {name.lower() for name in headers} & ({n.lower() for n in names} | {"retry-after"})
    assert from_upstream <= PASSED_ON
    assert headers["x-request-id"] == "req_[REDACTED]"
    assert key.encode() not in raw


async def test_a_request_id_that_is_not_one_is_dropped(hostile, start_router, http):
    hostile.behaviour = lambda request: _respond(web.json_response(OK_BODY, headers={"x-request-id": "a b <script>"}))
    _, url = await start_router(hostile_table(hostile.url, "openai-compatible"), KEYS)
    status, headers, _ = await post(http, url, CHAT)
    assert status == 200 and "x-request-id" not in headers


# --- bounded reads ------------------------------------------------------------------------------

SSE = {"Content-Type": "text/event-stream"}
ANTHROPIC_OK = {
    "id": "msg", "type": "message", "role": "assistant", "model": "m",
    "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
ANTHROPIC_END = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"m",'
    b'"usage":{"input_tokens":1,"output_tokens":0}}}\n\n'
)


def limited(table: dict, **server: int) -> dict:
    table["server"] = server
    return table


async def error_of(http, url, body) -> tuple[int, dict]:
    status, _, raw = await post(http, url, body)
    return status, orjson.loads(raw)["error"]


async def stream_error(http, url) -> tuple[bytes, dict]:
    """A stream that broke after its first byte: what came before, and the error event."""
    status, _, raw = await post(http, url, {**CHAT, "stream": True})
    assert status == 200
    head, _, last = raw.rstrip(b"\n").rpartition(b"\n\n")
    assert last.startswith(b"data: {") and b"[DONE]" not in raw
    return head, orjson.loads(last[6:])["error"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("family", ["openai-compatible", "anthropic", "gemini"])
async def test_a_compressed_answer_is_never_unpacked(hostile, start_router, http, family, stream):
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MB in about 64 KB

    async def gzipped(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    hostile.behaviour = gzipped
    _, url = await start_router(hostile_table(hostile.url, family, retry={"attempts": 1}), KEYS)
    status, error = await error_of(http, url, {**CHAT, "stream": stream})
    assert status == 502
    assert error["message"] == "up answered with Content-Encoding 'gzip' though asked for identity; compressed answers are not read"
    assert hostile.seen[0].headers["Accept-Encoding"] == "identity"


async def test_a_compressed_error_is_classified_by_its_status(hostile, start_router, http):
    hostile.behaviour = lambda request: _respond(
        web.Response(status=429, body=gzip.compress(b"{}" * 1000), headers={"Content-Encoding": "gzip"})
    )
    _, url = await start_router(hostile_table(hostile.url, "anthropic", retry={"attempts": 1}), KEYS)
    status, error = await error_of(http, url, CHAT)
    assert (status, error["message"]) == (429, "upstream answered HTTP 429")


@pytest.mark.parametrize("declared", [False, True])
async def test_an_answer_over_the_response_limit_is_cut_off(hostile, start_router, http, declared):
    written = 0

    async def endless(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal written
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            response.content_length = 300 << 20
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(300 * 16):
                await response.write(b" " * 65536)
                written += 65536
        return response

    hostile.behaviour = endless
    table = limited(hostile_table(hostile.url, "openai-compatible", retry={"attempts": 1}), maxResponseBytes=1 << 20)
    router, url = await start_router(table, KEYS)
    status, error = await error_of(http, url, CHAT)
    assert status == 502
    what = "an answer of 314572800 bytes" if declared else "an answer"
    assert error["message"] == f"up sent {what}, over server.maxResponseBytes (1048576 bytes)"
    assert written < 64 << 20  # the router hung up; only socket buffers were filled
    metrics = router.metrics.render().decode()
    assert 'switchyard_upstream_limit_exceeded_total{limit="maxResponseBytes",provider="up"} 1.0' in metrics
    assert 'outcome="ResponseTooLarge",provider="up"' in metrics


@pytest.mark.parametrize("stream", [False, True])
async def test_what_was_read_of_an_answer_over_a_limit_is_let_go_at_once(hostile, start_router, http, stream):
    """An error's traceback keeps the reading frame until a garbage collection: under attack that
    was one limit's worth per request (the hostile bench went over 400 MiB). With the collector off,
    twenty answers over a 1 MiB limit leave less than 8 MiB behind (the socket's read buffers, a
    few hundred KB each, wait for the collector; before, more than 20 MiB did)."""
    head = b"data: " if stream else b'{"choices":[{"message":{"content":"'

    async def oversized(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE if stream else {"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(head)
            for _ in range(64):
                await response.write(b"x" * 65536)
        return response

    hostile.behaviour = oversized
    table = limited(hostile_table(hostile.url, "openai-compatible", retry={"attempts": 1}),
                    maxResponseBytes=1 << 20, maxEventBytes=1 << 20)
    _, url = await start_router(table, KEYS)
    await error_of(http, url, {**CHAT, "stream": stream})  # warm: first-use allocations done
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(20):
            status, error = await error_of(http, url, {**CHAT, "stream": stream})
            assert status == 502 and "over server.max" in error["message"]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < 8 << 20, held


@pytest.mark.parametrize("family", ["openai-compatible", "anthropic", "gemini"])
async def test_json_that_would_grow_when_parsed_is_refused(hostile, start_router, http, family):
    bomb = b'{"choices":[' + b"[]," * (1 << 20) + b"[]]}"  # 3 MB, about 90 MB parsed

    hostile.behaviour = lambda request: _respond(web.Response(body=bomb, content_type="application/json"))
    table = limited(hostile_table(hostile.url, family, retry={"attempts": 1}), maxResponseBytes=4 << 20)
    _, url = await start_router(table, KEYS)
    status, error = await error_of(http, url, CHAT)
    assert status == 502
    assert error["message"].startswith("up sent JSON that would take about ")
    assert error["message"].endswith("bytes once parsed, over 4 x server.maxResponseBytes (4194304 bytes)")


async def test_an_event_that_never_ends_is_cut_off_before_the_first_byte(hostile, start_router, http):
    async def endless_event(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(b"data: ")
            for _ in range(1000):
                await response.write(b"x" * 65536)
        return response

    hostile.behaviour = endless_event
    table = limited(hostile_table(hostile.url, "anthropic", retry={"attempts": 1}), maxEventBytes=256 << 10)
    router, url = await start_router(table, KEYS)
    status, error = await error_of(http, url, {**CHAT, "stream": True})
    assert status == 502
    assert error["message"] == "up sent an event, over server.maxEventBytes (262144 bytes)"
    metrics = router.metrics.render().decode()
    assert 'switchyard_upstream_limit_exceeded_total{limit="maxEventBytes",provider="up"} 1.0' in metrics


@pytest.mark.parametrize(("setting", "tail"), [("maxEventBytes", b"data: " + b"x" * (1 << 20)), ("maxStreamBytes", None)])
async def test_a_stream_over_a_limit_after_its_first_byte_ends_with_an_error_event(
    hostile, start_router, http, setting, tail
):
    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"' + b"y" * 1000 + b'"}}\n\n'

    async def flood(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(ANTHROPIC_START)
            await asyncio.sleep(0.05)  # the first frames go out first
            for _ in range(2000):
                await response.write(tail or delta)
        return response

    hostile.behaviour = flood
    table = limited(hostile_table(hostile.url, "anthropic"), maxEventBytes=256 << 10, maxStreamBytes=512 << 10)
    router, url = await start_router(table, KEYS)
    head, error = await stream_error(http, url)
    assert b'"role":"assistant"' in head
    limit = {"maxEventBytes": 262144, "maxStreamBytes": 524288}[setting]
    what = "an event" if setting == "maxEventBytes" else "a stream"
    assert error["message"] == f"up sent {what}, over server.{setting} ({limit} bytes)"
    metrics = router.metrics.render().decode()
    assert f'switchyard_upstream_limit_exceeded_total{{limit="{setting}",provider="up"}} 1.0' in metrics
    assert 'switchyard_requests_total{outcome="ResponseTooLarge",route="chat"} 1.0' in metrics


async def test_an_event_that_would_grow_when_parsed_is_refused(hostile, start_router, http):
    event = b'event: content_block_delta\ndata: {"type":"content_block_delta","x":[' + b"{}," * (1 << 20) + b"{}]}\n\n"

    async def dense(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=event, headers=SSE)

    hostile.behaviour = dense
    table = limited(hostile_table(hostile.url, "anthropic", retry={"attempts": 1}), maxResponseBytes=4 << 20)
    _, url = await start_router(table, KEYS)
    status, error = await error_of(http, url, {**CHAT, "stream": True})
    assert status == 502
    assert error["message"].startswith("upstream sent JSON that would take about ")
    assert error["message"].endswith(" bytes once parsed, over 4 x server.maxResponseBytes (4194304 bytes)")


# --- malformed answers and errors in 200s -------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "body"),
    [
        ("anthropic", {"type": "message", "content": "not a list of blocks", "usage": {}}),
        ("anthropic", {"type": "message", "content": [["a"]]}),
        ("gemini", {"candidates": "x"}),
        ("gemini", {"candidates": [{"content": {"parts": [1, 2]}}]}),
        ("openai-compatible", {"choices": [], "usage": {"prompt_tokens": "many"}}),
        ("openai-compatible", {"choices": [], "usage": ["x"]}),
    ],
)
async def test_a_malformed_answer_is_a_server_error_never_a_500(hostile, start_router, http, family, body):
    hostile.behaviour = lambda request: _respond(web.json_response(body))
    _, url = await start_router(hostile_table(hostile.url, family, retry={"attempts": 1}), KEYS)
    status, error = await error_of(http, url, CHAT)
    assert status == 502 and error["type"] == "api_error"
    assert error["message"].startswith("up sent a malformed answer (")


@pytest.mark.parametrize(
    ("family", "events"),
    [
        ("anthropic", b"event: \xff\xfe\ndata: {}\n\n"),  # an event name that is not UTF-8: skipped, then cut
        ("anthropic", b'event: message_start\ndata: {"type":"message_start","message":"x"}\n\n'),
        ("anthropic", b'event: content_block_start\ndata: {"type":"content_block_start","content_block":[1]}\n\n'),
        ("gemini", b'data: {"candidates":[{"content":{"parts":"x"}}]}\n\n'),
        ("gemini", b'data: {"candidates":[7]}\n\n'),
        ("gemini", b"data: \xff\xfe\n\n"),
    ],
)
async def test_a_malformed_event_is_an_upstream_error_never_a_500(hostile, start_router, http, family, events):
    hostile.behaviour = lambda request: _respond(web.Response(body=events, headers=SSE))
    _, url = await start_router(hostile_table(hostile.url, family, retry={"attempts": 1}), KEYS)
    status, error = await error_of(http, url, {**CHAT, "stream": True})
    assert status == 502, error
    assert error["type"] in ("api_error", "api_connection_error")


GEMINI_CHUNK = b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},"index":0}]}\n\n'
OPENAI_CHUNK = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'


@pytest.mark.parametrize("first", [True, False], ids=["before-first-byte", "mid-stream"])
@pytest.mark.parametrize("family", ["openai-compatible", "anthropic", "gemini"])
async def test_an_event_name_that_is_not_utf8_is_never_a_500(hostile, start_router, http, family, first):
    """Anywhere in a stream of any family: a classified error (502 before the first byte, an
    error event after it) or, where the family's events pass through, the event without its name;
    the bytes never reach the client."""
    good = {"openai-compatible": OPENAI_CHUNK, "anthropic": ANTHROPIC_START, "gemini": GEMINI_CHUNK}[family]
    bad = b"event: \xff\xfe\x80\ndata: {}\n\n"
    events = bad + good if first else good + bad
    hostile.behaviour = lambda request: _respond(web.Response(body=events, headers=SSE))
    router, url = await start_router(hostile_table(hostile.url, family, retry={"attempts": 1}), KEYS)
    status, _, raw = await post(http, url, {**CHAT, "stream": True})
    assert status in (200, 502) and b"\xff" not in raw and b"\x80" not in raw
    if status == 200:
        assert raw.startswith(b"data: {")
    if family != "openai-compatible":  # a translated family parses every event: this one failed
        assert 'switchyard_requests_total{outcome="Success"' not in router.metrics.render().decode()


@pytest.mark.parametrize(
    ("family", "body", "status", "kind"),
    [
        ("openai-compatible", {"error": {"code": 429, "message": "slow down"}}, 429, "RateLimited"),
        ("openai-compatible", {"error": {"type": "invalid_request_error", "code": "context_length_exceeded", "message": "too long"}}, 400, "ContextLengthExceeded"),
        ("anthropic", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, 503, "Overloaded"),
        ("gemini", {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad"}}, 400, "BadRequest"),
        ("gemini", {"error": {"status": "UNAVAILABLE", "message": "later"}}, 503, "Overloaded"),
    ],
)
async def test_a_200_whose_body_is_an_error_is_that_error(hostile, start_router, http, family, body, status, kind):
    hostile.behaviour = lambda request: _respond(web.json_response(body))
    router, url = await start_router(hostile_table(hostile.url, family, retry={"attempts": 1}), KEYS)
    got, error = await error_of(http, url, CHAT)
    assert got == status and error["message"] == body["error"]["message"]
    metrics = router.metrics.render().decode()
    assert f'switchyard_attempts_total{{model="m",outcome="{kind}",provider="up",route="chat"}} 1.0' in metrics
    assert 'outcome="ok",provider="up",route="chat"} 0.0' in metrics


async def test_a_chunked_answer_within_the_limit_is_read_whole(hostile, start_router, http):
    async def chunked(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        raw = orjson.dumps(OK_BODY)
        for i in range(0, len(raw), 10):
            await response.write(raw[i : i + 10])
        return response

    hostile.behaviour = chunked
    table = limited(hostile_table(hostile.url, "openai-compatible"), maxResponseBytes=1024)
    _, url = await start_router(table, KEYS)
    status, _, raw = await post(http, url, CHAT)
    assert status == 200 and orjson.loads(raw) == OK_BODY


async def test_an_endless_error_body_is_read_only_as_far_as_its_message(hostile, start_router, http):
    written = 0

    async def endless_error(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal written
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(5000):
                await response.write(b"e" * 65536)
                written += 65536
        return response

    hostile.behaviour = endless_error
    _, url = await start_router(hostile_table(hostile.url, "openai-compatible", retry={"attempts": 1}), KEYS)
    status, error = await error_of(http, url, CHAT)
    assert status == 502 and error["message"] == "e" * 300
    assert written < 64 << 20


@pytest.mark.parametrize("status", [400, 200])
async def test_an_anthropic_error_keeps_the_request_id_its_body_carries(hostile, start_router, http, caplog, status):
    """Anthropic's error body names its request (`request_id`); behind a proxy that drops the
    request-id header, or in an error object sent with a 200, that is the only id there is."""
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}, "request_id": "req_011CBody"}
    hostile.behaviour = lambda request: _respond(web.json_response(error, status=status))
    caplog.set_level(logging.INFO, "switchyard.router")
    _, url = await start_router(hostile_table(hostile.url, "anthropic"), KEYS)
    answer_status, headers, raw = await post(http, url, CHAT)
    assert answer_status == 400 and orjson.loads(raw)["error"]["message"] == "bad"
    assert headers["x-request-id"] == "req_011CBody"
    assert "request_id=req_011CBody" in caplog.text


async def test_a_key_in_an_anthropic_body_request_id_is_redacted(hostile, start_router, http):
    key = KEYS["anthropic.key"]
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}, "request_id": f"req_{key}"}
    hostile.behaviour = lambda request: _respond(web.json_response(error, status=400))
    _, url = await start_router(hostile_table(hostile.url, "anthropic"), KEYS)
    _, headers, raw = await post(http, url, CHAT)
    assert headers["x-request-id"] == "req_[REDACTED]" and key.encode() not in raw
