"""OpenAI-compatible providers (OpenAI, OpenRouter, Groq, vLLM, Ollama...): pass through.

The body goes upstream almost as the client sent it: only `model` changes, and streams always ask
for usage so spend is counted; the usage chunk is dropped again when the client did not ask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import ErrorKind, UpstreamError
from ..sse import CR
from ..table import Provider, ProviderType
from .base import (
    JSON,
    SSE_DONE,
    ProviderAdapter,
    StreamState,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)

# OpenRouter asks apps to name themselves; harmless elsewhere.
_ATTRIBUTION = {ProviderType.OPENROUTER: {"X-Title": "Switchyard"}}
# Refuse arguments they do not know, and cache on their own: Anthropic's cache_control
# breakpoints, meant for a fallback to Anthropic, would fail the request there.
_NO_CACHE_MARKS = frozenset({ProviderType.OPENAI, ProviderType.GROQ})


def _headers(provider: Provider, key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(_ATTRIBUTION.get(provider.type, {}))
    headers.update(provider.headers)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


request_headers = _headers  # for the Responses API's pass-through (frontends/openai_responses.py)


def _unmarked(items: Any) -> Any:
    """Messages, content parts or tools without cache_control, copied only where one is found
    (the client's body serves the next target too)."""
    if not isinstance(items, list):
        return items
    out, changed = [], False
    for item in items:
        if isinstance(item, dict):
            content = item.get("content")
            inner = _unmarked(content)
            if "cache_control" in item or inner is not content:
                item = {k: v for k, v in item.items() if k != "cache_control"}
                if inner is not content:
                    item["content"] = inner
                changed = True
        out.append(item)
    return out if changed else items


def _usage_at(data: bytes, end: int) -> int:
    """Where the last real usage object is mentioned before `end`, or -1.

    Streams asked for usage carry `"usage":null` in every chunk; usage is cumulative and comes
    last, so its last mention is the one that counts, found from the end after a few hundred bytes.
    """
    at = data.rfind(b'"usage":', 0, end)
    return at if at >= 0 and data[at + 8 : at + 10].lstrip()[:1] == b"{" else -1


def _worth_a_look(data: bytes) -> bool:
    return b'"error"' in data or _usage_at(data, len(data)) >= 0


class OpenAIStream(StreamTranslator):
    def __init__(self, state: StreamState) -> None:
        super().__init__(state)
        self.done = False
        self.crlf = False

    def translate(self, chunk: bytes) -> bytes:
        """Whole events go to the client as the bytes they came in. Only the last event of a read
        is parsed, when it carries usage or an error, and [DONE] is held back for `finish`.

        An error event ends a stream (nothing but [DONE] follows it), so the last event is the
        one place to look for it: searching every byte of a read would cost more than the rest
        of the translation. A client still receives any event as the provider sent it.
        """
        if not chunk and self.done:
            return SSE_DONE  # the end, after [DONE]: nothing held back matters any more
        if not chunk or self.crlf or CR in chunk:
            self.crlf = self.crlf or CR in chunk
            return super().translate(chunk)
        block = self.decoder.complete(chunk)
        end = len(block)
        # [DONE] as an event of its own: the whole block, or after the blank line ending another.
        if block.endswith(SSE_DONE) and (end == len(SSE_DONE) or block[end - 16 : end - 14] == b"\n\n"):
            self.done = True
            end -= len(SSE_DONE)
        elif b"[DONE]" in block:  # events after [DONE]: rare enough for the generic parse
            return self._parse(block)
        if end == 0:
            return b""
        cut = block.rfind(b"\n\n", 0, end - 2)  # the end of the event before the last one
        start = cut + 2 if cut >= 0 else 0
        usage = _usage_at(block, end)
        if 0 <= usage < start:  # an earlier event carries it: parse from there
            cut = block.rfind(b"\n\n", 0, usage)
            start = cut + 2 if cut >= 0 else 0
        elif usage < 0 and b'"error"' not in block[start:end]:
            return block[:end]
        tail = block[start:end]
        if tail.startswith(b"data: ") and tail.find(b"\n") == len(tail) - 2:
            return block[:start] + self._inspect(tail[6:-2])
        return block[:start] + self._parse(tail)

    def _parse(self, block: bytes) -> bytes:
        return b"".join(self.feed(event, data) for event, data in self.decoder.parse(block))

    def feed(self, event: str | None, data: bytes) -> bytes:
        if data == b"[DONE]":
            self.done = True
            return b""
        if _worth_a_look(data):
            return self._inspect(data)
        return b"data: " + data + b"\n\n"

    def _inspect(self, data: bytes) -> bytes:
        try:
            chunk = self.load(data)
        except orjson.JSONDecodeError:
            return b"data: " + data + b"\n\n"
        if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
            raise OpenAIAdapter.error_from_json(500, {}, chunk)
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if usage:
            self.usage = Usage.from_openai(usage)
            self.usage_final = True  # OpenAI sends usage once, for the whole answer
            if not chunk.get("choices") and not self.state.include_usage:
                return b""  # we asked for this chunk, the client did not
        return b"data: " + data + b"\n\n"

    def finish(self) -> bytes:
        if not self.done:
            raise UpstreamError(ErrorKind.CONNECTION_ERROR, "upstream stream ended without [DONE]")
        return SSE_DONE


class OpenAIAdapter(ProviderAdapter):
    def chat_request(
        self, provider: Provider, key: str | None, model: str, body: JSON, stream: bool
    ) -> UpstreamRequest:
        upstream = dict(body)
        upstream["model"] = model
        if provider.type in _NO_CACHE_MARKS:
            upstream.pop("cache_control", None)
            for field in ("messages", "tools"):
                if field in upstream:
                    upstream[field] = _unmarked(upstream[field])
        if stream:
            options = dict(upstream.get("stream_options") or {})
            options["include_usage"] = True
            upstream["stream_options"] = options
        return UpstreamRequest(
            f"{provider.base_url}/chat/completions", _headers(provider, key), orjson.dumps(upstream)
        )

    def chat_response(self, body: bytes, model: str) -> tuple[bytes, Usage]:
        # Passed through as sent; parsing is only for usage.
        return body, Usage.from_openai(self.answer(body).get("usage"))

    def stream(self, state: StreamState) -> StreamTranslator:
        return OpenAIStream(state)

    def embeddings_request(
        self, provider: Provider, key: str | None, model: str, body: JSON
    ) -> UpstreamRequest:
        upstream = dict(body)
        upstream["model"] = model
        return UpstreamRequest(
            f"{provider.base_url}/embeddings", _headers(provider, key), orjson.dumps(upstream)
        )

    def embeddings_response(self, body: bytes, model: str, request: JSON) -> tuple[bytes, Usage]:
        return body, Usage.from_openai(self.answer(body).get("usage"))

    def models_request(self, provider: Provider, key: str | None) -> UpstreamRequest:
        return UpstreamRequest(f"{provider.base_url}/models", _headers(provider, key), method="GET")

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        return self.error_from_json(status, headers, data if isinstance(data, dict) else {}, body)

    @staticmethod
    def error_from_json(
        status: int, headers: Mapping[str, str], data: JSON, raw: bytes = b""
    ) -> UpstreamError:
        err = ProviderAdapter.error(OpenAIAdapter(), status, headers, raw)
        detail = data.get("error")
        if not isinstance(detail, dict):
            return err
        err.message = str(detail.get("message") or err.message)
        code = str(detail.get("code") or "")
        err.code = code or None
        if code == "context_length_exceeded":
            err.kind = ErrorKind.CONTEXT_LENGTH_EXCEEDED
        elif code == "content_filter" or code == "content_policy_violation":
            err.kind = ErrorKind.CONTENT_FILTERED
        elif code in ("insufficient_quota", "rate_limit_exceeded"):
            err.kind = ErrorKind.RATE_LIMITED
        return err
