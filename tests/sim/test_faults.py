"""Fault injection on real loopback connections: hangs, resets, cuts, latency, bursts, dice."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from switchyard_router import clock
from switchyard_sim import Simulator

from .conftest import CHAT, KEY, anthropic_headers, gemini_headers, openai_headers

GEMINI_BODY = {"contents": [{"parts": [{"text": "hello"}]}]}
ANTHROPIC_BODY = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}


def chat_url(sim: Simulator, name: str = "primary") -> str:
    return sim.base_url(name) + "/chat/completions"


async def post_status(http: aiohttp.ClientSession, url: str, body: object, headers: dict[str, str]) -> int:
    async with http.post(url, json=body, headers=headers) as response:
        await response.read()
        return response.status


async def test_hang_holds_the_request_until_the_client_gives_up(sim: Simulator, http) -> None:
    sim.set_faults("primary", hang_rate=1.0)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            chat_url(sim), json=CHAT, headers=openai_headers(), timeout=aiohttp.ClientTimeout(total=0.3)
        ):
            pass
    assert 0.3 <= time.monotonic() - started < 1.0
    assert sim.stats("primary")["status"] == {"hang": 1}


async def test_sdk_timeout_on_a_hang(sim: Simulator) -> None:
    sim.set_faults("primary", hang_rate=1.0)
    client = AsyncOpenAI(base_url=sim.base_url("primary"), api_key=KEY, max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


async def test_stop_ends_hung_requests_at_once(http) -> None:
    sim = Simulator()
    await sim.start()
    sim.set_faults("primary", hang_rate=1.0)

    async def call() -> None:
        async with http.post(chat_url(sim), json=CHAT, headers=openai_headers()) as response:
            await response.read()

    task = asyncio.create_task(call())
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await sim.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(aiohttp.ClientError):
        await task
    await sim.stop()  # stopping twice is harmless


@pytest.mark.parametrize(
    ("url_path", "body", "headers"),
    [
        ("/primary/v1/chat/completions", CHAT, openai_headers()),
        ("/claude/v1/messages", ANTHROPIC_BODY, anthropic_headers()),
        ("/gem/v1beta/models/m:generateContent", GEMINI_BODY, gemini_headers()),
    ],
)
async def test_reset_drops_the_connection(sim: Simulator, http, url_path, body, headers) -> None:
    name = url_path.split("/")[1]
    sim.set_faults(name, reset_rate=1.0)
    with pytest.raises(aiohttp.ClientOSError) as caught:  # ECONNRESET: a real RST, not a clean close
        async with http.post(sim.url + url_path, json=body, headers=headers) as response:
            await response.read()
    assert caught.value.errno == 104 or "reset" in str(caught.value).lower()
    assert sim.stats(name)["status"] == {"reset": 1}


async def test_sdk_sees_a_reset_as_a_connection_error(sim: Simulator) -> None:
    sim.set_faults("primary", reset_rate=1.0)
    client = AsyncOpenAI(base_url=sim.base_url("primary"), api_key=KEY, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    ("url_path", "body", "headers", "terminator"),
    [
        ("/primary/v1/chat/completions", {**CHAT, "stream": True}, openai_headers(), b"data: [DONE]"),
        ("/claude/v1/messages", {**ANTHROPIC_BODY, "stream": True}, anthropic_headers(), b"message_stop"),
        ("/gem/v1beta/models/m:streamGenerateContent?alt=sse", GEMINI_BODY, gemini_headers(), b"STOP"),
    ],
)
async def test_cut_stream_sends_a_little_then_aborts(sim, http, url_path, body, headers, terminator) -> None:
    name = url_path.split("/")[1]
    sim.set_faults(name, cut_rate=1.0)
    received = b""
    async with http.post(sim.url + url_path, json=body, headers=headers) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in response.content.iter_any():
                received += chunk
    assert received.count(b"data: ") == 2  # two whole events arrived before the cut
    assert terminator not in received
    stats = sim.stats(name)
    assert stats["status"] == {"cut": 1} and stats["streams"] == 1


async def test_cut_stream_is_an_error_for_the_sdk(sim: Simulator) -> None:
    sim.set_faults("primary", cut_rate=1.0)
    client = AsyncOpenAI(base_url=sim.base_url("primary"), api_key=KEY, max_retries=0)
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


async def test_cut_json_body_stops_mid_body(sim: Simulator, http) -> None:
    sim.set_faults("primary", cut_rate=1.0)
    async with http.post(chat_url(sim), json=CHAT, headers=openai_headers()) as response:
        assert response.status == 200
        length = int(response.headers["Content-Length"])
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert length > 100
    assert sim.stats("primary")["status"] == {"cut": 1}


async def test_latency_comes_before_the_first_byte(sim: Simulator, http) -> None:
    sim.set_faults("primary", latency_ms=200)
    started = time.monotonic()
    assert await post_status(http, chat_url(sim), CHAT, openai_headers()) == 200
    assert 0.2 <= time.monotonic() - started < 0.6
    sim.clear_faults("primary")
    started = time.monotonic()
    assert await post_status(http, chat_url(sim), CHAT, openai_headers()) == 200
    assert time.monotonic() - started < 0.1


async def test_latency_also_delays_errors(sim: Simulator, http) -> None:
    sim.set_faults("primary", latency_ms=150, error_rate=1.0, error_status=503)
    started = time.monotonic()
    assert await post_status(http, chat_url(sim), CHAT, openai_headers()) == 503
    assert time.monotonic() - started >= 0.15


async def test_chunk_delay_paces_a_stream(sim: Simulator, http) -> None:
    sim.set_faults("primary", chunk_delay_ms=20)
    started = time.monotonic()
    async with http.post(chat_url(sim), json={**CHAT, "stream": True}, headers=openai_headers()) as response:
        frames = (await response.read()).count(b"\n\n")
    assert time.monotonic() - started >= (frames - 1) * 0.02


async def test_rate_limit_burst_per_second(sim: Simulator, http) -> None:
    manual = clock.ManualClock(datetime.fromtimestamp(1_000_000.25, UTC))
    with clock.use(manual):
        await _burst_per_second(sim, http, manual)


async def _burst_per_second(sim: Simulator, http, manual: clock.ManualClock) -> None:
    sim.set_faults("primary", rate_limit_burst=2, retry_after=3)
    statuses = []
    for _ in range(4):
        async with http.post(chat_url(sim), json=CHAT, headers=openai_headers()) as response:
            statuses.append(response.status)
            if response.status == 429:
                assert response.headers["Retry-After"] == "3"
                assert (await response.json())["error"]["code"] == "rate_limit_exceeded"
    assert statuses == [200, 200, 429, 429]
    manual.advance(1.0)  # the next second starts a new window
    assert await post_status(http, chat_url(sim), CHAT, openai_headers()) == 200
    assert sim.stats("primary")["status"] == {"200": 3, "429": 2}


@pytest.fixture
def mid_second():
    with clock.use(clock.ManualClock(datetime.fromtimestamp(5.5, UTC))):
        yield


@pytest.mark.usefixtures("mid_second")
async def test_rate_limit_burst_default_retry_after_per_family(sim, http) -> None:
    sim.set_faults("claude", rate_limit_burst=0)
    async with http.post(
        sim.url + "/claude/v1/messages", json=ANTHROPIC_BODY, headers=anthropic_headers()
    ) as r:
        assert r.status == 429 and r.headers["retry-after"] == "1"
        assert (await r.json())["error"]["type"] == "rate_limit_error"
    sim.set_faults("gem", rate_limit_burst=0)
    url = sim.url + "/gem/v1beta/models/m:generateContent"
    async with http.post(url, json=GEMINI_BODY, headers=gemini_headers()) as r:
        assert r.status == 429
        details = (await r.json())["error"]["details"]
        assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"} in details


async def outcomes(sim: Simulator, http: aiohttp.ClientSession, count: int) -> list[int]:
    return [await post_status(http, chat_url(sim), CHAT, openai_headers()) for _ in range(count)]


async def test_error_rate_is_seeded_and_repeatable(sim: Simulator, http) -> None:
    sim.set_faults("primary", error_rate=0.5, error_status=502)
    first = await outcomes(sim, http, 24)
    assert set(first) == {200, 502}
    sim.set_faults("primary", error_rate=0.5, error_status=502)  # setting faults reseeds
    assert await outcomes(sim, http, 24) == first
    async with Simulator(seed=7) as other:
        other.set_faults("primary", error_rate=0.5, error_status=502)
        assert await outcomes(other, http, 24) != first


async def test_retry_after_on_other_errors_when_set(sim: Simulator, http) -> None:
    sim.set_faults("primary", error_rate=1.0, error_status=503, retry_after=1.5)
    async with http.post(chat_url(sim), json=CHAT, headers=openai_headers()) as response:
        assert response.status == 503 and response.headers["Retry-After"] == "1.5"
        assert (await response.json())["error"]["code"] == "server_is_overloaded"


async def test_faults_are_per_provider(sim: Simulator, http) -> None:
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    assert await post_status(http, chat_url(sim, "primary"), CHAT, openai_headers()) == 500
    assert await post_status(http, chat_url(sim, "backup"), CHAT, openai_headers()) == 200


async def test_faults_apply_before_auth_only_for_network_faults(sim: Simulator, http) -> None:
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    # A refused key is refused first: the error dice only roll for authenticated requests.
    assert await post_status(http, chat_url(sim), CHAT, openai_headers("sk-bad-key-00000000")) == 401
    assert await post_status(http, chat_url(sim), CHAT, {}) == 401


async def test_unusual_error_statuses_keep_each_family_shape(sim: Simulator, http) -> None:
    for name in ("primary", "claude", "gem"):
        sim.set_faults(name, error_rate=1.0, error_status=418)
    async with http.post(chat_url(sim), json=CHAT, headers=openai_headers()) as r:
        assert r.status == 418
        assert (await r.json())["error"]["type"] == "invalid_request_error"
    async with http.post(
        sim.url + "/claude/v1/messages", json=ANTHROPIC_BODY, headers=anthropic_headers()
    ) as r:
        assert (await r.json())["error"]["type"] == "invalid_request_error"
    async with http.post(
        sim.url + "/gem/v1beta/models/m:generateContent", json=GEMINI_BODY, headers=gemini_headers()
    ) as r:
        assert (await r.json())["error"]["status"] == "FAILED_PRECONDITION"
    for name, status in (("primary", 599), ("claude", 599), ("gem", 529)):
        sim.set_faults(name, error_rate=1.0, error_status=status)
    async with http.post(chat_url(sim), json=CHAT, headers=openai_headers()) as r:
        assert (await r.json())["error"]["type"] == "server_error"
    async with http.post(
        sim.url + "/claude/v1/messages", json=ANTHROPIC_BODY, headers=anthropic_headers()
    ) as r:
        assert (await r.json())["error"]["type"] == "api_error"
    async with http.post(
        sim.url + "/gem/v1beta/models/m:generateContent", json=GEMINI_BODY, headers=gemini_headers()
    ) as r:
        assert (await r.json())["error"]["status"] == "UNAVAILABLE"
