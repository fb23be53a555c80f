"""What a compiled policy becomes in the cluster: the routes ConfigMap and the credentials Secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from .compile import CompileResult
from .grants import COMPILED, CREDENTIALS_LABEL
from .models import API_VERSION
from .secrets import encode_data

TABLE_KEY = "table.yaml"
HASH_ANNOTATION = "switchyard.dev/table-hash"
POLICY_LABEL = "switchyard.dev/policy"
MANAGED_BY = {"app.kubernetes.io/managed-by": "switchyard-operator"}

JSON = dict[str, Any]


def routes_name(policy: str) -> str:
    return f"{policy}-routes"


def credentials_name(policy: str) -> str:
    return f"{policy}-credentials"


def _metadata(policy: Mapping[str, Any], name: str) -> JSON:
    meta = policy.get("metadata") or {}
    out: JSON = {"name": name}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    out["labels"] = {**MANAGED_BY, POLICY_LABEL: meta.get("name", "")}
    if meta.get("uid"):  # offline compiles have no uid, hence no owner
        out["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": "RoutingPolicy",
                "name": meta.get("name", ""),
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return out


def owned_by(body: Mapping[str, Any], policy: Mapping[str, Any]) -> bool:
    """Switchyard wrote this object for this policy: our label and the policy as controller.
    Anything else with the same name belongs to someone else and is never written."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    uid = (policy.get("metadata") or {}).get("uid")
    return bool(
        uid
        and all(labels.get(k) == v for k, v in MANAGED_BY.items())
        and any(
            ref.get("uid") == uid and ref.get("controller") for ref in meta.get("ownerReferences") or []
        )
    )


def config_map(policy: Mapping[str, Any], result: CompileResult) -> JSON:
    """The `<policy>-routes` ConfigMap: the table as YAML, annotated with its digest."""
    meta = _metadata(policy, routes_name(policy["metadata"]["name"]))
    meta["annotations"] = {HASH_ANNOTATION: result.digest()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {TABLE_KEY: result.table_yaml()},
    }


def credentials_secret(policy: Mapping[str, Any], result: CompileResult) -> JSON:
    """The `<policy>-credentials` Secret: one entry per Credential.key of the table."""
    meta = _metadata(policy, credentials_name(policy["metadata"]["name"]))
    meta["labels"][CREDENTIALS_LABEL] = COMPILED  # watched by the operator, never a key source
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta,
        "data": encode_data(dict(sorted(result.credentials.items()))),
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the table) as `|` blocks, so a printed ConfigMap stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def dump_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_BlockDumper, sort_keys=False, width=100)
