"""What the API server does with a manifest before storing it: defaults, schema, CEL rules.

A test helper: jsonschema checks the openAPIV3Schema, cel-python evaluates each
`x-kubernetes-validations` rule with `self` bound to the node it sits on (after defaulting).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import celpy
import jsonschema
import yaml
from switchyard_operator import crdgen

_ENV = celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    return _ENV.program(_ENV.compile(rule))


@functools.cache
def crd_schemas() -> dict[str, dict[str, Any]]:
    """kind -> openAPIV3Schema, read from the generated YAML (what `kubectl apply` installs)."""
    out = {}
    for text in crdgen.generate().values():
        for doc in yaml.safe_load_all(text):
            kind = doc["spec"]["names"]["kind"]
            out[kind] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return out


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    value = copy.deepcopy(value)
    if isinstance(value, dict) and "properties" in schema:
        for name, prop in schema["properties"].items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                value[name] = apply_defaults(prop, value[name])
    elif isinstance(value, list) and "items" in schema:
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def cel_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    errors = []
    for rule in schema.get("x-kubernetes-validations", []):
        program = _program(rule["rule"])
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and result):
            errors.append(f"{path or '<root>'}: {rule['message']}")
    if isinstance(value, dict):
        for name, item in value.items():
            if name in schema.get("properties", {}):
                errors += cel_errors(schema["properties"][name], item, f"{path}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += cel_errors(schema["additionalProperties"], item, f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += cel_errors(schema["items"], item, f"{path}[{i}]")
    return errors


def admission_errors(manifest: dict[str, Any]) -> list[str]:
    """Every reason the API server would refuse this custom resource (empty: accepted)."""
    schema = copy.deepcopy(crd_schemas()[manifest["kind"]])
    obj = apply_defaults(schema, manifest)
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]
    if not errors:
        errors = cel_errors(schema, obj)
    return errors
