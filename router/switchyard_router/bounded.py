"""Reads from upstreams, bounded: whatever a broken or hostile endpoint sends (an endless body, an
event that never ends, JSON made of millions of empty arrays) costs at most the table's limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from .errors import ErrorKind, UpstreamError
from .table import ServerSettings

ERROR_BODY_BYTES = 64 * 1024  # an error's message is in its first bytes; the rest is not read
PARSE_FACTOR = 4  # parsed JSON may take this many times maxResponseBytes in memory
_CHEAP = 64 * 1024  # JSON this small cannot grow into much, however it is built


@dataclass(frozen=True, slots=True)
class ReadLimits:
    response: int
    event: int
    stream: int

    @classmethod
    def of(cls, settings: ServerSettings) -> ReadLimits:
        return cls(settings.max_response_bytes, settings.max_event_bytes, settings.max_stream_bytes)

    @property
    def parse_budget(self) -> int:
        return PARSE_FACTOR * self.response


DEFAULT_LIMITS = ReadLimits.of(ServerSettings())


def too_large(provider: str, what: str, setting: str, limit: int, times: int = 1) -> UpstreamError:
    """ResponseTooLarge, naming the setting breached (also the metric's `limit` label)."""
    over = f"{times} x server.{setting}" if times > 1 else f"server.{setting}"
    err = UpstreamError(ErrorKind.RESPONSE_TOO_LARGE, f"{provider} sent {what}, over {over} ({limit} bytes)")
    err.limit = setting
    return err


def compressed(headers: Mapping[str, str]) -> bool:
    return headers.get("Content-Encoding", "identity").lower() != "identity"


def refuse_encoded(provider: str, headers: Mapping[str, str]) -> None:
    """The router asks for identity: a compressed answer is not unpacked (a few KB of gzip can
    hold gigabytes)."""
    if compressed(headers):
        encoding = headers["Content-Encoding"]
        raise UpstreamError(
            ErrorKind.SERVER_ERROR,
            f"{provider} answered with Content-Encoding {encoding[:20]!r} though asked for identity; "
            "compressed answers are not read",
        )


async def read_body(response: aiohttp.ClientResponse, limit: int, provider: str) -> bytes:
    """The whole body, or ResponseTooLarge as soon as it passes `limit`."""
    length = response.content_length
    if length is not None:
        if length > limit:
            raise too_large(provider, f"an answer of {length} bytes", "maxResponseBytes", limit)
        return await response.read()  # exactly Content-Length bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            # Let go of what was read before raising: the error's traceback keeps this frame,
            # and with it the chunks, until a garbage collection (hundreds of MB under attack).
            chunks.clear()
            raise too_large(provider, "an answer", "maxResponseBytes", limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_head(response: aiohttp.ClientResponse, limit: int = ERROR_BODY_BYTES) -> bytes:
    """The first `limit` bytes of a body (an error's), the rest left unread."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def check_structure(raw: bytes, budget: int, provider: str) -> None:
    """Refuse JSON whose parsed form could outgrow `budget`: each array or object costs about
    96 bytes once parsed and each further element about 48, so `[],[],...` grows thirtyfold."""
    if len(raw) <= _CHEAP:
        return
    cost = len(raw) + 96 * (raw.count(b"[") + raw.count(b"{")) + 48 * raw.count(b",")
    if cost > budget:
        what = f"JSON that would take about {cost} bytes once parsed"
        raise too_large(provider, what, "maxResponseBytes", budget // PARSE_FACTOR, times=PARSE_FACTOR)
