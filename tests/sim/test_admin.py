"""The admin API, the Python API, statistics, and routing edge cases."""

from __future__ import annotations

import orjson
import pytest
from switchyard_sim import Faults, Simulator

from .conftest import ANTHROPIC_KEY, CHAT, GEMINI_KEY, KEY, anthropic_headers, gemini_headers, openai_headers


async def test_put_get_patch_delete_faults(sim: Simulator, http) -> None:
    url = f"{sim.url}/_sim/faults/primary"
    async with http.put(url, json={"error_rate": 0.25, "error_status": 503, "retry_after": 2}) as r:
        assert r.status == 200
        body = await r.json()
    assert body == {
        "latency_ms": 0.0,
        "error_rate": 0.25,
        "error_status": 503,
        "retry_after": 2.0,
        "hang_rate": 0.0,
        "reset_rate": 0.0,
        "cut_rate": 0.0,
        "context_window": None,
        "rate_limit_burst": None,
        "chunk_delay_ms": 0.0,
    }
    assert sim.get_faults("primary") == Faults(error_rate=0.25, error_status=503, retry_after=2)
    async with http.patch(url, json={"latency_ms": 5}) as r:
        assert (await r.json())["error_rate"] == 0.25  # PATCH keeps what it does not name
    async with http.put(url, json={"latency_ms": 5}) as r:
        assert (await r.json())["error_rate"] == 0.0  # PUT replaces
    async with http.get(url) as r:
        assert (await r.json())["latency_ms"] == 5.0
    async with http.get(f"{sim.url}/_sim/faults") as r:
        assert list(await r.json()) == ["primary"]
    async with http.delete(url) as r:
        assert r.status == 200
    async with http.get(url) as r:
        assert r.status == 404
    assert sim.get_faults("primary") is None


async def test_delete_all_faults_and_reset(sim: Simulator, http) -> None:
    sim.set_faults("a", latency_ms=1)
    sim.set_faults("b", latency_ms=1)
    async with http.delete(f"{sim.url}/_sim/faults") as r:
        assert r.status == 200
    assert sim.all_faults() == {}
    sim.set_faults("a", error_rate=1.0)
    async with http.post(sim.base_url("a") + "/chat/completions", json=CHAT, headers=openai_headers()) as r:
        assert r.status == 500
    async with http.post(f"{sim.url}/_sim/reset") as r:
        assert r.status == 200
    assert sim.stats() == {} and sim.all_faults() == {} and sim.last_request("a") is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"error_rate": 2}',
        b'{"error_rate": true}',
        b'{"nope": 1}',
        b'{"error_status": 200}',
        b'{"context_window": 1.5}',
        b'{"latency_ms": null}',
        b'{"latency_ms": -1}',
        b'{"retry_after": -1}',
        b'{"context_window": 0}',
        b'{"rate_limit_burst": -1}',
        b'{"error_rate": "high"}',
        b"[1, 2]",
        b"not json",
    ],
)
async def test_invalid_faults_are_refused(sim: Simulator, http, body: bytes) -> None:
    async with http.put(f"{sim.url}/_sim/faults/primary", data=body) as r:
        assert r.status == 400
        assert "error" in await r.json()
    assert sim.get_faults("primary") is None


async def test_stats_by_status_family_stream_and_key(sim: Simulator, http) -> None:
    keys = ["sk-live-one-1111", "sk-live-two-2222", "short"]
    for key in keys:
        async with http.post(
            sim.base_url("mix") + "/chat/completions", json=CHAT, headers=openai_headers(key)
        ):
            pass
    async with http.post(
        sim.base_url("mix") + "/chat/completions", json={**CHAT, "stream": True}, headers=openai_headers()
    ) as r:
        await r.read()
    async with http.post(
        sim.url + "/mix/v1/messages",
        json={"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        headers=anthropic_headers(),
    ):
        pass
    async with http.post(
        sim.url + f"/mix/v1beta/models/g:generateContent?key={GEMINI_KEY}",
        json={"contents": [{"parts": [{"text": "x"}]}]},
    ):
        pass
    async with http.post(sim.base_url("mix") + "/chat/completions", json=CHAT):  # no key at all
        pass
    async with http.get(f"{sim.url}/_sim/stats") as r:
        raw = await r.read()
    stats = orjson.loads(raw)["mix"]
    assert stats == {
        "requests": 7,
        "status": {"200": 6, "401": 1},
        "families": {"openai": 5, "anthropic": 1, "gemini": 1},
        "streams": 1,
        "key_in_url": 1,
        "keys": {"1111": 1, "2222": 1, "****": 1, "abcd": 1, "wxyz": 1, "9876": 1},
        "models": {"gpt-sim": 4, "c": 1, "g": 1},
    }
    for key in [*keys, KEY, ANTHROPIC_KEY, GEMINI_KEY]:
        assert key.encode() not in raw  # never a whole key
    async with http.get(f"{sim.url}/_sim/stats/mix") as r:
        assert await r.json() == stats
    async with http.get(f"{sim.url}/_sim/stats/nobody") as r:
        assert (await r.json())["requests"] == 0


async def test_last_request_hides_keys(sim: Simulator, http) -> None:
    async with http.post(
        sim.url + "/claude/v1/messages",
        json={"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        headers={**anthropic_headers(), "Authorization": "Bearer also-secret"},
    ):
        pass
    recorded = sim.last_request("claude")
    assert recorded is not None
    assert recorded["family"] == "anthropic" and recorded["path"] == "/claude/v1/messages"
    assert recorded["body"]["max_tokens"] == 5
    assert recorded["headers"]["anthropic-version"] == "2023-06-01"
    assert "x-api-key" not in recorded["headers"] and "authorization" not in recorded["headers"]
    assert ANTHROPIC_KEY not in str(recorded) and "also-secret" not in str(recorded)


async def test_health_and_unknown_paths(sim: Simulator, http) -> None:
    async with http.get(f"{sim.url}/_sim/health") as r:
        assert await r.json() == {"status": "ok"}
    for method, path in [
        ("GET", "/p/v2/nothing"),
        ("POST", "/p/v1/unknown"),
        ("DELETE", "/p/v1/models"),
        ("POST", "/p/v1beta/models/m:noSuchAction"),
    ]:
        async with http.request(method, sim.url + path, headers=openai_headers()) as r:
            assert r.status == 404
    assert sim.stats() == {}  # unknown endpoints are not counted as provider traffic


async def test_bad_json_bodies_are_400_in_each_family(sim: Simulator, http) -> None:
    cases = [
        ("/p/v1/chat/completions", openai_headers(), lambda e: e["error"]["type"] == "invalid_request_error"),
        ("/p/v1/messages", anthropic_headers(), lambda e: e["error"]["type"] == "invalid_request_error"),
        (
            "/p/v1beta/models/m:generateContent",
            gemini_headers(),
            lambda e: e["error"]["status"] == "INVALID_ARGUMENT",
        ),
    ]
    for path, headers, check in cases:
        for data in (b"{not json", b"[1]"):
            async with http.post(sim.url + path, data=data, headers=headers) as r:
                assert r.status == 400
                assert check(await r.json())


async def test_models_list_is_chosen_by_client_headers(sim: Simulator, http) -> None:
    async with http.get(sim.url + "/p/v1/models", headers=openai_headers()) as r:
        assert (await r.json())["object"] == "list"
    async with http.get(sim.url + "/p/v1/models", headers=anthropic_headers()) as r:
        assert (await r.json())["has_more"] is False
    async with http.get(sim.url + "/p/v1/models", headers=gemini_headers()) as r:
        assert "models" in await r.json()
    async with http.get(sim.url + "/p/v1beta/models/gemini-2.0-flash", headers=gemini_headers()) as r:
        assert (await r.json())["name"] == "models/gemini-2.0-flash"
    async with http.get(sim.url + "/p/v1/models", headers={"x-api-key": "sk-ant-00001111"}) as r:
        assert r.status == 400  # Anthropic insists on anthropic-version


async def test_python_api(sim: Simulator) -> None:
    assert sim.base_url("x") == f"{sim.url}/x/v1"
    assert sim.base_url("x", "anthropic") == sim.base_url("x", "gemini") == f"{sim.url}/x"
    with pytest.raises(ValueError):
        sim.base_url("x", "cohere")
    with pytest.raises(RuntimeError):
        await sim.start()
    faults = sim.set_faults("p", Faults(latency_ms=3), error_rate=0.5)
    assert faults == Faults(latency_ms=3, error_rate=0.5)
    assert sim.set_faults("p", Faults(cut_rate=1.0)) == Faults(cut_rate=1.0)
    assert sim.update_faults("p", hang_rate=0.5) == Faults(cut_rate=1.0, hang_rate=0.5)
    assert sim.update_faults("q", hang_rate=0.5) == Faults(hang_rate=0.5)
    assert not Faults().is_active and Faults(latency_ms=1).is_active
    with pytest.raises(ValueError):
        sim.set_faults("p", error_rate=-0.1)
    with pytest.raises(ValueError):
        sim.set_faults("p", unknown=1)
    sim.clear_faults("p")
    assert sim.all_faults() == {"q": Faults(hang_rate=0.5)}
    sim.clear_faults()
    assert sim.all_faults() == {}
    assert sim.stats("nobody")["requests"] == 0
    assert sim.last_request("nobody") is None


def test_one_simulator_restarts_across_event_loops() -> None:
    import asyncio

    import aiohttp

    sim = Simulator()

    async def once() -> int:
        await sim.start()
        try:
            sim.set_faults("p", hang_rate=1.0)
            async with aiohttp.ClientSession() as http:
                try:
                    async with http.post(
                        sim.base_url("p") + "/chat/completions",
                        json=CHAT,
                        headers=openai_headers(),
                        timeout=aiohttp.ClientTimeout(total=0.1),
                    ):
                        pass
                except TimeoutError:
                    pass
            return int(sim.stats("p")["status"]["hang"])
        finally:
            await sim.stop()

    assert asyncio.run(once()) == 1
    assert asyncio.run(once()) == 2  # a second loop: counters kept, nothing bound to the first
