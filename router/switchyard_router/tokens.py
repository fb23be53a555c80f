"""Prompt size for context-window choices: a free estimate always, an exact count when it matters.

The estimate is the request body's length over four bytes a token: it costs nothing and errs
high (JSON syntax counts too). Only when that estimate rules a target out is the prompt counted
exactly, with tiktoken, for models whose encoding tiktoken knows. Encodings are loaded off the
request path and only when asked for (`--exact-tokens`): each one costs tens of MB, which a
sidecar should not pay by default, and tiktoken fetches them from the internet unless
TIKTOKEN_CACHE_DIR holds them (bake them into the image for air-gapped clusters).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

log = logging.getLogger("switchyard.router")

PER_MESSAGE_TOKENS = 4  # role and separators, as OpenAI's cookbook counts them


class Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def prompt_text(body: dict[str, Any]) -> tuple[str, int]:
    """All text a model reads as its prompt, and the number of messages."""
    parts: list[str] = []
    messages = body.get("messages") or []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
    return "\n".join(parts), len(messages)


class TokenCounter:
    def __init__(self, encodings: dict[str, Encoding] | None = None) -> None:
        self.encodings = dict(encodings or {})

    def exact(self, model: str, body: dict[str, Any]) -> int | None:
        encoding = self.encodings.get(model)
        if encoding is None:
            return None
        text, messages = prompt_text(body)
        return len(encoding.encode_ordinary(text)) + PER_MESSAGE_TOKENS * messages

    def preload(self, models: Iterable[str]) -> None:
        """Blocking: run it in a thread. Models tiktoken does not know keep the estimate."""
        try:
            import tiktoken
        except ImportError:
            log.warning("--exact-tokens needs tiktoken (pip install 'switchyard[tokens]'): using estimates")
            return
        for model in set(models) - set(self.encodings):
            try:
                self.encodings[model] = tiktoken.encoding_for_model(model)
            except KeyError:
                continue  # not an OpenAI model: the estimate stands
            except Exception as exc:  # offline without a cache, most often
                log.warning("no tiktoken encoding for %s (%s): using estimates", model, exc)
