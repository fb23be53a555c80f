"""Answers the client abandoned are billed by the provider: the router stops the upstream request
at once and counts them, exact where the provider reported usage first, else estimated."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from .conftest import settle, table_for

PRICES = {"inputPerMillionTokens": "0.15", "outputPerMillionTokens": "0.60"}
MESSAGES = [{"role": "user", "content": "tell me a long story about the sea"}]


def priced(sim_url: str) -> dict:
    table = table_for(sim_url, targets=[{"provider": "primary", "model": "gpt-sim"}])
    table["providers"][0]["models"] = [{"name": "gpt-sim", "pricing": PRICES}]
    return table


async def usage_of(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/usage") as resp:
        report = await resp.json()
    (counter,) = report["counters"]
    return counter


async def settled(url: str, field: str, value: int) -> dict:
    seen: dict = {}

    async def look() -> None:
        seen.update(await usage_of(url))

    for _ in range(100):
        await look()
        if seen.get(field) == value:
            break
        await asyncio.sleep(0.02)
    return seen


async def test_a_stream_broken_off_after_its_first_chunk_is_stopped_and_estimated(sim, start_router):
    sim.set_faults("primary", chunk_delay_ms=40)
    router, url = await start_router(priced(sim.url))
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    async for chunk in stream:
        assert chunk.choices  # the first chunk, then the client breaks off
        break
    await stream.close()
    counter = await settled(url, "estimatedRequests", 1)
    assert counter["requests"] == 1 and counter["estimatedRequests"] == 1
    assert counter["costUSD"] == "0" and counter["unpricedRequests"] == 0
    estimated = Decimal(counter["estimatedCostUSD"])
    # At least the prompt at its price: never zero, and no exponent in the figure.
    assert estimated >= Decimal(len(MESSAGES[0]["content"]) // 4) * Decimal("0.15") / 1_000_000 > 0
    assert "E" not in counter["estimatedCostUSD"]
    metrics = router.metrics.render().decode()
    assert 'switchyard_abandoned_requests_total{model="gpt-sim",provider="primary",usage="estimated"} 1.0' in metrics
    assert 'switchyard_estimated_cost_usd_total{model="gpt-sim",provider="primary",route="chat"}' in metrics
    # The upstream request was stopped: the simulator never finished the stream.
    target = router.table.routes["chat"].targets[0]
    await settle(lambda: target.in_flight == 0)
    await asyncio.sleep(1.5)  # longer than the whole stream at 40 ms an event
    assert "200" not in sim.stats("primary")["status"]
    await client.close()


async def test_a_stream_left_after_its_usage_chunk_is_counted_exactly(sim, start_router):
    sim.set_faults("primary", chunk_delay_ms=40)
    router, url = await start_router(priced(sim.url))
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    usage = None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
            break  # before [DONE]
    await stream.close()
    assert usage is not None
    expected = (
        Decimal(usage.prompt_tokens) * Decimal("0.15") + Decimal(usage.completion_tokens) * Decimal("0.60")
    ) / 1_000_000
    counter = await settled(url, "requests", 1)
    assert counter["estimatedRequests"] == 0 and counter["estimatedCostUSD"] == "0"
    assert Decimal(counter["costUSD"]) == expected
    assert counter["inputTokens"] == usage.prompt_tokens and counter["outputTokens"] == usage.completion_tokens
    metrics = router.metrics.render().decode()
    assert 'switchyard_abandoned_requests_total{model="gpt-sim",provider="primary",usage="exact"} 1.0' in metrics
    await client.close()


async def test_a_json_call_the_client_timed_out_is_stopped_and_estimated(sim, start_router):
    sim.set_faults("primary", latency_ms=600)
    router, url = await start_router(priced(sim.url))
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="chat", messages=MESSAGES)
    counter = await settled(url, "estimatedRequests", 1)
    assert counter["requests"] == 1 and counter["costUSD"] == "0"
    assert Decimal(counter["estimatedCostUSD"]) > 0
    target = router.table.routes["chat"].targets[0]
    await settle(lambda: target.in_flight == 0)
    assert target.in_flight == 0  # the upstream request was closed at once, not read to its end
    assert 'outcome="ClientGone",route="chat"} 1.0' in router.metrics.render().decode()
    await client.close()


async def test_an_abandoned_answer_without_a_price_is_unpriced_never_zero(sim, start_router):
    sim.set_faults("primary", latency_ms=600)
    table = priced(sim.url)
    table["providers"][0]["models"] = [{"name": "gpt-sim"}]
    _, url = await start_router(table)
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="chat", messages=MESSAGES)
    counter = await settled(url, "estimatedRequests", 1)
    assert counter["unpricedRequests"] == 1 and counter["estimatedCostUSD"] == "0"
    await client.close()
