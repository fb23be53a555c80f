"""OpenAI's wire format: chat completions (JSON and SSE), embeddings, models, errors.

Shapes follow OpenAI's OpenAPI description (CreateChatCompletionResponse, ...StreamResponse,
CreateEmbeddingResponse, ListModelsResponse) and the error object {"error": {message, type,
param, code}}.
"""

from __future__ import annotations

import base64
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from .content import Answer, Prompt, answer, choose_tool, embedding, embedding_bytes, estimate_tokens
from .wire import (
    JSON,
    BadRequest,
    Call,
    Family,
    Reply,
    json_response,
    retry_after_header,
    text_of,
)

MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "text-embedding-3-small")
MODEL_CREATED = 1715367049
SYSTEM_FINGERPRINT = "fp_5117fa5b77"
DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 8192
SSE_CONTENT_TYPE = "text/event-stream"
_DONE = b"data: [DONE]\n\n"
_KEY_URL = "https://platform.openai.com/account/api-keys"


class OpenAIFamily(Family):
    name = "openai"
    key_headers = ("authorization",)

    def response_headers(self) -> dict[str, str]:
        return self._headers()

    def api_key(self, request: web.BaseRequest) -> tuple[str | None, bool]:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, False
        return token.strip(), False

    def auth_error(self, key: str | None) -> web.Response:
        if key is None:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). "
                f"You can obtain an API key from {_KEY_URL}."
            )
            return _error(401, message, "invalid_request_error", None, headers=self._headers())
        # Like OpenAI, show only the ends of the key; the middle never leaves the process.
        masked = f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) >= 8 else "****"
        message = f"Incorrect API key provided: {masked}. You can find your API key at {_KEY_URL}."
        return _error(401, message, "invalid_request_error", "invalid_api_key", headers=self._headers())

    def error(
        self, status: int, *, retry_after: float | None = None, model: str | None = None
    ) -> web.Response:
        type_, code, message = _ERRORS.get(status, (None, None, None))
        if type_ is None:
            type_ = "server_error" if status >= 500 else "invalid_request_error"
            message = _reason(status)
        assert message is not None
        if status == 429:
            wait = retry_after if retry_after is not None else 1.0
            message = message.format(model=model or "this model", wait=retry_after_header(wait))
        elif status == 404:
            message = message.format(model=model or "")
        headers = {"Retry-After": retry_after_header(retry_after)} if retry_after is not None else None
        return _error(status, message, type_, code, headers=self._headers(headers))

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"x-request-id": self.ids.make("req_", 32)}
        if extra:
            headers.update(extra)
        return headers

    def bad_request(self, exc: BadRequest) -> web.Response:
        return _error(
            exc.status, exc.message, "invalid_request_error", None, param=exc.param, headers=self._headers()
        )

    def context_error(self, tokens: int, limit: int) -> web.Response:
        message = (
            f"This model's maximum context length is {limit} tokens. However, your messages "
            f"resulted in {tokens} tokens. Please reduce the length of the messages."
        )
        return _error(
            400,
            message,
            "invalid_request_error",
            "context_length_exceeded",
            param="messages",
            headers=self._headers(),
        )


# status -> (type, code, message); OpenAI's rate limit type names the exhausted limit.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-switchyardsim on requests per min "
        "(RPM): Limit 1, Used 1, Requested 1. Please try again in {wait}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: (
        "service_unavailable_error",
        "server_is_overloaded",
        "Our servers are currently overloaded. Please try again later.",
    ),
}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_response(status, body, headers)


# --- chat completions ---------------------------------------------------------------------


def _prompt(body: JSON, messages: list[Any]) -> Prompt:
    chars = 0
    last_user = ""
    found_user = False
    for message in reversed(messages):
        if not isinstance(message, dict):
            raise BadRequest("Invalid type for 'messages': expected an array of objects.", param="messages")
        text = text_of(message.get("content"))
        chars += len(text)
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                chars += len(str((call.get("function") or {}).get("arguments", "")))
        if not found_user and message.get("role") == "user":
            last_user, found_user = text, True
    prompt = Prompt(chars=chars, last_user_text=last_user)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        prompt.max_tokens = max_tokens
    tools = [
        (fn["name"], fn.get("parameters"))
        for tool in body.get("tools") or ()
        if isinstance(tool, dict)
        and isinstance(fn := tool.get("function"), dict)
        and isinstance(fn.get("name"), str)
    ]
    choice = body.get("tool_choice")
    last_role = messages[-1].get("role") if messages else None
    if tools and choice != "none" and last_role not in ("tool", "function"):
        forced = None
        if isinstance(choice, dict):
            forced = (choice.get("function") or {}).get("name") or choice.get("name")
        prompt.tool_name, prompt.tool_schema = choose_tool(tools, forced)
    prompt.json_schema = _json_schema(body.get("response_format"))
    return prompt


def _json_schema(fmt: Any) -> JSON | None:
    """What response_format asks the model to write: a schema, {} for any object, None for text."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        return {}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise BadRequest(
                "Missing required parameter: 'response_format.json_schema.name'.", param="response_format"
            )
        schema = spec.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def _usage(ans: Answer) -> JSON:
    return {
        "prompt_tokens": ans.prompt_tokens,
        "completion_tokens": ans.completion_tokens,
        "total_tokens": ans.prompt_tokens + ans.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(ans: Answer) -> str:
    if ans.tool_name is not None:
        return "tool_calls"
    return "length" if ans.truncated else "stop"


# CreateChatCompletionRequest's properties in OpenAI's OpenAPI description: the API refuses any
# other top-level argument (Anthropic's cache_control among them).
CHAT_ARGUMENTS = frozenset(
    {"model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias"}
    | {"logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n"}
    | {"parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options"}
    | {"prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier", "seed"}
    | {"service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools"}
    | {"top_logprobs", "top_p", "user", "verbosity", "web_search_options"}
)


def chat_completions(call: Call) -> Reply:
    body = call.body
    unknown = next((name for name in body if name not in CHAT_ARGUMENTS), None)
    if unknown is not None:
        raise BadRequest(f"Unrecognized request argument supplied: {unknown}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("Missing required parameter: 'messages'.", param="messages")
    ans = answer(call.provider, model, _prompt(body, messages))
    completion_id = call.ids.make("chatcmpl-", 29)
    created = call.created
    tool_call_id = call.ids.make("call_", 24) if ans.tool_name is not None else ""
    arguments = orjson.dumps(ans.tool_args).decode() if ans.tool_name is not None else ""
    if body.get("stream") is True:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        frames = _stream_frames(ans, model, completion_id, created, tool_call_id, arguments, include_usage)
        return Reply(ans.prompt_tokens, model, frames=frames, content_type=SSE_CONTENT_TYPE)
    message: JSON = {"role": "assistant", "content": ans.text or None, "refusal": None, "annotations": []}
    if ans.tool_name is not None:
        message["tool_calls"] = [
            {
                "id": tool_call_id,
                "type": "function",
                "function": {"name": ans.tool_name, "arguments": arguments},
            }
        ]
    result = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(ans)}],
        "usage": _usage(ans),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    return Reply(ans.prompt_tokens, model, body=orjson.dumps(result))


def _stream_frames(
    ans: Answer,
    model: str,
    completion_id: str,
    created: int,
    tool_call_id: str,
    arguments: str,
    include_usage: bool,
) -> list[bytes]:
    head: JSON = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if include_usage:
        head["usage"] = None  # every chunk carries usage: null until the last one

    def frame(delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**head, "choices": [choice]}) + b"\n\n"

    if ans.tool_name is not None:
        first = {
            "index": 0,
            "id": tool_call_id,
            "type": "function",
            "function": {"name": ans.tool_name, "arguments": ""},
        }
        frames = [frame({"role": "assistant", "content": None, "tool_calls": [first], "refusal": None})]
        frames += [
            frame({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in _pieces(arguments)
        ]
    else:
        frames = [frame({"role": "assistant", "content": "", "refusal": None})]
        frames += [frame({"content": chunk}) for chunk in ans.chunks]
    frames.append(frame({}, _finish_reason(ans)))
    if include_usage:
        frames.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": _usage(ans)}) + b"\n\n")
    frames.append(_DONE)
    return frames


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# --- embeddings and models ----------------------------------------------------------------


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return list(value)
        if all(isinstance(item, int) for item in value):  # one pre-tokenized input
            return [" ".join(map(str, value))]
        if all(isinstance(item, list) for item in value):
            return [" ".join(map(str, item)) for item in value]
    raise BadRequest("'input' must be a string, an array of strings or an array of tokens.", param="input")


def embeddings(call: Call) -> Reply:
    body = call.body
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", param="model")
    if "input" not in body:
        raise BadRequest("Missing required parameter: 'input'.", param="input")
    inputs = _embedding_inputs(body["input"])
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
    if (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise BadRequest(
            f"'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}.", param="dimensions"
        )
    as_base64 = body.get("encoding_format") == "base64"  # the openai SDK asks for base64 by default
    data = []
    tokens = 0
    for index, text in enumerate(inputs):
        vector = embedding(text, dimensions)
        tokens += estimate_tokens(len(text))
        value: Any = base64.b64encode(embedding_bytes(vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    result = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return Reply(tokens, model, body=orjson.dumps(result))


def _model(model_id: str) -> JSON:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}


_MODELS_BODY = orjson.dumps({"object": "list", "data": [_model(m) for m in MODELS]})


def list_models(call: Call) -> Reply:
    return Reply(body=_MODELS_BODY)


def retrieve_model(call: Call) -> Reply:
    model_id = call.path_model or ""
    return Reply(model=model_id, body=orjson.dumps(_model(model_id)))
