"""Just enough of the Kubernetes API for a sidecar: read and watch its policy's objects, by name.

It writes nothing: spend reaches the operator by the operator's pull (reporting.py).

The router must start fast and stay small, so it speaks to the API server with the aiohttp
session it already has instead of importing the kubernetes client.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
JSON = dict[str, Any]


class KubeError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class KubeConfig:
    server: str
    namespace: str
    token_file: Path | None = None
    ca_file: Path | None = None

    @classmethod
    def in_cluster(cls, environ: dict[str, str], account: Path = SERVICE_ACCOUNT) -> KubeConfig | None:
        host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port or not (account / "token").exists():
            return None
        namespace = (account / "namespace").read_text().strip()
        ca = account / "ca.crt"
        return cls(f"https://{host}:{port}", namespace, account / "token", ca if ca.exists() else None)


class KubeClient:
    def __init__(self, config: KubeConfig) -> None:
        self.config = config
        ssl_context: ssl.SSLContext | bool = True
        if config.ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=str(config.ca_file))
        connector = aiohttp.TCPConnector(ssl=ssl_context)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
        )

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.token_file is not None:
            # Projected tokens rotate: read the file each time rather than once.
            headers["Authorization"] = f"Bearer {self.config.token_file.read_text().strip()}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def path(self, kind: str, name: str | None = None) -> str:
        base = f"{self.config.server}/api/v1/namespaces/{quote(self.config.namespace)}/{kind}"
        return f"{base}/{quote(name)}" if name else base

    async def get(self, kind: str, name: str) -> JSON | None:
        async with self._session.get(self.path(kind, name), headers=self._headers()) as resp:
            if resp.status == 404:
                return None
            return await _json(resp)

    async def watch(self, kind: str, name: str, resource_version: str | None) -> AsyncIterator[JSON]:
        """Events for one object, filtered here too: some API servers ignore the field selector."""
        params = {"watch": "true", "fieldSelector": f"metadata.name={name}", "timeoutSeconds": "300"}
        if resource_version:
            params["resourceVersion"] = resource_version
        async with self._session.get(self.path(kind), params=params, headers=self._headers()) as resp:
            if resp.status >= 300:
                raise KubeError(f"watch {kind}/{name}: HTTP {resp.status}", resp.status)
            async for line in resp.content:
                if not line.strip():
                    continue
                event = orjson.loads(line)
                obj = event.get("object") or {}
                if (obj.get("metadata") or {}).get("name") == name:
                    yield event

    async def close(self) -> None:
        await self._session.close()


async def _json(resp: aiohttp.ClientResponse) -> JSON:
    if resp.status >= 300:
        text = (await resp.text())[:200]
        raise KubeError(f"{resp.method} {resp.url.path}: HTTP {resp.status}: {text}", resp.status)
    data = await resp.json(loads=orjson.loads, content_type=None)
    if not isinstance(data, dict):
        raise KubeError(f"{resp.method} {resp.url.path}: not a JSON object")
    return data
