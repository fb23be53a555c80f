"""OpenAI-compatible providers (OpenAI, OpenRouter, Groq, vLLM, Ollama...): pass through.

The body goes upstream almost as the client sent it: only `model` changes, and streams always ask
for usage so spend is counted; the usage chunk is dropped again when the client did not ask.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    load_json,
)

# OpenRouter asks apps to name themselves; harmless elsewhere.
_ATTRIBUTION = {ProviderType.OPENROUTER: {"X-Title": "Switchyard"}}


def _headers(provider: Provider, key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(_ATTRIBUTION.get(provider.type, {}))
    headers.update(provider.headers)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


# Streams asked for usage carry `"usage":null` in every chunk: only a real usage object, an
# error or the end is worth parsing. Usage is cumulative and comes last, so its last mention
# is the one to look at; searching from the end finds it after a few hundred bytes.
def _first_marker(data: bytes) -> int:
    """Where the first thing worth a look is, or -1."""
    first = data.find(b'"error"')
    done = data.rfind(b"[DONE]")
    if done >= 0 and (first < 0 or done < first):
        first = done
    usage = data.rfind(b'"usage":')
    if usage >= 0 and data[usage + 8 : usage + 10].lstrip()[:1] == b"{" and (first < 0 or usage < first):
        first = usage
    return first


class OpenAIStream(StreamTranslator):
    def __init__(self, state: StreamState) -> None:
        super().__init__(state)
        self.done = False
        self.crlf = False

    def translate(self, chunk: bytes) -> bytes:
        """Whole events go to the client as the bytes they came in; parsing starts at the first
        event that needs a look (in practice the usage chunk and [DONE], at the very end)."""
        if not chunk or self.crlf or CR in chunk:
            self.crlf = self.crlf or CR in chunk
            return super().translate(chunk)
        block = self.decoder.complete(chunk)
        found = _first_marker(block)
        if found < 0:
            return block
        cut = block.rfind(b"\n\n", 0, found)  # the end of the last event before it
        start = cut + 2 if cut >= 0 else 0
        tail = b"".join(self.feed(event, data) for event, data in self.decoder.parse(block[start:]))
        return block[:start] + tail

    def feed(self, event: str | None, data: bytes) -> bytes:
        if data == b"[DONE]":
            self.done = True
            return b""
        if _first_marker(data) >= 0:
            return self._inspect(data)
        return b"data: " + data + b"\n\n"

    def _inspect(self, data: bytes) -> bytes:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b"data: " + data + b"\n\n"
        if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
            raise OpenAIAdapter.error_from_json(500, {}, chunk)
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if usage:
            self.usage = Usage.from_openai(usage)
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
        if stream:
            options = dict(upstream.get("stream_options") or {})
            options["include_usage"] = True
            upstream["stream_options"] = options
        return UpstreamRequest(
            f"{provider.base_url}/chat/completions", _headers(provider, key), orjson.dumps(upstream)
        )

    def chat_response(self, body: bytes, model: str) -> tuple[bytes, Usage]:
        # Passed through as sent; parsing is only for usage.
        return body, Usage.from_openai(load_json(body).get("usage"))

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

    def embeddings_response(self, body: bytes, model: str) -> tuple[bytes, Usage]:
        return body, Usage.from_openai(load_json(body).get("usage"))

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
