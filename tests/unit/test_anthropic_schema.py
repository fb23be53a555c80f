"""OpenAI-style JSON schemas narrowed to what Anthropic's structured outputs enforce."""

from __future__ import annotations

from typing import Any

import pytest
from switchyard_router.adapters.anthropic_schema import anthropic_schema

CLOSED: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def test_not_a_schema_is_an_empty_closed_object() -> None:
    assert anthropic_schema(None) == CLOSED
    assert anthropic_schema({"type": "object"}) == CLOSED


def test_every_object_is_closed_and_keeps_its_required() -> None:
    schema = {
        "type": "object",
        "title": "Order",
        "properties": {"id": {"type": "string"}, "lines": {"properties": {"n": {"type": "integer"}}}},
        "required": ["id"],
    }
    assert anthropic_schema(schema) == {
        "title": "Order",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "lines": {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
        "required": ["id"],
    }


def test_a_map_object_is_closed_with_a_hint() -> None:
    out = anthropic_schema({"type": "object", "additionalProperties": {"type": "integer"}})
    assert out["additionalProperties"] is False
    assert out["description"] == '(additionalProperties: {"type":"integer"})'


def test_bounds_move_into_the_description() -> None:
    node = {"type": "integer", "description": "Age", "minimum": 0, "maximum": 150}
    out = anthropic_schema({"type": "object", "properties": {"age": node}})["properties"]["age"]
    assert out == {"type": "integer", "description": "Age\n\n(minimum: 0; maximum: 150)"}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "string", "format": "email"}, {"type": "string", "format": "email"}),
        ({"type": "string", "format": "phone"}, {"type": "string", "description": '(format: "phone")'}),
        ({"type": "array", "minItems": 1}, {"type": "array", "minItems": 1}),
        (
            {"type": "array", "minItems": 0, "items": {"type": "string"}},
            {"type": "array", "items": {"type": "string"}, "minItems": 0},
        ),
        (
            {"type": "array", "minItems": 2, "maxItems": 3},
            {"type": "array", "description": "(maxItems: 3; minItems: 2)"},
        ),
        ({"enum": ["a", "b"]}, {"enum": ["a", "b"]}),
        ({"const": 3}, {"const": 3}),
        (
            {"oneOf": [{"type": "string"}, {"type": "null"}]},
            {"anyOf": [{"type": "string"}, {"type": "null"}]},
        ),
        ({"allOf": [{"$ref": "#/$defs/A"}]}, {"allOf": [{"$ref": "#/$defs/A"}]}),
        (
            {"type": ["string", "null"], "format": "date", "description": "When"},
            {"description": "When", "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        ),
        ("nonsense", {}),
    ],
)
def test_nodes(node: Any, expected: dict[str, Any]) -> None:
    assert anthropic_schema({"type": "object", "properties": {"x": node}})["properties"]["x"] == expected


def test_definitions_move_to_defs_and_refs_follow() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/A"}, "b": {"$ref": "#/$defs/B"}},
        "definitions": {"A": {"type": "string", "maxLength": 3}},
        "$defs": {"B": {"type": "object", "properties": {}}},
    }
    out = anthropic_schema(schema)
    assert out["properties"] == {"a": {"$ref": "#/$defs/A"}, "b": {"$ref": "#/$defs/B"}}
    assert out["$defs"] == {"A": {"type": "string", "description": "(maxLength: 3)"}, "B": CLOSED}
    assert "definitions" not in out
