"""The Gemini API (generativelanguage v1beta): generateContent, its stream, embeddings, models.

Errors follow google.rpc.Status: {"error": {"code", "message", "status", "details"}}. Choices
made from Google's observed behaviour (see tests/sim and the closing notes):
- no key: 403 PERMISSION_DENIED "Method doesn't allow unregistered callers ...";
- a refused key: 400 INVALID_ARGUMENT with an ErrorInfo of reason API_KEY_INVALID;
- 429: RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo{retryDelay} details and no
  Retry-After header, as Gemini sends none; a router has to read the body.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .content import Answer, Prompt, answer, choose_tool, embedding, estimate_tokens
from .wire import JSON, BadRequest, Call, Family, Reply, json_response, retry_after_header, text_of

MODELS = (
    ("gemini-3.1-flash-lite", "Gemini 3.1 Flash-Lite", ["generateContent", "countTokens"], 1048576, 65536),
    ("gemini-2.5-flash", "Gemini 2.5 Flash", ["generateContent", "countTokens"], 1048576, 65536),
    ("gemini-2.0-flash", "Gemini 2.0 Flash", ["generateContent", "countTokens"], 1048576, 8192),
    ("gemini-embedding-001", "Gemini Embedding 001", ["embedContent", "countTokens"], 2048, 1),
)
DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 8192
CACHED_CONTENT_TOKENS = 1024  # what a request naming `cachedContent` is taken to reuse
SSE_CONTENT_TYPE = "text/event-stream"
_SERVICE = "generativelanguage.googleapis.com"

_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


class GeminiFamily(Family):
    name = "gemini"
    key_headers = ("x-goog-api-key",)

    def api_key(self, request: web.BaseRequest) -> tuple[str | None, bool]:
        in_url = request.query.get("key")
        # The header wins when both are sent, but a key in the URL is still counted: it leaks
        # into access logs, which is what `key_in_url` lets tests prove a router never does.
        return request.headers.get("x-goog-api-key") or in_url or None, in_url is not None

    def auth_error(self, key: str | None) -> web.Response:
        if key is None:
            message = (
                "Method doesn't allow unregistered callers (callers without established identity)."
                " Please use API Key or other form of API consumer identity to call this API."
            )
            return _error(403, "PERMISSION_DENIED", message)
        message = "API key not valid. Please pass a valid API key."
        details: list[JSON] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": _SERVICE},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            },
        ]
        return _error(400, "INVALID_ARGUMENT", message, details)

    def error(
        self, status: int, *, retry_after: float | None = None, model: str | None = None
    ) -> web.Response:
        fallback = (
            ("UNAVAILABLE" if status in (502, 529) else "INTERNAL")
            if status >= 500
            else "FAILED_PRECONDITION"
        )
        grpc_status, message = _STATUS.get(status, (fallback, "Error"))
        details: list[JSON] = []
        if status == 429:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": f"{_SERVICE}/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": model or "unknown"},
                            "quotaValue": "10",
                        }
                    ],
                }
            )
            retry_after = 1.0 if retry_after is None else retry_after
        if retry_after is not None:
            delay = retry_after_header(retry_after)
            message = f"{message} Please retry in {delay}s." if status == 429 else message
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"})
        return _error(status, grpc_status, message, details)

    def bad_request(self, exc: BadRequest) -> web.Response:
        grpc_status = _STATUS.get(exc.status, ("INVALID_ARGUMENT", ""))[0]
        return _error(exc.status, grpc_status, exc.message)

    def context_error(self, tokens: int, limit: int) -> web.Response:
        message = f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit})."
        return _error(400, "INVALID_ARGUMENT", message)


def _error(status: int, grpc_status: str, message: str, details: list[JSON] | None = None) -> web.Response:
    error: JSON = {"code": status, "message": message, "status": grpc_status}
    if details:
        error["details"] = details
    return json_response(status, {"error": error})


# --- generateContent ----------------------------------------------------------------------


def _part_chars(part: Any) -> int:
    if not isinstance(part, dict):
        return 0
    if isinstance(part.get("text"), str):
        return len(part["text"])
    for key in ("functionCall", "functionResponse"):
        if isinstance(part.get(key), dict):
            return len(orjson.dumps(part[key]))
    return 0


def _parts(content: Any) -> list[Any]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def _prompt(body: JSON) -> tuple[Prompt, int]:
    """The prompt, and the cached tokens it reuses (counted inside the prompt, as Gemini does)."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified\n")
    chars = sum(_part_chars(p) for p in _parts(body.get("systemInstruction")))
    last_user: str | None = None
    for content in reversed(contents):
        if not isinstance(content, dict):
            raise BadRequest("Invalid value at 'contents': expected a Content object")
        parts = _parts(content)
        chars += sum(_part_chars(p) for p in parts)
        has_text = any(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts)
        if last_user is None and has_text and content.get("role", "user") == "user":
            last_user = text_of(parts)
    prompt = Prompt(chars=chars, last_user_text=last_user or "")
    config = body.get("generationConfig") or {}
    max_tokens = config.get("maxOutputTokens") if isinstance(config, dict) else None
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        prompt.max_tokens = max_tokens
    tools = [
        (decl["name"], decl.get("parameters") or decl.get("parametersJsonSchema"))
        for tool in body.get("tools") or ()
        if isinstance(tool, dict)
        for decl in tool.get("functionDeclarations") or ()
        if isinstance(decl, dict) and isinstance(decl.get("name"), str)
    ]
    calling = ((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}
    mode = str(calling.get("mode", "AUTO")).upper()
    after_tool_result = any(isinstance(p, dict) and "functionResponse" in p for p in _parts(contents[-1]))
    if tools and mode != "NONE" and not after_tool_result:
        allowed = calling.get("allowedFunctionNames") or []
        forced = allowed[0] if mode in ("ANY", "VALIDATED") and allowed else None
        prompt.tool_name, prompt.tool_schema = choose_tool(tools, forced)
    if isinstance(config, dict) and config.get("responseMimeType") == "application/json":
        schema = config.get("responseSchema") or config.get("responseJsonSchema")
        prompt.json_schema = schema if isinstance(schema, dict) else {}
    cached = CACHED_CONTENT_TOKENS if body.get("cachedContent") else 0
    return prompt, cached


def _usage(prompt_tokens: int, cached: int, completion_tokens: int) -> JSON:
    usage: JSON = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": completion_tokens,
        "totalTokenCount": prompt_tokens + completion_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    return usage


def _finish(ans: Answer) -> str:
    return "MAX_TOKENS" if ans.truncated else "STOP"


def _candidate(parts: list[JSON], finish: str | None) -> JSON:
    candidate: JSON = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return candidate


def generate(call: Call) -> Reply:
    model = call.path_model or ""
    prompt, cached = _prompt(call.body)
    ans = answer(call.provider, model, prompt)
    prompt_tokens = ans.prompt_tokens + cached
    response_id = call.ids.make("", 23)

    def response(parts: list[JSON], finish: str | None, completion_tokens: int) -> JSON:
        return {
            "candidates": [_candidate(parts, finish)],
            "usageMetadata": _usage(prompt_tokens, cached, completion_tokens),
            "modelVersion": model,
            "responseId": response_id,
        }

    steps: list[tuple[list[JSON], int]]
    if ans.tool_name is not None:
        steps = [([{"functionCall": {"name": ans.tool_name, "args": ans.tool_args}}], ans.completion_tokens)]
    elif call.stream:
        steps = [([{"text": chunk}], i + 1) for i, chunk in enumerate(ans.chunks)] or [([{"text": ""}], 0)]
    else:
        steps = [([{"text": ans.text}], ans.completion_tokens)]
    # Usage rides on every chunk and is cumulative, so the last one is the call's count.
    objects = [
        response(parts, _finish(ans) if i == len(steps) - 1 else None, tokens)
        for i, (parts, tokens) in enumerate(steps)
    ]
    if not call.stream:
        return Reply(prompt_tokens, model, body=orjson.dumps(objects[0]))
    if call.request.query.get("alt") == "sse":
        frames = [b"data: " + orjson.dumps(obj) + b"\r\n\r\n" for obj in objects]
        return Reply(prompt_tokens, model, frames=frames, content_type=SSE_CONTENT_TYPE)
    # Without alt=sse Gemini streams one JSON array, element by element.
    frames = [(b"[" if i == 0 else b",\r\n") + orjson.dumps(obj) for i, obj in enumerate(objects)]
    frames.append(b"]")
    return Reply(prompt_tokens, model, frames=frames, content_type="application/json")


def count_tokens(call: Call) -> Reply:
    body = call.body
    request = body.get("generateContentRequest")
    prompt, cached = _prompt(request if isinstance(request, dict) else body)
    total = prompt.tokens + cached
    return Reply(total, call.path_model, body=orjson.dumps({"totalTokens": total}))


# --- embeddings and models ----------------------------------------------------------------


def _embed_one(request: Any) -> tuple[JSON, int]:
    if not isinstance(request, dict) or not isinstance(request.get("content"), dict):
        raise BadRequest("* EmbedContentRequest.content: content is not specified\n")
    text = text_of(_parts(request["content"]))
    dimensions = request.get("outputDimensionality", DEFAULT_DIMENSIONS)
    if (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise BadRequest(f"outputDimensionality must be between 1 and {MAX_DIMENSIONS}.")
    return {"values": list(embedding(text, dimensions))}, estimate_tokens(len(text))


def embed_content(call: Call) -> Reply:
    values, tokens = _embed_one(call.body)
    return Reply(tokens, call.path_model, body=orjson.dumps({"embedding": values}))


def batch_embed_contents(call: Call) -> Reply:
    requests = call.body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    results = [_embed_one(request) for request in requests]
    tokens = sum(t for _, t in results)
    return Reply(tokens, call.path_model, body=orjson.dumps({"embeddings": [v for v, _ in results]}))


def _model(model_id: str, display: str, methods: list[str], input_limit: int, output_limit: int) -> JSON:
    return {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": display,
        "description": f"Simulated {display}",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": methods,
    }


_MODELS_BODY = orjson.dumps({"models": [_model(*m) for m in MODELS]})


def list_models(call: Call) -> Reply:
    return Reply(body=_MODELS_BODY)


def get_model(call: Call) -> Reply:
    model_id = call.path_model or ""
    known = {m[0]: m for m in MODELS}
    entry = known.get(model_id, (model_id, model_id, ["generateContent", "countTokens"], 1048576, 8192))
    return Reply(model=model_id, body=orjson.dumps(_model(*entry)))
