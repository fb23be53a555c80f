"""Rendered answers kept as bytes, for requests the simulator has already seen.

A benchmark sends the same body thousands of times a second. Rendering it once with marker ids
and a marker timestamp, then filling fresh values into the bytes, skips JSON parsing, the
simulated model and serialisation on every repeat. Answers stay unique (fresh ids from the same
seeded sequence, the current time) and byte-for-byte what the endpoint would have produced.
"""

from __future__ import annotations

from collections.abc import Hashable

from .content import IdMaker
from .wire import Call, Endpoint, Reply

MAX_BODY_BYTES = 16 * 1024  # larger bodies are rare and would make the cache heavy
MAX_ENTRIES = 4096
CREATED_MARK = 4102444799  # 2099-12-31T23:59:59Z: a time no real answer carries
_CREATED_BYTES = b'"created":4102444799'
MARK = "\u2063"  # an invisible separator; requests that contain it are never cached
_MARK_FORMS = (MARK.encode(), b"\\u2063")  # raw UTF-8, or escaped in the request's JSON


def cacheable(path: str, raw: bytes) -> bool:
    """Small bodies whose path and body cannot smuggle a marker into the answer, and whose answer
    does not depend on earlier requests (a prompt-cache breakpoint does)."""
    return (
        len(raw) <= MAX_BODY_BYTES
        and MARK not in path
        and not any(f in raw for f in _MARK_FORMS)
        and b'"cache_control"' not in raw
    )


class _MarkingIds:
    """Hands out marker ids and remembers their order and length."""

    __slots__ = ("slots",)

    def __init__(self) -> None:
        self.slots: list[tuple[bytes, int]] = []

    def make(self, prefix: str, length: int) -> str:
        mark = f"{MARK}{len(self.slots)}{MARK}"
        self.slots.append((mark.encode(), length))
        return prefix + mark


class Template:
    __slots__ = ("_frames", "_reply", "_slots")

    def __init__(self, reply: Reply, slots: list[tuple[bytes, int]]) -> None:
        self._reply = reply
        self._slots = slots
        self._frames = reply.frames

    def fill(self, ids: IdMaker, created: int) -> Reply:
        # Ids are drawn in the order the endpoint asked for them, so the seeded sequence is the
        # same whether or not the answer came from here.
        values = [(mark, ids.make("", length).encode()) for mark, length in self._slots]
        stamp = b'"created":%d' % created

        def fill_one(data: bytes) -> bytes:
            for mark, value in values:
                data = data.replace(mark, value)
            return data.replace(_CREATED_BYTES, stamp)

        reply = self._reply
        frames = [fill_one(frame) for frame in self._frames] if self._frames is not None else None
        return Reply(
            reply.prompt_tokens,
            reply.model,
            body=fill_one(reply.body) if reply.body else b"",
            frames=frames,
            content_type=reply.content_type,
        )


class TemplateCache:
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[Hashable, Template] = {}

    def get(self, key: Hashable) -> Template | None:
        return self._entries.get(key)

    def render(self, key: Hashable, endpoint: Endpoint, call: Call) -> Template:
        """Run the endpoint once with markers (it may raise BadRequest) and keep the result."""
        marking = _MarkingIds()
        call.ids = marking
        call.created = CREATED_MARK
        template = Template(endpoint(call), marking.slots)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # crude, but a benchmark's working set is tiny
        self._entries[key] = template
        return template

    def clear(self) -> None:
        self._entries.clear()
