"""A JSON Schema as Anthropic's structured outputs (and strict tools) accept it.

Anthropic's constrained decoding takes a subset of JSON Schema: every object closed with
`additionalProperties: false`, `minItems` of 0 or 1 only, a fixed set of string formats, and no
numeric or length bounds. OpenAI's strict mode allows more. Rather than have a fallback to
Anthropic refused with a 400, what Anthropic cannot enforce moves into the description, where
the model still reads it.
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import JSON

STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
# Copied as they are (what nests is rebuilt below).
_KEPT = ("description", "title", "$ref", "enum", "const")
_BUILT = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "minItems", "format"}
    | {"anyOf", "oneOf", "allOf", "$defs", "definitions"}
)


def anthropic_schema(node: Any) -> JSON:
    """The whole schema, with OpenAI's older `definitions` moved to `$defs`."""
    if not isinstance(node, dict):
        return {"type": "object", "properties": {}, "additionalProperties": False}
    out = _node(node)
    defs = {**(node.get("definitions") or {}), **(node.get("$defs") or {})}
    if defs:
        out["$defs"] = {name: _node(sub) for name, sub in defs.items()}
    return out


def _node(node: Any) -> JSON:
    if not isinstance(node, dict):
        return {}
    out: JSON = {key: node[key] for key in _KEPT if key in node}
    if isinstance(out.get("$ref"), str):
        out["$ref"] = out["$ref"].replace("#/definitions/", "#/$defs/")
    hints = {k: v for k, v in node.items() if k not in _BUILT and k not in _KEPT}
    variants = node.get("anyOf") or node.get("oneOf")
    if isinstance(variants, list):
        out["anyOf"] = [_node(v) for v in variants]
    if isinstance(node.get("allOf"), list):
        out["allOf"] = [_node(v) for v in node["allOf"]]
    kind = node.get("type")
    if isinstance(kind, list):  # ["string", "null"]: one branch per type
        out["anyOf"] = [_typed({**node, "type": k}, {}, hints) for k in kind]
    elif isinstance(kind, str):
        _typed(node, out, hints)
    elif "properties" in node:
        _typed({**node, "type": "object"}, out, hints)
    if hints:
        note = "; ".join(f"{k}: {orjson.dumps(v).decode()}" for k, v in hints.items())
        out["description"] = f"{out['description']}\n\n({note})" if out.get("description") else f"({note})"
    return out


def _typed(node: JSON, out: JSON, hints: JSON) -> JSON:
    """Fill `out` with what `node`'s type allows; what it does not goes to `hints`."""
    kind = out["type"] = node["type"]
    if kind == "object":
        properties = node.get("properties")
        out["properties"] = (
            {k: _node(v) for k, v in properties.items()} if isinstance(properties, dict) else {}
        )
        if node.get("additionalProperties", False) is not False:  # a map: no closed form
            hints["additionalProperties"] = node["additionalProperties"]
        out["additionalProperties"] = False
        if isinstance(node.get("required"), list):
            out["required"] = node["required"]
    elif kind == "array":
        if isinstance(node.get("items"), dict):
            out["items"] = _node(node["items"])
        if node.get("minItems") in (0, 1):
            out["minItems"] = node["minItems"]
        elif "minItems" in node:
            hints["minItems"] = node["minItems"]
    elif kind == "string" and "format" in node:
        if node["format"] in STRING_FORMATS:
            out["format"] = node["format"]
        else:
            hints["format"] = node["format"]
    return out
