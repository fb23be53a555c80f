"""The router's OpenAI-compatible API through every provider family, with the openai SDK."""

from __future__ import annotations

import asyncio
import base64
import copy
import struct

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from switchyard_router.credentials import CredentialStore
from switchyard_router.table import load_table

from .conftest import KEYS, table_for

FAMILIES = ["primary/gpt-sim", "claude/claude-sim", "gem/gemini-sim"]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.mark.parametrize("model", FAMILIES)
async def test_chat_json_through_each_family(gateway, model):
    _, client = gateway
    raw = await client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}],
        max_tokens=50,
    )
    completion = raw.parse()
    assert raw.headers["x-switchyard-provider"] == model.split("/")[0]
    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert message.role == "assistant"
    assert "hi there" in (message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


@pytest.mark.parametrize("model", FAMILIES)
async def test_chat_stream_with_usage_through_each_family(gateway, model):
    _, client = gateway
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert "stream please" in text
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("model", FAMILIES)
async def test_stream_without_include_usage_sends_no_usage_chunk(gateway, model):
    _, client = gateway
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "x"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)


@pytest.mark.parametrize("model", FAMILIES)
async def test_tool_calls_and_tool_results_through_each_family(gateway, model):
    _, client = gateway
    first = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert '"city"' in call.function.arguments
    second = await client.chat.completions.create(
        model=model,
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
        tools=[WEATHER_TOOL],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


@pytest.mark.parametrize("model", FAMILIES)
async def test_streamed_tool_calls_through_each_family(gateway, model):
    _, client = gateway
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    name, arguments, finish = "", "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += call.function.name or "" if call.function else ""
                arguments += call.function.arguments or "" if call.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert '"city"' in arguments
    assert finish == "tool_calls"


async def test_image_data_url_reaches_every_family(gateway):
    _, client = gateway
    pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    for model in FAMILIES:
        completion = await client.chat.completions.create(
            model=model,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this"},
                        {"type": "image_url", "image_url": {"url": pixel}},
                    ],
                }
            ],
        )
        assert completion.choices[0].message.content


async def test_a_pdf_reaches_every_family_in_its_own_form(gateway, sim):
    _, client = gateway
    pdf = "JVBERi0xLjQKJcOkw7zDtsOf"
    part = {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{pdf}", "filename": "q3.pdf"}}
    for model in FAMILIES:
        completion = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": [{"type": "text", "text": "Summarise"}, part]}]
        )
        assert "Summarise" in (completion.choices[0].message.content or "")
    claude = sim.last_request("claude")["body"]["messages"][0]["content"][1]
    assert claude == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
        "title": "q3.pdf",
    }
    gemini = sim.last_request("gem")["body"]["contents"][0]["parts"][1]
    assert gemini == {"inlineData": {"mimeType": "application/pdf", "data": pdf}}
    assert sim.last_request("primary")["body"]["messages"][0]["content"][1] == part


@pytest.mark.parametrize("model", ["primary/embed-sim", "gem/embed-sim"])
async def test_embeddings(gateway, model):
    _, client = gateway
    single = await client.embeddings.create(model=model, input="hello")
    assert len(single.data) == 1 and len(single.data[0].embedding) > 0
    batch = await client.embeddings.create(model=model, input=["a", "b", "c"])
    assert [d.index for d in batch.data] == [0, 1, 2]


@pytest.mark.parametrize("model", ["primary/embed-sim", "gem/embed-sim"])
async def test_embeddings_in_base64_are_what_openai_sends(gateway, model):
    """encoding_format base64: each vector a base64 string of little-endian float32s, from every
    family (Gemini only sends floats: the router encodes them)."""
    _, client = gateway
    url = str(client.base_url)
    async with aiohttp.ClientSession() as http:
        body = {"model": model, "input": ["a", "b"]}
        async with http.post(f"{url}embeddings", json=body) as resp:
            floats = (await resp.json())["data"]
        async with http.post(f"{url}embeddings", json={**body, "encoding_format": "base64"}) as resp:
            encoded = (await resp.json())["data"]
    for plain, packed in zip(floats, encoded, strict=True):
        assert isinstance(packed["embedding"], str)
        raw = base64.b64decode(packed["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert decoded == pytest.approx(plain["embedding"], rel=1e-6)


async def test_embeddings_on_anthropic_is_a_clear_400(gateway):
    _, client = gateway
    with pytest.raises(openai.BadRequestError, match="does not serve embeddings"):
        await client.embeddings.create(model="claude/claude-sim", input="hello")


async def test_models_lists_routes_and_pinned_models(gateway):
    _, client = gateway
    ids = [m.id async for m in client.models.list()]
    assert ids[0] == "chat"
    assert "claude/claude-sim" in ids and "gem/gemini-sim" in ids


async def test_one_model_is_retrieved_by_its_id_as_the_sdk_asks(gateway):
    _, client = gateway
    for name in ("chat", "claude/claude-sim", "primary/gpt-sim"):  # a route, or a declared model
        model = await client.models.retrieve(name)
        assert (model.id, model.object, model.owned_by) == (name, "model", "switchyard")
    for unknown in ("nope", "nobody/gpt-sim", "primary/gpt-anything"):  # undeclared: not allowAnyModel
        with pytest.raises(openai.NotFoundError) as caught:
            await client.models.retrieve(unknown)
        assert caught.value.code == "model_not_found"


async def test_unknown_model_is_a_404(gateway):
    _, client = gateway
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"


async def test_malformed_and_invalid_requests(sim, start_router):
    table = table_for(sim.url)
    table["server"] = {"maxBodyBytes": 2048}
    _, url = await start_router(table)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/v1/chat/completions", data=b"{not json") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["type"] == "invalid_request_error"
        async with http.post(f"{url}/v1/chat/completions", json=["a"]) as resp:
            assert resp.status == 400
        async with http.post(f"{url}/v1/chat/completions", json={"model": "chat"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["param"] == "messages"
        async with http.post(
            f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        ) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["param"] == "model"
        big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 5000}]}
        async with http.post(f"{url}/v1/chat/completions", json=big) as resp:
            assert resp.status == 413
            assert "2048" in (await resp.json())["error"]["message"]
        async with http.post(f"{url}/v1/embeddings", json={"model": "chat"}) as resp:
            assert resp.status == 400
        async with http.get(f"{url}/v1/nothing") as resp:
            assert resp.status == 404
            assert "/v1/nothing" in (await resp.json())["error"]["message"]
        async with http.get(f"{url}/v1/chat/completions") as resp:
            assert resp.status == 405
            assert (await resp.json())["error"]["type"] == "invalid_request_error"
        async with http.post(f"{url}/healthz") as resp:
            assert resp.status == 405
        async with http.head(f"{url}/readyz") as resp:
            assert resp.status == 200


async def test_health_readiness_and_metrics(sim, start_router):
    router, url = await start_router(table_for(sim.url))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{url}/readyz") as resp:
            assert resp.status == 200
            assert router.table is not None and router.table.digest in await resp.text()
        await http.post(
            f"{url}/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
        )
        async with http.get(f"{url}/metrics") as resp:
            text = await resp.text()
    assert 'switchyard_requests_total{outcome="ok",route="chat"} 1.0' in text
    assert "gen_ai_client_token_usage_bucket" in text
    assert f'switchyard_table_info{{hash="{router.table.digest}"}} 1.0' in text
    for secret in KEYS.values():
        assert secret not in text


async def test_not_ready_without_a_table():
    import aiohttp
    from aiohttp import web
    from switchyard_router.server import Router

    runner = Router(startup_wait=0.05).runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{runner.addresses[0][1]}") as client:
            ready = await client.get("/readyz")
            assert ready.status == 503 and await ready.text() == "not ready: no routing table loaded"
            resp = await client.post("/v1/chat/completions", json={"model": "chat", "messages": []})
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert (await client.get("/v1/models")).status == 200
    finally:
        await runner.cleanup()


async def test_gemini_key_never_travels_in_the_url(gateway, sim):
    _, client = gateway
    await client.chat.completions.create(model="gem/gemini-sim", messages=[{"role": "user", "content": "x"}])
    await client.embeddings.create(model="gem/embed-sim", input="x")
    stats = sim.stats()
    assert stats["gem"]["key_in_url"] == 0
    assert stats["gem"]["requests"] >= 2


async def test_spend_per_request_adds_up_in_usage_and_metrics(sim, start_router):
    from decimal import Decimal

    table = table_for(sim.url)
    table["providers"][0]["models"] = [
        {"name": "gpt-sim", "pricing": {"inputPerMillionTokens": "0.15", "outputPerMillionTokens": "0.60"}}
    ]
    router, url = await start_router(table)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    seen = Decimal(0)
    for i in range(5):
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": f"question number {i}"}]
        )
        usage = raw.parse().usage
        expected = (
            Decimal(usage.prompt_tokens) * Decimal("0.15")
            + Decimal(usage.completion_tokens) * Decimal("0.60")
        ) / 1_000_000
        assert Decimal(raw.headers["x-switchyard-cost-usd"]) == expected
        seen += expected
    stream = await client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "s"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.usage:
            seen += (
                Decimal(chunk.usage.prompt_tokens) * Decimal("0.15")
                + Decimal(chunk.usage.completion_tokens) * Decimal("0.60")
            ) / 1_000_000
    unpriced = await client.chat.completions.with_raw_response.create(
        model="claude/claude-sim", messages=[{"role": "user", "content": "x"}]
    )
    assert unpriced.headers["x-switchyard-cost-usd"] == "unpriced"
    async with aiohttp.ClientSession() as http, http.get(f"{url}/usage") as resp:
        report = await resp.json()
    counters = {c["provider"]: c for c in report["counters"]}
    assert Decimal(counters["primary"]["costUSD"]) == seen
    assert counters["primary"]["requests"] == 6
    assert counters["claude"]["unpricedRequests"] == 1
    metrics = router.metrics.render().decode()
    assert 'switchyard_unpriced_requests_total{model="claude-sim",provider="claude"} 1.0' in metrics
    assert 'switchyard_cost_usd_total{model="gpt-sim",provider="primary",route="chat"}' in metrics


async def test_a_reload_that_moves_a_provider_closes_its_old_session_after_the_old_deadline(sim, start_router):
    table = table_for(sim.url, deadline="300ms")
    router, url = await start_router(table)
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        for model in ("primary/gpt-sim", "claude/claude-sim"):
            await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
        sessions = dict(router.upstreams._sessions)
        moved = copy.deepcopy(table)
        moved["providers"][0]["baseURL"] = f"{sim.url}/moved/v1"
        router.load(load_table(moved), CredentialStore(KEYS))
        old_primary = sessions[("primary", f"{sim.url}/primary/v1")].session
        assert not old_primary.closed  # requests the old table started may still be using it
        await asyncio.sleep(0.5)
        assert old_primary.closed
        assert not sessions[("claude", f"{sim.url}/claude")].session.closed  # still in the table
        answer = await client.chat.completions.with_raw_response.create(
            model="primary/gpt-sim", messages=[{"role": "user", "content": "x"}]
        )
        assert answer.headers["x-switchyard-provider"] == "primary"
    assert sim.stats()["moved"]["requests"] == 1


def test_a_reload_before_the_loop_runs_has_no_session_to_close():
    from switchyard_router.server import Router

    router = Router()
    first = table_for("http://127.0.0.1:9")
    router.load(load_table(first), CredentialStore(KEYS))
    moved = copy.deepcopy(first)
    moved["providers"][0]["baseURL"] = "http://127.0.0.1:9/moved/v1"
    assert router.load(load_table(moved), CredentialStore(KEYS)) is not None
    assert router.upstreams._sessions == {}
