"""One error taxonomy for fallback rules, retries, metrics and status, and OpenAI's error body."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from urllib.parse import urlsplit

import orjson


class ErrorKind(StrEnum):
    RATE_LIMITED = "RateLimited"
    OVERLOADED = "Overloaded"
    SERVER_ERROR = "ServerError"
    TIMEOUT = "Timeout"
    CONNECTION_ERROR = "ConnectionError"
    UNAUTHORIZED = "Unauthorized"
    BAD_REQUEST = "BadRequest"
    CONTEXT_LENGTH_EXCEEDED = "ContextLengthExceeded"
    CONTENT_FILTERED = "ContentFiltered"
    # A 3xx: redirects are never followed (they would carry the key and the prompt elsewhere).
    REDIRECTED = "Redirected"
    # An answer, an event or a stream over the table's read limits (server.max*Bytes).
    RESPONSE_TOO_LARGE = "ResponseTooLarge"


# What the client sees when every target failed with this kind (OpenAI's status and error type).
_CLIENT_STATUS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.RATE_LIMITED: (429, "rate_limit_error"),
    ErrorKind.OVERLOADED: (503, "service_unavailable"),
    ErrorKind.SERVER_ERROR: (502, "api_error"),
    ErrorKind.TIMEOUT: (504, "timeout"),
    ErrorKind.CONNECTION_ERROR: (502, "api_connection_error"),
    ErrorKind.UNAUTHORIZED: (502, "upstream_authentication_error"),
    ErrorKind.BAD_REQUEST: (400, "invalid_request_error"),
    ErrorKind.CONTEXT_LENGTH_EXCEEDED: (400, "invalid_request_error"),
    ErrorKind.CONTENT_FILTERED: (400, "invalid_request_error"),
    ErrorKind.REDIRECTED: (502, "api_error"),
    ErrorKind.RESPONSE_TOO_LARGE: (502, "api_error"),
}


# The kinds after which waiting helps: the client is told how long (Retry-After).
WAIT_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED})


class UpstreamError(Exception):
    """A failed attempt against one target, classified.

    `message` must never carry an API key: adapters build it from the provider's error body,
    and `redact` is applied before it leaves the router.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.code = code
        self.request_id = request_id  # the provider's, when it gave one
        self.limit: str | None = None  # the read limit breached (ResponseTooLarge)

    def client_status(self) -> int:
        if self.kind is ErrorKind.BAD_REQUEST and self.status and 400 <= self.status < 500:
            return self.status  # a client error comes back as the provider said it
        return _CLIENT_STATUS[self.kind][0]

    def client_headers(self) -> dict[str, str]:
        """The provider's request id, and on a 429 or 503 how long a client should wait: the
        SDKs' retries read Retry-After and retry-after-ms."""
        headers = {"x-request-id": self.request_id} if self.request_id else {}
        if self.retry_after is not None and self.kind in WAIT_KINDS:
            seconds = max(self.retry_after, 0.001)
            headers["Retry-After"] = str(math.ceil(seconds))
            headers["retry-after-ms"] = str(math.ceil(seconds * 1000))
        return headers

    def client_body(self) -> bytes:
        code = self.code or (
            "context_length_exceeded"
            if self.kind is ErrorKind.CONTEXT_LENGTH_EXCEEDED
            else "content_filter"
            if self.kind is ErrorKind.CONTENT_FILTERED
            else None
        )
        return error_body(self.message, _CLIENT_STATUS[self.kind][1], code=code)


def error_body(message: str, type_: str, *, code: str | None = None, param: str | None = None) -> bytes:
    """OpenAI's error object: {"error": {"message", "type", "param", "code"}}."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def kind_from_status(status: int) -> ErrorKind:
    """The default classification from an HTTP status; adapters refine it from the body."""
    if 300 <= status < 400:
        return ErrorKind.REDIRECTED
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 403):
        return ErrorKind.UNAUTHORIZED
    if status in (408, 504):
        return ErrorKind.TIMEOUT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status == 413:
        return ErrorKind.CONTEXT_LENGTH_EXCEEDED
    if 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.SERVER_ERROR


_HOST = re.compile(r"^[a-z0-9.:\[\]-]{1,253}$")


def redirect_error(provider: str, status: int, location: str | None) -> UpstreamError:
    """A 3xx, which is never followed: the message names the Location's host only (its path and
    query may carry anything, a key included)."""
    try:
        host = urlsplit(location or "").hostname or ""
    except ValueError:
        host = "?"
    where = f"host {host}" if _HOST.match(host) else "an unreadable place" if host else "the same host"
    return UpstreamError(
        ErrorKind.REDIRECTED,
        f"{provider} answered HTTP {status}, a redirect to {where}: redirects are not followed; "
        "check the provider's baseURL",
        status=status,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare from LLM APIs)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _retry_after_date(value)
    return max(seconds, 0.0)


def _retry_after_date(value: str) -> float | None:
    from email.utils import parsedate_to_datetime
    from time import time

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time(), 0.0)
