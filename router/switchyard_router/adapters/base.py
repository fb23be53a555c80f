"""The contract between the request path and one provider family.

Shaped after Envoy AI Gateway's translators: build the upstream request, translate the response
body (whole, or one stream event at a time, collecting usage on the way), classify errors.
An adapter never mutates the client's body: a retry or a fallback reuses it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import orjson

from .. import clock
from ..bounded import DEFAULT_LIMITS, check_structure
from ..errors import ErrorKind, UpstreamError, kind_from_status, parse_retry_after
from ..sse import SSEDecoder
from ..table import Provider

JSON = dict[str, Any]


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0  # Anthropic's: part of input_tokens, at their own price
    reasoning_tokens: int = 0
    reported: bool = False  # False: the provider gave no usage, so the request is unpriced

    def to_openai(self) -> JSON:
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @classmethod
    def from_openai(cls, usage: JSON | None) -> Usage:
        if not usage:
            return cls()
        prompt = usage.get("prompt_tokens_details") or {}
        completion = usage.get("completion_tokens_details") or {}
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cached_input_tokens=int(prompt.get("cached_tokens") or 0),
            reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
            reported=True,
        )


@dataclass(slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    body: bytes = b""
    method: str = "POST"


class StreamState:
    """Identity shared by every chunk of one translated stream."""

    __slots__ = ("_id", "created", "include_usage", "model", "parse_budget")

    def __init__(
        self, model: str, include_usage: bool, parse_budget: int = DEFAULT_LIMITS.parse_budget
    ) -> None:
        self.model = model
        self.include_usage = include_usage
        self.parse_budget = parse_budget  # what parsing one event may take in memory
        self.created = int(clock.time())
        self._id: str | None = None

    @property
    def id(self) -> str:
        # Made on first use: a pass-through stream keeps the provider's ids and never needs one.
        if self._id is None:
            self._id = f"chatcmpl-{uuid4().hex[:24]}"
        return self._id


def sse_frame(payload: JSON) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


class StreamTranslator(ABC):
    """One per streamed request. Turns upstream SSE events into OpenAI chunk frames."""

    def __init__(self, state: StreamState) -> None:
        self.state = state
        self.usage = Usage()
        # The provider's final usage came in (what it bills), even if the stream goes on a while.
        self.usage_final = False
        self.decoder = SSEDecoder()

    def translate(self, chunk: bytes) -> bytes:
        """Client frames for the next piece of the upstream body; b"" (its end) also finishes."""
        feed = self.feed
        if chunk:
            return b"".join(feed(event, data) for event, data in self.decoder.feed(chunk))
        tail = b"".join(feed(event, data) for event, data in self.decoder.flush())
        return tail + self.finish()

    def load(self, data: bytes) -> Any:
        """An event's JSON (JSONDecodeError when it is none); ResponseTooLarge when parsing it
        could take more memory than the parse budget."""
        check_structure(data, self.state.parse_budget, "upstream")
        return orjson.loads(data)

    @abstractmethod
    def feed(self, event: str | None, data: bytes) -> bytes:
        """Frames for the client (possibly b""), or UpstreamError for an error event."""

    @abstractmethod
    def finish(self) -> bytes:
        """Closing frames ending in `data: [DONE]`; UpstreamError if the upstream stream was cut."""

    def broken(self, err: UpstreamError) -> bytes:
        """The client's last frame when the stream broke after its first byte."""
        return b"data: " + err.client_body() + b"\n\n"

    def chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        return {
            "id": self.state.id,
            "object": "chat.completion.chunk",
            "created": self.state.created,
            "model": self.state.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def usage_chunk(self) -> bytes:
        """The include_usage chunk (empty choices), only when the client asked for it."""
        if not self.state.include_usage:
            return b""
        return sse_frame(
            {
                "id": self.state.id,
                "object": "chat.completion.chunk",
                "created": self.state.created,
                "model": self.state.model,
                "choices": [],
                "usage": self.usage.to_openai(),
            }
        )


class ProviderAdapter(ABC):
    """Stateless; one instance per provider family, shared by every request."""

    @abstractmethod
    def chat_request(
        self, provider: Provider, key: str | None, model: str, body: JSON, stream: bool
    ) -> UpstreamRequest: ...

    @abstractmethod
    def chat_response(self, body: bytes, model: str) -> tuple[bytes, Usage]:
        """An upstream 200 body as an OpenAI chat.completion body, and its usage."""

    def answer(self, body: bytes) -> JSON:
        """A 2xx body parsed. One that is an error object (some providers and proxies answer 200
        with one) is that error, classified as the provider's errors are."""
        data = load_json(body)
        detail = data.get("error")
        if isinstance(detail, dict) or data.get("type") == "error":
            raise self.error(error_status(detail), {}, body)
        return data

    @abstractmethod
    def stream(self, state: StreamState) -> StreamTranslator: ...

    def embeddings_request(
        self, provider: Provider, key: str | None, model: str, body: JSON
    ) -> UpstreamRequest:
        raise UpstreamError(ErrorKind.BAD_REQUEST, f"provider type {provider.type} does not serve embeddings")

    def embeddings_response(self, body: bytes, model: str, request: JSON) -> tuple[bytes, Usage]:
        raise NotImplementedError  # pragma: no cover - only reached after embeddings_request

    @abstractmethod
    def models_request(self, provider: Provider, key: str | None) -> UpstreamRequest:
        """The provider's free authenticated endpoint (list models), used by health probes."""

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """Classify a non-2xx answer. Subclasses refine the kind from the provider's error body."""
        kind = kind_from_status(status)
        message = error_message(body) or f"upstream answered HTTP {status}"
        return UpstreamError(
            kind,
            message,
            status=status,
            retry_after=parse_retry_after(headers.get("retry-after")),
            request_id=upstream_request_id(headers),
        )


# What a request id looks like; anything else (a page of text, control bytes) is not passed on.
_REQUEST_ID = re.compile(r"[\w.:+/=-]{1,128}", re.ASCII)


def upstream_request_id(headers: Mapping[str, str]) -> str | None:
    """The provider's id for a request: OpenAI-compatible APIs say x-request-id, Anthropic
    request-id. It goes back to the client as x-request-id, where the SDKs look for it (after
    the redactor took any key out of it)."""
    return valid_request_id(headers.get("x-request-id") or headers.get("request-id"))


def valid_request_id(value: Any) -> str | None:
    """`value` if it looks like a request id (a header's, or one an error body carries)."""
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


def error_message(body: bytes) -> str | None:
    """The human message of a provider's JSON error body, whatever its family's shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:300].decode("utf-8", "replace").strip()
        return text or None
    if isinstance(data, list) and data:  # Gemini sometimes wraps the error in a list
        data = data[0]
    if not isinstance(data, dict):
        return None
    err = data.get("error", data)
    if isinstance(err, dict):
        message = err.get("message")
        return str(message) if message else None
    return str(err)


# The HTTP status an error object stands for, by its type or status name, when it has no number.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "INVALID_ARGUMENT": 400,
    "authentication_error": 401,
    "UNAUTHENTICATED": 401,
    "permission_error": 403,
    "PERMISSION_DENIED": 403,
    "not_found_error": 404,
    "NOT_FOUND": 404,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "RESOURCE_EXHAUSTED": 429,
    "overloaded_error": 529,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def error_status(detail: Any) -> int:
    """The status of an error object that came with a 200: its numeric code (OpenRouter's,
    Gemini's), else its type (OpenAI's, Anthropic's) or status (Gemini's) name, else 500."""
    if not isinstance(detail, dict):
        return 500
    code = detail.get("code")
    if type(code) is int and 400 <= code < 600:
        return code
    for field in ("type", "status", "code"):
        status = _ERROR_STATUS.get(str(detail.get(field)))
        if status is not None:
            return status
    return 500


def load_json(body: bytes) -> JSON:
    """Parse an upstream 200 body; a body that is not a JSON object is the provider's fault."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(ErrorKind.SERVER_ERROR, "upstream sent a body that is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamError(ErrorKind.SERVER_ERROR, "upstream sent JSON that is not an object")
    return data
