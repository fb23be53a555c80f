"""Chaos: thousands of mixed requests while providers fail at random. The client must not notice.

Faults: the primary answers 30% 5xx and hangs on 10%; the secondary allows short bursts and then
429s with Retry-After; the third is healthy. Then the primary fails outright (the breaker must open
at its threshold) and recovers (traffic must come back once the cooldown ends).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import aiohttp
import orjson
from switchyard_router.breaker import BreakerState

from .conftest import table_for

REQUESTS = 2000
CONCURRENCY = 32
DEADLINE = 5.0
MAX_ATTEMPTS = 5
THRESHOLD = 5
COOLDOWN = 1.0


async def one_request(http: aiohttp.ClientSession, url: str, stream: bool) -> tuple[bool, float, int, str]:
    body = {"model": "chat", "messages": [{"role": "user", "content": "chaos"}], "stream": stream}
    started = time.monotonic()
    async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
        raw = await resp.read()
        elapsed = time.monotonic() - started
        attempts = int(resp.headers.get("x-switchyard-attempts", "0"))
        provider = resp.headers.get("x-switchyard-provider", "-")
    if resp.status != 200:
        return False, elapsed, attempts, provider
    if stream:
        # A good stream ends with [DONE] and has no error event.
        ok = raw.rstrip().endswith(b"data: [DONE]") and b'"error"' not in raw
        return ok, elapsed, attempts, provider
    return bool(orjson.loads(raw)["choices"]), elapsed, attempts, provider


async def test_chaos(sim, start_router):
    table = table_for(
        sim.url,
        retry={"attempts": 2, "backoff": {"base": "10ms", "max": "100ms"}},
        timeout="1s",
        deadline=f"{DEADLINE}s",
        maxAttempts=MAX_ATTEMPTS,
    )
    table["circuitBreaker"] = {
        "consecutiveFailures": THRESHOLD,
        "cooldown": f"{COOLDOWN}s",
        "minimumRequests": 1000,
    }
    router, url = await start_router(table)
    primary_breaker = router.table.routes["chat"].targets[0].breaker
    rng = random.Random(7)
    outcomes: list[tuple[bool, float, int, str]] = []

    # Phase 1: random failures everywhere but the third provider.
    sim.set_faults("primary", error_rate=0.3, error_status=500, hang_rate=0.1)
    sim.set_faults("claude", rate_limit_burst=20, retry_after=1)
    queue: asyncio.Queue[bool] = asyncio.Queue()
    for _ in range(REQUESTS):
        queue.put_nowait(rng.random() < 0.5)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            while not queue.empty():
                outcomes.append(await one_request(http, url, queue.get_nowait()))

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        chaos_seconds = time.monotonic() - started

        failures = sum(1 for ok, *_ in outcomes if not ok)
        slowest = max(elapsed for _, elapsed, _, _ in outcomes)
        most_attempts = max(attempts for _, _, attempts, _ in outcomes)
        served = Counter(provider for *_, provider in outcomes)
        attempts_hist = Counter(attempts for _, _, attempts, _ in outcomes)

        # Phase 2: the primary fails outright; one request at a time to watch the threshold.
        sim.clear_faults()
        # Until the primary answers again: a success also clears its consecutive-failure count.
        for _ in range(100):
            if (await one_request(http, url, False))[3] == "primary":
                break
            await asyncio.sleep(0.05)
        assert primary_breaker.state is BreakerState.CLOSED
        sim.set_faults("primary", error_rate=1.0, error_status=500)
        before = sim.stats()["primary"]["requests"]
        for _ in range(THRESHOLD * 2):
            ok, *_ = await one_request(http, url, False)
            assert ok
        sent_until_open = sim.stats()["primary"]["requests"] - before
        opened = primary_breaker.state is BreakerState.OPEN

        # Phase 3: the fault clears; after the cooldown the primary gets traffic again.
        sim.clear_faults()
        cleared = time.monotonic()
        first_back = None
        recovery = []
        while time.monotonic() - cleared < COOLDOWN * 3:
            _, _, _, provider = await one_request(http, url, False)
            recovery.append(provider)
            if provider == "primary" and first_back is None:
                first_back = time.monotonic() - cleared
            if len(recovery) >= 5 and recovery[-5:] == ["primary"] * 5:
                break
            await asyncio.sleep(0.05)

    print(
        f"\nchaos: {REQUESTS} requests (half streamed), concurrency {CONCURRENCY}, {chaos_seconds:.1f}s"
        f"\n  client-visible failures: {failures}"
        f"\n  slowest request: {slowest * 1000:.0f} ms (deadline {DEADLINE * 1000:.0f} ms)"
        f"\n  most attempts for one request: {most_attempts} (maximum {MAX_ATTEMPTS}); histogram {dict(sorted(attempts_hist.items()))}"
        f"\n  served by: {dict(served)}"
        f"\n  breaker: opened={opened} after {sent_until_open} primary requests (threshold {THRESHOLD})"
        f"\n  recovery: first primary answer {first_back and first_back * 1000:.0f} ms after the fault cleared"
        f" (cooldown {COOLDOWN * 1000:.0f} ms); last five served by {recovery[-5:]}"
    )
    assert len(outcomes) == REQUESTS
    assert failures == 0
    assert slowest <= DEADLINE + 0.25  # the deadline, plus the client's own overhead
    assert most_attempts <= MAX_ATTEMPTS
    assert served["gem"] > 0 and served["primary"] > 0
    assert opened and sent_until_open == THRESHOLD
    assert first_back is not None and first_back >= COOLDOWN * 0.5
    assert recovery[-5:] == ["primary"] * 5
    assert primary_breaker.state is BreakerState.CLOSED
