"""Anthropic Messages API <-> OpenAI chat completions.

Request: OpenAI's messages become Anthropic's alternating user/assistant turns of content blocks,
system and developer messages move to the top-level `system`, tool calls and tool results become
tool_use and tool_result blocks. Response: content blocks back into one assistant message.
Stream: Anthropic's typed events (message_start, content_block_*, message_delta, message_stop)
into chat.completion.chunk frames. Errors: Anthropic's `{"type": "error", "error": {...}}` body.
Everything is plain dicts and orjson: this runs per request in a sidecar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import orjson

from .. import clock
from ..errors import ErrorKind, UpstreamError, kind_from_status, parse_retry_after
from ..table import Provider
from .anthropic_schema import anthropic_schema
from .base import (
    JSON,
    SSE_DONE,
    ProviderAdapter,
    StreamState,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    sse_frame,
    upstream_request_id,
    valid_request_id,
)
from .reasoning import anthropic_thinking

API_VERSION = "2023-06-01"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server tool paused the turn; OpenAI has no better word
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

ERROR_KINDS = {
    "overloaded_error": ErrorKind.OVERLOADED,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "authentication_error": ErrorKind.UNAUTHORIZED,
    "permission_error": ErrorKind.UNAUTHORIZED,
    # The account cannot pay: another key or provider can serve, the client did nothing wrong.
    "billing_error": ErrorKind.UNAUTHORIZED,
    "api_error": ErrorKind.SERVER_ERROR,
    "timeout_error": ErrorKind.TIMEOUT,
    # Over Anthropic's 32 MB byte limit: a limit of this provider, like a context window, so
    # another target may take it (and kind_from_status(413) says the same).
    "request_too_large": ErrorKind.CONTEXT_LENGTH_EXCEEDED,
    # The model comes from the routing table, not the client: a broken target, not a bad request.
    "not_found_error": ErrorKind.SERVER_ERROR,
    "invalid_request_error": ErrorKind.BAD_REQUEST,
}

# invalid_request_error messages that are really about size or the account, not the request.
_CONTEXT_PHRASES = ("prompt is too long", "exceed context limit")
_BILLING_PHRASES = ("credit balance",)

_EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}

_COUNTED = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
)


def _bad(field: str, problem: str) -> UpstreamError:
    return UpstreamError(ErrorKind.BAD_REQUEST, f"{field} {problem}")


def anthropic_headers(provider: Provider, key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION}
    headers.update(provider.headers)  # e.g. anthropic-beta, or a newer anthropic-version
    if key:
        headers["x-api-key"] = key
    return headers


# ---------------------------------------------------------------------------------------------
# Request


def _text_block(text: str) -> JSON:
    return {"type": "text", "text": text}


def _marked(block: JSON, source: JSON) -> JSON:
    """Keeps a prompt-caching breakpoint set on an OpenAI part, message or tool (the
    convention OpenRouter and LiteLLM follow) on the Anthropic block made from it."""
    mark = source.get("cache_control")
    if isinstance(mark, dict):
        block["cache_control"] = mark
    return block


def _text_blocks(content: Any, where: str) -> list[JSON]:
    """String or text parts (system, developer and tool messages accept nothing else)."""
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    if content is None:
        return []
    if not isinstance(content, list):
        raise _bad(f"{where}.content", "must be a string or an array of content parts")
    blocks = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise _bad(f"{where}.content[{j}]", "must be a text part")
        if part.get("text"):  # Anthropic refuses empty text blocks
            blocks.append(_marked(_text_block(part["text"]), part))
    return blocks


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 data URL."""
    header, comma, data = url[5:].partition(",") if url.startswith("data:") else ("", "", "")
    params = header.split(";")
    return (params[0], data) if comma and "base64" in params[1:] else None


def _image_block(part: JSON, where: str) -> JSON:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _bad(f"{where}.image_url.url", "is required")
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    inline = _data_url(url)
    if inline is None:
        raise _bad(f"{where}.image_url.url", "must be an http(s) URL or a base64 data URL")
    return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}


def _document_block(part: JSON, where: str) -> JSON:
    """An OpenAI file part (a PDF, as the SDKs send it) as Anthropic's document block."""
    file = part.get("file")
    if not isinstance(file, dict):
        file = {}
    data = file.get("file_data")
    inline = _data_url(data) if isinstance(data, str) else None
    if inline is None or inline[0] != "application/pdf":
        raise _bad(
            f"{where}.file.file_data",
            "must be a base64 data URL of a PDF for Anthropic (a file_id cannot be sent there)",
        )
    block: JSON = {
        "type": "document",
        "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
    }
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _user_blocks(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    if not isinstance(content, list):
        raise _bad(f"{where}.content", "must be a string or an array of content parts")
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append(_marked(_text_block(part["text"]), part))
        elif kind == "image_url":
            blocks.append(_marked(_image_block(part, f"{where}.content[{j}]"), part))
        elif kind == "file":
            blocks.append(_marked(_document_block(part, f"{where}.content[{j}]"), part))
        else:
            raise _bad(f"{where}.content[{j}].type", f"{kind!r} is not supported for Anthropic")
    return blocks


def _tool_use_block(call: Any, where: str) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name") or not call.get("id"):
        raise _bad(where, "needs an id and a function with a name")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        raise _bad(f"{where}.function.arguments", "is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _bad(f"{where}.function.arguments", "must be a JSON object in a string")
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": parsed}


def _assistant_blocks(message: JSON, where: str) -> list[JSON]:
    content = message.get("content")
    if isinstance(content, list):  # text and refusal parts; a past refusal is still text said
        content = [
            {"type": "text", "text": p.get("text") or p.get("refusal") or ""}
            if isinstance(p, dict) and p.get("type") == "refusal"
            else p
            for p in content
        ]
    blocks = _text_blocks(content, where)
    calls = message.get("tool_calls") or ()
    for j, call in enumerate(calls):
        blocks.append(_tool_use_block(call, f"{where}.tool_calls[{j}]"))
    return blocks


def _tool_result_block(message: JSON, where: str) -> JSON:
    tool_call_id = message.get("tool_call_id")
    if not tool_call_id:
        raise _bad(f"{where}.tool_call_id", "is required")
    block: JSON = {"type": "tool_result", "tool_use_id": tool_call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        texts = _text_blocks(content, where)
        for text in texts:  # Anthropic takes a breakpoint on the tool_result, not inside it
            if "cache_control" in text:
                block["cache_control"] = text.pop("cache_control")
        if texts:
            block["content"] = texts
    return block


def _translate_messages(messages: Any) -> tuple[list[JSON], list[JSON]]:
    """(system blocks, turns): Anthropic wants strict user/assistant alternation, so
    consecutive turns of one role merge, which also groups parallel tool results."""
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty array")
    system: list[JSON] = []
    turns: list[JSON] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(_mark_last(_text_blocks(message.get("content"), where), message))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), where)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            role, blocks = "user", [_tool_result_block(message, where)]
        else:
            raise _bad(f"{where}.role", f"{role!r} is not supported for Anthropic")
        if not blocks:
            continue  # Anthropic refuses empty turns
        _mark_last(blocks, message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _mark_last(blocks: list[JSON], message: JSON) -> list[JSON]:
    """A breakpoint on a whole message belongs on its last block."""
    if blocks and isinstance(message.get("cache_control"), dict):
        blocks[-1] = {**blocks[-1], "cache_control": message["cache_control"]}
    return blocks


def _tool(tool: Any, where: str) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function" or not function.get("name"):
        raise _bad(where, "must be a function tool with a name")
    schema = function.get("parameters") or _EMPTY_SCHEMA
    out: JSON = {"name": function["name"], "input_schema": schema}
    if function.get("strict") is True:  # validated inputs: Anthropic's strict tool use
        out["input_schema"] = anthropic_schema(schema)
        out["strict"] = True
    if function.get("description"):
        out["description"] = function["description"]
    return _marked(out, tool)


def _tool_choice(choice: Any) -> JSON:
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if name:
            return {"type": "tool", "name": name}
    raise _bad("tool_choice", "must be auto, required, none or a named function")


def _add_tools(body: JSON, out: JSON) -> None:
    tools = body.get("tools")
    if not tools:
        return  # a tool_choice without tools means nothing; Anthropic would refuse it
    out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    out["tool_choice"] = choice


def _add_sampling(body: JSON, out: JSON) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        # OpenAI allows 0..2, Anthropic 0..1: clamp so a fallback to Anthropic is not refused.
        if isinstance(temperature, int | float) and temperature > 1:
            temperature = 1.0
        out["temperature"] = temperature
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("top_k") is not None:  # not OpenAI's, but clients send it for the others
        out["top_k"] = body["top_k"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)


# Anthropic has no JSON mode without a schema: the instruction is what it documents instead.
JSON_OBJECT_INSTRUCTION = "Reply with one valid JSON object and nothing else."


def _add_response_format(fmt: Any, out: JSON, system: list[JSON]) -> None:
    """OpenAI's response_format: a JSON schema becomes structured output (output_config.format),
    JSON mode an instruction; without either a fallback to Anthropic would answer in prose."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise _bad("response_format.json_schema.schema", "must be a JSON schema object")
        out["output_config"] = {"format": {"type": "json_schema", "schema": anthropic_schema(spec["schema"])}}
    elif kind == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})


def _request_body(provider: Provider, model: str, body: JSON, stream: bool) -> JSON:
    if body.get("n") not in (None, 1):
        raise _bad("n", "must be 1: Anthropic returns a single choice")
    system, turns = _translate_messages(body.get("messages"))
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or provider.default_max_tokens
    out: JSON = {"model": model, "max_tokens": max_tokens, "messages": turns}
    _add_response_format(body.get("response_format"), out, system)
    if system:
        plain = len(system) == 1 and "cache_control" not in system[0]
        out["system"] = system[0]["text"] if plain else system
    if stream:
        out["stream"] = True
    _add_sampling(body, out)
    anthropic_thinking(provider, model, body, out)
    _add_tools(body, out)
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    _add_cache_control(provider, body, out, system)
    return out


def _add_cache_control(provider: Provider, body: JSON, out: JSON, system: list[JSON]) -> None:
    """Automatic prompt caching (Anthropic caches only what a request marks): the client's own
    top-level `cache_control`, else the provider's promptCache when the client marked nothing."""
    if isinstance(body.get("cache_control"), dict):
        out["cache_control"] = body["cache_control"]
        return
    if provider.prompt_cache is None:
        return
    blocks = [*system, *out.get("tools", ()), *(b for turn in out["messages"] for b in turn["content"])]
    if not any("cache_control" in block for block in blocks):
        out["cache_control"] = {"type": "ephemeral", "ttl": provider.prompt_cache}


# ---------------------------------------------------------------------------------------------
# Response and usage


def count_usage(counts: dict[str, int], raw: Any) -> Usage:
    """Fold Anthropic's usage into `counts` (fields absent or null keep their value: a stream's
    message_delta may repeat only output_tokens) and express it as OpenAI counts it:
    prompt tokens include cache reads and cache writes, cached tokens are the reads."""
    if isinstance(raw, dict):
        for name in _COUNTED:
            value = raw.get(name)
            if isinstance(value, int):
                counts[name] = value
        details = raw.get("output_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
            counts["thinking_tokens"] = details["thinking_tokens"]
    cache_read = counts.get("cache_read_input_tokens", 0)
    cache_write = counts.get("cache_creation_input_tokens", 0)
    return Usage(
        input_tokens=counts.get("input_tokens", 0) + cache_read + cache_write,
        output_tokens=counts.get("output_tokens", 0),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=counts.get("thinking_tokens", 0),
        reported=bool(counts),
    )


def _tool_call(block: JSON) -> JSON:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": arguments},
    }


def _completion(data: JSON, model: str, usage: Usage) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        # thinking, server tool blocks...: OpenAI's chat completion has no place for them
    message: JSON = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{data.get('id') or uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(clock.time()),
        "model": data.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(data.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": usage.to_openai(),
    }


# ---------------------------------------------------------------------------------------------
# Errors


def _classify(detail: JSON, status: int | None, retry_after: float | None = None) -> UpstreamError:
    """An Anthropic error object ({"type", "message"}), from an HTTP body or a stream event."""
    type_ = str(detail.get("type") or "")
    message = str(detail.get("message") or "") or f"upstream answered {type_ or f'HTTP {status}'}"
    kind = ERROR_KINDS.get(type_)
    if kind is None:
        kind = kind_from_status(status) if status else ErrorKind.SERVER_ERROR
    elif kind is ErrorKind.BAD_REQUEST:
        lowered = message.lower()
        if any(phrase in lowered for phrase in _CONTEXT_PHRASES):
            kind = ErrorKind.CONTEXT_LENGTH_EXCEEDED
        elif any(phrase in lowered for phrase in _BILLING_PHRASES):
            kind = ErrorKind.UNAUTHORIZED
    return UpstreamError(kind, message, status=status, retry_after=retry_after)


def _error_detail(body: bytes) -> tuple[JSON | None, str | None]:
    """The error object of an Anthropic error body, and the request id the body carries
    (`request_id`, beside `error`: what identifies it when no request-id header came)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    detail = data.get("error")
    return (detail if isinstance(detail, dict) else None), valid_request_id(data.get("request_id"))


# ---------------------------------------------------------------------------------------------
# Stream


class AnthropicStream(StreamTranslator):
    """Anthropic numbers content blocks (text and tool_use alike); OpenAI numbers tool calls
    only, so each tool_use block gets the next tool call index."""

    def __init__(self, state: StreamState) -> None:
        super().__init__(state)
        self.done = False
        self._finish_sent = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
        self._counts: dict[str, int] = {}

    def feed(self, event: str | None, data: bytes) -> bytes:
        if event == "ping":
            return b""
        try:
            payload = self.load(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(ErrorKind.SERVER_ERROR, "upstream sent an event that is not JSON") from None
        if not isinstance(payload, dict):
            raise UpstreamError(ErrorKind.SERVER_ERROR, "upstream sent an event that is not an object")
        kind = event or payload.get("type")
        # Most frequent first. Unknown events are skipped: Anthropic may add new ones.
        if kind == "content_block_delta":
            return self._block_delta(payload)
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "message_start":
            return self._message_start(payload)
        if kind == "message_delta":
            return self._message_delta(payload)
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            detail = payload.get("error")
            raise _classify(detail if isinstance(detail, dict) else {}, None)
        return b""

    def _frame(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        return sse_frame(self.chunk(delta, finish_reason))

    def _message_start(self, payload: JSON) -> bytes:
        message = payload.get("message") or {}
        if message.get("model"):
            self.state.model = message["model"]  # the upstream's own name, as a pass-through shows
        self.usage = count_usage(self._counts, message.get("usage"))
        return self._frame({"role": "assistant", "content": ""})

    def _block_start(self, payload: JSON) -> bytes:
        block = payload.get("content_block") or {}
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return self._frame({"content": block["text"]})
        if kind != "tool_use":
            return b""  # thinking and server tool blocks have no OpenAI counterpart
        index = len(self._tool_index)
        self._tool_index[payload.get("index", -1)] = index
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return self._frame({"tool_calls": [call]})

    def _block_delta(self, payload: JSON) -> bytes:
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self._frame({"content": delta.get("text", "")})
        if kind == "input_json_delta":
            index = self._tool_index.get(payload.get("index", -1))
            fragment = delta.get("partial_json")
            if index is None or not fragment:
                return b""  # a server tool's input, or the empty fragment that opens a block
            return self._frame({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        return b""  # thinking, signature and citations deltas

    def _message_delta(self, payload: JSON) -> bytes:
        self.usage = count_usage(self._counts, payload.get("usage"))
        self.usage_final = True  # message_start told the prompt's; this, the final output count
        stop_reason = (payload.get("delta") or {}).get("stop_reason")
        if not stop_reason:
            return b""
        self._finish_sent = True
        return self._frame({}, FINISH_REASONS.get(stop_reason, "stop"))

    def _message_stop(self) -> bytes:
        self.done = True
        if self._finish_sent:
            return b""
        self._finish_sent = True  # no stop_reason came; OpenAI clients still wait for one
        return self._frame({}, "stop")

    def finish(self) -> bytes:
        if not self.done:
            raise UpstreamError(ErrorKind.CONNECTION_ERROR, "upstream stream ended before message_stop")
        return self.usage_chunk() + SSE_DONE


# ---------------------------------------------------------------------------------------------
# Adapter


class AnthropicAdapter(ProviderAdapter):
    def chat_request(
        self, provider: Provider, key: str | None, model: str, body: JSON, stream: bool
    ) -> UpstreamRequest:
        upstream = _request_body(provider, model, body, stream)
        return UpstreamRequest(
            f"{provider.base_url}/v1/messages", anthropic_headers(provider, key), orjson.dumps(upstream)
        )

    def chat_response(self, body: bytes, model: str) -> tuple[bytes, Usage]:
        data = self.answer(body)
        usage = count_usage({}, data.get("usage"))
        return orjson.dumps(_completion(data, model, usage)), usage

    def stream(self, state: StreamState) -> StreamTranslator:
        return AnthropicStream(state)

    def models_request(self, provider: Provider, key: str | None) -> UpstreamRequest:
        url = f"{provider.base_url}/v1/models"
        return UpstreamRequest(url, anthropic_headers(provider, key), method="GET")

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        detail, body_id = _error_detail(body)
        if detail is None:  # not Anthropic's JSON (a proxy's HTML page, an empty body)
            return super().error(status, headers, body)
        err = _classify(detail, status, parse_retry_after(headers.get("retry-after")))
        err.request_id = upstream_request_id(headers) or body_id
        return err
