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


# --- the field types of a request, for the router's own check (router/.../request_fields.py) ----

JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
_ANY = frozenset(JSON_TYPES)
_SKIP = object()  # a variant that is no array (or no object) says nothing about items (or values)


class _Shape:
    def __init__(self, types: frozenset[str], props: dict | None = None, items: Any = None, values: Any = None):
        self.types, self.props, self.items, self.values = types, props or {}, items, values


def _either(a: Any, b: Any) -> Any:
    if a is _SKIP:
        return None if b is _SKIP else b
    if b is _SKIP:
        return a
    return _union(a, b) if a is not None and b is not None else None  # one is free: free


def _union(a: _Shape | None, b: _Shape) -> _Shape:
    """What either of two variants accepts. A field declared by only some variants keeps their
    types: the variants of a request part are told apart by another field (a message's role)."""
    if a is None:
        return b
    props = dict(a.props)
    for name, shape in b.props.items():
        props[name] = _union(props.get(name), shape)

    def part(shape: _Shape, kind: str, attr: str) -> Any:
        return getattr(shape, attr) if kind in shape.types else _SKIP

    return _Shape(
        a.types | b.types,
        props,
        _either(part(a, "array", "items"), part(b, "array", "items")),
        _either(part(a, "object", "values"), part(b, "object", "values")),
    )


def _shape(node: dict, refs: tuple[str, ...] = ()) -> _Shape:
    schemas = _spec()["components"]["schemas"]
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in refs:  # a recursive part (a JSON schema's own properties): free
            return _Shape(_ANY)
        refs = (*refs, name)
        node = {**schemas[name], **{k: v for k, v in node.items() if k != "$ref"}}
    for key in ("anyOf", "oneOf"):
        if key in node:
            merged = None
            for variant in node[key]:
                merged = _union(merged, _shape(variant, refs))
            assert merged is not None
            return merged
    if "allOf" in node:
        parts = [_shape(part, refs) for part in node["allOf"]]
        merged = parts[0]
        types = merged.types
        for part in parts[1:]:
            types &= part.types
            merged = _union(merged, part)
        merged.types = types
        return merged
    declared = node.get("type")
    if declared is None:
        if "properties" in node:
            types = {"object"}
        elif "enum" in node:
            names = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
            types = {names[type(v)] for v in node["enum"]}
        else:
            types = set(_ANY)
    else:
        types = set(declared) if isinstance(declared, list) else {declared}
    if "number" in types:
        types.add("integer")
    shape = _Shape(frozenset(types))
    shape.props = {name: _shape(sub, refs) for name, sub in node.get("properties", {}).items()}
    if isinstance(node.get("items"), dict):
        shape.items = _shape(node["items"], refs)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and not shape.props:
        shape.values = _shape(extra, refs)
    return shape


def field_types(schema_name: str) -> dict[str, str]:
    """Every field of a request schema whose JSON types the spec restricts, as a flat map:
    `messages[].content[].image_url.url` -> "string" (`[]` an array's items, `{}` a map's values).
    Variants (oneOf, anyOf) are merged: a type is wrong when no variant declaring the field takes it."""
    out: dict[str, str] = {}

    def walk(shape: _Shape, path: str) -> None:
        if shape.types != _ANY:
            out[path] = " ".join(t for t in JSON_TYPES if t in shape.types)
        for name, sub in shape.props.items():
            walk(sub, f"{path}.{name}" if path else name)
        if shape.items is not None:
            walk(shape.items, f"{path}[]")
        if shape.values is not None:
            walk(shape.values, f"{path}{{}}")

    walk(_shape({"$ref": f"#/components/schemas/{schema_name}"}), "")
    out.pop("", None)  # the body itself: an object, checked before anything
    return dict(sorted(out.items()))


REQUEST_SCHEMAS = {"CHAT": "CreateChatCompletionRequest", "EMBEDDINGS": "CreateEmbeddingRequest"}
FIELDS_MODULE = Path(__file__).resolve().parents[1] / "router" / "switchyard_router" / "request_fields.py"


def fields_module() -> str:
    """The source of router/switchyard_router/request_fields.py, generated from the spec."""
    lines = [
        '"""The JSON types of the fields of OpenAI requests, from OpenAI\'s OpenAPI description.',
        "",
        "Generated by `python -m tests.openai_spec`: do not edit. `a[]` is an array's items, `a{}` a",
        'map\'s values; a field not listed takes anything (a JSON schema, a field the spec lacks)."""',
        "",
    ]
    for constant, schema in REQUEST_SCHEMAS.items():
        lines.append(f"{constant}: dict[str, str] = {{")
        lines += [f'    "{path}": "{types}",' for path, types in field_types(schema).items()]
        lines += ["}", ""]
    return "\n".join(lines)[:-1] + "\n"


if __name__ == "__main__":
    FIELDS_MODULE.write_text(fields_module())
    print(f"wrote {FIELDS_MODULE}")
