"""Fidelity of the Gemini API format, with the official `google-genai` SDK as the client."""

from __future__ import annotations

import json

import pydantic
import pytest
from google import genai
from google.genai import errors, types
from switchyard_sim import Simulator

from .conftest import GEMINI_KEY, gemini_headers

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING"},
            "unit": {"type": "STRING", "enum": ["C", "F"]},
            "days": {"type": "INTEGER"},
        },
        "required": ["city", "unit", "days"],
    },
}
CLOCK = {"name": "get_time", "parameters": {"type": "OBJECT", "properties": {}}}


def client(sim: Simulator, name: str = "gem", *, key: str = GEMINI_KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=sim.base_url(name, "gemini")))


async def test_generate_content(sim: Simulator) -> None:
    response = await client(sim).aio.models.generate_content(
        model="gemini-2.0-flash",
        contents="Hello Gemini, how are you today?",
        config=types.GenerateContentConfig(system_instruction="Be nice."),
    )
    assert response.text == "Hello from gem (gemini-2.0-flash). You said: Hello Gemini, how are you today?"
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.candidates[0].content is not None and response.candidates[0].content.role == "model"
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == (len("Hello Gemini, how are you today?") + len("Be nice.")) // 4
    assert usage.candidates_token_count == len(response.text.split()) == 12
    assert usage.total_token_count == usage.prompt_token_count + 12
    assert usage.cached_content_token_count is None
    assert response.model_version == "gemini-2.0-flash" and response.response_id
    stats = sim.stats("gem")
    assert stats["key_in_url"] == 0 and stats["families"] == {"gemini": 1}  # the SDK sends a header


async def test_generate_content_stream(sim: Simulator) -> None:
    stream = await client(sim).aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents="Stream it"
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.text or "" for c in chunks) == "Hello from gem (gemini-2.5-flash). You said: Stream it"
    assert len(chunks) == 8  # one word each
    counts = [c.usage_metadata.candidates_token_count for c in chunks if c.usage_metadata]
    assert counts == list(range(1, 9))  # cumulative: the last chunk holds the call's usage
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[0].candidates is not None and chunks[0].candidates[0].finish_reason is None


async def test_max_output_tokens(sim: Simulator) -> None:
    response = await client(sim).aio.models.generate_content(
        model="m", contents="hi", config=types.GenerateContentConfig(max_output_tokens=4)
    )
    assert response.text == "Hello from gem (m)."
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


async def test_function_call_and_modes(sim: Simulator) -> None:
    c = client(sim)
    tools = [types.Tool(function_declarations=[WEATHER, CLOCK])]  # type: ignore[list-item]
    auto = await c.aio.models.generate_content(
        model="m",
        contents="Weather?",
        config=types.GenerateContentConfig(
            tools=tools,  # type: ignore[arg-type]
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    assert auto.function_calls is not None
    assert auto.function_calls[0].name == "get_weather"
    assert auto.function_calls[0].args == {"city": "sim", "unit": "C", "days": 1}
    assert auto.usage_metadata is not None and auto.usage_metadata.candidates_token_count == 10
    forced = await c.aio.models.generate_content(
        model="m",
        contents="Weather?",
        config=types.GenerateContentConfig(
            tools=tools,  # type: ignore[arg-type]
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(
                    mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_time"]
                )
            ),
        ),
    )
    assert forced.function_calls is not None and forced.function_calls[0].name == "get_time"
    none = await c.aio.models.generate_content(
        model="m",
        contents="Weather?",
        config=types.GenerateContentConfig(
            tools=tools,  # type: ignore[arg-type]
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.NONE)
            ),
        ),
    )
    assert none.function_calls is None and none.text is not None


async def test_function_response_gets_text(sim: Simulator) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text="Weather in Rome?")]),
        types.Content(
            role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Rome"})]
        ),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"sky": "clear"})],
        ),
    ]
    response = await client(sim).aio.models.generate_content(
        model="m",
        contents=contents,  # type: ignore[arg-type]
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]),  # type: ignore[list-item]
    )
    assert response.function_calls is None
    assert response.text == "Hello from gem (m). You said: Weather in Rome?"


async def test_streamed_function_call(sim: Simulator) -> None:
    stream = await client(sim).aio.models.generate_content_stream(
        model="m",
        contents="Weather?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]),  # type: ignore[list-item]
    )
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 1
    assert chunks[0].function_calls is not None and chunks[0].function_calls[0].name == "get_weather"


async def test_embed_content(sim: Simulator) -> None:
    c = client(sim)
    result = await c.aio.models.embed_content(model="gemini-embedding-001", contents="hello")
    assert result.embeddings is not None and len(result.embeddings) == 1
    values = result.embeddings[0].values
    assert values is not None and len(values) == 8
    several = await c.aio.models.embed_content(
        model="gemini-embedding-001",
        contents=["hello", "world"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    assert several.embeddings is not None
    assert [len(e.values or []) for e in several.embeddings] == [16, 16]
    # The same text gives the same vector in every family.
    openai_style = await c.aio.models.embed_content(model="e", contents="hello")
    assert openai_style.embeddings is not None and openai_style.embeddings[0].values == values


async def test_count_tokens_and_models(sim: Simulator) -> None:
    c = client(sim)
    count = await c.aio.models.count_tokens(model="gemini-2.0-flash", contents="x" * 80)
    assert count.total_tokens == 20
    models = [m async for m in await c.aio.models.list()]
    assert "models/gemini-2.0-flash" in [m.name for m in models]
    model = await c.aio.models.get(model="gemini-2.5-flash")
    assert model.display_name == "Gemini 2.5 Flash" and model.input_token_limit == 1048576
    unknown = await c.aio.models.get(model="gemini-sim")
    assert unknown.name == "models/gemini-sim"


async def test_bad_key_is_400_api_key_invalid(sim: Simulator) -> None:
    with pytest.raises(errors.ClientError) as caught:
        await client(sim, key="sk-bad-gemini-key-1").aio.models.generate_content(model="m", contents="x")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    details = caught.value.details["error"]["details"]
    assert details[0]["reason"] == "API_KEY_INVALID"


async def test_missing_key_is_403_like_google(sim: Simulator, http) -> None:
    url = sim.base_url("gem", "gemini") + "/v1beta/models/m:generateContent"
    async with http.post(url, json={"contents": [{"parts": [{"text": "x"}]}]}) as response:
        assert response.status == 403
        error = (await response.json())["error"]
        assert error["status"] == "PERMISSION_DENIED" and error["code"] == 403


@pytest.mark.parametrize(
    ("status", "exception", "grpc_status"),
    [
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
        (504, errors.ServerError, "DEADLINE_EXCEEDED"),
        (404, errors.ClientError, "NOT_FOUND"),
    ],
)
async def test_injected_errors(
    sim: Simulator, status: int, exception: type[errors.APIError], grpc_status: str
) -> None:
    sim.set_faults("gem", error_rate=1.0, error_status=status, retry_after=2 if status == 429 else None)
    with pytest.raises(exception) as caught:
        await client(sim).aio.models.generate_content(model="gemini-2.0-flash", contents="x")
    assert caught.value.code == status and caught.value.status == grpc_status


async def test_rate_limit_carries_retry_info_and_no_header(sim: Simulator, http) -> None:
    sim.set_faults("gem", error_rate=1.0, error_status=429, retry_after=2)
    url = sim.base_url("gem", "gemini") + "/v1beta/models/gemini-2.0-flash:generateContent"
    async with http.post(url, json={"contents": [{"parts": [{"text": "x"}]}]}, headers=gemini_headers()) as r:
        assert r.status == 429
        assert "Retry-After" not in r.headers  # Gemini tells the delay in the body only
        error = (await r.json())["error"]
    retry = [d for d in error["details"] if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]
    assert error["message"].endswith("Please retry in 2s.")


async def test_context_window_error(sim: Simulator) -> None:
    sim.set_faults("gem", context_window=3)
    with pytest.raises(errors.ClientError) as caught:
        await client(sim).aio.models.generate_content(model="m", contents="z" * 40)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert (
        caught.value.message == "The input token count (10) exceeds the maximum number of tokens allowed (3)."
    )


async def test_key_in_url_is_accepted_and_counted(sim: Simulator, http) -> None:
    base = sim.base_url("gem", "gemini")
    async with http.post(
        f"{base}/v1beta/models/m:generateContent?key={GEMINI_KEY}",
        json={"contents": [{"parts": [{"text": "x"}]}]},
    ) as response:
        assert response.status == 200
    stats = sim.stats("gem")
    assert stats["key_in_url"] == 1 and stats["keys"] == {"9876": 1}
    recorded = sim.last_request("gem")
    assert recorded is not None and "key" not in recorded["query"]


async def test_stream_without_alt_sse_is_a_json_array(sim: Simulator, http) -> None:
    url = sim.base_url("gem", "gemini") + "/v1beta/models/m:streamGenerateContent"
    async with http.post(url, json={"contents": [{"parts": [{"text": "x"}]}]}, headers=gemini_headers()) as r:
        items = await r.json()
    assert isinstance(items, list) and len(items) == 7
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_sse_frames_end_with_crlf(sim: Simulator, http) -> None:
    url = sim.base_url("gem", "gemini") + "/v1beta/models/m:streamGenerateContent?alt=sse"
    async with http.post(url, json={"contents": [{"parts": [{"text": "x"}]}]}, headers=gemini_headers()) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        raw = await r.read()
    assert raw.startswith(b"data: {") and raw.endswith(b"}\r\n\r\n") and raw.count(b"\r\n\r\n") == 7


async def test_cached_content_is_reported(sim: Simulator, http) -> None:
    url = sim.base_url("gem", "gemini") + "/v1/models/m:generateContent"  # v1 works too
    body = {
        "contents": [{"role": "user", "parts": [{"text": "x" * 8}]}],
        "cachedContent": "cachedContents/abc",
    }
    async with http.post(url, json=body, headers=gemini_headers()) as r:
        usage = (await r.json())["usageMetadata"]
    assert usage["cachedContentTokenCount"] == 1024
    assert usage["promptTokenCount"] == 1024 + 2


async def test_invalid_bodies(sim: Simulator, http) -> None:
    base = sim.base_url("gem", "gemini") + "/v1beta/models/m"
    cases = [
        (":generateContent", {"contents": []}),
        (":generateContent", {"contents": ["not an object"]}),
        (":embedContent", {"content": "text"}),
        (":embedContent", {"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 0}),
        (":batchEmbedContents", {"requests": []}),
    ]
    for action, body in cases:
        async with http.post(base + action, json=body, headers=gemini_headers()) as r:
            assert r.status == 400, (action, body)
            assert (await r.json())["error"]["status"] == "INVALID_ARGUMENT"
    async with http.post(
        base + ":embedContent", json={"content": {"parts": [{"text": "x"}]}}, headers=gemini_headers()
    ) as r:
        assert len((await r.json())["embedding"]["values"]) == 8


class Forecast(pydantic.BaseModel):
    city: str
    days: int


async def test_json_output_with_a_schema_is_parsed_by_the_sdk(sim: Simulator) -> None:
    for config in (
        types.GenerateContentConfig(response_mime_type="application/json", response_schema=Forecast),
        types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=Forecast.model_json_schema()
        ),
    ):
        response = await client(sim).aio.models.generate_content(
            model="gemini-2.5-flash", contents="Weather?", config=config
        )
        assert Forecast.model_validate_json(response.text or "") == Forecast(city="sim", days=1)
    plain = await client(sim).aio.models.generate_content(
        model="gemini-2.5-flash",
        contents="JSON",
        config=types.GenerateContentConfig(response_mime_type="application/json"),
    )
    assert json.loads(plain.text or "") == {"reply": "Hello from gem (gemini-2.5-flash). You said: JSON"}
