"""OpenAI's Responses API (`POST /v1/responses`) in front of the chat completions path.

A Responses request becomes a chat completions request, which every adapter already serves
(OpenAI-style, Anthropic, Gemini) with the same routes, fallback, limits and metering; the chat
answer or chunk stream comes back as a Response object or Responses' typed events. The wire
format follows openai-python's `types/responses` (Response, ResponseStreamEvent).

To providers of type `openai` the request passes through instead (openai_responses.py), with
`previous_response_id` and `store`: OpenAI keeps those responses. The router keeps none itself:
for any other target, `previous_response_id` (and `conversation`, `background`, `prompt`) is a
400 naming the field, and `store` is answered as `false`. A per-pod store would answer
differently on each replica and after each restart, and would hand any caller memory to fill;
clients that carry the conversation themselves (as the openai-agents SDK does by default) lose
nothing.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import orjson

from .. import clock
from ..adapters.base import JSON, StreamState, StreamTranslator, UpstreamRequest, Usage
from ..errors import ErrorKind, UpstreamError
from ..sse import SSEDecoder
from . import openai_responses
from .openai_responses import error_event, passes_through

if TYPE_CHECKING:
    from ..runtime import TargetRuntime


class ResponsesRequestError(ValueError):
    """A Responses request the router cannot serve as asked: (field, message) for a 400."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


# Fields with no counterpart that would change the answer: refused, never dropped.
_REFUSED = {
    "previous_response_id": "the router keeps no responses: send the whole conversation as `input`",
    "conversation": "the router keeps no conversations: send the whole conversation as `input`",
    "background": "background responses are not supported: leave `background` out",
    "prompt": "stored prompt templates are not supported: send `instructions` and `input`",
}
# Chat fields under the same name and meaning.
_SAME = ("temperature", "top_p", "user", "parallel_tool_calls", "service_tier", "top_logprobs")
# Accepted and only echoed or without effect on the answer.
_ECHOED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "max_output_tokens",
        "reasoning",
        "stream",
        "store",
        "metadata",
        "include",
        "truncation",
        "stream_options",
        "safety_identifier",
        "prompt_cache_key",
        "max_tool_calls",
    }
)


def chat_request(body: JSON) -> JSON:
    """The chat completions request for a Responses request; ResponsesRequestError for what
    cannot be served."""
    for field, why in _REFUSED.items():
        if body.get(field) not in (None, False):
            raise ResponsesRequestError(field, f"`{field}`: {why}")
    for field in body:
        if field not in _ECHOED and field not in _SAME and field not in _REFUSED:
            raise ResponsesRequestError(field, f"`{field}` is not supported on /v1/responses here")
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif instructions is not None and not isinstance(instructions, str):
        raise ResponsesRequestError("instructions", "`instructions` must be a string")
    messages.extend(_messages(body.get("input")))
    chat: JSON = {"model": body.get("model"), "messages": messages}
    for field in _SAME:
        if body.get(field) is not None:
            chat[field] = body[field]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    if body.get("tools"):
        chat["tools"] = [_tool(i, tool) for i, tool in enumerate(_list(body, "tools"))]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format((body.get("text") or {}).get("format"))
    if response_format is not None:
        chat["response_format"] = response_format
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # usage goes in response.completed
    return chat


def _list(body: JSON, field: str) -> list[Any]:
    value = body.get(field)
    if not isinstance(value, list):
        raise ResponsesRequestError(field, f"`{field}` must be an array")
    return value


def _messages(input_: Any) -> list[JSON]:
    if isinstance(input_, str):
        return [{"role": "user", "content": input_}]
    if not isinstance(input_, list) or not input_:
        raise ResponsesRequestError("input", "`input` must be a string or a non-empty array of items")
    messages: list[JSON] = []
    for i, item in enumerate(input_):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise ResponsesRequestError(where, f"`{where}` must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise ResponsesRequestError(
                    f"{where}.role", f"`{where}.role` must be user, assistant, system or developer"
                )
            messages.append({"role": role, "content": _content(item.get("content"), f"{where}.content")})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":  # one turn: its text and calls
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = _content(output, f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
        elif kind == "reasoning":
            continue  # the router returns no reasoning items; another model's would not apply
        else:
            raise ResponsesRequestError(
                f"{where}.type", f"`{where}.type`: input items of type {kind!r} are not supported"
            )
    return messages


def _content(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ResponsesRequestError(where, f"`{where}` must be a string or an array of parts")
    return [_part(part, f"{where}[{i}]") for i, part in enumerate(content)]


def _part(part: Any, where: str) -> JSON:
    if not isinstance(part, dict):
        raise ResponsesRequestError(where, f"`{where}` must be an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal", "")}
    if kind == "input_image":
        if not part.get("image_url"):
            raise ResponsesRequestError(
                f"{where}.image_url",
                f"`{where}.image_url`: images need an https or data URL; file ids are not supported",
            )
        image: JSON = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if not part.get("file_data"):
            raise ResponsesRequestError(
                f"{where}.file_data",
                f"`{where}.file_data`: files need a data URL; file ids and URLs are not supported",
            )
        file: JSON = {"file_data": part["file_data"]}
        if part.get("filename"):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise ResponsesRequestError(
        f"{where}.type", f"`{where}.type`: content parts of type {kind!r} are not supported"
    )


def _tool(i: int, tool: Any) -> JSON:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise ResponsesRequestError(
            f"tools[{i}].type", f"`tools[{i}].type`: only function tools are supported, not {kind!r}"
        )
    function: JSON = {"name": tool.get("name")}
    for field in ("description", "parameters", "strict"):
        if tool.get(field) is not None:
            function[field] = tool[field]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise ResponsesRequestError("tool_choice", "`tool_choice` must be auto, none, required or a function")


def _response_format(fmt: Any) -> JSON | None:
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise ResponsesRequestError("text.format", "`text.format` must be text, json_object or json_schema")


class ResponsesCall:
    """One Responses request, as each target takes it: passed through to OpenAI, translated
    to a chat request for the rest (`refused` says why it cannot be, naming the field)."""

    def __init__(self, body: JSON) -> None:
        self.body = body
        self.chat: JSON = {}
        self.refused: ResponsesRequestError | None = None
        try:
            self.chat = chat_request(body)
        except ResponsesRequestError as exc:
            self.refused = exc

    def request(self, target: TargetRuntime, key: str | None, stream: bool) -> UpstreamRequest:
        provider = target.provider
        if passes_through(provider):
            return openai_responses.request(provider, key, target.model, self.body)
        if self.refused is not None:
            # Another target of the route (OpenAI) could take it; this one cannot.
            raise UpstreamError(
                ErrorKind.BAD_REQUEST, f"{provider.name} cannot take it: {self.refused}", status=400
            )
        return target.adapter.chat_request(provider, key, target.model, self.chat, stream)

    def response(self, target: TargetRuntime, raw: bytes) -> tuple[bytes, Usage]:
        if passes_through(target.provider):
            return openai_responses.answer(raw)
        chat, usage = target.adapter.chat_response(raw, target.model)
        return ResponseShape(self.body).from_chat(chat, usage), usage

    def stream(self, target: TargetRuntime, state: StreamState) -> StreamTranslator:
        if passes_through(target.provider):
            return openai_responses.PassThroughEvents(state)
        return ChatEvents(target.adapter.stream(state), ResponsesEvents(self.body))


class ChatEvents(StreamTranslator):
    """A family's stream translated to chat chunks, and those to Responses events."""

    def __init__(self, chat: StreamTranslator, events: ResponsesEvents) -> None:
        super().__init__(chat.state)
        self.chat = chat
        self.events = events
        self.decoder = chat.decoder  # what the per-event limit measures

    def translate(self, chunk: bytes) -> bytes:
        out = self.events.frames(self.chat.translate(chunk))
        self.usage = self.chat.usage
        return out + self.events.end(self.usage) if not chunk else out

    def feed(self, event: str | None, data: bytes) -> bytes:
        return self.events.frames(self.chat.feed(event, data))

    def finish(self) -> bytes:
        return self.events.frames(self.chat.finish()) + self.events.end(self.chat.usage)

    def broken(self, err: UpstreamError) -> bytes:
        return self.events.broke(err)


# --- answers ---------------------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


class ResponseShape:
    """One request's Response object, filled from a chat answer or a chunk stream."""

    def __init__(self, body: JSON) -> None:
        self.request = body
        self.id = _new_id("resp")
        self.created_at = int(clock.time())

    def envelope(self, status: str, output: list[JSON], usage: JSON | None, model: str) -> JSON:
        body = self.request
        text = body.get("text") or {"format": {"type": "text"}}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") or {},
            "model": model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": False,  # the router keeps no responses
            "temperature": body.get("temperature", 1.0),
            "text": text,
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage,
        }

    def from_chat(self, raw: bytes, usage: Usage) -> bytes:
        """A Response object for a chat completion's JSON body and the usage metered for it."""
        chat = orjson.loads(raw)
        choice = chat["choices"][0]
        message = choice.get("message") or {}
        output: list[JSON] = []
        if message.get("content") or message.get("refusal") or not message.get("tool_calls"):
            output.append(_message_item(_new_id("msg"), message.get("content") or "", message.get("refusal")))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            output.append(
                _call_item(
                    _new_id("fc"), call.get("id"), function.get("name"), function.get("arguments") or ""
                )
            )
        status = "incomplete" if choice.get("finish_reason") == "length" else "completed"
        return orjson.dumps(self.envelope(status, output, _usage(usage), chat.get("model") or ""))


def _message_item(item_id: str, text: str, refusal: str | None = None, status: str = "completed") -> JSON:
    part: JSON = (
        {"type": "refusal", "refusal": refusal}
        if refusal
        else {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": [part]}


def _call_item(item_id: str, call_id: Any, name: Any, arguments: str, status: str = "completed") -> JSON:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _usage(usage: Usage) -> JSON | None:
    """Responses' usage from the router's own count (Anthropic's cache writes included)."""
    if not usage.reported:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


class ResponsesEvents(ResponseShape):
    """Chat chunk frames in, Responses' typed events out (response.created ... response.completed).

    What it holds grows with the answer only, which the stream's maxStreamBytes already bounds."""

    def __init__(self, body: JSON) -> None:
        super().__init__(body)
        self.decoder = SSEDecoder()
        self.sequence = 0
        self.started = False
        self.model = str(body.get("model") or "")
        self.text: list[str] | None = None  # the message being streamed, if any
        self.message_id = ""
        self.message_index = 0
        self.calls: dict[int, JSON] = {}  # chat tool-call index -> its output item
        self.output: list[JSON] = []  # finished items, in output order
        self.next_index = 0
        self.finish: str | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        response = self.envelope("in_progress", [], None, self.model)
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def frames(self, data: bytes) -> bytes:
        """Responses events for a piece of the chat chunk stream."""
        out = [self._start()]
        for _, payload in self.decoder.feed(data):
            if payload == b"[DONE]":
                continue
            chunk = orjson.loads(payload)  # the router's own chat chunk (errors raise before it)
            self.model = chunk.get("model") or self.model
            for choice in chunk.get("choices") or []:
                out.append(self._delta(choice.get("delta") or {}))
                if choice.get("finish_reason"):
                    self.finish = choice["finish_reason"]
        return b"".join(out)

    def _delta(self, delta: JSON) -> bytes:
        out = []
        text = delta.get("content") or delta.get("refusal")
        if text:
            if self.text is None:
                out.append(self._open_message())
            assert self.text is not None
            self.text.append(text)
            out.append(
                self._event(
                    "response.output_text.delta",
                    item_id=self.message_id,
                    output_index=self.message_index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            )
        for call in delta.get("tool_calls") or []:
            out.append(self._call_delta(call))
        return b"".join(out)

    def _open_message(self) -> bytes:
        self.text = []
        self.message_id = _new_id("msg")
        self.message_index = self._take_index()
        item = {
            "type": "message",
            "id": self.message_id,
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        return self._event(
            "response.output_item.added", output_index=self.message_index, item=item
        ) + self._event(
            "response.content_part.added",
            item_id=self.message_id,
            output_index=self.message_index,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        )

    def _take_index(self) -> int:
        index = self.next_index
        self.next_index += 1
        return index

    def _call_delta(self, call: JSON) -> bytes:
        out = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        item = self.calls.get(index)
        if item is None:
            out.append(self._close_message())  # a message before the calls is complete now
            item = _call_item(_new_id("fc"), call.get("id"), function.get("name"), "", "in_progress")
            item["output_index"] = self._take_index()
            self.calls[index] = item
            added = {k: v for k, v in item.items() if k != "output_index"}
            out.append(
                self._event("response.output_item.added", output_index=item["output_index"], item=added)
            )
        arguments = function.get("arguments")
        if arguments:
            item["arguments"] += arguments
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=item["output_index"],
                    delta=arguments,
                )
            )
        return b"".join(out)

    def _close_message(self) -> bytes:
        if self.text is None:
            return b""
        text, self.text = "".join(self.text), None
        index, item_id = self.message_index, self.message_id
        item = _message_item(item_id, text)
        part = item["content"][0]
        self.output.append(item)
        return b"".join(
            [
                self._event(
                    "response.output_text.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                ),
                self._event(
                    "response.content_part.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    part=part,
                ),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        )

    def end(self, usage: Usage) -> bytes:
        """The closing events once the chat stream has ended, with the usage metered for it."""
        out = [self._start(), self._close_message()]
        for item in self.calls.values():
            index = item.pop("output_index")
            item["status"] = "completed"
            self.output.append(item)
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
            out.append(self._event("response.output_item.done", output_index=index, item=item))
        self.calls = {}
        status = "incomplete" if self.finish == "length" else "completed"
        response = self.envelope(status, self.output, _usage(usage), self.model)
        return b"".join(out) + self._event(f"response.{status}", response=response)

    def broke(self, err: UpstreamError) -> bytes:
        """The events for a stream that broke after its first byte: `error`, then response.failed."""
        start = self._start()
        event = error_event(err, self.sequence)
        self.sequence += 1
        response = self.envelope("failed", self.output, None, self.model)
        response["error"] = {"code": "server_error", "message": err.message}
        return start + event + self._event("response.failed", response=response)
