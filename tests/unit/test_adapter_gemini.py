"""The Gemini adapter, against the documented shapes of the Gemini API (v1beta).

Response, stream and error bodies under data/gemini/ reproduce the shapes of the Gemini API
reference and of real error bodies; they are checked against the official `google-genai` SDK's
types (which forbid unknown fields) so they stay realistic. Translated answers are checked
against OpenAI's own OpenAPI description when it is at hand.
"""

from __future__ import annotations

import base64
import copy
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from switchyard_router.adapters import adapter_for
from switchyard_router.adapters.base import SSE_DONE, StreamState
from switchyard_router.adapters.gemini import GeminiAdapter, GeminiStream
from switchyard_router.errors import ErrorKind, UpstreamError
from switchyard_router.sse import SSEDecoder
from switchyard_router.table import Provider, ProviderType

from ..openai_spec import SPEC as OPENAI_SPEC
from ..openai_spec import check as check_spec

DATA = Path(__file__).parent / "data" / "gemini"
SPEC = OPENAI_SPEC  # shared/specs beside the checkout, or the workplace's copy
KEY = "AIzaSyD-test-key-0123456789abcdefghijk"
BASE = "https://generativelanguage.googleapis.com"

adapter = GeminiAdapter()


def provider(**kwargs: Any) -> Provider:
    return Provider(name="gemini", type=ProviderType.GEMINI, **kwargs)


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def fixture(name: str) -> Any:
    return orjson.loads(raw(name))


def request_json(body: dict[str, Any], model: str = "gemini-2.0-flash", stream: bool = False) -> Any:
    return orjson.loads(adapter.chat_request(provider(), KEY, model, body, stream).body)


def bad_request(body: dict[str, Any], model: str = "gemini-2.0-flash") -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        adapter.chat_request(provider(), KEY, model, body, False)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    return caught.value


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# --- OpenAI's spec and the SDK's types, as oracles -----------------------------------------


@pytest.fixture(scope="module")
def openai_spec() -> Any:
    if not SPEC.exists():  # pragma: no cover - the spec lives beside the repository
        pytest.skip("OpenAI's OpenAPI description is not at hand")
    return lambda document, schema: check_spec(schema, document)


def sdk_types() -> Any:
    from google.genai import types

    return types


@pytest.mark.parametrize(
    "name", ["generate_text.json", "generate_function_call.json", "generate_blocked.json"]
)
def test_fixtures_are_gemini_responses(name: str) -> None:
    sdk_types().GenerateContentResponse.model_validate(fixture(name))


def test_stream_fixtures_are_gemini_responses() -> None:
    for name in ("stream_text.sse", "stream_function_call.sse"):
        for _, data in SSEDecoder().feed(raw(name)):
            sdk_types().GenerateContentResponse.model_validate(orjson.loads(data))


def test_registered_for_gemini_providers() -> None:
    assert isinstance(adapter_for(ProviderType.GEMINI), GeminiAdapter)


# --- request: URL and key -----------------------------------------------------------------


def test_generate_url_and_key_only_in_header() -> None:
    req = adapter.chat_request(
        provider(headers={"X-Team": "chat"}), KEY, "gemini-2.0-flash", {"messages": [user("hi")]}, False
    )
    assert req.method == "POST"
    assert req.url == f"{BASE}/v1beta/models/gemini-2.0-flash:generateContent"
    assert req.headers == {
        "Content-Type": "application/json",
        "X-Team": "chat",
        "x-goog-api-key": KEY,
    }
    assert KEY not in req.url and "key=" not in req.url
    assert KEY.encode() not in req.body


def test_stream_url_asks_for_sse() -> None:
    req = adapter.chat_request(provider(), KEY, "gemini-2.0-flash", {"messages": [user("hi")]}, True)
    assert req.url == f"{BASE}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert KEY not in req.url


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("models/gemini-2.0-flash", "models/gemini-2.0-flash"),
        ("gemini-2.0-flash", "models/gemini-2.0-flash"),
        ("tunedModels/my-tuned-1", "tunedModels/my-tuned-1"),
    ],
)
def test_model_names_with_or_without_prefix(model: str, path: str) -> None:
    req = adapter.chat_request(provider(), KEY, model, {"messages": [user("hi")]}, False)
    assert req.url == f"{BASE}/v1beta/{path}:generateContent"


def test_custom_base_url_and_no_key() -> None:
    req = adapter.chat_request(
        provider(base_url="http://sim:8080/"), None, "gemini-2.0-flash", {"messages": [user("x")]}, False
    )
    assert req.url == "http://sim:8080/v1beta/models/gemini-2.0-flash:generateContent"
    assert "x-goog-api-key" not in req.headers


def test_models_request() -> None:
    req = adapter.models_request(provider(), KEY)
    assert (req.method, req.url) == ("GET", f"{BASE}/v1beta/models")
    assert req.headers["x-goog-api-key"] == KEY
    assert KEY not in req.url


# --- request: messages --------------------------------------------------------------------


def test_system_developer_and_role_mapping_with_merged_turns() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "developer",
                "content": [{"type": "text", "text": "Answer in French."}, {"type": "text"}],
            },
            user("Bonjour"),
            user([{"type": "text", "text": "Ça va ?"}]),
            {"role": "assistant", "content": "Oui."},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "Pas ça."}]},
            user(""),  # nothing to say: no empty part, no empty turn
            user([{"type": "text", "text": ""}]),
            user("Merci"),
        ]
    }
    out = request_json(body)
    assert out["systemInstruction"] == {"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "Bonjour"}, {"text": "Ça va ?"}]},
        {"role": "model", "parts": [{"text": "Oui."}, {"text": "Pas ça."}]},
        {"role": "user", "parts": [{"text": "Merci"}]},
    ]
    assert "generationConfig" not in out and "tools" not in out


def test_system_only_conversation_becomes_the_user_turn() -> None:
    out = request_json({"messages": [{"role": "system", "content": "Say hello."}]})
    assert out == {"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}]}


def test_image_audio_and_file_parts() -> None:
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.PNG?size=2#top"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photos/cat"}},
        {"type": "image_url", "image_url": "https://example.com/doc.pdf"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
    ]
    parts = request_json({"messages": [user(content)]})["contents"][0]["parts"]
    assert parts == [
        {"text": "What is in these?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.PNG?size=2#top", "mimeType": "image/png"}},
        {"fileData": {"fileUri": "https://example.com/photos/cat", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://example.com/doc.pdf", "mimeType": "application/pdf"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]
    for part in parts:
        sdk_types().Part.model_validate(part)


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "messages"),
        ("hello", "messages"),
        (["hello"], "messages[0]"),
        ([{"role": "narrator", "content": "x"}], "messages[0].role"),
        ([user(42)], "messages[0].content"),
        ([user([{"type": "video", "video": {}}])], "messages[0].content[0]"),
        ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "content[0]"),
        ([user([{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}])], "image_url.url"),
        ([user([{"type": "image_url", "image_url": {"url": "ftp://host/cat.png"}}])], "image_url.url"),
        ([user([{"type": "image_url", "image_url": {}}])], "image_url.url"),
        ([user([{"type": "file", "file": {"file_id": "file-abc"}}])], "content[0].file"),
        ([user([{"type": "file", "file": "data:application/pdf;base64,AA=="}])], "content[0].file"),
    ],
)
def test_invalid_messages_are_bad_requests_naming_the_field(messages: Any, field: str) -> None:
    err = bad_request({"messages": messages})
    assert field in err.message
    assert err.status == 400


# --- request: tool calls and results ------------------------------------------------------


def tool_conversation(signature: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
    }
    if signature:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return {
        "messages": [
            user("Weather in Paris and London?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    call,
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": 18, "sky": "clear"}'},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "11C, rain"}]},
            user("Thanks"),
        ]
    }


def test_tool_calls_and_results_round_trip_with_signature() -> None:
    out = request_json(tool_conversation("CiQBsig"), model="gemini-3-flash-preview")
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and London?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                    "thoughtSignature": "CiQBsig",
                },
                {"functionCall": {"name": "get_weather", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18, "sky": "clear"}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "11C, rain"}}},
                {"text": "Thanks"},
            ],
        },
    ]
    for content in out["contents"]:
        sdk_types().Content.model_validate(content)


def test_missing_signature_gets_the_documented_placeholder_on_gemini_3() -> None:
    model_turn = request_json(tool_conversation(), model="models/gemini-3-pro-preview")["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in model_turn["parts"][1]  # only the first of parallel calls


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gemini-2.5-pro", "gemini-1.5-flash"])
def test_no_placeholder_for_models_before_signatures(model: str) -> None:
    model_turn = request_json(tool_conversation(), model=model)["contents"][1]
    assert all("thoughtSignature" not in part for part in model_turn["parts"])


def test_assistant_text_with_tool_call_and_dict_arguments() -> None:
    body = {
        "messages": [
            user("hi"),
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}},
                    {"type": "function", "function": {"name": "g", "arguments": "{}"}},  # no id
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "[1, 2]"},
            {"role": "tool", "tool_call_id": "unknown", "name": "g", "content": "{not json"},
        ]
    }
    out = request_json(body, model="gemini-3-flash-preview")
    assert out["contents"][1]["parts"] == [
        {"text": "Let me check."},
        {
            "functionCall": {"name": "f", "args": {"a": 1}},
            "thoughtSignature": "skip_thought_signature_validator",
        },
        {"functionCall": {"name": "g", "args": {}}},
    ]
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"result": "[1, 2]"}}},
        {"functionResponse": {"name": "g", "response": {"result": "{not json"}}},
    ]


@pytest.mark.parametrize(
    ("tool_calls", "field", "problem"),
    [
        (
            [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
            "tool_calls[0].function.arguments",
            "JSON",
        ),
        (
            [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
            "tool_calls[0].function.arguments",
            "object",
        ),
        (
            [{"id": "c", "function": {"name": "f", "arguments": 7}}],
            "tool_calls[0].function.arguments",
            "JSON",
        ),
        ([{"id": "c", "function": {"arguments": "{}"}}], "tool_calls[0].function.name", "required"),
        (["call"], "tool_calls[0].function.name", "required"),
        ({"id": "c"}, "messages[1].tool_calls", "list"),
    ],
)
def test_invalid_tool_calls_name_the_field(tool_calls: Any, field: str, problem: str) -> None:
    err = bad_request({"messages": [user("hi"), {"role": "assistant", "tool_calls": tool_calls}]})
    assert f"messages[1].{field}" in err.message or field in err.message
    assert problem in err.message


def test_tool_result_without_a_known_call_is_a_bad_request() -> None:
    err = bad_request({"messages": [user("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "1"}]})
    assert "messages[1].tool_call_id" in err.message and "call_x" in err.message


# --- request: tools and schemas -----------------------------------------------------------


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "location": {"type": "string", "description": "City name", "minLength": 1},
                "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", None]},
                "days": {"type": "integer", "minimum": 1, "exclusiveMaximum": 15, "format": "int32"},
                "when": {"type": "string", "format": "date-time"},
                "email": {"type": "string", "format": "email"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                "kind": {"const": "forecast"},
                "level": {"type": "integer", "enum": [1, 2, 3]},
            },
            "required": ["location", "ghost"],
        },
    },
}


def test_tools_become_function_declarations_with_a_gemini_schema() -> None:
    out = request_json({"messages": [user("hi")], "tools": [WEATHER_TOOL]})
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "location": {"type": "STRING", "description": "City name", "minLength": 1},
                            "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"], "nullable": True},
                            "days": {"type": "INTEGER", "minimum": 1, "format": "int32"},
                            "when": {"type": "STRING", "format": "date-time"},
                            "email": {"type": "STRING"},
                            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
                            "kind": {"enum": ["forecast"]},
                            "level": {"type": "INTEGER"},
                        },
                        "required": ["location"],
                    },
                }
            ]
        }
    ]
    sdk_types().Tool.model_validate(out["tools"][0])


def test_schema_refs_any_of_and_all_of_are_inlined() -> None:
    parameters = {
        "type": "object",
        "$defs": {
            "Address": {
                "type": "object",
                "title": "Address",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}},
        },
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "Where they live"},
            "work": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "description": "Office"},
            "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "both": {"type": ["string", "number"]},
            "nothing": {"type": "null"},
            "only_null": {"anyOf": [{"type": "null"}], "description": "Always null"},
            "merged": {"allOf": [{"$ref": "#/$defs/Address"}, True], "description": "Merged"},
            "tree": {"$ref": "#/$defs/Node"},
            "dangling": {"$ref": "#/definitions/Missing"},
            "implied_object": {"properties": {"x": {"type": "number"}}},
            "implied_array": {"items": {"type": "boolean"}},
            "not_a_schema": True,
        },
    }
    tool = {"type": "function", "function": {"name": "save", "parameters": parameters}}
    props = request_json({"messages": [user("hi")], "tools": [tool]})["tools"][0]["functionDeclarations"][0][
        "parameters"
    ]["properties"]
    address = {
        "type": "OBJECT",
        "title": "Address",
        "properties": {"city": {"type": "STRING"}},
        "required": ["city"],
    }
    assert props["home"] == {**address, "description": "Where they live"}
    assert props["work"] == {**address, "description": "Office", "nullable": True}
    assert props["id"] == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert props["both"] == {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}
    assert props["nothing"] == {"nullable": True}
    assert props["only_null"] == {"description": "Always null", "nullable": True}
    assert props["merged"] == {**address, "description": "Merged"}
    assert props["tree"] == {"type": "OBJECT", "properties": {"child": {"type": "OBJECT"}}}
    assert props["dangling"] == {"type": "OBJECT"}
    assert props["implied_object"] == {"type": "OBJECT", "properties": {"x": {"type": "NUMBER"}}}
    assert props["implied_array"] == {"type": "ARRAY", "items": {"type": "BOOLEAN"}}
    assert props["not_a_schema"] == {}


def test_parameterless_tool_omits_parameters() -> None:
    tools = [
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "ping"}},
    ]
    declarations = request_json({"messages": [user("hi")], "tools": tools})["tools"][0][
        "functionDeclarations"
    ]
    assert declarations == [{"name": "now"}, {"name": "ping"}]


@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ({"type": "function"}, "tools"),
        ([{"type": "custom", "custom": {"name": "x"}}], "tools[0].type"),
        (["get_weather"], "tools[0].type"),
        ([{"type": "function", "function": {"description": "no name"}}], "tools[0].function.name"),
    ],
)
def test_invalid_tools(tools: Any, field: str) -> None:
    assert field in bad_request({"messages": [user("hi")], "tools": tools}).message


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    out = request_json({"messages": [user("hi")], "tools": [WEATHER_TOOL], "tool_choice": choice})
    assert out["toolConfig"] == {"functionCallingConfig": config}
    sdk_types().ToolConfig.model_validate(out["toolConfig"])


@pytest.mark.parametrize("choice", ["sometimes", {"type": "function"}, {"type": "allowed_tools"}, 3])
def test_invalid_tool_choice(choice: Any) -> None:
    assert "tool_choice" in bad_request({"messages": [user("hi")], "tool_choice": choice}).message


def test_tool_choice_without_tools_sends_no_tool_config() -> None:
    assert "toolConfig" not in request_json({"messages": [user("hi")], "tool_choice": "none"})


# --- request: generation config -----------------------------------------------------------


def test_generation_config() -> None:
    body = {
        "messages": [user("hi")],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "n": 2,
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "max_tokens": 100,
        "max_completion_tokens": 200,
        "stop": ["END", "STOP"],
        "response_format": {"type": "json_object"},
        "user": "ignored",
        "parallel_tool_calls": False,
    }
    config = request_json(body)["generationConfig"]
    assert config == {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "maxOutputTokens": 200,
        "stopSequences": ["END", "STOP"],
        "responseMimeType": "application/json",
    }
    sdk_types().GenerationConfig.model_validate(config)


def test_max_tokens_and_single_stop_string() -> None:
    config = request_json({"messages": [user("hi")], "max_tokens": 0, "stop": "\n\n", "temperature": None})
    assert config["generationConfig"] == {"maxOutputTokens": 0, "stopSequences": ["\n\n"]}


def test_json_schema_response_format() -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"answer": {"type": "string"}, "score": {"type": ["number", "null"]}},
                "required": ["answer", "score"],
            },
        },
    }
    config = request_json({"messages": [user("hi")], "response_format": fmt})["generationConfig"]
    assert config == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"answer": {"type": "STRING"}, "score": {"type": "NUMBER", "nullable": True}},
            "required": ["answer", "score"],
        },
    }
    sdk_types().GenerationConfig.model_validate(config)


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "text"},
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"name": "x"}},
        "json",
    ],
)
def test_other_response_formats(fmt: Any) -> None:
    config = request_json({"messages": [user("hi")], "response_format": fmt}).get("generationConfig", {})
    assert "responseSchema" not in config
    assert config.get("responseMimeType") in (None, "application/json")


def test_the_client_body_is_never_mutated() -> None:
    body = tool_conversation()
    body["messages"].insert(0, {"role": "system", "content": [{"type": "text", "text": "sys"}]})
    body["messages"][1] = user(
        [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
        ]
    )
    body.update(
        tools=[copy.deepcopy(WEATHER_TOOL)],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stop=["x"],
        response_format={
            "type": "json_schema",
            "json_schema": {"schema": WEATHER_TOOL["function"]["parameters"]},
        },
    )
    snapshot = copy.deepcopy(body)
    first = adapter.chat_request(provider(), KEY, "gemini-3-flash-preview", body, True)
    second = adapter.chat_request(provider(), KEY, "gemini-3-flash-preview", body, True)
    assert body == snapshot
    assert first.body == second.body  # a retry or fallback gets the same upstream request


# --- responses ----------------------------------------------------------------------------


def test_text_response(openai_spec: Any) -> None:
    body, usage = adapter.chat_response(raw("generate_text.json"), "gemini-flash")
    out = orjson.loads(body)
    openai_spec(out, "CreateChatCompletionResponse")
    assert out["id"] == "chatcmpl-mZ1eaPL7Bq6Xz7IP3vW-uQk"
    assert out["object"] == "chat.completion"
    assert isinstance(out["created"], int)
    assert out["model"] == "gemini-2.5-flash"
    assert out["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Plants turn light, water and CO2 into sugar and oxygen.",  # no thought summary
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 33,
        "total_tokens": 45,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 22},
    }
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.reported) == (
        12,
        33,
        22,
        True,
    )


def test_function_call_response(openai_spec: Any) -> None:
    body, usage = adapter.chat_response(raw("generate_function_call.json"), "gemini-3-flash-preview")
    out = orjson.loads(body)
    openai_spec(out, "CreateChatCompletionResponse")
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_weather"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [
        {"location": "Paris", "unit": "celsius"},
        {"location": "London", "unit": "celsius"},
    ]
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    assert calls[0]["extra_content"] == {
        "google": {"thought_signature": "CiQBcsjafBqBTPkXVvjr0cVwGx4CZzLa8V0ncAn+Nj6SXHrJA7ESXAFyyNp8"}
    }
    assert "extra_content" not in calls[1]
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens) == (140, 64, 111)


def test_tool_calls_from_a_response_replay_into_the_next_request() -> None:
    body, _ = adapter.chat_response(raw("generate_function_call.json"), "gemini-3-flash-preview")
    message = orjson.loads(body)["choices"][0]["message"]
    results = [{"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in message["tool_calls"]]
    out = request_json({"messages": [user("weather?"), message, *results]}, model="gemini-3-flash-preview")
    model_parts = out["contents"][1]["parts"]
    assert model_parts[0]["thoughtSignature"].startswith("CiQB")  # the real one, not the placeholder
    assert [p["functionResponse"]["name"] for p in out["contents"][2]["parts"]] == ["get_weather"] * 2


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(reason: str | None, finish: str) -> None:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": "x"}]}}
    if reason:
        candidate["finishReason"] = reason
    body, _ = adapter.chat_response(orjson.dumps({"candidates": [candidate]}), "gemini-2.0-flash")
    assert orjson.loads(body)["choices"][0]["finish_reason"] == finish


def test_several_candidates_and_an_empty_filtered_one(openai_spec: Any) -> None:
    data = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "one"}]}, "finishReason": "STOP"},
            {"finishReason": "SAFETY", "index": 1},
        ]
    }
    body, usage = adapter.chat_response(orjson.dumps(data), "gemini-2.0-flash")
    out = orjson.loads(body)
    openai_spec(out, "CreateChatCompletionResponse")
    assert out["model"] == "gemini-2.0-flash"  # no modelVersion: the requested model
    assert out["id"].startswith("chatcmpl-") and len(out["id"]) > len("chatcmpl-")
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in out["choices"]] == [
        (0, "one", "stop"),
        (1, None, "content_filter"),
    ]
    assert usage.reported is False


def test_blocked_prompt_is_content_filtered() -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.chat_response(raw("generate_blocked.json"), "gemini-2.0-flash")
    assert caught.value.kind is ErrorKind.CONTENT_FILTERED
    assert "SAFETY" in caught.value.message


@pytest.mark.parametrize("body", [b'{"candidates": []}', b"<html>oops</html>", b"[1]"])
def test_unusable_responses_are_server_errors(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.chat_response(body, "gemini-2.0-flash")
    assert caught.value.kind is ErrorKind.SERVER_ERROR


# --- stream -------------------------------------------------------------------------------


def run_stream(
    raw_sse: bytes, include_usage: bool = True, model: str = "gemini-2.0-flash"
) -> tuple[list[Any], bytes]:
    """Feed the SSE bytes through the router's decoder in small pieces, as a network would."""
    translator = adapter.stream(StreamState(model=model, include_usage=include_usage))
    decoder = SSEDecoder()
    out = b""
    for start in range(0, len(raw_sse), 37):
        for event, data in decoder.feed(raw_sse[start : start + 37]):
            out += translator.feed(event, data)
    out += translator.finish()
    frames = [f.removeprefix(b"data: ") for f in out.split(b"\n\n") if f]
    assert frames[-1] == b"[DONE]"
    return [orjson.loads(f) for f in frames[:-1]], out


def test_text_stream_chunk_by_chunk(openai_spec: Any) -> None:
    chunks, out = run_stream(raw("stream_text.sse"))
    assert out.endswith(SSE_DONE)
    for chunk in chunks:
        openai_spec(chunk, "CreateChatCompletionStreamResponse")
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["model"] == "gemini-2.0-flash"
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "The sky"},
        {"content": " is blue because air scatters"},
        {"content": " short wavelengths more."},
        {},
        None,
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, None, None, None, "stop"]
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 14,
        "total_tokens": 23,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_function_call_stream(openai_spec: Any) -> None:
    chunks, _ = run_stream(raw("stream_function_call.sse"), model="gemini-3-flash-preview")
    for chunk in chunks:
        openai_spec(chunk, "CreateChatCompletionStreamResponse")
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    first, second = deltas[1]["tool_calls"], deltas[2]["tool_calls"]
    assert first[0]["index"] == 0 and second[0]["index"] == 1
    assert first[0]["id"].startswith("call_") and second[0]["id"].startswith("call_")
    assert first[0]["function"] == {
        "name": "get_weather",
        "arguments": '{"location":"Paris","unit":"celsius"}',
    }
    assert second[0]["function"] == {"name": "get_time", "arguments": '{"timezone":"Europe/Paris"}'}
    assert first[0]["extra_content"] == {"google": {"thought_signature": "EpQCCpECAdHtim9sig"}}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    usage = chunks[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (52, 89)
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 58}


def test_stream_without_include_usage_still_counts_usage() -> None:
    translator = adapter.stream(StreamState(model="gemini-2.0-flash", include_usage=False))
    out = b"".join(translator.feed(e, d) for e, d in SSEDecoder().feed(raw("stream_text.sse")))
    assert translator.finish() == SSE_DONE
    assert b'"usage"' not in out
    assert (translator.usage.input_tokens, translator.usage.output_tokens, translator.usage.reported) == (
        9,
        14,
        True,
    )


def test_several_candidates_stream_on_their_own_indices() -> None:
    translator = GeminiStream(StreamState(model="gemini-2.0-flash", include_usage=False))
    first = translator.feed(
        None,
        b'{"candidates":[{"content":{"role":"model","parts":[{"text":"a"}]}},'
        b'{"content":{"role":"model","parts":[{"text":"b"}]},"finishReason":"MAX_TOKENS","index":1}]}',
    )
    chunks = [orjson.loads(f.removeprefix(b"data: ")) for f in first.split(b"\n\n") if f]
    assert [(c["choices"][0]["index"], c["choices"][0]["finish_reason"]) for c in chunks] == [
        (0, None),
        (0, None),
        (1, None),
        (1, None),
        (1, "length"),
    ]
    with pytest.raises(UpstreamError):  # candidate 0 never finished
        translator.finish()
    translator.feed(None, b'{"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"STOP"}]}')
    assert translator.finish() == SSE_DONE


@pytest.mark.parametrize("keep", [0, 1, 2])
def test_cut_stream_is_a_connection_error(keep: int) -> None:
    events = SSEDecoder().feed(raw("stream_text.sse"))[:keep]
    translator = adapter.stream(StreamState(model="gemini-2.0-flash", include_usage=True))
    for event, data in events:
        translator.feed(event, data)
    with pytest.raises(UpstreamError) as caught:
        translator.finish()
    assert caught.value.kind is ErrorKind.CONNECTION_ERROR


def test_error_object_in_the_stream_raises() -> None:
    translator = adapter.stream(StreamState(model="gemini-2.0-flash", include_usage=True))
    translator.feed(None, SSEDecoder().feed(raw("stream_text.sse"))[0][1])
    error = gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    with pytest.raises(UpstreamError) as caught:
        translator.feed(None, error)
    assert caught.value.kind is ErrorKind.OVERLOADED
    assert caught.value.status == 503
    assert caught.value.message == "The model is overloaded. Please try again later."


def test_error_object_without_code_in_the_stream() -> None:
    translator = adapter.stream(StreamState(model="gemini-2.0-flash", include_usage=True))
    with pytest.raises(UpstreamError) as caught:
        translator.feed(None, b'{"error": {"message": "Internal error encountered."}}')
    assert (caught.value.kind, caught.value.status) == (ErrorKind.SERVER_ERROR, 500)


def test_blocked_prompt_in_the_stream_is_content_filtered() -> None:
    translator = adapter.stream(StreamState(model="gemini-2.0-flash", include_usage=True))
    with pytest.raises(UpstreamError) as caught:
        translator.feed(None, raw("generate_blocked.json"))
    assert caught.value.kind is ErrorKind.CONTENT_FILTERED


def test_events_without_candidates_only_carry_usage() -> None:
    translator = adapter.stream(StreamState(model="gemini-2.0-flash", include_usage=True))
    assert translator.feed(None, b'{"usageMetadata": {"promptTokenCount": 4}}') == b""
    assert translator.usage.input_tokens == 4


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]"])
def test_garbage_in_the_stream_is_a_server_error(data: bytes) -> None:
    translator = adapter.stream(StreamState(model="gemini-2.0-flash", include_usage=True))
    with pytest.raises(UpstreamError) as caught:
        translator.feed(None, data)
    assert caught.value.kind is ErrorKind.SERVER_ERROR


# --- errors -------------------------------------------------------------------------------


def gemini_error(status: int, name: str, message: str, details: Any = None) -> bytes:
    err: dict[str, Any] = {"code": status, "message": message, "status": name}
    if details is not None:
        err["details"] = details
    return orjson.dumps({"error": err})


def retry_info(delay: str) -> list[dict[str, str]]:
    return [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]


def test_rate_limited_with_retry_info() -> None:
    err = adapter.error(429, {"retry-after": "30"}, raw("error_rate_limited.json"))
    assert err.kind is ErrorKind.RATE_LIMITED
    assert err.retry_after == 2.0  # the RetryInfo detail wins over the header
    assert err.status == 429
    assert err.message.startswith("You exceeded your current quota")


@pytest.mark.parametrize(
    ("details", "headers", "retry_after"),
    [
        (retry_info("1.5s"), {}, 1.5),
        (retry_info("0.25s"), {}, 0.25),
        (retry_info("soon"), {"retry-after": "7"}, 7.0),
        (None, {"retry-after": "3"}, 3.0),
        ("not a list", {}, None),
        (None, {}, None),
    ],
)
def test_retry_delay_sources(details: Any, headers: dict[str, str], retry_after: float | None) -> None:
    err = adapter.error(429, headers, gemini_error(429, "RESOURCE_EXHAUSTED", "Resource exhausted.", details))
    assert (err.kind, err.retry_after) == (ErrorKind.RATE_LIMITED, retry_after)


@pytest.mark.parametrize(
    ("status", "name", "message", "kind"),
    [
        (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", ErrorKind.OVERLOADED),
        (500, "INTERNAL", "An internal error has occurred.", ErrorKind.SERVER_ERROR),
        (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", ErrorKind.TIMEOUT),
        (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", ErrorKind.UNAUTHORIZED),
        (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", ErrorKind.UNAUTHORIZED),
        (
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
            ErrorKind.UNAUTHORIZED,
        ),
        (400, "INVALID_ARGUMENT", "API key expired. Please renew the API key.", ErrorKind.UNAUTHORIZED),
        (
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified",
            ErrorKind.BAD_REQUEST,
        ),
        (404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta.", ErrorKind.BAD_REQUEST),
        (429, "", "Too many requests", ErrorKind.RATE_LIMITED),
    ],
)
def test_error_statuses(status: int, name: str, message: str, kind: ErrorKind) -> None:
    err = adapter.error(status, {}, gemini_error(status, name, message))
    assert (err.kind, err.message, err.status) == (kind, message, status)


def test_invalid_api_key_is_unauthorized() -> None:
    err = adapter.error(400, {}, raw("error_api_key.json"))
    assert err.kind is ErrorKind.UNAUTHORIZED
    assert err.message == "API key not valid. Please pass a valid API key."
    assert err.client_status() == 502  # the router's key is wrong, not the client's request


def test_api_key_reason_without_the_usual_message() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    err = adapter.error(400, {}, gemini_error(400, "INVALID_ARGUMENT", "Bad key.", details))
    assert err.kind is ErrorKind.UNAUTHORIZED


def test_context_length_in_a_list_wrapped_error() -> None:
    err = adapter.error(400, {}, raw("error_context_length.json"))
    assert err.kind is ErrorKind.CONTEXT_LENGTH_EXCEEDED
    assert "1048576" in err.message


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (
            502,
            b"<html><body>Bad Gateway</body></html>",
            ErrorKind.SERVER_ERROR,
            "<html><body>Bad Gateway</body></html>",
        ),
        (500, b"", ErrorKind.SERVER_ERROR, "upstream answered HTTP 500"),
        (400, b"[]", ErrorKind.BAD_REQUEST, "upstream answered HTTP 400"),
        (503, b'{"error": "overloaded"}', ErrorKind.OVERLOADED, "overloaded"),
    ],
)
def test_errors_that_are_not_google_rpc_statuses(
    status: int, body: bytes, kind: ErrorKind, message: str
) -> None:
    err = adapter.error(status, {}, body)
    assert (err.kind, err.message) == (kind, message)


# --- embeddings ---------------------------------------------------------------------------


def test_single_input_embeds_with_embed_content() -> None:
    req = adapter.embeddings_request(
        provider(), KEY, "text-embedding-004", {"model": "embed", "input": "hello", "dimensions": 256}
    )
    assert req.url == f"{BASE}/v1beta/models/text-embedding-004:embedContent"
    assert req.headers["x-goog-api-key"] == KEY and KEY not in req.url
    assert orjson.loads(req.body) == {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 256}


def test_list_input_embeds_with_batch_embed_contents() -> None:
    body = {"model": "embed", "input": ["a", "b"], "encoding_format": "float"}
    snapshot = copy.deepcopy(body)
    req = adapter.embeddings_request(provider(), KEY, "models/gemini-embedding-001", body)
    assert body == snapshot
    assert req.url == f"{BASE}/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert orjson.loads(req.body) == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}},
        ]
    }


@pytest.mark.parametrize("value", [None, [], [1, 2, 3], [[1, 2]], ["ok", 3]])
def test_embeddings_of_anything_but_text_are_bad_requests(value: Any) -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.embeddings_request(provider(), KEY, "text-embedding-004", {"input": value})
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert caught.value.message.startswith("input:")


def test_embed_content_response(openai_spec: Any) -> None:
    body, usage = adapter.embeddings_response(raw("embed_single.json"), "text-embedding-004", {})
    out = orjson.loads(body)
    openai_spec(out, "CreateEmbeddingResponse")
    assert out == {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": [0.0131, -0.0082, -0.0473, 0.0125, 0.0219, -0.0301, 0.0007, 0.0412],
            }
        ],
        "model": "text-embedding-004",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    assert usage.reported is False  # Gemini gave no count: unpriced, not guessed


def test_batch_embed_contents_response(openai_spec: Any) -> None:
    body, _ = adapter.embeddings_response(raw("embed_batch.json"), "gemini-embedding-001", {})
    out = orjson.loads(body)
    openai_spec(out, "CreateEmbeddingResponse")
    assert [d["index"] for d in out["data"]] == [0, 1, 2]
    assert out["data"][1]["embedding"] == [-0.0214, 0.0345, 0.0018, -0.0099]


def test_embeddings_usage_when_gemini_reports_it() -> None:
    data = {"embeddings": [{"values": [0.1]}], "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}
    body, usage = adapter.embeddings_response(orjson.dumps(data), "gemini-embedding-001", {})
    assert orjson.loads(body)["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert (usage.input_tokens, usage.reported) == (5, True)


def test_embeddings_in_base64_as_openai_encodes_them() -> None:
    """encoding_format base64: little-endian float32s, base64-encoded, as the openai SDK decodes."""
    body, _ = adapter.embeddings_response(
        raw("embed_batch.json"), "gemini-embedding-001", {"encoding_format": "base64"}
    )
    packed = orjson.loads(body)["data"][1]["embedding"]
    decoded = base64.b64decode(packed)
    assert struct.unpack(f"<{len(decoded) // 4}f", decoded) == pytest.approx([-0.0214, 0.0345, 0.0018, -0.0099])


def test_embeddings_response_without_vectors_is_a_server_error() -> None:
    with pytest.raises(UpstreamError) as caught:
        adapter.embeddings_response(b'{"something": "else"}', "text-embedding-004", {})
    assert caught.value.kind is ErrorKind.SERVER_ERROR
