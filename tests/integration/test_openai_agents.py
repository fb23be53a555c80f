"""The openai-agents SDK with its default model (the Responses API) through the router to each
provider family: an agent that calls a function tool and answers, streamed and not, and the
same agent after its primary of another family fails."""

from __future__ import annotations

import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.models import get_default_model
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from .test_responses_api import openai_table

ORDERS = {
    "oai": ["oai", "claude", "gem"],  # OpenAI itself: the Responses API passes through
    "primary": ["primary", "claude", "gem"],
    "claude": ["claude", "gem", "primary"],
    "gem": ["gem", "primary", "claude"],
}
MODELS = {"oai": "gpt-4o-mini", "primary": "gpt-sim", "claude": "claude-sim", "gem": "gemini-sim"}
calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    calls.append(city)
    return f"sunny in {city}"


def agent_for(url: str) -> Agent:
    # The default model, as an agent built without one gets it: the router's route has its name.
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    model = OpenAIResponsesModel(model=get_default_model(), openai_client=client)
    return Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=model)


def table(sim_url: str, first: str) -> dict:
    """A route named after the default model, with `first` as its primary."""
    found = openai_table(sim_url, *ORDERS[first])
    found["routes"][0]["name"] = get_default_model()
    return found


@pytest.fixture(autouse=True)
def no_tracing() -> None:
    set_tracing_disabled(True)  # traces would go to OpenAI's platform
    calls.clear()


@pytest.mark.parametrize("family", list(ORDERS))
async def test_an_agent_calls_its_tool_and_answers_through_each_family(sim, start_router, family):
    _, url = await start_router(table(sim.url, family))
    result = await Runner.run(agent_for(url), "Weather in Paris?")
    assert calls, "the tool was not called"
    assert isinstance(result.final_output, str) and result.final_output
    assert sim.last_request(family) is not None
    assert result.context_wrapper.usage.input_tokens > 0


@pytest.mark.parametrize("family", list(ORDERS))
async def test_a_streamed_agent_run_through_each_family(sim, start_router, family):
    _, url = await start_router(table(sim.url, family))
    result = Runner.run_streamed(agent_for(url), "Weather in Paris?")
    kinds = [event.type async for event in result.stream_events()]
    assert "raw_response_event" in kinds and calls
    assert isinstance(result.final_output, str) and result.final_output


async def test_an_agent_falls_back_from_a_failing_primary_of_another_family(sim, start_router):
    router, url = await start_router(table(sim.url, "oai"))
    sim.set_faults("oai", error_rate=1.0, error_status=503)
    result = await Runner.run(agent_for(url), "Weather in Paris?")
    assert calls and result.final_output
    assert "switchyard_fallbacks_total" in router.metrics.render().decode()
    assert 'to_provider="claude"' in router.metrics.render().decode()
