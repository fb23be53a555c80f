"""The Anthropic Messages API (`POST /v1/messages`) served over every provider family.

To an Anthropic target the request goes as the client sent it (only `model` is the target's):
thinking blocks and their signatures, cache_control, tools and documents reach it intact, and
its answer and events come back as they are, counted on the way. To an OpenAI-style or Gemini
target the request becomes the router's internal chat request (OpenAI's chat completions, which
every adapter takes), and the answer or chunk stream goes back as a Message or Anthropic's events.
What has no counterpart there is refused with a 400 naming the field; what changes no answer
(a past turn's thinking, cache breakpoints: those families cache by themselves) is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import uuid4

import orjson

from ..adapters.anthropic import AnthropicStream, anthropic_headers, count_usage
from ..adapters.base import JSON, StreamState, StreamTranslator, UpstreamRequest, Usage
from ..errors import ErrorKind, UpstreamError
from ..sse import SSEDecoder
from ..table import ProviderType

if TYPE_CHECKING:
    from ..runtime import TargetRuntime

# OpenAI's finish_reason as Anthropic's stop_reason.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Top-level fields a translation carries; any other field of a request has no counterpart in the
# chat request and is refused for non-Anthropic targets (an Anthropic target gets them all).
_CARRIED = frozenset(
    {"model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature"}
    | {"top_p", "top_k", "tools", "tool_choice", "metadata", "thinking", "service_tier"}
)


class MessagesRequestError(ValueError):
    """A request that is not a Messages request: a 400 naming `param`."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def check(body: JSON) -> None:
    """What every target needs, checked before any is tried."""
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise MessagesRequestError("messages", "must be a non-empty array of messages")
    tokens = body.get("max_tokens")
    if type(tokens) is not int or tokens < 1:
        raise MessagesRequestError("max_tokens", "is required: a positive integer")


def _bad(field: str, problem: str) -> UpstreamError:
    return UpstreamError(ErrorKind.BAD_REQUEST, f"{field}: {problem}")


# ---------------------------------------------------------------------------------------------
# Request: Messages -> chat


def _text_of(block: JSON, where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(f"{where}.text", "must be a string")
    return text


def _system(system: Any) -> list[JSON]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if not isinstance(system, list):
        raise _bad("system", "must be a string or an array of text blocks")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _bad(f"system[{i}]", "must be a text block")
        texts.append(_text_of(block, f"system[{i}]"))
    return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []


def _source(block: JSON, where: str) -> JSON:
    source = block.get("source")
    if not isinstance(source, dict) or not all(isinstance(v, str) for v in source.values()):
        raise _bad(f"{where}.source", "must be an object of strings")
    return source


def _image_part(block: JSON, where: str) -> JSON:
    source = _source(block, where)
    kind = source.get("type")
    if kind == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif kind == "url" and source.get("url"):
        url = source["url"]
    else:
        raise _bad(f"{where}.source.type", f"{kind!r} has no counterpart here: send base64 or url")
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: JSON, where: str) -> JSON:
    source = _source(block, where)
    if source.get("type") != "base64" or source.get("media_type") != "application/pdf":
        raise _bad(f"{where}.source", "only a base64 PDF document has a counterpart for this target")
    file: JSON = {"file_data": f"data:application/pdf;base64,{source.get('data')}"}
    if isinstance(block.get("title"), str):
        file["filename"] = block["title"]
    return {"type": "file", "file": file}


def _tool_result(block: JSON, where: str) -> JSON:
    content = block.get("content")
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                problem = "only text tool results have a counterpart for this target"
                raise _bad(f"{where}.content[{j}]", problem)
            texts.append(_text_of(part, f"{where}.content[{j}]"))
        content = "\n".join(texts)
    elif content is None:
        content = ""
    elif not isinstance(content, str):
        raise _bad(f"{where}.content", "must be a string or an array of text blocks")
    if block.get("is_error") is True:  # chat has no error flag: the model reads it instead
        content = f"Error: {content}"
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": content}


def _user(content: Any, where: str) -> list[JSON]:
    """A user turn: tool results become tool messages (first: they answer the previous turn's
    calls), the rest one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(block, at)})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "document":
            parts.append(_document_part(block, at))
        elif kind == "tool_result":
            tools.append(_tool_result(block, at))
        else:
            raise _bad(f"{at}.type", f"{kind!r} has no counterpart for this target")
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: Any, where: str) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_text_of(block, at))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):  # signed for Anthropic only
            raise _bad(f"{at}.type", f"{kind!r} has no counterpart for this target")
    message: JSON = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(messages: list[Any]) -> list[JSON]:
    out: list[JSON] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str | list):
            raise _bad(f"{where}.content", "must be a string or an array of content blocks")
        if role == "user":
            out.extend(_user(content, where))
        elif role == "assistant":
            out.append(_assistant(content, where))
        else:
            raise _bad(f"{where}.role", "must be user or assistant")
    return out


def _tools(tools: Any) -> list[JSON]:
    out = []
    for i, tool in enumerate(tools if isinstance(tools, list) else ()):
        client_tool = (
            isinstance(tool, dict) and tool.get("type") in (None, "custom") and "input_schema" in tool
        )
        if not client_tool:  # a server tool (web search, code execution...) runs at Anthropic only
            problem = "only client tools (name, input_schema) have a counterpart for this target"
            raise _bad(f"tools[{i}]", problem)
        function: JSON = {"name": tool.get("name"), "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is True:
            function["strict"] = True
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: JSON, chat: JSON) -> None:
    kind = choice.get("type")
    if kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind), "auto")
    if choice.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def _effort(thinking: Any) -> str | None:
    """Anthropic's thinking as the chat request's reasoning_effort (which each family takes in
    its own terms, as the model entry declares: adapters/reasoning.py). A budget maps to the
    effort whose default budget it reaches; adaptive thinking is the middle effort."""
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "adaptive":
        return "medium"
    if kind != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int):
        raise _bad("thinking.budget_tokens", "must be an integer")
    return "low" if budget < 8192 else "medium" if budget < 24576 else "high"


def chat_request(body: JSON) -> JSON:
    """The internal chat request for a non-Anthropic target (BadRequest naming a field that has
    no counterpart there)."""
    for field in body:
        if field not in _CARRIED:
            raise _bad(field, "has no counterpart for this target (only an Anthropic target takes it)")
    if not isinstance(body.get("messages"), list):
        raise _bad("messages", "must be an array of messages")
    chat: JSON = {
        "model": body["model"],
        "messages": _system(body.get("system")) + _messages(body["messages"]),
        "max_tokens": body.get("max_tokens"),
    }
    for field in ("temperature", "top_p", "top_k"):
        if body.get(field) is not None:
            chat[field] = body[field]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user, str):
        chat["user"] = user
    effort = _effort(body.get("thinking"))
    if effort is not None:
        chat["reasoning_effort"] = effort
    tools = _tools(body.get("tools"))
    if tools:
        chat["tools"] = tools
        if isinstance(body.get("tool_choice"), dict):
            _tool_choice(body["tool_choice"], chat)
    return chat


# ---------------------------------------------------------------------------------------------
# Answer: chat -> Message


def _usage(usage: Usage) -> JSON:
    """Anthropic counts input without the cache reads; OpenAI's prompt tokens include them."""
    return {
        "input_tokens": usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def _tool_input(arguments: Any) -> Any:
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": arguments}  # the model wrote no JSON: the text, not a lost call
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def message_from_chat(chat: bytes, usage: Usage, model: str) -> bytes:
    data = orjson.loads(chat)
    choice = data["choices"][0]
    answer = choice.get("message") or {}
    content: list[JSON] = []
    if answer.get("content"):
        content.append({"type": "text", "text": answer["content"]})
    for call in answer.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _tool_input(function.get("arguments")),
            }
        )
    message = {
        "id": f"msg_{uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(usage),
    }
    return orjson.dumps(message)


# ---------------------------------------------------------------------------------------------
# Stream: chat chunks -> Anthropic events


def event(name: str, payload: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class EventsFromChunks(StreamTranslator):
    """Wraps a family's chat translator: its chunk frames become Anthropic's event sequence
    (message_start, ping, content_block_start/delta/stop per text or tool_use block,
    message_delta with the stop reason and usage, message_stop)."""

    def __init__(self, inner: StreamTranslator, model: str) -> None:
        super().__init__(inner.state)
        self.inner = inner
        self.decoder = inner.decoder  # the read limits watch the inner one's buffer
        self.model = model
        self.chunks = SSEDecoder()
        self.started = False
        self.block: str | None = None  # the open block's type
        self.index = -1
        self.tool_blocks: dict[int, int] = {}  # chat tool call index -> block index
        self.stop_reason = "end_turn"

    def translate(self, chunk: bytes) -> bytes:
        frames = self.inner.translate(chunk)
        self.usage = self.inner.usage
        return b"".join(self.feed(name, data) for name, data in self.chunks.feed(frames))

    def feed(self, event_name: str | None, data: bytes) -> bytes:
        out = b""
        if not self.started:
            self.started = True
            message: JSON = {
                "id": f"msg_{uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            out = event("message_start", {"type": "message_start", "message": message})
            out += event("ping", {"type": "ping"})
        if data == b"[DONE]":
            return out + self._end()
        chunk = orjson.loads(data)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._open("text", {"type": "text", "text": ""})
                text = {"type": "text_delta", "text": delta["content"]}
                out += self._delta(text)
            for call in delta.get("tool_calls") or ():
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def _open(self, kind: str, block: JSON) -> bytes:
        if self.block == kind and kind == "text":
            return b""
        out = self._close()
        self.index += 1
        self.block = kind
        start = {"type": "content_block_start", "index": self.index, "content_block": block}
        return out + event("content_block_start", start)

    def _close(self) -> bytes:
        if self.block is None:
            return b""
        self.block = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _delta(self, delta: JSON, index: int | None = None) -> bytes:
        at = self.index if index is None else index
        return event("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def _tool_delta(self, call: JSON) -> bytes:
        out = b""
        number = call.get("index", 0)
        function = call.get("function") or {}
        if number not in self.tool_blocks:
            block: JSON = {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": {},
            }
            out += self._close() + self._open("tool_use", block)
            self.tool_blocks[number] = self.index
        fragment = function.get("arguments")
        if fragment:
            partial = {"type": "input_json_delta", "partial_json": fragment}
            out += self._delta(partial, self.tool_blocks[number])
        return out

    def _end(self) -> bytes:
        usage = _usage(self.inner.usage)
        delta = {"stop_reason": self.stop_reason, "stop_sequence": None}
        out = self._close()
        out += event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + event("message_stop", {"type": "message_stop"})

    def finish(self) -> bytes:  # pragma: no cover - translate() drives the inner translator
        raise NotImplementedError


class PassThroughEvents(AnthropicStream):
    """An Anthropic target's events as they came (re-framed one by one), counted on the way."""

    def feed(self, event_name: str | None, data: bytes) -> bytes:
        super().feed(event_name, data)  # usage, the end, and error events (raised)
        name = event_name.encode() if event_name else b""
        return (b"event: " + name + b"\n" if name else b"") + b"data: " + data + b"\n\n"

    def finish(self) -> bytes:
        super().finish()  # a stream cut before message_stop is an error
        return b""


# ---------------------------------------------------------------------------------------------
# The shape the dispatcher uses


class MessagesShape:
    """One Messages request on its way through a route (dispatch.Shape)."""

    def __init__(self, body: JSON) -> None:
        self.body = body
        self._chat: JSON | None = None

    def chat(self) -> JSON:
        if self._chat is None:  # built once, for the first non-Anthropic target tried
            self._chat = chat_request(self.body)
        return self._chat

    @property
    def translated(self) -> JSON | None:
        """The chat request, once a non-Anthropic target needed it."""
        return self._chat

    def request(self, target: TargetRuntime, key: str | None, stream: bool) -> UpstreamRequest:
        provider = target.provider
        if provider.type is ProviderType.ANTHROPIC:
            upstream = {**self.body, "model": target.model}
            url = f"{provider.base_url}/v1/messages"
            return UpstreamRequest(url, anthropic_headers(provider, key), orjson.dumps(upstream))
        chat = {**self.chat(), "stream": True} if stream else self.chat()
        return target.adapter.chat_request(provider, key, target.model, chat, stream)

    def response(self, target: TargetRuntime, raw: bytes) -> tuple[bytes, Usage]:
        if target.provider.type is ProviderType.ANTHROPIC:
            data = target.adapter.answer(raw)
            return raw, count_usage({}, data.get("usage"))
        chat, usage = target.adapter.chat_response(raw, target.model)
        return message_from_chat(chat, usage, target.model), usage

    def stream(self, target: TargetRuntime, state: StreamState) -> StreamTranslator:
        if target.provider.type is ProviderType.ANTHROPIC:
            return PassThroughEvents(state)
        state.include_usage = True  # the usage chunk feeds message_delta's usage
        return EventsFromChunks(target.adapter.stream(state), target.model)


# ---------------------------------------------------------------------------------------------
# Errors in Anthropic's shape


# Anthropic's error type for each HTTP status this endpoint answers with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str, request_id: str | None = None) -> bytes:
    """Anthropic's error response: {"type": "error", "error": {"type", "message"}, "request_id"}."""
    detail = {"type": ERROR_TYPES.get(status, "api_error"), "message": message}
    return orjson.dumps({"type": "error", "error": detail, "request_id": request_id})


def client_status(err: UpstreamError) -> int:
    """Chat completions' status, except an overloaded route: Anthropic's 529."""
    return 529 if err.kind is ErrorKind.OVERLOADED else err.client_status()


def error_event(err: UpstreamError) -> bytes:
    """A stream that broke after its first byte ends with Anthropic's error event."""
    detail = {"type": ERROR_TYPES.get(client_status(err), "api_error"), "message": err.message}
    return event("error", {"type": "error", "error": detail})
