"""A client's request checked before anything reads it: a field of the wrong JSON type, or JSON
nested too deep to encode again, is a 400 naming the field, never a 500 from a translation.

The field types are OpenAI's (request_fields.py, generated from its OpenAPI description); a field
the spec does not know (a provider's extension) or leaves open (a JSON schema) takes anything.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .request_fields import CHAT, EMBEDDINGS

# Deeper than this, JSON cannot be encoded again for the provider (orjson's limit).
MAX_DEPTH = 254

_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}
_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


class _Field:
    __slots__ = ("expected", "fields", "items", "types", "values")

    def __init__(self, types: str | None = None) -> None:
        # None: any JSON type (a field the spec leaves open, above ones it restricts).
        self.types = frozenset(t for name in types.split() for t in _TYPES[name]) if types else None
        names = (types or "").split()
        if "number" in names:
            names.remove("integer")  # a number may be an integer: saying so adds nothing
        self.expected = " or ".join(names)
        self.fields: dict[str, _Field] = {}
        self.items: _Field | None = None
        self.values: _Field | None = None


def _tree(flat: dict[str, str]) -> _Field:
    root = _Field("object")
    for path, types in sorted(flat.items()):  # a field before those below it
        node = root
        *steps, last = re.findall(r"\[\]|\{\}|[^.\[\]{}]+", path)
        for step in steps:
            node = _child(node, step) or _add(node, step, _Field())
        _add(node, last, _Field(types))
    return root


def _child(node: _Field, step: str) -> _Field | None:
    return node.items if step == "[]" else node.values if step == "{}" else node.fields.get(step)


def _add(node: _Field, step: str, child: _Field) -> _Field:
    if step == "[]":
        node.items = child
    elif step == "{}":
        node.values = child
    else:
        node.fields[step] = child
    return child


_CHAT = _tree(CHAT)
_EMBEDDINGS = _tree(EMBEDDINGS)


def chat_problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) for the first field of a chat request of the wrong type, else None."""
    return _check(body, _CHAT, "")


def embeddings_problem(body: dict[str, Any]) -> tuple[str, str] | None:
    return _check(body, _EMBEDDINGS, "")


def _check(value: Any, field: _Field, path: str) -> tuple[str, str] | None:
    kind = type(value)
    if field.types is not None and kind not in field.types:
        return path, f"{path}: expected {field.expected}, got {_NAMES[kind]}"
    if kind is dict:
        if field.fields:
            for name, item in value.items():
                sub = field.fields.get(name)
                if sub is not None and (found := _check(item, sub, f"{path}.{name}" if path else name)):
                    return found
        elif field.values is not None:
            for name, item in value.items():
                if found := _check(item, field.values, f"{path}.{name}"):
                    return found
    elif kind is list and field.items is not None:
        for i, item in enumerate(value):
            if found := _check(item, field.items, f"{path}[{i}]"):
                return found
    return None


def too_deep(raw: bytes, body: Any) -> bool:
    """Whether the request nests JSON deeper than MAX_DEPTH. Counting brackets (in strings too)
    bounds the depth from above: only a body with that many is encoded to find out."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        return True
    return False
