"""Deterministic model behaviour shared by every wire format.

Each API module reduces its request to a `Prompt`; `answer` turns that into the same reply in
every family, so a test can compare a provider's output with another's after translation.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

JSON = dict[str, Any]

TOOL_CALL_TOKENS = 10  # completion tokens billed for a tool call, whatever its arguments
_WORD = re.compile(r"\S+\s*")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ID_TABLE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))


@dataclass(slots=True)
class Prompt:
    """What the simulated model needs from a request, whatever its wire format."""

    chars: int = 0
    last_user_text: str = ""
    tool_name: str | None = None  # the tool to call, already chosen from tools and tool_choice
    tool_schema: JSON | None = None
    max_tokens: int | None = None
    # JSON asked for (response_format, output_config, responseSchema): its schema, {} for any object
    json_schema: JSON | None = None

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.chars)


@dataclass(slots=True)
class Answer:
    prompt_tokens: int
    completion_tokens: int
    text: str = ""
    chunks: tuple[str, ...] = ()  # text split for streaming, "".join(chunks) == text
    tool_name: str | None = None
    tool_args: JSON = field(default_factory=dict)
    truncated: bool = False  # max_tokens cut the text short


def estimate_tokens(chars: int) -> int:
    return max(1, chars // 4)


def reply_text(provider: str, model: str, last_user_text: str) -> str:
    return f"Hello from {provider} ({model}). You said: {last_user_text[:40]}"


@lru_cache(maxsize=4096)
def _text_reply(provider: str, model: str, said: str, max_tokens: int | None) -> tuple[tuple[str, ...], bool]:
    """The reply's chunks (a word each, keeping its trailing whitespace) and whether max_tokens
    cut it. Cached: the benchmark asks the same question thousands of times a second."""
    words = _WORD.findall(reply_text(provider, model, said))
    truncated = max_tokens is not None and 0 <= max_tokens < len(words)
    if truncated:
        words = words[:max_tokens]
    if words:
        words[-1] = words[-1].rstrip()
    return tuple(words), truncated


def answer(provider: str, model: str, prompt: Prompt) -> Answer:
    prompt_tokens = prompt.tokens
    if prompt.tool_name is not None:
        return Answer(
            prompt_tokens=prompt_tokens,
            completion_tokens=TOOL_CALL_TOKENS,
            tool_name=prompt.tool_name,
            tool_args=arguments_for(prompt.tool_schema),
        )
    if prompt.json_schema is not None:
        return _json_answer(
            prompt_tokens, reply_text(provider, model, prompt.last_user_text[:40]), prompt.json_schema
        )
    chunks, truncated = _text_reply(provider, model, prompt.last_user_text[:40], prompt.max_tokens)
    return Answer(
        prompt_tokens=prompt_tokens,
        completion_tokens=len(chunks),
        text="".join(chunks),
        chunks=chunks,
        truncated=truncated,
    )


def _json_answer(prompt_tokens: int, said: str, schema: JSON) -> Answer:
    """An instance of the schema (the reply under "reply" when any object will do), streamed in
    a few pieces as a model writes JSON."""
    value = arguments_for(schema) if schema.get("properties") else {"reply": said}
    text = orjson.dumps(value).decode()
    step = max(1, len(text) // 4)
    chunks = tuple(text[i : i + step] for i in range(0, len(text), step))
    return Answer(prompt_tokens=prompt_tokens, completion_tokens=len(chunks), text=text, chunks=chunks)


def choose_tool(tools: list[tuple[str, JSON | None]], forced: str | None) -> tuple[str | None, JSON | None]:
    """The forced tool if it is declared (else the first tool), or (None, None) without tools."""
    if not tools:
        return None, None
    if forced is not None:
        for name, schema in tools:
            if name == forced:
                return name, schema
    return tools[0]


def arguments_for(schema: JSON | None, defs: JSON | None = None) -> JSON:
    """Arguments that satisfy a JSON schema's required properties, with fixed sample values."""
    if not isinstance(schema, dict):
        return {}
    if defs is None:  # the root: its definitions serve every $ref below
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    required = schema.get("required") or []
    return {
        name: _sample(properties.get(name), defs)
        for name in required
        if isinstance(name, str) and name in properties
    }


def _sample(schema: Any, defs: JSON) -> Any:
    if not isinstance(schema, dict):
        return "sim"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _sample(defs.get(ref.rsplit("/", 1)[-1]), defs)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):  # e.g. ["string", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and isinstance(schema.get("anyOf"), list) and schema["anyOf"]:
        return _sample(schema["anyOf"][0], defs)
    kind = kind.lower() if isinstance(kind, str) else "string"  # Gemini writes STRING, OBJECT
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "object":
        return arguments_for(schema, defs)
    if kind == "array":
        return [_sample(schema.get("items"), defs)] if schema.get("minItems") else []
    if kind == "null":
        return None
    return "sim"


@lru_cache(maxsize=8192)
def embedding(text: str, dimensions: int) -> tuple[float, ...]:
    """A unit vector derived from the text alone, rounded to float32 like real embeddings."""
    raw = bytearray()
    counter = 0
    while len(raw) < dimensions * 2:
        raw += hashlib.blake2b(f"{counter}:{text}".encode(), digest_size=64).digest()
        counter += 1
    values = [
        (int.from_bytes(raw[2 * i : 2 * i + 2], "little") - 32767.5) / 32767.5 for i in range(dimensions)
    ]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return struct.unpack(f"<{dimensions}f", packed)


def embedding_bytes(values: tuple[float, ...]) -> bytes:
    """Little-endian float32, what OpenAI's `encoding_format: base64` carries."""
    return struct.pack(f"<{len(values)}f", *values)


class IdMaker:
    """Realistic-looking ids from a seeded generator, so a run repeats exactly."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")

    def make(self, prefix: str, length: int) -> str:
        # randbytes + translate runs in C: ids sit on the hot path, choices() was 20% of it.
        return prefix + self._rng.randbytes(length).translate(_ID_TABLE).decode()
