"""OpenAI's OpenAPI description (shared/specs), as JSON Schema validators for tests."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "openai-openapi.yaml"
if not SPEC.exists():  # the repository may be checked out on its own
    SPEC = Path("/work/shared/specs/openai-openapi.yaml")
AVAILABLE = SPEC.exists()


def _nullable_to_null(node: Any) -> Any:
    """The spec mixes OpenAPI 3.0's `nullable: true` into 3.1 schemas; JSON Schema needs null."""
    if isinstance(node, list):
        return [_nullable_to_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_to_null(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if isinstance(node.get("enum"), list):
            node["enum"] = [*node["enum"], None]
        if "$ref" in node or "anyOf" in node or "allOf" in node or "oneOf" in node:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


@functools.cache
def _spec() -> dict[str, Any]:
    with SPEC.open() as handle:
        loaded = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {"components": {"schemas": _nullable_to_null(loaded["components"]["schemas"])}}


def validator(schema_name: str) -> Draft202012Validator:
    """A validator for the spec's `components.schemas[schema_name]`."""
    return Draft202012Validator({**_spec(), "$ref": f"#/components/schemas/{schema_name}"})


def check(schema_name: str, instance: Any) -> None:
    """Assert that `instance` conforms to the spec's `components.schemas[schema_name]`."""
    errors = sorted(validator(schema_name).iter_errors(instance), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def schema_properties(schema_name: str) -> set[str]:
    """The property names of a schema, through its allOf parts."""
    schemas = _spec()["components"]["schemas"]
    node = schemas[schema_name]
    names = set(node.get("properties", {}))
    for part in node.get("allOf", ()):
        ref = part.get("$ref")
        names |= schema_properties(ref.rsplit("/", 1)[-1]) if ref else set(part.get("properties", {}))
    return names
