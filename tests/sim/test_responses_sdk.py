"""The simulator's Responses API (the OpenAI family's pass-through target), with the official
`openai` SDK parsing it: JSON, typed stream events, tools and structured output."""

from __future__ import annotations

import openai
import pydantic
import pytest
from openai import AsyncOpenAI
from switchyard_sim import Simulator
from switchyard_sim.responses_api import RESPONSES_ARGUMENTS

from ..openai_spec import AVAILABLE, schema_properties
from .conftest import KEY

TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class City(pydantic.BaseModel):
    name: str
    people: int


def client(sim: Simulator) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=sim.base_url("primary"), api_key=KEY, max_retries=0)


async def test_a_json_response(sim):
    response = await client(sim).responses.create(
        model="gpt-4o-mini", instructions="brief", input="hello there", max_output_tokens=100
    )
    assert response.status == "completed" and response.id.startswith("resp_")
    assert "hello there" in response.output_text
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


async def test_stream_events_in_order(sim):
    stream = await client(sim).responses.create(model="gpt-4o-mini", input="stream me", stream=True)
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text and "stream me" in text


async def test_a_function_call_streamed_and_not(sim):
    response = await client(sim).responses.create(model="gpt-4o-mini", input="weather?", tools=[TOOL])
    call = response.output[0]
    assert call.type == "function_call" and "city" in call.arguments
    followed = await client(sim).responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": "weather?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[TOOL],
    )
    assert followed.output[0].type == "message"
    stream = await client(sim).responses.create(
        model="gpt-4o-mini", input="weather?", tools=[TOOL], stream=True
    )
    events = [event async for event in stream]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == call.arguments or "city" in deltas


async def test_structured_output(sim):
    response = await client(sim).responses.parse(model="gpt-4o-mini", input="a city", text_format=City)
    assert isinstance(response.output_parsed, City)


async def test_an_unknown_argument_is_refused(sim):
    with pytest.raises(openai.BadRequestError) as caught:
        await client(sim).responses.create(model="gpt-4o-mini", input="x", extra_body={"frobnicate": 1})
    assert caught.value.param == "frobnicate"


@pytest.mark.skipif(not AVAILABLE, reason="OpenAI's OpenAPI description is not available")
def test_arguments_are_those_of_openais_description():
    assert schema_properties("CreateResponse") == RESPONSES_ARGUMENTS
