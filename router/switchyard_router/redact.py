"""Keys out of every string that leaves the router: error messages and log lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Shapes of provider keys, for keys we were never told about (a provider echoing one back).
_KEY_SHAPES = r"sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{20,}"


class Redactor:
    def __init__(self, keys: Iterable[str] = ()) -> None:
        self.update(keys)

    def update(self, keys: Iterable[str]) -> None:
        known = sorted({re.escape(k) for k in keys if len(k) >= 6}, key=len, reverse=True)
        self._pattern = re.compile("|".join([*known, _KEY_SHAPES]))

    def __call__(self, text: str) -> str:
        return self._pattern.sub("[REDACTED]", text)

    def header(self, value: str | None) -> str | None:
        """An upstream header value on its way to the client, keys taken out."""
        return None if value is None else self(value)


class RedactingFilter(logging.Filter):
    """Installed on the router's log handler: a key that slips into a log line is scrubbed."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.redactor(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True
