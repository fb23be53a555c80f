"""OpenAI's Responses API (`POST /v1/responses`), JSON and SSE, as OpenAI answers it.

Shapes follow openai-python's `types/responses` (Response, ResponseStreamEvent): the typed
events response.created ... response.completed, with sequence numbers. The simulator keeps no
responses: `previous_response_id` is accepted and only recorded, as the last request.
"""

from __future__ import annotations

from typing import Any

import orjson

from .content import Answer, Prompt, answer, choose_tool
from .openai_api import SSE_CONTENT_TYPE
from .wire import JSON, BadRequest, Call, Reply, text_of

# CreateResponse's properties: OpenAI refuses any other top-level argument.
RESPONSES_ARGUMENTS = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens", "reasoning"}
    | {"stream", "store", "metadata", "include", "truncation", "stream_options", "safety_identifier"}
    | {"prompt_cache_key", "max_tool_calls", "previous_response_id", "conversation", "background"}
    | {"prompt", "temperature", "top_p", "user", "parallel_tool_calls", "service_tier", "top_logprobs"}
    | {"context_management", "moderation", "prompt_cache_options", "prompt_cache_retention"}
)


def _prompt(body: JSON) -> Prompt:
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise BadRequest("Missing required parameter: 'input'.", param="input")
    chars, last_user = len(str(body.get("instructions") or "")), ""
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest("Invalid type for 'input': expected an array of objects.", param="input")
        content = item.get("content", item.get("output", item.get("arguments", "")))
        text = text_of(content) if not isinstance(content, str) else content
        chars += len(text)
        if item.get("role") == "user":
            last_user = text
    prompt = Prompt(chars=chars, last_user_text=last_user)
    if isinstance(body.get("max_output_tokens"), int):
        prompt.max_tokens = body["max_output_tokens"]
    tools = [
        (tool["name"], tool.get("parameters"))
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str)
    ]
    choice = body.get("tool_choice")
    if tools and choice != "none" and items[-1].get("type") != "function_call_output":
        forced = choice.get("name") if isinstance(choice, dict) else None
        prompt.tool_name, prompt.tool_schema = choose_tool(tools, forced)
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        prompt.json_schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        prompt.json_schema = {}
    return prompt


def _usage(ans: Answer) -> JSON:
    return {
        "input_tokens": ans.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": ans.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": ans.prompt_tokens + ans.completion_tokens,
    }


def _response(
    body: JSON, response_id: str, created: int, status: str, output: list[JSON], usage: Any
) -> JSON:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
    }


def responses(call: Call) -> Reply:
    body = call.body
    unknown = next((name for name in body if name not in RESPONSES_ARGUMENTS), None)
    if unknown is not None:
        raise BadRequest(f"Unknown parameter: '{unknown}'.", param=unknown)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("Missing required parameter: 'model'.", param="model")
    ans = answer(call.provider, model, _prompt(body))
    response_id = call.ids.make("resp_", 48)
    item_id = call.ids.make("fc_" if ans.tool_name else "msg_", 48)
    status = "incomplete" if ans.truncated else "completed"
    if ans.tool_name is not None:
        arguments = orjson.dumps(ans.tool_args).decode()
        call_id = call.ids.make("call_", 24)
        item: JSON = {
            "type": "function_call",
            "id": item_id,
            "call_id": call_id,
            "name": ans.tool_name,
            "arguments": arguments,
            "status": "completed",
        }
    else:
        part = {"type": "output_text", "text": ans.text, "annotations": [], "logprobs": []}
        item = {
            "type": "message",
            "id": item_id,
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
    final = _response(body, response_id, call.created, status, [item], _usage(ans))
    if body.get("stream") is not True:
        return Reply(ans.prompt_tokens, model, body=orjson.dumps(final))
    frames = _Frames()
    start = _response(body, response_id, call.created, "in_progress", [], None)
    frames.add("response.created", response=start)
    frames.add("response.in_progress", response=start)
    if item["type"] == "function_call":
        frames.add(
            "response.output_item.added",
            output_index=0,
            item={**item, "arguments": "", "status": "in_progress"},
        )
        for piece in _pieces(item["arguments"]):
            frames.add("response.function_call_arguments.delta", item_id=item_id, output_index=0, delta=piece)
        frames.add(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=0,
            name=item["name"],
            arguments=item["arguments"],
        )
    else:
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        frames.add(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        )
        frames.add(
            "response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=empty
        )
        for chunk in ans.chunks:
            frames.add(
                "response.output_text.delta",
                item_id=item_id,
                output_index=0,
                content_index=0,
                delta=chunk,
                logprobs=[],
            )
        frames.add(
            "response.output_text.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            text=ans.text,
            logprobs=[],
        )
        frames.add(
            "response.content_part.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part=item["content"][0],
        )
    frames.add("response.output_item.done", output_index=0, item=item)
    frames.add(f"response.{status}", response=final)
    return Reply(ans.prompt_tokens, model, frames=frames.frames, content_type=SSE_CONTENT_TYPE)


class _Frames:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def add(self, kind: str, **fields: Any) -> None:
        data = orjson.dumps({"type": kind, "sequence_number": len(self.frames), **fields})
        self.frames.append(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
