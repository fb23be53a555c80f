"""Circuit breaking, several keys, rate limits and context windows, end to end over HTTP."""

from __future__ import annotations

import asyncio

import openai
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from switchyard_router.breaker import BreakerState

from .conftest import KEYS, table_for

MESSAGES = [{"role": "user", "content": "hello"}]


async def open_client(start_router, table, keys=None):
    router, url = await start_router(table, keys)
    return router, AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


async def served_by(client, model="chat", messages=MESSAGES) -> str:
    raw = await client.chat.completions.with_raw_response.create(model=model, messages=messages)
    return raw.headers["x-switchyard-provider"]


def count(sim, name):
    return sim.stats().get(name, {}).get("requests", 0)


async def test_breaker_opens_at_its_threshold_skips_then_recovers(sim, start_router):
    table = table_for(sim.url, retry={"attempts": 1})
    table["circuitBreaker"] = {"consecutiveFailures": 3, "cooldown": "300ms"}
    router, client = await open_client(start_router, table)
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    for _ in range(6):
        assert await served_by(client) == "claude"
    assert count(sim, "primary") == 3  # opened at the threshold, then skipped
    breaker = router.table.routes["chat"].targets[0].breaker
    assert breaker.state is BreakerState.OPEN
    metrics = router.metrics.render().decode()
    assert 'switchyard_circuit_state{model="gpt-sim",provider="primary"} 1.0' in metrics
    assert 'reason="CircuitOpen"' in metrics
    sim.clear_faults()
    await asyncio.sleep(0.35)
    assert await served_by(client) == "primary"  # the half-open trial succeeds
    assert breaker.state is BreakerState.CLOSED
    assert [await served_by(client) for _ in range(3)] == ["primary"] * 3


async def test_every_circuit_open_fails_open_to_the_soonest(sim, start_router):
    table = table_for(sim.url, retry={"attempts": 1})
    table["circuitBreaker"] = {"consecutiveFailures": 1, "cooldown": "30s"}
    router, client = await open_client(start_router, table)
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, error_rate=1.0, error_status=503)
    with pytest.raises(openai.APIStatusError):
        await served_by(client)
    targets = router.table.routes["chat"].targets
    assert all(t.breaker.state is BreakerState.OPEN for t in targets)
    targets[2].breaker.open_until -= 10  # gem's cooldown ends first
    sim.clear_faults()
    assert await served_by(client) == "gem"


async def test_without_fail_open_an_all_open_route_refuses_fast_and_says_for_how_long(sim, start_router):
    table = table_for(sim.url, retry={"attempts": 1})
    table["circuitBreaker"] = {"consecutiveFailures": 1, "cooldown": "30s", "failOpen": False}
    router, client = await open_client(start_router, table)
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, error_rate=1.0, error_status=500)
    with pytest.raises(openai.APIStatusError):
        await served_by(client)
    before = sum(count(sim, n) for n in ("primary", "claude", "gem"))
    router.table.routes["chat"].targets[1].breaker.open_until -= 20  # claude's cooldown ends first
    with pytest.raises(openai.APIStatusError) as caught:
        await served_by(client)
    assert caught.value.status_code == 503
    assert "unavailable" in caught.value.message
    assert sum(count(sim, n) for n in ("primary", "claude", "gem")) == before
    assert caught.value.response.headers["retry-after"] == "10"  # when the first circuit closes


async def test_a_refused_key_is_taken_out_and_the_next_key_serves(sim, start_router, caplog):
    table = table_for(sim.url)
    table["providers"][0]["credentials"] = [{"name": "old", "key": "k1"}, {"name": "new", "key": "k2"}]
    keys = {**KEYS, "k1": "sk-bad-revoked-key-1111", "k2": "sk-good-key-2222"}
    router, client = await open_client(start_router, table, keys)
    assert [await served_by(client) for _ in range(4)] == ["primary"] * 4
    assert sim.stats()["primary"]["keys"] == {"1111": 1, "2222": 4}
    metrics = router.metrics.render().decode()
    assert 'switchyard_key_state{credential="old",provider="primary",state="revoked"} 1.0' in metrics
    assert (
        'switchyard_key_errors_total{credential="old",kind="Unauthorized",provider="primary"} 1.0' in metrics
    )
    assert "refused its key 'old'" in caplog.text
    assert "sk-bad-revoked-key-1111" not in caplog.text and "sk-bad-revoked-key-1111" not in metrics


@pytest.fixture
async def per_key_upstream():
    """OpenAI-compatible: 429s key one with Retry-After, reports an exhausted quota for key two."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        seen.append(auth[-4:])
        if auth.endswith("1111"):
            return web.json_response(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status=429,
                headers={"Retry-After": "30"},
            )
        headers = {}
        if auth.endswith("3333"):
            headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"}
        body = {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return web.json_response(body, headers=headers)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen
    await runner.cleanup()


async def test_429_cools_one_key_and_exhausted_headers_rest_another(per_key_upstream, start_router):
    url, seen = per_key_upstream
    table = {
        "providers": [
            {
                "name": "up",
                "type": "openai-compatible",
                "baseURL": url,
                "credentials": [
                    {"name": "a", "key": "a"},
                    {"name": "b", "key": "b"},
                    {"name": "c", "key": "c"},
                ],
            },
        ],
        "routes": [{"name": "chat", "targets": [{"provider": "up", "model": "m"}], "retry": {"attempts": 3}}],
    }
    keys = {"a": "sk-key-a-1111", "b": "sk-key-b-2222", "c": "sk-key-c-3333"}
    router, client = await open_client(start_router, table, keys)
    assert await served_by(client) == "up"
    assert seen == ["1111", "2222"]  # key a answered 429: key b went at once, no backoff
    await served_by(client)  # c, whose headers say its quota is used up
    assert seen[-1] == "3333"
    for _ in range(3):
        await served_by(client)
    assert seen[3:] == ["2222"] * 3  # a cools for its Retry-After, c until its reset
    states = router.metrics.render().decode()
    assert 'credential="a",provider="up",state="cooling"' in states
    assert 'credential="c",provider="up",state="cooling"' in states


async def test_rate_limits_skip_a_target_before_sending(sim, start_router):
    table = table_for(sim.url)
    table["providers"][0]["limits"] = {"requestsPerMinute": 2}
    router, client = await open_client(start_router, table)
    assert [await served_by(client) for _ in range(4)] == ["primary", "primary", "claude", "claude"]
    assert count(sim, "primary") == 2
    assert 'reason="RateLimited"' in router.metrics.render().decode()


async def test_a_per_key_token_budget_spreads_over_keys(sim, start_router):
    table = table_for(sim.url)
    table["providers"][0]["credentials"] = [
        {"name": "a", "key": "k1", "limits": {"tokensPerMinute": 200}},
        {"name": "b", "key": "k2", "limits": {"tokensPerMinute": 200}},
    ]
    keys = {**KEYS, "k1": "sk-key-one-aaaa1111", "k2": "sk-key-two-bbbb2222"}
    _, client = await open_client(start_router, table, keys)
    long = [{"role": "user", "content": "y" * 500}]  # about 130 tokens, estimated
    assert [await served_by(client, messages=long) for _ in range(3)] == ["primary", "primary", "claude"]
    assert sim.stats()["primary"]["keys"] == {"1111": 1, "2222": 1}


async def test_a_prompt_too_long_for_a_window_skips_that_target(sim, start_router):
    table = table_for(sim.url)
    table["providers"][0]["models"] = [{"name": "gpt-sim", "contextWindow": 100}]
    table["providers"][1]["models"] = [{"name": "claude-sim", "contextWindow": 200000}]
    _, client = await open_client(start_router, table)
    assert await served_by(client) == "primary"
    long = [{"role": "user", "content": "word " * 400}]
    assert await served_by(client, messages=long) == "claude"
    assert count(sim, "primary") == 1


async def test_context_length_exceeded_moves_to_a_larger_window(sim, start_router):
    table = table_for(sim.url)
    table["providers"][0]["models"] = [{"name": "gpt-sim", "contextWindow": 100000}]
    table["providers"][1]["models"] = [{"name": "claude-sim", "contextWindow": 50000}]
    table["providers"][2]["models"] = [{"name": "gemini-sim", "contextWindow": 1000000}]
    router, client = await open_client(start_router, table)
    sim.set_faults("primary", context_window=10)
    assert (
        await served_by(client, messages=[{"role": "user", "content": "x" * 200}]) == "gem"
    )  # claude's window is smaller than the one that failed
    assert count(sim, "claude") == 0
    assert 'reason="ContextLengthExceeded"' in router.metrics.render().decode()


async def test_a_prompt_that_fits_no_window_still_tries_the_largest(sim, start_router):
    table = table_for(sim.url)
    for i, window in enumerate((10, 20, 30)):
        table["providers"][i]["models"] = [
            {"name": table["routes"][0]["targets"][i]["model"], "contextWindow": window}
        ]
    _, client = await open_client(start_router, table)
    assert await served_by(client, messages=[{"role": "user", "content": "z" * 400}]) == "gem"
    sim.set_faults("gem", context_window=5)
    with pytest.raises(openai.BadRequestError) as caught:
        await served_by(client, messages=[{"role": "user", "content": "z" * 400}])
    assert caught.value.code == "context_length_exceeded"


async def test_a_retry_blocked_by_the_providers_quota_falls_back(sim, start_router):
    table = table_for(sim.url)
    table["providers"][0]["limits"] = {"requestsPerMinute": 1}
    _, client = await open_client(start_router, table)
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    assert await served_by(client) == "claude"
    assert count(sim, "primary") == 1  # the retry found the quota spent and moved on


async def test_a_lone_cooling_key_is_still_tried_when_failing_open(per_key_upstream, start_router):
    url, seen = per_key_upstream
    table = {
        "providers": [
            {
                "name": "up",
                "type": "openai-compatible",
                "baseURL": url,
                "credentials": [{"name": "a", "key": "a"}],
            }
        ],
        "routes": [{"name": "chat", "targets": [{"provider": "up", "model": "m"}]}],
    }
    _, client = await open_client(start_router, table, {"a": "sk-key-a-1111"})
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            await served_by(client)
    assert seen == ["1111", "1111"]  # skipped as rate limited, then tried anyway: fail open


async def test_a_prompt_that_fits_nothing_and_no_time_left_is_a_context_error(sim, start_router):
    table = table_for(sim.url, deadline="0s")
    for i in range(3):
        table["providers"][i]["models"] = [
            {"name": table["routes"][0]["targets"][i]["model"], "contextWindow": 10}
        ]
    _, client = await open_client(start_router, table)
    with pytest.raises(openai.BadRequestError) as caught:
        await served_by(client, messages=[{"role": "user", "content": "z" * 400}])
    assert caught.value.code == "context_length_exceeded"


async def test_a_provider_whose_keys_are_missing_gets_no_traffic(sim, start_router, caplog):
    keys = {k: v for k, v in KEYS.items() if k != "primary.key"}
    _, client = await open_client(start_router, table_for(sim.url), keys)
    assert await served_by(client) == "claude"
    assert count(sim, "primary") == 0
    assert "provider primary has none of its keys (primary.key)" in caplog.text
    single = table_for(sim.url)
    single["routes"][0]["targets"] = single["routes"][0]["targets"][:1]
    _, lonely = await open_client(start_router, single, keys)
    with pytest.raises(openai.APIStatusError) as caught:
        await served_by(lonely)
    assert caught.value.status_code == 503  # nothing sent without a key, even failing open
    assert count(sim, "primary") == 0


async def test_an_exact_count_keeps_a_target_the_estimate_would_skip(sim, start_router):
    import tiktoken

    table = table_for(sim.url)
    table["providers"][0]["models"] = [{"name": "gpt-sim", "contextWindow": 60}]
    router, client = await open_client(start_router, table)
    # 200 characters of one repeated byte: the estimate says ~70 tokens, a real count says fewer.
    messages = [{"role": "user", "content": "a" * 200}]
    assert await served_by(client, messages=messages) == "claude"
    merged = tiktoken.Encoding(
        name="aa", pat_str=r"\S+|\s+",
        mergeable_ranks={**{bytes([i]): i for i in range(256)}, b"aa": 256, b"aaaa": 257, b"aaaaaaaa": 258},
        special_tokens={},
    )
    router.dispatcher.token_counter.encodings["gpt-sim"] = merged
    assert await served_by(client, messages=messages) == "primary"  # 25 tokens + 4: it fits
