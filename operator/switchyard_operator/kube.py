"""A small async Kubernetes API client over httpx, logged in with kopf's ConnectionInfo.

kopf handles the watched resources; this client reads and writes the rest (Secrets, the
ConfigMaps and Secrets the operator produces, other resources' status) without blocking the
event loop. Request and response bodies are never logged: some of them carry API keys.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any

import httpx
import kopf

from .models import GROUP, VERSION

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def core_path(plural: str, namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def custom_path(plural: str, namespace: str, name: str | None = None, status: bool = False) -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
    if name:
        path += f"/{name}"
    return path + "/status" if status else path


def _pem_file(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" not in raw:
        raw = base64.b64decode(raw)
    handle = tempfile.NamedTemporaryFile(delete=False, suffix=".pem")  # noqa: SIM115
    with handle:
        handle.write(raw)
    return handle.name


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context()
    if info.ca_path:
        context.load_verify_locations(cafile=str(info.ca_path))
    elif info.ca_data:
        context.load_verify_locations(cafile=_pem_file(info.ca_data))
    cert = info.certificate_path or (info.certificate_data and _pem_file(info.certificate_data))
    key = info.private_key_path or (info.private_key_data and _pem_file(info.private_key_data))
    if cert:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


class Kube:
    """GET/LIST/POST/PATCH against the API server; 404 on GET reads as None."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @classmethod
    def from_connection(cls, info: kopf.ConnectionInfo) -> Kube:
        headers = {"Accept": "application/json"}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        auth = httpx.BasicAuth(info.username, info.password or "") if info.username else None
        client = httpx.AsyncClient(
            base_url=info.server,
            headers=headers,
            auth=auth,
            verify=_ssl_context(info) if info.server.startswith("https") else True,
            timeout=httpx.Timeout(30.0),
            trust_env=info.trust_env,
        )
        return cls(client)

    async def close(self) -> None:
        await self.client.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> JSON:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.RemoteProtocolError:
            if method != "GET":
                raise
            # A pooled connection the server closed while idle: a read is safe to send again.
            response = await self.client.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message", response.reason_phrase))
            except ValueError:
                message = response.reason_phrase
            raise KubeError(response.status_code, message)
        data: JSON = response.json()
        return data

    async def get(self, path: str) -> JSON | None:
        try:
            return await self._request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str | None = None) -> list[JSON]:
        """The items at `path`; with `label_selector`, only those the API server selects."""
        params = {"labelSelector": label_selector} if label_selector else None
        data = await self._request("GET", path, params=params)
        items: list[JSON] = data.get("items") or []
        return items

    async def create(self, path: str, body: Mapping[str, Any]) -> JSON:
        return await self._request("POST", path, json=body)

    async def patch(self, path: str, patch: Mapping[str, Any]) -> JSON:
        return await self._request(
            "PATCH", path, json=patch, headers={"Content-Type": MERGE_PATCH}
        )
