"""The Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) through the router to
every family on the simulator, with the official anthropic SDK as the client."""

from __future__ import annotations

import anthropic
import orjson
import pytest
from aiohttp import ClientSession

from .conftest import table_for

FAMILIES = ["primary/gpt-sim", "claude/claude-sim", "gem/gemini-sim"]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def messages(sim, start_router):
    router, url = await start_router(table_for(sim.url))
    client = anthropic.AsyncAnthropic(base_url=url, api_key="unused-by-sidecar", max_retries=0)
    yield router, client, url
    await client.close()


def ask(**extra):
    return {"max_tokens": 64, "messages": [{"role": "user", "content": "Say hello"}], **extra}


@pytest.mark.parametrize("model", FAMILIES)
async def test_messages_create_on_every_family(messages, model):
    router, client, _ = messages
    raw = await client.messages.with_raw_response.create(model=model, **ask())
    message = (await raw.parse())
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-switchyard-provider"] == model.split("/")[0]
    assert raw.headers["x-switchyard-cost-usd"]
    metrics = router.metrics.render().decode()
    assert 'switchyard_requests_total{outcome="ok",route="' in metrics
    tokens = [line for line in metrics.splitlines() if line.startswith("switchyard_tokens_total")]
    assert any(model.split("/")[0] in line for line in tokens)


@pytest.mark.parametrize("model", FAMILIES)
async def test_messages_stream_on_every_family(messages, model):
    _, client, _ = messages
    async with client.messages.stream(model=model, **ask()) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_start" in events and "content_block_stop" in events and "message_delta" in events
    assert final.content[0].type == "text" and final.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["primary/gpt-sim", "gem/gemini-sim"])
async def test_a_translated_stream_is_anthropics_event_sequence_exactly(messages, model):
    _, _, url = messages
    request = {"model": model, "stream": True, **ask()}
    async with ClientSession() as http, http.post(f"{url}/v1/messages", json=request) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        body = (await resp.read()).decode()
    names = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    deltas = names[4:-4]
    assert names[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert set(deltas) <= {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("stream", [False, True])
async def test_tools_on_every_family(messages, model, stream):
    _, client, _ = messages
    request = ask(tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    if stream:
        async with client.messages.stream(model=model, **request) as events:
            message = await events.get_final_message()
    else:
        message = await client.messages.create(model=model, **request)
    calls = [block for block in message.content if block.type == "tool_use"]
    assert [call.name for call in calls] == ["get_weather"]
    assert isinstance(calls[0].input, dict) and "city" in calls[0].input
    assert message.stop_reason == "tool_use"
    # The answer goes back as a tool_result, in the next turn.
    follow = await client.messages.create(
        model=model,
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"}]},
        ],
    )
    assert follow.content


async def test_to_anthropic_the_request_passes_through_intact(messages, sim):
    _, client, _ = messages
    conversation = [
        {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "They greet me.", "signature": "EqQBCkYIBxgCKkA"},
                {"type": "text", "text": "Hello"},
            ],
        },
        {"role": "user", "content": "And now?"},
    ]
    await client.messages.create(
        model="claude/claude-sim",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief", "cache_control": {"type": "ephemeral"}}],
        messages=conversation,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    sent = sim.last_request("claude")["body"]
    assert sent["model"] == "claude-sim"
    assert sent["messages"] == conversation
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}


async def test_to_other_families_it_is_translated(messages, sim):
    _, client, _ = messages
    await client.messages.create(
        model="primary/gpt-sim",
        system="Be brief",
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        **ask(),
    )
    sent = sim.last_request("primary")["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief"}
    assert sent["messages"][1]["role"] == "user"
    assert sent["stop"] == ["END"] and sent["user"] == "u-1" and sent["max_tokens"] == 64


@pytest.mark.parametrize("model", ["primary/gpt-sim", "gem/gemini-sim"])
async def test_what_has_no_counterpart_is_a_400_naming_it(messages, model):
    _, client, _ = messages
    search = {"type": "web_search_20250305", "name": "web_search"}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model=model, tools=[search], **ask())
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "tools[0]" in caught.value.message
    with pytest.raises(anthropic.BadRequestError, match="container"):
        await client.messages.create(model=model, **ask(), extra_body={"container": "c-1"})


async def test_a_failing_primary_falls_back_to_another_family(sim, start_router):
    """The route's primary (OpenAI-compatible) fails; the Messages request is served by Anthropic
    (passed through) or by Gemini (translated), and the client cannot tell."""
    for fallback in ("claude", "gem"):
        targets = [{"provider": "primary", "model": "gpt-sim"}]
        targets.append({"provider": "claude", "model": "claude-sim"} if fallback == "claude" else {"provider": "gem", "model": "gemini-sim"})
        router, url = await start_router(table_for(sim.url, targets=targets))
        sim.set_faults("primary", error_rate=1.0, error_status=503)
        async with anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as client:
            raw = await client.messages.with_raw_response.create(model="chat", **ask())
            assert (await raw.parse()).content[0].text
            assert raw.headers["x-switchyard-provider"] == fallback
            async with client.messages.stream(model="chat", **ask()) as stream:
                assert (await stream.get_final_message()).content[0].text
        metrics = router.metrics.render().decode()
        assert f'from_provider="primary",reason="Overloaded",route="chat",to_provider="{fallback}"' in metrics


async def test_errors_come_in_anthropics_shape(sim, start_router):
    _, url = await start_router(table_for(sim.url, targets=[{"provider": "primary", "model": "gpt-sim"}]))
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as client:
        sim.set_faults("primary", error_rate=1.0, error_status=400)
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(model="chat", **ask())
        assert caught.value.body["type"] == "error"
        assert caught.value.request_id and caught.value.request_id.startswith("req_")
        sim.set_faults("primary", error_rate=1.0, error_status=503)
        with pytest.raises(anthropic.InternalServerError) as caught:
            await client.messages.create(model="chat", **ask())
        assert caught.value.status_code == 529
        assert caught.value.body["error"]["type"] == "overloaded_error"
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.messages.create(model="nope", **ask())
        assert missing.value.body["error"]["type"] == "not_found_error"
        with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
            await client.messages.create(model="chat", max_tokens=0, messages=[{"role": "user", "content": "x"}])


async def test_a_stream_that_breaks_ends_with_an_error_event(sim, start_router):
    _, url = await start_router(table_for(sim.url, targets=[{"provider": "gem", "model": "gemini-sim"}]))
    sim.set_faults("gem", cut_rate=1.0)
    request = {"model": "chat", "stream": True, **ask()}
    async with ClientSession() as http, http.post(f"{url}/v1/messages", json=request) as resp:
        body = (await resp.read()).decode()
    if "event: message_start" in body:  # cut after the first byte reached the client
        last = body.strip().split("\n\n")[-1]
        assert last.startswith("event: error\n")
        assert orjson.loads(last.split("data: ", 1)[1])["type"] == "error"
    else:  # cut before it: a whole error response
        assert orjson.loads(body)["type"] == "error"


@pytest.mark.parametrize("model", FAMILIES)
async def test_count_tokens(messages, model):
    _, client, _ = messages
    raw = await client.messages.with_raw_response.count_tokens(
        model=model, messages=[{"role": "user", "content": "Say hello " * 50}]
    )
    assert (await raw.parse()).input_tokens > 50
    assert raw.headers["x-switchyard-token-count"] == "estimate"


async def test_the_caller_token_comes_as_x_api_key(sim):
    from aiohttp import web
    from switchyard_router.credentials import CredentialStore
    from switchyard_router.server import Router
    from switchyard_router.table import load_table

    from .conftest import KEYS

    token = "t" * 40
    router = Router(caller_tokens=[token])
    router.load(load_table(table_for(sim.url)), CredentialStore(KEYS))
    runner = router.runner()
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with anthropic.AsyncAnthropic(base_url=url, api_key=token, max_retries=0) as client:
            assert (await client.messages.create(model="chat", **ask())).content
        async with anthropic.AsyncAnthropic(base_url=url, api_key="w" * 40, max_retries=0) as client:
            with pytest.raises(anthropic.AuthenticationError) as caught:
                await client.messages.create(model="chat", **ask())
            assert caught.value.body["error"]["type"] == "authentication_error"
        chat = f"{url}/v1/chat/completions"  # elsewhere x-api-key is not a caller token
        async with ClientSession() as http, http.post(chat, headers={"x-api-key": token}, json={}) as resp:
            assert resp.status == 401
    finally:
        await runner.cleanup()


async def test_reasoning_reaches_each_family_in_its_terms_or_is_dropped_with_a_header(sim, start_router):
    """The table declares how gem's model takes reasoning; claude's model declares nothing."""
    table = table_for(sim.url)
    table["providers"][2]["models"][0]["reasoning"] = {"style": "GeminiBudget"}
    _, url = await start_router(table)
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as client:
        thinking = {"type": "enabled", "budget_tokens": 2000}
        raw = await client.messages.with_raw_response.create(model="gem/gemini-sim", thinking=thinking, **ask())
        assert "x-switchyard-reasoning" not in raw.headers
        config = sim.last_request("gem")["body"]["generationConfig"]
        assert config["thinkingConfig"] == {"thinkingBudget": 2048}  # budget 2000: effort low
    chat = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"}
    async with ClientSession() as http:
        async with http.post(f"{url}/v1/chat/completions", json={"model": "claude/claude-sim", **chat}) as resp:
            assert resp.status == 200
            assert resp.headers["x-switchyard-reasoning"].startswith("dropped: model claude-sim of claude")
        assert "thinking" not in sim.last_request("claude")["body"]
        request = {"model": "gem/gemini-sim", "stream": True, **chat}
        async with http.post(f"{url}/v1/chat/completions", json=request) as resp:
            assert "x-switchyard-reasoning" not in resp.headers
        assert sim.last_request("gem")["body"]["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}
        async with http.post(f"{url}/v1/chat/completions", json={"model": "primary/gpt-sim", **chat}) as resp:
            assert "x-switchyard-reasoning" not in resp.headers  # OpenAI's own field, passed on
        assert sim.last_request("primary")["body"]["reasoning_effort"] == "high"


@pytest.mark.parametrize("index", [0, 1, 2])
async def test_spend_counts_messages_like_chat_completions(sim, start_router, index):
    """Priced models: the cost header, the cost metric and the usage report count a Messages
    request (JSON and stream) as they count a chat completion."""
    table = table_for(sim.url)
    provider = table["providers"][index]
    provider["models"][0]["pricing"] = {"inputPerMillionTokens": "1", "outputPerMillionTokens": "2"}
    model = f"{provider['name']}/{provider['models'][0]['name']}"
    router, url = await start_router(table)
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as client:
        raw = await client.messages.with_raw_response.create(model=model, **ask())
        assert float(raw.headers["x-switchyard-cost-usd"]) > 0
        async with client.messages.stream(model=model, **ask()) as stream:
            final = await stream.get_final_message()
    report = router.ledger.snapshot(table_hash=None, advance=False).model_dump_json(by_alias=True)
    assert f'"{provider["name"]}"' in report
    metrics = router.metrics.render().decode()
    cost = [line for line in metrics.splitlines() if line.startswith("switchyard_cost_usd_total{")]
    assert cost and float(cost[0].rsplit(" ", 1)[1]) > 0
    assert final.usage.output_tokens > 0
