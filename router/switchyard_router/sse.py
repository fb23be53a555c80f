"""Incremental Server-Sent Events decoding of an upstream byte stream."""

from __future__ import annotations

# Byte values, for `in` tests: CPython tries a bytes needle as an int first, raising and clearing a
# TypeError before it searches; on a 3 KB stream block that is ten times a byte value's memchr.
CR, LF = ord("\r"), ord("\n")


class SSEDecoder:
    """Feed raw bytes as they arrive; get complete (event, data) pairs back.

    Handles any split of the byte stream, CRLF line ends, multi-line data and comments.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        buffer = self._buffer + chunk
        if CR in buffer:
            # A trailing CR may be half of a CRLF split across reads: keep it for the next one.
            held = b"\r" if buffer.endswith(b"\r") else b""
            buffer = buffer[: len(buffer) - len(held)].replace(b"\r\n", b"\n").replace(b"\r", b"\n") + held
        events: list[tuple[str | None, bytes]] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            parsed = _parse_event(buffer[start:end])
            if parsed is not None:
                events.append(parsed)
            start = end + 2
        self._buffer = buffer[start:]
        return events

    @property
    def pending(self) -> int:
        """Bytes of an event not complete yet (for the per-event limit)."""
        return len(self._buffer)

    def discard(self) -> None:
        """Drop the event being read (one over the limit: not kept until a garbage collection)."""
        self._buffer = b""

    def complete(self, chunk: bytes) -> bytes:
        """Whole events as the raw bytes they came in (up to the last blank line); the rest
        waits for more. For streams without CR line ends, which pass through untouched."""
        buffer = self._buffer + chunk
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._buffer = buffer
            return b""
        self._buffer = buffer[end + 2 :]
        return buffer[: end + 2]

    @staticmethod
    def parse(block: bytes) -> list[tuple[str | None, bytes]]:
        """The events in whole-event bytes from `complete`."""
        events = (_parse_event(part) for part in block.split(b"\n\n"))
        return [event for event in events if event is not None]

    def flush(self) -> list[tuple[str | None, bytes]]:
        """The last event when the stream ended without a blank line."""
        rest, self._buffer = self._buffer, b""
        parsed = _parse_event(rest.rstrip(b"\r\n")) if rest.strip() else None
        return [parsed] if parsed is not None else []


def _parse_event(block: bytes) -> tuple[str | None, bytes] | None:
    if not block:
        return None
    if block.startswith(b"data: ") and LF not in block:
        return None, block[6:]  # the common case: one data line, no event name
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")  # a name that is not UTF-8 is no known event
    if event is None and not data:
        return None
    return event, b"\n".join(data)
