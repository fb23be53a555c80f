"""Structured output through every provider family: the openai SDK's `parse` helpers validate
what comes back against the pydantic model they sent, so a format lost on the way to Anthropic
or Gemini fails here. The simulator writes an instance of the schema it received and, as
Anthropic, refuses a schema its structured outputs would not take."""

from __future__ import annotations

from typing import Literal

import openai
import orjson
import pydantic
import pytest
from switchyard_router.adapters.anthropic import JSON_OBJECT_INSTRUCTION

from .test_router_api import FAMILIES


class Address(pydantic.BaseModel):
    city: str
    postcode: str | None


class Contact(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=2, description="Full name")
    age: int = pydantic.Field(ge=0, le=150)
    plan: Literal["free", "pro"]
    address: Address  # a $ref into $defs
    tags: list[str]


class Lookup(pydantic.BaseModel):
    email: str
    limit: int = pydantic.Field(ge=1)


@pytest.mark.parametrize("model", FAMILIES)
async def test_parse_returns_the_model_through_each_family(gateway, model):
    _, client = gateway
    completion = await client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Who is Ada?"}], response_format=Contact
    )
    contact = completion.choices[0].message.parsed
    assert isinstance(contact, Contact)
    assert contact.plan == "free" and isinstance(contact.address, Address)


@pytest.mark.parametrize("model", FAMILIES)
async def test_streamed_parse_returns_the_model_through_each_family(gateway, model):
    _, client = gateway
    async with client.chat.completions.stream(
        model=model, messages=[{"role": "user", "content": "Who is Ada?"}], response_format=Contact
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Contact)


@pytest.mark.parametrize("model", FAMILIES)
async def test_json_object_mode_answers_an_object(gateway, model, sim):
    _, client = gateway
    completion = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Answer in JSON"}],
        response_format={"type": "json_object"},
    )
    if model.startswith("claude/"):
        # Anthropic has no JSON mode: the model is told so, in the system prompt.
        sent = sim.last_request("claude")["body"]
        assert sent["system"] == JSON_OBJECT_INSTRUCTION
        assert "output_config" not in sent
    else:
        assert isinstance(orjson.loads(completion.choices[0].message.content or ""), dict)


@pytest.mark.parametrize("model", FAMILIES)
async def test_a_strict_tool_is_called_with_valid_arguments_through_each_family(gateway, model):
    _, client = gateway
    completion = await client.chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "Find ada@example.com"}],
        tools=[openai.pydantic_function_tool(Lookup)],
        tool_choice="required",
    )
    call = completion.choices[0].message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, Lookup)


async def test_anthropic_gets_a_schema_it_can_enforce(gateway, sim):
    _, client = gateway
    await client.chat.completions.parse(
        model="claude/claude-sim", messages=[{"role": "user", "content": "x"}], response_format=Contact
    )
    schema = sim.last_request("claude")["body"]["output_config"]["format"]["schema"]
    name = schema["properties"]["name"]
    assert "minLength" not in name and "minLength: 2" in name["description"]
    assert "Full name" in name["description"]
    assert schema["$defs"]["Address"]["additionalProperties"] is False
