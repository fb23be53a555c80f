"""Anthropic prompt caching through the router: a provider's promptCache marks each request,
the simulator caches the prefix as the API does, and the client sees cached tokens in OpenAI's
usage while the cost prices writes and reads at their own rates."""

from __future__ import annotations

from decimal import Decimal

from openai import AsyncOpenAI

from .conftest import table_for

PRICES = {
    "inputPerMillionTokens": "3",
    "outputPerMillionTokens": "15",
    "cachedInputPerMillionTokens": "0.30",
    "cacheWritePerMillionTokens": "3.75",
}


async def test_a_chat_is_cached_after_its_first_turn_and_priced_so(sim, start_router):
    table = table_for(sim.url)
    claude = table["providers"][1]
    claude["promptCache"] = "5m"
    claude["models"] = [{"name": "claude-sim", "pricing": PRICES}]
    _, url = await start_router(table)
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    messages = [{"role": "system", "content": "House rules. " * 100}, {"role": "user", "content": "Hello"}]

    first = await client.chat.completions.with_raw_response.create(
        model="claude/claude-sim", messages=messages
    )
    usage = first.parse().usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    sent = sim.last_request("claude")["body"]
    assert sent["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    written = usage.prompt_tokens  # the whole prompt went into the cache
    expected = (written * Decimal("3.75") + usage.completion_tokens * Decimal(15)) / 1_000_000
    assert Decimal(first.headers["x-switchyard-cost-usd"]) == expected

    second = await client.chat.completions.with_raw_response.create(
        model="claude/claude-sim", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in second.parse()]
    final = chunks[-1].usage
    assert final is not None and final.prompt_tokens_details is not None
    assert final.prompt_tokens_details.cached_tokens == written
    await client.close()
