"""What every API family module provides, and the plain types they exchange with the server.

An endpoint is a pure function from a parsed request to a rendered `Reply` (bytes, or a list of
already framed stream events); the server owns I/O, statistics and faults. That split keeps the
wire formats testable without sockets and the fault logic written once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import web

from .content import IdMaker

JSON = dict[str, Any]


class BadRequest(Exception):
    """A request the real API would refuse with a 400 (or `status`), in the family's shape."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


class IdSource(Protocol):
    def make(self, prefix: str, length: int) -> str: ...


@dataclass(slots=True)
class Call:
    provider: str  # the path prefix, e.g. "primary"
    body: JSON  # the parsed JSON body ({} for GET)
    request: web.BaseRequest
    ids: IdSource
    created: int  # the Unix time answers report
    path_model: str | None = None  # Gemini puts the model in the path
    stream: bool = False  # Gemini chooses streaming by path
    # Prompt prefixes this provider has cached (Anthropic's prompt caching), by digest.
    prompt_cache: set[bytes] = field(default_factory=set)


@dataclass(slots=True)
class Reply:
    prompt_tokens: int = 0  # estimated, for the context_window fault
    model: str | None = None
    body: bytes = b""
    frames: list[bytes] | None = None  # set for an event stream
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


Endpoint = Callable[[Call], Reply]


class Family(ABC):
    """One API family's authentication and error shapes."""

    name: str
    key_headers: tuple[str, ...] = ()  # headers that carry secrets, never recorded

    def __init__(self, ids: IdMaker) -> None:
        self.ids = ids

    def response_headers(self) -> dict[str, str]:
        """Headers every answer carries, such as a request id (a new dict each time)."""
        return {}

    @abstractmethod
    def api_key(self, request: web.BaseRequest) -> tuple[str | None, bool]:
        """The API key and whether it came in the URL."""

    @abstractmethod
    def auth_error(self, key: str | None) -> web.Response:
        """The answer to a missing (None) or refused key."""

    @abstractmethod
    def error(
        self, status: int, *, retry_after: float | None = None, model: str | None = None
    ) -> web.Response:
        """The family's answer for an injected error status."""

    @abstractmethod
    def bad_request(self, exc: BadRequest) -> web.Response: ...

    @abstractmethod
    def context_error(self, tokens: int, limit: int) -> web.Response: ...


def json_response(status: int, body: JSON, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def retry_after_header(seconds: float) -> str:
    """Whole seconds as an integer, as HTTP specifies; fractions kept (the SDKs accept them)."""
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"


def text_of(content: Any) -> str:
    """The text inside a message's content: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
