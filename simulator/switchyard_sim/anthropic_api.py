"""Anthropic's Messages API: JSON, its named-event stream, token counting, models, errors.

Errors are {"type": "error", "error": {"type", "message"}, "request_id"} with the error types
Anthropic documents: invalid_request_error 400, authentication_error 401, permission_error 403,
not_found_error 404, request_too_large 413, rate_limit_error 429, api_error 500,
overloaded_error 529 (503 here too), timeout_error 504.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

from .content import Answer, Prompt, answer, choose_tool
from .wire import JSON, BadRequest, Call, Family, Reply, json_response, retry_after_header, text_of

# Listed by GET /v1/models; any model name is accepted by /v1/messages.
MODELS = (
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
    ("claude-opus-4-7", "Claude Opus 4.7", "2026-04-16T00:00:00Z"),
)
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed your organization's rate limit. Please try again later.",
    ),
    500: ("api_error", "Internal server error"),
    503: ("overloaded_error", "Overloaded"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicFamily(Family):
    name = "anthropic"
    key_headers = ("x-api-key", "authorization")

    def response_headers(self) -> dict[str, str]:
        return {"request-id": self.ids.make("req_011C", 20)}

    def api_key(self, request: web.BaseRequest) -> tuple[str | None, bool]:
        key = request.headers.get("x-api-key")
        if key:
            return key, False
        # Recent anthropic SDKs send an API key as a bearer token, so both are accepted.
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return (token.strip() or None, False) if scheme.lower() == "bearer" else (None, False)

    def auth_error(self, key: str | None) -> web.Response:
        message = "x-api-key header is required" if key is None else "invalid x-api-key"
        return self._error(401, "authentication_error", message)

    def error(
        self, status: int, *, retry_after: float | None = None, model: str | None = None
    ) -> web.Response:
        type_, message = _ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error")
        )
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = retry_after_header(retry_after)
        if status == 529:
            headers["x-should-retry"] = "true"  # what Anthropic sends with overloaded errors
        return self._error(status, type_, message, headers)

    def bad_request(self, exc: BadRequest) -> web.Response:
        return self._error(exc.status, "invalid_request_error", exc.message)

    def context_error(self, tokens: int, limit: int) -> web.Response:
        return self._error(
            400, "invalid_request_error", f"prompt is too long: {tokens} tokens > {limit} maximum"
        )

    def _error(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        request_id = self.ids.make("req_011C", 20)
        body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
        return json_response(status, body, {**(headers or {}), "request-id": request_id})


def _check_version(call: Call) -> None:
    if not call.request.headers.get("anthropic-version"):
        raise BadRequest("anthropic-version: header is required")


def _block_chars(block: Any) -> int:
    if isinstance(block, str):
        return len(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text", "")))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(_block_chars(item) for item in content)
        return len(content) if isinstance(content, str) else 0
    if kind == "tool_use":
        return len(orjson.dumps(block.get("input", {})))
    return 0


def _content_chars(content: Any) -> int:
    if isinstance(content, list):
        return sum(_block_chars(block) for block in content)
    return _block_chars(content)


def _prompt(body: JSON) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required")
    chars = _content_chars(body.get("system"))
    last_user: str | None = None
    for message in reversed(messages):
        if not isinstance(message, dict):
            raise BadRequest("messages: Input should be a valid list of message objects")
        content = message.get("content")
        chars += _content_chars(content)
        if last_user is None and message.get("role") == "user":
            text = text_of(content)
            # A user turn holding only tool results has no text; the question came earlier.
            if text or isinstance(content, str):
                last_user = text
    prompt = Prompt(chars=chars, last_user_text=last_user or "")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise BadRequest("max_tokens: Field required")
    prompt.max_tokens = max_tokens
    tools = [
        (tool["name"], tool.get("input_schema"))
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    ]
    choice = body.get("tool_choice") or {}
    choice_type = choice.get("type") if isinstance(choice, dict) else None
    last = messages[-1]
    last_content = last.get("content")
    after_tool_result = (
        last.get("role") == "user"
        and isinstance(last_content, list)
        and any(isinstance(block, dict) and block.get("type") == "tool_result" for block in last_content)
    )
    if tools and choice_type != "none" and not after_tool_result:
        forced = choice.get("name") if choice_type == "tool" else None
        prompt.tool_name, prompt.tool_schema = choose_tool(tools, forced)
    for i, tool in enumerate(body.get("tools") or ()):
        if isinstance(tool, dict) and tool.get("strict") is True:
            _check_schema(tool.get("input_schema"), f"tools.{i}.input_schema")
    output_format = (body.get("output_config") or {}).get("format")
    if output_format is not None:
        prompt.json_schema = _output_schema(output_format)
    return prompt


# What structured outputs accept beside the nested schemas (the SDK's schema transform keeps
# these and moves every other keyword into the description).
_SCHEMA_KEYS = frozenset(
    {"type", "description", "title", "enum", "const", "anyOf", "allOf", "$ref", "$defs"}
    | {"properties", "required", "additionalProperties", "items", "minItems", "format"}
)


def _output_schema(output_format: Any) -> JSON:
    if not isinstance(output_format, dict) or output_format.get("type") != "json_schema":
        raise BadRequest("output_config.format.type: Input should be 'json_schema'")
    schema = output_format.get("schema")
    if not isinstance(schema, dict):
        raise BadRequest("output_config.format.schema: Field required")
    _check_schema(schema, "output_config.format.schema")
    return schema


def _check_schema(node: Any, where: str) -> None:
    """Refuses what constrained decoding cannot enforce, as the API does."""
    if not isinstance(node, dict):
        raise BadRequest(f"{where}: Input should be a valid dictionary")
    unknown = sorted(set(node) - _SCHEMA_KEYS)
    if unknown:
        raise BadRequest(f"{where}: unsupported keyword {unknown[0]!r} for structured outputs")
    if node.get("type") == "object" and node.get("additionalProperties") is not False:
        raise BadRequest(f"{where}: objects must set 'additionalProperties' to false")
    if node.get("minItems", 0) not in (0, 1):
        raise BadRequest(f"{where}: minItems must be 0 or 1")
    for key in ("properties", "$defs"):
        for name, sub in (node.get(key) or {}).items():
            _check_schema(sub, f"{where}.{key}.{name}")
    for key in ("anyOf", "allOf"):
        for i, sub in enumerate(node.get(key) or ()):
            _check_schema(sub, f"{where}.{key}[{i}]")
    if "items" in node:
        _check_schema(node["items"], f"{where}.items")


def _stop_reason(ans: Answer) -> str:
    if ans.tool_name is not None:
        return "tool_use"
    return "max_tokens" if ans.truncated else "end_turn"


def _content(ans: Answer, tool_id: str) -> list[JSON]:
    if ans.tool_name is not None:
        return [{"type": "tool_use", "id": tool_id, "name": ans.tool_name, "input": ans.tool_args}]
    return [{"type": "text", "text": ans.text}]


def _prompt_blocks(body: JSON) -> list[Any]:
    """The prompt in the order Anthropic caches it: tools, system, then the messages' blocks."""
    blocks: list[Any] = list(body.get("tools") or ())
    for content in (body.get("system"), *(m.get("content") for m in body["messages"])):
        if isinstance(content, str) and content:  # a string is one text block to the cache
            blocks.append({"type": "text", "text": content})
        elif isinstance(content, list):
            blocks += content
    return blocks


def _cache_use(body: JSON, cache: set[bytes]) -> tuple[int, int]:
    """(tokens written to, tokens read from) the prompt cache. The prefix up to the last
    breakpoint (a marked block; the last block with a top-level cache_control) is cached; a hit
    is the longest earlier prefix already cached, as the API looks back from a breakpoint."""
    blocks = _prompt_blocks(body)
    marked = [i for i, b in enumerate(blocks) if isinstance(b, dict) and "cache_control" in b]
    if isinstance(body.get("cache_control"), dict) and blocks:
        marked.append(len(blocks) - 1)
    if not marked:
        return 0, 0
    digest, chars, prefixes = b"", 0, []
    for block in blocks[: max(marked) + 1]:
        unmarked = (
            {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block
        )
        digest = hashlib.blake2b(digest + orjson.dumps(unmarked), digest_size=16).digest()
        chars += _block_chars(block)
        prefixes.append((digest, chars))
    read = next((c for d, c in reversed(prefixes) if d in cache), 0)
    cache.add(prefixes[-1][0])
    return (prefixes[-1][1] - read) // 4, read // 4


def _usage(ans: Answer, output_tokens: int, cache: tuple[int, int] = (0, 0)) -> JSON:
    written, read = cache
    return {
        "input_tokens": max(0, ans.prompt_tokens - written - read),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def messages(call: Call) -> Reply:
    _check_version(call)
    body = call.body
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    ans = answer(call.provider, model, _prompt(body))
    cache = _cache_use(body, call.prompt_cache)
    message_id = call.ids.make("msg_01", 22)
    tool_id = call.ids.make("toolu_01", 22) if ans.tool_name is not None else ""
    if body.get("stream") is True:
        frames = _stream_frames(ans, model, message_id, tool_id, cache)
        return Reply(ans.prompt_tokens, model, frames=frames, content_type=SSE_CONTENT_TYPE)
    result = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content(ans, tool_id),
        "stop_reason": _stop_reason(ans),
        "stop_sequence": None,
        "usage": _usage(ans, ans.completion_tokens, cache),
    }
    return Reply(ans.prompt_tokens, model, body=orjson.dumps(result))


def _event(kind: str, data: JSON) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _stream_frames(
    ans: Answer, model: str, message_id: str, tool_id: str, cache: tuple[int, int]
) -> list[bytes]:
    start: JSON = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(ans, 1, cache),  # Anthropic reports a placeholder output count at the start
    }
    frames = [_event("message_start", {"type": "message_start", "message": start})]
    if ans.tool_name is not None:
        block: JSON = {"type": "tool_use", "id": tool_id, "name": ans.tool_name, "input": {}}
        arguments = orjson.dumps(ans.tool_args).decode()
        pieces = [""] + [arguments[i : i + 8] for i in range(0, len(arguments), 8)]
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": chunk} for chunk in ans.chunks]
    frames.append(
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    )
    frames.append(_event("ping", {"type": "ping"}))
    frames += [
        _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        for delta in deltas
    ]
    frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    frames.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(ans), "stop_sequence": None},
                "usage": {"output_tokens": ans.completion_tokens},
            },
        )
    )
    frames.append(_event("message_stop", {"type": "message_stop"}))
    return frames


def count_tokens(call: Call) -> Reply:
    _check_version(call)
    body = call.body
    prompt = _prompt({**body, "max_tokens": 0})  # count_tokens takes no max_tokens
    return Reply(prompt.tokens, body.get("model"), body=orjson.dumps({"input_tokens": prompt.tokens}))


def _model(model_id: str, display_name: str, created_at: str) -> JSON:
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": created_at}


_MODELS_BODY = orjson.dumps(
    {
        "data": [_model(*m) for m in MODELS],
        "has_more": False,
        "first_id": MODELS[0][0],
        "last_id": MODELS[-1][0],
    }
)


def list_models(call: Call) -> Reply:
    _check_version(call)
    return Reply(body=_MODELS_BODY)


def retrieve_model(call: Call) -> Reply:
    _check_version(call)
    model_id = call.path_model or ""
    known = {m[0]: m for m in MODELS}
    entry = known.get(model_id, (model_id, model_id, "2025-01-01T00:00:00Z"))
    return Reply(model=model_id, body=orjson.dumps(_model(*entry)))
