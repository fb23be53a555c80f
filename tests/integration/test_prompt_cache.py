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
    router, url = await start_router(table)
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
    series = '{model="claude-sim",provider="claude",route="claude/claude-sim",type="%s"}'
    metrics = router.metrics.render().decode()
    assert f"switchyard_tokens_total{series % 'cache_write'} {written}.0" in metrics
    assert f"switchyard_tokens_total{series % 'cached_input'} {written}.0" in metrics
    await client.close()


async def test_breakpoints_meant_for_anthropic_do_not_fail_openai_first(sim, start_router):
    # OpenAI refuses arguments it does not know: the router keeps Anthropic's breakpoints away
    # from it, and hands them to Anthropic when the route falls back there.
    table = table_for(sim.url)
    table["providers"][0]["type"] = "openai"
    _, url = await start_router(table)
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    mark = {"type": "ephemeral"}
    messages = [
        {"role": "system", "content": "Rules", "cache_control": mark},
        {"role": "user", "content": "Hi"},
    ]
    extra = {"cache_control": mark}
    served = await client.chat.completions.with_raw_response.create(
        model="chat", messages=messages, extra_body=extra
    )
    assert served.headers["x-switchyard-provider"] == "primary"
    assert "cache_control" not in str(sim.last_request("primary")["body"])

    sim.set_faults("primary", error_rate=1.0, error_status=503)
    fallen = await client.chat.completions.with_raw_response.create(
        model="chat", messages=messages, extra_body=extra
    )
    assert fallen.headers["x-switchyard-provider"] == "claude"
    sent = sim.last_request("claude")["body"]
    assert sent["cache_control"] == mark
    assert sent["system"] == [{"type": "text", "text": "Rules", "cache_control": mark}]
    await client.close()
