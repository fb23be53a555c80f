"""Builders of LLMProvider, RoutingPolicy and Secret bodies for tests."""

from __future__ import annotations

import base64
from typing import Any

from switchyard_operator.endpoints import EndpointPolicy

NS = "team"
# The providers below (and the simulator) listen on loopback: allow-listed, as a platform team
# would allow-list an in-cluster model server (the chart's endpoints.allowed).
LOOPBACK_ENDPOINTS = ("http://127.0.0.1:*",)
LOOPBACK = EndpointPolicy.parse(LOOPBACK_ENDPOINTS)


def provider(
    name: str = "openai",
    *,
    type_: str = "openai",
    secret: str = "keys",
    key: str = "OPENAI_API_KEY",
    namespace: str = NS,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": type_,
            # port 9 (discard) refuses at once: no probe leaves the machine
            "baseURL": "http://127.0.0.1:9" + ("/v1" if type_ not in ("anthropic", "gemini") else ""),
            "credentials": [{"name": "primary", "secretKeyRef": {"name": secret, "key": key}}],
            "models": [{"name": "m1", "pricing": {"inputPerMillionTokens": "1", "outputPerMillionTokens": "2"}}],
        },
    }
    body["spec"].update(spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}  # None: leave it out
    return body


def policy(
    name: str = "chat",
    *,
    targets: list[tuple[str, str]] = (("openai", "m1"),),  # type: ignore[assignment]
    namespace: str = NS,
    **route: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "routes": [
                {"name": "chat", "targets": [{"provider": p, "model": m} for p, m in targets], **route}
            ]
        },
    }


def secret(
    name: str = "keys", namespace: str = NS, *, grant: str | None = "openai", **values: str
) -> dict[str, Any]:
    """A Secret of keys that opts in for the LLMProviders named in `grant` (None: no opt-in)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if grant is not None:
        meta["labels"] = {"switchyard.dev/credentials": "true"}
        meta["annotations"] = {"switchyard.dev/allowed-providers": grant}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }
