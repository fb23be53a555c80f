"""Which pods run a router, for which policy, and where its health port answers.

A router pod is one the webhook admitted: it carries the `switchyard.dev/injected: <policy>`
annotation, and its router container (the one declaring the `router-health` port) runs with
`--policy <policy>`. Container arguments cannot change after a pod is created, so the policy a
pod reports for is the one its admission checked; an annotation edited later that no longer
matches makes the pod no router at all (its reports are not pulled).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .webhook import HEALTH_PORT_NAME, INJECTED_ANNOTATION

JSON = dict[str, Any]


@dataclass(frozen=True)
class RouterPod:
    namespace: str
    name: str
    uid: str
    policy: str
    service_account: str
    ip: str | None
    port: int | None
    running: bool
    deleting: bool

    @property
    def url(self) -> str | None:
        """Where its cumulative report is pulled; None while it cannot be reached."""
        if self.ip is None or self.port is None or not self.running:
            return None
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"http://{host}:{self.port}/usage"

    def ref(self) -> JSON:
        """Enough of the Pod for an Event about it."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        }


def _policy_arg(container: Mapping[str, Any]) -> str | None:
    args = [str(a) for a in container.get("args") or []]
    for flag, value in itertools.pairwise(args):
        if flag == "--policy":
            return value
    return None


def _health_port(container: Mapping[str, Any]) -> int | None:
    for port in container.get("ports") or []:
        if port.get("name") == HEALTH_PORT_NAME and isinstance(port.get("containerPort"), int):
            return int(port["containerPort"])
    return None


def _pod_ip(status: Mapping[str, Any]) -> str | None:
    try:
        return str(ipaddress.ip_address(str(status.get("podIP"))))
    except ValueError:
        return None


def router_pod(body: Mapping[str, Any]) -> RouterPod | None:
    """The router of an injected pod; None for any other pod."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    policy = (meta.get("annotations") or {}).get(INJECTED_ANNOTATION)
    if not policy or spec.get("hostNetwork"):
        return None
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    router = next((c for c in containers if _health_port(c) is not None), None)
    if router is None or _policy_arg(router) != policy:
        return None
    return RouterPod(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        policy=str(policy),
        service_account=str(spec.get("serviceAccountName") or "default"),
        ip=_pod_ip(status),
        port=_health_port(router),
        running=status.get("phase") == "Running",
        deleting=bool(meta.get("deletionTimestamp")),
    )
