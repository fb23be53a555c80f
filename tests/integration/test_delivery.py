"""How an answer reaches the client: a stream as it arrives, or in one body when it arrived in one
piece; and what a client that hangs up early leaves behind."""

from __future__ import annotations

import asyncio
from time import perf_counter

import aiohttp
import pytest
from openai import AsyncOpenAI

from .conftest import client_gone_settles, settle, table_for

MESSAGES = [{"role": "user", "content": "tell me something"}]


@pytest.mark.parametrize("model", ["primary/gpt-sim", "claude/claude-sim", "gem/gemini-sim"])
async def test_a_stream_arriving_over_time_is_forwarded_as_it_arrives(sim, start_router, model):
    router, url = await start_router(table_for(sim.url))
    provider = model.split("/")[0]
    sim.set_faults(provider, chunk_delay_ms=30)
    body = {"model": model, "messages": MESSAGES, "stream": True}
    async with aiohttp.ClientSession() as http:
        started = perf_counter()
        async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["Transfer-Encoding"] == "chunked"
            arrivals = []
            async for piece in resp.content.iter_any():
                arrivals.append((perf_counter() - started, piece))
    text = b"".join(piece for _, piece in arrivals)
    assert text.endswith(b"data: [DONE]\n\n")
    # Frames came in several pieces, the first well before the last (each event waits 30 ms).
    assert len(arrivals) >= 3
    assert arrivals[-1][0] - arrivals[0][0] >= 0.06
    metrics = router.metrics.render().decode()
    assert 'switchyard_requests_total{outcome="ok",route="' in metrics
    assert "gen_ai_client_operation_time_per_output_chunk_seconds_count" in metrics


async def test_the_sdk_reads_a_stream_arriving_over_time_with_its_usage(sim, start_router):
    _, url = await start_router(table_for(sim.url))
    sim.set_faults("primary", chunk_delay_ms=10)
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_a_stream_that_arrived_in_one_piece_goes_out_as_one_body(sim, start_router):
    _, url = await start_router(table_for(sim.url))
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["content-type"] == "text/event-stream"
    assert int(raw.headers["content-length"]) > 0
    chunks = [chunk async for chunk in raw.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None


async def test_a_client_that_leaves_while_the_stream_opens_frees_the_upstream(sim, start_router):
    router, url = await start_router(table_for(sim.url))
    sim.set_faults("primary", latency_ms=500)
    body = {"model": "chat", "messages": MESSAGES, "stream": True}
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await http.post(f"{url}/v1/chat/completions", json=body)
    await client_gone_settles(router)


async def test_a_client_that_leaves_before_a_json_answer_is_counted_as_gone(sim, start_router):
    router, url = await start_router(table_for(sim.url))
    sim.set_faults("primary", latency_ms=500)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await http.post(f"{url}/v1/chat/completions", json={"model": "chat", "messages": MESSAGES})
    await settle(lambda: "ClientGone" in router.metrics.render().decode())
    assert (
        'switchyard_requests_total{outcome="ClientGone",route="chat"} 1.0' in router.metrics.render().decode()
    )
