"""Every fallback path of the router, against the simulator's injected faults."""

from __future__ import annotations

import logging
import re
import time

import openai
import pytest
from openai import AsyncOpenAI

from .conftest import KEYS, table_for

MESSAGES = [{"role": "user", "content": "hello"}]


async def client_for(start_router, table, keys=None):
    router, url = await start_router(table, keys)
    return router, AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


async def ask(client, stream=False, model="chat"):
    if stream:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=MESSAGES, stream=True
        )
        text = ""
        async for chunk in raw.parse():
            for choice in chunk.choices:
                text += choice.delta.content or ""
        return raw.headers, text
    raw = await client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    return raw.headers, raw.parse().choices[0].message.content


def requests_to(sim, name):
    return sim.stats().get(name, {}).get("requests", 0)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("faults", "kind"),
    [
        ({"error_rate": 1.0, "error_status": 500}, "ServerError"),
        ({"error_rate": 1.0, "error_status": 503}, "Overloaded"),
        ({"error_rate": 1.0, "error_status": 429, "retry_after": 30}, "RateLimited"),
        ({"reset_rate": 1.0}, "ConnectionError"),
        ({"hang_rate": 1.0}, "Timeout"),
    ],
)
async def test_primary_failure_falls_back(sim, start_router, faults, kind, stream):
    table = table_for(sim.url, timeout="500ms")
    router, client = await client_for(start_router, table)
    sim.set_faults("primary", **faults)
    headers, text = await ask(client, stream=stream)
    assert headers["x-switchyard-provider"] == "claude"
    assert "hello" in text
    metrics = router.metrics.render().decode()
    assert f'reason="{kind}"' in metrics and 'from_provider="primary"' in metrics


async def test_transient_errors_retry_the_same_target_first(sim, start_router):
    table = table_for(sim.url, retry={"attempts": 3, "backoff": {"base": "1ms", "max": "20ms"}})
    _, client = await client_for(start_router, table)
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    headers, _ = await ask(client)
    assert headers["x-switchyard-attempts"] == "4"
    assert requests_to(sim, "primary") == 3
    assert headers["x-switchyard-provider"] == "claude"


async def test_a_long_retry_after_falls_back_at_once(sim, start_router):
    _, client = await client_for(start_router, table_for(sim.url))
    sim.set_faults("primary", error_rate=1.0, error_status=429, retry_after=30)
    started = time.monotonic()
    headers, _ = await ask(client)
    assert time.monotonic() - started < 1.0
    assert requests_to(sim, "primary") == 1
    assert headers["x-switchyard-attempts"] == "2"


async def test_a_short_retry_after_is_honoured_on_the_same_target(sim, start_router):
    table = table_for(sim.url, retry={"attempts": 2, "backoff": {"base": "1ms", "max": "2s"}})
    _, client = await client_for(start_router, table)
    sim.set_faults("primary", error_rate=1.0, error_status=429, retry_after=1)
    started = time.monotonic()
    await ask(client)
    assert time.monotonic() - started >= 1.0
    assert requests_to(sim, "primary") == 2


async def test_client_errors_come_back_and_are_never_retried(sim, start_router, caplog):
    _, client = await client_for(start_router, table_for(sim.url))
    sim.set_faults("primary", error_rate=1.0, error_status=400)
    with pytest.raises(openai.BadRequestError) as caught:
        await ask(client)
    # With the provider's request id, in the client's error and in the router's log.
    assert re.fullmatch(r"req_\w{32}", caught.value.request_id)
    assert f"request_id={caught.value.request_id}" in caplog.text
    assert requests_to(sim, "primary") == 1
    assert requests_to(sim, "claude") == 0 and requests_to(sim, "gem") == 0


async def test_every_target_failing_gives_the_last_error(sim, start_router):
    _, client = await client_for(start_router, table_for(sim.url, retry={"attempts": 1}))
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, error_rate=1.0, error_status=503)
    with pytest.raises(openai.InternalServerError) as caught:
        await ask(client)
    assert caught.value.status_code == 503


async def test_max_attempts_bounds_the_whole_request(sim, start_router):
    table = table_for(sim.url, maxAttempts=2, retry={"attempts": 3, "backoff": {"base": "1ms", "max": "5ms"}})
    _, client = await client_for(start_router, table)
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, error_rate=1.0, error_status=500)
    with pytest.raises(openai.APIStatusError):
        await ask(client)
    total = sum(requests_to(sim, n) for n in ("primary", "claude", "gem"))
    assert total == 2


async def test_the_deadline_bounds_hanging_providers(sim, start_router):
    table = table_for(sim.url, timeout="5s", deadline="700ms")
    _, client = await client_for(start_router, table)
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, hang_rate=1.0)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        await ask(client)
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 1.5


async def test_first_token_timeout_falls_back_a_slow_stream(sim, start_router):
    table = table_for(sim.url, firstTokenTimeout="200ms")
    _, client = await client_for(start_router, table)
    sim.set_faults("primary", latency_ms=1500)
    headers, text = await ask(client, stream=True)
    assert headers["x-switchyard-provider"] == "claude"
    assert text


@pytest.mark.parametrize("model", ["primary/gpt-sim", "claude/claude-sim", "gem/gemini-sim"])
async def test_a_stream_cut_after_its_first_byte_ends_with_an_error_event(sim, start_router, model):
    _, client = await client_for(start_router, table_for(sim.url))
    sim.set_faults(model.split("/")[0], cut_rate=1.0)
    with pytest.raises(openai.APIError):
        await ask(client, stream=True, model=model)


async def test_a_bad_key_falls_back_and_never_leaks(sim, start_router, caplog):
    keys = {**KEYS, "primary.key": "sk-bad-0123456789abcdef"}
    router, client = await client_for(start_router, table_for(sim.url), keys)
    with caplog.at_level(logging.DEBUG):
        headers, _ = await ask(client)
    assert headers["x-switchyard-provider"] == "claude"
    assert "Unauthorized" in router.metrics.render().decode()
    for secret in [*KEYS.values(), "sk-bad-0123456789abcdef"]:
        assert secret not in caplog.text
        assert secret not in router.metrics.render().decode()


async def test_round_robin_spreads_and_several_keys_rotate(sim, start_router):
    table = table_for(sim.url, strategy="RoundRobin")
    table["providers"][0]["credentials"] = [{"name": "a", "key": "k1"}, {"name": "b", "key": "k2"}]
    keys = {**KEYS, "k1": "sk-key-one-aaaa1111", "k2": "sk-key-two-bbbb2222"}
    _, client = await client_for(start_router, table, keys)
    providers = [(await ask(client))[0]["x-switchyard-provider"] for _ in range(6)]
    assert providers == ["primary", "claude", "gem"] * 2
    by_key = sim.stats()["primary"]["keys"]
    assert by_key == {"1111": 1, "2222": 1}


async def test_a_rate_limited_route_tells_the_client_when_to_come_back(sim, start_router):
    table = table_for(sim.url, targets=[{"provider": "primary", "model": "gpt-sim"}], retry={"attempts": 1})
    _, client = await client_for(start_router, table)
    sim.set_faults("primary", error_rate=1.0, error_status=429, retry_after=7)
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as caught:
            await ask(client, stream=stream)
        headers = caught.value.response.headers
        # The provider's Retry-After rested the key: the route is ready again in just under 7 s.
        assert headers["retry-after"] == "7"
        assert 6000 < int(headers["retry-after-ms"]) <= 7000


async def test_no_retry_after_when_nothing_says_how_long(sim, start_router):
    table = table_for(sim.url, targets=[{"provider": "primary", "model": "gpt-sim"}], retry={"attempts": 1})
    _, client = await client_for(start_router, table)
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    with pytest.raises(openai.InternalServerError) as caught:
        await ask(client)
    assert "retry-after" not in caught.value.response.headers


async def test_the_providers_request_id_reaches_the_client(sim, start_router):
    """The SDKs expose x-request-id (`_request_id`): the provider's, for a support ticket."""
    _, client = await client_for(start_router, table_for(sim.url))
    answer = await client.chat.completions.create(model="primary/gpt-sim", messages=MESSAGES)
    assert re.fullmatch(r"req_\w{32}", answer._request_id)
    headers, _ = await ask(client, stream=True, model="claude/claude-sim")  # Anthropic says request-id
    assert re.fullmatch(r"req_011C\w{20}", headers["x-request-id"])
    headers, _ = await ask(client, stream=True, model="gem/gemini-sim")  # Gemini sends none
    assert "x-request-id" not in headers
