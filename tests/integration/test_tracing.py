"""Traces: an OTLP/HTTP collector on loopback receives the router's spans (decoded with the
OpenTelemetry proto package); the simulator shows the traceparent that reached the provider."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import openai
import pytest
import yaml
from openai import AsyncOpenAI
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from switchyard_router import clock, tracing
from switchyard_router.breaker import BreakerState

from ..otlp import Collector, attributes_of
from .conftest import KEYS, client_gone_settles, table_for

PROMPT = "the-secret-plan-for-tuesday"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "tracestate": "vendor=abc"}


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    sink = Collector()
    await sink.start()
    yield sink
    assert sink.runner is not None
    await sink.runner.cleanup()


@pytest.fixture
def traced(collector: Collector, monkeypatch: pytest.MonkeyPatch):
    """Tracing in this process, to the collector; `flush()` exports what is buffered."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)

    def start(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert tracing.configure()

    async def flush() -> list[tuple[dict[str, Any], Span]]:
        # The exporter posts from its own thread to the collector on this loop.
        await asyncio.to_thread(tracing.stop)
        return collector.spans()

    yield start, flush
    tracing.stop()


def by_kind(spans: list[tuple[dict[str, Any], Span]]) -> tuple[Span, list[Span]]:
    servers = [s for _, s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert len(servers) == 1, servers
    clients = sorted((s for _, s in spans if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano)
    return servers[0], clients


def assert_nothing_secret(collector: Collector) -> None:
    sent = b"".join(collector.raw)
    assert sent
    assert PROMPT.encode() not in sent
    for key in KEYS.values():
        assert key.encode() not in sent
    assert b"authorization" not in sent.lower()


async def test_a_fallback_across_families_is_one_trace_under_the_callers_span(
    sim, start_router, collector, traced
):
    start, flush = traced
    start()
    _, url = await start_router(table_for(sim.url))
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": PROMPT}], extra_headers=CALLER
        )
    assert answer.choices[0].message.content
    spans = await flush()
    request, attempts = by_kind(spans)
    resource = spans[0][0]
    assert resource["service.name"] == "switchyard-router"

    # The caller's trace goes on: its span is the request span's parent.
    assert request.trace_id.hex() == CALLER_TRACE
    assert request.parent_span_id.hex() == CALLER_SPAN
    assert request.trace_state == "vendor=abc"
    assert request.name == "chat chat"
    assert request.status.code == Status.STATUS_CODE_OK
    top = attributes_of(request.attributes)
    assert top["gen_ai.operation.name"] == "chat"
    assert top["gen_ai.request.model"] == "chat"
    assert top["switchyard.route"] == "chat"
    assert top["gen_ai.provider.name"] == "anthropic"
    assert top["gen_ai.response.model"] == "claude-sim"
    assert top["switchyard.attempts"] == 3
    assert top["gen_ai.usage.input_tokens"] > 0 and top["gen_ai.usage.output_tokens"] > 0
    assert top["http.response.status_code"] == 200
    fallbacks = [e for e in request.events if e.name == "switchyard.fallback"]
    assert len(fallbacks) == 1
    assert attributes_of(fallbacks[0].attributes) == {
        "switchyard.from": "primary/gpt-sim",
        "switchyard.to": "claude/claude-sim",
        "switchyard.fallback_reason": "ServerError",
    }

    # Two attempts on the OpenAI-compatible target, then one on Anthropic, each a child span.
    assert [s.name for s in attempts] == ["chat gpt-sim", "chat gpt-sim", "chat claude-sim"]
    for span in attempts:
        assert span.trace_id == request.trace_id
        assert span.parent_span_id == request.span_id
    first, second, last = (attributes_of(s.attributes) for s in attempts)
    assert first["gen_ai.provider.name"] == "openai" and first["switchyard.provider"] == "primary"
    assert first["error.type"] == "ServerError" and first["http.response.status_code"] == 500
    assert (first["switchyard.attempt"], second["switchyard.attempt"], second["switchyard.retry"]) == (1, 2, 1)
    assert attempts[0].status.code == Status.STATUS_CODE_ERROR
    assert first["switchyard.breaker.state"] == "closed"
    assert "switchyard.fallback_reason" not in first
    assert last["gen_ai.provider.name"] == "anthropic"
    assert last["switchyard.fallback_reason"] == "ServerError"
    assert last["gen_ai.request.model"] == "claude-sim"
    assert last["gen_ai.usage.output_tokens"] == top["gen_ai.usage.output_tokens"]
    assert "error.type" not in last and attempts[2].status.code == Status.STATUS_CODE_OK

    # The provider got the attempt span's traceparent (and the caller's tracestate).
    seen = sim.last_request("claude")
    assert seen is not None
    assert seen["headers"]["traceparent"] == f"00-{CALLER_TRACE}-{attempts[2].span_id.hex()}-01"
    assert seen["headers"]["tracestate"] == "vendor=abc"
    assert_nothing_secret(collector)


async def test_a_stream_carries_its_usage_and_cost_and_skipped_targets(sim, start_router, collector, traced):
    start, flush = traced
    start()
    table = table_for(sim.url)
    table["providers"][1]["models"] = [
        {"name": "claude-sim", "pricing": {"inputPerMillionTokens": "3", "outputPerMillionTokens": "15"}}
    ]
    router, url = await start_router(table)
    breaker = router.table.routes["chat"].targets[0].breaker  # the primary's circuit is open
    breaker.state, breaker.open_until = BreakerState.OPEN, clock.monotonic() + 60
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text
    request, attempts = by_kind(await flush())
    assert request.parent_span_id == b""  # no caller trace: a new one
    top = attributes_of(request.attributes)
    assert top["gen_ai.provider.name"] == "anthropic"
    assert top["gen_ai.usage.output_tokens"] > 0
    assert top["switchyard.cost_usd"] > 0
    assert top["switchyard.skipped_targets"] == ["primary/gpt-sim: CircuitOpen"]
    assert [s.name for s in attempts] == ["chat claude-sim"]
    assert attempts[0].parent_span_id == request.span_id
    assert_nothing_secret(collector)
    assert text.encode() not in b"".join(collector.raw)


async def test_a_failed_request_marks_its_spans_with_the_error(sim, start_router, collector, traced):
    start, flush = traced
    start()
    _, url = await start_router(table_for(sim.url, retry={"attempts": 1}))
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, error_rate=1.0, error_status=503)
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.APIStatusError):
            await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": PROMPT}], extra_headers=CALLER
            )
        with pytest.raises(openai.NotFoundError):  # refused before any provider: still a span
            await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    spans = await flush()
    servers = [s for _, s in spans if s.kind == Span.SPAN_KIND_SERVER]
    failed = next(s for s in servers if s.trace_id.hex() == CALLER_TRACE)
    top = attributes_of(failed.attributes)
    assert top["error.type"] == "Overloaded"
    assert failed.status.code == Status.STATUS_CODE_ERROR
    attempts = [s for _, s in spans if s.parent_span_id == failed.span_id]
    assert sorted(attributes_of(s.attributes)["gen_ai.provider.name"] for s in attempts) == [
        "anthropic",
        "gcp.gemini",
        "openai",
    ]
    assert all(attributes_of(s.attributes)["error.type"] == "Overloaded" for s in attempts)
    unknown = next(s for s in servers if s is not failed)
    assert attributes_of(unknown.attributes)["error.type"] == "404"
    assert_nothing_secret(collector)


async def test_content_is_recorded_only_when_the_setting_says_so(sim, start_router, collector, traced):
    start, flush = traced
    start(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    _, url = await start_router(table_for(sim.url))
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": PROMPT}]
        )
    request, _ = by_kind(await flush())
    top = attributes_of(request.attributes)
    assert PROMPT in top["gen_ai.input.messages"]
    assert answer.choices[0].message.content in top["gen_ai.output.messages"]
    sent = b"".join(collector.raw)
    assert all(key.encode() not in sent for key in KEYS.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_console_script_exports_with_otel_env(sim, collector, tmp_path: Path):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(table_for(sim.url)))
    port = free_port()
    script = shutil.which("switchyard-router", path=str(Path(sys.executable).parent))
    assert script is not None
    env = {
        **os.environ,
        **KEYS,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "chatbot-gateway",
        # A proxy that answers nothing, bypassed for the provider only: spans go direct anyway.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": urlsplit(sim.url).netloc,
    }
    process = await asyncio.create_subprocess_exec(
        script, "--port", str(port), "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    try:
        assert process.stdout is not None
        assert b"listening" in await asyncio.wait_for(process.stdout.readline(), 20)
        body = {"model": "chat", "messages": [{"role": "user", "content": PROMPT}]}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=CALLER) as resp,
        ):
            assert resp.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, err
    spans = collector.spans()  # the buffered spans went out as it stopped
    request, attempts = by_kind(spans)
    assert spans[0][0]["service.name"] == "chatbot-gateway"
    assert request.trace_id.hex() == CALLER_TRACE
    seen = sim.last_request("primary")
    assert seen is not None
    assert seen["headers"]["traceparent"].split("-")[2] == attempts[0].span_id.hex()
    assert_nothing_secret(collector)


async def test_a_callers_malformed_or_oversized_trace_context_starts_a_new_trace(
    sim, start_router, collector, traced
):
    start, flush = traced
    start()
    _, url = await start_router(table_for(sim.url))
    hostile = [
        {"traceparent": f"00-{'0' * 32}-{CALLER_SPAN}-01"},  # the invalid all-zero trace id
        {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01-extra;{'x' * 2000}"},
        {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "tracestate": ",".join(f"k{i}=v" for i in range(64))},
    ]
    async with aiohttp.ClientSession() as http:
        for headers in hostile:
            body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                assert resp.status == 200
    servers = [s for _, s in await flush() if s.kind == Span.SPAN_KIND_SERVER]
    assert len(servers) == 3
    assert all(s.trace_id.hex() != "0" * 32 for s in servers)
    assert servers[0].parent_span_id == b"" and servers[1].parent_span_id == b""
    # W3C allows at most 32 tracestate members: a longer list is not passed on to the provider.
    seen = sim.last_request("primary")
    assert seen is not None
    assert len(seen["headers"].get("tracestate", "").split(",")) <= 32


async def test_a_client_that_hangs_up_ends_its_spans_as_client_gone(sim, start_router, collector, traced):
    start, flush = traced
    start()
    router, url = await start_router(table_for(sim.url, timeout="5s"))
    sim.set_faults("primary", hang_rate=1.0)
    body = {"model": "chat", "messages": [{"role": "user", "content": PROMPT}]}
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            async with http.post(
                f"{url}/v1/chat/completions", json=body, timeout=aiohttp.ClientTimeout(total=0.3)
            ):
                pass
    await client_gone_settles(router)
    request, attempts = by_kind(await flush())
    assert attributes_of(request.attributes)["error.type"] == "ClientGone"
    assert [attributes_of(s.attributes)["error.type"] for s in attempts] == ["ClientGone"]
    assert attempts[0].parent_span_id == request.span_id


async def test_a_stream_that_breaks_after_its_first_byte_marks_the_request(sim, start_router, collector, traced):
    start, flush = traced
    start()
    _, url = await start_router(table_for(sim.url))
    sim.set_faults("primary", cut_rate=1.0, chunk_delay_ms=30)
    body = {"model": "chat", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/v1/chat/completions", json=body) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert '"error"' in text
    request, attempts = by_kind(await flush())
    assert attributes_of(request.attributes)["error.type"] == "ConnectionError"
    assert request.status.code == Status.STATUS_CODE_ERROR
    assert attempts[0].status.code == Status.STATUS_CODE_OK  # its first chunk came: no fallback


async def test_the_messages_api_is_traced_as_chat(sim, start_router, collector, traced):
    start, flush = traced
    start()
    _, url = await start_router(table_for(sim.url))
    body = {"model": "chat", "max_tokens": 32, "messages": [{"role": "user", "content": PROMPT}]}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/v1/messages", json=body, headers=CALLER) as resp:
        assert resp.status == 200
    request, attempts = by_kind(await flush())
    assert request.trace_id.hex() == CALLER_TRACE
    assert attributes_of(request.attributes)["gen_ai.operation.name"] == "chat"
    assert [s.parent_span_id for s in attempts] == [request.span_id]
    assert_nothing_secret(collector)
