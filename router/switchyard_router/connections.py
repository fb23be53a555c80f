"""Callers' connections, guarded: a cap on how many, deadlines for a request's head, an idle timeout.

aiohttp's server closes a connection only after its keep-alive timeout (an hour by default), so a
caller trickling a request's head, or opening thousands of connections and sending nothing, would
hold descriptors and memory for that long. The settings are read from the table served now
(`server.*`), so a reload applies them to the next connection and the next check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .table import ServerSettings

log = logging.getLogger("switchyard.router")


class GuardedServer(web.Server):
    def __init__(
        self,
        handler: Any,
        settings: Callable[[], ServerSettings],
        refused: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._settings = settings
        self._refused = refused
        self._check: asyncio.TimerHandle | None = None

    def __call__(self) -> RequestHandler:
        # The idle timeout is aiohttp's keep-alive timeout, which also closes a connection on
        # which no request ever starts.
        idle = self._settings().idle_timeout
        return _HeadTimedHandler(self, loop=self._loop, keepalive_timeout=idle, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        cap = self._settings().max_connections
        if len(self._connections) > cap:
            transport.close()  # at once: a refused connection holds nothing
            if self._refused is not None:
                self._refused()
            return
        if self._check is None:
            self._check = self._loop.call_later(self._interval(), self._check_heads)

    def _interval(self) -> float:
        # A head deadline is met to within a quarter of itself (and a second at most).
        return min(self._settings().header_timeout / 4, 1.0)

    def _check_heads(self) -> None:
        """Close connections whose request head began longer ago than headerTimeout."""
        self._check = None
        limit = self._settings().header_timeout
        now = self._loop.time()
        for handler in list(self._connections):
            started = getattr(handler, "head_started", None)
            if started is not None and now - started > limit:
                handler.force_close()
        if self._connections:
            self._check = self._loop.call_later(self._interval(), self._check_heads)

    async def shutdown(self, timeout: float | None = None) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None
        await super().shutdown(timeout)


class _HeadTimedHandler(RequestHandler):
    """Notes when a request's head began to arrive, until it is whole."""

    __slots__ = ("head_started",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_started: float | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages or self._request_in_progress:
            self.head_started = None  # a whole head came (bytes now are a body's)
        elif self.head_started is None:
            self.head_started = self._loop.time()
