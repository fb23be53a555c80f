"""Router pods for operator tests: a Pod as the webhook admits it, and its health port on loopback.

Each pod is created in the emulated API exactly as the webhook's `inject_sidecar` makes it (its
router's `--policy`, the `router-health` port), Running at 127.0.0.1; its health port is a real
aiohttp server answering `GET /usage` with the report the test last published, the way a router
does (`?wait=final` held until a final report is published). Pods carry a finalizer standing in
for the kubelet, so a deletion first marks them terminating, as on a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from aiohttp import web
from switchyard_operator.kube import Kube, core_path
from switchyard_operator.webhook import SidecarSettings, inject_sidecar
from switchyard_router.usage import UsageReport

from .manifests import NS

KUBELET = "tests.switchyard.dev/kubelet"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def router_pod_body(name: str, policy: str, port: int, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "finalizers": [KUBELET],
                     "annotations": {"switchyard.dev/policy": policy}},
        "spec": {"serviceAccountName": "chatbot", "containers": [{"name": "app", "image": "chatbot:1"}], **spec},
    }
    return inject_sidecar(pod, policy, SidecarSettings(health_port=port))


class HealthPort:
    """One router's health port: serves the published report."""

    def __init__(self) -> None:
        self.report: bytes | None = None
        self.final = asyncio.Event()
        self.pulls = 0
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def usage(self, request: web.Request) -> web.Response:
        self.pulls += 1
        if request.query.get("wait") == "final":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.final.wait(), float(request.query.get("timeout", "10")))
        if self.report is None:
            return web.Response(status=503)
        return web.Response(body=self.report, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/usage", self.usage)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Fleet:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.ports: dict[str, HealthPort] = {}

    async def grant(self, account: str, policy: str, namespace: str = NS) -> None:
        """What the chart's routerAccess gives: `use` on the policy, by name."""
        name = f"router-{account}-{policy}"
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        if await self.kube.get(f"{rbac}/roles/{name}") is not None:
            return
        await self.kube.create(f"{rbac}/roles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
            "rules": [{"apiGroups": ["switchyard.dev"], "resources": ["routingpolicies"],
                       "resourceNames": [policy], "verbs": ["use"]}],
        })
        await self.kube.create(f"{rbac}/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        })

    async def add(self, name: str, policy: str = "chat", *, granted: bool = True, **spec: Any) -> HealthPort:
        port = self.ports.get(name)
        if port is None:
            port = self.ports[name] = HealthPort()
            await port.start()
        if granted:
            await self.grant(spec.get("serviceAccountName", "chatbot"), policy)
        await self.kube.create(core_path("pods", NS), router_pod_body(name, policy, port.port, **spec))
        await self.kube.patch(core_path("pods", NS, name) + "/status",
                              {"status": {"phase": "Running", "podIP": "127.0.0.1"}})
        return port

    def publish(self, report: UsageReport | bytes, pod: str | None = None) -> None:
        """What the pod's router now answers (a report, or any bytes at all)."""
        if isinstance(report, UsageReport):
            pod = pod or report.pod
            body = report.model_dump_json(by_alias=True).encode()
        else:
            body = report
        assert pod is not None
        self.ports[pod].report = body
        if isinstance(report, UsageReport) and report.final:
            self.ports[pod].final.set()

    async def terminate(self, name: str) -> None:
        """A graceful deletion: the pod stays, terminating, until `gone`."""
        await self.kube.client.delete(core_path("pods", NS, name))

    async def gone(self, name: str) -> None:
        """The kubelet is done: the pod leaves the API, its health port closes."""
        await self.kube.patch(core_path("pods", NS, name), {"metadata": {"finalizers": None}})
        with contextlib.suppress(Exception):
            await self.kube.client.delete(core_path("pods", NS, name))
        await self.ports.pop(name).stop()

    async def close(self) -> None:
        for port in self.ports.values():
            await port.stop()
