"""The Responses API (`client.responses.create`) through every provider family, with the
official openai SDK parsing what the router sends: JSON, typed stream events, function tools
and structured output, usage, metering, and a fallback across families."""

from __future__ import annotations

import openai
import pydantic
import pytest
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage

from .conftest import table_for
from .test_router_api import FAMILIES

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Contact(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


@pytest.mark.parametrize("model", FAMILIES)
async def test_json_response_through_each_family(gateway, model):
    router, client = gateway
    raw = await client.responses.with_raw_response.create(
        model=model, instructions="Be brief.", input="hi there", max_output_tokens=50
    )
    response = raw.parse()
    assert raw.headers["x-switchyard-provider"] == model.split("/")[0]
    assert raw.headers["x-switchyard-cost-usd"]
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_") and response.store is False
    assert "hi there" in response.output_text
    assert isinstance(response.output[0], ResponseOutputMessage)
    assert response.usage is not None and response.usage.input_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    # Counted like a chat completion: the request, and the spend on the target.
    metrics = router.metrics.render().decode()
    route = raw.headers["x-switchyard-route"]
    assert f'switchyard_requests_total{{outcome="ok",route="{route}"}} 1.0' in metrics
    assert "switchyard_cost_usd_total" in metrics or "switchyard_spend" in metrics


@pytest.mark.parametrize("model", FAMILIES)
async def test_instructions_reach_each_family_as_the_system_prompt(gateway, model, sim):
    _, client = gateway
    await client.responses.create(model=model, instructions="Answer in French.", input="hello")
    sent = sim.last_request(model.split("/")[0])["body"]
    assert "Answer in French." in str(sent)


@pytest.mark.parametrize("model", FAMILIES)
async def test_stream_events_through_each_family(gateway, model):
    _, client = gateway
    stream = await client.responses.create(model=model, input="stream please", stream=True)
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert kind in kinds
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert "stream please" in text
    final = events[-1].response
    assert final.output_text == text
    assert final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", FAMILIES)
async def test_stream_helper_gives_the_final_response(gateway, model):
    _, client = gateway
    async with client.responses.stream(model=model, input="stream please") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert "stream please" in final.output_text


@pytest.mark.parametrize("model", FAMILIES)
async def test_function_tool_round_trip_through_each_family(gateway, model):
    _, client = gateway
    first = await client.responses.create(
        model=model, input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    calls = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
    assert calls and calls[0].name == "get_weather"
    assert "city" in calls[0].arguments
    second = await client.responses.create(
        model=model,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": "get_weather",
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp": 21}'},
        ],
        tools=[WEATHER],
    )
    assert second.status == "completed" and second.output_text


@pytest.mark.parametrize("model", FAMILIES)
async def test_streamed_function_call_arguments(gateway, model):
    _, client = gateway
    stream = await client.responses.create(
        model=model,
        input="Weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        stream=True,
    )
    events = [event async for event in stream]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done and done[0].arguments == deltas and "city" in deltas
    final = events[-1].response
    assert isinstance(final.output[-1], ResponseFunctionToolCall)
    assert final.output[-1].arguments == deltas


@pytest.mark.parametrize("model", FAMILIES)
async def test_structured_output_parses_through_each_family(gateway, model):
    _, client = gateway
    response = await client.responses.parse(model=model, input="Who is Ada?", text_format=Contact)
    assert isinstance(response.output_parsed, Contact)


@pytest.mark.parametrize("model", FAMILIES)
async def test_images_and_files_reach_each_family(gateway, model, sim):
    _, client = gateway
    pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
    pdf = "data:application/pdf;base64,JVBERi0xLjQKJSVFT0YK"
    response = await client.responses.create(
        model=model,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is in these?"},
                    {"type": "input_image", "image_url": pixel},
                    {"type": "input_file", "filename": "a.pdf", "file_data": pdf},
                ],
            }
        ],
    )
    assert response.status == "completed"
    sent = str(sim.last_request(model.split("/")[0])["body"])
    assert "iVBORw0KGgo" in sent and "JVBERi0xLjQK" in sent


async def test_fallback_from_a_failing_primary_of_another_family(sim, start_router):
    _, url = await start_router(table_for(sim.url))
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    raw = await client.responses.with_raw_response.create(model="chat", input="hello")
    assert raw.headers["x-switchyard-provider"] == "claude"
    assert "hello" in raw.parse().output_text
    stream = await client.responses.create(model="chat", input="hello", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.completed"
    await client.close()


async def test_a_stream_broken_after_its_first_byte_ends_with_response_failed(sim, start_router):
    table = table_for(sim.url, targets=[{"provider": "primary", "model": "gpt-sim"}])
    _, url = await start_router(table)
    sim.set_faults("primary", cut_rate=1.0)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    stream = await client.responses.create(model="chat", input="a long answer " * 40, stream=True)
    events = [event async for event in stream]
    # OpenAI's own shape: an `error` event, then the response failed (the SDK yields both).
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert "primary" in events[-2].message
    assert events[-1].response.status == "failed" and events[-1].response.error is not None
    await client.close()


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
        ),
        ({"text": {"format": {"type": "yaml"}}}, "text.format"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
async def test_what_the_router_cannot_serve_is_a_400_naming_the_field(gateway, extra, param):
    _, client = gateway
    body = {"input": "hi", **extra}  # sent as the JSON body, past the SDK's own checks
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="chat", extra_body=body)
    assert caught.value.param == param
    assert param.split("[")[0].split(".")[0] in caught.value.message


async def test_kept_responses_are_not_claimed(gateway):
    _, client = gateway
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve("resp_123")
    assert "keeps no responses" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete("resp_123")


def openai_table(sim_url: str, *targets: str) -> dict:
    """The test table plus a provider of type `openai` (the one Responses requests pass through to)."""
    table = table_for(sim_url, targets=[{"provider": p, "model": MODELS[p]} for p in targets])
    table["providers"].append(
        {
            "name": "oai",
            "type": "openai",
            "baseURL": f"{sim_url}/oai/v1",
            "credentials": [{"name": "main", "key": "primary.key"}],
            "models": [{"name": "gpt-4o-mini"}],
        }
    )
    return table


MODELS = {"oai": "gpt-4o-mini", "claude": "claude-sim", "gem": "gemini-sim", "primary": "gpt-sim"}


async def test_to_openai_the_request_and_answer_pass_through(sim, start_router):
    router, url = await start_router(openai_table(sim.url, "oai", "claude"))
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    raw = await client.responses.with_raw_response.create(
        model="chat", input="hello", previous_response_id="resp_earlier", store=True, metadata={"k": "v"}
    )
    response = raw.parse()
    sent = sim.last_request("oai")
    assert sent["path"].endswith("/v1/responses")
    assert sent["body"]["previous_response_id"] == "resp_earlier" and sent["body"]["store"] is True
    assert response.previous_response_id == "resp_earlier" and response.store is True  # OpenAI's answer
    assert raw.headers["x-switchyard-provider"] == "oai" and raw.headers["x-switchyard-cost-usd"]
    stream = await client.responses.create(model="chat", input="stream me", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.completed" and "stream me" in events[-1].response.output_text
    await client.close()
    spent = router.ledger.snapshot(table_hash=None, advance=False)
    assert "oai" in spent.model_dump_json()


async def test_previous_response_id_falls_back_to_a_400_from_another_family(sim, start_router):
    _, url = await start_router(openai_table(sim.url, "oai", "claude"))
    sim.set_faults("oai", error_rate=1.0, error_status=500)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.responses.create(model="chat", input="hello", previous_response_id="resp_1")
    assert "previous_response_id" in caught.value.message and "claude" in caught.value.message
    # Without it, the same route falls back to Claude and answers.
    response = await client.responses.create(model="chat", input="hello", store=True)
    assert "hello" in response.output_text and response.store is False
    await client.close()


async def test_a_route_without_openai_refuses_previous_response_id_up_front(sim, start_router):
    _, url = await start_router(openai_table(sim.url, "claude", "gem"))
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="chat", input="hello", previous_response_id="resp_1")
    assert caught.value.param == "previous_response_id"
    assert sim.last_request("claude") is None  # nothing was sent
    await client.close()


async def test_openai_and_the_translation_stream_alike_for_the_sdk(sim, start_router):
    _, url = await start_router(openai_table(sim.url, "oai"))
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    async with client.responses.stream(model="chat", input="Weather?", tools=[WEATHER]) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert isinstance(final.output[0], ResponseFunctionToolCall)
    parsed = await client.responses.parse(model="chat", input="Who is Ada?", text_format=Contact)
    assert isinstance(parsed.output_parsed, Contact)
    await client.close()
