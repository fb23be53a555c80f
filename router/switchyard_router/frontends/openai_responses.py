"""Responses requests to OpenAI itself: the body passes through (only `model` changes), and so
does the answer; parsing is only for usage, and for a stream's end.

Only providers of type `openai` take them: other OpenAI-compatible servers may lack
/v1/responses or `previous_response_id`, and get the chat translation instead.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..adapters.base import JSON, StreamState, StreamTranslator, UpstreamRequest, Usage
from ..adapters.openai import OpenAIAdapter, request_headers
from ..errors import ErrorKind, UpstreamError
from ..table import Provider, ProviderType

# The events that end a Responses stream; each carries the whole response, usage included.
_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def passes_through(provider: Provider) -> bool:
    return provider.type is ProviderType.OPENAI


def request(provider: Provider, key: str | None, model: str, body: JSON) -> UpstreamRequest:
    upstream = {**body, "model": model}
    return UpstreamRequest(
        f"{provider.base_url}/responses", request_headers(provider, key), orjson.dumps(upstream)
    )


def usage_of(response: Any) -> Usage:
    """The router's Usage from a Response object's `usage` (absent: unreported, so unpriced)."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return Usage()
    given = usage.get("input_tokens_details") or {}
    made = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=int(given.get("cached_tokens") or 0),
        reasoning_tokens=int(made.get("reasoning_tokens") or 0),
        reported=True,
    )


_OPENAI = OpenAIAdapter()


def answer(raw: bytes) -> tuple[bytes, Usage]:
    return raw, usage_of(_OPENAI.answer(raw))


class PassThroughEvents(StreamTranslator):
    """OpenAI's Responses events to the client as they came; the last one tells the usage.

    An `error` event before any byte reached the client is an UpstreamError, so the request
    can still fall back; a stream cut before its closing event is one too."""

    def __init__(self, state: StreamState) -> None:
        super().__init__(state)
        self.ended = False
        self.sequence = 0  # the next sequence number, for a closing error of our own

    def feed(self, event: str | None, data: bytes) -> bytes:
        self.sequence += 1
        if event in _ENDS or event == "error":
            found = self.load(data)
            if event == "error" and self.sequence == 1:
                raise OpenAIAdapter.error_from_json(500, {}, {"error": found})
            if event in _ENDS:
                self.ended = True
                self.usage = usage_of(found.get("response"))
        name = b"event: " + event.encode() + b"\n" if event else b""
        return name + b"data: " + data + b"\n\n"

    def finish(self) -> bytes:
        if not self.ended:
            raise UpstreamError(ErrorKind.CONNECTION_ERROR, "upstream stream ended before response.completed")
        return b""

    def broken(self, err: UpstreamError) -> bytes:
        return error_event(err, self.sequence)


def error_event(err: UpstreamError, sequence: int) -> bytes:
    """Responses' `error` event for a stream that broke after its first byte."""
    detail = orjson.loads(err.client_body())["error"]
    data: JSON = {
        "type": "error",
        "sequence_number": sequence,
        "code": detail.get("code") or detail.get("type"),
        "message": detail.get("message"),
        "param": None,
    }
    return b"event: error\ndata: " + orjson.dumps(data) + b"\n\n"
